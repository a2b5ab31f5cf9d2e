//! [`SimCard`]: the software card behind the HAL traits.

use crate::clock::{Clock, ClockStats};
use crate::coline::SimCoLine;
use crate::config::{ClockMode, SimConfig};
use crate::e1::{Exchange, ExchangeCounters, RemoteCall, SpanFar, SpanFarEnd};
use crate::events::EventQueue;
use crate::extaudio::{ExtAudioStats, ExtBinding};
use crate::phone::SimPhone;
use crate::signature::{AudioCheck, EndpointId, SignaturePlan, MAX_ENDPOINTS};
use crate::traffic::{TrafficConfig, TrafficGen, TrafficStats};
use cardpbx_dsp::g711;
use cardpbx_hal::{
    Alarms, Card, CardInfo, ChannelId, ChannelInfo, Chunk, ClockSource, Error, ErrorKind,
    FxoCommand, FxsCommand, HalCommand, HalEvent, Law, MediaIo, Result, SigKind, SignallingIo,
    SpanConfig, SpanControl, SpanCounters, SpanId, SpanInfo, SpanStatus, Tick, CHUNK_SAMPLES,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Timeslots per E1 span that carry a channel (1..=31; timeslot 0 is framing).
pub const E1_TIMESLOTS: u8 = 31;
/// The E1 timeslot of the D-channel.
pub const DCHANNEL_TIMESLOT: u8 = 16;

/// What sits behind a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Far {
    Phone(usize),
    CoLine(usize),
    /// E1 bearer timeslot (span index from 0, timeslot): the span's remote party, if any.
    Bearer(usize, u8),
    /// E1 D-channel (timeslot 16): carries HDLC frames, no audio.
    DChannel,
}

#[derive(Debug, Clone, Copy)]
struct SpanState {
    config: Option<SpanConfig>,
    alarms: Alarms,
    counters: SpanCounters,
}

/// The software card: FXS ports with simulated phones, FXO ports on simulated central-office
/// lines, and E1 spans, paced by a virtual or real-time clock.
///
/// Channel layout ([`ChannelId`] order): FXS ports 1..=n (`fxs1`..), then FXO ports 1..=m
/// (`fxo1`..), then for each E1 span its timeslots 1..=31 (`span1/ts1`..; timeslot 16 is the
/// D-channel, the others CCS bearers).
///
/// The far ends run inside [`MediaIo::exchange`], once per tick, in channel order; nothing
/// random happens outside the seeded traffic generator, so the same configuration and the same
/// calls give the same event trace.
pub struct SimCard {
    info: CardInfo,
    law: g711::Law,
    clock: Clock,
    plan: SignaturePlan,
    far: Vec<Far>,
    phones: Vec<SimPhone>,
    lines: Vec<SimCoLine>,
    spans: Vec<SpanState>,
    fars: Vec<SpanFar>,
    /// MFC/R2 far ends of CAS spans (index = span - 1), see [`crate::r2far`].
    pub(crate) r2: Vec<Option<Box<crate::r2far::R2Exchange>>>,
    events: EventQueue,
    ext: Vec<ExtBinding>,
    /// Simulated fax machines as the far end of channels ([`crate::faxpeer`]).
    faxes: Vec<(ChannelId, crate::faxpeer::SimFax)>,
    traffic: Option<TrafficGen>,
    traffic_stats: Arc<TrafficStats>,
    seed: u64,
    gone: bool,
    gone_reported: bool,
    idle_tx: Vec<Chunk>,
    idle_rx: Vec<Chunk>,
}

impl std::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCard")
            .field("name", &self.info.name)
            .field("channels", &self.far.len())
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

fn dsp_law(law: Law) -> g711::Law {
    match law {
        Law::Alaw => g711::Law::Alaw,
        Law::Ulaw => g711::Law::Ulaw,
    }
}

fn gone() -> Error {
    Error::new(ErrorKind::Gone, "simulated card was unplugged")
}

