//! MFC/R2 register tones (ITU-T Q.441, China No.1): generation and detection.
//!
//! Compelled R2 register signalling uses two sets of six frequencies spaced 120 Hz apart:
//! the forward set ([`FORWARD_FREQS`], outgoing register to incoming, groups I and II) and the
//! backward set ([`BACKWARD_FREQS`], incoming to outgoing, groups A and B). Each of the 15
//! signals is "two out of six": signal `n` uses the pair given by [`signal_pair`].
//!
//! [`MfGenerator`] sends one signal (or silence) of one direction, phase-continuous across
//! calls and signal changes, without allocating. [`MfDetector`] reports when a signal of one
//! direction starts and stops, as [`MfEvent`]s carrying the sample count of the edge.
//!
//! # Send level
//! The default is [`DEFAULT_SEND_DBM0`] = −11.5 dBm0 per frequency: the ITU Q.454 figure
//! (−11.5 ± 1 dBm0) as quoted in SpanDSP's `bell_r2_mf.c`. Some national plans, China's among
//! them by some accounts **(unverified)**, send −8 dBm0; the level is a parameter of
//! [`MfGenerator::new`], and the detector accepts both with a wide margin.
//!
//! # How the detector decides
//! Samples are cut into blocks of [`BLOCK_LEN`] = 133 samples (16.6 ms). With a rectangular
//! window the response of a filter has nulls every 8000/133 = 60.15 Hz from its centre, so the
//! neighbouring R2 frequencies (±120 Hz) sit on the second null of each filter: a clean
//! neighbour costs almost nothing, and a neighbour 10 Hz off still leaks only about −21 dB.
//! A block of 80–100 samples would place the neighbours on the first null or between nulls,
//! where the leakage of an off-frequency tone is much higher; a longer block (200+) would make
//! the compelled cycle slower for no gain. The nearest frequency of the *other* direction is
//! 240 Hz away, the fourth null.
//!
//! At the end of each block six Goertzel filters (the ones of the chosen direction) and the
//! total energy give, for the strongest two filters:
//! 1. level: each at least [`MfDetectorConfig::min_level_dbm0`];
//! 2. twist: within [`MfDetectorConfig::max_twist_db`] of each other;
//! 3. relative peak: each of the four other filters at least
//!    [`MfDetectorConfig::relative_peak_db`] below the weaker of the two;
//! 4. energy: the two filters hold at least [`MfDetectorConfig::min_energy_fraction`] of the
//!    block's energy (the guard against speech, DTMF and the other direction's tones).
//!
//! A signal starts when two consecutive blocks pass for it and the phase advance of both tones
//! between the blocks puts them within [`MfDetectorConfig::max_freq_dev_hz`] of nominal. The
//! reported start is the first sample of the first of the two blocks. A signal ends after two
//! consecutive blocks that do not pass for it; the reported end is the first sample of the
//! first of them. So edges are reported 2 blocks (33 ms) after the fact at most plus the
//! partial block, which the compelled cycle tolerates easily.

use crate::tone::{dbm0_to_peak, init as sine_table};
use std::f32::consts::{PI, TAU};

/// Samples per second.
const RATE: f32 = 8000.0;

/// Samples per detector block (16.6 ms): 120 Hz is exactly two bin widths (8000/133 Hz).
pub const BLOCK_LEN: usize = 133;

/// Forward frequencies f0..f5 in Hz (outgoing register sends: groups I and II).
pub const FORWARD_FREQS: [f32; 6] = [1380.0, 1500.0, 1620.0, 1740.0, 1860.0, 1980.0];
/// Backward frequencies f0..f5 in Hz (incoming register sends: groups A and B).
pub const BACKWARD_FREQS: [f32; 6] = [1140.0, 1020.0, 900.0, 780.0, 660.0, 540.0];

/// Default send level per frequency, in dBm0 (Q.454: −11.5 ± 1 dBm0).
pub const DEFAULT_SEND_DBM0: f32 = -11.5;

/// Blocks that must agree before an edge is reported.
const BLOCKS_TO_AGREE: u8 = 2;

