//! The simulated card's tick clock: virtual (as fast as possible) or paced in real time.

use crate::config::ClockMode;
use cardpbx_hal::Tick;
use std::time::{Duration, Instant};

/// Lateness (ms) beyond which a real-time tick counts as late.
const LATE_MS: u64 = 3;
/// Largest backlog (ms) the real-time clock catches up by returning ticks back to back.
const MAX_BURST_MS: u64 = 20;

/// How well the real-time clock kept pace (all zero on the virtual clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockStats {
    /// Ticks returned more than 3 ms after their deadline.
    pub late_ticks: u64,
    /// Milliseconds given up (the time base moved forward) because the backlog exceeded 20 ms.
    pub skipped_ms: u64,
}

/// The tick clock.
#[derive(Debug)]
pub(crate) struct Clock {
    mode: ClockMode,
    now: Tick,
    start: Option<Instant>,
    shift_ms: u64,
    stats: ClockStats,
}

impl Clock {
    pub(crate) fn new(mode: ClockMode) -> Self {
        Clock { mode, now: 0, start: None, shift_ms: 0, stats: ClockStats::default() }
    }

    pub(crate) fn now(&self) -> Tick {
        self.now
    }

    pub(crate) fn stats(&self) -> ClockStats {
        self.stats
    }

    pub(crate) fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Virtual clock only: make the next [`wait_tick`](Self::wait_tick) return `t` (when `t`
    /// is later than the next tick), skipping the ticks in between. Ignored on the real-time
    /// clock.
    pub(crate) fn skip_to(&mut self, t: Tick) {
        if self.mode == ClockMode::Virtual && t > self.now + 1 {
            self.now = t - 1;
        }
    }

    /// Advance to the next tick, sleeping until its deadline on the real-time clock.
    pub(crate) fn wait_tick(&mut self) -> Tick {
        let next = self.now + 1;
        if self.mode == ClockMode::RealTime {
            let start = *self.start.get_or_insert_with(Instant::now);
            let deadline = start + Duration::from_millis(next + self.shift_ms);
            let t = Instant::now();
            if t < deadline {
                std::thread::sleep(deadline - t);
            } else {
                let late = (t - deadline).as_millis() as u64;
                if late > LATE_MS {
                    self.stats.late_ticks += 1;
                }
                if late > MAX_BURST_MS {
                    let skip = late - MAX_BURST_MS;
                    self.shift_ms += skip;
                    self.stats.skipped_ms += skip;
                }
            }
        }
        self.now = next;
        next
    }
}
