//! Counters the media engine keeps while it runs, readable from any thread.
//!
//! The real-time thread only does relaxed atomic adds and stores here; readers take a
//! [`EngineStats::snapshot`], a plain serialisable copy with tick-work percentiles from a fixed
//! log-scale histogram.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Spans whose counters the engine publishes (span numbers 1 to this).
pub const MAX_SPANS: usize = 16;

/// How often the engine reads the spans' counters from the card, in ticks.
pub const SPAN_POLL_TICKS: u64 = 1000;

/// One span's error counters and timing as the card last reported them.
#[derive(Debug, Default)]
pub struct SpanCell {
    /// The card has reported this span.
    pub seen: AtomicBool,
    /// Controlled frame slips.
    pub slips: AtomicU64,
    /// CRC-4 errors.
    pub crc4_errors: AtomicU64,
    /// Bipolar violations.
    pub bipolar_violations: AtomicU64,
    /// The card takes its clock from this span.
    pub timing_source: AtomicBool,
}

/// A plain copy of a [`SpanCell`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SpanCountersSnapshot {
    /// Controlled frame slips.
    pub slips: u64,
    /// CRC-4 errors.
    pub crc4_errors: u64,
    /// Bipolar violations.
    pub bipolar_violations: u64,
    /// The card takes its clock from this span.
    pub timing_source: bool,
}

/// Histogram buckets: four per octave of nanoseconds, covering 1 ns to about 2^32 ns (4.3 s).
pub const HIST_BUCKETS: usize = 128;

/// The histogram bucket of a duration in nanoseconds: `4·floor(log2 ns)` plus the next two bits.
#[inline]
pub fn bucket_of(ns: u64) -> usize {
    if ns < 4 {
        return ns as usize;
    }
    let lz = 63 - ns.leading_zeros() as usize;
    let frac = ((ns >> (lz - 2)) & 0b11) as usize;
    (lz * 4 + frac).min(HIST_BUCKETS - 1)
}

/// The largest duration (ns) that falls in bucket `b`: the value percentiles report.
pub fn bucket_upper_ns(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    let lz = b / 4;
    let frac = (b % 4) as u64;
    // Bucket holds [ (4+frac) << (lz-2), (5+frac) << (lz-2) ).
    ((5 + frac) << (lz - 2)) - 1
}

/// Live counters of one engine.
#[derive(Debug)]
pub struct EngineStats {
    /// Ticks run.
    pub ticks: AtomicU64,
    /// Ticks whose work took longer than 1 ms, plus ticks the card reported missed or late.
    pub late_ticks: AtomicU64,
    /// Longest tick work seen, in nanoseconds.
    pub max_work_ns: AtomicU64,
    /// Commands refused because the command ring was full (counted by the handle).
    pub command_overruns: AtomicU64,
    /// Events dropped because the event ring was full.
    pub event_overruns: AtomicU64,
    /// Errors the card returned (exchange, wait, commands).
    pub card_errors: AtomicU64,
    /// Recording chunks dropped because a recording ring was full.
    pub recording_overruns: AtomicU64,
    /// Engine commands rejected as invalid (unknown channel, conference, prompt or slot).
    pub rejected_commands: AtomicU64,
    /// Tick work-time histogram, see [`bucket_of`].
    pub work_hist: [AtomicU64; HIST_BUCKETS],
    /// Span counters by span number - 1, refreshed every [`SPAN_POLL_TICKS`].
    pub spans: [SpanCell; MAX_SPANS],
}

impl Default for EngineStats {
    fn default() -> Self {
        EngineStats {
            ticks: AtomicU64::new(0),
            late_ticks: AtomicU64::new(0),
            max_work_ns: AtomicU64::new(0),
            command_overruns: AtomicU64::new(0),
            event_overruns: AtomicU64::new(0),
            card_errors: AtomicU64::new(0),
            recording_overruns: AtomicU64::new(0),
            rejected_commands: AtomicU64::new(0),
            work_hist: std::array::from_fn(|_| AtomicU64::new(0)),
            spans: std::array::from_fn(|_| SpanCell::default()),
        }
    }
}

/// A plain copy of [`EngineStats`] for `show` commands, the CLI and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineStatsSnapshot {
    /// Ticks run.
    pub ticks: u64,
    /// Late ticks (work over 1 ms, or missed/late ticks reported by the card).
    pub late_ticks: u64,
    /// Longest tick work, ns.
    pub max_work_ns: u64,
    /// Commands refused because the command ring was full.
    pub command_overruns: u64,
    /// Events dropped because the event ring was full.
    pub event_overruns: u64,
    /// Card errors.
    pub card_errors: u64,
    /// Recording chunks dropped.
    pub recording_overruns: u64,
    /// Invalid engine commands rejected.
    pub rejected_commands: u64,
    /// Median tick work, ns (upper edge of its histogram bucket, within 19 %).
    pub work_p50_ns: u64,
    /// 99th percentile tick work, ns.
    pub work_p99_ns: u64,
    /// 99.9th percentile tick work, ns.
    pub work_p999_ns: u64,
}