impl SimCard {
    /// A card built from `cfg`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for more than [`MAX_ENDPOINTS`] analog ports or a ring
    /// cadence that is empty, odd in length or has a zero time.
    pub fn new(cfg: SimConfig) -> Result<Self> {
        let bad = |m: String| Error::new(ErrorKind::InvalidArgument, m);
        let plan = SignaturePlan::with_spans(cfg.fxs_ports, cfg.fxo_ports, cfg.e1_spans)
            .ok_or_else(|| {
                bad(format!(
                    "sim card {}: {} FXS + {} FXO ports + 30 per E1 span ({}) exceed the {} \
                     distinct audio signatures",
                    cfg.name, cfg.fxs_ports, cfg.fxo_ports, cfg.e1_spans, MAX_ENDPOINTS
                ))
            })?;
        let cad = &cfg.co.ring_cadence_ms;
        if cad.is_empty() || cad.len() & 1 == 1 || cad.contains(&0) {
            return Err(bad(format!(
                "sim card {}: co.ring_cadence_ms {cad:?} must be non-empty on/off pairs of non-zero ms",
                cfg.name
            )));
        }
        cardpbx_dsp::tone::init();
        let law = dsp_law(cfg.law);
        let mut channels = Vec::new();
        let mut far = Vec::new();
        let mut phones = Vec::new();
        let mut lines = Vec::new();
        let mut chan = |name: String, sig, span: Option<SpanId>, ts: Option<u8>, port| {
            let id = ChannelId(channels.len() as u32);
            channels.push(ChannelInfo { id, name, sig, law: cfg.law, span, timeslot: ts, port });
            id
        };
        for p in 1..=cfg.fxs_ports {
            let id = chan(format!("fxs{p}"), SigKind::FxsLoopStart, None, None, Some(p));
            far.push(Far::Phone(phones.len()));
            phones.push(SimPhone::new(p, id, law, cfg.phone, &plan));
        }
        for p in 1..=cfg.fxo_ports {
            let id = chan(format!("fxo{p}"), SigKind::FxoLoopStart, None, None, Some(p));
            far.push(Far::CoLine(lines.len()));
            lines.push(SimCoLine::new(p, id, law, cfg.co.clone(), &plan));
        }
        let mut spans = Vec::new();
        let mut span_infos = Vec::new();
        let mut fars = Vec::new();
        for s in 1..=cfg.e1_spans {
            let mut dchan = ChannelId(0);
            for ts in 1..=E1_TIMESLOTS {
                let sig =
                    if ts == DCHANNEL_TIMESLOT { SigKind::DChannel } else { SigKind::CcsBearer };
                let id = chan(format!("span{s}/ts{ts}"), sig, Some(SpanId(s)), Some(ts), None);
                if ts == DCHANNEL_TIMESLOT {
                    dchan = id;
                    far.push(Far::DChannel);
                } else {
                    far.push(Far::Bearer(s as usize - 1, ts));
                }
            }
            let (mut exchange, mut sock) = (None, None);
            match cfg.span_far.get(s as usize - 1) {
                Some(SpanFarEnd::Exchange(side)) => {
                    exchange = Some(Box::new(Exchange::new(*side, s, cfg.exchange.clone(), &plan)))
                }
                Some(SpanFarEnd::Socket(path)) => {
                    let l = crate::dsock::DChannelSocket::listen(path).map_err(|e| {
                        Error::new(
                            ErrorKind::Io,
                            format!(
                                "sim card {}: span {s}: cannot listen on D-channel socket {}: {e}",
                                cfg.name,
                                path.display()
                            ),
                        )
                    })?;
                    sock = Some(Box::new(l));
                }
                // An R2 far end lives in `r2` (crate::r2far), not on the D-channel.
                Some(SpanFarEnd::None | SpanFarEnd::R2Exchange) | None => {}
            }
            // A socket-bound span has no signal until its peer connects.
            let no_signal = if sock.is_some() { Alarms::LOS } else { Alarms::NONE };
            fars.push(SpanFar {
                dchan,
                exchange,
                sock,
                sock_errors: 0,
                peer_change: None,
                cut: false,
                up: false,
                dropped: 0,
                delay_ms: 0,
                in_flight: std::collections::VecDeque::new(),
            });
            span_infos.push(SpanInfo {
                id: SpanId(s),
                name: format!("{}/span{s}", cfg.name),
                timeslots: 32,
            });
            spans.push(SpanState {
                config: None,
                alarms: Alarms::NOT_OPEN.union(no_signal),
                counters: SpanCounters::default(),
            });
        }
        let n = channels.len();
        let info = CardInfo {
            name: cfg.name.clone(),
            driver: "sim".into(),
            model: format!(
                "cardpbx simulator: {} FXS, {} FXO, {} E1",
                cfg.fxs_ports, cfg.fxo_ports, cfg.e1_spans
            ),
            spans: span_infos,
            channels,
        };
        let r2 = crate::r2far::build(&cfg, &plan);
        Ok(SimCard {
            r2,
            info,
            law,
            clock: Clock::new(cfg.clock),
            plan,
            far,
            phones,
            lines,
            spans,
            fars,
            events: EventQueue::with_capacity(4 * n + 64),
            ext: Vec::new(),
            faxes: Vec::new(),
            traffic: None,
            traffic_stats: Arc::new(TrafficStats::default()),
            seed: cfg.seed,
            gone: false,
            gone_reported: false,
            idle_tx: vec![[law.silence(); CHUNK_SAMPLES]; n],
            idle_rx: vec![[law.silence(); CHUNK_SAMPLES]; n],
        })
    }

