//! The simulated central-office line on an FXO port: the exchange and the remote party.

use crate::config::{CoLineConfig, DisconnectSignal};
use crate::events::EventQueue;
use crate::hybrid::Hybrid;
use crate::signature::{AudioCheck, EndpointId, Heard, Listener, SignaturePlan};
use cardpbx_dsp::callerid::{self, AbsenceReason, CallerIdMessage, FskTx, MARK_BITS, SEIZURE_BITS};
use cardpbx_dsp::dtmf::{
    DtmfConfig, DtmfDetector, DtmfError, DtmfEvent, DtmfGenConfig, DtmfGenerator,
};
use cardpbx_dsp::g711::Law;
use cardpbx_dsp::tone::{Segment, ToneGen, ToneSpec};
use cardpbx_hal::{ChannelId, Chunk, HalEvent, HookState, Tick, CHUNK_SAMPLES};

/// Most digits the CO stores for one outgoing call.
pub const MAX_DIALED: usize = 32;

/// Where the CO line stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoState {
    /// Nothing on the line.
    Idle,
    /// An incoming call rings our FXO port with the ring cadence.
    RingingIn,
    /// Our port seized the line; the CO plays dial tone.
    DialTone,
    /// Digits are arriving (dial tone stopped at the first one).
    Dialing,
    /// The number is complete; the called party rings and the CO plays ringback.
    Ringback,
    /// The called party is busy (or the CO gave up waiting for digits): busy tone.
    RemoteBusy,
    /// The number is not in service: special information tone.
    Unobtainable,
    /// The call is up; the remote party speaks its signature.
    Connected,
    /// The remote party cleared; busy tone and/or polarity reversal until our side hangs up.
    Cleared,
}

/// Counters a CO line keeps over its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoCounters {
    /// Incoming calls offered (`ring_in`).
    pub calls_in: u64,
    /// Incoming calls our side answered.
    pub calls_in_answered: u64,
    /// Incoming calls the caller gave up before answer.
    pub calls_in_abandoned: u64,
    /// Seizures by our side (outgoing call attempts).
    pub calls_out: u64,
    /// Outgoing calls the called party answered.
    pub calls_out_answered: u64,
    /// Outgoing calls that met a busy number or the dial-tone timeout.
    pub calls_out_busy: u64,
    /// Outgoing calls to a number not in service (special information tone).
    pub calls_out_unobtainable: u64,
    /// Calls the remote party cleared.
    pub far_end_clears: u64,
    /// Calls our side cleared after answer.
    pub near_end_clears: u64,
    /// Hook flashes from our side.
    pub flashes: u64,
    /// Ring bursts sent.
    pub ring_bursts: u64,
    /// Caller ID messages sent.
    pub callerid_sent: u64,
}

/// A central-office line behind an FXO port, with the remote party on it. User actions take
/// effect at once; the signals they cause go out at the next tick.
#[derive(Debug, Clone)]
pub struct SimCoLine {
    port: u32,
    chan: ChannelId,
    id: EndpointId,
    law: Law,
    cfg: CoLineConfig,
    now: Tick,
    our_hook: HookState,
    flash_until: Option<Tick>,
    state: CoState,
    // Ringing.
    ring_idx: usize,
    ring_on: bool,
    ring_next: Option<Tick>,
    ring_end_pending: bool,
    caller: [u8; MAX_DIALED],
    caller_len: Option<usize>,
    // Outgoing.
    digits: [u8; MAX_DIALED],
    ndigits: usize,
    last_digit_at: Tick,
    seized_at: Tick,
    answer_at: Tick,
    hold_ms: Option<u32>,
    hold_until: Option<Tick>,
    reversed: bool,
    reversal_pending: bool,
    tone: ToneGen,
    tone_on: bool,
    voice: ToneGen,
    dtmf_rx: DtmfDetector,
    listener: Listener,
    counters: CoCounters,
    buf: [i16; CHUNK_SAMPLES],
    /// Caller ID modulator, loaded at `ring_in`; sends from `fsk_at` on.
    fsk: Option<FskTx>,
    fsk_at: Option<Tick>,
    fsk_on: bool,
    /// DTMF caller ID sender; sends (before the first ring) while `dtmf_on`.
    dtmf_tx: DtmfGenerator,
    dtmf_on: bool,
    /// The first ring burst of an incoming call waits until this tick (after DTMF caller ID).
    ring_from: Option<Tick>,
    /// Ring bursts of the current incoming call.
    call_bursts: u32,
    hybrid: Option<Hybrid>,
    /// The remote party is a fax machine: it sends calling tone instead of its signature.
    remote_fax: bool,
    cng: ToneGen,
    /// DTMF keys the remote party presses during the call (sent instead of its voice).
    keys: DtmfGenerator,
    keys_on: bool,
}

