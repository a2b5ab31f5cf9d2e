//! MFC/R2 (China No.1 variant) for E1 CAS channels, sans-IO.
//!
//! [`R2Channel`] combines the ABCD line signalling of one timeslot ([`line`](mod@line)) with the
//! compelled MF register signalling ([`register`]). It is fed the received ABCD bits
//! ([`R2Channel::abcd_received`]), the MF signal edges of the daemon's R2 tone detector
//! ([`R2Channel::mf_received`]), call-control requests and the time; it hands back
//! [`R2Action`]s: ABCD bits to send, MF tones to play (and which direction to listen for), and
//! call events. It never reads a clock, does I/O, generates or detects tones, or allocates.
//!
//! # Call flow (outgoing side on the left)
//! ```text
//! make_call → AB 00 (seize)        ─────▶  seized → AB 11 (seize ack), listen forward
//! AB 11 seen → first DNIS digit I-n ────▶  A-1 / A-6 / A-3 (compelled cycles) ◀──
//! ... ANI and DNIS per A signals ...       Offered{dnis, ani, category}
//! B-1 seen → Event Accepted         ◀────  accept(B1) → B-1
//! AB 01 seen → Event Answered       ◀────  answer() → AB 01
//! hangup → AB 10 (clear forward)    ─────▶ Cleared → AB 10 (release guard) → Idle
//! AB 10 seen → Idle
//! ```
//! Every input first runs the timers that are due, so results do not depend on whether the
//! caller ran [`R2Channel::poll`] before feeding an input at the same tick. Time never runs
//! backwards: an earlier `now` than one already seen is taken as the latest seen.
//!
//! # Glare
//! When both ends seize the same bothway circuit, the end configured with
//! [`R2Config::glare_priority`] keeps its call; the other drops its attempt
//! ([`ClearReason::GlareLost`]) and takes the incoming call. This is the usual "one end of each
//! circuit has priority" rule (e.g. by odd/even timeslot); OpenR2 itself does not resolve glare
//! **(the exact China rule is unverified)**. Configure exactly one end of each circuit with
//! priority.

pub mod line;
pub mod register;

mod fuzz;

pub use fuzz::fuzz_check;
pub use line::{LineOutcome, LineState, R2Line};
pub use register::{BSignal, Digits, IncomingRegister, OutgoingRegister, MAX_DIGITS};

use cardpbx_hal::{Abcd, Tick};
use line::{ab_of, abcd_of};
use register::{InResult, OutResult, ToneChange};
use serde::{Deserialize, Serialize};

/// Settings of an R2 channel. Timer defaults are OpenR2's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct R2Config {
    /// The fixed C and D bits sent (bit 1 = C, bit 0 = D): China `0b11`, ITU `0b01`.
    pub cd_bits: u8,
    /// How long (ms) a received AB pattern must persist before it counts (default 20).
    pub debounce_ms: u32,
    /// `r2_seize`: wait for seize acknowledge after seizing, ms (default 8000).
    pub seize_ack_ms: u32,
    /// `r2_answer`: outgoing side waits this long for answer after an accepting B signal, ms
    /// (default 60000).
    pub answer_ms: u32,
    /// `mf_back_cycle`: longest compelled cycle seen from the backward side, ms (default 5000).
    pub mf_back_cycle_ms: u32,
    /// `mf_fwd_safety`: longest wait of the forward side for a backward signal, ms
    /// (default 30000).
    pub mf_fwd_safety_ms: u32,
    /// Silence after a DNIS digit that ends the DNIS (China has no end-of-DNIS signal), ms
    /// (default 5000, OpenR2 uses `mf_back_cycle`). Only used when fewer than `max_dnis`
    /// digits came.
    pub dnis_timeout_ms: u32,
    /// Length of a pulsed backward signal (A-3/A-6 after a DNIS timeout), ms (default 150,
    /// `mf_back_resume_cycle`).
    pub mf_pulse_ms: u32,
    /// Incoming side: idle (10) is held this long after clear forward before a new seizure is
    /// taken, ms (default 100).
    pub release_guard_ms: u32,
    /// Wait for the far end to go idle after we cleared (clear forward, clear back or forced
    /// release), ms (default 8000); then the channel is idled anyway with
    /// [`R2ProtocolError::ReleaseTimeout`].
    pub release_timeout_ms: u32,
    /// DNIS digits the incoming register collects before asking for group B; 0 = until
    /// `dnis_timeout_ms` of silence (default 4).
    pub max_dnis: u8,
    /// Incoming register asks for the ANI right after the first DNIS digit (default true,
    /// as OpenR2); otherwise after the DNIS.
    pub get_ani_first: bool,
    /// This end keeps its call on glare (see the module docs; default false).
    pub glare_priority: bool,
}

