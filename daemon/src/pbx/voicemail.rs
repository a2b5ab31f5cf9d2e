//! Voicemail: leaving messages, retrieving them over the phone with a PIN, recorded greetings
//! and message waiting indication (stutter dial tone) on the owners' phones.
//!
//! - **Leaving a message**: a call sent to `voicemail:<box>` (inbound rule, IVR, queue
//!   overflow, or the owner's extension busy / not answering when the mailbox says so) is
//!   answered and hears the mailbox greeting (the one the owner recorded, else the configured
//!   file, else nothing), then a beep; then the caller's side is recorded, mono, through the
//!   engine's recording rings and the recording writer, until `#`, hang-up or the mailbox's
//!   longest message. `#` during the greeting skips it. A message shorter than
//!   [`MIN_MESSAGE_MS`] is discarded; a kept one becomes a store row ([`EventBody::Voicemail`])
//!   and changes message waiting ([`EventBody::Mwi`]). A full mailbox gives the plan's
//!   special information tone once and clears the call.
//! - **Retrieval**: an extension dials `[voicemail] code` (`*98`, its own mailbox) or
//!   `any_code` + mailbox + `#` (`*99<box>#`), hears a beep and enters `<pin>#`; a wrong PIN
//!   gives a short error tone, the third clears the call with congestion tone. Messages play
//!   unheard first, oldest first, each followed by a beep; then `7` deletes, `9` saves (marks
//!   heard), `#` skips, `1` plays it again, `0` records a new greeting: beep, speak, `#` or `*`.
//!   Digits barge in on a message. When all are played the phone hears three short beeps and
//!   may press `1` (from the top again) or `0` (greeting).
//! - **Message waiting**: an owner's phone lifted while its mailbox has unheard messages hears
//!   [`STUTTER_BURSTS`] bursts of stutter dial tone, then steady dial tone.
//!
//! Messages and greetings live under `[voicemail] dir`, one directory per mailbox
//! (`<dir>/<box>/msg-<id>.wav`, `greeting-<id>.wav`) with a small `index.json` that this module
//! writes on every change and reads at start. Call control has no read access to the store, so
//! the index beside the files is what makes message waiting and retrieval survive a restart;
//! the store's `voicemail` table receives the same rows as events for reports.
//!
//! Messages are played through [`PromptPlayers`]: preallocated prompt slots of the engine's
//! prompt library that call control fills from the WAV file when a message or greeting is to
//! be played (the file is read on the control thread, never on the real-time tick).

use super::events::EventBody;
use super::{CallId, CallState, LineKind, Pbx};
use crate::config::model::Config;
use crate::engine::api::{Detectors, EngineCommand, PromptId, RecSlot, Source};
use crate::engine::record::RecordingFinished;
use crate::engine::{PromptLibrary, PromptPlayers};
use crate::store::VoicemailRecord;
use cardpbx_dsp::tone::{Segment, ToneSpec};
use cardpbx_dsp::toneplan::{ProgressTone, STUTTER_BURSTS};
use cardpbx_hal::{ChannelId, Tick};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// Messages shorter than this are discarded, ms.
pub const MIN_MESSAGE_MS: i64 = 1000;
/// Wrong PINs before the call is cleared.
pub const PIN_TRIES: u8 = 3;
/// Players for messages and greetings (one per message or greeting playing at a time; callers
/// hearing the same greeting share one).
const PLAYERS: usize = 8;
/// The index file in each mailbox directory.
const INDEX_FILE: &str = "index.json";

/// One mailbox with its messages.
#[derive(Debug)]
struct Mailbox {
    number: String,
    pin: String,
    owner: Option<String>,
    configured_greeting: Option<PathBuf>,
    max_ms: u64,
    max_messages: usize,
    on_busy: bool,
    on_no_answer: bool,
    dir: PathBuf,
    /// The greeting the owner recorded.
    greeting: Option<PathBuf>,
    /// Oldest first.
    messages: Vec<VoicemailRecord>,
}

impl Mailbox {
    fn unheard(&self) -> u32 {
        self.messages.iter().filter(|m| !m.heard).count() as u32
    }
}

/// What `index.json` holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Index {
    greeting: Option<PathBuf>,
    messages: Vec<VoicemailRecord>,
}

/// Where a voicemail call is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Hearing the greeting (leaving a message).
    Greeting,
    /// Hearing the beep before the recording.
    Beep,
    /// Being recorded, until `deadline`.
    Recording { deadline: Tick },
    /// Hearing the closing tone, then cleared.
    Closing,
    /// Entering the mailbox number (`*99`).
    BoxNumber(String),
    /// Entering the PIN, with the wrong tries so far.
    Pin { digits: String, tries: u8 },
    /// A message is playing.
    Playing(i64),
    /// The beep after a message: waiting for `7`, `9`, `#`, `1` or `0`.
    Choice(i64),
    /// All messages played: `1` from the top, `0` greeting.
    Menu,
    /// Hearing the beep before recording a greeting.
    GreetingBeep,
    /// Recording a greeting until `deadline`.
    GreetingRec { deadline: Tick },
}

