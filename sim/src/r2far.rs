//! The far end of a simulated E1 CAS span: an MFC/R2 (China No.1) exchange that runs our own
//! [`R2Channel`] on every voice timeslot, opposite the PBX.
//!
//! Line signalling: the ABCD bits the PBX sets on a timeslot (`HalCommand::SetCas`) reach the
//! exchange's channel [`CAS_DELAY_MS`] later, and the exchange's bits come back the same way as
//! `HalEvent::CasBits`. Register signalling goes through the timeslot's audio: the exchange's
//! MF tones are generated with [`cardpbx_dsp::mfr2::MfGenerator`] into the G.711 samples it
//! sends, and the PBX's tones are found with [`cardpbx_dsp::mfr2::MfDetector`] in what it
//! receives, so both directions carry DNIS, ANI and category as on a real trunk.
//!
//! Behaviour (from [`ExchangeConfig`]): calls from the PBX are accepted with B-1 and answered
//! after `answer_delay_ms` (busy numbers get B-2, unallocated ones B-5); calls towards the PBX
//! are placed on request ([`SimCard::r2_call_in`]), on the highest free timeslot first (the PBX
//! hunts upwards, so glare is rare; on glare the exchange has priority); remote parties hang up
//! on request or after `hold_ms`. The remote party of each timeslot talks its signature while
//! its call is answered, like the PRI exchange's bearers.

use crate::bearer::RemoteParty;
use crate::card::{SimCard, E1_TIMESLOTS};
use crate::config::SimConfig;
use crate::e1::{ExchangeConfig, RemoteDirection, SpanFarEnd};
use crate::events::EventQueue;
use crate::signature::{AudioCheck, EndpointId, SignaturePlan};
use cardpbx_dsp::g711::Law;
use cardpbx_dsp::mfr2::{self, MfDetector, MfDetectorConfig, MfGenerator, DEFAULT_SEND_DBM0};
use cardpbx_hal::{
    Abcd, ChannelId, Chunk, ClockSource, Error, ErrorKind, HalEvent, Result, Tick, CHUNK_SAMPLES,
};
use cardpbx_signalling::r2::{
    BSignal, ClearReason, LineState, MfDirection, R2Action, R2Channel, R2Config, R2Event,
};
use std::collections::VecDeque;

/// Delay of the CAS bits each way, ms (the multiframe is 2 ms; a card adds a little).
pub const CAS_DELAY_MS: u64 = 3;

/// Most calls kept for inspection.
const HISTORY: usize = 4096;

/// The R2 settings of the simulated exchange: DNIS of any length (ended by 1 s of silence),
/// ANI asked for first, priority on glare; other timers as OpenR2's defaults.
pub fn far_r2_config() -> R2Config {
    R2Config { max_dnis: 0, dnis_timeout_ms: 1000, glare_priority: true, ..R2Config::default() }
}

/// One call as the R2 exchange sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct R2RemoteCall {
    /// The exchange's handle of the call (for [`SimCard::r2_hang_up`]).
    pub handle: u32,
    /// Which way it goes.
    pub direction: RemoteDirection,
    /// The timeslot.
    pub ts: u8,
    /// Called number (received from the PBX, or sent to it).
    pub dnis: String,
    /// Calling number (received from the PBX, or sent to it).
    pub ani: String,
    /// Calling party category (group II signal).
    pub category: u8,
    /// The group B signal that ended register signalling (sent or received).
    pub b_signal: Option<BSignal>,
    /// The call was answered.
    pub answered: bool,
    /// Why it ended, once it has.
    pub cleared: Option<ClearReason>,
}

/// Counters of one R2 exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct R2Counters {
    /// Calls the PBX placed (offered to the exchange).
    pub calls_from_pbx: u64,
    /// Of those, answered by the remote party.
    pub answered_from_pbx: u64,
    /// Calls placed towards the PBX.
    pub calls_to_pbx: u64,
    /// Of those, answered by the PBX.
    pub answered_by_pbx: u64,
    /// Calls ended (any direction, any reason).
    pub released: u64,
    /// ABCD changes received from the PBX.
    pub cas_in: u64,
    /// ABCD changes sent to the PBX.
    pub cas_out: u64,
    /// R2 protocol errors the exchange's channels saw.
    pub protocol_errors: u64,
}

/// ABCD bits on their way.
#[derive(Debug, Clone, Copy)]
struct Cas {
    at: Tick,
    ts: u8,
    abcd: Abcd,
    to_pbx: bool,
}