/// Fax calling tone (T.30): 1100 Hz, 0.5 s on, 3 s off, at -10 dBm0.
fn cng_tone() -> ToneSpec {
    let on = Segment { ms: 500, freqs: [1100.0, 0.0], level_dbm0: -10.0 };
    ToneSpec::new(&[on, Segment::silence(3000)], true).expect("CNG is a valid tone")
}

impl SimCoLine {
    pub(crate) fn new(
        port: u32,
        chan: ChannelId,
        law: Law,
        cfg: CoLineConfig,
        plan: &SignaturePlan,
    ) -> Self {
        let id = EndpointId::CoLine(port);
        let voice = ToneGen::new(plan.signature_tone(id, cfg.signature_level_dbm0));
        SimCoLine {
            port,
            chan,
            id,
            law,
            now: 0,
            our_hook: HookState::OnHook,
            flash_until: None,
            state: CoState::Idle,
            ring_idx: 0,
            ring_on: false,
            ring_next: None,
            ring_end_pending: false,
            caller: [0; MAX_DIALED],
            caller_len: None,
            digits: [0; MAX_DIALED],
            ndigits: 0,
            last_digit_at: 0,
            seized_at: 0,
            answer_at: 0,
            hold_ms: cfg.hold_ms,
            hold_until: None,
            reversed: false,
            reversal_pending: false,
            tone: ToneGen::new(cfg.dial_tone),
            tone_on: false,
            voice,
            dtmf_rx: DtmfDetector::new(DtmfConfig::default()),
            listener: Listener::new(),
            counters: CoCounters::default(),
            buf: [0; CHUNK_SAMPLES],
            fsk: None,
            fsk_at: None,
            fsk_on: false,
            dtmf_tx: DtmfGenerator::new(DtmfGenConfig {
                on_ms: 70,
                off_ms: 70,
                level_dbm0: cfg.callerid.map_or(-13.0, |c| c.level_dbm0),
                twist_db: 0.0,
            }),
            dtmf_on: false,
            ring_from: None,
            call_bursts: 0,
            hybrid: cfg.echo.map(Hybrid::new),
            remote_fax: false,
            cng: ToneGen::new(cng_tone()),
            keys: crate::bearer::remote_keys(),
            keys_on: false,
            cfg,
        }
    }

    /// FXO port number (1-based).
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The card channel of the FXO port.
    pub fn channel(&self) -> ChannelId {
        self.chan
    }

    /// The line's endpoint id (the remote party's signature).
    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// Where the line stands.
    pub fn state(&self) -> CoState {
        self.state
    }

    /// Whether ringing voltage is on the line right now (inside a ring burst).
    pub fn is_ringing(&self) -> bool {
        self.ring_on
    }

    /// Our FXO port's hook state as the CO sees it.
    pub fn our_hook(&self) -> HookState {
        self.our_hook
    }

    /// The caller of the current or last incoming call.
    pub fn caller(&self) -> Option<&str> {
        self.caller_len.map(|n| std::str::from_utf8(&self.caller[..n]).unwrap_or(""))
    }

    /// The digits the CO received on the current or last outgoing call.
    pub fn dialed(&self) -> Option<String> {
        if self.ndigits == 0 {
            None
        } else {
            Some(self.digits[..self.ndigits].iter().map(|&b| b as char).collect())
        }
    }

    /// Whether the digits received on the current or last outgoing call are exactly `number`.
    pub fn dialed_matches(&self, number: &str) -> bool {
        number.as_bytes() == &self.digits[..self.ndigits]
    }

    /// Whether the line polarity is reversed now.
    pub fn polarity_reversed(&self) -> bool {
        self.reversed
    }

    /// Life counters.
    pub fn counters(&self) -> CoCounters {
        self.counters
    }

    /// What the remote party / CO hears from our port (analysed while our port is off-hook).
    pub fn hears(&self) -> Heard {
        self.listener.heard()
    }

    /// The audio path check counters (see [`SimCoLine::expect_peer`]).
    pub fn audio_check(&self) -> AudioCheck {
        self.listener.check()
    }

    /// Expect `peer`'s signature in every 20 ms block while our port is off-hook (after 200 ms
    /// settling); `None` stops checking.
    pub fn expect_peer(&mut self, peer: Option<EndpointId>) {
        self.listener.expect_peer(peer);
    }

    /// The endpoint currently expected.
    pub fn expected_peer(&self) -> Option<EndpointId> {
        self.listener.expected()
    }

