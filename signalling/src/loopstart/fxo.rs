//! The FXO line: our port is a phone towards a central office (CO) line.
//!
//! [`FxoLine`] debounces ring bursts into an incoming call, decides when the caller gave up,
//! answers and seizes the line, sends hook flashes, and supervises the far end while off-hook.
//! Busy-tone disconnect is detected by the daemon's tone detector, which reports it through
//! [`FxoLine::far_end_disconnect`] so that every far-end disconnect takes the same path: a
//! [`FxoEvent::FarEndDisconnect`] event, an `OnHook` command and the seize guard time.
//!
//! # Ringing
//! A ring burst (HAL `RingBegin` .. `RingEnd`) counts once it has lasted
//! [`FxoConfig::ring_min_ms`]; shorter bursts are noise. The first valid burst reports
//! [`FxoEvent::Ringing`], its end [`FxoEvent::RingEndedFirst`] (the caller-ID window). When no
//! new burst begins within [`FxoConfig::ring_gap_timeout_ms`] of the end of the last valid
//! one, the caller gave up: [`FxoEvent::RingingStopped`].
//!
//! # Polarity reversal while off-hook
//! - With [`FxoConfig::answer_on_polarity`], the first reversal after [`FxoLine::seize`]
//!   (outgoing call not yet answered) is the far end answering: [`FxoEvent::FarEndAnswer`].
//! - With [`FxoConfig::hangup_on_polarity`], any other reversal while off-hook is a far-end
//!   disconnect, except those within [`FxoConfig::polarity_guard_ms`] of our going off-hook or
//!   of the answer reversal (some exchanges flip polarity as the call connects; Asterisk's
//!   `polarityonanswerdelay` serves the same purpose).
//! - Lines whose exchange reverses polarity at answer must set `answer_on_polarity`; otherwise
//!   that reversal would be taken for a disconnect.
//! - Reversals while on-hook are reported as [`FxoEvent::PolarityReversalOnHook`] (the ETSI
//!   wake-up before on-hook caller ID).
//!
//! Loop-current loss (the HAL reports it debounced) while off-hook is a far-end disconnect.
//! During our own hook flash, and for [`FxoConfig::flash_settle_ms`] after it, loop-current
//! loss and polarity reversals are ignored: opening the loop drops the current ourselves.

use super::queue::Fifo;
use cardpbx_hal::{ChannelId, FxoCommand, HalEvent, Tick};
use serde::{Deserialize, Serialize};

/// Settings of an FXO line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FxoConfig {
    /// Ring bursts shorter than this (ms) are noise and ignored.
    pub ring_min_ms: u32,
    /// No new ring burst this long (ms) after the end of the last one: the caller gave up.
    pub ring_gap_timeout_ms: u32,
    /// Take the first polarity reversal of an outgoing call as the far end answering.
    pub answer_on_polarity: bool,
    /// Take a polarity reversal while off-hook as the far end hanging up.
    pub hangup_on_polarity: bool,
    /// Polarity reversals this long (ms) after going off-hook or after the answer reversal
    /// are ignored rather than taken as a disconnect.
    pub polarity_guard_ms: u32,
    /// After releasing the line, it may not be seized again for this long (ms).
    pub seize_guard_ms: u32,
    /// After a hook flash ends, loop-current loss and reversals are ignored this long (ms).
    pub flash_settle_ms: u32,
}

impl Default for FxoConfig {
    /// 100 ms minimum burst, 6 s ring gap, hang up on reversal, 600 ms polarity guard,
    /// 500 ms seize guard, 200 ms flash settle.
    fn default() -> Self {
        FxoConfig {
            ring_min_ms: 100,
            ring_gap_timeout_ms: 6000,
            answer_on_polarity: false,
            hangup_on_polarity: true,
            polarity_guard_ms: 600,
            seize_guard_ms: 500,
            flash_settle_ms: 200,
        }
    }
}

