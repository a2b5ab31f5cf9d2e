//! MFC/R2 (China No.1) trunks on E1 CAS spans: one [`R2Channel`] per voice timeslot of an
//! `r2_china` trunk group, its ABCD bits through the HAL (`SetCas` / `CasBits`) and its
//! compelled MF register signalling through the media engine (a continuous two-frequency
//! [`Source::Tone`] per signal, and the engine's MF R2 detector, [`Detectors::mfr2`]).
//!
//! Incoming: the far end seizes, the register collects DNIS and ANI; the call is routed like a
//! PRI call (a DNIS that is an extension or hunt group rings it, anything else goes to the
//! trunk group's incoming target) and accepted with B-1 (B-2 busy, B-5 unknown number, B-4
//! otherwise), the caller hears our ringback, and the answer sends AB 01. Outgoing: a route to
//! the group seizes the first idle timeslot in hunting order and sends the DNIS, the ANI (the
//! caller's number unless the group withholds it) and category 1 when asked; B-1 gives the
//! caller ringback, the answer connects. A channel stays unavailable until its line is idle
//! again, after the call control has forgotten the call.

use super::{CallId, CallState, Direction, Line, LineKind, Pbx};
use crate::config::model::{PortRef, TrunkGroupConfig};
use crate::engine::api::{Detectors, EngineCommand, Source};
use cardpbx_dsp::mfr2::{self, DEFAULT_SEND_DBM0};
use cardpbx_dsp::tone::ToneSpec;
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{Abcd, Alarms, CardInfo, ChannelId, HalCommand, SigKind, SpanId, Tick};
use cardpbx_signalling::r2::{
    BSignal, ClearReason, LineState, MfDirection, R2Action, R2Channel, R2Config, R2Event,
};

/// Category sent on outgoing calls (group II: ordinary subscriber).
const CATEGORY: u8 = 1;

/// One R2 timeslot in service.
pub(super) struct R2Trunk {
    pub(super) chan: ChannelId,
    pub(super) span: SpanId,
    pub(super) ch: R2Channel,
    /// The MF direction the detector listens for.
    listen: Option<MfDirection>,
}

/// An R2 span's channels, for `span show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct R2SpanInfo {
    /// Timeslots configured for calls.
    pub channels: u32,
    /// Channels with a call (seized, answered or clearing).
    pub in_use: u32,
    /// Channels blocked by the far end.
    pub blocked: u32,
}

fn dsp_dir(d: MfDirection) -> mfr2::MfDirection {
    match d {
        MfDirection::Forward => mfr2::MfDirection::Forward,
        MfDirection::Backward => mfr2::MfDirection::Backward,
    }
}

/// The R2 settings of the daemon's channels: OpenR2's defaults (4 DNIS digits, ANI first);
/// the far end has priority on glare.
pub(super) fn r2_config() -> R2Config {
    R2Config::default()
}

/// Put the voice timeslots of span port `p` of R2 trunk group `g` (index `gi`) in service:
/// their lines become [`LineKind::R2`], appended to `trunks` and to the group's `chans`.
pub(super) fn build_span(
    card: &CardInfo,
    p: &PortRef,
    g: &TrunkGroupConfig,
    lines: &mut [Line],
    trunks: &mut Vec<R2Trunk>,
    chans: &mut Vec<ChannelId>,
) -> Result<(), super::PbxError> {
    let bad = |problem: String| super::PbxError::Port { port: p.to_string(), problem };
    let span = SpanId(p.index);
    if !card.spans.iter().any(|s| s.id == span) {
        return Err(bad(format!("trunk group {}: the card has no such span", g.name)));
    }
    let wanted: Vec<u8> = match &g.channels {
        Some(r) => r.0.clone(),
        None => (1..=31).filter(|ts| *ts != 16).collect(),
    };
    for ts in wanted {
        let chan = card
            .channels
            .iter()
            .find(|c| {
                c.span == Some(span)
                    && c.timeslot == Some(ts)
                    && matches!(c.sig, SigKind::Cas | SigKind::CcsBearer)
            })
            .ok_or_else(|| {
                bad(format!("trunk group {}: timeslot {ts} is not a voice channel", g.name))
            })?;
        let l = &mut lines[chan.id.index()];
        l.kind = LineKind::R2 { r2: trunks.len() };
        l.port = format!("{p}/ts{ts}");
        trunks.push(R2Trunk {
            chan: chan.id,
            span,
            ch: R2Channel::new(u16::from(ts), r2_config()),
            listen: None,
        });
        chans.push(chan.id);
    }
    Ok(())
}