    /// The remote party clears this long after answer (`None`: only on [`hang_up`](Self::hang_up)).
    pub fn set_hold(&mut self, ms: Option<u32>) {
        self.hold_ms = ms;
    }

    /// An incoming call from `caller` (kept up to 32 bytes): ring our port with the cadence from
    /// the next tick until it answers or [`give_up`](Self::give_up). Returns false unless the
    /// line is idle and our port on-hook. With caller ID configured, the number (or
    /// "unavailable" without one) is sent after the first ring.
    pub fn ring_in(&mut self, caller: Option<&str>) -> bool {
        self.ring_in_named(caller, None)
    }

    /// [`ring_in`](Self::ring_in) with a caller name for the caller ID message (MDMF only).
    pub fn ring_in_named(&mut self, caller: Option<&str>, name: Option<&str>) -> bool {
        if self.state != CoState::Idle || self.our_hook == HookState::OffHook {
            return false;
        }
        self.dtmf_tx.clear();
        self.dtmf_on = false;
        self.ring_from = None;
        self.fsk = self.cfg.callerid.filter(|c| !c.dtmf).and_then(|c| {
            let minutes = self.now / 60_000;
            let msg = CallerIdMessage {
                date_time: Some(format!("0101{:02}{:02}", minutes / 60 % 24, minutes % 60)),
                number: caller.filter(|n| !n.is_empty()).map(str::to_string),
                number_absent: caller.is_none().then_some(AbsenceReason::Unavailable),
                // SDMF carries no name.
                name: name.filter(|_| c.format == callerid::Format::Mdmf).map(str::to_string),
                name_absent: None,
            };
            let bytes = callerid::encode(c.format, &msg).ok()?;
            let mut tx = FskTx::new(c.standard, c.level_dbm0, SEIZURE_BITS, MARK_BITS);
            tx.send(&bytes).ok()?;
            Some(tx)
        });
        if self.cfg.callerid.is_some_and(|c| c.dtmf) {
            // DTMF caller ID before the first ring: number, or "unavailable" without one.
            let msg = CallerIdMessage {
                number: caller.filter(|n| !n.is_empty()).map(str::to_string),
                number_absent: caller.is_none().then_some(AbsenceReason::Unavailable),
                ..CallerIdMessage::default()
            };
            if let Ok(digits) = callerid::encode_dtmf(&msg) {
                if self.dtmf_tx.queue(&digits).is_ok() {
                    self.dtmf_on = true;
                    self.counters.callerid_sent += 1;
                }
            }
        }
        self.fsk_at = None;
        self.fsk_on = false;
        self.state = CoState::RingingIn;
        self.caller_len = caller.map(|c| {
            let mut n = c.len().min(MAX_DIALED);
            while !c.is_char_boundary(n) {
                n -= 1;
            }
            self.caller[..n].copy_from_slice(&c.as_bytes()[..n]);
            n
        });
        self.ring_idx = 0;
        self.ring_next = None;
        self.counters.calls_in += 1;
        true
    }

    /// The caller abandons an unanswered incoming call. Returns false if none was ringing.
    pub fn give_up(&mut self) -> bool {
        if self.state != CoState::RingingIn {
            return false;
        }
        self.stop_ringing();
        self.state = CoState::Idle;
        self.counters.calls_in_abandoned += 1;
        true
    }

    /// The remote party clears: the CO signals the disconnect as configured. An unanswered
    /// incoming call is abandoned instead. Returns false when there was no call.
    pub fn hang_up(&mut self) -> bool {
        match self.state {
            CoState::RingingIn => self.give_up(),
            CoState::Idle | CoState::Cleared => false,
            _ => {
                self.state = CoState::Cleared;
                self.counters.far_end_clears += 1;
                self.hold_until = None;
                let d = self.cfg.disconnect;
                if matches!(d, DisconnectSignal::PolarityReversal | DisconnectSignal::Both) {
                    self.reversal_pending = true;
                }
                if matches!(d, DisconnectSignal::BusyTone | DisconnectSignal::Both) {
                    self.play(self.cfg.busy_tone);
                } else {
                    self.tone_on = false;
                }
                true
            }
        }
    }

    /// The remote party presses DTMF `digits` (heard by our port while the call is up), for
    /// example to walk through an IVR menu.
    ///
    /// # Errors
    /// A digit that is not a DTMF key, or more than 64 keys waiting.
    pub fn remote_dtmf(&mut self, digits: &str) -> Result<(), DtmfError> {
        self.keys.queue(digits)?;
        self.keys_on = true;
        Ok(())
    }

