//! Call recording policy: which connected calls are recorded, feature codes to start, stop,
//! pause and resume, and the index rows of finished recordings.
//!
//! The policy of a call is the strongest of its extensions', its queue's and its trunk
//! groups' (`always` > `on_demand` > `never`), decided when the call is bridged. `always`
//! starts recording at once; `on_demand` waits for a feature code. In both cases the
//! extensions' DTMF is listened to during the call for the codes in [`FeatureCode`].
//!
//! The recorded leg is the calling leg (`Call::a`): the media engine writes what it receives
//! from its line on the left (the caller) and what it is sent on the right (the called
//! extension or agent). The writer thread opens files without the control plane waiting
//! ([`RecordingHandle::open_nowait`]); [`Pbx::recording_poll`] sends `RecordStart` once a file
//! is open and turns finished files into [`Record::Recording`] rows.

use super::{Call, CallId, CallState, LineKind, Pbx};
use crate::config::model::Config;
use crate::config::recording::{RecordingFormat, RecordingPolicy};
use crate::engine::api::{Detectors, EngineCommand, RecSlot};
use crate::engine::RecordingHandle;
use crate::store::{CdrRecord, RecordingRecord};
use cardpbx_hal::ChannelId;
use std::collections::HashMap;
use std::path::PathBuf;

/// The feature codes an extension dials during a connected call whose policy is `on_demand`
/// or `always` (`always` calls only pause and resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureCode {
    /// `*61`: start recording.
    Start,
    /// `*62`: stop recording (the file is closed; a later start opens a new one).
    Stop,
    /// `*63`: pause (silence is recorded until resumed).
    Pause,
    /// `*64`: resume after a pause.
    Resume,
}

impl FeatureCode {
    /// The code for three dialled characters, if they are one.
    pub fn parse(code: &str) -> Option<FeatureCode> {
        match code {
            "*61" => Some(FeatureCode::Start),
            "*62" => Some(FeatureCode::Stop),
            "*63" => Some(FeatureCode::Pause),
            "*64" => Some(FeatureCode::Resume),
            _ => None,
        }
    }
}

/// A recording being written.
#[derive(Debug)]
struct Active {
    slot: RecSlot,
    path: PathBuf,
    start_ms: i64,
    /// `RecordStart` was sent (the file is open).
    started: bool,
    paused: bool,
}

/// Recording state of one call.
#[derive(Debug)]
struct CallRec {
    policy: RecordingPolicy,
    /// The recorded leg.
    chan: ChannelId,
    active: Option<Active>,
    /// Every file of the call, for its CDR.
    files: Vec<String>,
    /// Feature-code digits being dialled, per extension leg.
    digits: HashMap<ChannelId, String>,
}

/// What the index row of a recording needs once the writer has closed the file.
#[derive(Debug)]
struct Closing {
    call: CallId,
    agent: Option<String>,
    caller: String,
    called: String,
    queue: Option<String>,
    start_ms: i64,
}

/// Recording state of call control.
#[derive(Debug)]
pub(super) struct RecCtl {
    handle: Option<RecordingHandle>,
    dir: PathBuf,
    mono: bool,
    extensions: HashMap<String, RecordingPolicy>,
    queues: HashMap<String, RecordingPolicy>,
    trunk_groups: HashMap<String, RecordingPolicy>,
    calls: HashMap<CallId, CallRec>,
    /// Slots this control plane has asked for and not yet seen finished.
    slots: HashMap<RecSlot, Option<CallId>>,
    closing: HashMap<RecSlot, Closing>,
    slot_count: u16,
}

impl RecCtl {
    /// The policies and settings of `cfg`; nothing is recorded until a writer is attached.
    pub(super) fn new(cfg: &Config, slot_count: usize) -> RecCtl {
        RecCtl {
            handle: None,
            dir: cfg.recording.dir(&cfg.system),
            mono: cfg.recording.format == RecordingFormat::Mono,
            extensions: cfg.extensions.iter().map(|e| (e.number.clone(), e.recording)).collect(),
            queues: cfg.queues.iter().map(|q| (q.name.clone(), q.recording)).collect(),
            trunk_groups: cfg.trunk_groups.iter().map(|t| (t.name.clone(), t.recording)).collect(),
            calls: HashMap::new(),
            slots: HashMap::new(),
            closing: HashMap::new(),
            slot_count: slot_count.min(usize::from(u16::MAX)) as u16,
        }
    }
}

/// `YYYY/MM/DD` and `YYYYMMDDTHHMMSS` of a UTC time in ms.
fn date_parts(utc_ms: i64) -> (String, String) {
    let s = utc_ms.div_euclid(1000);
    let (y, m, d) = crate::store::time::civil_from_days(s.div_euclid(86_400));
    let t = s.rem_euclid(86_400);
    let (hh, mm, ss) = (t / 3600, t % 3600 / 60, t % 60);
    (format!("{y:04}/{m:02}/{d:02}"), format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}"))
}