impl Pbx {
    /// Send the idle ABCD bits on every R2 timeslot (after the spans are configured).
    pub(super) fn r2_start(&mut self) {
        for i in 0..self.r2.len() {
            let (chan, abcd) = (self.r2[i].chan, self.r2[i].ch.tx_abcd());
            self.cmd(EngineCommand::Hal(HalCommand::SetCas(chan, abcd)));
        }
    }

    /// Start the timeslots of R2 span port `p` of trunk group `g` at run time (idle bits
    /// sent), appending them to `chans`.
    pub(super) fn r2_start_span(
        &mut self,
        p: &PortRef,
        g: &TrunkGroupConfig,
        chans: &mut Vec<ChannelId>,
    ) -> Result<(), super::PbxError> {
        let first = self.r2.len();
        build_span(&self.card, p, g, &mut self.lines, &mut self.r2, chans)?;
        for i in first..self.r2.len() {
            let (chan, abcd) = (self.r2[i].chan, self.r2[i].ch.tx_abcd());
            self.cmd(EngineCommand::Hal(HalCommand::SetCas(chan, abcd)));
        }
        Ok(())
    }

    fn r2_index(&self, chan: ChannelId) -> Option<usize> {
        match self.lines.get(chan.index())?.kind {
            LineKind::R2 { r2 } => Some(r2),
            _ => None,
        }
    }

    /// Whether trunk group `g` is an R2 group.
    pub(super) fn r2_group(&self, g: usize) -> bool {
        self.trunk_groups[g].lines.first().is_some_and(|c| self.r2_index(*c).is_some())
    }

    /// The line state of an R2 channel (for `show` commands and tests).
    pub fn r2_line_state(&self, chan: ChannelId) -> Option<LineState> {
        self.r2_index(chan).map(|i| self.r2[i].ch.state())
    }

    /// Channels of the R2 span `span`, if it is one.
    pub fn r2_span_info(&self, span: SpanId) -> Option<R2SpanInfo> {
        let on: Vec<&R2Trunk> = self.r2.iter().filter(|t| t.span == span).collect();
        if on.is_empty() {
            return None;
        }
        let count =
            |f: &dyn Fn(LineState) -> bool| on.iter().filter(|t| f(t.ch.state())).count() as u32;
        Some(R2SpanInfo {
            channels: on.len() as u32,
            in_use: count(&|s| s.in_call()),
            blocked: count(&|s| s == LineState::RemoteBlocked),
        })
    }

    /// Whether `span` is in an alarm that takes its line down.
    fn r2_span_down(&self, span: SpanId) -> bool {
        self.spans.get(&span).is_some_and(|st| st.alarms.intersects(Alarms::OUT_OF_SERVICE))
    }

    /// ABCD bits arrived on `chan`.
    pub(super) fn r2_cas(&mut self, chan: ChannelId, abcd: Abcd) {
        let Some(i) = self.r2_index(chan) else { return };
        let now = self.now;
        self.r2[i].ch.abcd_received(now, abcd);
        self.r2_drain(i);
    }

    /// The MF detector of `chan` heard a signal start or stop.
    pub(super) fn r2_mf(&mut self, chan: ChannelId, signal: Option<u8>) {
        let Some(i) = self.r2_index(chan) else { return };
        let now = self.now;
        self.r2[i].ch.mf_received(now, signal);
        self.r2_drain(i);
    }

    /// Earliest R2 timer.
    pub(super) fn r2_timeout(&self) -> Option<Tick> {
        self.r2.iter().filter_map(|t| t.ch.next_timeout()).min()
    }

    /// Run the R2 timers due at `now`.
    pub(super) fn r2_poll(&mut self, now: Tick) {
        for i in 0..self.r2.len() {
            if self.r2[i].ch.next_timeout().is_some_and(|t| t <= now) {
                self.r2[i].ch.poll(now);
                self.r2_drain(i);
            }
        }
    }

    /// A span's alarms changed: calls on its R2 timeslots are cleared when it goes down.
    pub(super) fn r2_alarm(&mut self, span: SpanId, alarms: Alarms) {
        if !alarms.intersects(Alarms::OUT_OF_SERVICE) {
            return;
        }
        let legs: Vec<ChannelId> =
            self.r2.iter().filter(|t| t.span == span).map(|t| t.chan).collect();
        for leg in legs {
            if self.lines[leg.index()].call.is_some() {
                self.leg_gone(leg);
            }
        }
    }

    /// Listen for MF as R2 channel `i` last asked.
    fn r2_detect(&mut self, i: usize) {
        let d = Detectors { mfr2: self.r2[i].listen.map(dsp_dir), ..Detectors::NONE };
        let chan = self.r2[i].chan;
        self.detect(chan, d);
    }