/// Which of the two frequency sets a signal uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfDirection {
    /// Outgoing register to incoming register (groups I and II), 1380..1980 Hz.
    Forward,
    /// Incoming register to outgoing register (groups A and B), 540..1140 Hz.
    Backward,
}

impl MfDirection {
    /// The six frequencies f0..f5 of this direction, in Hz.
    pub fn freqs(self) -> [f32; 6] {
        match self {
            MfDirection::Forward => FORWARD_FREQS,
            MfDirection::Backward => BACKWARD_FREQS,
        }
    }
}

/// The indices (into f0..f5) of the two frequencies of signal `1..=15`, lower index first.
pub fn signal_pair(signal: u8) -> Option<(usize, usize)> {
    if !(1..=15).contains(&signal) {
        return None;
    }
    // Signals run through the pairs (i, j), i < j, ordered by j then i.
    let mut n = 1u8;
    for j in 1..6 {
        for i in 0..j {
            if n == signal {
                return Some((i, j));
            }
            n += 1;
        }
    }
    None
}

/// The signal number `1..=15` using frequencies `i` and `j` (in either order), if they differ.
pub fn pair_signal(i: usize, j: usize) -> Option<u8> {
    let (lo, hi) = if i < j { (i, j) } else { (j, i) };
    if lo == hi || hi > 5 {
        return None;
    }
    Some((hi * (hi - 1) / 2 + lo + 1) as u8)
}

/// The two frequencies of signal `1..=15` in `dir`, in Hz (f_i, f_j with i < j).
pub fn signal_freqs(dir: MfDirection, signal: u8) -> Option<(f32, f32)> {
    let f = dir.freqs();
    signal_pair(signal).map(|(i, j)| (f[i], f[j]))
}

/// Why the generator refused a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MfError {
    /// R2 signals are numbered 1 to 15.
    #[error("MF R2 signal {0} is outside 1..=15")]
    BadSignal(u8),
}

/// Sine table size bits, as built by [`crate::tone::init`].
const TABLE_BITS: u32 = 12;

/// Sends one R2 signal (or silence) of one direction, sample by sample.
///
/// The phase of each of the six oscillators runs on continuously, so a signal sounds the same
/// however the output is cut into chunks, and a change of signal causes no phase jump in a
/// frequency common to both signals.
#[derive(Debug, Clone)]
pub struct MfGenerator {
    dir: MfDirection,
    signal: Option<u8>,
    amp: f32,
    /// Phase accumulators (32-bit turn fractions) of the six frequencies.
    phase: [u32; 6],
    step: [u32; 6],
    active: (usize, usize),
    table: &'static [f32; (1 << TABLE_BITS) + 1],
}

impl MfGenerator {
    /// A silent generator for `dir`, each frequency at `level_dbm0` when a signal sounds.
    pub fn new(dir: MfDirection, level_dbm0: f32) -> Self {
        let mut step = [0u32; 6];
        for (s, f) in step.iter_mut().zip(dir.freqs()) {
            *s = ((f64::from(f) / f64::from(RATE)) * 4_294_967_296.0) as u32;
        }
        MfGenerator {
            dir,
            signal: None,
            amp: dbm0_to_peak(level_dbm0),
            phase: [0; 6],
            step,
            active: (0, 0),
            table: sine_table(),
        }
    }

    /// The direction this generator sends.
    pub fn direction(&self) -> MfDirection {
        self.dir
    }

    /// The signal sounding now, if any.
    pub fn signal(&self) -> Option<u8> {
        self.signal
    }

    /// Sound `signal` (1..=15) from the next sample on, or go silent with `None`.
    ///
    /// # Errors
    /// [`MfError::BadSignal`] for a number outside 1..=15; the generator is then unchanged.
    pub fn set_signal(&mut self, signal: Option<u8>) -> Result<(), MfError> {
        match signal {
            None => self.signal = None,
            Some(s) => {
                self.active = signal_pair(s).ok_or(MfError::BadSignal(s))?;
                self.signal = Some(s);
            }
        }
        Ok(())
    }