/// A call in voicemail.
#[derive(Debug)]
struct VmCall {
    /// The mailbox (index), once known.
    mailbox: Option<usize>,
    /// The leg served: the caller leaving a message, the phone retrieving.
    chan: ChannelId,
    step: Step,
    /// The player in use, if any.
    player: Option<usize>,
    /// The recording in progress.
    slot: Option<RecSlot>,
    /// Messages still to play (retrieval).
    queue: VecDeque<i64>,
}

/// A recording of a message or greeting, until the writer has closed the file.
#[derive(Debug)]
struct VmRec {
    call: CallId,
    chan: ChannelId,
    mailbox: usize,
    id: i64,
    path: PathBuf,
    greeting: bool,
    caller: String,
    ts_ms: i64,
    started: bool,
    stop: bool,
}

/// Voicemail state of call control.
#[derive(Debug)]
pub(super) struct VmCtl {
    boxes: Vec<Mailbox>,
    code: String,
    any_code: String,
    players: Option<PromptPlayers>,
    /// Per player: the file it holds and how many channels play it.
    player_use: Vec<(Option<PathBuf>, u32)>,
    calls: HashMap<CallId, VmCall>,
    recs: HashMap<RecSlot, VmRec>,
    /// Phones hearing stutter dial tone: bursts still to come and the piece playing.
    stutter: HashMap<ChannelId, (u32, ToneSpec)>,
    next_id: i64,
    slot_count: u16,
}

impl VmCtl {
    /// The mailboxes of `cfg` with their messages from the spool directory.
    pub(super) fn new(cfg: &Config, slot_count: usize) -> VmCtl {
        let root = cfg.voicemail.dir(&cfg.system);
        let mut boxes = Vec::new();
        let mut next_id = 1;
        for m in &cfg.mailboxes {
            let dir = root.join(&m.number);
            let index = load_index(&dir);
            let messages: Vec<VoicemailRecord> =
                index.messages.into_iter().filter(|r| Path::new(&r.file).is_file()).collect();
            next_id = messages.iter().map(|r| r.id + 1).fold(next_id, i64::max);
            boxes.push(Mailbox {
                number: m.number.clone(),
                pin: m.pin.clone(),
                owner: m.extension.clone(),
                configured_greeting: m.greeting.clone(),
                max_ms: u64::from(m.max_message_s(&cfg.voicemail)) * 1000,
                max_messages: m.max_messages(&cfg.voicemail) as usize,
                on_busy: m.on_busy,
                on_no_answer: m.on_no_answer,
                greeting: index.greeting.filter(|g| g.is_file()),
                dir,
                messages,
            });
        }
        let players = (!boxes.is_empty()).then(|| {
            let longest = boxes.iter().map(|b| b.max_ms).max().unwrap_or(0);
            PromptPlayers::new(PLAYERS, (longest * 8) as usize)
        });
        VmCtl {
            boxes,
            code: cfg.voicemail.code.clone(),
            any_code: cfg.voicemail.any_code.clone(),
            player_use: vec![(None, 0); players.as_ref().map_or(0, PromptPlayers::count)],
            players,
            calls: HashMap::new(),
            recs: HashMap::new(),
            stutter: HashMap::new(),
            next_id,
            slot_count: slot_count.min(usize::from(u16::MAX)) as u16,
        }
    }

    /// `library` with the voicemail players attached (unchanged without mailboxes).
    pub(super) fn attach(&self, library: PromptLibrary) -> PromptLibrary {
        match &self.players {
            Some(p) => match library.clone().with_players(p.clone()) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("voicemail cannot play messages: {e}");
                    library
                }
            },
            None => library,
        }
    }

    fn by_number(&self, number: &str) -> Option<usize> {
        self.boxes.iter().position(|b| b.number == number)
    }

    fn by_owner(&self, extension: &str) -> Option<usize> {
        self.boxes.iter().position(|b| b.owner.as_deref() == Some(extension))
    }

    /// A player holding `file` (loaded now if no player has it), with its prompt id.
    fn acquire(&mut self, file: &Path) -> Option<(usize, PromptId)> {
        let players = self.players.as_ref()?;
        let i = match self.player_use.iter().position(|(f, _)| f.as_deref() == Some(file)) {
            Some(i) => i,
            None => {
                let i = self.player_use.iter().position(|(_, n)| *n == 0)?;
                let samples = match crate::engine::prompt::load_wav(file) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("voicemail: {e}");
                        return None;
                    }
                };
                players.load(i, &samples);
                self.player_use[i].0 = Some(file.to_path_buf());
                i
            }
        };
        self.player_use[i].1 += 1;
        Some((i, players.id(i)?))
    }

    fn release(&mut self, player: Option<usize>) {
        if let Some(u) = player.and_then(|i| self.player_use.get_mut(i)) {
            u.1 = u.1.saturating_sub(1);
        }
    }

    /// Forget a player's file (it was deleted or replaced).
    fn forget_file(&mut self, file: &Path) {
        for u in &mut self.player_use {
            if u.1 == 0 && u.0.as_deref() == Some(file) {
                u.0 = None;
            }
        }
    }

    fn save(&self, b: usize) {
        let m = &self.boxes[b];
        let index = Index { greeting: m.greeting.clone(), messages: m.messages.clone() };
        if let Err(e) = save_index(&m.dir, &index) {
            tracing::warn!(mailbox = %m.number, "voicemail index not written: {e}");
        }
    }
}

