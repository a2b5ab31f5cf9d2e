//! Call control steps shared by the trunk kinds (FXO, PRI, R2): hunting a line, taking an
//! outgoing call onto a seized line, routing an incoming call by its called number, and a far
//! end refusing an outgoing call.

use super::{CallId, CallState, Direction, Pbx};
use crate::config::model::TrunkHunt;
use crate::engine::api::{Detectors, Source};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::ChannelId;

/// The next DTMF digits of `digits` (up to four, the most one tone source holds) as one tone:
/// each digit `on_ms` at `level_dbm0` per frequency, then `off_ms` of silence. `None` when no
/// digit is left (characters that are not DTMF keys are dropped).
pub(super) fn dtmf_burst(
    digits: &mut std::collections::VecDeque<char>,
    on_ms: u32,
    off_ms: u32,
    level_dbm0: f32,
) -> Option<cardpbx_dsp::tone::ToneSpec> {
    use cardpbx_dsp::tone::{Segment, ToneSpec};
    let mut segs = [Segment::default(); 8];
    let mut n = 0;
    while n < segs.len() {
        let Some(d) = digits.pop_front() else { break };
        let Some((lo, hi)) = cardpbx_dsp::dtmf::key_freqs(d) else { continue };
        segs[n] = Segment { ms: on_ms, freqs: [lo, hi], level_dbm0 };
        segs[n + 1] = Segment::silence(off_ms);
        n += 2;
    }
    (n > 0).then(|| ToneSpec::new(&segs[..n], false).expect("DTMF segments are valid"))
}

impl Pbx {
    /// Seize the first idle FXO line of trunk group `g` in hunt order, if any.
    pub(super) fn seize_fxo_line(&mut self, g: usize) -> Option<ChannelId> {
        use super::LineKind;
        use cardpbx_signalling::loopstart::FxoState;
        let now = self.now;
        for chan in self.hunt_order(g) {
            let l = &mut self.lines[chan.index()];
            if l.call.is_some() {
                continue;
            }
            if let LineKind::Fxo { line, .. } = &mut l.kind {
                if line.state() == FxoState::Idle && line.seize(now).is_ok() {
                    return Some(chan);
                }
            }
        }
        None
    }

    /// The lines of trunk group `g` in the order its hunting tries them.
    pub(super) fn hunt_order(&self, g: usize) -> Vec<ChannelId> {
        let tg = &self.trunk_groups[g];
        let n = tg.lines.len();
        match tg.hunt {
            TrunkHunt::Ascending => tg.lines.clone(),
            TrunkHunt::Descending => tg.lines.iter().rev().copied().collect(),
            TrunkHunt::RoundRobin => {
                tg.lines.iter().cycle().skip(tg.next % n.max(1)).take(n).copied().collect()
            }
        }
    }

    /// Call `id` goes out on line `trunk` of group `g` (seized, the number on its way): the
    /// group's round robin moves on and the caller hears silence until the far end reacts.
    pub(super) fn outdialing_on(&mut self, id: CallId, g: usize, trunk: ChannelId) {
        if let Some(pos) = self.trunk_groups[g].lines.iter().position(|c| *c == trunk) {
            self.trunk_groups[g].next = pos + 1;
        }
        self.lines[trunk.index()].call = Some(id);
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.direction = Direction::Outbound;
        c.set_state(CallState::Outdialing);
        c.b = Some(trunk);
        let a = c.a;
        self.detect(a, Detectors::NONE);
        self.set_source(a, Source::Silence);
    }

    /// Where an incoming call to `called` on trunk group `g` goes: direct dialling in to an
    /// extension or hunt group, otherwise the group's incoming target.
    pub(super) fn did_target(&self, called: &str, g: Option<usize>) -> Option<String> {
        if self.extensions.contains_key(called)
            || self.hunt_groups.iter().any(|h| h.number == called)
            || self.conf_is_room(called)
        {
            Some(called.to_string())
        } else {
            g.and_then(|g| self.trunk_groups[g].incoming.clone())
        }
    }

    /// The far end refused unanswered outgoing call `id` on `trunk` (busy or otherwise): the
    /// trunk leaves the call and the caller hears busy or congestion tone.
    pub(super) fn outbound_refused(&mut self, id: CallId, trunk: ChannelId, busy: bool, why: &str) {
        let tone = if busy { ProgressTone::Busy } else { ProgressTone::Congestion };
        if busy {
            self.counters.calls_busy += 1;
        }
        self.lines[trunk.index()].call = None;
        if let Some(c) = self.calls.get_mut(&id) {
            c.b = None;
        }
        self.fail(id, tone, why);
    }
}