/// Where an FXO line is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxoState {
    /// On-hook, no incoming call.
    Idle,
    /// On-hook, an incoming call is ringing.
    Ringing,
    /// Off-hook on an incoming call we answered.
    OffHookIn,
    /// Off-hook on an outgoing call we seized the line for.
    OffHookOut,
    /// On-hook after a release; the line may not be seized until the guard time ends.
    Guard,
}

impl FxoState {
    /// Whether the loop is closed (we are off-hook).
    pub fn is_off_hook(self) -> bool {
        matches!(self, FxoState::OffHookIn | FxoState::OffHookOut)
    }
}

/// Why the far end was taken to have disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectCause {
    /// The exchange reversed the line's polarity.
    Polarity,
    /// Loop current dropped (open-loop disconnect / CPC).
    LoopCurrent,
    /// The daemon heard busy or congestion tone ([`FxoLine::far_end_disconnect`]).
    Tone,
}

/// What an FXO line reports to call control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxoEvent {
    /// An incoming call: the first valid ring burst.
    Ringing,
    /// The first valid ring burst ended: the caller-ID window opens.
    RingEndedFirst,
    /// The caller gave up before we answered (no ring within the gap timeout).
    RingingStopped,
    /// The far end answered our outgoing call (polarity reversal, with `answer_on_polarity`).
    FarEndAnswer,
    /// The far end hung up; the line has been released (an `OnHook` command follows).
    FarEndDisconnect {
        /// How the disconnect was detected.
        cause: DisconnectCause,
    },
    /// The exchange reversed polarity while we are on-hook (e.g. wake-up for caller ID).
    PolarityReversalOnHook,
}

/// The timers of an FXO line. Timers due at the same tick fire in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxoTimer {
    /// The current ring burst has lasted `ring_min_ms`: it is a real ring, not noise.
    RingValidate,
    /// No ring burst since the gap timeout: report `RingingStopped` and go idle.
    RingGap,
    /// The seize guard time after a release is over: the line is idle again.
    SeizeGuard,
    /// Our hook flash and its settle time are over: supervise loop current and polarity again.
    FlashSettle,
}

const FXO_TIMERS: usize = 4;
const ALL_TIMERS: [FxoTimer; FXO_TIMERS] =
    [FxoTimer::RingValidate, FxoTimer::RingGap, FxoTimer::SeizeGuard, FxoTimer::FlashSettle];

impl FxoTimer {
    fn index(self) -> usize {
        match self {
            FxoTimer::RingValidate => 0,
            FxoTimer::RingGap => 1,
            FxoTimer::SeizeGuard => 2,
            FxoTimer::FlashSettle => 3,
        }
    }
}

/// Why an FXO request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FxoError {
    /// Only a ringing line can be answered.
    #[error("cannot answer: line is {0:?}, not ringing")]
    NotRinging(FxoState),
    /// An incoming call (or a ring burst that may become one) holds the line.
    #[error("cannot seize: the line is ringing")]
    Ringing,
    /// The line was released too recently to seize it again.
    #[error("cannot seize: guard time runs until tick {until}")]
    Guard {
        /// Tick from which the line may be seized.
        until: Tick,
    },
    /// The line is already off-hook.
    #[error("line is already off-hook")]
    AlreadyOffHook,
    /// Flashing needs an off-hook line.
    #[error("cannot flash: line is {0:?}, not off-hook")]
    NotOffHook(FxoState),
    /// A hook flash is still in progress.
    #[error("a hook flash is already in progress")]
    Flashing,
    /// A hook flash must last at least 1 ms.
    #[error("a hook flash of 0 ms is not a flash")]
    ZeroFlash,
}