fn load_index(dir: &Path) -> Index {
    let path = dir.join(INDEX_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %path.display(), "voicemail index unreadable, ignored: {e}");
            Index::default()
        }),
        Err(_) => Index::default(),
    }
}

fn save_index(dir: &Path, index: &Index) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{INDEX_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(index).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, dir.join(INDEX_FILE))
}

/// One beep: before the recording, before the PIN, after each message.
fn beep() -> ToneSpec {
    let b = Segment { ms: 400, freqs: [1000.0, 0.0], level_dbm0: -13.0 };
    ToneSpec::new(&[b, Segment::silence(100)], false).expect("a valid tone")
}

/// What dialled digits mean as a retrieval code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Code {
    No,
    Incomplete,
    Own,
    Any(String),
}

fn parse_code(code: &str, any: &str, digits: &str, complete: bool) -> Code {
    if digits == code {
        return Code::Own;
    }
    if let Some(rest) = digits.strip_prefix(any) {
        return match rest.strip_suffix('#') {
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => {
                Code::Any(b.to_string())
            }
            Some(_) => Code::No,
            None if complete || rest.contains(['#', '*']) => Code::No,
            None => Code::Incomplete,
        };
    }
    let prefix = code.starts_with(digits) || any.starts_with(digits);
    if prefix && !complete {
        Code::Incomplete
    } else {
        Code::No
    }
}

impl Pbx {
    /// The voicemail messages of mailbox `number`, oldest first.
    pub fn voicemail_messages(&self, number: &str) -> Vec<VoicemailRecord> {
        self.vm.by_number(number).map(|b| self.vm.boxes[b].messages.clone()).unwrap_or_default()
    }

    /// Unheard messages in the mailbox extension `extension` owns (0 without one).
    pub fn message_waiting(&self, extension: &str) -> u32 {
        self.vm.by_owner(extension).map_or(0, |b| self.vm.boxes[b].unheard())
    }

