//! ISDN PRI trunks: one [`PriEndpoint`] (LAPD + Q.931) per span of a PRI trunk group, its
//! D-channel frames through the HAL, and its calls tied to the call control's calls.
//!
//! A PRI call is a [`Call`](super::Call) whose trunk leg is a bearer channel
//! ([`LineKind::Bchan`]). The Q.931 call lives on in the stack until it is released, so the
//! bearer stays unavailable (`Line::q931`) until RELEASE COMPLETE even when the call control
//! has already forgotten the call.

use super::{CallId, CallState, Direction, LineKind, Pbx};
use crate::config::model::TrunkHunt;
use crate::engine::api::{Detectors, EngineCommand, Source};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{Alarms, ChannelId, HalCommand, HdlcFrame, SpanId, Tick};
use cardpbx_signalling::lapd::LinkState;
use cardpbx_signalling::pri::{PriEndpoint, PriOutput};
use cardpbx_signalling::q931::call::{CallEvent, CallHandle, CallParams, Side};
use cardpbx_signalling::q931::Cause;
use std::collections::{BTreeMap, HashMap};

/// Alarms that take a span's physical layer (and so its D-channel and bearers) down.
pub(super) fn span_down_alarms() -> Alarms {
    Alarms::LOS.union(Alarms::LOF).union(Alarms::AIS).union(Alarms::RAI).union(Alarms::NOT_OPEN)
}

/// One PRI span in service.
pub(super) struct PriSpan {
    pub(super) span: SpanId,
    pub(super) dchan: ChannelId,
    pub(super) group: usize,
    pub(super) ep: PriEndpoint,
    /// Bearer timeslot → channel, for the timeslots the trunk group uses.
    pub(super) bchans: BTreeMap<u8, ChannelId>,
    /// Q.931 calls → call control calls.
    pub(super) calls: HashMap<CallHandle, CallId>,
    pub(super) frames_in: u64,
    pub(super) frames_out: u64,
    pub(super) mdl_errors: u64,
}

/// A PRI span's D-channel and calls, for `span show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PriSpanInfo {
    /// `user` or `network`.
    pub side: &'static str,
    /// Data link state (`multiple_frame_established`, `awaiting_establishment`, ...).
    pub link: String,
    /// The data link is up.
    pub link_up: bool,
    /// Times the data link came up and went down.
    pub link_ups: u64,
    /// Times the data link went down.
    pub link_downs: u64,
    /// D-channel frames received and sent.
    pub frames_in: u64,
    /// D-channel frames sent.
    pub frames_out: u64,
    /// Q.921 management errors seen.
    pub mdl_errors: u64,
    /// Bearer channels configured for calls.
    pub bearers: u32,
    /// Bearers with a Q.931 call.
    pub bearers_in_use: u32,
}

impl Pbx {
    /// The PRI span index serving `span`, if it is one.
    fn pri_index(&self, span: SpanId) -> Option<usize> {
        self.pri.iter().position(|p| p.span == span)
    }

    /// D-channel and call state of a PRI span.
    pub fn pri_span_info(&self, span: SpanId) -> Option<PriSpanInfo> {
        let p = &self.pri[self.pri_index(span)?];
        let snap = p.ep.link_snapshot();
        let (ups, downs) = p.ep.link_transitions();
        Some(PriSpanInfo {
            side: match p.ep.side() {
                Side::User => "user",
                Side::Network => "network",
            },
            link: link_state_name(snap.state).into(),
            link_up: p.ep.link_is_up(),
            link_ups: ups,
            link_downs: downs,
            frames_in: p.frames_in,
            frames_out: p.frames_out,
            mdl_errors: p.mdl_errors,
            bearers: p.bchans.len() as u32,
            bearers_in_use: p
                .bchans
                .keys()
                .filter(|ts| p.ep.q931().channel_owner(**ts).is_some())
                .count() as u32,
        })
    }

    /// A D-channel frame arrived.
    pub(super) fn pri_frame(&mut self, chan: ChannelId, frame: &HdlcFrame) {
        let Some(i) = self.pri.iter().position(|p| p.dchan == chan) else { return };
        let now = self.now;
        let p = &mut self.pri[i];
        p.frames_in += 1;
        p.ep.receive_frame(now, frame.as_bytes());
        self.pri_drain(i);
    }