impl Default for R2Config {
    fn default() -> Self {
        R2Config {
            cd_bits: 0b11,
            debounce_ms: 20,
            seize_ack_ms: 8000,
            answer_ms: 60_000,
            mf_back_cycle_ms: 5000,
            mf_fwd_safety_ms: 30_000,
            dnis_timeout_ms: 5000,
            mf_pulse_ms: 150,
            release_guard_ms: 100,
            release_timeout_ms: 8000,
            max_dnis: 4,
            get_ani_first: true,
            glare_priority: false,
        }
    }
}

/// Which MF frequency group a tone belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MfDirection {
    /// Forward signals (groups I/II), 1380..1980 Hz: sent by the outgoing side.
    Forward,
    /// Backward signals (groups A/B), 540..1140 Hz: sent by the incoming side.
    Backward,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearReason {
    /// We hung up.
    LocalHangup,
    /// The far end hung up (clear back on an outgoing call, clear forward on an incoming one).
    RemoteHangup,
    /// The far end refused the call with this group B signal (busy, vacant, ...).
    Rejected(BSignal),
    /// The far end sent A-4 congestion.
    Congestion,
    /// No answer within `answer_ms`.
    NoAnswer,
    /// No seize acknowledge within `seize_ack_ms`.
    SeizeAckTimeout,
    /// An MF cycle timed out.
    MfTimeout,
    /// The far end forced release (backward AB 00).
    ForcedRelease,
    /// A protocol error (see the preceding [`R2Event::ProtocolError`]).
    ProtocolError,
    /// Both ends seized and the far end has priority: the outgoing attempt is dropped.
    GlareLost,
}

/// A protocol violation seen on the channel, and what was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum R2ProtocolError {
    /// An AB pattern that makes no sense in the line state. `cleared`: the call was cleared
    /// as recovery (outgoing side); otherwise the pattern is ignored until a valid one comes.
    UnexpectedAbcd {
        /// Received AB (A in bit 1).
        ab: u8,
        /// Line state it arrived in.
        state: LineState,
        /// Whether the call was cleared.
        cleared: bool,
    },
    /// An MF signal that makes no sense now (0: the forward tone vanished while offered).
    BadMfSignal(u8),
    /// No seize acknowledge in time.
    SeizeAckTimeout,
    /// An MF cycle did not complete in time.
    MfTimeout,
    /// The far end did not return to idle after clear forward; the channel was idled anyway.
    ReleaseTimeout,
    /// The far end seized a circuit we block; ignored.
    SeizedWhileBlocked,
}

/// What the channel tells call control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum R2Event {
    /// Incoming call registered: decide with [`R2Channel::accept`].
    Offered {
        /// Called number.
        dnis: Digits,
        /// Calling number (may be empty).
        ani: Digits,
        /// Whether the caller sent I-12 (presentation restricted).
        ani_restricted: bool,
        /// Group II category (KD).
        category: u8,
    },
    /// Outgoing call accepted by the far end with this B signal: it is ringing.
    Accepted {
        /// The accepting B signal.
        b: BSignal,
    },
    /// Outgoing call answered.
    Answered,
    /// The call ended (reported once per call).
    Cleared {
        /// Why.
        reason: ClearReason,
    },
    /// A protocol violation (see [`R2ProtocolError`] for the recovery taken).
    ProtocolError {
        /// What went wrong.
        error: R2ProtocolError,
    },
    /// The channel is idle again and can take or make a call.
    Idle,
    /// The far end blocks the circuit.
    RemoteBlocked,
    /// The far end stopped blocking the circuit.
    RemoteUnblocked,
}