    /// The phone on FXS port `port` (1-based).
    pub fn phone(&self, port: u32) -> Option<&SimPhone> {
        self.phones.get((port as usize).wrapping_sub(1))
    }

    /// The phone on FXS port `port`, to act on it.
    pub fn phone_mut(&mut self, port: u32) -> Option<&mut SimPhone> {
        self.phones.get_mut((port as usize).wrapping_sub(1))
    }

    /// The CO line on FXO port `port` (1-based).
    pub fn co_line(&self, port: u32) -> Option<&SimCoLine> {
        self.lines.get((port as usize).wrapping_sub(1))
    }

    /// The CO line on FXO port `port`, to act on it.
    pub fn co_line_mut(&mut self, port: u32) -> Option<&mut SimCoLine> {
        self.lines.get_mut((port as usize).wrapping_sub(1))
    }

    /// All phones, in port order.
    pub fn phones(&self) -> &[SimPhone] {
        &self.phones
    }

    /// All CO lines, in port order.
    pub fn co_lines(&self) -> &[SimCoLine] {
        &self.lines
    }

    /// The channel of FXS port `port`.
    pub fn fxs_channel(&self, port: u32) -> Option<ChannelId> {
        self.phone(port).map(SimPhone::channel)
    }

    /// The channel of FXO port `port`.
    pub fn fxo_channel(&self, port: u32) -> Option<ChannelId> {
        self.co_line(port).map(SimCoLine::channel)
    }

    /// The channel of timeslot `ts` (1..=31) on E1 span `span` (1-based).
    pub fn timeslot_channel(&self, span: u32, ts: u8) -> Option<ChannelId> {
        if span == 0 || span as usize > self.spans.len() || !(1..=E1_TIMESLOTS).contains(&ts) {
            return None;
        }
        let base = self.phones.len() + self.lines.len();
        let idx = base + (span as usize - 1) * E1_TIMESLOTS as usize + (ts as usize - 1);
        Some(ChannelId(idx as u32))
    }

    /// The channel an endpoint hangs on.
    pub fn endpoint_channel(&self, id: EndpointId) -> Option<ChannelId> {
        match id {
            EndpointId::Phone(p) => self.fxs_channel(p),
            EndpointId::CoLine(p) => self.fxo_channel(p),
            EndpointId::Bearer { span, ts } => self.timeslot_channel(span, ts),
        }
    }

    /// The audio path check of any endpoint (phone, CO line, or the remote party of a PRI or R2 timeslot); `None`
    /// when the card has no such endpoint.
    pub fn audio_check(&self, id: EndpointId) -> Option<AudioCheck> {
        match id {
            EndpointId::Phone(p) => self.phone(p).map(SimPhone::audio_check),
            EndpointId::CoLine(p) => self.co_line(p).map(SimCoLine::audio_check),
            EndpointId::Bearer { span, ts } => {
                self.pri_audio_check(span, ts).or_else(|| self.r2_audio_check(span, ts))
            }
        }
    }

    /// Make endpoint `id` expect `peer`'s signature (`None`: expect nothing in particular).
    pub fn expect_peer(&mut self, id: EndpointId, peer: Option<EndpointId>) {
        match id {
            EndpointId::Phone(p) => {
                if let Some(ph) = self.phone_mut(p) {
                    ph.expect_peer(peer);
                }
            }
            EndpointId::CoLine(p) => {
                if let Some(l) = self.co_line_mut(p) {
                    l.expect_peer(peer);
                }
            }
            EndpointId::Bearer { span, ts } => {
                self.pri_expect_peer(span, ts, peer);
                self.r2_expect_peer(span, ts, peer);
            }
        }
    }

    /// The frequencies of an endpoint's audio signature.
    pub fn signature_of(&self, id: EndpointId) -> [f32; 2] {
        self.plan.signature(id)
    }

    /// The signature plan (to classify audio outside the card, as endpoints do).
    pub fn signature_plan(&self) -> &SignaturePlan {
        &self.plan
    }

    /// How well the real-time clock kept pace.
    pub fn clock_stats(&self) -> ClockStats {
        self.clock.stats()
    }

    /// The clock mode.
    pub fn clock_mode(&self) -> ClockMode {
        self.clock.mode()
    }

    /// Events dropped because the event queue was full (the caller polls too rarely).
    pub fn events_dropped(&self) -> u64 {
        self.events.dropped()
    }

    /// D-channel frames from the PBX that nobody took (no far end, span down, D-channel cut).
    pub fn hdlc_frames_dropped(&self) -> u64 {
        self.fars.iter().map(|f| f.dropped).sum()
    }