    /// The voicemail step of call `id` (`greeting`, `recording`, `pin`, `playing`, …).
    pub fn voicemail_step(&self, id: CallId) -> Option<&'static str> {
        self.vm.calls.get(&id).map(|c| match c.step {
            Step::Greeting => "greeting",
            Step::Beep => "beep",
            Step::Recording { .. } => "recording",
            Step::Closing => "closing",
            Step::BoxNumber(_) => "mailbox",
            Step::Pin { .. } => "pin",
            Step::Playing(_) => "playing",
            Step::Choice(_) => "choice",
            Step::Menu => "menu",
            Step::GreetingBeep | Step::GreetingRec { .. } => "greeting_recording",
        })
    }

    fn vm_source(&mut self, id: CallId, s: Source) {
        if let Some(chan) = self.vm.calls.get(&id).map(|c| c.chan) {
            self.set_source(chan, s);
        }
    }

    fn vm_step(&mut self, id: CallId, step: Step) {
        if let Some(c) = self.vm.calls.get_mut(&id) {
            c.step = step;
        }
    }

    /// Call `id` leaves a message in mailbox `number`.
    pub(super) fn vm_leave(&mut self, id: CallId, number: &str) {
        self.set_to(id, &format!("voicemail:{number}"));
        let Some(b) = self.vm.by_number(number) else {
            tracing::warn!(call = id, mailbox = number, "no such mailbox");
            self.vm_end(id, "unknown mailbox");
            return;
        };
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        if !self.cc_answer_trunk(id) {
            return;
        }
        let call = VmCall {
            mailbox: Some(b),
            chan: a,
            step: Step::Greeting,
            player: None,
            slot: None,
            queue: VecDeque::new(),
        };
        self.vm.calls.insert(id, call);
        let m = &self.vm.boxes[b];
        if m.messages.len() >= m.max_messages {
            tracing::info!(call = id, mailbox = number, "mailbox full");
            self.cdr.note(id, "mailbox full");
            self.vm_step(id, Step::Closing);
            let mut t = self.plan.tone(ProgressTone::Info);
            t.repeat = false;
            self.set_source(a, Source::Tone(t));
            return;
        }
        tracing::info!(call = id, mailbox = number, "voicemail: leaving a message");
        let greeting = m.greeting.clone().or_else(|| m.configured_greeting.clone());
        self.vm_set_dtmf(a, true);
        match greeting.and_then(|g| self.vm.acquire(&g)) {
            Some((player, prompt)) => {
                if let Some(c) = self.vm.calls.get_mut(&id) {
                    c.player = Some(player);
                }
                self.set_source(a, Source::Prompt { prompt, repeat: false });
            }
            None => self.vm_beep(id, Step::Beep),
        }
    }

    fn vm_beep(&mut self, id: CallId, step: Step) {
        self.vm_step(id, step);
        self.vm_source(id, Source::Tone(beep()));
    }

    fn vm_set_dtmf(&mut self, chan: ChannelId, on: bool) {
        match self.lines[chan.index()].kind {
            LineKind::Fxo { .. } => self.update_detectors(chan),
            _ => self.detect(chan, if on { Detectors::DTMF } else { Detectors::NONE }),
        }
    }

    /// Whether trunk leg `chan` listens for DTMF for voicemail.
    pub(super) fn vm_wants_dtmf(&self, chan: ChannelId) -> bool {
        self.lines[chan.index()]
            .call
            .and_then(|id| self.vm.calls.get(&id))
            .is_some_and(|c| c.chan == chan && c.step != Step::Closing)
    }

    /// Clear voicemail call `id`: a phone hears busy tone until it hangs up.
    fn vm_end(&mut self, id: CallId, why: &str) {
        let Some(a) = self.calls.get(&id).map(|c| c.a) else { return };
        if matches!(self.lines[a.index()].kind, LineKind::Fxs { .. }) {
            self.fail(id, ProgressTone::Busy, why);
            self.vm_call_over(id);
            return;
        }
        self.cdr.note(id, why);
        self.leg_gone(a);
    }

    /// Start recording a message or greeting on call `id`.
    fn vm_record(&mut self, id: CallId, greeting: bool) {
        let Some(c) = self.vm.calls.get(&id) else { return };
        let (chan, Some(b)) = (c.chan, c.mailbox) else { return };
        let handle = self.rec_handle();
        let slot = handle
            .as_ref()
            .and_then(|h| (0..self.vm.slot_count).rev().map(RecSlot).find(|s| h.is_free(*s)));
        let (Some(handle), Some(slot)) = (handle, slot) else {
            tracing::warn!(call = id, "voicemail: no recording writer or no free slot");
            self.vm_end(id, "voicemail cannot record");
            return;
        };
        let msg_id = self.vm.next_id.max(self.utc_ms(self.now));
        self.vm.next_id = msg_id + 1;
        let m = &self.vm.boxes[b];
        let name =
            if greeting { format!("greeting-{msg_id}.wav") } else { format!("msg-{msg_id}.wav") };
        let path = m.dir.join(name);
        let deadline = self.now + m.max_ms;
        if let Err(e) = handle.open_nowait(slot, &path, true) {
            tracing::warn!(call = id, "voicemail cannot record: {e}");
            self.vm_end(id, "voicemail cannot record");
            return;
        }
        let caller = self.calls.get(&id).map(|c| c.from.clone()).unwrap_or_default();
        let rec = VmRec {
            call: id,
            chan,
            mailbox: b,
            id: msg_id,
            path,
            greeting,
            caller,
            ts_ms: self.utc_ms(self.now),
            started: false,
            stop: false,
        };
        self.vm.recs.insert(slot, rec);
        if let Some(c) = self.vm.calls.get_mut(&id) {
            c.slot = Some(slot);
            c.step = if greeting {
                Step::GreetingRec { deadline }
            } else {
                Step::Recording { deadline }
            };
        }
        self.set_source(chan, Source::Silence);
    }

    /// Stop call `id`'s recording (its file is filed when the writer has closed it).
    fn vm_stop_recording(&mut self, id: CallId) {
        let Some(slot) = self.vm.calls.get_mut(&id).and_then(|c| c.slot.take()) else { return };
        let Some(r) = self.vm.recs.get_mut(&slot) else { return };
        if !r.stop {
            r.stop = true;
            if r.started {
                self.cmd(EngineCommand::RecordStop(slot));
            }
        }
    }

    /// The recording writer opened (or failed to open) `slot`: the recording.rs poll passes
    /// slots it does not own here. True when the slot is voicemail's.
    pub(super) fn vm_opened(
        &mut self,
        slot: RecSlot,
        res: Result<(), crate::engine::record::RecordError>,
    ) -> bool {
        let Some(r) = self.vm.recs.get_mut(&slot) else { return false };
        match res {
            Ok(()) if r.stop => self.cmd(EngineCommand::RecordStop(slot)),
            Ok(()) => {
                r.started = true;
                let chan = r.chan;
                self.cmd(EngineCommand::RecordStart(chan, slot));
            }
            Err(e) => {
                let call = r.call;
                tracing::warn!(call, "voicemail cannot record: {e}");
                self.vm.recs.remove(&slot);
                if self.vm.calls.get(&call).is_some_and(|c| c.slot == Some(slot)) {
                    self.vm_end(call, "voicemail cannot record");
                }
            }
        }
        true
    }

    /// The writer closed a file: file a message or greeting. True when the slot was
    /// voicemail's.
    pub(super) fn vm_finished(&mut self, f: &RecordingFinished) -> bool {
        let Some(r) = self.vm.recs.remove(&f.slot) else { return false };
        let ms = (f.frames / 8) as i64;
        let b = r.mailbox;
        if let Some(e) = &f.error {
            tracing::warn!(call = r.call, file = %f.path.display(), "voicemail recording: {e}");
        }
        if ms < MIN_MESSAGE_MS {
            tracing::info!(call = r.call, ms, "voicemail: too short, discarded");
            let _ = std::fs::remove_file(&r.path);
        } else if r.greeting {
            let old = self.vm.boxes[b].greeting.replace(r.path.clone());
            if let Some(old) = old {
                self.vm.forget_file(&old);
                let _ = std::fs::remove_file(old);
            }
            self.vm.save(b);
            tracing::info!(mailbox = %self.vm.boxes[b].number, ms, "voicemail greeting recorded");
        } else {
            let rec = VoicemailRecord {
                id: r.id,
                mailbox: self.vm.boxes[b].number.clone(),
                caller: r.caller,
                ts_ms: r.ts_ms,
                duration_ms: ms,
                file: r.path.display().to_string(),
                heard: false,
            };
            tracing::info!(call = r.call, mailbox = %rec.mailbox, ms, "voicemail message left");
            self.vm.boxes[b].messages.push(rec.clone());
            self.vm.save(b);
            self.publish(EventBody::Voicemail(rec));
            self.vm_mwi(b);
        }
        if r.greeting && self.vm.calls.get(&r.call).is_some_and(|c| c.step == Step::Menu) {
            self.vm_source(r.call, Source::Tone(super::cc_features::confirmation_tone()));
        }
        true
    }

    /// Publish message waiting of mailbox `b`'s owner.
    fn vm_mwi(&mut self, b: usize) {
        let m = &self.vm.boxes[b];
        let Some(extension) = m.owner.clone() else { return };
        let (mailbox, unheard) = (m.number.clone(), m.unheard());
        self.publish(EventBody::Mwi { mailbox, extension, unheard });
    }

    /// Earliest voicemail timer (the end of a recording).
    pub(super) fn vm_timeout(&self) -> Option<Tick> {
        self.vm
            .calls
            .values()
            .filter_map(|c| match c.step {
                Step::Recording { deadline } | Step::GreetingRec { deadline } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Recordings that reached their longest length end.
    pub(super) fn vm_tick(&mut self, now: Tick) {
        let due: Vec<CallId> = self
            .vm
            .calls
            .iter()
            .filter(|(_, c)| match c.step {
                Step::Recording { deadline } | Step::GreetingRec { deadline } => deadline <= now,
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.vm_recording_over(id);
        }
    }

    /// A message or greeting recording ends (`#`, `*`, longest length).
    fn vm_recording_over(&mut self, id: CallId) {
        let Some(step) = self.vm.calls.get(&id).map(|c| c.step.clone()) else { return };
        self.vm_stop_recording(id);
        let tone = Source::Tone(super::cc_features::confirmation_tone());
        match step {
            Step::Recording { .. } => {
                self.vm_step(id, Step::Closing);
                self.vm_source(id, tone);
            }
            Step::GreetingRec { .. } => {
                self.vm_step(id, Step::Menu);
                self.vm_source(id, Source::Silence);
            }
            _ => {}
        }
    }

    /// A prompt or tone ended on `chan`: voicemail's when it played one there.
    pub(super) fn vm_play_done(&mut self, chan: ChannelId) -> bool {
        if self.vm_stutter_done(chan) {
            return true;
        }
        let Some(id) = self.lines[chan.index()].call else { return false };
        let Some(c) = self.vm.calls.get(&id) else { return false };
        if c.chan != chan {
            return false;
        }
        let step = c.step.clone();
        self.vm_drop_player(id);
        match step {
            Step::Greeting => self.vm_beep(id, Step::Beep),
            Step::Beep => self.vm_record(id, false),
            Step::GreetingBeep => self.vm_record(id, true),
            Step::Closing => self.vm_end(id, "voicemail message left"),
            Step::Playing(msg) => self.vm_beep(id, Step::Choice(msg)),
            Step::Recording { .. }
            | Step::GreetingRec { .. }
            | Step::BoxNumber(_)
            | Step::Pin { .. }
            | Step::Choice(_)
            | Step::Menu => {}
        }
        true
    }

    /// A DTMF digit from `chan`: voicemail's when it is the leg a voicemail call serves.
    pub(super) fn vm_digit(&mut self, chan: ChannelId, digit: char) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        let Some(c) = self.vm.calls.get(&id) else { return false };
        if c.chan != chan {
            return false;
        }
        let (step, mailbox) = (c.step.clone(), c.mailbox);
        match step {
            Step::Greeting if digit == '#' => {
                self.vm_drop_player(id);
                self.vm_beep(id, Step::Beep);
            }
            Step::Recording { .. } if digit == '#' => self.vm_recording_over(id),
            Step::GreetingRec { .. } if digit == '#' || digit == '*' => self.vm_recording_over(id),
            Step::BoxNumber(mut d) => {
                if digit != '#' {
                    if d.len() < 20 {
                        d.push(digit);
                    }
                    self.vm_step(id, Step::BoxNumber(d));
                    return true;
                }
                match self.vm.by_number(&d) {
                    Some(b) => {
                        if let Some(c) = self.vm.calls.get_mut(&id) {
                            c.mailbox = Some(b);
                        }
                        self.vm_beep(id, Step::Pin { digits: String::new(), tries: 0 });
                    }
                    None => {
                        self.vm_call_over(id);
                        self.fail(id, ProgressTone::Congestion, "unknown mailbox");
                    }
                }
            }
            Step::Pin { mut digits, tries } => {
                if digit != '#' {
                    if digits.len() < 20 {
                        digits.push(digit);
                    }
                    self.vm_step(id, Step::Pin { digits, tries });
                    return true;
                }
                let Some(b) = mailbox else { return true };
                let wrong = tries + 1;
                if digits == self.vm.boxes[b].pin {
                    tracing::info!(call = id, mailbox = %self.vm.boxes[b].number, "voicemail: PIN right");
                    self.vm_start_list(id);
                } else if wrong >= PIN_TRIES {
                    tracing::info!(call = id, "voicemail: wrong PIN {wrong} times");
                    self.vm_call_over(id);
                    self.fail(id, ProgressTone::Congestion, "wrong voicemail PIN");
                } else {
                    tracing::info!(call = id, "voicemail: wrong PIN");
                    let mut t = self.plan.tone(ProgressTone::Congestion);
                    t.repeat = false;
                    self.vm_step(id, Step::Pin { digits: String::new(), tries: wrong });
                    self.vm_source(id, Source::Tone(t));
                }
            }
            Step::Playing(msg) | Step::Choice(msg) => {
                if !matches!(digit, '7' | '9' | '#' | '1' | '0') {
                    // Not a choice: the message goes on.
                    return true;
                }
                self.vm_drop_player(id);
                match digit {
                    '7' => {
                        self.vm_delete(id, msg);
                        self.vm_next(id);
                    }
                    '9' => {
                        self.vm_mark_heard(id, msg);
                        self.vm_next(id);
                    }
                    '#' => self.vm_next(id),
                    '1' => self.vm_play(id, msg),
                    _ => self.vm_beep(id, Step::GreetingBeep),
                }
            }
            Step::Menu => match digit {
                '1' => self.vm_start_list(id),
                '0' => self.vm_beep(id, Step::GreetingBeep),
                _ => {}
            },
            _ => {}
        }
        true
    }

    /// Call `id` no longer plays its player.
    fn vm_drop_player(&mut self, id: CallId) {
        let player = self.vm.calls.get_mut(&id).and_then(|c| c.player.take());
        self.vm.release(player);
    }

    /// The PIN was right: queue the messages (unheard first, oldest first) and play.
    fn vm_start_list(&mut self, id: CallId) {
        let Some(b) = self.vm.calls.get(&id).and_then(|c| c.mailbox) else { return };
        let m = &self.vm.boxes[b];
        let unheard = m.messages.iter().filter(|r| !r.heard).map(|r| r.id);
        let heard = m.messages.iter().filter(|r| r.heard).map(|r| r.id);
        let queue: VecDeque<i64> = unheard.chain(heard).collect();
        if let Some(c) = self.vm.calls.get_mut(&id) {
            c.queue = queue;
        }
        self.vm_next(id);
    }

    /// Play the next message, or tell that there are none left.
    fn vm_next(&mut self, id: CallId) {
        let next = self.vm.calls.get_mut(&id).and_then(|c| c.queue.pop_front());
        match next {
            Some(msg) => self.vm_play(id, msg),
            None => {
                self.vm_step(id, Step::Menu);
                self.vm_source(id, Source::Tone(super::cc_features::confirmation_tone()));
            }
        }
    }

    /// Play message `msg` to call `id`.
    fn vm_play(&mut self, id: CallId, msg: i64) {
        let Some(b) = self.vm.calls.get(&id).and_then(|c| c.mailbox) else { return };
        let Some(file) =
            self.vm.boxes[b].messages.iter().find(|r| r.id == msg).map(|r| r.file.clone())
        else {
            self.vm_next(id);
            return;
        };
        match self.vm.acquire(Path::new(&file)) {
            Some((player, prompt)) => {
                if let Some(c) = self.vm.calls.get_mut(&id) {
                    c.player = Some(player);
                    c.step = Step::Playing(msg);
                }
                self.vm_source(id, Source::Prompt { prompt, repeat: false });
            }
            None => self.vm_beep(id, Step::Choice(msg)),
        }
    }

    fn vm_delete(&mut self, id: CallId, msg: i64) {
        let Some(b) = self.vm.calls.get(&id).and_then(|c| c.mailbox) else { return };
        let m = &mut self.vm.boxes[b];
        let Some(pos) = m.messages.iter().position(|r| r.id == msg) else { return };
        let r = m.messages.remove(pos);
        let mailbox = m.number.clone();
        self.vm.forget_file(Path::new(&r.file));
        if let Err(e) = std::fs::remove_file(&r.file) {
            tracing::warn!(file = %r.file, "voicemail message not removed: {e}");
        }
        self.vm.save(b);
        tracing::info!(call = id, %mailbox, msg, "voicemail message deleted");
        self.publish(EventBody::VoicemailDeleted { mailbox, id: msg });
        if !r.heard {
            self.vm_mwi(b);
        }
    }

    fn vm_mark_heard(&mut self, id: CallId, msg: i64) {
        let Some(b) = self.vm.calls.get(&id).and_then(|c| c.mailbox) else { return };
        let Some(r) = self.vm.boxes[b].messages.iter_mut().find(|r| r.id == msg) else { return };
        if r.heard {
            return;
        }
        r.heard = true;
        let rec = r.clone();
        self.vm.save(b);
        self.publish(EventBody::Voicemail(rec));
        self.vm_mwi(b);
    }

    /// Digits dialled from an extension: the retrieval codes. True when they are one (or may
    /// become one).
    pub(super) fn vm_feature(&mut self, id: CallId, digits: &str, complete: bool) -> bool {
        if self.vm.boxes.is_empty() {
            return false;
        }
        let Some(c) = self.calls.get(&id) else { return false };
        let a = c.a;
        let internal = c.direction == super::Direction::Internal && c.state == CallState::Dialing;
        let LineKind::Fxs { number, .. } = &self.lines[a.index()].kind else { return false };
        if !internal {
            return false;
        }
        let number = number.clone();
        let (mailbox, step, code) =
            match parse_code(&self.vm.code, &self.vm.any_code, digits, complete) {
                Code::No => return false,
                Code::Incomplete => return true,
                Code::Own => match self.vm.by_owner(&number) {
                    Some(b) => (
                        Some(b),
                        Step::Pin { digits: String::new(), tries: 0 },
                        self.vm.code.clone(),
                    ),
                    None => {
                        self.set_to(id, &self.vm.code.clone());
                        self.fail(id, ProgressTone::Congestion, "no mailbox for this extension");
                        return true;
                    }
                },
                Code::Any(n) => match self.vm.by_number(&n) {
                    Some(b) => (
                        Some(b),
                        Step::Pin { digits: String::new(), tries: 0 },
                        self.vm.any_code.clone(),
                    ),
                    None => (None, Step::BoxNumber(String::new()), self.vm.any_code.clone()),
                },
            };
        self.set_to(id, &code);
        if mailbox.is_none() {
            self.set_to(id, &self.vm.any_code.clone());
            self.fail(id, ProgressTone::Congestion, "unknown mailbox");
            return true;
        }
        let now = self.now;
        if let Some(c) = self.calls.get_mut(&id) {
            c.set_state(CallState::Connected);
            c.answered = Some(now);
            c.timer = None;
        }
        tracing::info!(call = id, extension = %number, "voicemail retrieval");
        self.vm.calls.insert(
            id,
            VmCall {
                mailbox,
                chan: a,
                step: Step::Menu,
                player: None,
                slot: None,
                queue: VecDeque::new(),
            },
        );
        self.detect(a, Detectors::DTMF);
        self.vm_beep(id, step);
        true
    }

    /// Call `id` to extension phone `phone` failed (`busy`, else no answer): leave a message
    /// in the owner's mailbox instead when it says so. Only calls dialled to the extension's
    /// own number are diverted. True when the call went to voicemail.
    pub(super) fn vm_divert(&mut self, id: CallId, phone: ChannelId, busy: bool) -> bool {
        let LineKind::Fxs { number, .. } = &self.lines[phone.index()].kind else { return false };
        let Some(b) = self.vm.by_owner(number) else { return false };
        let m = &self.vm.boxes[b];
        // Only calls to the extension itself (not to a hunt group it is in).
        let to_it = self.calls.get(&id).is_some_and(|c| c.to == *number);
        if !to_it || !(if busy { m.on_busy } else { m.on_no_answer }) {
            return false;
        }
        let mailbox = m.number.clone();
        let Some(c) = self.calls.get_mut(&id) else { return false };
        let ringing = std::mem::take(&mut c.ringing);
        c.timer = None;
        c.hunt = None;
        self.stop_ringing(&ringing);
        for r in ringing {
            if self.lines[r.index()].call == Some(id) {
                self.lines[r.index()].call = None;
            }
        }
        tracing::info!(call = id, %mailbox, busy, "extension diverted to voicemail");
        self.vm_leave(id, &mailbox);
        true
    }

    /// The ringing extensions of call `id`, for a no-answer divert.
    pub(super) fn vm_divert_no_answer(&mut self, id: CallId) -> bool {
        let ringing = self.calls.get(&id).map(|c| c.ringing.clone()).unwrap_or_default();
        ringing.into_iter().any(|p| self.vm_divert(id, p, false))
    }

    /// Forget call `id`'s voicemail state (stopping its recording).
    fn vm_call_over(&mut self, id: CallId) {
        self.vm_stop_recording(id);
        if let Some(c) = self.vm.calls.remove(&id) {
            self.vm.release(c.player);
        }
    }

    /// Call `id` ended.
    pub(super) fn vm_call_gone(&mut self, id: CallId) {
        self.vm_call_over(id);
    }

    /// Dial tone for phone `chan`, lifted to dial: stutter dial tone while its owner's mailbox
    /// has unheard messages.
    pub(super) fn vm_dial_tone(&mut self, chan: ChannelId) {
        let waiting = match &self.lines[chan.index()].kind {
            LineKind::Fxs { number, .. } => self.message_waiting(number) > 0,
            _ => false,
        };
        if !waiting {
            self.tone(chan, ProgressTone::Dial);
            return;
        }
        let piece = self.plan.stutter_dial(4);
        self.vm.stutter.insert(chan, (STUTTER_BURSTS.saturating_sub(4), piece));
        self.set_source(chan, Source::Tone(piece));
    }

    /// A piece of stutter dial tone ended on `chan`: the next, or steady dial tone.
    fn vm_stutter_done(&mut self, chan: ChannelId) -> bool {
        let Some((left, piece)) = self.vm.stutter.remove(&chan) else { return false };
        if self.sources[chan.index()].0 != Source::Tone(piece) {
            return false;
        }
        let dialing = self.lines[chan.index()]
            .call
            .and_then(|id| self.calls.get(&id))
            .is_some_and(|c| c.state == CallState::Dialing && c.digits.is_empty());
        if !dialing {
            return true;
        }
        if left == 0 {
            self.tone(chan, ProgressTone::Dial);
        } else {
            let next = self.plan.stutter_dial(left.min(4));
            self.vm.stutter.insert(chan, (left.saturating_sub(4), next));
            self.set_source(chan, Source::Tone(next));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_codes_parse() {
        let p = |d: &str, c: bool| parse_code("*98", "*99", d, c);
        assert_eq!(p("*", false), Code::Incomplete);
        assert_eq!(p("*9", false), Code::Incomplete);
        assert_eq!(p("*9", true), Code::No);
        assert_eq!(p("*98", false), Code::Own);
        assert_eq!(p("*99", false), Code::Incomplete);
        assert_eq!(p("*99601", false), Code::Incomplete);
        assert_eq!(p("*99601#", false), Code::Any("601".into()));
        assert_eq!(p("*99601", true), Code::No);
        assert_eq!(p("*99#", false), Code::No);
        assert_eq!(p("*61", false), Code::No);
        assert_eq!(p("2001", false), Code::No);
    }

    #[test]
    fn index_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let rec = VoicemailRecord {
            id: 5,
            mailbox: "601".into(),
            caller: "555".into(),
            ts_ms: 9,
            duration_ms: 1500,
            file: "/x.wav".into(),
            heard: false,
        };
        let idx = Index { greeting: Some("/g.wav".into()), messages: vec![rec.clone()] };
        save_index(&dir.path().join("601"), &idx).unwrap();
        let back = load_index(&dir.path().join("601"));
        assert_eq!((back.greeting, back.messages), (idx.greeting, vec![rec]));
        assert!(load_index(&dir.path().join("none")).messages.is_empty());
        std::fs::write(dir.path().join("601").join(INDEX_FILE), b"junk").unwrap();
        assert!(load_index(&dir.path().join("601")).messages.is_empty());
    }
}