    /// Make the remote party a fax machine (it sends calling tone after answer) or a person.
    pub fn set_remote_fax(&mut self, fax: bool) {
        self.remote_fax = fax;
    }

    fn stop_ringing(&mut self) {
        self.fsk_at = None;
        self.fsk_on = false;
        self.dtmf_tx.clear();
        self.dtmf_on = false;
        self.ring_from = None;
        if self.ring_on {
            self.ring_on = false;
            self.ring_end_pending = true;
        }
        self.ring_next = None;
    }

    fn play(&mut self, spec: cardpbx_dsp::tone::ToneSpec) {
        self.tone.set(spec);
        self.tone_on = true;
    }

    /// Our FXO port closed (true) or opened (false) the loop.
    pub(crate) fn set_hook(&mut self, off: bool) {
        self.flash_until = None;
        if off {
            self.seize_or_answer();
        } else {
            self.release();
        }
    }

    /// Our FXO port flashed the hook for `ms`. A flash of 1 s or more releases the line.
    pub(crate) fn flash(&mut self, ms: u16) {
        self.counters.flashes += 1;
        if ms >= 1000 && self.our_hook == HookState::OffHook {
            self.release();
            self.flash_until = Some(self.now + u64::from(ms));
        }
    }

    fn seize_or_answer(&mut self) {
        if self.our_hook == HookState::OffHook {
            return;
        }
        self.our_hook = HookState::OffHook;
        self.listener.set_active(true);
        match self.state {
            CoState::Idle => {
                self.state = CoState::DialTone;
                self.counters.calls_out += 1;
                self.seized_at = self.now;
                self.ndigits = 0;
                self.dtmf_rx.reset();
                self.play(self.cfg.dial_tone);
            }
            CoState::RingingIn => {
                self.stop_ringing();
                self.counters.calls_in_answered += 1;
                self.connect();
            }
            _ => {}
        }
    }

    fn connect(&mut self) {
        self.state = CoState::Connected;
        self.tone_on = false;
        self.cng = ToneGen::new(cng_tone());
        self.hold_until = self.hold_ms.map(|ms| self.now + u64::from(ms));
    }

    fn release(&mut self) {
        if self.our_hook == HookState::OnHook {
            return;
        }
        self.our_hook = HookState::OnHook;
        self.listener.set_active(false);
        if let Some(h) = self.hybrid.as_mut() {
            h.reset();
        }
        if self.state == CoState::Connected {
            self.counters.near_end_clears += 1;
        }
        if self.state != CoState::RingingIn {
            self.state = CoState::Idle;
        }
        self.tone_on = false;
        self.hold_until = None;
        // The exchange restores normal polarity on an idle line without a signal we report.
        self.reversed = false;
        self.reversal_pending = false;
    }

    fn number_complete(&self) -> bool {
        self.cfg.expected_digits.is_some_and(|n| self.ndigits >= n)
            || self.now >= self.last_digit_at + u64::from(self.cfg.interdigit_timeout_ms)
    }

    fn route(&mut self) {
        let dialed = &self.digits[..self.ndigits];
        if self.cfg.busy_numbers.iter().any(|n| n.as_bytes() == dialed) {
            self.state = CoState::RemoteBusy;
            self.counters.calls_out_busy += 1;
            self.play(self.cfg.busy_tone);
        } else if self.cfg.unobtainable_numbers.iter().any(|n| n.as_bytes() == dialed) {
            self.state = CoState::Unobtainable;
            self.counters.calls_out_unobtainable += 1;
            self.play(self.cfg.sit_tone);
        } else {
            self.state = CoState::Ringback;
            self.answer_at = self.now + u64::from(self.cfg.answer_delay_ms);
            self.play(self.cfg.ringback_tone);
        }
    }

