//! The far end of a simulated E1 PRI span: an exchange that runs the other side of our own
//! LAPD/Q.931 stack ([`cardpbx_signalling::pri`]) over the span's D-channel, with a remote
//! party on every bearer that answers, talks (its audio signature) and listens (the audio path
//! check), and hangs up.
//!
//! The exchange answers calls from the PBX after [`ExchangeConfig::answer_delay_ms`] (busy
//! numbers get cause 17, unknown ones cause 1), places calls to the PBX on request
//! ([`SimCard::pri_call_in`](crate::SimCard::pri_call_in)), and clears calls when asked or after
//! [`ExchangeConfig::hold_ms`]. Faults: span alarms take its physical layer down, and the
//! D-channel can be cut while the span stays up
//! ([`SimCard::set_dchannel_cut`](crate::SimCard::set_dchannel_cut)).

use crate::bearer::RemoteParty;
use crate::dsock::{DChannelSocket, MAX_FRAME};
use crate::events::EventQueue;
use crate::signature::{AudioCheck, EndpointId, SignaturePlan};
use cardpbx_dsp::g711::Law;
use cardpbx_hal::{ChannelId, Chunk, HalEvent, HdlcFrame, Tick};
use cardpbx_signalling::pri::{PriConfig, PriEndpoint, PriOutput};
use cardpbx_signalling::q931::call::{CallEvent, CallHandle, CallParams, CallState, Side};
use cardpbx_signalling::q931::Cause;
use std::collections::BTreeMap;

/// What sits at the far end of a span's D-channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SpanFarEnd {
    /// Nothing: frames from the PBX are discarded, bearers are silent.
    #[default]
    None,
    /// The simulated exchange, running this side of the PRI (the opposite of the PBX's).
    Exchange(Side),
    /// Another program, connected to a Unix SOCK_SEQPACKET socket the card listens on at this
    /// path (one LAPD frame per message: see [`crate::dsock`]). Bearers are silent unless
    /// bound to an external audio peer ([`SimCard::bind_external_audio`](crate::SimCard::bind_external_audio)).
    Socket(std::path::PathBuf),
    /// A simulated MFC/R2 (China No.1) exchange on the span's CAS timeslots
    /// ([`r2far`](crate::r2far)); it works while the span is configured with CAS framing.
    R2Exchange,
}

/// How the simulated exchange and its remote parties behave.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeConfig {
    /// Delay between a call from the PBX arriving and the remote party answering, ms.
    pub answer_delay_ms: u32,
    /// Called numbers that are busy (cleared with cause 17 after CALL PROCEEDING).
    pub busy_numbers: Vec<String>,
    /// Called numbers that do not exist (cleared with cause 1).
    pub unallocated_numbers: Vec<String>,
    /// Called numbers whose calls get CALL PROCEEDING and then nothing more (a far end that
    /// never rings).
    pub silent_numbers: Vec<String>,
    /// Remote parties hang up this long after a call is answered (`None`: they stay).
    pub hold_ms: Option<u32>,
    /// Level of the remote parties' signatures, dBm0.
    pub signature_level_dbm0: f32,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            answer_delay_ms: 2000,
            busy_numbers: Vec::new(),
            unallocated_numbers: Vec::new(),
            silent_numbers: Vec::new(),
            hold_ms: None,
            signature_level_dbm0: -15.0,
        }
    }
}

/// Which way a call on the exchange goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteDirection {
    /// Placed by the PBX, answered by the remote party.
    FromPbx,
    /// Placed by the remote party, towards the PBX.
    ToPbx,
}

/// One call as the simulated exchange sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCall {
    /// The exchange's handle of the call (for [`SimCard::pri_hang_up`](crate::SimCard::pri_hang_up)).
    pub handle: u32,
    /// Which way it goes.
    pub direction: RemoteDirection,
    /// The timeslot once known.
    pub ts: Option<u8>,
    /// Called party number.
    pub called: String,
    /// Calling party number.
    pub calling: Option<String>,
    /// Q.931 state on the exchange side.
    pub state: CallState,
    /// The call reached the active state.
    pub answered: bool,
    /// The clearing cause once cleared.
    pub cause: Option<u8>,
}

