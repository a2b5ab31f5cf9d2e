//! Phone features of FXS extensions: hold with music, consultation, blind and attended
//! transfer, three-way calling, transfer recall, call pickup, do-not-disturb, and the
//! supervisor's forced transfer of an agent's call.
//!
//! Hook flash (the convention of analog PBXs and Bellcore three-way calling):
//!
//! | When | Flash does |
//! |------|------------|
//! | in a connected call | the other party is held (music on hold), the phone hears dial tone |
//! | dialling, ringing, busy or failed consultation | the consultation is dropped, back to the held party |
//! | answered consultation | three-way conference: the held party joins |
//! | three-way conference | the consulted party is dropped, back to the held party |
//!
//! Hanging up while the consulted extension rings transfers the held party to it (blind: the
//! held party hears ringback); hanging up after it answered, or in a three-way conference,
//! connects the two others (attended). Hanging up with nothing (or nothing valid) dialled rings
//! the phone back (recall) while the held party keeps hearing music; a blind transfer nobody
//! answers within the dialplan's answer timeout recalls too; a recall nobody answers within it
//! clears the call. The held party hearing up ends the held call; a consultation goes on as a
//! plain call. A consultation that fails (busy, unknown number, no digit) returns to the held
//! party after [`RETURN_AFTER_FAIL_MS`] of the failure tone.
//!
//! Feature codes, dialled from dial tone (also after a flash):
//!
//! | Code | Does |
//! |------|------|
//! | `*8` | pick up a call ringing an extension of the same `pickup_group` |
//! | `**<ext>` | pick up a call ringing extension `<ext>` (directed pickup) |
//! | `*78` | do-not-disturb on: direct calls and hunt groups find the extension busy |
//! | `*79` | do-not-disturb off |
//!
//! A transferred call keeps its call id and call data (ANI, DNIS, IVR digits, queue, agent);
//! its CDR counts the transfers and names the last extension, and every transfer is published
//! as [`EventBody::CallTransferred`]. An agent who transfers an ACD call (or whose call a
//! supervisor transfers with `*35<agent>*<destination>#`, see `cc_supervise.rs`) goes to
//! wrap-up as when the call ends.

use super::cc::Mode;
use super::events::{EventBody, TransferKind};
use super::{CallId, CallState, CallTimer, Direction, LineKind, Pbx};
use crate::config::callcenter_routing::Destination;
use crate::config::model::Config;
use crate::engine::api::{Detectors, Source};
use cardpbx_dsp::tone::{Segment, ToneSpec};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{ChannelId, Tick};
use cardpbx_signalling::loopstart::FxsState;
use std::collections::{HashMap, HashSet};

/// A failed consultation's tone plays this long before the phone is back with the held party.
pub(super) const RETURN_AFTER_FAIL_MS: u64 = 2000;

/// A held call and the consultation its flasher makes meanwhile.
#[derive(Debug, Clone)]
struct Hold {
    /// The call on hold (the flasher's phone is still one of its legs).
    held_call: CallId,
    /// The held party's channel.
    held: ChannelId,
    /// The consultation call the flasher's phone is in.
    consult: CallId,
    /// Three-way conference with the held and the consulted party.
    three_way: bool,
    /// The consultation failed: back to the held party at this tick.
    return_at: Option<Tick>,
    /// The flasher's detectors before the flash (recording codes may listen for DTMF).
    detectors: Detectors,
}

/// A blind transfer ringing its target.
#[derive(Debug, Clone, Copy)]
struct Blind {
    /// The phone that transferred (recalled when nobody answers).
    flasher: ChannelId,
    /// The flasher was the call's `a` leg (the target takes that place on answer).
    slot_a: bool,
    /// Recall when nobody answered by then.
    until: Tick,
}

/// Phone feature state of call control.
#[derive(Debug, Default)]
pub(super) struct PhoneFeat {
    /// Holds by the flashing phone.
    holds: HashMap<ChannelId, Hold>,
    /// Blind transfers ringing, by call.
    blind: HashMap<CallId, Blind>,
    /// Recalls ringing the phone that held or transferred, by call: (phone, give up at).
    recalls: HashMap<CallId, (ChannelId, Tick)>,
    /// Extensions with do-not-disturb on.
    dnd: HashSet<String>,
    /// Pickup group of each extension that has one.
    pickup: HashMap<String, String>,
    /// Transfers of live calls, `from>to` extension numbers, for the CDR.
    transfers: HashMap<CallId, Vec<String>>,
}