/// One timeslot of the exchange.
struct Slot {
    ch: R2Channel,
    /// Forward and backward generators (index by [`dir_index`]).
    gen: [MfGenerator; 2],
    det: [MfDetector; 2],
    listen: Option<MfDirection>,
    party: RemoteParty,
    /// Index of the current call in `R2Exchange::calls`.
    call: Option<usize>,
    answer_at: Option<Tick>,
    hang_up_at: Option<Tick>,
}

fn dir_index(d: MfDirection) -> usize {
    match d {
        MfDirection::Forward => 0,
        MfDirection::Backward => 1,
    }
}

/// The simulated R2 exchange of one span.
pub(crate) struct R2Exchange {
    cfg: ExchangeConfig,
    /// Channel id of timeslot 1.
    base: ChannelId,
    /// Span up with CAS framing: bits and tones pass.
    up: bool,
    /// Fault injection: CAS bits are lost both ways (tones still pass).
    cut: bool,
    /// The bits the PBX sends on each timeslot (what the far end sees while the line works).
    pbx_abcd: [Abcd; 32],
    slots: Vec<Slot>,
    wire: VecDeque<Cas>,
    calls: Vec<R2RemoteCall>,
    next_handle: u32,
    counters: R2Counters,
}

/// The R2 exchanges of a card's spans (index = span - 1; `None` where the far end is another).
pub(crate) fn build(cfg: &SimConfig, plan: &SignaturePlan) -> Vec<Option<Box<R2Exchange>>> {
    let first = cfg.fxs_ports + cfg.fxo_ports;
    (0..cfg.e1_spans)
        .map(|s| {
            (cfg.span_far.get(s as usize) == Some(&SpanFarEnd::R2Exchange)).then(|| {
                let base = ChannelId(first + s * u32::from(E1_TIMESLOTS));
                Box::new(R2Exchange::new(s + 1, base, cfg.exchange.clone(), plan))
            })
        })
        .collect()
}

/// Run every R2 exchange at `now` (once per tick, before the bearers).
pub(crate) fn step_all(r2: &mut [Option<Box<R2Exchange>>], now: Tick, events: &mut EventQueue) {
    for x in r2.iter_mut().flatten() {
        x.step(now, events);
    }
}

/// Span `idx`'s physical layer is `up` with CAS framing (or not).
pub(crate) fn set_up(r2: &mut [Option<Box<R2Exchange>>], idx: usize, now: Tick, up: bool) {
    if let Some(Some(x)) = r2.get_mut(idx) {
        if x.up != up {
            x.up = up;
            x.line_changed(now);
        }
    }
}

/// ABCD bits of a failed line: all ones (AIS).
const AIS_ABCD: u8 = 0b1111;

impl R2Exchange {
    fn new(span: u32, base: ChannelId, cfg: ExchangeConfig, plan: &SignaturePlan) -> Self {
        let r2cfg = far_r2_config();
        let slots = (0..=31u8)
            .map(|ts| Slot {
                ch: R2Channel::new(u16::from(ts), r2cfg),
                gen: [mfr2::MfDirection::Forward, mfr2::MfDirection::Backward]
                    .map(|d| MfGenerator::new(d, DEFAULT_SEND_DBM0)),
                det: [mfr2::MfDirection::Forward, mfr2::MfDirection::Backward]
                    .map(|d| MfDetector::new(d, MfDetectorConfig::default())),
                listen: None,
                party: RemoteParty::new(span, ts, cfg.signature_level_dbm0, plan),
                call: None,
                answer_at: None,
                hang_up_at: None,
            })
            .collect();
        R2Exchange {
            cfg,
            base,
            up: false,
            cut: false,
            pbx_abcd: [cardpbx_signalling::r2::line::abcd_of(0b10, r2cfg.cd_bits); 32],
            slots,
            wire: VecDeque::with_capacity(256),
            calls: Vec::new(),
            next_handle: 1,
            counters: R2Counters::default(),
        }
    }

    fn voice_ts(ts: u8) -> bool {
        (1..=E1_TIMESLOTS).contains(&ts) && ts != 16
    }

    fn passes(&self) -> bool {
        self.up && !self.cut
    }

    /// ABCD bits the PBX set on timeslot `ts`.
    pub(crate) fn cas_from_pbx(&mut self, now: Tick, ts: u8, abcd: Abcd) {
        if !Self::voice_ts(ts) {
            return;
        }
        self.pbx_abcd[ts as usize] = abcd;
        if self.passes() {
            self.counters.cas_in += 1;
            self.wire.push_back(Cas { at: now + CAS_DELAY_MS, ts, abcd, to_pbx: false });
        }
    }

