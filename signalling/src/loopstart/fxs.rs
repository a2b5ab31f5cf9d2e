//! The FXS line: our port is the exchange and a phone hangs on the line.
//!
//! [`FxsLine`] turns the debounced hook changes the card reports into what call control wants
//! to know (seizure, answer, hook flash, hang-up) and times the ring cadence. It does not
//! generate tones or caller ID; it tells the caller when the caller-ID window opens
//! ([`FxsEvent::FirstRingEnded`]).
//!
//! Telling a flash from a hang-up: when the phone goes on-hook the line waits. If it comes back
//! off-hook after less than [`FxsConfig::flash_min_ms`] the break was a bounce and is ignored;
//! after `flash_min_ms..=flash_max_ms` it was a flash; once the on-hook has lasted longer than
//! `flash_max_ms` the line reports [`FxsEvent::Hangup`].

use super::cadence::RingCadence;
use super::queue::Fifo;
use cardpbx_hal::{ChannelId, FxsCommand, HalEvent, Tick};
use serde::{Deserialize, Serialize};

/// Settings of an FXS line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FxsConfig {
    /// Shortest on-hook break (ms) taken as a hook flash; shorter breaks are contact bounce.
    pub flash_min_ms: u32,
    /// Longest on-hook break (ms) taken as a hook flash; longer is a hang-up.
    pub flash_max_ms: u32,
    /// The ring cadence [`FxsLine::ring`] plays.
    pub ring_cadence: RingCadence,
}

impl Default for FxsConfig {
    /// China/ETSI-style timed-break recall (80..=600 ms) and the China 1 s / 4 s cadence.
    fn default() -> Self {
        FxsConfig { flash_min_ms: 80, flash_max_ms: 600, ring_cadence: RingCadence::CHINA }
    }
}

/// Where an FXS line is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxsState {
    /// Phone on-hook, not ringing.
    Idle,
    /// Phone on-hook, ring cadence playing.
    Ringing,
    /// Phone off-hook.
    OffHook,
    /// Phone went on-hook from off-hook; waiting to tell a flash from a hang-up.
    OnHookPending,
}

/// What an FXS line reports to call control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxsEvent {
    /// The idle phone went off-hook: the user seized the line to make a call.
    OffHook,
    /// The phone went off-hook while ringing: the call is answered, ringing has stopped.
    Answered,
    /// The phone gave a hook flash (recall).
    Flash,
    /// The phone has been on-hook longer than the flash window: the user hung up.
    Hangup,
    /// The first ring (the ring bursts of the first cadence cycle) ended; the silence that
    /// follows is the window for caller-ID FSK.
    FirstRingEnded,
}

/// The timers of an FXS line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxsTimer {
    /// The current ring cadence segment ends: switch ringing voltage and start the next one.
    RingCadence,
    /// The on-hook has outlasted the flash window: report [`FxsEvent::Hangup`] and go idle.
    HangupConfirm,
}

const FXS_TIMERS: usize = 2;

impl FxsTimer {
    fn index(self) -> usize {
        match self {
            FxsTimer::RingCadence => 0,
            FxsTimer::HangupConfirm => 1,
        }
    }
}

/// Position in the ring cadence, while ringing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RingPhase {
    /// Whether ringing voltage is applied now (an even segment).
    pub voltage_on: bool,
    /// Index of the current segment in the cadence.
    pub segment: u8,
    /// How many whole cadence cycles have completed.
    pub cycle: u32,
    /// Tick at which the current segment ends.
    pub segment_ends_at: Tick,
    /// Whether [`FxsEvent::FirstRingEnded`] has been reported.
    pub first_ring_ended: bool,
}

/// Why an FXS request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FxsError {
    /// Ringing needs an idle line (phone on-hook, not already ringing, no pending on-hook).
    #[error("cannot ring: line is {0:?}, not idle")]
    NotIdle(FxsState),
}