impl EngineStats {
    /// Record one tick's work time (real-time safe: relaxed atomics only).
    #[inline]
    pub fn record_work(&self, ns: u64) {
        self.ticks.fetch_add(1, Relaxed);
        self.work_hist[bucket_of(ns)].fetch_add(1, Relaxed);
        self.max_work_ns.fetch_max(ns, Relaxed);
        if ns > 1_000_000 {
            self.late_ticks.fetch_add(1, Relaxed);
        }
    }

    /// Read every span's status from `card` and publish its counters (real-time safe when
    /// the card's `span_status` is: relaxed atomic stores only; spans the card cannot report
    /// keep their last values).
    pub fn publish_spans<C: cardpbx_hal::Card>(&self, card: &C) {
        for info in &card.info().spans {
            let Some(cell) = (info.id.0 as usize).checked_sub(1).and_then(|i| self.spans.get(i))
            else {
                continue;
            };
            if let Ok(st) = card.span_status(info.id) {
                cell.slips.store(st.counters.slips, Relaxed);
                cell.crc4_errors.store(st.counters.crc4_errors, Relaxed);
                cell.bipolar_violations.store(st.counters.bipolar_violations, Relaxed);
                cell.timing_source.store(st.is_timing_source, Relaxed);
                cell.seen.store(true, Relaxed);
            }
        }
    }

    /// Span `span`'s counters as last published; `None` before the card reported it.
    pub fn span_counters(&self, span: cardpbx_hal::SpanId) -> Option<SpanCountersSnapshot> {
        let cell = (span.0 as usize).checked_sub(1).and_then(|i| self.spans.get(i))?;
        cell.seen.load(Relaxed).then(|| SpanCountersSnapshot {
            slips: cell.slips.load(Relaxed),
            crc4_errors: cell.crc4_errors.load(Relaxed),
            bipolar_violations: cell.bipolar_violations.load(Relaxed),
            timing_source: cell.timing_source.load(Relaxed),
        })
    }

    /// A consistent-enough copy of all counters (each read atomically, not all at once).
    pub fn snapshot(&self) -> EngineStatsSnapshot {
        let hist: [u64; HIST_BUCKETS] = std::array::from_fn(|i| self.work_hist[i].load(Relaxed));
        let total: u64 = hist.iter().sum();
        let pct = |p: f64| -> u64 {
            if total == 0 {
                return 0;
            }
            let want = ((total as f64) * p).ceil().max(1.0) as u64;
            let mut acc = 0;
            for (b, &n) in hist.iter().enumerate() {
                acc += n;
                if acc >= want {
                    return bucket_upper_ns(b);
                }
            }
            bucket_upper_ns(HIST_BUCKETS - 1)
        };
        let max_work = self.max_work_ns.load(Relaxed);
        EngineStatsSnapshot {
            ticks: self.ticks.load(Relaxed),
            late_ticks: self.late_ticks.load(Relaxed),
            max_work_ns: max_work,
            command_overruns: self.command_overruns.load(Relaxed),
            event_overruns: self.event_overruns.load(Relaxed),
            card_errors: self.card_errors.load(Relaxed),
            recording_overruns: self.recording_overruns.load(Relaxed),
            rejected_commands: self.rejected_commands.load(Relaxed),
            // A bucket's upper edge can lie above the longest tick seen; never report more.
            work_p50_ns: pct(0.5).min(max_work),
            work_p99_ns: pct(0.99).min(max_work),
            work_p999_ns: pct(0.999).min(max_work),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bound_their_values() {
        let mut last = 0;
        for ns in [0u64, 1, 3, 4, 5, 7, 8, 100, 1000, 999_999, 1_000_000, 5_000_000_000] {
            let b = bucket_of(ns);
            assert!(b >= last, "bucket of {ns} went backwards");
            last = b;
            if b < HIST_BUCKETS - 1 {
                assert!(bucket_upper_ns(b) >= ns, "upper edge of bucket {b} below {ns}");
                assert!(bucket_upper_ns(b) < ns * 5 / 4 + 2, "bucket {b} too wide for {ns}");
            }
        }
    }

    #[test]
    fn percentiles_from_histogram() {
        let s = EngineStats::default();
        for _ in 0..990 {
            s.record_work(10_000);
        }
        for _ in 0..9 {
            s.record_work(200_000);
        }
        s.record_work(2_000_000);
        let snap = s.snapshot();
        assert_eq!(snap.ticks, 1000);
        assert_eq!(snap.late_ticks, 1);
        assert_eq!(snap.max_work_ns, 2_000_000);
        assert!(snap.work_p50_ns >= 10_000 && snap.work_p50_ns < 12_500);
        assert!(snap.work_p99_ns >= 10_000 && snap.work_p99_ns < 12_500);
        assert!(snap.work_p999_ns >= 200_000 && snap.work_p999_ns < 250_000);
    }
}