    #[inline]
    fn osc(&self, k: usize) -> f32 {
        let p = self.phase[k];
        let idx = (p >> (32 - TABLE_BITS)) as usize;
        let frac = (p & ((1 << (32 - TABLE_BITS)) - 1)) as f32
            * (1.0 / (1u64 << (32 - TABLE_BITS)) as f32);
        let a = self.table[idx];
        let b = self.table[idx + 1];
        a + (b - a) * frac
    }

    /// The next sample.
    ///
    /// # Real-time
    /// Constant work, no allocation.
    #[inline]
    pub fn next_sample(&mut self) -> i16 {
        let out = if self.signal.is_some() {
            let (i, j) = self.active;
            ((self.osc(i) + self.osc(j)) * self.amp).clamp(-32768.0, 32767.0) as i16
        } else {
            0
        };
        for k in 0..6 {
            self.phase[k] = self.phase[k].wrapping_add(self.step[k]);
        }
        out
    }

    /// Fill `out` (any length; the engine uses 8-sample chunks) with the next samples.
    ///
    /// # Real-time
    /// Work proportional to `out.len()`, no allocation.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = self.next_sample();
        }
    }
}

/// A signal edge found by the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MfEvent {
    /// The signal now present (`Some(1..=15)`), or `None` when the previous one stopped.
    pub signal: Option<u8>,
    /// Estimated sample (detector sample count) at which the change happened.
    pub at_sample: u64,
}

/// Detector thresholds; the defaults follow SpanDSP's R2 receiver and Q.441's ±10 Hz.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfDetectorConfig {
    /// Weakest accepted tone, per frequency, in dBm0 (default −35; Q.441 receivers work from
    /// −5 to −35 dBm0).
    pub min_level_dbm0: f32,
    /// Largest level difference between the two tones, in dB (default 7).
    pub max_twist_db: f32,
    /// How far every other filter must lie below the weaker tone, in dB (default 11).
    pub relative_peak_db: f32,
    /// Share of the block's energy the two filters must hold, 0..1 (default 0.7).
    pub min_energy_fraction: f32,
    /// Largest accepted frequency error of either tone, in Hz (default 15: ±10 Hz is always
    /// accepted, ±20 Hz and beyond always rejected, by this test or the energy test).
    pub max_freq_dev_hz: f32,
}

impl Default for MfDetectorConfig {
    fn default() -> Self {
        MfDetectorConfig {
            min_level_dbm0: -35.0,
            max_twist_db: 7.0,
            relative_peak_db: 11.0,
            min_energy_fraction: 0.7,
            max_freq_dev_hz: 15.0,
        }
    }
}

/// Wrap an angle to −π..π.
fn wrap(a: f32) -> f32 {
    let w = a - TAU * (a / TAU).round();
    w.clamp(-PI, PI)
}

/// Finds R2 signals of one direction in 8 kHz samples. See the module docs for the method.
#[derive(Debug, Clone)]
pub struct MfDetector {
    dir: MfDirection,
    cfg: MfDetectorConfig,
    coeff: [f32; 6],
    cos: [f32; 6],
    sin: [f32; 6],
    block_phase: [f32; 6],
    max_phase_dev: f32,
    min_energy: f32,
    twist: f32,
    rel_peak: f32,

    s1: [f32; 6],
    s2: [f32; 6],
    total: u64,
    in_block: usize,
    samples: u64,

    prev_re: [f32; 6],
    prev_im: [f32; 6],
    prev_raw: Option<u8>,
    current: Option<u8>,
    misses: u8,
    first_miss_at: u64,
}

impl MfDetector {
    /// A detector for signals of `dir`, at sample 0.
    pub fn new(dir: MfDirection, cfg: MfDetectorConfig) -> Self {
        let n = BLOCK_LEN as f32;
        let a = dbm0_to_peak(cfg.min_level_dbm0);
        let mut d = MfDetector {
            dir,
            cfg,
            coeff: [0.0; 6],
            cos: [0.0; 6],
            sin: [0.0; 6],
            block_phase: [0.0; 6],
            max_phase_dev: (TAU * cfg.max_freq_dev_hz * n / RATE).min(PI),
            min_energy: n * a * a / 2.0,
            twist: 10f32.powf(cfg.max_twist_db / 10.0),
            rel_peak: 10f32.powf(cfg.relative_peak_db / 10.0),
            s1: [0.0; 6],
            s2: [0.0; 6],
            total: 0,
            in_block: 0,
            samples: 0,
            prev_re: [0.0; 6],
            prev_im: [0.0; 6],
            prev_raw: None,
            current: None,
            misses: 0,
            first_miss_at: 0,
        };
        for (k, f) in dir.freqs().into_iter().enumerate() {
            let w = std::f64::consts::TAU * f64::from(f) / f64::from(RATE);
            d.coeff[k] = (2.0 * w.cos()) as f32;
            d.cos[k] = w.cos() as f32;
            d.sin[k] = w.sin() as f32;
            d.block_phase[k] =
                wrap((w * BLOCK_LEN as f64).rem_euclid(std::f64::consts::TAU) as f32);
        }
        d
    }