/// Counters of one simulated exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExchangeCounters {
    /// Calls the PBX placed (SETUP received).
    pub calls_from_pbx: u64,
    /// Of those, answered by the remote party.
    pub answered_from_pbx: u64,
    /// Calls placed towards the PBX.
    pub calls_to_pbx: u64,
    /// Of those, answered by the PBX.
    pub answered_by_pbx: u64,
    /// Calls released (any direction, any cause).
    pub released: u64,
    /// D-channel frames received from the PBX and sent to it.
    pub frames_in: u64,
    /// D-channel frames sent to the PBX.
    pub frames_out: u64,
}

/// A bearer's remote party.
struct Bearer {
    call: Option<CallHandle>,
    party: RemoteParty,
}

struct XCall {
    direction: RemoteDirection,
    ts: Option<u8>,
    called: String,
    calling: Option<String>,
    answer_at: Option<Tick>,
    hang_up_at: Option<Tick>,
    answered: bool,
    cause: Option<u8>,
}

/// The simulated exchange of one span.
pub(crate) struct Exchange {
    ep: PriEndpoint,
    cfg: ExchangeConfig,
    calls: BTreeMap<CallHandle, XCall>,
    /// Calls cleared, kept for tests to inspect (bounded).
    history: Vec<RemoteCall>,
    bearers: Vec<Bearer>,
    dialed: Vec<String>,
    counters: ExchangeCounters,
    /// The tick of the last step.
    now: Tick,
}

/// Most cleared calls kept for inspection.
const HISTORY: usize = 4096;

impl Exchange {
    pub(crate) fn new(
        side: Side,
        span: u32,
        cfg: ExchangeConfig,
        plan: &SignaturePlan,
    ) -> Exchange {
        let bearers = (0..=31u8)
            .map(|ts| Bearer {
                call: None,
                party: RemoteParty::new(span, ts, cfg.signature_level_dbm0, plan),
            })
            .collect();
        Exchange {
            ep: PriEndpoint::new(PriConfig::new(side)),
            cfg,
            calls: BTreeMap::new(),
            history: Vec::new(),
            bearers,
            dialed: Vec::new(),
            counters: ExchangeCounters::default(),
            now: 0,
        }
    }

    pub(crate) fn physical(&mut self, now: Tick, up: bool) {
        if up {
            self.ep.physical_up(now);
        } else {
            self.ep.physical_down(now);
        }
    }

    /// The exchange's time: the last tick it was stepped at.
    pub(crate) fn now(&self) -> Tick {
        self.now
    }

    /// The behaviour settings, to change them while running (tests).
    pub(crate) fn config_mut(&mut self) -> &mut ExchangeConfig {
        &mut self.cfg
    }

    pub(crate) fn link_is_up(&self) -> bool {
        self.ep.link_is_up()
    }

    pub(crate) fn counters(&self) -> ExchangeCounters {
        self.counters
    }

    pub(crate) fn dialed(&self) -> &[String] {
        &self.dialed
    }

    /// Fault injection: the exchange's call control stops hearing the PBX.
    pub(crate) fn set_deaf(&mut self, deaf: bool) {
        self.ep.set_deaf(deaf);
    }

    pub(crate) fn receive(&mut self, now: Tick, frame: &[u8]) {
        self.counters.frames_in += 1;
        self.ep.receive_frame(now, frame);
    }

    /// The next tick at which the exchange acts on its own (a LAPD or Q.931 timer, a remote
    /// party answering or hanging up, keys being pressed); `None` when it only waits for
    /// frames or commands.
    pub(crate) fn next_due(&self) -> Option<Tick> {
        if self.bearers.iter().any(|b| b.party.pressing()) {
            return Some(self.now + 1);
        }
        let calls = self.calls.values().flat_map(|c| [c.answer_at, c.hang_up_at]).flatten();
        self.ep.next_timeout().into_iter().chain(calls).min()
    }

    /// Calls not yet cleared (each holds a bearer once it has one).
    pub(crate) fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// The bearer timeslot of call `handle`, if it is up and has one.
    pub(crate) fn call_channel(&self, handle: u32) -> Option<u8> {
        self.calls.get(&CallHandle(handle)).and_then(|c| c.ts)
    }