/// A plain, serializable picture of an FXO line for `show` commands and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FxoSnapshot {
    /// The channel the line drives.
    pub channel: ChannelId,
    /// Current state.
    pub state: FxoState,
    /// Whether the line's polarity is reversed relative to when the line was created.
    pub polarity_reversed: bool,
    /// Off-hook: whether the call is connected (incoming answered, or far-end answer seen).
    pub far_end_answered: bool,
    /// Tick the current ring burst began, while ring voltage is present.
    pub ring_burst_since: Option<Tick>,
    /// Valid ring bursts of the current incoming call.
    pub ring_bursts: u32,
    /// Tick we went off-hook, while off-hook.
    pub off_hook_since: Option<Tick>,
    /// Tick the ringing counts as stopped unless another burst begins.
    pub ring_gap_until: Option<Tick>,
    /// Tick the seize guard ends, in the guard state.
    pub guard_until: Option<Tick>,
    /// Tick supervision resumes after our hook flash, while flashing.
    pub flash_until: Option<Tick>,
    /// Commands and events discarded because the caller did not drain the queues.
    pub dropped: u32,
}

const QUEUE: usize = 8;

/// An analog FXO loop-start line (we are a phone towards the exchange), sans-IO.
///
/// # Real-time
/// Every method does bounded work (at most four timer expiries per call) and never allocates:
/// commands and events wait in fixed queues of 8.
#[derive(Debug, Clone)]
pub struct FxoLine {
    channel: ChannelId,
    cfg: FxoConfig,
    state: FxoState,
    now: Tick,
    timers: [Option<Tick>; FXO_TIMERS],
    burst_since: Option<Tick>,
    burst_valid: bool,
    ring_bursts: u32,
    first_ring_ended: bool,
    off_hook_since: Option<Tick>,
    far_end_answered: bool,
    polarity_ignore_until: Tick,
    polarity_reversed: bool,
    commands: Fifo<FxoCommand, QUEUE>,
    events: Fifo<FxoEvent, QUEUE>,
}

impl FxoLine {
    /// A new idle line on `channel` (on-hook, free to seize).
    pub fn new(channel: ChannelId, cfg: FxoConfig) -> Self {
        FxoLine {
            channel,
            cfg,
            state: FxoState::Idle,
            now: 0,
            timers: [None; FXO_TIMERS],
            burst_since: None,
            burst_valid: false,
            ring_bursts: 0,
            first_ring_ended: false,
            off_hook_since: None,
            far_end_answered: false,
            polarity_ignore_until: 0,
            polarity_reversed: false,
            commands: Fifo::new(),
            events: Fifo::new(),
        }
    }

    /// The channel this line drives.
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// The configuration in use.
    pub fn config(&self) -> &FxoConfig {
        &self.cfg
    }

    /// Current state.
    pub fn state(&self) -> FxoState {
        self.state
    }

    /// A serializable picture of the line.
    pub fn snapshot(&self) -> FxoSnapshot {
        FxoSnapshot {
            channel: self.channel,
            state: self.state,
            polarity_reversed: self.polarity_reversed,
            far_end_answered: self.far_end_answered,
            ring_burst_since: self.burst_since,
            ring_bursts: self.ring_bursts,
            off_hook_since: self.off_hook_since,
            ring_gap_until: self.timer(FxoTimer::RingGap),
            guard_until: self.timer(FxoTimer::SeizeGuard),
            flash_until: self.timer(FxoTimer::FlashSettle),
            dropped: self.commands.dropped().saturating_add(self.events.dropped()),
        }
    }

    /// Feed a card event. `RingBegin`, `RingEnd`, `PolarityReversal` and `LoopCurrentLost` of
    /// this line's channel matter; everything else is ignored. Due timers run first, so the
    /// result does not depend on whether the caller called
    /// [`handle_timeout`](Self::handle_timeout) before.
    pub fn handle_hal(&mut self, now: Tick, ev: &HalEvent) {
        let now = self.advance(now);
        match *ev {
            HalEvent::RingBegin(ch) if ch == self.channel => self.ring_begin(now),
            HalEvent::RingEnd(ch) if ch == self.channel => self.ring_end(now),
            HalEvent::PolarityReversal(ch) if ch == self.channel => self.polarity_reversal(now),
            HalEvent::LoopCurrentLost(ch)
                if ch == self.channel && self.state.is_off_hook() && !self.flashing() =>
            {
                self.disconnect(now, DisconnectCause::LoopCurrent);
            }
            _ => {}
        }
        // Zero-length settings may have armed a timer that is already due.
        self.advance(now);
    }