impl Pbx {
    /// Attach the recording writer's handle (the runner does, at start).
    pub fn set_recorder(&mut self, handle: RecordingHandle) {
        self.rec.handle = Some(handle);
    }

    /// The recording writer's handle, when attached (voicemail records through it too).
    pub(super) fn rec_handle(&self) -> Option<RecordingHandle> {
        self.rec.handle.clone()
    }

    /// Calls being recorded now (the file is open and written).
    pub fn recording_calls(&self) -> Vec<CallId> {
        let mut v: Vec<CallId> = self
            .rec
            .calls
            .iter()
            .filter(|(_, r)| r.active.as_ref().is_some_and(|a| a.started))
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    /// The policy of call `id` over the legs `a` and `b`.
    fn rec_policy(&self, id: CallId, legs: [ChannelId; 2]) -> RecordingPolicy {
        let mut p = RecordingPolicy::Never;
        for leg in legs {
            let leg_policy = match &self.lines[leg.index()].kind {
                LineKind::Fxs { number, .. } => self.rec.extensions.get(number).copied(),
                _ => self
                    .trunk_group_of(leg)
                    .and_then(|g| self.trunk_groups.get(g))
                    .and_then(|g| self.rec.trunk_groups.get(&g.name).copied()),
            };
            p = p.max(leg_policy.unwrap_or_default());
        }
        let (queue, _) = self.cc_queue_and_agent(id);
        if let Some(q) = queue.and_then(|q| self.rec.queues.get(&q).copied()) {
            p = p.max(q);
        }
        p
    }

    /// Legs `a` and `b` were just bridged: apply the call's recording policy.
    pub(super) fn rec_bridged(&mut self, a: ChannelId, b: ChannelId) {
        let Some(id) = self.lines[a.index()].call else { return };
        let Some(c) = self.calls.get(&id) else { return };
        if c.state != CallState::Connected {
            return;
        }
        let caller = c.a;
        let policy = self.rec_policy(id, [a, b]);
        if policy == RecordingPolicy::Never {
            return;
        }
        let r = self.rec.calls.entry(id).or_insert_with(|| CallRec {
            policy,
            chan: caller,
            active: None,
            files: Vec::new(),
            digits: HashMap::new(),
        });
        r.policy = r.policy.max(policy);
        for leg in [a, b] {
            if matches!(self.lines[leg.index()].kind, LineKind::Fxs { .. }) {
                // Clamped: the other party does not hear the feature codes (nor does its
                // echo canceller, which narrowband DTMF would mis-train).
                let d = Detectors { dtmf: true, clamp_dtmf: true, ..self.sources[leg.index()].1 };
                self.detect(leg, d);
            }
        }
        if policy == RecordingPolicy::Always {
            self.rec_start(id);
        }
    }

    /// Start recording call `id` (when it is not already).
    fn rec_start(&mut self, id: CallId) {
        let Some(handle) = self.rec.handle.clone() else {
            tracing::warn!(call = id, "recording wanted but no recording writer is attached");
            return;
        };
        let Some(r) = self.rec.calls.get(&id) else { return };
        if r.active.is_some() {
            return;
        }
        let Some(slot) = (0..self.rec.slot_count)
            .map(RecSlot)
            .find(|s| !self.rec.slots.contains_key(s) && handle.is_free(*s))
        else {
            tracing::warn!(call = id, "no free recording slot: the call is not recorded");
            return;
        };
        let start_ms = self.utc_ms(self.now);
        let (day, stamp) = date_parts(start_ms);
        let path = self.rec.dir.join(day).join(format!("{id}-{stamp}.wav"));
        if let Err(e) = handle.open_nowait(slot, &path, self.rec.mono) {
            tracing::warn!(call = id, "cannot start recording: {e}");
            return;
        }
        self.rec.slots.insert(slot, Some(id));
        let r = self.rec.calls.get_mut(&id).expect("checked above");
        r.files.push(path.display().to_string());
        r.active = Some(Active { slot, path, start_ms, started: false, paused: false });
        tracing::info!(call = id, "recording started");
    }

    /// Stop recording call `id`; its row is written when the writer has closed the file.
    fn rec_stop(&mut self, id: CallId, c: Option<&Call>) {
        let Some(active) = self.rec.calls.get_mut(&id).and_then(|r| r.active.take()) else {
            return;
        };
        let (caller, called) = match c.or_else(|| self.calls.get(&id)) {
            Some(c) => (c.from.clone(), c.to.clone()),
            None => (String::new(), String::new()),
        };
        let (queue, agent) = self.cc_queue_and_agent(id);
        self.rec.closing.insert(
            active.slot,
            Closing { call: id, agent, caller, called, queue, start_ms: active.start_ms },
        );
        self.rec.slots.insert(active.slot, None);
        // Not yet started: the open result comes later and is then stopped at once.
        if active.started {
            self.cmd(EngineCommand::RecordStop(active.slot));
        }
        tracing::info!(call = id, file = %active.path.display(), "recording stopped");
    }

    /// Pause or resume call `id`'s recording.
    fn rec_pause(&mut self, id: CallId, on: bool) {
        let Some(handle) = self.rec.handle.clone() else { return };
        let Some(a) = self.rec.calls.get_mut(&id).and_then(|r| r.active.as_mut()) else { return };
        if a.paused != on {
            a.paused = on;
            handle.pause(a.slot, on);
        }
    }

    /// A DTMF digit from `chan`: the recording feature codes' when it is an extension leg of
    /// a connected call with a recording policy.
    pub(super) fn rec_digit(&mut self, chan: ChannelId, digit: char) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        if !matches!(self.lines[chan.index()].kind, LineKind::Fxs { .. })
            || self.calls.get(&id).is_none_or(|c| c.state != CallState::Connected)
        {
            return false;
        }
        let Some(r) = self.rec.calls.get_mut(&id) else { return false };
        let buf = r.digits.entry(chan).or_default();
        if digit == '*' {
            buf.clear();
        } else if buf.is_empty() {
            return true;
        }
        buf.push(digit);
        if buf.len() < 3 {
            return true;
        }
        let code = FeatureCode::parse(buf);
        buf.clear();
        let policy = r.policy;
        match code {
            Some(FeatureCode::Start) if policy == RecordingPolicy::OnDemand => self.rec_start(id),
            Some(FeatureCode::Stop) if policy == RecordingPolicy::OnDemand => {
                self.rec_stop(id, None)
            }
            Some(FeatureCode::Pause) => self.rec_pause(id, true),
            Some(FeatureCode::Resume) => self.rec_pause(id, false),
            _ => tracing::debug!(call = id, "not a recording feature code"),
        }
        true
    }