    /// The line came up or went down (alarm, CAS cut): CAS is sent continuously on E1, so
    /// each side now sees the other's current bits, or all ones (AIS) on a failed line.
    fn line_changed(&mut self, now: Tick) {
        self.wire.clear();
        let ok = self.passes();
        for ts in (1..=E1_TIMESLOTS).filter(|t| *t != 16) {
            let to_far = if ok { self.pbx_abcd[ts as usize] } else { Abcd::new(AIS_ABCD) };
            self.wire.push_back(Cas { at: now + CAS_DELAY_MS, ts, abcd: to_far, to_pbx: false });
            if ok {
                let abcd = self.slots[ts as usize].ch.tx_abcd();
                self.wire.push_back(Cas { at: now + CAS_DELAY_MS, ts, abcd, to_pbx: true });
            }
        }
    }

    fn step(&mut self, now: Tick, events: &mut EventQueue) {
        while self.wire.front().is_some_and(|c| c.at <= now) {
            let c = self.wire.pop_front().expect("checked");
            if c.to_pbx {
                let chan = ChannelId(self.base.0 + u32::from(c.ts) - 1);
                events.push(HalEvent::CasBits(chan, c.abcd));
            } else {
                self.slots[c.ts as usize].ch.abcd_received(c.at, c.abcd);
                self.drain(c.ts, now);
            }
        }
        for ts in 1..=E1_TIMESLOTS {
            if ts == 16 {
                continue;
            }
            let s = &mut self.slots[ts as usize];
            if s.answer_at.is_some_and(|t| t <= now) {
                s.answer_at = None;
                if s.ch.answer(now).is_ok() {
                    self.counters.answered_from_pbx += 1;
                    self.answered(ts, now);
                }
            }
            let s = &mut self.slots[ts as usize];
            if s.hang_up_at.is_some_and(|t| t <= now) {
                s.hang_up_at = None;
                s.party.set_talking(false);
                s.ch.hangup(now);
            }
            let s = &mut self.slots[ts as usize];
            if s.ch.next_timeout().is_some_and(|t| t <= now) {
                s.ch.poll(now);
            }
            self.drain(ts, now);
        }
    }

    /// Act on what timeslot `ts`'s channel wants done.
    fn drain(&mut self, ts: u8, now: Tick) {
        while let Some(a) = self.slots[ts as usize].ch.poll_action() {
            let s = &mut self.slots[ts as usize];
            match a {
                R2Action::SetAbcd(abcd) => {
                    if self.passes() {
                        self.counters.cas_out += 1;
                        self.wire.push_back(Cas { at: now + CAS_DELAY_MS, ts, abcd, to_pbx: true });
                    }
                }
                R2Action::MfTone { signal, direction } => {
                    // The channel only asks for signals 1..=15.
                    let _ = s.gen[dir_index(direction)].set_signal(signal);
                }
                R2Action::MfListen(l) => {
                    if l != s.listen {
                        s.listen = l;
                        if let Some(d) = l {
                            s.det[dir_index(d)].reset();
                        }
                    }
                }
                R2Action::Event(e) => self.on_event(ts, now, e),
            }
        }
    }

    fn record(&mut self, c: R2RemoteCall) -> usize {
        if self.calls.len() >= HISTORY {
            // Forget the oldest ended call (indexes of live calls shift down by one).
            if let Some(i) = self.calls.iter().position(|c| c.cleared.is_some()) {
                self.calls.remove(i);
                for s in &mut self.slots {
                    if let Some(k) = s.call.as_mut().filter(|k| **k > i) {
                        *k -= 1;
                    }
                }
            }
        }
        self.calls.push(c);
        self.calls.len() - 1
    }

    fn answered(&mut self, ts: u8, now: Tick) {
        let s = &mut self.slots[ts as usize];
        s.party.set_talking(true);
        s.hang_up_at = self.cfg.hold_ms.map(|ms| now + u64::from(ms));
        if let Some(c) = s.call.and_then(|k| self.calls.get_mut(k)) {
            c.answered = true;
        }
    }