    fn exchange_mut(&mut self, span: u32) -> Result<&mut Exchange> {
        let name = &self.info.name;
        self.fars
            .get_mut((span as usize).wrapping_sub(1))
            .and_then(|f| f.exchange.as_deref_mut())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("{name}: span {span} has no simulated exchange"),
                )
            })
    }

    fn exchange_ref(&self, span: u32) -> Option<&Exchange> {
        self.fars.get((span as usize).wrapping_sub(1)).and_then(|f| f.exchange.as_deref())
    }

    /// Calls of the exchange on `span` not yet cleared (0 without an exchange): the trunks
    /// it holds.
    pub fn pri_active_calls(&self, span: u32) -> usize {
        self.exchange_ref(span).map_or(0, Exchange::active_calls)
    }

    /// The bearer timeslot of exchange call `handle` on `span` while it is up.
    pub fn pri_call_channel(&self, span: u32, handle: u32) -> Option<u8> {
        self.exchange_ref(span).and_then(|x| x.call_channel(handle))
    }

    /// Event-driven mode: the next tick at which something on the card can happen without
    /// anyone acting on it (a far end's timer, a phone answering a ring, a frame arriving, an
    /// event to report), or `None` when nothing is pending. Audio is not counted: ticks
    /// skipped with [`advance_to`](Self::advance_to) carry no samples. With anything that
    /// needs every tick (the traffic generator, CO lines not idle, R2 far ends, fax or external
    /// audio peers, the real-time clock) it is the next tick.
    pub fn next_due(&self) -> Option<Tick> {
        let now = self.clock.now();
        let busy = self.clock.mode() != ClockMode::Virtual
            || self.gone
            || !self.events.is_empty()
            || self.traffic.is_some()
            || !self.ext.is_empty()
            || !self.faxes.is_empty()
            || self.r2.iter().any(Option::is_some)
            || self.lines.iter().any(|l| l.state() != crate::coline::CoState::Idle);
        if busy {
            return Some(now + 1);
        }
        let phones = self.phones.iter().filter_map(SimPhone::next_due);
        let fars = self.fars.iter().filter_map(|f| f.next_due(now));
        phones.chain(fars).min().map(|t| t.max(now + 1))
    }

    /// Event-driven mode (virtual clock only): the next tick is `t` instead of now + 1; the
    /// ticks between are skipped (no samples, no far-end steps). Use it only up to
    /// [`next_due`](Self::next_due), so that nothing that was due is late.
    pub fn advance_to(&mut self, t: Tick) {
        self.clock.skip_to(t);
    }

    /// The simulated exchange on `span` places a call to the PBX; returns its handle.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without an exchange on that span; [`ErrorKind::InvalidArgument`] when
    /// the exchange refuses (data link down, no free channel).
    pub fn pri_call_in(&mut self, span: u32, calling: Option<&str>, called: &str) -> Result<u32> {
        self.check_alive()?;
        let now = self.clock.now();
        self.exchange_mut(span)?
            .call_in(now, calling, called, false)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("span {span}: {e}")))
    }

    /// As [`pri_call_in`](Self::pri_call_in) with overlap sending: the SETUP carries `first`
    /// digits without Sending complete; more follow with [`pri_send_digits`](Self::pri_send_digits).
    ///
    /// # Errors
    /// As [`pri_call_in`](Self::pri_call_in).
    pub fn pri_call_in_overlap(
        &mut self,
        span: u32,
        calling: Option<&str>,
        first: &str,
    ) -> Result<u32> {
        self.check_alive()?;
        let now = self.clock.now();
        self.exchange_mut(span)?
            .call_in(now, calling, first, true)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("span {span}: {e}")))
    }

    /// Overlap sending: more called digits for exchange call `handle` on `span` (INFORMATION,
    /// with Sending complete when `complete`).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without an exchange; [`ErrorKind::InvalidArgument`] when the
    /// call is not in overlap sending (no SETUP ACKNOWLEDGE yet).
    pub fn pri_send_digits(
        &mut self,
        span: u32,
        handle: u32,
        digits: &str,
        complete: bool,
    ) -> Result<()> {
        let now = self.clock.now();
        self.exchange_mut(span)?
            .send_digits(now, handle, digits, complete)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("span {span}: {e}")))
    }

    /// The remote party of exchange call `handle` on `span` hangs up. False when there is no
    /// such call.
    pub fn pri_hang_up(&mut self, span: u32, handle: u32) -> bool {
        let now = self.clock.now();
        self.exchange_mut(span).is_ok_and(|x| x.hang_up(now, handle))
    }

    /// The remote party of exchange call `handle` on `span` presses DTMF `digits` (after the
    /// PBX answered), for example to walk through an IVR menu.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without an exchange; [`ErrorKind::InvalidArgument`] when the
    /// call is not answered or a digit is not a DTMF key.
    pub fn pri_remote_dtmf(&mut self, span: u32, handle: u32, digits: &str) -> Result<()> {
        self.exchange_mut(span)?
            .remote_dtmf(handle, digits)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("span {span}: {e}")))
    }

    /// The exchange's calls on `span`: those up now, then the cleared ones.
    pub fn pri_calls(&self, span: u32) -> Vec<RemoteCall> {
        self.exchange_ref(span).map(Exchange::calls).unwrap_or_default()
    }

    /// Numbers the PBX called on `span`, in order.
    pub fn pri_dialed(&self, span: u32) -> Vec<String> {
        self.exchange_ref(span).map(|x| x.dialed().to_vec()).unwrap_or_default()
    }

    /// The exchange's counters on `span`.
    pub fn exchange_counters(&self, span: u32) -> Option<ExchangeCounters> {
        self.exchange_ref(span).map(Exchange::counters)
    }

    /// Whether the exchange's data link on `span` is established.
    pub fn pri_link_up(&self, span: u32) -> bool {
        self.exchange_ref(span).is_some_and(Exchange::link_is_up)
    }

    /// Expect `peer`'s signature on the bearer `ts` of `span` while its call is active.
    pub fn pri_expect_peer(&mut self, span: u32, ts: u8, peer: Option<EndpointId>) {
        if let Ok(x) = self.exchange_mut(span) {
            x.expect_peer(ts, peer);
        }
    }

    /// The audio path check of the remote party on bearer `ts` of `span`.
    pub fn pri_audio_check(&self, span: u32, ts: u8) -> Option<AudioCheck> {
        self.exchange_ref(span).and_then(|x| x.audio_check(ts))
    }

    /// Fault injection: the exchange on `span` keeps its data link up but its call control
    /// ignores every message from the PBX (`true`), so the PBX's Q.931 timers run out.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without an exchange on that span.
    pub fn pri_set_deaf(&mut self, span: u32, deaf: bool) -> Result<()> {
        self.exchange_mut(span)?.set_deaf(deaf);
        Ok(())
    }

    /// Fault injection: the simulated exchange's D-channel frames on `span` take `ms` each way
    /// (a long or slow link), so that messages from both ends can cross.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown span.
    pub fn set_dchannel_delay(&mut self, span: u32, ms: u64) -> Result<()> {
        let name = &self.info.name;
        let f = self
            .fars
            .get_mut((span as usize).wrapping_sub(1))
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("{name}: no span {span}")))?;
        f.delay_ms = ms;
        Ok(())
    }

    /// Fault injection: cut (`true`) or restore the D-channel of `span` without an alarm;
    /// frames are lost both ways while it is cut.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown span.
    pub fn set_dchannel_cut(&mut self, span: u32, cut: bool) -> Result<()> {
        let name = &self.info.name;
        let f = self
            .fars
            .get_mut((span as usize).wrapping_sub(1))
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("{name}: no span {span}")))?;
        f.cut = cut;
        Ok(())
    }

    /// Tell the span's far end whether its physical layer works (no alarm, configured).
    fn span_physical(&mut self, span: SpanId) {
        let idx = (span.0 as usize).wrapping_sub(1);
        let (Some(st), Some(far)) = (self.spans.get(idx), self.fars.get_mut(idx)) else { return };
        let up = st.config.is_some() && !st.alarms.intersects(Alarms::OUT_OF_SERVICE);
        far.set_up(self.clock.now(), up);
        let cas = st.config.is_some_and(|c| c.framing == cardpbx_hal::Framing::Cas);
        crate::r2far::set_up(&mut self.r2, idx, self.clock.now(), up && cas);
    }

    /// One tick: [`wait_tick`](ClockSource::wait_tick) then [`exchange`](MediaIo::exchange).
    ///
    /// # Errors
    /// As those two.
    pub fn step(&mut self, tx: &[Chunk], rx: &mut [Chunk]) -> Result<Tick> {
        let t = self.wait_tick()?;
        self.exchange(tx, rx)?;
        Ok(t)
    }

    /// Run `ticks` ticks with every channel of ours sending silence, handing each event to
    /// `on_event` with the tick it was read on.
    ///
    /// # Errors
    /// As [`step`](Self::step).
    pub fn run_idle(&mut self, ticks: u64, mut on_event: impl FnMut(Tick, HalEvent)) -> Result<()> {
        let mut tx = std::mem::take(&mut self.idle_tx);
        let mut rx = std::mem::take(&mut self.idle_rx);
        let mut res = Ok(());
        for _ in 0..ticks {
            match self.step(&tx, &mut rx) {
                Ok(t) => {
                    while let Some(ev) = self.poll_event() {
                        on_event(t, ev);
                    }
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        tx.iter_mut().for_each(|c| *c = [self.law.silence(); CHUNK_SAMPLES]);
        self.idle_tx = tx;
        self.idle_rx = rx;
        res
    }

    /// Fault injection: set a span's alarms and report them ([`HalEvent::Alarm`]).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown span, [`ErrorKind::Gone`] after unplug.
    pub fn set_span_alarm(&mut self, span: SpanId, alarms: Alarms) -> Result<()> {
        self.check_alive()?;
        let st = self.span_mut(span)?;
        if st.alarms != alarms {
            st.alarms = alarms;
            self.events.push(HalEvent::Alarm(span, alarms));
        }
        self.span_physical(span);
        Ok(())
    }

    /// Fault injection: add to a span's error counters (slips, CRC-4 errors, ...).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown span, [`ErrorKind::Gone`] after unplug.
    pub fn add_span_errors(&mut self, span: SpanId, add: SpanCounters) -> Result<()> {
        self.check_alive()?;
        let c = &mut self.span_mut(span)?.counters;
        c.slips += add.slips;
        c.crc4_errors += add.crc4_errors;
        c.bipolar_violations += add.bipolar_violations;
        c.frame_errors += add.frame_errors;
        c.ebit_errors += add.ebit_errors;
        Ok(())
    }

    /// Fault injection: the card vanishes. Every later call fails with [`ErrorKind::Gone`]
    /// and [`HalEvent::CardGone`] is reported once after the pending events.
    pub fn unplug(&mut self) {
        self.gone = true;
        self.ext.clear();
    }

    /// Whether [`unplug`](Self::unplug) was called.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Make another program the far end of `chan`'s audio: what our side transmits on the
    /// channel is written to `to_peer`, and what the peer writes to `from_peer` is what the
    /// channel receives. Raw s16le 8 kHz PCM in lock-step 160-sample blocks; missing paths
    /// are created as FIFOs. The channel's hook and ring signalling stay simulated.
    ///
    /// On the virtual clock each block waits for the peer (at most 30 s); on the real-time
    /// clock a helper thread buffers, the tick never blocks, and missing blocks are silence.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown channel, [`ErrorKind::WrongSignalling`] for a
    /// channel without audio, [`ErrorKind::Io`] when a FIFO cannot be created.
    pub fn bind_external_audio(
        &mut self,
        chan: ChannelId,
        to_peer: PathBuf,
        from_peer: PathBuf,
    ) -> Result<()> {
        self.check_alive()?;
        let info = self.channel_info(chan)?;
        if !info.sig.carries_audio() {
            return Err(Error::new(
                ErrorKind::WrongSignalling,
                format!("{}: {} carries no audio", self.info.name, info.name),
            ));
        }
        self.ext.retain(|b| b.channel() != chan);
        let realtime = self.clock.mode() == ClockMode::RealTime;
        let b = ExtBinding::start(chan, self.law, realtime, to_peer, from_peer)?;
        self.ext.push(b);
        Ok(())
    }

    /// Stop the external peer on `chan` (its FIFOs see end of file). Returns false if none.
    pub fn unbind_external_audio(&mut self, chan: ChannelId) -> bool {
        let before = self.ext.len();
        self.ext.retain(|b| b.channel() != chan);
        self.ext.len() != before
    }

    /// Make a simulated fax machine the far end of `chan`'s audio (an FXO line or a PRI
    /// bearer; its signalling stays simulated), replacing one already there.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] for an unknown channel, [`ErrorKind::WrongSignalling`] for a
    /// channel without audio.
    pub fn attach_fax(&mut self, chan: ChannelId, fax: crate::faxpeer::SimFax) -> Result<()> {
        self.check_alive()?;
        let info = self.channel_info(chan)?;
        if !info.sig.carries_audio() {
            return Err(Error::new(
                ErrorKind::WrongSignalling,
                format!("{}: {} carries no audio", self.info.name, info.name),
            ));
        }
        self.faxes.retain(|(c, _)| *c != chan);
        self.faxes.push((chan, fax));
        Ok(())
    }

    /// The simulated fax machine on `chan`.
    pub fn fax(&self, chan: ChannelId) -> Option<&crate::faxpeer::SimFax> {
        self.faxes.iter().find(|(c, _)| *c == chan).map(|(_, f)| f)
    }

    /// Take the simulated fax machine off `chan`.
    pub fn detach_fax(&mut self, chan: ChannelId) -> Option<crate::faxpeer::SimFax> {
        let i = self.faxes.iter().position(|(c, _)| *c == chan)?;
        Some(self.faxes.remove(i).1)
    }

    /// Change the numbers the simulated exchange on `span` answers busy.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without an exchange on that span.
    pub fn set_busy_numbers(&mut self, span: u32, numbers: Vec<String>) -> Result<()> {
        self.exchange_mut(span)?.config_mut().busy_numbers = numbers;
        Ok(())
    }

    /// Counters of the external peer bound to `chan`.
    pub fn external_audio_stats(&self, chan: ChannelId) -> Option<ExtAudioStats> {
        self.ext.iter().find(|b| b.channel() == chan).map(ExtBinding::stats)
    }

    /// Start the seeded traffic generator (replacing one already running).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when the configuration names ports the card lacks.
    pub fn start_traffic(&mut self, cfg: TrafficConfig) -> Result<()> {
        let gen = TrafficGen::new(
            cfg,
            self.seed,
            self.phones.len(),
            self.lines.len(),
            self.traffic_stats.clone(),
        )
        .map_err(|m| Error::new(ErrorKind::InvalidArgument, format!("{}: {m}", self.info.name)))?;
        self.traffic = Some(gen);
        Ok(())
    }

    /// Stop generating new calls; calls in progress are left as they are.
    pub fn stop_traffic(&mut self) {
        self.traffic = None;
    }

    /// The traffic counters, shared with other threads (atomics).
    pub fn traffic_stats(&self) -> Arc<TrafficStats> {
        self.traffic_stats.clone()
    }

    fn check_alive(&self) -> Result<()> {
        if self.gone {
            Err(gone())
        } else {
            Ok(())
        }
    }

    fn channel_info(&self, chan: ChannelId) -> Result<&ChannelInfo> {
        self.info.channel(chan).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("{}: no channel {}", self.info.name, chan.0))
        })
    }

    fn span_mut(&mut self, span: SpanId) -> Result<&mut SpanState> {
        let name = &self.info.name;
        let idx = (span.0 as usize).wrapping_sub(1);
        self.spans
            .get_mut(idx)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("{name}: no {span}")))
    }

    fn wrong(&self, chan: ChannelId, what: &str) -> Error {
        let name = self.info.channel(chan).map_or("?", |c| c.name.as_str());
        Error::new(
            ErrorKind::WrongSignalling,
            format!("{}: {what} does not apply to {name}", self.info.name),
        )
    }
}