impl PhoneFeat {
    /// Phone features for the extensions of `cfg`.
    pub(super) fn new(cfg: &Config) -> PhoneFeat {
        let pickup = cfg
            .extensions
            .iter()
            .filter_map(|e| e.pickup_group.clone().map(|g| (e.number.clone(), g)))
            .collect();
        PhoneFeat { pickup, ..PhoneFeat::default() }
    }
}

/// What dialled digits mean as a phone feature code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Code {
    /// Not a phone feature code.
    No,
    /// Not complete yet.
    Incomplete,
    /// Group pickup.
    Pickup,
    /// Directed pickup of this extension.
    PickupOf(String),
    /// Do-not-disturb on or off.
    Dnd(bool),
    /// A feature code that cannot be right.
    Invalid,
}

/// Parse `digits`; `complete` when no more will come; `is_ext_prefix` says whether some
/// extension number starts with a string, `is_ext` whether it is one.
fn parse(
    digits: &str,
    complete: bool,
    is_ext: impl Fn(&str) -> bool,
    is_ext_prefix: impl Fn(&str) -> bool,
) -> Code {
    let more = if complete { Code::Invalid } else { Code::Incomplete };
    match digits {
        "*" | "*7" => return more,
        "*8" => return Code::Pickup,
        "*78" => return Code::Dnd(true),
        "*79" => return Code::Dnd(false),
        _ => {}
    }
    let Some(ext) = digits.strip_prefix("**") else { return Code::No };
    if is_ext(ext) {
        Code::PickupOf(ext.to_string())
    } else if !complete && is_ext_prefix(ext) {
        Code::Incomplete
    } else {
        Code::Invalid
    }
}

/// The tone a held party hears when no music on hold is configured: a short 425 Hz beep
/// every 4 s.
pub(super) fn held_tone() -> ToneSpec {
    let beep = Segment { ms: 250, freqs: [425.0, 0.0], level_dbm0: -17.0 };
    ToneSpec::new(&[beep, Segment::silence(3750)], true).expect("a valid tone")
}

impl Pbx {
    /// The phone feature timers' next deadline.
    pub(super) fn pf_timeout(&self) -> Option<Tick> {
        let holds = self.pf.holds.values().filter_map(|h| h.return_at);
        let blind = self.pf.blind.values().map(|b| b.until);
        let recalls = self.pf.recalls.values().map(|r| r.1);
        holds.chain(blind).chain(recalls).min()
    }

    /// Run the phone feature timers due at `now`.
    pub(super) fn pf_poll(&mut self, now: Tick) {
        let back: Vec<ChannelId> = (self.pf.holds.iter())
            .filter(|(_, h)| h.return_at.is_some_and(|t| t <= now))
            .map(|(f, _)| *f)
            .collect();
        for f in back {
            tracing::debug!(phone = %f, "consultation failed: back to the held party");
            self.pf_retrieve(f, "consultation failed");
        }
        let blind: Vec<CallId> =
            (self.pf.blind.iter()).filter(|(_, b)| b.until <= now).map(|(id, _)| *id).collect();
        for id in blind {
            self.pf_blind_unanswered(id);
        }
        let recalls: Vec<(CallId, ChannelId)> = (self.pf.recalls.iter())
            .filter(|(_, r)| r.1 <= now)
            .map(|(id, r)| (*id, r.0))
            .collect();
        for (id, phone) in recalls {
            self.pf.recalls.remove(&id);
            let held = self.calls.get(&id).map(|c| if c.a == phone { c.b } else { Some(c.a) });
            tracing::info!(call = id, "transfer recall not answered: clearing the call");
            self.cdr.note(id, "recall not answered");
            if let Some(Some(held)) = held {
                self.pf_clear_by(held);
            }
        }
    }

    /// What a held party hears: its queue's music on hold, else [`held_tone`].
    fn pf_moh(&self, id: CallId) -> Source {
        let prompt = (self.cc.calls.get(&id).and_then(|cc| cc.queue))
            .and_then(|q| self.cc.acd.music_on_hold(q))
            .and_then(|p| self.cc.prompt(p));
        match prompt {
            Some(prompt) => Source::Prompt { prompt, repeat: true },
            None => Source::Tone(held_tone()),
        }
    }

