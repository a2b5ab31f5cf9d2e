//! The simulated phone on an FXS port.

use crate::config::PhoneConfig;
use crate::events::EventQueue;
use crate::hybrid::Hybrid;
use crate::signature::{AudioCheck, EndpointId, Heard, Listener, SignaturePlan};
use cardpbx_dsp::callerid::{self, CallerIdMessage, CallerIdReceiver, CidError, Format};
use cardpbx_dsp::dtmf::{DtmfConfig, DtmfDetector, DtmfError, DtmfEvent, DtmfGenerator};
use cardpbx_dsp::g711::Law;
use cardpbx_dsp::tone::ToneGen;
use cardpbx_hal::{ChannelId, Chunk, HalEvent, HookState, Tick, CHUNK_SAMPLES};

/// What the phone is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneState {
    /// On-hook, not ringing.
    Idle,
    /// On-hook and being rung; `bursts` ring bursts so far.
    Ringing {
        /// Ring bursts received in this ringing episode.
        bursts: u32,
    },
    /// Off-hook.
    OffHook,
}

/// Counters a phone keeps over its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhoneCounters {
    /// Times the phone went off-hook (including answers and flash ends).
    pub off_hooks: u64,
    /// Ringing episodes answered.
    pub answered: u64,
    /// Ringing episodes that ended without answer.
    pub missed: u64,
    /// Ring bursts received.
    pub ring_bursts: u64,
    /// Hook flashes.
    pub flashes: u64,
    /// Digits dialed.
    pub digits_dialed: u64,
    /// Polarity changes and open-loop pulses the exchange applied.
    pub line_signals: u64,
}

/// A phone on an FXS port: hook switch, ringer, DTMF keypad, and a mouth that speaks its
/// audio signature. User actions take effect at the next tick.
#[derive(Debug, Clone)]
pub struct SimPhone {
    port: u32,
    chan: ChannelId,
    id: EndpointId,
    law: Law,
    cfg: PhoneConfig,
    now: Tick,
    hook: HookState,
    pending: [Option<HookState>; 2],
    flash_until: Option<Tick>,
    state: PhoneState,
    ring_voltage: bool,
    ring_started: Tick,
    ring_last_off: Tick,
    episode_bursts: u32,
    auto_answer: Option<u32>,
    dtmf: DtmfGenerator,
    dialing: bool,
    voice: ToneGen,
    listener: Listener,
    counters: PhoneCounters,
    buf: [i16; CHUNK_SAMPLES],
    cid_rx: Option<CallerIdReceiver>,
    /// The last caller ID frame the display received (bytes, length).
    cid_frame: [u8; callerid::MAX_MESSAGE_BYTES],
    cid_len: usize,
    /// DTMF caller ID receiver (on-hook, before the first ring), when the display decodes it.
    dtmf_rx: Option<DtmfDetector>,
    dtmf_digits: [u8; DTMF_CID_MAX],
    dtmf_len: usize,
    dtmf_last: Tick,
    /// The DTMF caller ID that came before the current (or last) ringing episode.
    dtmf_cid: Option<Result<CallerIdMessage, CidError>>,
    hybrid: Option<Hybrid>,
}

/// Most DTMF caller ID digits the display keeps.
const DTMF_CID_MAX: usize = 32;

/// DTMF caller ID digits older than this when ringing starts (or before the next digit) are
/// dropped, ms.
const DTMF_CID_TIMEOUT_MS: u64 = 2000;