    /// Carry out what R2 channel `i` wants done.
    fn r2_drain(&mut self, i: usize) {
        while let Some(a) = self.r2[i].ch.poll_action() {
            let chan = self.r2[i].chan;
            match a {
                R2Action::SetAbcd(abcd) => {
                    self.cmd(EngineCommand::Hal(HalCommand::SetCas(chan, abcd)))
                }
                R2Action::MfTone { signal: Some(s), direction } => {
                    let tone = mfr2::signal_freqs(dsp_dir(direction), s).and_then(|(f1, f2)| {
                        ToneSpec::continuous([f1, f2], DEFAULT_SEND_DBM0).ok()
                    });
                    if let Some(t) = tone {
                        self.set_source(chan, Source::Tone(t));
                    }
                }
                R2Action::MfTone { signal: None, .. } => self.r2_after_mf(chan),
                R2Action::MfListen(l) => {
                    self.r2[i].listen = l;
                    self.r2_detect(i);
                }
                R2Action::Event(e) => self.r2_event(i, e),
            }
        }
    }

    /// The MF tone on `chan` stopped: what the channel transmits now.
    fn r2_after_mf(&mut self, chan: ChannelId) {
        let call = self.lines[chan.index()].call.and_then(|id| self.calls.get(&id));
        let src = match call {
            Some(c) if c.state == CallState::Connected => {
                match [Some(c.a), c.b].into_iter().flatten().find(|l| *l != chan) {
                    Some(other) => Source::Channel(other),
                    None => Source::Silence,
                }
            }
            // The caller of an incoming call hears our ringback while extensions ring.
            Some(c) if c.state == CallState::Ringing && c.a == chan => {
                Source::Tone(self.plan.tone(ProgressTone::Ringback))
            }
            _ => Source::Silence,
        };
        self.set_source(chan, src);
    }

    fn r2_event(&mut self, i: usize, e: R2Event) {
        let chan = self.r2[i].chan;
        if self.fax_r2_event(chan, &e) {
            return;
        }
        match e {
            R2Event::Offered { dnis, ani, ani_restricted, .. } => {
                self.r2_incoming(i, dnis.as_str(), ani.as_str(), ani_restricted)
            }
            R2Event::Accepted { .. } => {
                let Some(id) = self.lines[chan.index()].call else { return };
                let Some(c) = self.calls.get_mut(&id) else { return };
                if c.direction != Direction::Outbound || c.state != CallState::Outdialing {
                    return;
                }
                c.heard_ringback = true;
                let a = c.a;
                self.tone(a, ProgressTone::Ringback);
            }
            R2Event::Answered => {
                let now = self.now;
                let Some(id) = self.lines[chan.index()].call else { return };
                let Some(c) = self.calls.get_mut(&id) else { return };
                if c.state != CallState::Outdialing || c.b != Some(chan) {
                    return;
                }
                c.set_state(CallState::Connected);
                c.answered = Some(now);
                let a = c.a;
                self.bridge(a, chan);
            }
            R2Event::Cleared { reason } => self.r2_far_cleared(chan, reason),
            R2Event::ProtocolError { error } => {
                tracing::debug!(%chan, ?error, "R2 protocol error")
            }
            R2Event::RemoteBlocked => tracing::info!(%chan, "R2 channel blocked by the far end"),
            R2Event::RemoteUnblocked => tracing::info!(%chan, "R2 channel unblocked"),
            R2Event::Idle => {}
        }
    }

    /// The R2 call on `chan` ended for `reason`.
    fn r2_far_cleared(&mut self, chan: ChannelId, reason: ClearReason) {
        let Some(id) = self.lines[chan.index()].call else { return };
        let Some(c) = self.calls.get(&id) else {
            self.lines[chan.index()].call = None;
            return;
        };
        if c.direction == Direction::Outbound && c.answered.is_none() && c.b == Some(chan) {
            // Not answered: the caller hears why.
            let busy = reason == ClearReason::Rejected(BSignal::Busy);
            self.outbound_refused(id, chan, busy, "the far end refused or dropped the R2 call");
            return;
        }
        self.leg_gone(chan);
    }

    fn r2_incoming(&mut self, i: usize, dnis: &str, ani: &str, restricted: bool) {
        let now = self.now;
        let chan = self.r2[i].chan;
        if self.lines[chan.index()].call.is_some() {
            let _ = self.r2[i].ch.accept(now, BSignal::Congestion);
            return;
        }
        let id = self.new_call(Direction::Inbound, chan, ani.to_string());
        if restricted {
            if let Some(c) = self.calls.get_mut(&id) {
                c.from_absent = Some(cardpbx_dsp::callerid::AbsenceReason::Private);
            }
        }
        let group = self.trunk_groups.iter().position(|g| g.lines.contains(&chan));
        let mut target = self.did_target(dnis, group);
        match self.cc_route(id, dnis) {
            super::cc::CcRouted::Default => {}
            super::cc::CcRouted::Target(t) => target = Some(t),
            super::cc::CcRouted::Handled => return,
        }
        let Some(target) = target else {
            self.set_to(id, dnis);
            self.fail(id, ProgressTone::Congestion, "unknown number");
            return;
        };
        self.set_to(id, &target);
        self.dial(id, &target, true);
        let ok = self
            .calls
            .get(&id)
            .is_some_and(|c| matches!(c.state, CallState::Ringing | CallState::Outdialing));
        if ok && self.r2[i].ch.accept(now, BSignal::FreeCharge).is_ok() {
            self.r2_drain(i);
        }
    }