    /// Extension number of a phone, or its port name.
    fn pf_ext(&self, chan: ChannelId) -> String {
        self.number_of(chan)
    }

    /// Whether do-not-disturb is on for the extension on `chan`.
    pub(super) fn pf_dnd(&self, chan: ChannelId) -> bool {
        match &self.lines[chan.index()].kind {
            LineKind::Fxs { number, .. } => self.pf.dnd.contains(number),
            _ => false,
        }
    }

    /// Whether do-not-disturb is on for extension `number`.
    pub fn dnd(&self, number: &str) -> bool {
        self.pf.dnd.contains(number)
    }

    /// A hook flash on phone `chan`.
    pub(super) fn pf_flash(&mut self, chan: ChannelId) {
        if let Some(h) = self.pf.holds.get(&chan).cloned() {
            let consult = self.calls.get(&h.consult).map(|c| (c.state, c.b));
            match consult {
                Some((CallState::Connected, Some(t))) if !h.three_way => {
                    self.pf_three_way(chan, &h, t)
                }
                _ => self.pf_retrieve(chan, "consultation cancelled"),
            }
            return;
        }
        let Some(id) = self.lines[chan.index()].call else {
            tracing::debug!(%chan, "hook flash on an idle line: ignored");
            return;
        };
        let Some(c) = self.calls.get(&id) else { return };
        let other = match c.b {
            Some(b) if c.a == chan => b,
            Some(b) if b == chan => c.a,
            _ => {
                tracing::debug!(%chan, call = id, "hook flash outside a connected call: ignored");
                return;
            }
        };
        if c.state != CallState::Connected {
            tracing::debug!(%chan, call = id, "hook flash: the call cannot be held now");
            return;
        }
        // Hold: the other party hears music; the phone gets dial tone for a consultation.
        let moh = self.pf_moh(id);
        self.set_source(other, moh);
        let detectors = self.sources[chan.index()].1;
        let port = self.lines[chan.index()].port.clone();
        self.publish(EventBody::CallHeld { call: id, line: port });
        let from = self.number_of(chan);
        let consult = self.new_call(Direction::Internal, chan, from.clone());
        let due = self.now + self.first_digit_ms;
        if let Some(c) = self.calls.get_mut(&consult) {
            c.timer = Some((due, CallTimer::FirstDigit));
            c.name = self.extension_names.get(&from).cloned();
        }
        self.tone(chan, ProgressTone::Dial);
        self.detect(chan, Detectors::DTMF);
        let hold = Hold {
            held_call: id,
            held: other,
            consult,
            three_way: false,
            return_at: None,
            detectors,
        };
        tracing::debug!(call = id, consult, phone = %chan, "call held; consultation");
        self.pf.holds.insert(chan, hold);
    }

    /// Back to the held party: the consultation (if any) is dropped.
    fn pf_retrieve(&mut self, f: ChannelId, why: &str) {
        let Some(h) = self.pf.holds.remove(&f) else { return };
        self.lines[f.index()].call = Some(h.held_call);
        self.lines[f.index()].orphaned = false;
        self.pf_end_consult(h.consult, f, why);
        if !self.calls.contains_key(&h.held_call) {
            self.lines[f.index()].call = None;
            return;
        }
        if h.three_way {
            self.pf_rebridge(h.held, f);
        } else {
            self.bridge(h.held, f);
        }
        self.detect(f, h.detectors);
        let port = self.lines[f.index()].port.clone();
        self.publish(EventBody::CallRetrieved { call: h.held_call, line: port });
    }

    /// Bridge `a` and `b` after a three-way mix or a transfer: their echo cancellers start
    /// afresh (one adapted to a mix diverges on the plain path).
    fn pf_rebridge(&mut self, a: ChannelId, b: ChannelId) {
        for leg in [a, b] {
            self.echo(leg, false);
        }
        self.bridge(a, b);
    }

    /// End consultation `id` of phone `f`, whose line is already back in the held call.
    fn pf_end_consult(&mut self, id: CallId, f: ChannelId, why: &str) {
        let Some(c) = self.calls.get(&id) else { return };
        self.cdr.note(id, why);
        // A leg still in the consultation goes away as if it hung up (a called phone still
        // off-hook hears busy tone); otherwise the call is dropped without touching `f`.
        let leg = std::iter::once(c.a)
            .chain(c.b)
            .chain(c.ringing.iter().copied())
            .find(|l| *l != f && self.lines[l.index()].call == Some(id));
        let Some(l) = leg else {
            self.pf_drop_call(id);
            return;
        };
        self.pf_clear_by(l);
    }