    /// Timers and call behaviour at `now`; frames for the PBX go to `out`.
    pub(crate) fn step(&mut self, now: Tick, mut out: impl FnMut(&[u8])) {
        self.now = now;
        if self.ep.next_timeout().is_some_and(|t| t <= now) {
            self.ep.poll(now);
        }
        let due: Vec<(CallHandle, bool)> = self
            .calls
            .iter()
            .filter_map(|(h, c)| {
                if c.answer_at.is_some_and(|t| t <= now) {
                    Some((*h, true))
                } else if c.hang_up_at.is_some_and(|t| t <= now) {
                    Some((*h, false))
                } else {
                    None
                }
            })
            .collect();
        for (h, answer) in due {
            let c = self.calls.get_mut(&h).expect("listed");
            if answer {
                c.answer_at = None;
                let ok = self.ep.call(now, |q, t| q.connect(t, h)).is_ok();
                // The network side is active once it sends CONNECT; the user side waits for
                // CONNECT ACKNOWLEDGE.
                if ok && self.ep.side() == Side::Network {
                    self.counters.answered_from_pbx += 1;
                    self.active(now, h);
                }
            } else {
                c.hang_up_at = None;
                let _ = self.ep.call(now, |q, t| q.disconnect(t, h, Cause::NORMAL_CLEARING));
            }
        }
        while let Some(o) = self.ep.poll_output() {
            match o {
                PriOutput::Frame(f) => {
                    self.counters.frames_out += 1;
                    out(&f);
                }
                PriOutput::Event(e) => self.on_event(now, e),
                PriOutput::LinkUp | PriOutput::LinkDown | PriOutput::Mdl(_) => {}
            }
        }
    }

    fn on_event(&mut self, now: Tick, e: CallEvent) {
        match e {
            CallEvent::Incoming { call, channel, called, calling, .. } => {
                self.counters.calls_from_pbx += 1;
                if self.dialed.len() < HISTORY {
                    self.dialed.push(called.clone());
                }
                let silent = self.cfg.silent_numbers.contains(&called);
                let cause = if self.cfg.busy_numbers.contains(&called) {
                    Some(Cause::USER_BUSY)
                } else if self.cfg.unallocated_numbers.contains(&called) {
                    Some(Cause::UNALLOCATED_NUMBER)
                } else {
                    None
                };
                self.calls.insert(
                    call,
                    XCall {
                        direction: RemoteDirection::FromPbx,
                        ts: Some(channel),
                        called,
                        calling,
                        answer_at: None,
                        hang_up_at: None,
                        answered: false,
                        cause: None,
                    },
                );
                self.bearers[channel as usize].call = Some(call);
                let _ = self.ep.call(now, |q, t| q.proceeding(t, call));
                if silent {
                    return;
                }
                match cause {
                    Some(cause) => {
                        let _ = self.ep.call(now, |q, t| q.disconnect(t, call, cause));
                    }
                    None => {
                        let _ = self.ep.call(now, |q, t| q.alerting(t, call));
                        let at = now + u64::from(self.cfg.answer_delay_ms);
                        self.calls.get_mut(&call).expect("inserted").answer_at = Some(at);
                    }
                }
            }
            CallEvent::Proceeding { call, channel } | CallEvent::Alerting { call, channel, .. } => {
                self.bind(call, channel);
            }
            CallEvent::Connected { call, channel } => {
                self.bind(call, channel);
                self.counters.answered_by_pbx += 1;
                self.active(now, call);
            }
            CallEvent::ConnectAck { call }
                if self.calls.get(&call).is_some_and(|c| !c.answered) =>
            {
                self.counters.answered_from_pbx += 1;
                self.active(now, call);
            }
            CallEvent::Disconnected { call, .. } => self.silence(call),
            CallEvent::Released { call, cause } => {
                self.silence(call);
                self.counters.released += 1;
                if let Some(mut c) = self.calls.remove(&call) {
                    c.cause = Some(cause.0);
                    if let Some(ts) = c.ts {
                        let b = &mut self.bearers[ts as usize];
                        if b.call == Some(call) {
                            b.call = None;
                        }
                    }
                    if self.history.len() < HISTORY {
                        self.history.push(remote_call(call, &c, CallState::Null));
                    }
                }
            }
            _ => {}
        }
    }

    fn bind(&mut self, call: CallHandle, channel: u8) {
        if let Some(c) = self.calls.get_mut(&call) {
            if c.ts.is_none() {
                c.ts = Some(channel);
                self.bearers[channel as usize].call = Some(call);
            }
        }
    }