    /// Answer the ringing line: go off-hook.
    ///
    /// # Errors
    /// [`FxoError::NotRinging`] unless the line is ringing.
    pub fn answer(&mut self, now: Tick) -> Result<(), FxoError> {
        let now = self.advance(now);
        if self.state != FxoState::Ringing {
            return Err(FxoError::NotRinging(self.state));
        }
        self.go_off_hook(now, FxoState::OffHookIn);
        self.far_end_answered = true;
        Ok(())
    }

    /// Seize the line to dial out: go off-hook.
    ///
    /// # Errors
    /// [`FxoError::Ringing`] while the line rings (or a ring burst is in progress: glare);
    /// [`FxoError::Guard`] during the guard time after a release;
    /// [`FxoError::AlreadyOffHook`] when off-hook.
    pub fn seize(&mut self, now: Tick) -> Result<(), FxoError> {
        let now = self.advance(now);
        match self.state {
            FxoState::Idle if self.burst_since.is_none() => {
                self.go_off_hook(now, FxoState::OffHookOut);
                self.far_end_answered = false;
                Ok(())
            }
            FxoState::Idle | FxoState::Ringing => Err(FxoError::Ringing),
            FxoState::Guard => {
                Err(FxoError::Guard { until: self.timer(FxoTimer::SeizeGuard).unwrap_or(now) })
            }
            FxoState::OffHookIn | FxoState::OffHookOut => Err(FxoError::AlreadyOffHook),
        }
    }

    /// Release the line: go on-hook and start the guard time. Does nothing when on-hook.
    pub fn release(&mut self, now: Tick) {
        let now = self.advance(now);
        if self.state.is_off_hook() {
            self.go_on_hook(now);
        }
    }

    /// Send a hook flash (recall): open the loop for `ms` milliseconds.
    ///
    /// # Errors
    /// [`FxoError::NotOffHook`] when on-hook, [`FxoError::Flashing`] while a flash is in
    /// progress, [`FxoError::ZeroFlash`] for `ms == 0`.
    pub fn flash(&mut self, now: Tick, ms: u16) -> Result<(), FxoError> {
        let now = self.advance(now);
        if !self.state.is_off_hook() {
            return Err(FxoError::NotOffHook(self.state));
        }
        if self.flashing() {
            return Err(FxoError::Flashing);
        }
        if ms == 0 {
            return Err(FxoError::ZeroFlash);
        }
        self.commands.push(FxoCommand::Flash(ms));
        let until =
            now.saturating_add(u64::from(ms)).saturating_add(self.cfg.flash_settle_ms.into());
        self.arm(FxoTimer::FlashSettle, until);
        Ok(())
    }

    /// The daemon detected far-end disconnect by tone (busy, congestion): report
    /// [`FxoEvent::FarEndDisconnect`] with [`DisconnectCause::Tone`] and release the line.
    /// Does nothing when on-hook.
    pub fn far_end_disconnect(&mut self, now: Tick) {
        let now = self.advance(now);
        if self.state.is_off_hook() {
            self.disconnect(now, DisconnectCause::Tone);
        }
    }

    /// Run the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Tick) {
        self.advance(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) next needs calling, if ever.
    pub fn poll_timeout(&self) -> Option<Tick> {
        self.timers.iter().flatten().copied().min()
    }

    /// The next command for the card.
    pub fn poll_command(&mut self) -> Option<FxoCommand> {
        self.commands.pop()
    }

    /// The next event for call control.
    pub fn poll_event(&mut self) -> Option<FxoEvent> {
        self.events.pop()
    }