impl SimPhone {
    pub(crate) fn new(
        port: u32,
        chan: ChannelId,
        law: Law,
        cfg: PhoneConfig,
        plan: &SignaturePlan,
    ) -> Self {
        let id = EndpointId::Phone(port);
        SimPhone {
            port,
            chan,
            id,
            law,
            cfg,
            now: 0,
            hook: HookState::OnHook,
            pending: [None; 2],
            flash_until: None,
            state: PhoneState::Idle,
            ring_voltage: false,
            ring_started: 0,
            ring_last_off: 0,
            episode_bursts: 0,
            auto_answer: cfg.auto_answer_ms,
            dtmf: DtmfGenerator::new(cfg.dtmf),
            dialing: false,
            voice: ToneGen::new(plan.signature_tone(id, cfg.signature_level_dbm0)),
            listener: Listener::new(),
            counters: PhoneCounters::default(),
            buf: [0; CHUNK_SAMPLES],
            cid_rx: cfg.callerid.map(CallerIdReceiver::new),
            cid_frame: [0; callerid::MAX_MESSAGE_BYTES],
            cid_len: 0,
            dtmf_rx: cfg.callerid_dtmf.then(|| DtmfDetector::new(DtmfConfig::default())),
            dtmf_digits: [0; DTMF_CID_MAX],
            dtmf_len: 0,
            dtmf_last: 0,
            dtmf_cid: None,
            hybrid: cfg.echo.map(Hybrid::new),
        }
    }

    /// FXS port number (1-based).
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The card channel the phone hangs on.
    pub fn channel(&self) -> ChannelId {
        self.chan
    }

    /// The phone's endpoint id (its signature).
    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// What the phone is doing.
    pub fn state(&self) -> PhoneState {
        self.state
    }

    /// Hook switch position.
    pub fn hook(&self) -> HookState {
        self.hook
    }

    /// Whether the phone is being rung (on-hook, within a ringing episode).
    pub fn is_ringing(&self) -> bool {
        matches!(self.state, PhoneState::Ringing { .. })
    }

    /// Whether ringing voltage is on the line right now (within a ring burst).
    pub fn ring_voltage(&self) -> bool {
        self.ring_voltage
    }

    /// Ring bursts of the current (or last) ringing episode.
    pub fn ring_count(&self) -> u32 {
        self.episode_bursts
    }

    /// Tick at which the current ringing episode began.
    pub fn ring_started(&self) -> Tick {
        self.ring_started
    }

    /// Whether DTMF digits are still being sent.
    pub fn is_dialing(&self) -> bool {
        self.dialing
    }

    /// Life counters.
    pub fn counters(&self) -> PhoneCounters {
        self.counters
    }

    /// What the phone's earpiece hears (analysed only while off-hook).
    pub fn hears(&self) -> Heard {
        self.listener.heard()
    }

    /// The audio path check counters (see [`SimPhone::expect_peer`]).
    pub fn audio_check(&self) -> AudioCheck {
        self.listener.check()
    }

    /// Expect `peer`'s signature in every 20 ms block while off-hook (after 200 ms settling);
    /// `None` stops checking.
    pub fn expect_peer(&mut self, peer: Option<EndpointId>) {
        self.listener.expect_peer(peer);
    }

    /// The endpoint currently expected.
    pub fn expected_peer(&self) -> Option<EndpointId> {
        self.listener.expected()
    }

    /// Answer automatically this many ms after ringing starts (`None`: never).
    pub fn set_auto_answer(&mut self, ms: Option<u32>) {
        self.auto_answer = ms;
    }

    /// The auto-answer setting.
    pub fn auto_answer(&self) -> Option<u32> {
        self.auto_answer
    }

    /// Lift the handset. Returns false if it was already off-hook.
    pub fn off_hook(&mut self) -> bool {
        if self.hook == HookState::OffHook {
            return false;
        }
        self.flash_until = None;
        self.go(HookState::OffHook);
        true
    }

    /// Answer a ringing phone (off-hook). Returns false if it was not ringing.
    pub fn answer(&mut self) -> bool {
        self.is_ringing() && self.off_hook()
    }

    /// Hang up. Returns false if it was already on-hook.
    pub fn on_hook(&mut self) -> bool {
        self.flash_until = None;
        if self.hook == HookState::OnHook {
            return false;
        }
        self.go(HookState::OnHook);
        true
    }

