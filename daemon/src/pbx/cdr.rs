//! Call detail records from call control: when a call ends, [`Pbx`] builds a [`CdrRecord`]
//! and queues it; the runner drains the queue ([`Pbx::pop_cdr`]) into the store. Times are
//! UTC from the base the runner sets with [`Pbx::set_utc_base`].
//!
//! Who cleared first and why: a call that call control gave up (busy, unknown number, no
//! answer, no free trunk) is cleared by the system with the reason it failed; otherwise the leg
//! that went away first decides (the calling leg: the caller; the answering or rung leg: the
//! called party).

use super::{Call, CallId, CallState, Direction, LineKind, Pbx};
use crate::store::{CdrRecord, HangupSide};
use cardpbx_hal::{ChannelId, Tick};
use std::collections::{HashMap, VecDeque};

/// Finished records kept when nobody drains them (tests that do not look); older ones are
/// kept, newer ones dropped and counted.
const MAX_QUEUED: usize = 10_000;

/// CDR state kept by call control.
#[derive(Debug, Default)]
pub(super) struct CdrLog {
    /// Finished records, oldest first.
    queue: VecDeque<CdrRecord>,
    /// Records dropped because the queue was full.
    dropped: u64,
    /// Calls the system cleared or failed: side and reason (first one wins).
    notes: HashMap<CallId, (HangupSide, String)>,
    /// The number the caller dialled on the network, for incoming trunk calls that carry it.
    dnis: HashMap<CallId, String>,
}

impl CdrLog {
    /// The call `id` was failed or cleared by call control for `why` (the first reason given
    /// is kept).
    pub(super) fn note(&mut self, id: CallId, why: &str) {
        self.notes.entry(id).or_insert_with(|| (HangupSide::System, why.to_string()));
    }

    /// The network's called number (DNIS) of incoming call `id`.
    pub(super) fn set_dnis(&mut self, id: CallId, dnis: &str) {
        self.dnis.insert(id, dnis.to_string());
    }
}

/// The short cause code for a reason call control gives.
fn cause_code(why: &str) -> &'static str {
    match why {
        "unknown number" => "unallocated_number",
        "no answer" | "no hunt group member answered" => "no_answer",
        "extension busy" | "every hunt group member is busy" | "busy" => "busy",
        "no free line in the trunk group" | "number unobtainable" => "congestion",
        "no digit dialled" => "no_digits",
        "trunk group has no incoming target" => "not_routed",
        "card command failed" | "card gone" => "card_error",
        "agent feature code" | "agent feature code refused" => "feature_code",
        "phone feature code" | "phone feature code refused" | "call pickup" => "feature_code",
        "transferred" => "transferred",
        "recall not answered" | "transfer not answered" => "no_answer",
        "rejected: busy" => "busy",
        _ => "failed",
    }
}

impl Pbx {
    /// The next finished call's record, oldest first.
    pub fn pop_cdr(&mut self) -> Option<CdrRecord> {
        self.cdr.queue.pop_front()
    }

    /// All finished calls' records, oldest first.
    pub fn take_cdrs(&mut self) -> impl Iterator<Item = CdrRecord> + '_ {
        self.cdr.queue.drain(..)
    }

    /// Records lost because nobody drained them (more than 10 000 waiting).
    pub fn cdrs_dropped(&self) -> u64 {
        self.cdr.dropped
    }

    /// The system clears the call on `chan` (a card error): note why for its record.
    pub(super) fn cdr_system_clear(&mut self, chan: ChannelId, why: &str) {
        if let Some(id) = self.lines.get(chan.index()).and_then(|l| l.call) {
            self.cdr.note(id, why);
        }
    }

    /// Call `c` ended because leg `chan` went away: queue its record.
    pub(super) fn cdr_call_ended(&mut self, c: &mut Call, chan: ChannelId) {
        let note = self.cdr.notes.remove(&c.id);
        let dnis = self.cdr.dnis.remove(&c.id);
        // Forget notes of calls long gone (a note is only ever left by a call that ended
        // without passing here, which should not happen; this bounds the maps regardless).
        if self.cdr.notes.len() + self.cdr.dnis.len() > 1000 {
            let calls = &self.calls;
            self.cdr.notes.retain(|id, _| calls.contains_key(id));
            self.cdr.dnis.retain(|id, _| calls.contains_key(id));
        }
        let mut rec = self.build_cdr(c, chan, note, self.now);
        rec.dnis = dnis;
        self.cc_fill_cdr(c.id, &mut rec);
        self.pf_fill_cdr(c.id, &mut rec);
        self.rec_call_ended(c, &mut rec);
        self.publish_call_ended(c, &rec);
        if self.cdr.queue.len() >= MAX_QUEUED {
            self.cdr.dropped += 1;
            return;
        }
        self.cdr.queue.push_back(rec);
    }

    fn build_cdr(
        &self,
        c: &Call,
        chan: ChannelId,
        note: Option<(HangupSide, String)>,
        now: Tick,
    ) -> CdrRecord {
        let ms = |t: Tick| self.utc_ms(t);
        let trunk_leg = match c.direction {
            Direction::Inbound => Some(c.a),
            Direction::Outbound => c.b,
            Direction::Internal => None,
        };
        let trunk_group = trunk_leg
            .and_then(|t| self.trunk_group_of(t))
            .and_then(|g| self.trunk_groups.get(g))
            .map(|g| g.name.clone());
        let extension_leg = match c.direction {
            Direction::Outbound => Some(c.a),
            _ => c.b,
        };
        let extension = extension_leg.and_then(|e| match &self.lines[e.index()].kind {
            LineKind::Fxs { number, .. } => Some(number.clone()),
            _ => None,
        });
        let (side, cause, why) = match note {
            Some((side, why)) => (side, cause_code(&why).to_string(), Some(why)),
            None => {
                let side = if chan == c.a {
                    HangupSide::Caller
                } else if Some(chan) == c.b || c.ringing.contains(&chan) {
                    HangupSide::Called
                } else {
                    HangupSide::System
                };
                let cause = match (c.answered.is_some() || c.state == CallState::Connected, side) {
                    (true, _) => "normal_clearing",
                    (false, HangupSide::Caller) => "caller_abandoned",
                    (false, _) => "no_answer",
                };
                (side, cause.to_string(), None)
            }
        };
        let end = ms(now);
        let answered = c.answered.map(ms);
        CdrRecord {
            call_id: c.id,
            started_ms: ms(c.started),
            answered_ms: answered,
            ended_ms: end,
            direction: crate::json_name(&c.direction),
            caller: c.from.clone(),
            caller_name: c.name.clone(),
            called: c.to.clone(),
            dnis: None,
            trunk_group,
            trunk_port: trunk_leg.map(|t| self.lines[t.index()].port.clone()),
            extension,
            agent: None,
            queue: None,
            wait_ms: answered.unwrap_or(end) - ms(c.started),
            talk_ms: answered.map_or(0, |a| end - a),
            hangup_side: Some(side),
            cause,
            why,
            recording: None,
            ivr_path: None,
            transfers: 0,
            fax: c.fax,
        }
    }
}