/// What the channel wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum R2Action {
    /// Send these ABCD bits on the timeslot's CAS.
    SetAbcd(Abcd),
    /// Play MF signal `signal` (1..=15) of `direction`, or stop with `None`.
    MfTone {
        /// The signal, or `None` for silence.
        signal: Option<u8>,
        /// The frequency group.
        direction: MfDirection,
    },
    /// Run the MF detector for this direction (`None`: detector off).
    MfListen(Option<MfDirection>),
    /// Tell call control.
    Event(R2Event),
}

/// Why a call-control request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum R2Error {
    /// The channel is not idle (or the far end is not idle).
    #[error("channel busy: line is {0:?}")]
    NotIdle(LineState),
    /// DNIS empty or longer than the limit, or ANI too long, or a non-digit.
    #[error("bad number: DNIS 1..=32 and ANI 0..=32 decimal digits")]
    BadNumber,
    /// Category outside 1..=15.
    #[error("category {0} is outside 1..=15")]
    BadCategory(u8),
    /// No offered call waits for a decision.
    #[error("no offered call to accept")]
    NotOffered,
    /// Nothing to answer (no accepted incoming call).
    #[error("no accepted incoming call to answer")]
    NotAnswerable,
}

/// The timers of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum R2Timer {
    /// Seize acknowledge wait.
    Seize,
    /// Answer wait (outgoing, after acceptance).
    Answer,
    /// Forward MF safety.
    MfFwd,
    /// Backward MF cycle / DNIS timeout.
    MfBack,
    /// End of a pulsed backward signal.
    Pulse,
    /// Incoming release guard.
    Guard,
    /// Wait for the far end to go idle after we cleared.
    Release,
}

const TIMERS: usize = 7;
const ALL_TIMERS: [R2Timer; TIMERS] = [
    R2Timer::Seize,
    R2Timer::Answer,
    R2Timer::MfFwd,
    R2Timer::MfBack,
    R2Timer::Pulse,
    R2Timer::Guard,
    R2Timer::Release,
];

impl R2Timer {
    fn index(self) -> usize {
        self as usize
    }
}

/// Capacity of the action queue. One input emits at most about a dozen actions; the caller
/// drains after each.
const QUEUE: usize = 32;

/// Inline FIFO of actions; when full the oldest is dropped and counted.
#[derive(Debug, Clone)]
struct ActionQueue {
    buf: [Option<R2Action>; QUEUE],
    head: usize,
    len: usize,
    dropped: u32,
}

impl ActionQueue {
    fn new() -> Self {
        ActionQueue { buf: [None; QUEUE], head: 0, len: 0, dropped: 0 }
    }

    fn push(&mut self, a: R2Action) {
        if self.len == QUEUE {
            self.buf[self.head] = None;
            self.head = (self.head + 1) % QUEUE;
            self.len -= 1;
            self.dropped = self.dropped.saturating_add(1);
        }
        self.buf[(self.head + self.len) % QUEUE] = Some(a);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<R2Action> {
        if self.len == 0 {
            return None;
        }
        let a = self.buf[self.head].take();
        self.head = (self.head + 1) % QUEUE;
        self.len -= 1;
        a
    }
}

/// A plain picture of a channel, for `show` commands and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct R2Snapshot {
    /// Channel number given to [`R2Channel::new`].
    pub channel: u16,
    /// Line state.
    pub line: LineState,
    /// AB we send (A in bit 1).
    pub tx_ab: u8,
    /// Debounced AB we receive.
    pub rx_ab: u8,
    /// MF tone we play now.
    pub mf_tone: Option<u8>,
    /// Whether an outgoing or incoming register is running.
    pub register_active: bool,
    /// Actions dropped because the caller did not drain them.
    pub dropped: u32,
}

