//! `cardpbx bench engine`: how much media-engine work one tick costs on this machine.
//!
//! The workload is the benchmark's (see `benches/engine.rs`): every channel switched to
//! another, a tone on every tenth channel, a DTMF detector on every channel, on an in-memory
//! card whose exchange does nothing, on a virtual clock, ticks back to back.
//! No other thread runs, so the numbers are the engine's own work per tick.

pub use crate::engine::fake::FakeCard;
use crate::engine::{Detectors, Engine, EngineCommand, EngineConfig, EngineHandle, Source};
use cardpbx_dsp::tone::ToneSpec;
use cardpbx_hal::ChannelId;
use serde::Serialize;
use std::time::Instant;

/// Half a tick: the tick-work budget the engine aims to stay under at p99.9.
pub const TARGET_NS: u64 = 500_000;

/// Build an engine with the benchmark workload on `channels` A-law channels, commands applied.
///
/// # Panics
/// When the engine rejects the setup (a bug).
pub fn build_workload(channels: usize) -> (Engine<FakeCard>, EngineHandle) {
    let mut card = FakeCard::uniform(channels, cardpbx_hal::Law::Alaw);
    card.passive = true;
    let cfg = EngineConfig { cmd_capacity: 4096, event_capacity: 4096, ..EngineConfig::default() };
    let (mut e, mut h) = Engine::new(card, cfg);
    let tone = ToneSpec::cadenced([425.0, 0.0], -10.0, &[500, 500]).expect("valid busy tone");
    for i in 0..channels {
        let src = if i % 10 == 0 {
            Source::Tone(tone)
        } else {
            let peer = if i ^ 1 < channels { i ^ 1 } else { i };
            Source::Channel(ChannelId(peer as u32))
        };
        for cmd in [
            EngineCommand::SetSource(ChannelId(i as u32), src),
            EngineCommand::Detect(ChannelId(i as u32), Detectors::DTMF),
        ] {
            while h.send(cmd).is_err() {
                e.tick().expect("fake card never fails");
            }
        }
    }
    // Apply the rest and let every detector see a few blocks.
    for _ in 0..200 {
        e.tick().expect("fake card never fails");
        while h.poll_event().is_some() {}
    }
    assert_eq!(h.stats().snapshot().rejected_commands, 0);
    (e, h)
}

/// Results of [`bench_engine`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Channels in the workload.
    pub channels: usize,
    /// Wall time spent ticking, seconds.
    pub seconds: f64,
    /// Ticks run in that time.
    pub ticks: u64,
    /// Tick work, median, ns.
    pub tick_p50_ns: u64,
    /// Tick work, 99th percentile, ns.
    pub tick_p99_ns: u64,
    /// Tick work, 99.9th percentile, ns.
    pub tick_p999_ns: u64,
    /// Longest tick, ns.
    pub tick_max_ns: u64,
    /// Median work per channel per tick, ns.
    pub per_channel_p50_ns: f64,
    /// 99th percentile work per channel per tick, ns.
    pub per_channel_p99_ns: f64,
    /// 99.9th percentile work per channel per tick, ns.
    pub per_channel_p999_ns: f64,
    /// Ticks whose work exceeded 1 ms.
    pub late_ticks: u64,
    /// Command and event ring overruns during the measurement.
    pub overruns: u64,
    /// Channels one core could carry at the p99.9 figure within half a tick.
    pub channels_per_core_at_target: u64,
    /// Whether p99.9 tick work stayed under [`TARGET_NS`].
    pub meets_target: bool,
}

/// Run the workload on `channels` channels for `seconds` of wall time, back-to-back ticks.
///
/// # Panics
/// When `channels` is 0.
pub fn bench_engine(channels: usize, seconds: f64) -> BenchReport {
    assert!(channels > 0, "bench needs at least one channel");
    let (mut e, mut h) = build_workload(channels);
    let setup = h.stats().snapshot();
    let mut times: Vec<u64> = Vec::with_capacity(1 << 16);
    let begin = Instant::now();
    let budget = std::time::Duration::from_secs_f64(seconds.max(0.0));
    loop {
        let t0 = Instant::now();
        e.tick().expect("fake card never fails");
        times.push(t0.elapsed().as_nanos() as u64);
        while h.poll_event().is_some() {}
        if begin.elapsed() >= budget {
            break;
        }
    }
    let wall = begin.elapsed().as_secs_f64();
    let late = times.iter().filter(|&&t| t > 1_000_000).count() as u64;
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    let (p50, p99, p999) = (pct(0.5), pct(0.99), pct(0.999));
    let snap = h.stats().snapshot();
    let per = |ns: u64| ns as f64 / channels as f64;
    BenchReport {
        channels,
        seconds: wall,
        ticks: times.len() as u64,
        tick_p50_ns: p50,
        tick_p99_ns: p99,
        tick_p999_ns: p999,
        tick_max_ns: *times.last().expect("at least one tick"),
        per_channel_p50_ns: per(p50),
        per_channel_p99_ns: per(p99),
        per_channel_p999_ns: per(p999),
        late_ticks: late,
        overruns: (snap.command_overruns + snap.event_overruns)
            - (setup.command_overruns + setup.event_overruns),
        channels_per_core_at_target: (TARGET_NS as f64 / per(p999).max(1e-9)) as u64,
        meets_target: p999 < TARGET_NS,
    }
}

impl BenchReport {
    /// A human-readable table.
    pub fn render(&self) -> String {
        let us = |ns: u64| ns as f64 / 1000.0;
        let mut s = String::new();
        s.push_str(&format!(
            "media engine: {} channels (switched, 10% tone, DTMF on all), {} ticks in {:.2} s\n",
            self.channels, self.ticks, self.seconds
        ));
        s.push_str("             tick work   per channel\n");
        for (name, t, c) in [
            ("p50", self.tick_p50_ns, self.per_channel_p50_ns),
            ("p99", self.tick_p99_ns, self.per_channel_p99_ns),
            ("p99.9", self.tick_p999_ns, self.per_channel_p999_ns),
        ] {
            s.push_str(&format!("  {name:<7} {:>10.1} µs {:>10.1} ns\n", us(t), c));
        }
        s.push_str(&format!("  {:<7} {:>10.1} µs\n", "max", us(self.tick_max_ns)));
        s.push_str(&format!(
            "late ticks (>1 ms): {}   overruns: {}\n",
            self.late_ticks, self.overruns
        ));
        s.push_str(&format!(
            "target p99.9 < {} µs: {}   (~{} channels per core at the target)\n",
            TARGET_NS / 1000,
            if self.meets_target { "met" } else { "NOT met" },
            self.channels_per_core_at_target
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_report_is_consistent() {
        let r = bench_engine(40, 0.05);
        assert_eq!(r.channels, 40);
        assert!(r.ticks > 0);
        assert!(r.tick_p50_ns <= r.tick_p99_ns && r.tick_p99_ns <= r.tick_p999_ns);
        assert!(r.tick_p999_ns <= r.tick_max_ns);
        assert_eq!(r.overruns, 0);
        let table = r.render();
        assert!(table.contains("40 channels") && table.contains("p99.9"), "{table}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["channels"], 40);
    }
}