impl ClockSource for SimCard {
    fn wait_tick(&mut self) -> Result<Tick> {
        self.check_alive()?;
        Ok(self.clock.wait_tick())
    }

    fn now(&self) -> Tick {
        self.clock.now()
    }
}

impl MediaIo for SimCard {
    fn channel_count(&self) -> usize {
        self.far.len()
    }

    /// # Real-time
    /// Per channel: one far-end step (constant work; the signature filters only for off-hook
    /// endpoints); per bound external peer one block hand-over every 20 ticks; the traffic
    /// generator's bounded step. No allocation.
    fn exchange(&mut self, tx: &[Chunk], rx: &mut [Chunk]) -> Result<()> {
        self.check_alive()?;
        let n = self.far.len();
        if tx.len() != n || rx.len() != n {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{}: exchange needs {n} channels, got tx {} rx {}",
                    self.info.name,
                    tx.len(),
                    rx.len()
                ),
            ));
        }
        let now = self.clock.now();
        if let Some(gen) = self.traffic.as_mut() {
            gen.step(now, &mut self.phones, &mut self.lines, &mut self.fars);
        }
        let silence = [self.law.silence(); CHUNK_SAMPLES];
        for i in 0..self.fars.len() {
            self.fars[i].step(now, &mut self.events);
            if let Some(connected) = self.fars[i].peer_change.take() {
                let span = SpanId(i as u32 + 1);
                let st = &mut self.spans[i];
                let alarms = if connected {
                    st.alarms.without(Alarms::LOS)
                } else {
                    st.alarms.union(Alarms::LOS)
                };
                if alarms != st.alarms {
                    st.alarms = alarms;
                    self.events.push(HalEvent::Alarm(span, alarms));
                }
                self.span_physical(span);
            }
        }
        crate::r2far::step_all(&mut self.r2, now, &mut self.events);
        for (i, far) in self.far.iter().enumerate() {
            match *far {
                Far::Phone(p) => {
                    self.phones[p].tick(now, &self.plan, &tx[i], &mut rx[i], &mut self.events)
                }
                Far::CoLine(l) => {
                    self.lines[l].tick(now, &self.plan, &tx[i], &mut rx[i], &mut self.events)
                }
                Far::Bearer(s, ts) if self.r2[s].is_some() => {
                    if let Some(x) = self.r2[s].as_deref_mut() {
                        x.bearer_tick(now, ts, self.law, &self.plan, &tx[i], &mut rx[i]);
                    }
                }
                Far::Bearer(s, ts) => {
                    let f = &mut self.fars[s];
                    match f.exchange.as_deref_mut() {
                        Some(x) if f.up => {
                            x.bearer_tick(ts, self.law, &self.plan, &tx[i], &mut rx[i])
                        }
                        _ => rx[i] = silence,
                    }
                }
                Far::DChannel => rx[i] = silence,
            }
        }
        for b in &mut self.ext {
            b.exchange(tx, rx);
        }
        for (c, f) in &mut self.faxes {
            f.tick(self.law, &tx[c.index()], &mut rx[c.index()]);
        }
        Ok(())
    }
}