    /// A span's alarms changed: its D-channel and bearers go out of or back into service.
    pub(super) fn pri_alarm(&mut self, span: SpanId, alarms: Alarms) {
        let Some(i) = self.pri_index(span) else { return };
        let now = self.now;
        let down = !alarms.without(span_down_alarms()).eq(&alarms);
        if down {
            // The bearers are gone with the line: clear their calls now (Q.931 clears its
            // side by its own timers once the link is back or T309 runs out).
            let legs: Vec<ChannelId> = self.pri[i].bchans.values().copied().collect();
            for leg in legs {
                if self.lines[leg.index()].call.is_some() {
                    self.leg_gone(leg);
                }
            }
            self.pri[i].ep.physical_down(now);
        } else {
            self.pri[i].ep.physical_up(now);
        }
        self.pri_drain(i);
    }

    /// Earliest PRI timer.
    pub(super) fn pri_timeout(&self) -> Option<Tick> {
        self.pri.iter().filter_map(|p| p.ep.next_timeout()).min()
    }

    /// Run the PRI timers due at `now`.
    pub(super) fn pri_poll(&mut self, now: Tick) {
        for i in 0..self.pri.len() {
            if self.pri[i].ep.next_timeout().is_some_and(|t| t <= now) {
                self.pri[i].ep.poll(now);
            }
            self.pri_drain(i);
        }
    }

    /// Hand out what span `i`'s stack produced: frames to the card, events to call control.
    pub(super) fn pri_drain(&mut self, i: usize) {
        while let Some(o) = self.pri[i].ep.poll_output() {
            match o {
                PriOutput::Frame(f) => {
                    let p = &mut self.pri[i];
                    p.frames_out += 1;
                    match HdlcFrame::new(&f) {
                        Some(frame) => {
                            let dchan = p.dchan;
                            self.cmd(EngineCommand::Hal(HalCommand::SendHdlc(dchan, frame)));
                        }
                        None => {
                            tracing::warn!(span = %p.span, len = f.len(), "D-channel frame too long; dropped")
                        }
                    }
                }
                PriOutput::Event(e) => self.pri_event(i, e),
                PriOutput::LinkUp => tracing::info!(span = %self.pri[i].span, "PRI D-channel up"),
                PriOutput::LinkDown => {
                    tracing::warn!(span = %self.pri[i].span, "PRI D-channel down")
                }
                PriOutput::Mdl(e) => {
                    self.pri[i].mdl_errors += 1;
                    tracing::debug!(span = %self.pri[i].span, error = %e, "Q.921 error");
                }
            }
        }
    }

    fn pri_call(&mut self, i: usize, h: CallHandle) -> Option<(CallId, ChannelId)> {
        let id = *self.pri[i].calls.get(&h)?;
        let ts = self.pri[i].ep.q931().call_channel(h)?;
        let chan = *self.pri[i].bchans.get(&ts)?;
        Some((id, chan))
    }

    fn pri_event(&mut self, i: usize, e: CallEvent) {
        match e {
            CallEvent::Incoming { call, channel, called, calling, .. } => {
                self.pri_incoming(i, call, channel, called, calling)
            }
            CallEvent::Alerting { call, inband, .. } | CallEvent::Progress { call, inband } => {
                let Some((id, b)) = self.pri_call(i, call) else { return };
                let Some(c) = self.calls.get_mut(&id) else { return };
                if c.direction != Direction::Outbound || c.state != CallState::Outdialing {
                    return;
                }
                c.heard_ringback = true;
                let a = c.a;
                if inband {
                    // The network plays its own ringback or announcement: let the caller hear it.
                    self.set_source(a, Source::Channel(b));
                } else if !matches!(self.sources[a.index()].0, Source::Channel(_)) {
                    self.tone(a, ProgressTone::Ringback);
                }
            }
            CallEvent::Connected { call, .. } => {
                let Some((id, b)) = self.pri_call(i, call) else { return };
                let now = self.now;
                let Some(c) = self.calls.get_mut(&id) else { return };
                if c.state != CallState::Outdialing {
                    return;
                }
                c.state = CallState::Connected;
                c.answered = Some(now);
                let a = c.a;
                self.bridge(a, b);
            }
            CallEvent::Disconnected { call, cause } => self.pri_far_cleared(i, call, cause),
            CallEvent::Released { call, cause } => {
                self.pri_far_cleared(i, call, cause);
                self.pri[i].calls.remove(&call);
                for chan in self.pri[i].bchans.values() {
                    let l = &mut self.lines[chan.index()];
                    if l.q931 == Some(call) {
                        l.q931 = None;
                    }
                }
            }
            CallEvent::RestartReceived { channel } => {
                tracing::info!(span = %self.pri[i].span, ?channel, "far end restarted channels")
            }
            CallEvent::RestartDone { channel, acknowledged } => {
                tracing::info!(span = %self.pri[i].span, ?channel, acknowledged, "restart done")
            }
            _ => {}
        }
    }