    fn on_event(&mut self, ts: u8, now: Tick, e: R2Event) {
        match e {
            R2Event::Offered { dnis, ani, category, .. } => {
                self.counters.calls_from_pbx += 1;
                let dnis = dnis.to_string();
                let b = if self.cfg.busy_numbers.contains(&dnis) {
                    BSignal::Busy
                } else if self.cfg.unallocated_numbers.contains(&dnis) {
                    BSignal::Unallocated
                } else {
                    BSignal::FreeCharge
                };
                let handle = self.next_handle;
                self.next_handle += 1;
                let k = self.record(R2RemoteCall {
                    handle,
                    direction: RemoteDirection::FromPbx,
                    ts,
                    dnis,
                    ani: ani.to_string(),
                    category,
                    b_signal: Some(b),
                    answered: false,
                    cleared: None,
                });
                let s = &mut self.slots[ts as usize];
                s.call = Some(k);
                if s.ch.accept(now, b).is_ok() && b.is_accept() {
                    s.answer_at = Some(now + u64::from(self.cfg.answer_delay_ms));
                }
            }
            R2Event::Accepted { b } => {
                if let Some(c) = self.slots[ts as usize].call.and_then(|k| self.calls.get_mut(k)) {
                    c.b_signal = Some(b);
                }
            }
            R2Event::Answered => {
                self.counters.answered_by_pbx += 1;
                self.answered(ts, now);
            }
            R2Event::Cleared { reason } => {
                self.counters.released += 1;
                let s = &mut self.slots[ts as usize];
                s.party.set_talking(false);
                s.answer_at = None;
                s.hang_up_at = None;
                if let Some(c) = s.call.take().and_then(|k| self.calls.get_mut(k)) {
                    c.cleared = Some(reason);
                    if let ClearReason::Rejected(b) = reason {
                        c.b_signal = Some(b);
                    }
                }
            }
            R2Event::ProtocolError { .. } => self.counters.protocol_errors += 1,
            R2Event::Idle | R2Event::RemoteBlocked | R2Event::RemoteUnblocked => {}
        }
    }

    /// One chunk of timeslot `ts`: hear the PBX's MF tones and voice, send ours.
    pub(crate) fn bearer_tick(
        &mut self,
        now: Tick,
        ts: u8,
        law: Law,
        plan: &SignaturePlan,
        from_pbx: &Chunk,
        to_pbx: &mut Chunk,
    ) {
        let mut out = [0i16; CHUNK_SAMPLES];
        if !self.up || !Self::voice_ts(ts) {
            law.encode_block(&out, to_pbx);
            return;
        }
        let mut heard = [0i16; CHUNK_SAMPLES];
        law.decode_block(from_pbx, &mut heard);
        let s = &mut self.slots[ts as usize];
        if let Some(d) = s.listen {
            let mut edges = [None::<Option<u8>>; 4];
            let mut n = 0;
            s.det[dir_index(d)].process(&heard, |e| {
                if n < edges.len() {
                    edges[n] = Some(e.signal);
                    n += 1;
                }
            });
            for e in edges.into_iter().flatten() {
                self.slots[ts as usize].ch.mf_received(now, e);
            }
            self.drain(ts, now);
        }
        let s = &mut self.slots[ts as usize];
        let mut g = [0i16; CHUNK_SAMPLES];
        for gen in &mut s.gen {
            if gen.signal().is_some() {
                gen.fill(&mut g);
                for (o, x) in out.iter_mut().zip(g) {
                    *o = o.saturating_add(x);
                }
            }
        }
        s.party.mix_and_listen(plan, &heard, &mut out);
        law.encode_block(&out, to_pbx);
    }

    fn call_in(&mut self, now: Tick, ani: &str, dnis: &str) -> std::result::Result<u32, String> {
        if !self.up {
            return Err("the span is down or not configured for CAS".into());
        }
        let ts = (1..=E1_TIMESLOTS)
            .rev()
            .filter(|ts| *ts != 16)
            .find(|ts| {
                let s = &self.slots[*ts as usize];
                s.call.is_none() && s.ch.state() == LineState::Idle
            })
            .ok_or("no idle timeslot")?;
        self.slots[ts as usize].ch.make_call(now, dnis, ani, 1).map_err(|e| e.to_string())?;
        self.counters.calls_to_pbx += 1;
        let handle = self.next_handle;
        self.next_handle += 1;
        let k = self.record(R2RemoteCall {
            handle,
            direction: RemoteDirection::ToPbx,
            ts,
            dnis: dnis.to_string(),
            ani: ani.to_string(),
            category: 1,
            b_signal: None,
            answered: false,
            cleared: None,
        });
        self.slots[ts as usize].call = Some(k);
        self.drain(ts, now);
        Ok(handle)
    }

    fn slot_of(&self, handle: u32) -> Option<u8> {
        (1..=E1_TIMESLOTS).find(|ts| {
            self.slots[*ts as usize]
                .call
                .and_then(|k| self.calls.get(k))
                .is_some_and(|c| c.handle == handle)
        })
    }

    fn hang_up(&mut self, now: Tick, handle: u32) -> bool {
        let Some(ts) = self.slot_of(handle) else { return false };
        let s = &mut self.slots[ts as usize];
        s.party.set_talking(false);
        s.ch.hangup(now);
        self.drain(ts, now);
        true
    }