    /// Clear the call of leg `l` from that leg: a phone still off-hook hears busy tone until
    /// it hangs up.
    fn pf_clear_by(&mut self, l: ChannelId) {
        self.leg_gone(l);
        let off_hook = matches!(&self.lines[l.index()].kind,
            LineKind::Fxs { line, .. } if line.state() == FxsState::OffHook);
        if off_hook && self.lines[l.index()].call.is_none() {
            self.lines[l.index()].orphaned = true;
            self.tone(l, ProgressTone::Busy);
        }
    }

    /// Remove call `id` and write its record, leaving its legs' lines alone.
    fn pf_drop_call(&mut self, id: CallId) {
        let Some(mut c) = self.calls.remove(&id) else { return };
        let a = c.a;
        self.stop_ringing(&c.ringing);
        for r in &c.ringing {
            if self.lines[r.index()].call == Some(id) {
                self.lines[r.index()].call = None;
            }
        }
        self.cdr_call_ended(&mut c, a);
        self.cc_call_gone(&c, a);
    }

    /// Flash in an answered consultation: the held party joins a three-way conference.
    fn pf_three_way(&mut self, f: ChannelId, h: &Hold, t: ChannelId) {
        let o = h.held;
        self.set_source(o, Source::Mix([Some(f), Some(t), None, None]));
        self.set_source(f, Source::Mix([Some(o), Some(t), None, None]));
        self.set_source(t, Source::Mix([Some(o), Some(f), None, None]));
        for leg in [o, f, t] {
            self.echo(leg, true);
        }
        if let Some(h) = self.pf.holds.get_mut(&f) {
            h.three_way = true;
        }
        let port = self.lines[f.index()].port.clone();
        self.publish(EventBody::ThreeWay { call: h.held_call, consult: h.consult, line: port });
        tracing::debug!(call = h.held_call, consult = h.consult, "three-way conference");
    }

    /// Phone `f` hung up: transfer, or recall. True when the hang-up was handled here.
    pub(super) fn pf_hangup(&mut self, f: ChannelId) -> bool {
        let Some(h) = self.pf.holds.get(&f).cloned() else { return false };
        if !self.calls.contains_key(&h.held_call) {
            self.pf.holds.remove(&f);
            return false;
        }
        let consult = self.calls.get(&h.consult).map(|c| (c.state, c.b, c.ringing.clone()));
        match consult {
            Some((CallState::Connected, Some(t), _)) => self.pf_attended(f, &h, t),
            Some((CallState::Ringing, _, ringing)) if !ringing.is_empty() => {
                self.pf_blind(f, &h, ringing)
            }
            _ => {
                self.pf.holds.remove(&f);
                self.lines[f.index()].call = Some(h.held_call);
                self.pf_end_consult(h.consult, f, "consultation abandoned");
                self.pf_recall(h.held_call, f);
            }
        }
        true
    }

    /// Ring phone `f` back for held call `id` (its held party keeps hearing music).
    fn pf_recall(&mut self, id: CallId, f: ChannelId) {
        let now = self.now;
        self.lines[f.index()].call = Some(id);
        self.set_source(f, Source::Silence);
        self.detect(f, Detectors::NONE);
        self.echo(f, false);
        let rung = match &mut self.lines[f.index()].kind {
            LineKind::Fxs { line, .. } => line.ring(now).is_ok(),
            _ => false,
        };
        let held = self.calls.get(&id).map(|c| if c.a == f { c.b } else { Some(c.a) });
        let Some(Some(held)) = held else { return };
        if !rung {
            tracing::info!(call = id, phone = %f, "recall: the phone cannot ring; clearing");
            self.pf_clear_by(held);
            return;
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.ringing.push(f);
        }
        tracing::debug!(call = id, phone = %f, "recall");
        self.pf.recalls.insert(id, (f, now + self.answer_timeout_ms));
    }