    /// The far end cleared (or the stack gave up on) a call: clear ours.
    fn pri_far_cleared(&mut self, i: usize, h: CallHandle, cause: Cause) {
        let Some(&id) = self.pri[i].calls.get(&h) else { return };
        let Some(c) = self.calls.get(&id) else { return };
        let Some(b) = [Some(c.a), c.b].into_iter().flatten().find(|l| {
            matches!(self.lines[l.index()].kind, LineKind::Bchan { .. })
                && self.lines[l.index()].q931 == Some(h)
        }) else {
            return;
        };
        if c.direction == Direction::Outbound && c.answered.is_none() && c.b == Some(b) {
            // Not answered: the caller hears why.
            let tone = if cause == Cause::USER_BUSY {
                ProgressTone::Busy
            } else {
                ProgressTone::Congestion
            };
            if cause == Cause::USER_BUSY {
                self.counters.calls_busy += 1;
            }
            self.lines[b.index()].call = None;
            if let Some(c) = self.calls.get_mut(&id) {
                c.b = None;
            }
            self.fail(id, tone, "the network cleared the call");
            return;
        }
        self.leg_gone(b);
    }

    fn pri_incoming(
        &mut self,
        i: usize,
        call: CallHandle,
        ts: u8,
        called: String,
        calling: Option<String>,
    ) {
        let now = self.now;
        let chan = self.pri[i].bchans.get(&ts).copied();
        let Some(chan) = chan.filter(|c| {
            let l = &self.lines[c.index()];
            l.call.is_none() && l.q931.is_none()
        }) else {
            let _ = self.pri[i]
                .ep
                .call(now, |q, t| q.disconnect(t, call, Cause::REQUESTED_CHANNEL_NOT_AVAILABLE));
            return;
        };
        let id = self.new_call(Direction::Inbound, chan, calling.unwrap_or_default());
        self.lines[chan.index()].q931 = Some(call);
        self.pri[i].calls.insert(call, id);
        let _ = self.pri[i].ep.call(now, |q, t| q.proceeding(t, call));
        // Direct dialling in: a called number that is an extension or hunt group rings it;
        // anything else goes to the trunk group's incoming target.
        let group = self.pri[i].group;
        let target = if self.extensions.contains_key(&called)
            || self.hunt_groups.iter().any(|h| h.number == called)
        {
            Some(called)
        } else {
            self.trunk_groups[group].incoming.clone()
        };
        let Some(target) = target else {
            self.set_to(id, "");
            self.fail(id, ProgressTone::Congestion, "unknown number");
            return;
        };
        self.set_to(id, &target);
        self.dial(id, &target, true);
        if self.calls.get(&id).is_some_and(|c| c.state == CallState::Ringing) {
            let _ = self.pri[i].ep.call(now, |q, t| q.alerting(t, call));
        }
    }

    /// An extension answered an incoming PRI call: CONNECT.
    pub(super) fn pri_answer(&mut self, chan: ChannelId) -> bool {
        let LineKind::Bchan { pri, .. } = self.lines[chan.index()].kind else { return false };
        let Some(h) = self.lines[chan.index()].q931 else { return false };
        let now = self.now;
        let ok = self.pri[pri].ep.call(now, |q, t| q.connect(t, h)).is_ok();
        self.pri_drain(pri);
        ok
    }

    /// Our side clears the Q.931 call on bearer `chan` with `cause`.
    pub(super) fn pri_clear(&mut self, chan: ChannelId, cause: Cause) {
        let LineKind::Bchan { pri, .. } = self.lines[chan.index()].kind else { return };
        let Some(h) = self.lines[chan.index()].q931 else { return };
        let now = self.now;
        // Refused when the stack is already clearing the call: nothing more to do.
        let _ = self.pri[pri].ep.call(now, |q, t| q.disconnect(t, h, cause));
        self.pri_drain(pri);
    }