/// A plain, serializable picture of an FXS line for `show` commands and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FxsSnapshot {
    /// The channel the line drives.
    pub channel: ChannelId,
    /// Current state.
    pub state: FxsState,
    /// Whether battery is fed with reversed polarity.
    pub polarity_reversed: bool,
    /// Ring cadence position, while ringing.
    pub ring: Option<RingPhase>,
    /// Tick the phone went on-hook, while a flash/hang-up decision is pending.
    pub on_hook_since: Option<Tick>,
    /// Tick a pending on-hook becomes a hang-up.
    pub hangup_at: Option<Tick>,
    /// Commands and events discarded because the caller did not drain the queues.
    pub dropped: u32,
}

const QUEUE: usize = 8;

/// An analog FXS loop-start line (we are the exchange), sans-IO.
///
/// # Real-time
/// Every method does bounded work (at most one pass over the cadence per call) and never
/// allocates: commands and events wait in fixed queues of 8.
#[derive(Debug, Clone)]
pub struct FxsLine {
    channel: ChannelId,
    cfg: FxsConfig,
    state: FxsState,
    now: Tick,
    timers: [Option<Tick>; FXS_TIMERS],
    ring_segment: usize,
    ring_cycle: u32,
    ring_voltage: bool,
    first_ring_ended: bool,
    on_hook_since: Option<Tick>,
    polarity_reversed: bool,
    commands: Fifo<FxsCommand, QUEUE>,
    events: Fifo<FxsEvent, QUEUE>,
}