    /// Record a transfer of call `id` from extension `from` to `to` and publish it.
    fn pf_transferred(&mut self, id: CallId, from: ChannelId, to: ChannelId, kind: TransferKind) {
        let path = format!("{}>{}", self.pf_ext(from), self.pf_ext(to));
        self.pf.transfers.entry(id).or_default().push(path);
        let from_line = self.lines[from.index()].port.clone();
        let to_line = self.lines[to.index()].port.clone();
        self.publish(EventBody::CallTransferred { call: id, from_line, to_line, kind });
        self.pf_agent_left(id, from);
    }

    /// The agent on phone `phone` handed ACD call `id` on: the agent's call is over for the
    /// ACD (wrap-up), the call keeps its queue, agent and data for its record.
    fn pf_agent_left(&mut self, id: CallId, phone: ChannelId) {
        let Some(Mode::Agent(agent)) = self.cc.calls.get(&id).map(|cc| cc.mode.clone()) else {
            return;
        };
        let ext = self.cc.acd.agent(agent).and_then(|a| a.extension);
        if ext.as_deref() != Some(self.number_of(phone).as_str()) {
            return;
        }
        if let Some(cc) = self.cc.calls.get_mut(&id) {
            cc.mode = Mode::Other;
        }
        if let Err(e) = self.cc.acd.call_ended(agent, self.now) {
            tracing::debug!(call = id, ?agent, "ACD: end of a transferred call refused: {e}");
        }
    }

    /// `f` hung up in an answered consultation (or three-way): connect held party and target.
    fn pf_attended(&mut self, f: ChannelId, h: &Hold, t: ChannelId) {
        self.pf.holds.remove(&f);
        let x = h.held_call;
        // The consultation's record ends here; its target takes the flasher's place.
        self.lines[t.index()].call = Some(x);
        self.lines[f.index()].call = None;
        self.cdr.note(h.consult, "transferred");
        self.pf_drop_call(h.consult);
        if let Some(c) = self.calls.get_mut(&x) {
            if c.a == f {
                c.a = t;
            } else {
                c.b = Some(t);
            }
        }
        self.pf_idle(f);
        self.pf_rebridge(h.held, t);
        tracing::info!(call = x, from = %f, to = %t, "attended transfer");
        self.pf_transferred(x, f, t, TransferKind::Attended);
    }

    /// A phone left a call for good: silence, no detectors, no echo canceller.
    fn pf_idle(&mut self, f: ChannelId) {
        self.set_source(f, Source::Silence);
        let d = self.idle_detectors(f);
        self.detect(f, d);
        self.echo(f, false);
    }

    /// `f` hung up while the consulted extensions `ringing` ring: they ring for the held call.
    fn pf_blind(&mut self, f: ChannelId, h: &Hold, ringing: Vec<ChannelId>) {
        self.pf.holds.remove(&f);
        let x = h.held_call;
        if let Some(c) = self.calls.get_mut(&h.consult) {
            c.ringing.clear();
            c.hunt = None;
        }
        for r in &ringing {
            self.lines[r.index()].call = Some(x);
        }
        self.lines[f.index()].call = None;
        self.cdr.note(h.consult, "transferred");
        self.pf_drop_call(h.consult);
        let now = self.now;
        let Some(c) = self.calls.get_mut(&x) else { return };
        let slot_a = c.a == f;
        if slot_a {
            c.a = ringing[0];
        } else {
            c.b = None;
        }
        c.ringing = ringing.clone();
        c.set_state(CallState::Ringing);
        c.timer = None;
        self.pf.blind.insert(x, Blind { flasher: f, slot_a, until: now + self.answer_timeout_ms });
        self.pf_idle(f);
        self.tone(h.held, ProgressTone::Ringback);
        tracing::info!(call = x, from = %f, to = %ringing[0], "blind transfer");
        self.pf_transferred(x, f, ringing[0], TransferKind::Blind);
    }

    /// Nobody answered blind-transferred call `id`: ring the phone that transferred it.
    fn pf_blind_unanswered(&mut self, id: CallId) {
        let Some(b) = self.pf.blind.remove(&id) else { return };
        let Some(c) = self.calls.get_mut(&id) else { return };
        let ringing = std::mem::take(&mut c.ringing);
        let held = if b.slot_a {
            c.a = b.flasher;
            c.b
        } else {
            c.b = Some(b.flasher);
            Some(c.a)
        };
        c.set_state(CallState::Connected);
        self.stop_ringing(&ringing);
        for r in ringing {
            if self.lines[r.index()].call == Some(id) {
                self.lines[r.index()].call = None;
            }
        }
        let Some(held) = held else { return };
        if !self.extension_free(b.flasher) {
            tracing::info!(call = id, "blind transfer not answered and no recall: clearing");
            self.cdr.note(id, "transfer not answered");
            self.pf_clear_by(held);
            return;
        }
        let moh = self.pf_moh(id);
        self.set_source(held, moh);
        self.pf_recall(id, b.flasher);
    }