    /// Place call `id` on PRI trunk group `g`.
    pub(super) fn pri_outbound(&mut self, id: CallId, g: usize, number: String) {
        let now = self.now;
        let n = self.trunk_groups[g].lines.len();
        let order: Vec<ChannelId> = {
            let tg = &self.trunk_groups[g];
            match tg.hunt {
                TrunkHunt::Ascending => tg.lines.clone(),
                TrunkHunt::Descending => tg.lines.iter().rev().copied().collect(),
                TrunkHunt::RoundRobin => {
                    tg.lines.iter().cycle().skip(tg.next % n.max(1)).take(n).copied().collect()
                }
            }
        };
        let from = self.calls.get(&id).map(|c| c.from.clone()).unwrap_or_default();
        let calling =
            (!from.is_empty() && from.bytes().all(|b| b.is_ascii_digit())).then_some(from);
        let restricted = self.trunk_groups[g].restricted;
        let mut placed = None;
        for chan in order {
            let l = &self.lines[chan.index()];
            let LineKind::Bchan { pri, ts } = l.kind else { continue };
            if l.call.is_some() || l.q931.is_some() {
                continue;
            }
            let p = &mut self.pri[pri];
            if !p.ep.link_is_up()
                || p.ep.q931().channel_owner(ts).is_some()
                || p.ep.q931().channel_restarting(ts)
            {
                continue;
            }
            let params = CallParams {
                called: number.clone(),
                calling: calling.clone(),
                channel: Some(ts),
                // The network side assigns the channel; the user side only prefers one.
                exclusive: p.ep.side() == Side::Network,
                calling_restricted: restricted,
            };
            match p.ep.call(now, |q, t| q.setup(t, params)) {
                Ok(h) => {
                    p.calls.insert(h, id);
                    self.lines[chan.index()].q931 = Some(h);
                    placed = Some((chan, pri));
                    break;
                }
                Err(e) => {
                    tracing::debug!(%chan, error = %e, "PRI channel refused; trying the next")
                }
            }
        }
        let Some((trunk, pri)) = placed else {
            self.counters.calls_congested += 1;
            self.fail(id, ProgressTone::Congestion, "no free channel in the trunk group");
            return;
        };
        if let Some(pos) = self.trunk_groups[g].lines.iter().position(|c| *c == trunk) {
            self.trunk_groups[g].next = pos + 1;
        }
        self.lines[trunk.index()].call = Some(id);
        let Some(c) = self.calls.get_mut(&id) else { return };
        c.direction = Direction::Outbound;
        c.state = CallState::Outdialing;
        c.b = Some(trunk);
        let a = c.a;
        self.detect(a, Detectors::NONE);
        self.set_source(a, Source::Silence);
        self.pri_drain(pri);
    }
}

fn link_state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::TeiAssigned => "released",
        LinkState::AwaitingEstablishment => "awaiting_establishment",
        LinkState::AwaitingRelease => "awaiting_release",
        LinkState::MultipleFrameEstablished => "multiple_frame_established",
        LinkState::TimerRecovery => "timer_recovery",
    }
}

/// The PRI span behind port `p` (`card/spanN`) of trunk group `g` (index `gi`); its stack is
/// the `index`-th PRI span.
pub(super) fn build_span(
    card: &cardpbx_hal::CardInfo,
    p: &crate::config::model::PortRef,
    g: &crate::config::model::TrunkGroupConfig,
    gi: usize,
    _index: usize,
) -> Result<PriSpan, super::PbxError> {
    use crate::config::model::TrunkSignalling;
    use cardpbx_hal::SigKind;
    let bad = |problem: String| super::PbxError::Port { port: p.to_string(), problem };
    let span = SpanId(p.index);
    if !card.spans.iter().any(|s| s.id == span) {
        return Err(bad(format!("trunk group {}: the card has no such span", g.name)));
    }
    let on_span = |c: &&cardpbx_hal::ChannelInfo| c.span == Some(span);
    let dchan = card
        .channels
        .iter()
        .filter(on_span)
        .find(|c| c.sig == SigKind::DChannel)
        .map(|c| c.id)
        .ok_or_else(|| bad(format!("trunk group {}: the span has no D-channel", g.name)))?;
    let wanted: Vec<u8> = match &g.channels {
        Some(r) => r.0.clone(),
        None => (1..=31).filter(|ts| *ts != 16).collect(),
    };
    let mut bchans = BTreeMap::new();
    for ts in &wanted {
        let chan = card
            .channels
            .iter()
            .filter(on_span)
            .find(|c| c.timeslot == Some(*ts) && c.sig == SigKind::CcsBearer)
            .ok_or_else(|| {
                bad(format!("trunk group {}: timeslot {ts} is not a bearer channel", g.name))
            })?;
        bchans.insert(*ts, chan.id);
    }
    let side = if g.signalling == TrunkSignalling::PriNet { Side::Network } else { Side::User };
    let mut pc = cardpbx_signalling::pri::PriConfig::new(side);
    pc.q931.channels = wanted;
    Ok(PriSpan {
        span,
        dchan,
        group: gi,
        ep: PriEndpoint::new(pc),
        bchans,
        calls: HashMap::new(),
        frames_in: 0,
        frames_out: 0,
        mdl_errors: 0,
    })
}
