//! ISDN PRI trunks: one [`PriEndpoint`] (LAPD + Q.931) per span of a PRI trunk group, its
//! D-channel frames through the HAL, and its calls tied to the call control's calls.
//!
//! A PRI call is a [`Call`](super::Call) whose trunk leg is a bearer channel
//! ([`LineKind::Bchan`]). The Q.931 call lives on in the stack until it is released, so the
//! bearer stays unavailable (`Line::q931`) until RELEASE COMPLETE even when the call control
//! has already forgotten the call.

use super::{CallId, CallState, Direction, LineKind, Pbx};
use crate::engine::api::{EngineCommand, Source};
use crate::pri::pcap::{Dir, LapdPcap};
use cardpbx_dsp::toneplan::ProgressTone;
use cardpbx_hal::{Alarms, ChannelId, HalCommand, HdlcFrame, SpanId, Tick};
use cardpbx_signalling::lapd::LinkState;
use cardpbx_signalling::pri::{PriEndpoint, PriOutput};
use cardpbx_signalling::q931::call::{CallEvent, CallHandle, CallParams, Side};
use cardpbx_signalling::q931::Cause;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
    /// The D-channel capture running on this span.
    pub(super) capture: Option<Capture>,
    /// Why the last capture stopped on its own (a write error), for `span show`.
    pub(super) capture_error: Option<String>,
}

/// A D-channel capture in progress: every frame in and out goes to a pcap file.
pub(super) struct Capture {
    path: PathBuf,
    pcap: LapdPcap<Box<dyn Write + Send>>,
    /// Tick at which the capture stops by itself (`span capture --duration`).
    until: Option<Tick>,
}