    /// A ringing phone went off-hook: a recall or a blind transfer's target answered. True
    /// when handled here.
    pub(super) fn pf_answered(&mut self, chan: ChannelId) -> bool {
        let Some(id) = self.lines[chan.index()].call else { return false };
        if self.pf.recalls.get(&id).is_some_and(|r| r.0 == chan) {
            self.pf.recalls.remove(&id);
            let Some(c) = self.calls.get_mut(&id) else { return true };
            c.ringing.retain(|r| *r != chan);
            let held = if c.a == chan { c.b } else { Some(c.a) };
            if let Some(held) = held {
                self.bridge(held, chan);
            }
            let port = self.lines[chan.index()].port.clone();
            self.publish(EventBody::CallRetrieved { call: id, line: port });
            return true;
        }
        let Some(b) = self.pf.blind.get(&id).copied() else { return false };
        let Some(c) = self.calls.get_mut(&id) else { return false };
        if !c.ringing.contains(&chan) {
            return false;
        }
        self.pf.blind.remove(&id);
        let others: Vec<ChannelId> = c.ringing.drain(..).filter(|r| *r != chan).collect();
        let held = if b.slot_a {
            c.a = chan;
            c.b
        } else {
            c.b = Some(chan);
            Some(c.a)
        };
        c.set_state(CallState::Connected);
        self.stop_ringing(&others);
        for o in others {
            if self.lines[o.index()].call == Some(id) {
                self.lines[o.index()].call = None;
            }
        }
        if let Some(held) = held {
            self.bridge(held, chan);
        }
        true
    }

    /// Call `c` ended: forget its holds, transfers in progress and recalls. A held call's
    /// flasher goes on with the consultation (a three-way's two others talk on); a
    /// consultation's flasher is back with the held party.
    pub(super) fn pf_call_gone(&mut self, c: &super::Call) {
        let id = c.id;
        self.pf.blind.remove(&id);
        self.pf.recalls.remove(&id);
        let holds: Vec<(ChannelId, Hold)> = (self.pf.holds.iter())
            .filter(|(_, h)| h.held_call == id || h.consult == id)
            .map(|(f, h)| (*f, h.clone()))
            .collect();
        for (f, h) in holds {
            self.pf.holds.remove(&f);
            if h.held_call == id {
                let legs = self.calls.get(&h.consult).and_then(|k| Some((k.a, k.b?)));
                if let (true, Some((a, b))) = (h.three_way, legs) {
                    self.pf_rebridge(a, b);
                }
                continue;
            }
            // The consultation ended (the consulted party hung up): back to the held party.
            self.lines[f.index()].call = Some(h.held_call);
            if self.calls.contains_key(&h.held_call) {
                self.bridge(h.held, f);
                self.detect(f, h.detectors);
                let port = self.lines[f.index()].port.clone();
                self.publish(EventBody::CallRetrieved { call: h.held_call, line: port });
            }
        }
    }

    /// A leg of call `id` that went on to another call (a held call's flasher) is left alone
    /// when `id` ends.
    pub(super) fn pf_keeps_leg(&self, id: CallId, leg: ChannelId) -> bool {
        self.lines[leg.index()].call.is_some_and(|other| other != id)
    }

    /// Call `id` failed: a consultation returns to its held party shortly.
    pub(super) fn pf_failed(&mut self, id: CallId) {
        let at = self.now + RETURN_AFTER_FAIL_MS;
        if let Some(h) = self.pf.holds.values_mut().find(|h| h.consult == id) {
            h.return_at = Some(at);
        }
    }

    /// Fill the transfers of call `id` into its CDR.
    pub(super) fn pf_fill_cdr(&mut self, id: CallId, rec: &mut crate::store::CdrRecord) {
        if let Some(t) = self.pf.transfers.remove(&id) {
            rec.transfers = t.len() as u32;
        }
    }