/// One E1 CAS channel speaking MFC/R2 (China No.1), sans-IO. See the module docs.
///
/// # Real-time
/// Every method does bounded work and never allocates: actions wait in a fixed queue.
#[derive(Debug, Clone)]
pub struct R2Channel {
    channel: u16,
    cfg: R2Config,
    line: R2Line,
    now: Tick,
    timers: [Option<Tick>; TIMERS],
    out_reg: Option<OutgoingRegister>,
    in_reg: Option<IncomingRegister>,
    tone: Option<u8>,
    tone_dir: MfDirection,
    listen: Option<MfDirection>,
    tx_ab: u8,
    /// A call is in progress and has not been reported cleared.
    call_open: bool,
    /// Incoming call accepted by call control (may be answered).
    in_accepted: bool,
    queue: ActionQueue,
}

impl R2Channel {
    /// A new idle channel. Nothing is emitted: the caller sets the idle ABCD
    /// ([`R2Channel::tx_abcd`]) when it starts the span.
    pub fn new(channel: u16, cfg: R2Config) -> Self {
        R2Channel {
            channel,
            cfg,
            line: R2Line::new(cfg.debounce_ms, cfg.glare_priority),
            now: 0,
            timers: [None; TIMERS],
            out_reg: None,
            in_reg: None,
            tone: None,
            tone_dir: MfDirection::Forward,
            listen: None,
            tx_ab: line::AB_IDLE,
            call_open: false,
            in_accepted: false,
            queue: ActionQueue::new(),
        }
    }

    /// The channel number.
    pub fn channel(&self) -> u16 {
        self.channel
    }

    /// The configuration in use.
    pub fn config(&self) -> &R2Config {
        &self.cfg
    }

    /// The line state.
    pub fn state(&self) -> LineState {
        self.line.state()
    }

    /// The ABCD bits we send now.
    pub fn tx_abcd(&self) -> Abcd {
        abcd_of(self.tx_ab, self.cfg.cd_bits)
    }

    /// The MF tone we play now.
    pub fn mf_tone(&self) -> Option<u8> {
        self.tone
    }

    /// A serializable picture of the channel.
    pub fn snapshot(&self) -> R2Snapshot {
        R2Snapshot {
            channel: self.channel,
            line: self.line.state(),
            tx_ab: self.tx_ab,
            rx_ab: self.line.rx_ab(),
            mf_tone: self.tone,
            register_active: self.out_reg.is_some() || self.in_reg.is_some(),
            dropped: self.queue.dropped,
        }
    }

    /// When a timer is armed to expire, if it is.
    pub fn timer(&self, t: R2Timer) -> Option<Tick> {
        self.timers[t.index()]
    }

    /// ABCD bits received on the timeslot (every change, or every sample: repeats are fine).
    pub fn abcd_received(&mut self, now: Tick, abcd: Abcd) {
        let now = self.advance(now);
        if self.line.input(now, ab_of(abcd)).is_some() {
            self.handle_rx(now);
        }
    }

    /// An MF signal edge from the detector: `Some(1..=15)` started, `None` stopped.
    pub fn mf_received(&mut self, now: Tick, signal: Option<u8>) {
        let now = self.advance(now);
        let signal = signal.filter(|s| (1..=15).contains(s));
        // MF means something only once the register runs: outgoing after the seize
        // acknowledge, incoming while seized.
        let state = self.line.state();
        if let Some(mut reg) = self.out_reg {
            if !reg.finished() && state == LineState::OutSeized {
                let (t, r) = reg.on_back(signal);
                self.out_reg = Some(reg);
                self.apply_tone(t, MfDirection::Forward);
                if reg.finished() {
                    self.disarm(R2Timer::MfFwd);
                    self.set_listen(None);
                } else {
                    self.arm(R2Timer::MfFwd, now, self.cfg.mf_fwd_safety_ms);
                }
                if let Some(r) = r {
                    self.out_result(now, r);
                }
            }
        } else if let Some(mut reg) = self.in_reg.filter(|_| state == LineState::InSeized) {
            let (t, r) = reg.on_fwd(signal);
            self.in_reg = Some(reg);
            self.apply_tone(t, MfDirection::Backward);
            self.rearm_back(now);
            match r {
                Some(InResult::Offered) => self.event(R2Event::Offered {
                    dnis: reg.dnis(),
                    ani: reg.ani(),
                    ani_restricted: reg.ani_restricted(),
                    category: reg.category().unwrap_or(0),
                }),
                Some(InResult::Finished) => self.set_listen(None),
                Some(InResult::BadSignal(s)) => {
                    self.event(R2Event::ProtocolError { error: R2ProtocolError::BadMfSignal(s) })
                }
                None => {}
            }
        }
    }