    fn set_cut(&mut self, now: Tick, cut: bool) {
        if self.cut != cut {
            self.cut = cut;
            self.line_changed(now);
        }
    }

    fn block(&mut self, now: Tick, ts: u8, on: bool) -> bool {
        if !Self::voice_ts(ts) {
            return false;
        }
        let ch = &mut self.slots[ts as usize].ch;
        if on {
            ch.block(now);
        } else {
            ch.unblock(now);
        }
        self.drain(ts, now);
        true
    }
}

impl SimCard {
    fn r2_mut(&mut self, span: u32) -> Result<&mut R2Exchange> {
        let name = cardpbx_hal::Card::info(self).name.clone();
        self.r2.get_mut((span as usize).wrapping_sub(1)).and_then(|x| x.as_deref_mut()).ok_or_else(
            || Error::new(ErrorKind::NotFound, format!("{name}: span {span} has no R2 exchange")),
        )
    }

    fn r2_ref(&self, span: u32) -> Option<&R2Exchange> {
        self.r2.get((span as usize).wrapping_sub(1)).and_then(|x| x.as_deref())
    }

    /// The R2 exchange on `span` places a call to the PBX with calling number `ani` (may be
    /// empty) and called number `dnis`; returns its handle.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without an R2 exchange on that span, [`ErrorKind::Gone`] after
    /// unplug, [`ErrorKind::InvalidArgument`] when the exchange refuses (span down or not CAS,
    /// no idle timeslot, bad number).
    pub fn r2_call_in(&mut self, span: u32, ani: &str, dnis: &str) -> Result<u32> {
        if self.is_gone() {
            return Err(Error::new(ErrorKind::Gone, "simulated card was unplugged"));
        }
        let now = ClockSource::now(self);
        self.r2_mut(span)?
            .call_in(now, ani, dnis)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("span {span}: {e}")))
    }

    /// The remote party of R2 call `handle` on `span` hangs up (clear forward on a call to
    /// the PBX, clear back on a call from it). False when there is no such call up.
    pub fn r2_hang_up(&mut self, span: u32, handle: u32) -> bool {
        let now = ClockSource::now(self);
        self.r2_mut(span).is_ok_and(|x| x.hang_up(now, handle))
    }

    /// The far end blocks (`true`) or unblocks timeslot `ts` of `span`. False for a span
    /// without an R2 exchange or a timeslot without a channel.
    pub fn r2_block(&mut self, span: u32, ts: u8, on: bool) -> bool {
        let now = ClockSource::now(self);
        self.r2_mut(span).is_ok_and(|x| x.block(now, ts, on))
    }

    /// Fault injection: the CAS bits of `span` are lost both ways (`true`) or pass again; the
    /// timeslots' audio is not affected. While cut, the exchange sees all ones (AIS).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] without an R2 exchange on that span.
    pub fn r2_set_cas_cut(&mut self, span: u32, cut: bool) -> Result<()> {
        let now = ClockSource::now(self);
        self.r2_mut(span)?.set_cut(now, cut);
        Ok(())
    }

    /// The R2 exchange's calls on `span`, oldest first (up and ended).
    pub fn r2_calls(&self, span: u32) -> Vec<R2RemoteCall> {
        self.r2_ref(span).map(|x| x.calls.clone()).unwrap_or_default()
    }

    /// The R2 exchange's counters on `span`.
    pub fn r2_counters(&self, span: u32) -> Option<R2Counters> {
        self.r2_ref(span).map(|x| x.counters)
    }

    /// The line state of the exchange's channel on timeslot `ts` of `span`.
    pub fn r2_line_state(&self, span: u32, ts: u8) -> Option<LineState> {
        self.r2_ref(span)
            .filter(|_| R2Exchange::voice_ts(ts))
            .map(|x| x.slots[ts as usize].ch.state())
    }

    /// Expect `peer`'s signature on timeslot `ts` of `span` while its call is answered.
    pub fn r2_expect_peer(&mut self, span: u32, ts: u8, peer: Option<EndpointId>) {
        if let Ok(x) = self.r2_mut(span) {
            if let Some(s) = x.slots.get_mut(ts as usize) {
                s.party.expect_peer(peer);
            }
        }
    }

    /// The audio path check of the remote party on timeslot `ts` of `span`.
    pub fn r2_audio_check(&self, span: u32, ts: u8) -> Option<AudioCheck> {
        self.r2_ref(span).and_then(|x| x.slots.get(ts as usize)).map(|s| s.party.check())
    }
}