    /// The call data of live call `id` (digits collected in the IVR, by key); it stays with
    /// the call across transfers.
    pub fn call_data(&self, id: CallId) -> Vec<(String, String)> {
        self.cc.calls.get(&id).map(|cc| cc.data.clone()).unwrap_or_default()
    }

    /// The transfers (`from>to` extension numbers) of live call `id` so far.
    pub fn transfers_of(&self, id: CallId) -> Vec<String> {
        self.pf.transfers.get(&id).cloned().unwrap_or_default()
    }

    /// Handle `digits` of call `id` as a phone feature code; true when they are one.
    pub(super) fn pf_dial(&mut self, id: CallId, digits: &str, complete: bool) -> bool {
        let Some(c) = self.calls.get(&id) else { return false };
        if c.direction != Direction::Internal || c.state != CallState::Dialing {
            return false;
        }
        let a = c.a;
        let LineKind::Fxs { number, .. } = &self.lines[a.index()].kind else { return false };
        let ext = number.clone();
        let code = parse(
            digits,
            complete,
            |e| self.extensions.contains_key(e),
            |p| self.extensions.keys().any(|n| n.starts_with(p)),
        );
        let ok = match code {
            Code::No => return false,
            Code::Incomplete => return true,
            Code::Dnd(on) => {
                self.set_to(id, digits);
                let changed =
                    if on { self.pf.dnd.insert(ext.clone()) } else { self.pf.dnd.remove(&ext) };
                if changed {
                    self.publish(EventBody::Dnd { extension: ext.clone(), on });
                }
                tracing::info!(%ext, on, "do-not-disturb");
                true
            }
            Code::Pickup => {
                self.set_to(id, "*8");
                let group =
                    self.pf.pickup.get(&ext).filter(|_| !self.pf.holds.contains_key(&a)).cloned();
                let target = group
                    .and_then(|g| self.pf_ringing_phone(a, |n| self.pf.pickup.get(n) == Some(&g)));
                match target {
                    Some(r) => return self.pf_pickup(id, a, r),
                    None => false,
                }
            }
            Code::PickupOf(n) => {
                self.set_to(id, "**");
                let target = if self.pf.holds.contains_key(&a) {
                    None
                } else {
                    self.pf_ringing_phone(a, |e| e == n)
                };
                match target {
                    Some(r) => return self.pf_pickup(id, a, r),
                    None => false,
                }
            }
            Code::Invalid => {
                self.set_to(id, digits.get(..2).unwrap_or(digits));
                false
            }
        };
        if let Some(c) = self.calls.get_mut(&id) {
            c.set_state(CallState::Failed);
            c.timer = None;
        }
        self.detect(a, Detectors::NONE);
        self.pf_failed(id);
        if ok {
            self.cdr.note(id, "phone feature code");
            self.set_source(a, Source::Tone(super::cc_features::confirmation_tone()));
        } else {
            self.cdr.note(id, "phone feature code refused");
            self.tone(a, ProgressTone::Congestion);
        }
        true
    }

    /// The ringing phone (other than `picker`) of the longest-ringing call whose extension
    /// `number_ok` accepts and that a pickup may take (not an ACD call or callback offer).
    fn pf_ringing_phone(
        &self,
        picker: ChannelId,
        number_ok: impl Fn(&str) -> bool,
    ) -> Option<ChannelId> {
        let mut best: Option<(Tick, ChannelId)> = None;
        for (i, l) in self.lines.iter().enumerate() {
            let chan = ChannelId(i as u32);
            let LineKind::Fxs { number, line } = &l.kind else { continue };
            if chan == picker || !number_ok(number) {
                continue;
            }
            let Some(c) = l.call.and_then(|id| self.calls.get(&id)) else { continue };
            let acd = (self.cc.calls.get(&c.id))
                .is_some_and(|cc| matches!(cc.mode, Mode::Queued | Mode::Offer(_)));
            let ringing = c.ringing.contains(&chan)
                && (line.state() == FxsState::Ringing || l.dtmf_cid.is_some());
            if !ringing || acd || self.pf.recalls.contains_key(&c.id) {
                continue;
            }
            if best.is_none_or(|(t, _)| c.started < t) {
                best = Some((c.started, chan));
            }
        }
        best.map(|b| b.1)
    }