    /// The incoming R2 call on `a` failed: refuse it with the matching group B signal while
    /// it is still offered, otherwise clear it.
    pub(super) fn r2_fail(&mut self, a: ChannelId, tone: ProgressTone, why: &str) {
        let Some(i) = self.r2_index(a) else { return };
        let now = self.now;
        let b = match (tone, why) {
            (_, "unknown number") => BSignal::Unallocated,
            (ProgressTone::Busy, _) => BSignal::Busy,
            _ => BSignal::Congestion,
        };
        if self.r2[i].ch.accept(now, b).is_err() {
            self.r2[i].ch.hangup(now);
        }
        // The compelled cycle of the B signal still needs the detector.
        self.r2_detect(i);
        self.r2_drain(i);
    }

    /// Accept the incoming R2 call on `chan` (free of charge) while it is offered, before the
    /// call center answers it; true when the channel is an R2 channel.
    pub(super) fn r2_accept(&mut self, chan: ChannelId) -> bool {
        let Some(i) = self.r2_index(chan) else { return false };
        let now = self.now;
        // Refused when the call was accepted already: nothing more to do.
        let _ = self.r2[i].ch.accept(now, BSignal::FreeCharge);
        self.r2_drain(i);
        true
    }

    /// An extension answered the incoming R2 call on `chan`: AB 01.
    pub(super) fn r2_answer(&mut self, chan: ChannelId) -> bool {
        let Some(i) = self.r2_index(chan) else { return false };
        let now = self.now;
        let ok = self.r2[i].ch.answer(now).is_ok();
        self.r2_drain(i);
        ok
    }

    /// Our side clears the R2 call on `chan` (clear forward, clear back or forced release).
    pub(super) fn r2_hangup(&mut self, chan: ChannelId) {
        let Some(i) = self.r2_index(chan) else { return };
        let now = self.now;
        self.r2[i].ch.hangup(now);
        self.r2_drain(i);
    }

    /// Place call `id` on R2 trunk group `g`.
    pub(super) fn r2_outbound(&mut self, id: CallId, g: usize, number: String) {
        let now = self.now;
        let order = self.hunt_order(g);
        let from = self.calls.get(&id).map(|c| c.from.clone()).unwrap_or_default();
        let dialable = from.len() <= 32 && from.bytes().all(|b| b.is_ascii_digit());
        let ani = if dialable && !self.trunk_groups[g].restricted { from } else { String::new() };
        let mut placed = None;
        for chan in order {
            let Some(i) = self.r2_index(chan) else { continue };
            if self.lines[chan.index()].call.is_some() || self.r2_span_down(self.r2[i].span) {
                continue;
            }
            match self.r2[i].ch.make_call(now, &number, &ani, CATEGORY) {
                Ok(()) => {
                    placed = Some((chan, i));
                    break;
                }
                Err(e) => tracing::debug!(%chan, error = %e, "R2 channel refused; trying the next"),
            }
        }
        let Some((trunk, i)) = placed else {
            self.counters.calls_congested += 1;
            self.fail(id, ProgressTone::Congestion, "no free channel in the trunk group");
            return;
        };
        self.outdialing_on(id, g, trunk);
        self.r2_drain(i);
    }

    /// Seize a free channel of R2 trunk group `g` for `call` (an outgoing fax, not a
    /// [`Call`](super::Call)) and register `number` on it without a calling number; the
    /// channel, or `None` when no channel is free.
    pub(super) fn r2_fax_place(
        &mut self,
        g: usize,
        number: &str,
        call: CallId,
    ) -> Option<ChannelId> {
        let now = self.now;
        for chan in self.hunt_order(g) {
            let Some(i) = self.r2_index(chan) else { continue };
            if self.lines[chan.index()].call.is_some() || self.r2_span_down(self.r2[i].span) {
                continue;
            }
            if self.r2[i].ch.make_call(now, number, "", CATEGORY).is_ok() {
                self.lines[chan.index()].call = Some(call);
                if let Some(pos) = self.trunk_groups[g].lines.iter().position(|c| *c == chan) {
                    self.trunk_groups[g].next = pos + 1;
                }
                self.r2_drain(i);
                return Some(chan);
            }
        }
        None
    }
}