    /// Hook flash: on-hook now, off-hook again after `ms`. Returns false when on-hook.
    pub fn flash(&mut self, ms: u32) -> bool {
        if self.hook == HookState::OnHook {
            return false;
        }
        self.go(HookState::OnHook);
        self.counters.flashes += 1;
        // The on-hook shows at the next tick; the off-hook `ms` later.
        self.flash_until = Some(self.now + 1 + u64::from(ms.max(1)));
        true
    }

    /// Dial `digits` in DTMF (`0-9*#A-D`); the phone must be off-hook. While digits play, the
    /// phone sends only DTMF, then its signature again.
    ///
    /// # Errors
    /// An invalid digit or a full queue; digits dialed on-hook are refused as
    /// [`DtmfError::QueueFull`] with no room.
    pub fn dial(&mut self, digits: &str) -> Result<(), DtmfError> {
        if self.hook == HookState::OnHook {
            return Err(DtmfError::QueueFull { wanted: digits.chars().count(), room: 0 });
        }
        self.dtmf.queue(digits)?;
        self.counters.digits_dialed += digits.chars().count() as u64;
        if !digits.is_empty() {
            self.dialing = true;
            self.listener.forget_tone();
        }
        Ok(())
    }

    fn go(&mut self, hook: HookState) {
        if hook == HookState::OnHook {
            if let Some(h) = self.hybrid.as_mut() {
                h.reset();
            }
        }
        self.hook = hook;
        if let Some(slot) = self.pending.iter_mut().find(|p| p.is_none()) {
            *slot = Some(hook);
        } else {
            // Two changes already queued within one tick cancel out; keep the newest.
            self.pending = [Some(hook), None];
        }
        match hook {
            HookState::OffHook => {
                self.counters.off_hooks += 1;
                if self.is_ringing() {
                    self.counters.answered += 1;
                }
                self.ring_voltage = false;
                self.state = PhoneState::OffHook;
                self.listener.set_active(true);
            }
            HookState::OnHook => {
                self.state = PhoneState::Idle;
                self.dtmf.clear();
                self.dialing = false;
                self.listener.set_active(false);
            }
        }
    }

    /// The caller ID the phone's display shows: the last message received while ringing
    /// (decoded and checked now), or `None` when none came since the last ring began.
    pub fn caller_id(&self) -> Option<Result<(Format, CallerIdMessage), CidError>> {
        (self.cid_len > 0).then(|| callerid::decode(&self.cid_frame[..self.cid_len]))
    }

    /// The DTMF caller ID the phone's display shows (with [`PhoneConfig::callerid_dtmf`]):
    /// the digits received on-hook just before the current or last ringing episode, parsed
    /// (ETS 300 659-1 Annex C), or `None` when none came.
    ///
    /// [`PhoneConfig::callerid_dtmf`]: crate::config::PhoneConfig::callerid_dtmf
    pub fn dtmf_caller_id(&self) -> Option<Result<CallerIdMessage, CidError>> {
        self.dtmf_cid.clone()
    }

    /// Ringing voltage applied or removed by the exchange (our FXS port).
    pub(crate) fn ring(&mut self, on: bool) {
        if on == self.ring_voltage {
            return;
        }
        if !on {
            self.ring_voltage = false;
            self.ring_last_off = self.now;
            return;
        }
        if self.hook == HookState::OffHook {
            // Ring trip: an off-hook phone does not ring.
            return;
        }
        self.ring_voltage = true;
        self.counters.ring_bursts += 1;
        if !self.is_ringing() {
            self.ring_started = self.now;
            self.episode_bursts = 0;
            self.cid_len = 0;
            if let Some(rx) = self.cid_rx.as_mut() {
                rx.reset();
            }
            let fresh = self.now <= self.dtmf_last + DTMF_CID_TIMEOUT_MS;
            self.dtmf_cid = (self.dtmf_len > 0 && fresh).then(|| {
                let digits: String =
                    self.dtmf_digits[..self.dtmf_len].iter().map(|&b| b as char).collect();
                callerid::parse_dtmf(&digits)
            });
            self.dtmf_len = 0;
        }
        self.episode_bursts += 1;
        self.state = PhoneState::Ringing { bursts: self.episode_bursts };
    }