    /// Phone `picker` (dialling call `own`) takes the call ringing `rung`.
    fn pf_pickup(&mut self, own: CallId, picker: ChannelId, rung: ChannelId) -> bool {
        let Some(id) = self.lines[rung.index()].call else { return false };
        self.lines[picker.index()].call = Some(id);
        self.cdr.note(own, "call pickup");
        self.pf_drop_call(own);
        self.detect(picker, Detectors::NONE);
        let blind = self.pf.blind.get(&id).copied();
        if let Some(c) = self.calls.get_mut(&id) {
            c.ringing.push(picker);
        }
        tracing::info!(call = id, picker = %picker, rung = %rung, "call pickup");
        let port = self.lines[picker.index()].port.clone();
        self.publish(EventBody::CallPickedUp { call: id, line: port });
        if blind.is_some() {
            // A blind transfer's target is picked up like any ringing call.
            self.pf_answered(picker);
        } else {
            self.answered(picker);
        }
        true
    }

    /// Supervisor's forced transfer: agent phone `agent_phone` leaves call `id`; the caller
    /// `caller` goes to `dest` (a queue number, else an extension or hunt group number). False
    /// (nothing changed) when the destination is unknown or busy.
    pub(super) fn pf_force_transfer(
        &mut self,
        id: CallId,
        caller: ChannelId,
        agent_phone: ChannelId,
        dest: &str,
    ) -> bool {
        let Some(c) = self.calls.get(&id) else { return false };
        if c.a != caller || c.b != Some(agent_phone) {
            return false;
        }
        let target = if self.cc.acd.queue_by_number(dest).is_some() {
            Destination::Queue { queue: dest.to_string(), priority: 0 }
        } else {
            match super::dial::analyse(self, dest, true) {
                super::DialResult::Extension(t) if self.extension_free(t) && !self.pf_dnd(t) => {
                    Destination::Extension(dest.to_string())
                }
                super::DialResult::HuntGroup(_) => Destination::Extension(dest.to_string()),
                _ => return false,
            }
        };
        let path = format!("{}>{}", self.pf_ext(agent_phone), dest);
        self.pf.transfers.entry(id).or_default().push(path);
        let from_line = self.lines[agent_phone.index()].port.clone();
        let to_line = match &target {
            Destination::Extension(n) => self
                .extensions
                .get(n)
                .map_or_else(|| n.clone(), |t| self.lines[t.index()].port.clone()),
            _ => format!("queue:{dest}"),
        };
        self.publish(EventBody::CallTransferred {
            call: id,
            from_line,
            to_line,
            kind: TransferKind::Forced,
        });
        self.pf_agent_left(id, agent_phone);
        if let Some(c) = self.calls.get_mut(&id) {
            c.b = None;
            c.set_state(CallState::Dialing);
            c.timer = None;
        }
        // The agent's phone is out of the call: busy tone until it hangs up.
        let l = &mut self.lines[agent_phone.index()];
        l.call = None;
        l.orphaned = true;
        self.echo(agent_phone, false);
        self.tone(agent_phone, ProgressTone::Busy);
        self.echo(caller, false);
        tracing::info!(call = id, %dest, "forced transfer by a supervisor");
        self.cc_goto(id, target);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(d: &str, complete: bool) -> Code {
        parse(d, complete, |e| e == "2001" || e == "2002", |x| "2001".starts_with(x))
    }

    #[test]
    fn phone_codes_parse() {
        assert_eq!(p("*", false), Code::Incomplete);
        assert_eq!(p("*", true), Code::Invalid);
        assert_eq!(p("*7", false), Code::Incomplete);
        assert_eq!(p("*78", false), Code::Dnd(true));
        assert_eq!(p("*79", false), Code::Dnd(false));
        assert_eq!(p("*8", false), Code::Pickup);
        assert_eq!(p("**", false), Code::Incomplete);
        assert_eq!(p("**20", false), Code::Incomplete);
        assert_eq!(p("**20", true), Code::Invalid);
        assert_eq!(p("**2001", false), Code::PickupOf("2001".into()));
        assert_eq!(p("**9", false), Code::Invalid);
        assert_eq!(p("*21101*1234#", false), Code::No);
        assert_eq!(p("*31101#", false), Code::No);
        assert_eq!(p("*61", false), Code::No);
        assert_eq!(p("2001", false), Code::No);
    }

    #[test]
    fn held_tone_repeats() {
        let t = held_tone();
        assert!(t.repeat);
        assert_eq!(t.period_ms(), 4000);
        assert!(!t.segments()[0].is_silent());
    }
}