    /// One tick: timers, line signals, one chunk each way.
    ///
    /// # Real-time
    /// Constant work (DTMF and signature filters while our port is off-hook); no allocation.
    pub(crate) fn tick(
        &mut self,
        now: Tick,
        plan: &SignaturePlan,
        from_pbx: &Chunk,
        to_pbx: &mut Chunk,
        events: &mut EventQueue,
    ) {
        self.now = now;
        if self.flash_until.is_some_and(|t| now >= t) {
            self.flash_until = None;
            self.seize_or_answer();
        }
        if self.ring_end_pending {
            self.ring_end_pending = false;
            events.push(HalEvent::RingEnd(self.chan));
        }
        match self.state {
            CoState::RingingIn => {
                // DTMF caller ID goes first; the ring waits for it.
                if !self.dtmf_on && self.ring_from.is_none_or(|t| now >= t) {
                    self.ring_cadence(now, events);
                }
            }
            CoState::DialTone => {
                if now >= self.seized_at + u64::from(self.cfg.dial_tone_timeout_ms) {
                    self.state = CoState::RemoteBusy;
                    self.counters.calls_out_busy += 1;
                    self.play(self.cfg.busy_tone);
                }
            }
            CoState::Dialing => {
                if self.number_complete() {
                    self.route();
                }
            }
            CoState::Ringback => {
                if now >= self.answer_at {
                    self.counters.calls_out_answered += 1;
                    self.connect();
                    if self.cfg.answer_polarity_reversal {
                        self.reversal_pending = true;
                    }
                }
            }
            CoState::Connected => {
                if self.hold_until.is_some_and(|t| now >= t) {
                    self.hang_up();
                }
            }
            CoState::Idle | CoState::RemoteBusy | CoState::Unobtainable | CoState::Cleared => {}
        }
        if self.reversal_pending {
            self.reversal_pending = false;
            self.reversed = !self.reversed;
            events.push(HalEvent::PolarityReversal(self.chan));
        }
        if self.fsk_at.is_some_and(|t| now >= t) {
            self.fsk_at = None;
            self.fsk_on = true;
            self.counters.callerid_sent += 1;
        }
        // What the line sends to our port.
        let off_hook = self.our_hook == HookState::OffHook;
        let mut out = [0i16; CHUNK_SAMPLES];
        if off_hook && self.tone_on {
            self.tone.fill(&mut out);
        } else if off_hook && self.state == CoState::Connected {
            if self.keys_on {
                self.keys_on = self.keys.fill(&mut out);
            } else if self.remote_fax {
                self.cng.fill(&mut out);
            } else {
                self.voice.fill(&mut out);
            }
        } else if !off_hook && self.dtmf_on {
            // On-hook DTMF caller ID before the first ring.
            self.dtmf_on = self.dtmf_tx.fill(&mut out);
            if !self.dtmf_on {
                let after = self.cfg.callerid.map_or(0, |c| c.after_ring_ms);
                self.ring_from = Some(now + u64::from(after));
            }
        } else if !off_hook && self.fsk_on {
            // On-hook data transmission (caller ID) between the rings.
            if let Some(fsk) = self.fsk.as_mut() {
                self.fsk_on = fsk.fill(&mut out);
            }
        }
        // What our port sends to the line.
        if off_hook {
            self.law.decode_block(from_pbx, &mut self.buf);
            if let Some(h) = self.hybrid.as_mut() {
                h.apply(&self.buf, &mut out);
            }
        }
        self.law.encode_block(&out, to_pbx);
        if off_hook {
            if matches!(self.state, CoState::DialTone | CoState::Dialing) {
                let mut got = None;
                self.dtmf_rx.process(&self.buf, |ev| {
                    if let DtmfEvent::Start { digit, .. } = ev {
                        got = Some(digit);
                    }
                });
                if let Some(d) = got {
                    if self.ndigits < MAX_DIALED {
                        self.digits[self.ndigits] = d as u8;
                        self.ndigits += 1;
                    }
                    self.last_digit_at = now;
                    if self.state == CoState::DialTone {
                        self.state = CoState::Dialing;
                        self.tone_on = false;
                    }
                }
            }
            self.listener.push(plan, &self.buf);
        }
    }

    fn ring_cadence(&mut self, now: Tick, events: &mut EventQueue) {
        let cad = &self.cfg.ring_cadence_ms;
        match self.ring_next {
            None => {
                self.ring_idx = 0;
                self.ring_on = true;
                self.ring_next = Some(now + u64::from(cad[0]));
                self.counters.ring_bursts += 1;
                self.call_bursts = 1;
                events.push(HalEvent::RingBegin(self.chan));
            }
            Some(t) if now >= t => {
                self.ring_idx = (self.ring_idx + 1) % cad.len();
                self.ring_on = self.ring_idx & 1 == 0;
                self.ring_next = Some(now + u64::from(cad[self.ring_idx]));
                if self.ring_on {
                    self.counters.ring_bursts += 1;
                    self.call_bursts += 1;
                    self.fsk_on = false;
                    events.push(HalEvent::RingBegin(self.chan));
                } else {
                    if self.call_bursts == 1 && self.fsk.is_some() {
                        let after = self.cfg.callerid.map_or(0, |c| c.after_ring_ms);
                        self.fsk_at = Some(now + u64::from(after));
                    }
                    events.push(HalEvent::RingEnd(self.chan));
                }
            }
            Some(_) => {}
        }
    }
}