    fn timer(&self, t: FxoTimer) -> Option<Tick> {
        self.timers[t.index()]
    }

    fn arm(&mut self, t: FxoTimer, at: Tick) {
        self.timers[t.index()] = Some(at);
    }

    fn cancel(&mut self, t: FxoTimer) {
        self.timers[t.index()] = None;
    }

    fn flashing(&self) -> bool {
        self.timer(FxoTimer::FlashSettle).is_some()
    }

    /// Clamp `now` to be monotonic and run due timers in deadline order; returns the time to
    /// use. No expiry arms a timer at or before `now`, so this ends after at most four rounds.
    fn advance(&mut self, now: Tick) -> Tick {
        let now = now.max(self.now);
        self.now = now;
        loop {
            let due = ALL_TIMERS
                .iter()
                .filter_map(|&t| self.timer(t).filter(|&at| at <= now).map(|at| (at, t)))
                .min();
            let Some((_, timer)) = due else { break };
            self.cancel(timer);
            self.expire(timer, now);
        }
        now
    }

    fn expire(&mut self, timer: FxoTimer, now: Tick) {
        match timer {
            FxoTimer::RingValidate => self.burst_validated(now),
            FxoTimer::RingGap => {
                // A burst that began before the gap ran out may still prove valid: decide at
                // its end (see ring_end) or validation instead.
                if self.state == FxoState::Ringing && self.burst_since.is_none() {
                    self.ringing_stopped();
                }
            }
            FxoTimer::SeizeGuard => {
                if self.state == FxoState::Guard {
                    self.state = FxoState::Idle;
                }
            }
            FxoTimer::FlashSettle => {}
        }
    }

    fn ring_begin(&mut self, now: Tick) {
        if self.state.is_off_hook() || self.burst_since.is_some() {
            return;
        }
        self.burst_since = Some(now);
        self.burst_valid = false;
        // With ring_min_ms = 0 this is due at once; handle_hal runs it before returning.
        self.arm(FxoTimer::RingValidate, now.saturating_add(self.cfg.ring_min_ms.into()));
    }

    fn burst_validated(&mut self, _now: Tick) {
        if self.burst_since.is_none() || self.state.is_off_hook() {
            return;
        }
        self.burst_valid = true;
        self.ring_bursts = self.ring_bursts.saturating_add(1);
        self.cancel(FxoTimer::RingGap);
        if self.state != FxoState::Ringing {
            self.cancel(FxoTimer::SeizeGuard);
            self.state = FxoState::Ringing;
            self.first_ring_ended = false;
            self.events.push(FxoEvent::Ringing);
        }
    }

    fn ring_end(&mut self, now: Tick) {
        if self.burst_since.take().is_none() {
            return;
        }
        if self.burst_valid {
            self.burst_valid = false;
            if !self.first_ring_ended {
                self.first_ring_ended = true;
                self.events.push(FxoEvent::RingEndedFirst);
            }
            self.arm(FxoTimer::RingGap, now.saturating_add(self.cfg.ring_gap_timeout_ms.into()));
        } else {
            self.cancel(FxoTimer::RingValidate);
            if self.state == FxoState::Ringing && self.timer(FxoTimer::RingGap).is_none() {
                // The gap ran out during this noise burst.
                self.ringing_stopped();
            }
        }
    }

    fn ringing_stopped(&mut self) {
        self.clear_ringing();
        self.state = FxoState::Idle;
        self.events.push(FxoEvent::RingingStopped);
    }

    fn clear_ringing(&mut self) {
        self.burst_since = None;
        self.burst_valid = false;
        self.ring_bursts = 0;
        self.first_ring_ended = false;
        self.cancel(FxoTimer::RingValidate);
        self.cancel(FxoTimer::RingGap);
    }