    fn active(&mut self, now: Tick, call: CallHandle) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.answered = true;
        c.hang_up_at = self.cfg.hold_ms.map(|ms| now + u64::from(ms));
        if let Some(ts) = c.ts {
            self.bearers[ts as usize].party.set_talking(true);
        }
    }

    fn silence(&mut self, call: CallHandle) {
        let Some(ts) = self.calls.get(&call).and_then(|c| c.ts) else { return };
        self.bearers[ts as usize].party.set_talking(false);
    }

    /// Place a call towards the PBX. Returns the exchange's handle.
    pub(crate) fn call_in(
        &mut self,
        now: Tick,
        calling: Option<&str>,
        called: &str,
        overlap: bool,
    ) -> Result<u32, String> {
        let params = CallParams {
            called: called.to_string(),
            calling: calling.map(str::to_string),
            channel: None,
            exclusive: false,
            calling_restricted: false,
            overlap,
        };
        let h = self.ep.call(now, |q, t| q.setup(t, params)).map_err(|e| e.to_string())?;
        let ts = self.ep.q931().call_channel(h);
        self.counters.calls_to_pbx += 1;
        self.calls.insert(
            h,
            XCall {
                direction: RemoteDirection::ToPbx,
                ts,
                called: called.to_string(),
                calling: calling.map(str::to_string),
                answer_at: None,
                hang_up_at: None,
                answered: false,
                cause: None,
            },
        );
        if let Some(ts) = ts {
            self.bearers[ts as usize].call = Some(h);
        }
        Ok(h.0)
    }

    /// Overlap sending: more digits for call `handle` (after SETUP ACKNOWLEDGE).
    pub(crate) fn send_digits(
        &mut self,
        now: Tick,
        handle: u32,
        digits: &str,
        complete: bool,
    ) -> Result<(), String> {
        let h = CallHandle(handle);
        self.ep.call(now, |q, t| q.information(t, h, digits, complete)).map_err(|e| e.to_string())
    }

    /// The remote party of call `handle` hangs up.
    pub(crate) fn hang_up(&mut self, now: Tick, handle: u32) -> bool {
        let h = CallHandle(handle);
        if !self.calls.contains_key(&h) {
            return false;
        }
        self.silence(h);
        self.ep.call(now, |q, t| q.disconnect(t, h, Cause::NORMAL_CLEARING)).is_ok()
    }

    /// Calls up now, then the cleared ones, oldest first.
    pub(crate) fn calls(&self) -> Vec<RemoteCall> {
        let q = self.ep.q931();
        let mut v: Vec<RemoteCall> =
            self.calls.iter().map(|(h, c)| remote_call(*h, c, q.call_state(*h))).collect();
        v.extend(self.history.iter().cloned());
        v
    }

    /// The remote party of call `handle` presses DTMF keys (once the call is up).
    pub(crate) fn remote_dtmf(&mut self, handle: u32, digits: &str) -> Result<(), String> {
        let c = self.calls.get(&CallHandle(handle)).ok_or("no such call")?;
        let ts = c.ts.ok_or("the call has no channel yet")?;
        if !c.answered {
            return Err("the call is not answered".into());
        }
        self.bearers[ts as usize].party.press(digits).map_err(|e| e.to_string())
    }

    pub(crate) fn expect_peer(&mut self, ts: u8, peer: Option<EndpointId>) {
        if let Some(b) = self.bearers.get_mut(ts as usize) {
            b.party.expect_peer(peer);
        }
    }

    pub(crate) fn audio_check(&self, ts: u8) -> Option<AudioCheck> {
        self.bearers.get(ts as usize).map(|b| b.party.check())
    }

    /// One chunk of a bearer: the remote party talks while its call is active and listens
    /// to what the PBX sends.
    pub(crate) fn bearer_tick(
        &mut self,
        ts: u8,
        law: Law,
        plan: &SignaturePlan,
        from_pbx: &Chunk,
        to_pbx: &mut Chunk,
    ) {
        if let Some(b) = self.bearers.get_mut(ts as usize) {
            b.party.tick(law, plan, from_pbx, to_pbx);
        }
    }
}

fn remote_call(h: CallHandle, c: &XCall, state: CallState) -> RemoteCall {
    RemoteCall {
        handle: h.0,
        direction: c.direction,
        ts: c.ts,
        called: c.called.clone(),
        calling: c.calling.clone(),
        state,
        answered: c.answered,
        cause: c.cause,
    }
}