impl SignallingIo for SimCard {
    fn poll_event(&mut self) -> Option<HalEvent> {
        if let Some(ev) = self.events.pop() {
            return Some(ev);
        }
        if self.gone && !self.gone_reported {
            self.gone_reported = true;
            return Some(HalEvent::CardGone);
        }
        None
    }

    fn command(&mut self, cmd: HalCommand) -> Result<()> {
        self.check_alive()?;
        match cmd {
            HalCommand::Fxs(ch, c) => {
                self.channel_info(ch)?;
                let Far::Phone(p) = self.far[ch.index()] else {
                    return Err(self.wrong(ch, "an FXS command"));
                };
                let phone = &mut self.phones[p];
                match c {
                    FxsCommand::RingOn => phone.ring(true),
                    FxsCommand::RingOff => phone.ring(false),
                    FxsCommand::SetPolarity(_) | FxsCommand::OpenLoop(_) => phone.line_signal(),
                }
            }
            HalCommand::Fxo(ch, c) => {
                self.channel_info(ch)?;
                let Far::CoLine(l) = self.far[ch.index()] else {
                    return Err(self.wrong(ch, "an FXO command"));
                };
                let line = &mut self.lines[l];
                match c {
                    FxoCommand::OffHook => line.set_hook(true),
                    FxoCommand::OnHook => line.set_hook(false),
                    FxoCommand::Flash(ms) => line.flash(ms),
                }
            }
            HalCommand::SetCas(ch, abcd) => {
                self.channel_info(ch)?;
                // Bearers of spans configured for CAS carry ABCD bits (to the R2 far end).
                let Far::Bearer(s, ts) = self.far[ch.index()] else {
                    return Err(self.wrong(ch, "CAS bits"));
                };
                let cas =
                    self.spans[s].config.is_some_and(|c| c.framing == cardpbx_hal::Framing::Cas);
                if !cas {
                    return Err(self.wrong(ch, "CAS bits (span not configured for CAS)"));
                }
                let now = self.clock.now();
                if let Some(x) = self.r2[s].as_deref_mut() {
                    x.cas_from_pbx(now, ts, abcd);
                }
            }
            HalCommand::SendHdlc(ch, frame) => {
                let (sig, span) = {
                    let info = self.channel_info(ch)?;
                    (info.sig, info.span)
                };
                if sig != SigKind::DChannel {
                    return Err(self.wrong(ch, "an HDLC frame"));
                }
                let idx = span.map_or(usize::MAX, |s| (s.0 as usize).wrapping_sub(1));
                let now = self.clock.now();
                if let Some(f) = self.fars.get_mut(idx) {
                    f.frame_in(now, &frame);
                }
            }
            HalCommand::ConfigureSpan(span, config) => self.configure_span(span, config)?,
        }
        Ok(())
    }
}