impl FxsLine {
    /// A new idle line on `channel` (phone on-hook, normal polarity).
    pub fn new(channel: ChannelId, cfg: FxsConfig) -> Self {
        FxsLine {
            channel,
            cfg,
            state: FxsState::Idle,
            now: 0,
            timers: [None; FXS_TIMERS],
            ring_segment: 0,
            ring_cycle: 0,
            ring_voltage: false,
            first_ring_ended: false,
            on_hook_since: None,
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
    pub fn config(&self) -> &FxsConfig {
        &self.cfg
    }

    /// Current state.
    pub fn state(&self) -> FxsState {
        self.state
    }

    /// Position in the ring cadence, or `None` when not ringing.
    pub fn ring_phase(&self) -> Option<RingPhase> {
        if self.state != FxsState::Ringing {
            return None;
        }
        Some(RingPhase {
            voltage_on: self.ring_voltage,
            segment: self.ring_segment as u8,
            cycle: self.ring_cycle,
            segment_ends_at: self.timers[FxsTimer::RingCadence.index()].unwrap_or(self.now),
            first_ring_ended: self.first_ring_ended,
        })
    }

    /// A serializable picture of the line.
    pub fn snapshot(&self) -> FxsSnapshot {
        FxsSnapshot {
            channel: self.channel,
            state: self.state,
            polarity_reversed: self.polarity_reversed,
            ring: self.ring_phase(),
            on_hook_since: self.on_hook_since,
            hangup_at: self.timers[FxsTimer::HangupConfirm.index()],
            dropped: self.commands.dropped().saturating_add(self.events.dropped()),
        }
    }

    /// Feed a card event. Only `OffHook`/`OnHook` of this line's channel matter; everything
    /// else is ignored. Due timers run first (for every event), so the result does not depend
    /// on whether the caller called [`handle_timeout`](Self::handle_timeout) before.
    pub fn handle_hal(&mut self, now: Tick, ev: &HalEvent) {
        let now = self.advance(now);
        match *ev {
            HalEvent::OffHook(ch) if ch == self.channel => self.off_hook(now),
            HalEvent::OnHook(ch) if ch == self.channel => self.on_hook(now),
            _ => {}
        }
    }

    /// Start ringing with the configured cadence: `RingOn` now, then on/off per the cadence
    /// until [`stop_ring`](Self::stop_ring) or the phone answers.
    ///
    /// # Errors
    /// [`FxsError::NotIdle`] unless the line is idle.
    pub fn ring(&mut self, now: Tick) -> Result<(), FxsError> {
        let now = self.advance(now);
        if self.state != FxsState::Idle {
            return Err(FxsError::NotIdle(self.state));
        }
        self.state = FxsState::Ringing;
        self.ring_segment = 0;
        self.ring_cycle = 0;
        self.first_ring_ended = false;
        self.ring_voltage = true;
        self.commands.push(FxsCommand::RingOn);
        let first = u64::from(self.cfg.ring_cadence.segments()[0]);
        self.arm(FxsTimer::RingCadence, now.saturating_add(first));
        Ok(())
    }

    /// Stop ringing (the caller gave up or the call went elsewhere). Removes ringing voltage if
    /// it is on; does nothing unless the line is ringing.
    pub fn stop_ring(&mut self, now: Tick) {
        self.advance(now);
        if self.state == FxsState::Ringing {
            self.end_ringing();
            self.state = FxsState::Idle;
        }
    }

    /// Feed battery with reversed (`true`) or normal (`false`) polarity, e.g. as answer
    /// supervision or before on-hook caller ID. Emits `SetPolarity` only on a change.
    pub fn reverse_polarity(&mut self, now: Tick, reversed: bool) {
        self.advance(now);
        if self.polarity_reversed != reversed {
            self.polarity_reversed = reversed;
            self.commands.push(FxsCommand::SetPolarity(reversed));
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
    pub fn poll_command(&mut self) -> Option<FxsCommand> {
        self.commands.pop()
    }

    /// The next event for call control.
    pub fn poll_event(&mut self) -> Option<FxsEvent> {
        self.events.pop()
    }

    /// Clamp `now` to be monotonic and run due timers; returns the time to use.
    fn advance(&mut self, now: Tick) -> Tick {
        let now = now.max(self.now);
        self.now = now;
        if self.state == FxsState::Ringing {
            self.advance_ring(now);
        }
        let hangup = FxsTimer::HangupConfirm.index();
        if self.state == FxsState::OnHookPending && self.timers[hangup].is_some_and(|t| t <= now) {
            self.timers[hangup] = None;
            self.on_hook_since = None;
            self.state = FxsState::Idle;
            self.events.push(FxsEvent::Hangup);
        }
        now
    }

    /// Step the cadence through every segment boundary up to `now`. A caller that is late by
    /// whole cycles skips them arithmetically; only the final voltage is commanded.
    fn advance_ring(&mut self, now: Tick) {
        let idx = FxsTimer::RingCadence.index();
        let Some(mut deadline) = self.timers[idx] else {
            return;
        };
        if deadline > now {
            return;
        }
        let cadence = self.cfg.ring_cadence;
        let segs = cadence.segments();
        let cycle_ms = cadence.cycle_ms();
        let last_on = segs.len() - 2;
        while deadline <= now {
            let late = now - deadline;
            if late >= cycle_ms {
                let skip = late / cycle_ms;
                deadline += skip * cycle_ms;
                self.ring_cycle = self.ring_cycle.saturating_add(skip as u32);
            }
            if !self.first_ring_ended && (self.ring_cycle > 0 || self.ring_segment >= last_on) {
                // The boundary at `deadline` ends the last ring burst of the first cycle (or
                // whole cycles were skipped past it).
                self.first_ring_ended = true;
                self.events.push(FxsEvent::FirstRingEnded);
            }
            self.ring_segment += 1;
            if self.ring_segment == segs.len() {
                self.ring_segment = 0;
                self.ring_cycle = self.ring_cycle.saturating_add(1);
            }
            deadline = deadline.saturating_add(u64::from(segs[self.ring_segment]));
        }
        self.timers[idx] = Some(deadline);
        let on = self.ring_segment & 1 == 0; // even segments ring
        if on != self.ring_voltage {
            self.ring_voltage = on;
            self.commands.push(if on { FxsCommand::RingOn } else { FxsCommand::RingOff });
        }
    }

    fn off_hook(&mut self, now: Tick) {
        match self.state {
            FxsState::Idle => {
                self.state = FxsState::OffHook;
                self.events.push(FxsEvent::OffHook);
            }
            FxsState::Ringing => {
                self.end_ringing();
                self.state = FxsState::OffHook;
                self.events.push(FxsEvent::Answered);
            }
            FxsState::OffHook => {}
            FxsState::OnHookPending => {
                // The hang-up timer has not fired (advance ran first), so the break lasted at
                // most flash_max_ms.
                let since = self.on_hook_since.take().unwrap_or(now);
                self.timers[FxsTimer::HangupConfirm.index()] = None;
                self.state = FxsState::OffHook;
                if now - since >= u64::from(self.cfg.flash_min_ms) {
                    self.events.push(FxsEvent::Flash);
                }
            }
        }
    }

    fn on_hook(&mut self, now: Tick) {
        if self.state == FxsState::OffHook {
            self.state = FxsState::OnHookPending;
            self.on_hook_since = Some(now);
            let max = u64::from(self.cfg.flash_max_ms);
            self.arm(FxsTimer::HangupConfirm, now.saturating_add(max).saturating_add(1));
        }
    }

    /// Remove ringing voltage if on and forget the cadence.
    fn end_ringing(&mut self) {
        if self.ring_voltage {
            self.ring_voltage = false;
            self.commands.push(FxsCommand::RingOff);
        }
        self.timers[FxsTimer::RingCadence.index()] = None;
    }

    fn arm(&mut self, timer: FxsTimer, at: Tick) {
        self.timers[timer.index()] = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CH: ChannelId = ChannelId(7);

    fn line(segments: &[u32]) -> FxsLine {
        let cfg =
            FxsConfig { ring_cadence: RingCadence::new(segments).unwrap(), ..FxsConfig::default() };
        FxsLine::new(CH, cfg)
    }

    #[test]
    fn skipping_whole_cycles_lands_on_the_same_segment() {
        let mut l = line(&[400, 200, 400, 2000]);
        l.ring(0).unwrap();
        // Exactly 1000 cycles later: the first burst of cycle 1000 begins.
        l.handle_timeout(3_000_000);
        let p = l.ring_phase().unwrap();
        assert_eq!(
            (p.voltage_on, p.segment, p.cycle, p.segment_ends_at),
            (true, 0, 1000, 3_000_400)
        );
        assert!(p.first_ring_ended);
        // RingOn (start) only: the voltage is on again, so no command was needed.
        assert_eq!(l.poll_command(), Some(FxsCommand::RingOn));
        assert_eq!(l.poll_command(), None);
        assert_eq!(l.poll_event(), Some(FxsEvent::FirstRingEnded));
    }

    #[test]
    fn undrained_queues_drop_oldest_and_count() {
        let mut l = line(&[1, 1]);
        l.ring(0).unwrap();
        for t in 1..=20 {
            l.handle_timeout(t);
        }
        // 21 commands were emitted into a queue of 8.
        assert_eq!(l.snapshot().dropped, 13);
        let last: Vec<_> = std::iter::from_fn(|| l.poll_command()).collect();
        assert_eq!(last.len(), 8);
        assert_eq!(last[7], FxsCommand::RingOn, "the newest command survives");
    }

    #[test]
    fn hangup_deadline_saturates_at_end_of_time() {
        let cfg = FxsConfig { flash_max_ms: u32::MAX, ..FxsConfig::default() };
        let mut l = FxsLine::new(CH, cfg);
        l.handle_hal(Tick::MAX - 5, &HalEvent::OffHook(CH));
        l.handle_hal(Tick::MAX - 4, &HalEvent::OnHook(CH));
        assert_eq!(l.poll_timeout(), Some(Tick::MAX));
    }
}