/// A span's far end inside the card.
pub(crate) struct SpanFar {
    /// The D-channel's channel id.
    pub(crate) dchan: ChannelId,
    /// The exchange, when the span has one.
    pub(crate) exchange: Option<Box<Exchange>>,
    /// The external peer's socket, when the span is bound to one.
    pub(crate) sock: Option<Box<DChannelSocket>>,
    /// Socket errors (the peer's frames or ours lost).
    pub(crate) sock_errors: u64,
    /// The socket's peer connected (`true`) or left (`false`) since the card last looked.
    pub(crate) peer_change: Option<bool>,
    /// Fault injection: the D-channel loses every frame both ways.
    pub(crate) cut: bool,
    /// The physical layer is up (span configured, no alarm).
    pub(crate) up: bool,
    /// Frames the PBX sent with nobody to take them.
    pub(crate) dropped: u64,
    /// Fault injection: the exchange's D-channel frames take this long each way, ms.
    pub(crate) delay_ms: u64,
    /// Frames on their way (delay): (due tick, towards the exchange, frame).
    pub(crate) in_flight: std::collections::VecDeque<(Tick, bool, HdlcFrame)>,
}

impl SpanFar {
    /// A frame from the PBX.
    pub(crate) fn frame_in(&mut self, now: Tick, frame: &HdlcFrame) {
        if !self.up || self.cut {
            self.dropped += 1;
            return;
        }
        if self.exchange.is_some() && self.delay_ms > 0 {
            self.in_flight.push_back((now + self.delay_ms, true, *frame));
        } else if let Some(x) = self.exchange.as_mut() {
            x.receive(now, frame.as_bytes());
        } else if let Some(sock) = self.sock.as_mut() {
            match sock.send(frame.as_bytes()) {
                Ok(true) => {}
                Ok(false) => self.dropped += 1,
                Err(_) => self.sock_errors += 1,
            }
        } else {
            self.dropped += 1;
        }
    }

    /// The next tick at which this far end acts on its own (see [`Exchange::next_due`]);
    /// a socket peer may act at any tick.
    pub(crate) fn next_due(&self, now: Tick) -> Option<Tick> {
        if self.sock.is_some() || self.peer_change.is_some() {
            return Some(now + 1);
        }
        let flight = self.in_flight.front().map(|(due, _, _)| *due);
        let x = if self.up { self.exchange.as_ref().and_then(|x| x.next_due()) } else { None };
        flight.into_iter().chain(x).min()
    }

    /// Run the far end at `now`: frames it sends reach the PBX as HAL events.
    pub(crate) fn step(&mut self, now: Tick, events: &mut EventQueue) {
        let (dchan, deliver) = (self.dchan, self.up && !self.cut);
        if let Some(sock) = self.sock.as_mut() {
            // A peer coming or going is the cable being plugged in or pulled: the card raises
            // or clears LOS (see `SimCard::exchange`).
            while let Ok(Some(ev)) = sock.poll_event() {
                self.peer_change = Some(ev == crate::dsock::DSockEvent::Connected);
            }
            let mut buf = [0u8; MAX_FRAME];
            loop {
                match sock.try_recv(&mut buf) {
                    Ok(Some(n)) => {
                        if deliver {
                            if let Some(frame) = HdlcFrame::new(&buf[..n]) {
                                events.push(HalEvent::HdlcFrame(dchan, frame));
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.sock_errors += 1;
                        break;
                    }
                }
            }
        }
        // Delayed frames due now (in order: the delay is the same for every frame).
        while self.in_flight.front().is_some_and(|(due, _, _)| *due <= now) {
            let (_, to_exchange, frame) = self.in_flight.pop_front().expect("checked");
            if !deliver {
                continue;
            }
            match self.exchange.as_mut() {
                Some(x) if to_exchange => x.receive(now, frame.as_bytes()),
                _ => events.push(HalEvent::HdlcFrame(dchan, frame)),
            }
        }
        let (delay, in_flight) = (self.delay_ms, &mut self.in_flight);
        if let Some(x) = self.exchange.as_mut() {
            x.step(now, |f| {
                if deliver {
                    if let Some(frame) = HdlcFrame::new(f) {
                        if delay > 0 {
                            in_flight.push_back((now + delay, false, frame));
                        } else {
                            events.push(HalEvent::HdlcFrame(dchan, frame));
                        }
                    }
                }
            });
        }
    }

    /// The physical layer changed (alarms raised or cleared).
    pub(crate) fn set_up(&mut self, now: Tick, up: bool) {
        self.up = up;
        if let Some(x) = self.exchange.as_mut() {
            x.physical(now, up);
        }
    }
}