    /// Call `c` ended: stop its recording and name its files in the CDR.
    pub(super) fn rec_call_ended(&mut self, c: &Call, cdr: &mut CdrRecord) {
        if !self.rec.calls.contains_key(&c.id) {
            return;
        }
        self.rec_stop(c.id, Some(c));
        if let Some(r) = self.rec.calls.remove(&c.id) {
            if !r.files.is_empty() {
                cdr.recording = Some(r.files.join(";"));
            }
        }
    }

    /// Take the writer's news: start the engine on opened files and index finished ones.
    /// The runner calls this after every round.
    pub fn recording_poll(&mut self) {
        let Some(handle) = self.rec.handle.clone() else { return };
        while let Ok((slot, res)) = handle.opened().try_recv() {
            let Some(owner) = self.rec.slots.get(&slot).copied() else {
                self.vm_opened(slot, res);
                continue;
            };
            match (res, owner) {
                (Ok(()), Some(id)) => {
                    let chan = self.rec.calls.get(&id).map(|r| r.chan);
                    let active = self.rec.calls.get_mut(&id).and_then(|r| r.active.as_mut());
                    if let (Some(chan), Some(a)) = (chan, active) {
                        a.started = true;
                        self.cmd(EngineCommand::RecordStart(chan, slot));
                    }
                }
                // Stopped before the file was open: close it empty.
                (Ok(()), None) => self.cmd(EngineCommand::RecordStop(slot)),
                (Err(e), owner) => {
                    tracing::warn!(?owner, "cannot record: {e}");
                    self.rec.slots.remove(&slot);
                    self.rec.closing.remove(&slot);
                    if let Some(r) = owner.and_then(|id| self.rec.calls.get_mut(&id)) {
                        r.active = None;
                        r.files.pop();
                    }
                }
            }
        }
        while let Ok(f) = handle.finished().try_recv() {
            self.rec.slots.remove(&f.slot);
            let Some(cl) = self.rec.closing.remove(&f.slot) else {
                self.vm_finished(&f);
                continue;
            };
            if let Some(e) = &f.error {
                tracing::warn!(call = cl.call, file = %f.path.display(), "recording: {e}");
            }
            let row = RecordingRecord {
                call_id: cl.call,
                agent: cl.agent,
                caller: cl.caller,
                called: cl.called,
                queue: cl.queue,
                start_ms: cl.start_ms,
                duration_ms: (f.frames * 1000 / 8000) as i64,
                file: f.path.display().to_string(),
                channels: if self.rec.mono { 1 } else { 2 },
            };
            self.publish(super::events::EventBody::Recording(row));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_codes_and_file_names() {
        assert_eq!(FeatureCode::parse("*61"), Some(FeatureCode::Start));
        assert_eq!(FeatureCode::parse("*62"), Some(FeatureCode::Stop));
        assert_eq!(FeatureCode::parse("*63"), Some(FeatureCode::Pause));
        assert_eq!(FeatureCode::parse("*64"), Some(FeatureCode::Resume));
        assert_eq!(FeatureCode::parse("*21"), None);
        // 2026-11-23 08:01:02.345 UTC
        let ms = crate::store::time::days_from_civil(2026, 11, 23) * 86_400_000 + 28_862_345;
        assert_eq!(date_parts(ms), ("2026/11/23".to_string(), "20261123T080102".to_string()));
    }
}