    /// Place an outgoing call: seize, then send `dnis` and `ani` (decimal digits) and the
    /// calling party category `category` (group II signal, e.g. 1 = ordinary subscriber).
    ///
    /// # Errors
    /// [`R2Error::NotIdle`] unless the line is idle at both ends and not blocked;
    /// [`R2Error::BadNumber`], [`R2Error::BadCategory`] for bad arguments.
    pub fn make_call(
        &mut self,
        now: Tick,
        dnis: &str,
        ani: &str,
        category: u8,
    ) -> Result<(), R2Error> {
        let now = self.advance(now);
        let d = Digits::parse(dnis).filter(|d| !d.is_empty()).ok_or(R2Error::BadNumber)?;
        let a = Digits::parse(ani).ok_or(R2Error::BadNumber)?;
        if !(1..=15).contains(&category) {
            return Err(R2Error::BadCategory(category));
        }
        if !self.line.seize() {
            return Err(R2Error::NotIdle(self.line.state()));
        }
        self.out_reg = Some(OutgoingRegister::new(d, a, category));
        self.call_open = true;
        self.sync_abcd();
        self.arm(R2Timer::Seize, now, self.cfg.seize_ack_ms);
        Ok(())
    }

    /// Decide on an offered incoming call: send group B signal `b` (B1 free, B2 busy, B5
    /// vacant, ...). After an accepting signal, [`R2Channel::answer`] answers.
    ///
    /// # Errors
    /// [`R2Error::NotOffered`] unless a call was offered and waits.
    pub fn accept(&mut self, now: Tick, b: BSignal) -> Result<(), R2Error> {
        let now = self.advance(now);
        let mut reg = self.in_reg.ok_or(R2Error::NotOffered)?;
        let t = reg.accept(b).ok_or(R2Error::NotOffered)?;
        self.in_reg = Some(reg);
        self.in_accepted = b.is_accept();
        self.apply_tone(Some(t), MfDirection::Backward);
        self.rearm_back(now);
        Ok(())
    }

    /// Answer an accepted incoming call (AB 01).
    ///
    /// # Errors
    /// [`R2Error::NotAnswerable`] unless an incoming call was accepted and is not answered.
    pub fn answer(&mut self, now: Tick) -> Result<(), R2Error> {
        self.advance(now);
        if !self.in_accepted || !self.line.answer() {
            return Err(R2Error::NotAnswerable);
        }
        self.sync_abcd();
        Ok(())
    }

    /// Hang up: clear forward (outgoing), clear back (answered incoming) or forced release
    /// (unanswered incoming). Reports [`ClearReason::LocalHangup`]; does nothing without a call.
    pub fn hangup(&mut self, now: Tick) {
        let now = self.advance(now);
        if !self.line.clear() {
            return;
        }
        self.stop_registers();
        self.disarm(R2Timer::Seize);
        self.disarm(R2Timer::Answer);
        self.clear_call(ClearReason::LocalHangup);
        self.after_local_clear(now);
    }

    /// Block the circuit (AB 11 while idle); takes effect when the current call ends.
    pub fn block(&mut self, now: Tick) {
        self.advance(now);
        self.line.block();
        self.sync_abcd();
    }

    /// Unblock the circuit.
    pub fn unblock(&mut self, now: Tick) {
        let now = self.advance(now);
        self.line.unblock();
        self.sync_abcd();
        // The far end may have seized or blocked meanwhile.
        self.handle_rx(now);
    }

    /// Run the timers due at `now`.
    pub fn poll(&mut self, now: Tick) {
        self.advance(now);
    }

    /// When [`R2Channel::poll`] next needs calling, if ever.
    pub fn next_timeout(&self) -> Option<Tick> {
        self.timers.iter().flatten().copied().chain(self.line.deadline()).min()
    }

    /// The next action, oldest first.
    pub fn poll_action(&mut self) -> Option<R2Action> {
        self.queue.pop()
    }