    /// The direction this detector listens for.
    pub fn direction(&self) -> MfDirection {
        self.dir
    }

    /// The thresholds in use.
    pub fn config(&self) -> &MfDetectorConfig {
        &self.cfg
    }

    /// The signal present now (a start was reported and no end yet).
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// Samples processed since creation or the last reset.
    pub fn samples_processed(&self) -> u64 {
        self.samples
    }

    /// Forget everything, including the sample count.
    pub fn reset(&mut self) {
        *self = MfDetector::new(self.dir, self.cfg);
    }

    /// Feed samples; `on_event` is called for every signal start and stop found.
    ///
    /// # Real-time
    /// Per sample six filter updates and one integer square; per 133 samples a fixed block
    /// analysis. No allocation.
    pub fn process<F: FnMut(MfEvent)>(&mut self, samples: &[i16], mut on_event: F) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK_LEN - self.in_block).min(rest.len());
            let (now, later) = rest.split_at(take);
            for &x in now {
                self.total += (i32::from(x) * i32::from(x)) as u64;
                let xf = f32::from(x);
                for k in 0..6 {
                    let s = xf + self.coeff[k] * self.s1[k] - self.s2[k];
                    self.s2[k] = self.s1[k];
                    self.s1[k] = s;
                }
            }
            self.in_block += take;
            self.samples += take as u64;
            rest = later;
            if self.in_block == BLOCK_LEN {
                self.finish_block(&mut on_event);
            }
        }
    }

    /// The signal passing the level, twist, relative-peak and energy tests in a block.
    fn classify(&self, e: &[f32; 6], total: f32) -> Option<(usize, usize)> {
        let (mut best, mut second) = if e[0] >= e[1] { (0, 1) } else { (1, 0) };
        for k in 2..6 {
            if e[k] > e[best] {
                second = best;
                best = k;
            } else if e[k] > e[second] {
                second = k;
            }
        }
        let (eb, es) = (e[best], e[second]);
        if es < self.min_energy || eb > es * self.twist {
            return None;
        }
        for (k, &ek) in e.iter().enumerate() {
            if k != best && k != second && ek * self.rel_peak > es {
                return None;
            }
        }
        if eb + es < self.cfg.min_energy_fraction * total {
            return None;
        }
        Some((best.min(second), best.max(second)))
    }

    /// Whether both tones advanced in phase by what their nominal frequencies predict.
    fn freq_ok(&self, pair: (usize, usize), re: &[f32; 6], im: &[f32; 6]) -> bool {
        [pair.0, pair.1].into_iter().all(|k| {
            let zr = re[k] * self.prev_re[k] + im[k] * self.prev_im[k];
            let zi = im[k] * self.prev_re[k] - re[k] * self.prev_im[k];
            wrap(zi.atan2(zr) - self.block_phase[k]).abs() <= self.max_phase_dev
        })
    }

    fn finish_block<F: FnMut(MfEvent)>(&mut self, on_event: &mut F) {
        let scale = 2.0 / BLOCK_LEN as f32;
        let mut e = [0f32; 6];
        let mut re = [0f32; 6];
        let mut im = [0f32; 6];
        for k in 0..6 {
            let (a, b) = (self.s1[k], self.s2[k]);
            e[k] = (a * a + b * b - self.coeff[k] * a * b).max(0.0) * scale;
            re[k] = a - self.cos[k] * b;
            im[k] = self.sin[k] * b;
        }
        let total = self.total as f32;
        let block_start = self.samples - BLOCK_LEN as u64;

        let pair = self.classify(&e, total);
        let raw = pair.and_then(|(i, j)| pair_signal(i, j));
        let confirmed = match pair {
            Some(p) if raw == self.prev_raw => self.freq_ok(p, &re, &im),
            _ => false,
        };
        let prev_start = block_start.saturating_sub(BLOCK_LEN as u64);
        match self.current {
            None => {
                if confirmed {
                    self.current = raw;
                    on_event(MfEvent { signal: raw, at_sample: prev_start });
                }
            }
            Some(c) => {
                if raw == Some(c) {
                    self.misses = 0;
                } else {
                    if self.misses == 0 {
                        self.first_miss_at = block_start;
                    }
                    self.misses += 1;
                    if self.misses >= BLOCKS_TO_AGREE {
                        self.misses = 0;
                        self.current = None;
                        on_event(MfEvent { signal: None, at_sample: self.first_miss_at });
                        if confirmed {
                            self.current = raw;
                            on_event(MfEvent { signal: raw, at_sample: prev_start });
                        }
                    }
                }
            }
        }

        self.prev_raw = raw;
        self.prev_re = re;
        self.prev_im = im;
        self.s1 = [0.0; 6];
        self.s2 = [0.0; 6];
        self.total = 0;
        self.in_block = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{DtmfGenConfig, DtmfGenerator};
    use crate::tone::{ToneGen, ToneSpec};

    /// Two sines at arbitrary frequencies and levels (for off-nominal and twist tests).
    fn pair(f: (f32, f32), dbm: (f32, f32), n: usize) -> Vec<i16> {
        let (a1, a2) = (dbm0_to_peak(dbm.0), dbm0_to_peak(dbm.1));
        (0..n)
            .map(|i| {
                let t = i as f32 / RATE;
                (a1 * (TAU * f.0 * t + 0.3).sin() + a2 * (TAU * f.1 * t + 1.1).sin()) as i16
            })
            .collect()
    }

    fn silence(n: usize) -> Vec<i16> {
        vec![0; n]
    }

    /// Run the detector over `x`, in 8-sample chunks, and collect its events.
    fn detect(dir: MfDirection, x: &[i16]) -> Vec<MfEvent> {
        let mut d = MfDetector::new(dir, MfDetectorConfig::default());
        let mut ev = Vec::new();
        for c in x.chunks(8) {
            d.process(c, |e| ev.push(e));
        }
        ev
    }

    fn signals(ev: &[MfEvent]) -> Vec<Option<u8>> {
        ev.iter().map(|e| e.signal).collect()
    }

    /// 100 ms of `sig`, framed by 100 ms of silence, at `dbm` per tone.
    fn burst(dir: MfDirection, sig: u8, dbm: f32) -> Vec<i16> {
        let mut g = MfGenerator::new(dir, dbm);
        let mut x = silence(800);
        let mut on = vec![0; 800];
        g.set_signal(Some(sig)).unwrap();
        g.fill(&mut on);
        x.extend_from_slice(&on);
        x.extend_from_slice(&silence(800));
        x
    }

    #[test]
    fn signal_pairs_match_the_table() {
        assert_eq!(signal_pair(1), Some((0, 1)));
        assert_eq!(signal_pair(6), Some((2, 3)));
        assert_eq!(signal_pair(10), Some((3, 4)));
        assert_eq!(signal_pair(11), Some((0, 5)));
        assert_eq!(signal_pair(15), Some((4, 5)));
        assert_eq!(signal_pair(0), None);
        assert_eq!(signal_pair(16), None);
        for s in 1..=15 {
            let (i, j) = signal_pair(s).unwrap();
            assert_eq!(pair_signal(i, j), Some(s));
            assert_eq!(pair_signal(j, i), Some(s));
        }
        assert_eq!(signal_freqs(MfDirection::Forward, 7), Some((1380.0, 1860.0)));
        assert_eq!(signal_freqs(MfDirection::Backward, 13), Some((900.0, 540.0)));
    }

    #[test]
    fn generator_level_and_phase_continuity() {
        let mut g = MfGenerator::new(MfDirection::Forward, -8.0);
        assert_eq!(g.set_signal(Some(16)), Err(MfError::BadSignal(16)));
        assert_eq!(g.set_signal(Some(0)), Err(MfError::BadSignal(0)));
        g.set_signal(Some(1)).unwrap();
        let mut whole = vec![0i16; 1600];
        g.clone().fill(&mut whole);
        let mut chunked = vec![0i16; 1600];
        for c in chunked.chunks_mut(8) {
            g.fill(c);
        }
        assert_eq!(whole, chunked);
        for (f, want) in [(1380.0, -8.0), (1500.0, -8.0), (1620.0, -100.0)] {
            let mut gz = crate::goertzel::Goertzel::new(f, 1600);
            gz.push_block(&whole);
            let l = gz.level_dbm0();
            if want > -50.0 {
                assert!((l - want).abs() < 0.2, "{f} Hz at {l}");
            } else {
                assert!(l < -40.0, "{f} Hz at {l}");
            }
        }
        g.set_signal(None).unwrap();
        let mut quiet = [1i16; 8];
        g.fill(&mut quiet);
        assert_eq!(quiet, [0; 8]);
    }

    #[test]
    fn every_signal_both_directions() {
        for dir in [MfDirection::Forward, MfDirection::Backward] {
            for s in 1..=15 {
                let x = burst(dir, s, DEFAULT_SEND_DBM0);
                let ev = detect(dir, &x);
                assert_eq!(signals(&ev), vec![Some(s), None], "{dir:?} {s}");
                // Onset at sample 800, reported to within the two blocks of the decision.
                let on = ev[0].at_sample as i64;
                assert!((800 - 2 * BLOCK_LEN as i64..=800).contains(&on), "{on}");
                let off = ev[1].at_sample as i64;
                assert!((1600 - BLOCK_LEN as i64..=1600 + BLOCK_LEN as i64).contains(&off));
            }
        }
    }

    #[test]
    fn signal_change_without_gap() {
        let mut g = MfGenerator::new(MfDirection::Backward, -10.0);
        let mut x = vec![0i16; 1600];
        g.set_signal(Some(1)).unwrap();
        g.fill(&mut x[..800]);
        g.set_signal(Some(3)).unwrap();
        g.fill(&mut x[800..]);
        let ev = detect(MfDirection::Backward, &x);
        assert_eq!(signals(&ev), vec![Some(1), None, Some(3)]);
    }

    #[test]
    fn level_range() {
        for dbm in [-5.0, -8.0, -20.0, -33.0] {
            for s in [1, 8, 15] {
                let ev = detect(MfDirection::Forward, &burst(MfDirection::Forward, s, dbm));
                assert_eq!(signals(&ev), vec![Some(s), None], "{dbm} dBm0 signal {s}");
            }
        }
        for dbm in [-38.0, -45.0] {
            let ev = detect(MfDirection::Forward, &burst(MfDirection::Forward, 5, dbm));
            assert!(ev.is_empty(), "{dbm} dBm0 detected");
        }
    }

    #[test]
    fn frequency_tolerance() {
        for dir in [MfDirection::Forward, MfDirection::Backward] {
            let f = dir.freqs();
            for s in [1u8, 6, 11, 15] {
                let (i, j) = signal_pair(s).unwrap();
                for (d1, d2) in [(10.0, 10.0), (-10.0, -10.0), (10.0, -10.0), (-10.0, 10.0)] {
                    let x = pair((f[i] + d1, f[j] + d2), (-12.0, -12.0), 1600);
                    let ev = detect(dir, &x);
                    assert_eq!(ev.first().map(|e| e.signal), Some(Some(s)), "{dir:?} {s} {d1}");
                }
                for (d1, d2) in [(25.0, 0.0), (0.0, -25.0), (-40.0, 0.0), (60.0, 60.0)] {
                    let x = pair((f[i] + d1, f[j] + d2), (-12.0, -12.0), 1600);
                    let ev = detect(dir, &x);
                    assert!(ev.is_empty(), "{dir:?} {s} {d1}/{d2} gave {ev:?}");
                }
            }
        }
    }

    #[test]
    fn twist() {
        let f = FORWARD_FREQS;
        for (l1, l2, ok) in [
            (-10.0, -15.0, true),
            (-15.0, -10.0, true),
            (-10.0, -16.5, true),
            (-10.0, -20.0, false),
        ] {
            let x = pair((f[1], f[4]), (l1, l2), 1600);
            let ev = detect(MfDirection::Forward, &x);
            assert_eq!(!ev.is_empty(), ok, "{l1}/{l2}");
            if ok {
                assert_eq!(ev[0].signal, Some(8));
            }
        }
    }

    /// Deterministic pseudo-random noise (xorshift) of roughly the given RMS.
    fn noise(n: usize, rms: f32, seed: u32) -> Vec<i16> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                // Sum of 4 uniforms: near-Gaussian, variance 4/12.
                let mut acc = 0f32;
                for _ in 0..4 {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    acc += (s as f32 / u32::MAX as f32) - 0.5;
                }
                (acc * rms * 1.732) as i16
            })
            .collect()
    }

    #[test]
    fn noise_alone_and_tones_in_noise() {
        let rms0 = crate::tone::DBM0_PEAK / 2f32.sqrt();
        for seed in 1..6 {
            let n = noise(8000, rms0 * 10f32.powf(-20.0 / 20.0), seed);
            for dir in [MfDirection::Forward, MfDirection::Backward] {
                assert!(detect(dir, &n).is_empty(), "noise seed {seed}");
            }
        }
        // Tones at -12 dBm0 each in white noise at -32 dBm0 (20 dB S/N per tone).
        let x = burst(MfDirection::Backward, 9, -12.0);
        let n = noise(x.len(), rms0 * 10f32.powf(-32.0 / 20.0), 7);
        let mixed: Vec<i16> = x.iter().zip(&n).map(|(&a, &b)| a.saturating_add(b)).collect();
        assert_eq!(signals(&detect(MfDirection::Backward, &mixed)), vec![Some(9), None]);
    }

    #[test]
    fn no_detection_of_other_direction_or_dtmf() {
        for s in 1..=15 {
            let fwd = burst(MfDirection::Forward, s, -8.0);
            assert!(detect(MfDirection::Backward, &fwd).is_empty(), "fwd {s}");
            let back = burst(MfDirection::Backward, s, -8.0);
            assert!(detect(MfDirection::Forward, &back).is_empty(), "back {s}");
        }
        let mut g = DtmfGenerator::new(DtmfGenConfig::default());
        g.queue("0123456789*#ABCD").unwrap();
        let mut x = vec![0i16; 16 * 960];
        g.fill(&mut x);
        for dir in [MfDirection::Forward, MfDirection::Backward] {
            assert!(detect(dir, &x).is_empty(), "DTMF seen as {dir:?} R2");
        }
        // Single tones and a call-progress tone.
        for spec in [
            ToneSpec::continuous([1500.0, 0.0], -8.0).unwrap(),
            ToneSpec::continuous([900.0, 0.0], -8.0).unwrap(),
            ToneSpec::continuous([450.0, 0.0], -8.0).unwrap(),
        ] {
            let mut t = ToneGen::new(spec);
            let mut x = vec![0i16; 4000];
            t.fill(&mut x);
            for dir in [MfDirection::Forward, MfDirection::Backward] {
                assert!(detect(dir, &x).is_empty());
            }
        }
    }

    #[test]
    fn short_blip_is_ignored_and_reset_works() {
        // 15 ms of tone cannot fill two blocks.
        let mut g = MfGenerator::new(MfDirection::Forward, -8.0);
        let mut x = vec![0i16; 2000];
        g.set_signal(Some(4)).unwrap();
        g.fill(&mut x[500..620]);
        assert!(detect(MfDirection::Forward, &x).is_empty());
        let mut d = MfDetector::new(MfDirection::Forward, MfDetectorConfig::default());
        d.process(&burst(MfDirection::Forward, 2, -8.0)[..1400], |_| {});
        assert_eq!(d.current(), Some(2));
        d.reset();
        assert_eq!(d.current(), None);
        assert_eq!(d.samples_processed(), 0);
    }
}