    fn polarity_reversal(&mut self, now: Tick) {
        self.polarity_reversed = !self.polarity_reversed;
        if !self.state.is_off_hook() {
            self.events.push(FxoEvent::PolarityReversalOnHook);
            return;
        }
        if self.flashing() {
            return;
        }
        if self.state == FxoState::OffHookOut
            && self.cfg.answer_on_polarity
            && !self.far_end_answered
        {
            self.far_end_answered = true;
            self.polarity_ignore_until = now.saturating_add(self.cfg.polarity_guard_ms.into());
            self.events.push(FxoEvent::FarEndAnswer);
            return;
        }
        if self.cfg.hangup_on_polarity && now >= self.polarity_ignore_until {
            self.disconnect(now, DisconnectCause::Polarity);
        }
    }

    fn go_off_hook(&mut self, now: Tick, state: FxoState) {
        self.clear_ringing();
        self.cancel(FxoTimer::SeizeGuard);
        self.state = state;
        self.off_hook_since = Some(now);
        self.polarity_ignore_until = now.saturating_add(self.cfg.polarity_guard_ms.into());
        self.commands.push(FxoCommand::OffHook);
    }

    fn disconnect(&mut self, now: Tick, cause: DisconnectCause) {
        self.events.push(FxoEvent::FarEndDisconnect { cause });
        self.go_on_hook(now);
    }

    fn go_on_hook(&mut self, now: Tick) {
        self.commands.push(FxoCommand::OnHook);
        self.cancel(FxoTimer::FlashSettle);
        self.off_hook_since = None;
        self.far_end_answered = false;
        if self.cfg.seize_guard_ms == 0 {
            self.state = FxoState::Idle;
        } else {
            self.state = FxoState::Guard;
            self.arm(FxoTimer::SeizeGuard, now.saturating_add(self.cfg.seize_guard_ms.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CH: ChannelId = ChannelId(2);

    fn events(l: &mut FxoLine) -> Vec<FxoEvent> {
        std::iter::from_fn(|| l.poll_event()).collect()
    }

    #[test]
    fn validation_and_gap_due_at_the_same_tick_validate_first() {
        let mut l = FxoLine::new(CH, FxoConfig::default());
        l.handle_hal(0, &HalEvent::RingBegin(CH));
        l.handle_hal(1000, &HalEvent::RingEnd(CH));
        l.handle_hal(6900, &HalEvent::RingBegin(CH));
        assert_eq!(l.timer(FxoTimer::RingValidate), Some(7000));
        assert_eq!(l.timer(FxoTimer::RingGap), Some(7000));
        l.handle_timeout(7000);
        assert_eq!(l.state(), FxoState::Ringing);
        assert_eq!(events(&mut l), vec![FxoEvent::Ringing, FxoEvent::RingEndedFirst]);
        assert_eq!(l.snapshot().ring_bursts, 2);
    }

    #[test]
    fn zero_length_settings_take_effect_at_once() {
        let cfg = FxoConfig { ring_min_ms: 0, ring_gap_timeout_ms: 0, ..FxoConfig::default() };
        let mut l = FxoLine::new(CH, cfg);
        l.handle_hal(10, &HalEvent::RingBegin(CH));
        assert_eq!(l.state(), FxoState::Ringing);
        l.handle_hal(20, &HalEvent::RingEnd(CH));
        assert_eq!(l.state(), FxoState::Idle);
        assert_eq!(
            events(&mut l),
            vec![FxoEvent::Ringing, FxoEvent::RingEndedFirst, FxoEvent::RingingStopped]
        );
        assert_eq!(l.poll_timeout(), None);
    }

    #[test]
    fn timers_fire_in_deadline_order() {
        let mut l = FxoLine::new(CH, FxoConfig::default());
        l.arm(FxoTimer::FlashSettle, 5);
        l.arm(FxoTimer::SeizeGuard, 3);
        assert_eq!(l.poll_timeout(), Some(3));
        assert!(FxoTimer::RingValidate < FxoTimer::RingGap);
        l.handle_timeout(5);
        assert_eq!(l.poll_timeout(), None);
    }
}