    /// Battery polarity change or open-loop pulse from the exchange (counted only).
    pub(crate) fn line_signal(&mut self) {
        self.counters.line_signals += 1;
    }

    /// The next tick at which the phone does something other than sound (answer a ring,
    /// notice that ringing stopped, report a hook change, dial, end a flash); `None` when it
    /// only listens and speaks its signature until someone acts on it.
    pub(crate) fn next_due(&self) -> Option<Tick> {
        let soon = self.now + 1;
        if self.dialing || self.flash_until.is_some() || self.pending.iter().any(Option::is_some) {
            return Some(soon);
        }
        if let PhoneState::Ringing { .. } = self.state {
            let answer = self.auto_answer.map(|d| self.ring_started + u64::from(d));
            let gone =
                (!self.ring_voltage).then(|| self.ring_last_off + u64::from(self.cfg.ring_gone_ms));
            return [answer, gone].into_iter().flatten().min().map(|t| t.max(soon));
        }
        None
    }

    /// One tick: apply timers, emit hook events, exchange one chunk.
    ///
    /// # Real-time
    /// Constant work (signature filters while off-hook); no allocation.
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
            self.go(HookState::OffHook);
        }
        if let PhoneState::Ringing { .. } = self.state {
            let answer = self.auto_answer.is_some_and(|d| now >= self.ring_started + u64::from(d));
            if answer {
                // Answered: the ringing episode is over, not missed.
                self.off_hook();
            } else if !self.ring_voltage
                && now >= self.ring_last_off + u64::from(self.cfg.ring_gone_ms)
            {
                self.state = PhoneState::Idle;
                self.counters.missed += 1;
            }
        }
        for p in self.pending.iter_mut() {
            match p.take() {
                Some(HookState::OffHook) => events.push(HalEvent::OffHook(self.chan)),
                Some(HookState::OnHook) => events.push(HalEvent::OnHook(self.chan)),
                None => {}
            }
        }
        // Ear.
        self.law.decode_block(from_pbx, &mut self.buf);
        let heard = self.buf;
        let ringing = self.is_ringing();
        if self.hook == HookState::OffHook {
            self.listener.push(plan, &heard);
        } else if let (Some(rx), false) = (self.dtmf_rx.as_mut(), ringing) {
            // DTMF caller ID comes on-hook before the first ring.
            let mut got = None;
            rx.process(&heard, |ev| {
                if let DtmfEvent::Start { digit, .. } = ev {
                    got = Some(digit);
                }
            });
            if let Some(d) = got {
                if now > self.dtmf_last + DTMF_CID_TIMEOUT_MS {
                    self.dtmf_len = 0;
                }
                if self.dtmf_len < DTMF_CID_MAX {
                    self.dtmf_digits[self.dtmf_len] = d as u8;
                    self.dtmf_len += 1;
                }
                self.dtmf_last = now;
            }
        } else if let (Some(rx), true) = (self.cid_rx.as_mut(), ringing) {
            // The display decodes on-hook data between the rings.
            let (frame, len) = (&mut self.cid_frame, &mut self.cid_len);
            rx.process_frames(&heard, |r| {
                if let Ok(bytes) = r {
                    frame[..bytes.len()].copy_from_slice(bytes);
                    *len = bytes.len();
                }
            });
        }
        // Mouth.
        if self.hook == HookState::OnHook {
            *to_pbx = [self.law.silence(); CHUNK_SAMPLES];
        } else {
            if self.dialing {
                self.dialing = self.dtmf.fill(&mut self.buf);
            } else {
                self.voice.fill(&mut self.buf);
            }
            if let Some(h) = self.hybrid.as_mut() {
                h.apply(&heard, &mut self.buf);
            }
            self.law.encode_block(&self.buf, to_pbx);
        }
    }
}