impl SpanControl for SimCard {
    fn configure_span(&mut self, span: SpanId, config: SpanConfig) -> Result<()> {
        self.check_alive()?;
        if !matches!(config.framing, cardpbx_hal::Framing::Ccs | cardpbx_hal::Framing::Cas) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{}: {span} is E1; T1 framing {:?} is not supported",
                    self.info.name, config.framing
                ),
            ));
        }
        let st = self.span_mut(span)?;
        st.config = Some(config);
        let alarms = st.alarms.without(Alarms::NOT_OPEN);
        if alarms != st.alarms {
            st.alarms = alarms;
            self.events.push(HalEvent::Alarm(span, alarms));
        }
        self.span_physical(span);
        Ok(())
    }

    fn span_status(&self, span: SpanId) -> Result<SpanStatus> {
        self.check_alive()?;
        let idx = (span.0 as usize).wrapping_sub(1);
        let st = self.spans.get(idx).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("{}: no {span}", self.info.name))
        })?;
        Ok(SpanStatus {
            config: st.config,
            alarms: st.alarms,
            counters: st.counters,
            is_timing_source: st.config.is_some_and(|c| c.timing_priority == 1),
        })
    }
}

impl Card for SimCard {
    fn info(&self) -> &CardInfo {
        &self.info
    }
}