/// A capture started or stopped, as `span capture` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CaptureInfo {
    /// The span.
    pub span: u32,
    /// The pcap file.
    pub file: String,
    /// Whether the span is capturing now (false: this capture was just stopped).
    pub capturing: bool,
    /// Frames written to the file so far.
    pub frames: u64,
    /// Milliseconds after which the capture stops by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// A PRI span's D-channel and calls, for `span show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PriSpanInfo {
    /// `user` or `network`.
    pub side: String,
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
    /// The pcap file the D-channel is being captured to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
    /// Frames written to that file so far.
    #[serde(default)]
    pub capture_frames: u64,
    /// Why the last capture stopped by itself (a write error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_error: Option<String>,
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
            }
            .into(),
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
            capture: p.capture.as_ref().map(|c| c.path.display().to_string()),
            capture_frames: p.capture.as_ref().map_or(0, |c| c.pcap.frames()),
            capture_error: p.capture_error.clone(),
        })
    }

    /// Set the time at tick 0 as microseconds since 1970-01-01 00:00 UTC, for the timestamps
    /// of D-channel captures.
    pub fn set_utc_base(&mut self, us_at_tick0: u64) {
        self.utc_base_us = us_at_tick0;
    }

    /// Start capturing `span`'s D-channel (both directions) into the pcap file `path`, which
    /// is created or truncated; a capture already running on the span is replaced once the new
    /// file is open. With `duration_ms` the capture stops by itself after that long.
    ///
    /// # Errors
    /// The span does not exist or is not a PRI span, or the file cannot be created.
    pub fn pri_capture_start(
        &mut self,
        span: SpanId,
        path: &Path,
        duration_ms: Option<u64>,
    ) -> Result<CaptureInfo, String> {
        self.pri_span_index_or_error(span)?;
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        self.pri_capture_to(span, path, Box::new(BufWriter::new(file)), duration_ms)
    }

    /// [`pri_capture_start`](Self::pri_capture_start) writing to `out`, named `path`.
    pub(crate) fn pri_capture_to(
        &mut self,
        span: SpanId,
        path: &Path,
        out: Box<dyn Write + Send>,
        duration_ms: Option<u64>,
    ) -> Result<CaptureInfo, String> {
        let i = self.pri_span_index_or_error(span)?;
        let network = self.pri[i].ep.side() == Side::Network;
        let pcap = LapdPcap::new(out, network)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let until = duration_ms.map(|d| self.now + d);
        let p = &mut self.pri[i];
        if let Some(old) = p.capture.take() {
            tracing::info!(span = %span, file = %old.path.display(), frames = old.pcap.frames(),
                "D-channel capture replaced");
        }
        p.capture = Some(Capture { path: path.to_path_buf(), pcap, until });
        p.capture_error = None;
        tracing::info!(span = %span, file = %path.display(), "D-channel capture started");
        Ok(CaptureInfo {
            span: span.0,
            file: path.display().to_string(),
            capturing: true,
            frames: 0,
            duration_ms,
        })
    }

    /// Stop capturing `span`'s D-channel; the capture that was running, if any.
    ///
    /// # Errors
    /// The span does not exist or is not a PRI span.
    pub fn pri_capture_stop(&mut self, span: SpanId) -> Result<Option<CaptureInfo>, String> {
        let i = self.pri_span_index_or_error(span)?;
        Ok(self.pri_capture_end(i, "stopped"))
    }

    /// End span `i`'s capture (flushing the file), saying `why` in the log.
    fn pri_capture_end(&mut self, i: usize, why: &str) -> Option<CaptureInfo> {
        let p = &mut self.pri[i];
        let c = p.capture.take()?;
        let frames = c.pcap.frames();
        if let Err(e) = c.pcap.finish() {
            tracing::warn!(span = %p.span, file = %c.path.display(), "D-channel capture: {e}");
        }
        tracing::info!(span = %p.span, file = %c.path.display(), frames, "D-channel capture {why}");
        Some(CaptureInfo {
            span: p.span.0,
            file: c.path.display().to_string(),
            capturing: false,
            frames,
            duration_ms: None,
        })
    }

    fn pri_span_index_or_error(&self, span: SpanId) -> Result<usize, String> {
        if let Some(i) = self.pri_index(span) {
            return Ok(i);
        }
        if self.spans.contains_key(&span) {
            Err(format!(
                "span {} is not a PRI span (it belongs to no pri_cpe or pri_net trunk group): \
                 it has no D-channel to capture",
                span.0
            ))
        } else {
            Err(format!("card {} has no span {}", self.card.name, span.0))
        }
    }

    /// Start the captures the configuration asks for (`[[span]] dchannel_capture`). A file
    /// that cannot be created does not stop the daemon: it is logged and shown by `span show`.
    pub(super) fn pri_start_configured_captures(
        &mut self,
        cfg: &crate::config::model::Config,
        card_name: &str,
    ) {
        for s in cfg.spans.iter().filter(|s| s.card == card_name) {
            let Some(path) = &s.dchannel_capture else { continue };
            let span = SpanId(s.span);
            if let Err(e) = self.pri_capture_start(span, path, None) {
                tracing::error!(span = %span, "D-channel capture not started: {e}");
                if let Some(i) = self.pri_index(span) {
                    self.pri[i].capture_error = Some(e);
                }
            }
        }
    }

    /// Record a frame of span `i` in its capture, if one runs. A write error stops the
    /// capture (logged once, kept for `span show`); calls go on.
    fn pri_capture_frame(&mut self, i: usize, dir: Dir, frame: &[u8]) {
        let ts = self.utc_base_us.saturating_add(self.now.saturating_mul(1000));
        let p = &mut self.pri[i];
        let Some(c) = p.capture.as_mut() else { return };
        if let Err(e) = c.pcap.write_frame(ts, dir, frame) {
            let msg = format!("writing {}: {e}; capture stopped", c.path.display());
            tracing::error!(span = %p.span, "D-channel capture: {msg}");
            p.capture = None;
            p.capture_error = Some(msg);
        }
    }

    /// A D-channel frame arrived.
    pub(super) fn pri_frame(&mut self, chan: ChannelId, frame: &HdlcFrame) {
        let Some(i) = self.pri.iter().position(|p| p.dchan == chan) else { return };
        let now = self.now;
        self.pri_capture_frame(i, Dir::In, frame.as_bytes());
        let p = &mut self.pri[i];
        p.frames_in += 1;
        p.ep.receive_frame(now, frame.as_bytes());
        self.pri_drain(i);
    }

    /// A span's alarms changed: its D-channel and bearers go out of or back into service.
    pub(super) fn pri_alarm(&mut self, span: SpanId, alarms: Alarms) {
        let Some(i) = self.pri_index(span) else { return };
        let now = self.now;
        let down = alarms.intersects(Alarms::OUT_OF_SERVICE);
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

    /// Earliest PRI timer (captures with a duration included).
    pub(super) fn pri_timeout(&self) -> Option<Tick> {
        let captures = self.pri.iter().filter_map(|p| p.capture.as_ref().and_then(|c| c.until));
        self.pri.iter().filter_map(|p| p.ep.next_timeout()).chain(captures).min()
    }

    /// Run the PRI timers due at `now`.
    pub(super) fn pri_poll(&mut self, now: Tick) {
        for i in 0..self.pri.len() {
            if self.pri[i].capture.as_ref().and_then(|c| c.until).is_some_and(|t| t <= now) {
                self.pri_capture_end(i, "ended (its duration is over)");
            }
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
                    self.pri[i].frames_out += 1;
                    match HdlcFrame::new(&f) {
                        Some(frame) => {
                            self.pri_capture_frame(i, Dir::Out, &f);
                            let dchan = self.pri[i].dchan;
                            self.cmd(EngineCommand::Hal(HalCommand::SendHdlc(dchan, frame)));
                        }
                        None => {
                            tracing::warn!(span = %self.pri[i].span, len = f.len(), "D-channel frame too long; dropped")
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

    /// The call control call of Q.931 call `h` and its bearer, which is the channel the stack
    /// holds for `h` now: when the network moved our outgoing call to another channel (glare),
    /// the call follows it.
    fn pri_call(&mut self, i: usize, h: CallHandle) -> Option<(CallId, ChannelId)> {
        let id = *self.pri[i].calls.get(&h)?;
        let ts = self.pri[i].ep.q931().call_channel(h)?;
        let chan = *self.pri[i].bchans.get(&ts)?;
        if self.lines[chan.index()].q931 != Some(h) {
            let old = self.pri[i]
                .bchans
                .values()
                .copied()
                .find(|c| self.lines[c.index()].q931 == Some(h));
            if let Some(old) = old {
                self.pri_detach(old);
            }
            let l = &mut self.lines[chan.index()];
            if l.call.is_some() || l.q931.is_some() {
                return None;
            }
            l.call = Some(id);
            l.q931 = Some(h);
            if let Some(c) = self.calls.get_mut(&id) {
                c.b = Some(chan);
            }
            tracing::debug!(call = id, %chan, "PRI call moved to the channel the network gave it");
        }
        Some((id, chan))
    }

    /// Take the Q.931 call off bearer `chan` (the stack gave the channel to another call); the
    /// call keeps going without a bearer until the network names its new one.
    fn pri_detach(&mut self, chan: ChannelId) {
        let l = &mut self.lines[chan.index()];
        let id = l.call.take();
        l.q931 = None;
        if let Some(c) = id.and_then(|id| self.calls.get_mut(&id)) {
            if c.b == Some(chan) {
                c.b = None;
            }
        }
    }

    fn pri_event(&mut self, i: usize, e: CallEvent) {
        self.fax_pri_event(i, &e);
        match e {
            CallEvent::Incoming { call, channel, called, calling, sending_complete } => {
                self.pri_incoming(i, call, channel, called, calling, sending_complete)
            }
            CallEvent::Information { call, digits, complete } => {
                let Some(&id) = self.pri[i].calls.get(&call) else { return };
                let Some(c) = self.calls.get_mut(&id) else { return };
                if c.state != CallState::Dialing || c.direction != Direction::Inbound {
                    return;
                }
                c.digits.push_str(&digits);
                let so_far = c.digits.clone();
                if complete || !self.did_incomplete(&so_far) {
                    self.pri_route_did(i, call, id);
                }
            }
            CallEvent::DigitTimeout { call } => {
                let Some(&id) = self.pri[i].calls.get(&call) else { return };
                if self.calls.get(&id).is_some_and(|c| c.state == CallState::Dialing) {
                    self.pri_route_did(i, call, id);
                }
            }
            CallEvent::Proceeding { call, .. } | CallEvent::SetupAck { call, .. } => {
                // Only to follow a channel the network changed.
                let _ = self.pri_call(i, call);
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
                c.set_state(CallState::Connected);
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
            // An outgoing call waiting for its new channel after glare: the caller hears why.
            if c.direction == Direction::Outbound && c.answered.is_none() && c.b.is_none() {
                let tone = if cause == Cause::USER_BUSY {
                    ProgressTone::Busy
                } else {
                    ProgressTone::Congestion
                };
                self.fail(id, tone, "the network cleared the call");
            }
            return;
        };
        if c.direction == Direction::Outbound && c.answered.is_none() && c.b == Some(b) {
            // Not answered: the caller hears why.
            self.outbound_refused(id, b, cause == Cause::USER_BUSY, "the network cleared the call");
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
        sending_complete: bool,
    ) {
        let now = self.now;
        let chan = self.pri[i].bchans.get(&ts).copied();
        // Glare: the network took the channel our unanswered outgoing call had asked for (the
        // stack has already moved that call off it); the outgoing call waits for its new one.
        if let Some(c) = chan {
            let held = self.lines[c.index()].q931;
            if held.is_some_and(|o| self.pri[i].ep.q931().call_channel(o) != Some(ts)) {
                self.pri_detach(c);
            }
        }
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
        self.cdr.set_dnis(id, &called);
        self.lines[chan.index()].q931 = Some(call);
        self.pri[i].calls.insert(call, id);
        if let Some(c) = self.calls.get_mut(&id) {
            c.digits = called.clone();
        }
        if !sending_complete && self.did_incomplete(&called) {
            // Overlap receiving: the number may go on in INFORMATION messages (T302).
            let _ = self.pri[i].ep.call(now, |q, t| q.setup_ack(t, call));
            return;
        }
        self.pri_route_did(i, call, id);
    }

    /// Whether `digits` could still grow into an extension or hunt group number (and are not
    /// one already).
    fn did_incomplete(&self, digits: &str) -> bool {
        let exact = self.extensions.contains_key(digits)
            || self.hunt_groups.iter().any(|h| h.number == digits);
        !exact
            && (self.extensions.keys().any(|n| n.starts_with(digits))
                || self.hunt_groups.iter().any(|h| h.number.starts_with(digits)))
    }

    /// Route an incoming PRI call by the called number collected so far.
    fn pri_route_did(&mut self, i: usize, call: CallHandle, id: CallId) {
        let now = self.now;
        let Some(called) = self.calls.get(&id).map(|c| c.digits.clone()) else { return };
        let _ = self.pri[i].ep.call(now, |q, t| q.proceeding(t, call));
        // Direct dialling in: a called number that is an extension or hunt group rings it;
        // anything else goes to the trunk group's incoming target.
        let mut target = self.did_target(&called, Some(self.pri[i].group));
        match self.cc_route(id, &called) {
            super::cc::CcRouted::Default => {}
            super::cc::CcRouted::Target(t) => target = Some(t),
            super::cc::CcRouted::Handled => return,
        }
        let Some(target) = target else {
            self.set_to(id, "");
            self.fail(id, ProgressTone::Congestion, "unknown number");
            return;
        };
        self.pri_fax_listen(id, &target);
        self.set_to(id, &target);
        self.dial(id, &target, true);
        // A call answered to listen for fax calling tone is not alerted any more.
        if self
            .calls
            .get(&id)
            .is_some_and(|c| c.state == CallState::Ringing && c.fax_until.is_none())
        {
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
        let order = self.hunt_order(g);
        let from = self.calls.get(&id).map(|c| c.from.clone()).unwrap_or_default();
        let calling = super::dialable(&from).then_some(from);
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
                overlap: false,
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
        self.outdialing_on(id, g, trunk);
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
    pc.q931.restart_on_link_up = g.restart_on_link_up;
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
        capture: None,
        capture_error: None,
    })
}

impl Pbx {
    /// Take PRI span `p` out of service for good (its trunk group was stopped by a reload):
    /// the data link is dropped and the entry stays behind as a tombstone, since lines refer
    /// to PRI spans by index.
    pub(super) fn pri_retire(&mut self, p: usize, now: Tick) {
        let sp = &mut self.pri[p];
        sp.ep.physical_down(now);
        while sp.ep.poll_output().is_some() {}
        sp.span = SpanId(0);
        sp.dchan = ChannelId(u32::MAX);
        sp.bchans.clear();
        sp.calls.clear();
    }

    /// Start PRI span port `p` of trunk group `g` (entry `e`) at run time; returns its bearer
    /// channels in order.
    pub(super) fn pri_start_span(
        &mut self,
        p: &crate::config::model::PortRef,
        g: &crate::config::model::TrunkGroupConfig,
        e: usize,
    ) -> Result<Vec<ChannelId>, super::PbxError> {
        let index = self.pri.len();
        let sp = build_span(&self.card, p, g, e, index)?;
        let mut chans = Vec::new();
        for (&ts, &chan) in &sp.bchans {
            let l = &mut self.lines[chan.index()];
            l.kind = LineKind::Bchan { pri: index, ts };
            l.port = format!("{p}/ts{ts}");
            chans.push(chan);
        }
        let span = sp.span;
        self.pri.push(sp);
        let alarms = self.spans.get(&span).map_or(Alarms::NOT_OPEN, |s| s.alarms);
        self.pri_alarm(span, alarms);
        Ok(chans)
    }
}

#[cfg(test)]
mod tests {
    use crate::runner::Stepped;
    use cardpbx_hal::SpanId;
    use cardpbx_sim::SimCard;
    use std::io::{self, Write};
    use std::path::Path;

    /// A file that takes `left` bytes, then fails (a full disk).
    struct FillsUp {
        left: usize,
    }

    impl Write for FillsUp {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.left {
                return Err(io::Error::other("no space left on device"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn cpe() -> Stepped<SimCard> {
        let text = r#"
[[card]]
name = "sim0"
driver = "sim"
fxs_ports = 1
fxo_ports = 0
e1_spans = 1

[[trunk_group]]
name = "isdn"
signalling = "pri_cpe"
ports = ["sim0/span1"]
incoming = "2001"

[[extension]]
number = "2001"
port = "sim0/fxs1"
"#;
        let cfg = crate::config::Config::parse_str(text, "t.toml").unwrap();
        let mut sc = crate::service::sim_config(&cfg, &cfg.cards[0], None);
        sc.phone.auto_answer_ms = Some(200);
        Stepped::new(SimCard::new(sc).unwrap(), &cfg, "sim0").unwrap()
    }

    #[test]
    fn a_write_error_stops_the_capture_not_the_calls() {
        let mut p = cpe();
        let path = Path::new("/var/full.pcap");
        // Room for the file header and a few frames.
        let out = Box::new(FillsUp { left: 24 + 3 * 40 });
        let c = p.pbx_mut().pri_capture_to(SpanId(1), path, out, None).unwrap();
        assert!(c.capturing);
        let up = |p: &Stepped<SimCard>| p.pbx().pri_span_info(SpanId(1)).unwrap().link_up;
        assert!(p.run_until(10_000, up).unwrap());
        p.run_ms(1_000).unwrap();
        let info = p.pbx().pri_span_info(SpanId(1)).unwrap();
        assert_eq!(info.capture, None, "the capture stopped");
        let e = info.capture_error.expect("the reason is kept for span show");
        assert!(e.contains("/var/full.pcap") && e.contains("no space left"), "{e}");
        // Calls go on.
        let h = p.card_mut().pri_call_in(1, Some("5551000"), "2001").unwrap();
        let answered = |p: &Stepped<SimCard>| {
            p.card().pri_calls(1).iter().any(|c| c.handle == h && c.answered)
        };
        assert!(p.run_until(5_000, answered).unwrap(), "the call is answered");
        // A new capture clears the error.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("again.pcap");
        p.pbx_mut().pri_capture_start(SpanId(1), &file, None).unwrap();
        let info = p.pbx().pri_span_info(SpanId(1)).unwrap();
        assert_eq!(info.capture_error, None);
        assert_eq!(info.capture.as_deref(), Some(file.to_str().unwrap()));
    }
}