    /// Check the internal consistency of the channel; `Err` names the broken rule. Used by the
    /// fuzzer and the tests.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        if self.tx_ab != self.line.state().tx_ab() {
            return Err("sent AB does not match the line state");
        }
        if !self.line.state().in_call() {
            if self.tone.is_some() {
                return Err("MF tone on while idle");
            }
            if self.out_reg.is_some() || self.in_reg.is_some() {
                return Err("register alive while idle");
            }
            if self.call_open {
                return Err("call open while idle");
            }
            if self.timers.iter().any(Option::is_some) {
                return Err("timer armed while idle");
            }
        }
        let reg_tone = match (self.out_reg, self.in_reg) {
            (Some(r), None) => r.tone(),
            (None, Some(r)) => r.tone(),
            (None, None) => None,
            _ => return Err("both registers alive"),
        };
        if reg_tone != self.tone {
            return Err("emitted tone differs from the register's");
        }
        Ok(())
    }

    // ---- internals ----

    fn arm(&mut self, t: R2Timer, now: Tick, ms: u32) {
        self.timers[t.index()] = Some(now.saturating_add(u64::from(ms)));
    }

    fn disarm(&mut self, t: R2Timer) {
        self.timers[t.index()] = None;
    }

    fn event(&mut self, e: R2Event) {
        self.queue.push(R2Action::Event(e));
    }

    fn sync_abcd(&mut self) {
        let ab = self.line.state().tx_ab();
        if ab != self.tx_ab {
            self.tx_ab = ab;
            self.queue.push(R2Action::SetAbcd(abcd_of(ab, self.cfg.cd_bits)));
        }
    }

    fn apply_tone(&mut self, t: ToneChange, dir: MfDirection) {
        if let Some(sig) = t {
            if sig != self.tone || (sig.is_some() && dir != self.tone_dir) {
                self.tone = sig;
                self.tone_dir = dir;
                self.queue.push(R2Action::MfTone { signal: sig, direction: dir });
            }
        }
    }

    fn set_listen(&mut self, l: Option<MfDirection>) {
        if l != self.listen {
            self.listen = l;
            self.queue.push(R2Action::MfListen(l));
        }
    }

    fn stop_registers(&mut self) {
        if let Some(mut r) = self.out_reg.take() {
            let t = r.stop();
            self.apply_tone(t, MfDirection::Forward);
        }
        if let Some(mut r) = self.in_reg.take() {
            let t = r.stop();
            self.apply_tone(t, MfDirection::Backward);
        }
        self.disarm(R2Timer::MfFwd);
        self.disarm(R2Timer::MfBack);
        self.disarm(R2Timer::Pulse);
        self.set_listen(None);
    }

    fn clear_call(&mut self, reason: ClearReason) {
        if self.call_open {
            self.call_open = false;
            self.event(R2Event::Cleared { reason });
        }
    }

    fn protocol_error(&mut self, error: R2ProtocolError) {
        self.event(R2Event::ProtocolError { error });
    }

    /// After the line went to a clearing state on our initiative: send the bits, arm the
    /// release wait (outgoing) and re-check the far end (it may already be idle).
    fn after_local_clear(&mut self, now: Tick) {
        self.in_accepted = false;
        self.sync_abcd();
        if matches!(
            self.line.state(),
            LineState::OutClearing | LineState::InClearBack | LineState::InForcedRelease
        ) {
            self.arm(R2Timer::Release, now, self.cfg.release_timeout_ms);
        }
        self.handle_rx(now);
    }

    /// (Re)arm the backward MF timer for the incoming register's situation.
    fn rearm_back(&mut self, now: Tick) {
        let Some(reg) = self.in_reg else {
            return;
        };
        if reg.done() || reg.offered() || reg.pulsing() {
            self.disarm(R2Timer::MfBack);
        } else if reg.tone().is_none()
            && reg.expect() == register::Expect::DnisDigit
            && !reg.dnis().is_empty()
        {
            self.arm(R2Timer::MfBack, now, self.cfg.dnis_timeout_ms);
        } else {
            self.arm(R2Timer::MfBack, now, self.cfg.mf_back_cycle_ms);
        }
    }

    fn out_result(&mut self, now: Tick, r: OutResult) {
        let reason = match r {
            OutResult::GroupB(b) if b.is_accept() => {
                self.event(R2Event::Accepted { b });
                if self.line.state() == LineState::OutSeized {
                    self.arm(R2Timer::Answer, now, self.cfg.answer_ms);
                }
                return;
            }
            OutResult::GroupB(b) => ClearReason::Rejected(b),
            OutResult::Congestion => ClearReason::Congestion,
            OutResult::BadSignal(s) => {
                self.protocol_error(R2ProtocolError::BadMfSignal(s));
                ClearReason::ProtocolError
            }
        };
        self.clear_call(reason);
        if self.line.clear() {
            self.stop_registers();
            self.after_local_clear(now);
        }
    }

    /// Clamp `now`, then run due timers and debounce deadlines in time order.
    fn advance(&mut self, now: Tick) -> Tick {
        let now = now.max(self.now);
        self.now = now;
        // Bounded: each round consumes a deadline; a handful per input at most.
        for _ in 0..64 {
            let timer = ALL_TIMERS
                .iter()
                .filter_map(|&t| self.timers[t.index()].map(|at| (at, t)))
                .min_by_key(|&(at, _)| at);
            let deb = self.line.deadline();
            let deb_first = match (deb, timer) {
                (Some(d), Some((at, _))) => d <= at,
                (Some(_), None) => true,
                _ => false,
            };
            if deb_first {
                let d = deb.unwrap_or(now);
                if d > now {
                    break;
                }
                if self.line.poll_rx(d).is_some() {
                    self.handle_rx(d);
                }
            } else if let Some((at, t)) = timer.filter(|&(at, _)| at <= now) {
                self.timers[t.index()] = None;
                self.expire(at, t);
            } else {
                break;
            }
        }
        now
    }

    fn expire(&mut self, at: Tick, t: R2Timer) {
        match t {
            R2Timer::Seize => {
                if self.line.state() == LineState::SeizeSent {
                    self.protocol_error(R2ProtocolError::SeizeAckTimeout);
                    self.fail_call(at, ClearReason::SeizeAckTimeout);
                }
            }
            R2Timer::Answer => self.fail_call(at, ClearReason::NoAnswer),
            R2Timer::MfFwd => {
                self.protocol_error(R2ProtocolError::MfTimeout);
                self.fail_call(at, ClearReason::MfTimeout);
            }
            R2Timer::MfBack => {
                let Some(mut reg) = self.in_reg else {
                    return;
                };
                let pulse = reg.dnis_timeout();
                self.in_reg = Some(reg);
                if pulse.is_some() {
                    self.apply_tone(pulse, MfDirection::Backward);
                    self.arm(R2Timer::Pulse, at, self.cfg.mf_pulse_ms);
                } else {
                    self.protocol_error(R2ProtocolError::MfTimeout);
                    self.fail_call(at, ClearReason::MfTimeout);
                }
            }
            R2Timer::Pulse => {
                let Some(mut reg) = self.in_reg else {
                    return;
                };
                let (t, r) = reg.pulse_over();
                self.in_reg = Some(reg);
                self.apply_tone(t, MfDirection::Backward);
                self.rearm_back(at);
                if let Some(InResult::BadSignal(s)) = r {
                    self.protocol_error(R2ProtocolError::BadMfSignal(s));
                }
            }
            R2Timer::Guard => {
                self.line.guard_over();
                self.went_idle();
                self.handle_rx(at);
            }
            R2Timer::Release => {
                if matches!(
                    self.line.state(),
                    LineState::OutClearing | LineState::InClearBack | LineState::InForcedRelease
                ) {
                    self.protocol_error(R2ProtocolError::ReleaseTimeout);
                    self.line.force_idle();
                    self.went_idle();
                    self.handle_rx(at);
                }
            }
        }
    }

    /// End the call on a timeout: report, stop MF, clear (forward or forced release).
    fn fail_call(&mut self, at: Tick, reason: ClearReason) {
        self.clear_call(reason);
        self.stop_registers();
        self.disarm(R2Timer::Answer);
        self.disarm(R2Timer::Seize);
        if self.line.clear() {
            self.after_local_clear(at);
        }
    }

    /// The line reached idle: tidy up and tell call control.
    fn went_idle(&mut self) {
        self.stop_registers();
        self.timers = [None; TIMERS];
        self.in_accepted = false;
        self.clear_call(ClearReason::ProtocolError);
        self.line.settle();
        self.sync_abcd();
        if matches!(self.line.state(), LineState::Idle | LineState::RemoteBlocked) {
            self.event(R2Event::Idle);
        }
    }

    /// Act on the debounced received AB (after a change, or to re-evaluate).
    fn handle_rx(&mut self, now: Tick) {
        let before = self.line.state();
        let outcome = self.line.on_rx();
        match outcome {
            LineOutcome::None | LineOutcome::GlareWon => {}
            LineOutcome::SeizeAcked => {
                self.disarm(R2Timer::Seize);
                if let Some(mut reg) = self.out_reg {
                    let t = reg.start();
                    self.out_reg = Some(reg);
                    self.set_listen(Some(MfDirection::Backward));
                    self.apply_tone(t, MfDirection::Forward);
                    self.arm(R2Timer::MfFwd, now, self.cfg.mf_fwd_safety_ms);
                }
            }
            LineOutcome::Seized | LineOutcome::GlareLost => {
                if outcome == LineOutcome::GlareLost {
                    self.disarm(R2Timer::Seize);
                    self.stop_registers();
                    self.clear_call(ClearReason::GlareLost);
                }
                self.in_reg =
                    Some(IncomingRegister::new(self.cfg.max_dnis.into(), self.cfg.get_ani_first));
                self.call_open = true;
                self.in_accepted = false;
                self.set_listen(Some(MfDirection::Forward));
                self.arm(R2Timer::MfBack, now, self.cfg.mf_back_cycle_ms);
            }
            LineOutcome::Answered => {
                self.disarm(R2Timer::Answer);
                if self.out_reg.is_some_and(|r| !r.finished()) {
                    // Answer without a B signal: accept it, stop MF.
                    self.stop_registers();
                }
                self.event(R2Event::Answered);
            }
            LineOutcome::ClearBack | LineOutcome::ForcedRelease => {
                self.clear_call(if outcome == LineOutcome::ClearBack {
                    ClearReason::RemoteHangup
                } else {
                    ClearReason::ForcedRelease
                });
                self.stop_registers();
                self.disarm(R2Timer::Answer);
                self.arm(R2Timer::Release, now, self.cfg.release_timeout_ms);
            }
            LineOutcome::ClearForward | LineOutcome::Released => {
                self.clear_call(ClearReason::RemoteHangup);
                self.stop_registers();
                self.timers = [None; TIMERS];
                if self.line.state() == LineState::ReleaseGuard {
                    self.in_accepted = false;
                    self.arm(R2Timer::Guard, now, self.cfg.release_guard_ms);
                } else {
                    self.went_idle();
                }
            }
            LineOutcome::RemoteBlocked => self.event(R2Event::RemoteBlocked),
            LineOutcome::RemoteUnblocked => self.event(R2Event::RemoteUnblocked),
            LineOutcome::Unexpected { ab, state, cleared } => {
                if state == LineState::Blocked && ab == line::AB_SEIZE {
                    self.protocol_error(R2ProtocolError::SeizedWhileBlocked);
                } else {
                    self.protocol_error(R2ProtocolError::UnexpectedAbcd { ab, state, cleared });
                }
                if cleared {
                    self.clear_call(ClearReason::ProtocolError);
                    self.stop_registers();
                    self.disarm(R2Timer::Seize);
                    self.disarm(R2Timer::Answer);
                    self.arm(R2Timer::Release, now, self.cfg.release_timeout_ms);
                }
            }
        }
        self.sync_abcd();
        // A state change may make the (unchanged) received bits mean something new.
        if self.line.state() != before
            && matches!(self.line.state(), LineState::OutClearing)
            && self.line.rx_ab() == line::AB_IDLE
        {
            self.handle_rx(now);
        }
    }
}

#[cfg(test)]
mod tests;
