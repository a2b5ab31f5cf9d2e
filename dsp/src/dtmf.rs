//! DTMF (ITU-T Q.23) generation and detection.
//!
//! [`DtmfGenerator`] turns a digit string into tone bursts with a fixed on/off timing.
//! [`DtmfDetector`] finds digits in a stream of 8 kHz samples and reports when each tone began
//! and ended, in the detector's own sample count. Both are allocation-free after construction, so
//! the media engine can run them on its 1 ms tick for every channel. Neither does anything about
//! audio paths (muting digits, regenerating them): that is the engine's business.
//!
//! # How the detector decides
//! Samples are cut into blocks of [`BLOCK_LEN`] (102 samples, 12.75 ms). Over each block eight
//! Goertzel filters (the four row and four column frequencies) and the total energy are
//! accumulated. At the end of a block the strongest row and strongest column must pass, in
//! order:
//! 1. level: each at least [`DtmfConfig::min_level_dbm0`];
//! 2. twist, loosely (3 dB slack for the filters' loss on off-frequency tones);
//! 3. relative peak: the other three filters of each group at least
//!    [`DtmfConfig::relative_peak_db`] below the strongest;
//! 4. energy: the two filters hold at least [`DtmfConfig::min_hold_fraction`] of all energy in
//!    the block.
//!
//! Such a block "passes" for the key. A digit starts when two consecutive blocks pass for the
//! same key and the second is *confirmed* against the first:
//! - frequency: the phase advance of each tone between the two blocks gives its offset from
//!   nominal, which must be within [`DtmfConfig::max_freq_dev_pct`]. This is what rejects a
//!   low-group tone 3.5 % off, which a 102-sample Goertzel alone passes (its main lobe is
//!   ±78 Hz wide);
//! - the two filter energies are corrected for the filters' response at the measured offsets,
//!   which gives the true tone energies. With them the twist must be within
//!   [`DtmfConfig::max_twist_row_louder_db`] (row, low group, louder) and
//!   [`DtmfConfig::max_twist_col_louder_db`] (column, high group, louder), and the two tones
//!   must hold at least [`DtmfConfig::min_energy_fraction`] of the block's energy.
//!
//! The energy share is the main talk-off guard: speech and music spread their energy over
//! many harmonics, which count against it. Dedicated second-harmonic filters (as in older
//! detectors) are not used: harmonics already count against the share, and eight more filters
//! would double the cost. Because the share is measured on corrected energies it can be strict
//! (0.85) without losing tones that are 1.5 % off; an uncorrected test would have to allow
//! about 0.8, which lets through chords of two near-DTMF notes with weak harmonics.
//!
//! A digit ends after three consecutive blocks that do not pass for it, so an interruption of up
//! to 10 ms is bridged. Start and end times are estimated from the block boundaries and the
//! fraction of the tone's energy found in the partial block at each edge, which gives the onset
//! to within about a millisecond rather than the block length.
//!
//! Twist is stated as "row (low group) louder" and "column (high group) louder" to avoid the
//! normal/reverse naming that documents disagree on.

use crate::tone::{dbm0_to_peak, init as sine_table};
use std::f32::consts::{PI, TAU};

/// Samples per second.
const RATE: f32 = 8000.0;

/// Samples per analysis block of the detector (12.75 ms; bin width 78.4 Hz).
pub const BLOCK_LEN: usize = 102;

/// Row (low group) frequencies in Hz.
pub const ROW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies in Hz.
pub const COL_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// Keypad layout: `KEYS[row][col]`.
const KEYS: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// Blocks that must pass for the same key before a digit starts.
const HITS_TO_START: u8 = 2;
/// Consecutive failing blocks that end a digit.
const MISSES_TO_END: u8 = 3;
/// Slack on the twist limits for a single block, before the energies are corrected for the
/// frequency offset (a 1633 Hz tone 1.5 % off loses 1.4 dB in its filter).
const TWIST_SLACK: f32 = 1.995; // 3 dB

/// Row and column index of a DTMF key (`0-9`, `*`, `#`, `A-D`, case-insensitive).
pub fn key_position(digit: char) -> Option<(usize, usize)> {
    let d = digit.to_ascii_uppercase();
    for (r, row) in KEYS.iter().enumerate() {
        for (c, &k) in row.iter().enumerate() {
            if k == d {
                return Some((r, c));
            }
        }
    }
    None
}

/// The row and column frequencies of a DTMF key, in Hz.
pub fn key_freqs(digit: char) -> Option<(f32, f32)> {
    key_position(digit).map(|(r, c)| (ROW_FREQS[r], COL_FREQS[c]))
}

/// What the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfEvent {
    /// A digit's tone began at `at_sample` (estimated, in the detector's sample count).
    Start {
        /// The key: `0-9`, `*`, `#`, `A-D`.
        digit: char,
        /// Estimated first sample of the tone.
        at_sample: u64,
    },
    /// A digit's tone ended at `at_sample` (estimated: the first sample after the tone).
    End {
        /// The key: `0-9`, `*`, `#`, `A-D`.
        digit: char,
        /// Estimated first sample after the tone.
        at_sample: u64,
    },
}

impl DtmfEvent {
    /// The key the event is about.
    pub fn digit(&self) -> char {
        match *self {
            DtmfEvent::Start { digit, .. } | DtmfEvent::End { digit, .. } => digit,
        }
    }

    /// The sample at which the tone began or ended.
    pub fn at_sample(&self) -> u64 {
        match *self {
            DtmfEvent::Start { at_sample, .. } | DtmfEvent::End { at_sample, .. } => at_sample,
        }
    }
}

/// Detector thresholds. The defaults meet the usual Q.24 receiver targets (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DtmfConfig {
    /// Weakest tone accepted, per frequency, in dBm0 (default -42).
    pub min_level_dbm0: f32,
    /// Most the row tone may be louder than the column tone, in dB (default 8).
    pub max_twist_row_louder_db: f32,
    /// Most the column tone may be louder than the row tone, in dB (default 4).
    pub max_twist_col_louder_db: f32,
    /// How far below the strongest filter of a group the others must be, in dB (default 8).
    pub relative_peak_db: f32,
    /// Share of the block's total energy the two tones must hold when a digit starts, measured
    /// on energies corrected for the frequency offset, 0..1 (default 0.85: 0.9 lost a quarter
    /// of the digits keyed over speech at -20 dBm0; 0.8 starts to pass 20 ms bursts).
    pub min_energy_fraction: f32,
    /// Share of the block's energy the two filters must hold (uncorrected) for a block to count
    /// towards starting or holding a digit, 0..1 (default 0.7). A 20 ms tone fills at most 57 %
    /// of its second block, so it never gives two passing blocks.
    pub min_hold_fraction: f32,
    /// Largest accepted deviation of either frequency, in percent (default 2.5). The phase
    /// measurement is unambiguous up to ±39 Hz, which covers the low group beyond 3.5 %; off
    /// high-group tones fall outside the filters' main lobe and fail the energy test instead.
    pub max_freq_dev_pct: f32,
}

impl Default for DtmfConfig {
    fn default() -> Self {
        DtmfConfig {
            min_level_dbm0: -42.0,
            max_twist_row_louder_db: 8.0,
            max_twist_col_louder_db: 4.0,
            relative_peak_db: 8.0,
            min_energy_fraction: 0.85,
            min_hold_fraction: 0.7,
            max_freq_dev_pct: 2.5,
        }
    }
}

/// The eight filter frequencies: rows then columns.
fn all_freqs() -> [f32; 8] {
    let mut f = [0.0; 8];
    f[..4].copy_from_slice(&ROW_FREQS);
    f[4..].copy_from_slice(&COL_FREQS);
    f
}

/// Wrap an angle to -π..π.
fn wrap(a: f32) -> f32 {
    let w = a - TAU * (a / TAU).round();
    w.clamp(-PI, PI)
}

/// Finds DTMF digits in 8 kHz samples. See the module docs for the method.
///
/// Feed it any number of samples at a time with [`DtmfDetector::process`]; a block that
/// straddles two calls is carried over.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    // Constants derived at construction.
    /// 2·cos(ω) per filter.
    coeff: [f32; 8],
    /// coeff² − 1, for the two-samples-per-step recursion.
    coeff2m1: [f32; 8],
    cos: [f32; 8],
    sin: [f32; 8],
    /// Phase advance of an exact tone over one block, wrapped to -π..π.
    block_phase: [f32; 8],
    /// Largest accepted phase error over one block.
    max_phase_dev: [f32; 8],
    min_energy: f32,
    twist_row: f32,
    twist_col: f32,
    rel_peak: f32,
    energy_fraction: f32,
    hold_fraction: f32,
    cfg: DtmfConfig,

    // Block accumulation.
    s1: [f32; 8],
    s2: [f32; 8],
    total: u64,
    in_block: usize,
    samples: u64,

    // Previous block.
    prev_energy: [f32; 8],
    prev_re: [f32; 8],
    prev_im: [f32; 8],
    prev_hit: Option<(u8, u8)>,
    hits: u8,
    /// Start of the first passing block of the current candidate, its pair energy, and the
    /// pair energy of the block before it: from these the onset is estimated.
    first_start: u64,
    first_pair: f32,
    pre_pair: f32,

    // Digit in progress.
    current: Option<(u8, u8)>,
    misses: u8,
    /// Pair energy of the last passing block and of the one before it (the reference for a
    /// full block when the last one is only partly filled).
    last_hit_pair: f32,
    ref_pair: f32,
    last_hit_end: u64,
    end_estimate: u64,
}

impl DtmfDetector {
    /// A detector with the given thresholds, at sample 0.
    pub fn new(cfg: DtmfConfig) -> Self {
        let freqs = all_freqs();
        let n = BLOCK_LEN as f32;
        let mut d = DtmfDetector {
            coeff: [0.0; 8],
            coeff2m1: [0.0; 8],
            cos: [0.0; 8],
            sin: [0.0; 8],
            block_phase: [0.0; 8],
            max_phase_dev: [0.0; 8],
            min_energy: {
                let a = dbm0_to_peak(cfg.min_level_dbm0);
                n * a * a / 2.0
            },
            twist_row: 10f32.powf(cfg.max_twist_row_louder_db / 10.0),
            twist_col: 10f32.powf(cfg.max_twist_col_louder_db / 10.0),
            rel_peak: 10f32.powf(cfg.relative_peak_db / 10.0),
            energy_fraction: cfg.min_energy_fraction,
            hold_fraction: cfg.min_hold_fraction,
            cfg,
            s1: [0.0; 8],
            s2: [0.0; 8],
            total: 0,
            in_block: 0,
            samples: 0,
            prev_energy: [0.0; 8],
            prev_re: [0.0; 8],
            prev_im: [0.0; 8],
            prev_hit: None,
            hits: 0,
            first_start: 0,
            first_pair: 0.0,
            pre_pair: 0.0,
            current: None,
            misses: 0,
            last_hit_pair: 0.0,
            ref_pair: 0.0,
            last_hit_end: 0,
            end_estimate: 0,
        };
        for (k, &f) in freqs.iter().enumerate() {
            let w = f64::from(TAU) * f64::from(f) / f64::from(RATE);
            let c = 2.0 * w.cos();
            d.coeff[k] = c as f32;
            d.coeff2m1[k] = (c * c - 1.0) as f32;
            d.cos[k] = w.cos() as f32;
            d.sin[k] = w.sin() as f32;
            let adv = (w * BLOCK_LEN as f64).rem_euclid(std::f64::consts::TAU) as f32;
            d.block_phase[k] = wrap(adv);
            let dev_hz = f * cfg.max_freq_dev_pct / 100.0;
            d.max_phase_dev[k] = (TAU * dev_hz * n / RATE).min(PI);
        }
        d
    }

    /// The thresholds in use.
    pub fn config(&self) -> &DtmfConfig {
        &self.cfg
    }

    /// Samples processed since creation or the last reset.
    pub fn samples_processed(&self) -> u64 {
        self.samples
    }

    /// The digit whose tone is currently present (a Start was reported, no End yet).
    pub fn current_digit(&self) -> Option<char> {
        self.current.map(|(r, c)| KEYS[r as usize][c as usize])
    }

    /// Forget everything, including the sample count, as if newly created.
    pub fn reset(&mut self) {
        *self = DtmfDetector::new(self.cfg);
    }

    /// Feed samples; `on_event` is called for each digit start and end found.
    ///
    /// # Real-time
    /// Per sample: eight filter updates (vectorised, two samples per step) and one integer
    /// square; per 102 samples a fixed block analysis. No allocation.
    pub fn process<F: FnMut(DtmfEvent)>(&mut self, samples: &[i16], mut on_event: F) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK_LEN - self.in_block).min(rest.len());
            let (now, later) = rest.split_at(take);
            self.accumulate(now);
            self.in_block += take;
            self.samples += take as u64;
            rest = later;
            if self.in_block == BLOCK_LEN {
                self.finish_block(&mut on_event);
            }
        }
    }

    /// Run the filter bank and energy sum over `xs` (within one block).
    #[inline]
    fn accumulate(&mut self, xs: &[i16]) {
        let c = self.coeff;
        let c2 = self.coeff2m1;
        let mut s1 = self.s1;
        let mut s2 = self.s2;
        let mut total = self.total;
        let mut pairs = xs.chunks_exact(2);
        for p in &mut pairs {
            let (a, b) = (p[0], p[1]);
            total += (i32::from(a) * i32::from(a)) as u64 + (i32::from(b) * i32::from(b)) as u64;
            let x0 = f32::from(a);
            let x1 = f32::from(b);
            // s[n] = x0 + c·s[n-1] − s[n-2];  s[n+1] = x1 + c·x0 + (c²−1)·s[n-1] − c·s[n-2]:
            // both from the old state, so the two steps do not wait on each other.
            for k in 0..8 {
                let (p1, p2) = (s1[k], s2[k]);
                let n0 = x0 + c[k] * p1 - p2;
                let n1 = (x1 + c[k] * x0) + (c2[k] * p1 - c[k] * p2);
                s1[k] = n1;
                s2[k] = n0;
            }
        }
        if let [a] = *pairs.remainder() {
            total += (i32::from(a) * i32::from(a)) as u64;
            let x = f32::from(a);
            for k in 0..8 {
                let n0 = x + c[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = n0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.total = total;
    }

    /// The key that passes the level, loose twist, relative-peak and hold-energy tests, if any.
    fn classify(&self, e: &[f32; 8], total: f32) -> Option<(u8, u8)> {
        let best = |g: &[f32]| {
            let mut i = 0;
            for k in 1..4 {
                if g[k] > g[i] {
                    i = k;
                }
            }
            i
        };
        let r = best(&e[..4]);
        let c = best(&e[4..]);
        let (er, ec) = (e[r], e[4 + c]);
        if er < self.min_energy || ec < self.min_energy {
            return None;
        }
        if er > ec * self.twist_row * TWIST_SLACK || ec > er * self.twist_col * TWIST_SLACK {
            return None;
        }
        for k in 0..4 {
            if (k != r && e[k] * self.rel_peak > er) || (k != c && e[4 + k] * self.rel_peak > ec) {
                return None;
            }
        }
        if er + ec < self.hold_fraction * total {
            return None;
        }
        Some((r as u8, c as u8))
    }

    /// Confirm a key that passed in the previous block and in this one: both frequencies within
    /// tolerance (from the phase advance), and with energies corrected for the offset, the
    /// twist within limits and the energy share high enough.
    fn confirm(
        &self,
        key: (u8, u8),
        e: &[f32; 8],
        re: &[f32; 8],
        im: &[f32; 8],
        total: f32,
    ) -> bool {
        let n = BLOCK_LEN as f32;
        let mut tone = [0f32; 2];
        for (i, k) in [key.0 as usize, 4 + key.1 as usize].into_iter().enumerate() {
            // z = y · conj(y_prev); its angle is the tone's phase advance over one block.
            let zr = re[k] * self.prev_re[k] + im[k] * self.prev_im[k];
            let zi = im[k] * self.prev_re[k] - re[k] * self.prev_im[k];
            let dev = wrap(zi.atan2(zr) - self.block_phase[k]);
            if dev.abs() > self.max_phase_dev[k] {
                return false;
            }
            // dev = 2π·δ·N/fs for an offset of δ Hz. The filter's power response to that offset
            // is (sin(πδN/fs) / (N·sin(πδ/fs)))².
            let x = dev / 2.0;
            let gain = if x.abs() < 1e-4 { 1.0 } else { (x.sin() / (n * (x / n).sin())).powi(2) };
            tone[i] = e[k] / gain.max(0.05);
        }
        let [er, ec] = tone;
        er <= ec * self.twist_row
            && ec <= er * self.twist_col
            && er + ec >= self.energy_fraction * total
    }

    fn finish_block<F: FnMut(DtmfEvent)>(&mut self, on_event: &mut F) {
        let scale = 2.0 / BLOCK_LEN as f32;
        let mut e = [0f32; 8];
        let mut re = [0f32; 8];
        let mut im = [0f32; 8];
        for k in 0..8 {
            let (a, b) = (self.s1[k], self.s2[k]);
            e[k] = (a * a + b * b - self.coeff[k] * a * b).max(0.0) * scale;
            re[k] = a - self.cos[k] * b;
            im[k] = self.sin[k] * b;
        }
        let total = self.total as f32;
        let block_end = self.samples;
        let block_start = block_end - BLOCK_LEN as u64;
        let n = BLOCK_LEN as f32;
        let pair = |e: &[f32; 8], (r, c): (u8, u8)| e[r as usize] + e[4 + c as usize];

        let hit = self.classify(&e, total);
        if let Some(key) = hit {
            if self.prev_hit == Some(key) {
                if self.confirm(key, &e, &re, &im, total) {
                    self.hits = self.hits.saturating_add(1);
                } else {
                    // This block can still be the reference for the next one.
                    self.hits = 1;
                }
            } else {
                self.first_start = block_start;
                self.first_pair = pair(&e, key);
                self.pre_pair = pair(&self.prev_energy, key);
                self.hits = 1;
            }
        } else {
            self.hits = 0;
        }

        if let Some(cur) = self.current {
            if hit == Some(cur) {
                self.misses = 0;
                self.ref_pair = self.last_hit_pair;
                self.last_hit_pair = pair(&e, cur);
                self.last_hit_end = block_end;
            } else {
                if self.misses == 0 {
                    // As for the onset: the last passing block may be partly filled (the tone
                    // ended inside it), or full (then it ended in this block).
                    let full = self.last_hit_pair.max(self.ref_pair);
                    let fill = |p: f32| (p / full).sqrt().clamp(0.0, 1.0);
                    let short = (1.0 - fill(self.last_hit_pair)) * n;
                    let over = fill(pair(&e, cur)) * n;
                    self.end_estimate =
                        (self.last_hit_end as f32 - short + over).round().max(0.0) as u64;
                }
                self.misses += 1;
                if self.misses >= MISSES_TO_END {
                    on_event(DtmfEvent::End {
                        digit: KEYS[cur.0 as usize][cur.1 as usize],
                        at_sample: self.end_estimate,
                    });
                    self.current = None;
                }
            }
        }
        if self.current.is_none() && self.hits >= HITS_TO_START {
            if let Some(key) = hit {
                // A tone filling a share f of a block gives f² of a full block's filter energy.
                // This block is full; the first passing block may be partly filled (the tone
                // began inside it) or full (then it began in the block before).
                let full = pair(&e, key);
                let fill = |p: f32| (p / full).sqrt().clamp(0.0, 1.0);
                let late = (1.0 - fill(self.first_pair)) * n;
                let early = fill(self.pre_pair) * n;
                let onset = (self.first_start as f32 + late - early).round().max(0.0) as u64;
                on_event(DtmfEvent::Start {
                    digit: KEYS[key.0 as usize][key.1 as usize],
                    at_sample: onset,
                });
                self.current = Some(key);
                self.misses = 0;
                self.last_hit_pair = full;
                self.ref_pair = full;
                self.last_hit_end = block_end;
            }
        }

        self.prev_hit = hit;
        self.prev_energy = e;
        self.prev_re = re;
        self.prev_im = im;
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.total = 0;
        self.in_block = 0;
    }
}

/// Generator timing and levels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DtmfGenConfig {
    /// Tone duration per digit in ms (default 60).
    pub on_ms: u32,
    /// Silence after each digit in ms (default 60).
    pub off_ms: u32,
    /// Level of the row (low group) tone in dBm0 (default -10).
    pub level_dbm0: f32,
    /// Column (high group) level minus row level in dB (default 0; lines often want +2).
    pub twist_db: f32,
}

impl Default for DtmfGenConfig {
    fn default() -> Self {
        DtmfGenConfig { on_ms: 60, off_ms: 60, level_dbm0: -10.0, twist_db: 0.0 }
    }
}

/// Digits the generator can hold queued.
pub const GEN_QUEUE_LEN: usize = 64;

/// Why digits could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// A character that is not a DTMF key.
    #[error("'{0}' is not a DTMF digit (0-9, *, #, A-D)")]
    InvalidDigit(char),
    /// More digits than the queue has room for.
    #[error("DTMF queue full: {wanted} digits, room for {room}")]
    QueueFull {
        /// Digits in the string.
        wanted: usize,
        /// Free places in the queue.
        room: usize,
    },
}

/// Plays queued DTMF digits: each digit's two tones for `on_ms`, then `off_ms` of silence.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    cfg: DtmfGenConfig,
    queue: [(u8, u8); GEN_QUEUE_LEN],
    head: usize,
    len: usize,
    table: &'static [f32],
    table_bits: u32,
    phase: [u32; 2],
    step: [u32; 2],
    amp: [f32; 2],
    on_left: u32,
    off_left: u32,
    active: bool,
}

impl DtmfGenerator {
    /// An idle generator. Builds the shared sine table if needed (call [`crate::tone::init`]
    /// first to keep that allocation off the real-time thread).
    pub fn new(cfg: DtmfGenConfig) -> Self {
        let table: &'static [f32] = &sine_table()[..];
        let table_bits = (table.len() - 1).trailing_zeros();
        let row = dbm0_to_peak(cfg.level_dbm0);
        DtmfGenerator {
            cfg,
            queue: [(0, 0); GEN_QUEUE_LEN],
            head: 0,
            len: 0,
            table,
            table_bits,
            phase: [0; 2],
            step: [0; 2],
            amp: [row, row * 10f32.powf(cfg.twist_db / 20.0)],
            on_left: 0,
            off_left: 0,
            active: false,
        }
    }

    /// The timing and levels in use.
    pub fn config(&self) -> &DtmfGenConfig {
        &self.cfg
    }

    /// Append `digits` (`0-9`, `*`, `#`, `A-D`, case-insensitive) to the queue: all or none.
    ///
    /// # Errors
    /// [`DtmfError::InvalidDigit`] for a character that is not a key, [`DtmfError::QueueFull`]
    /// if the string does not fit in the free places.
    ///
    /// # Real-time
    /// Work proportional to `digits.len()`, no allocation.
    pub fn queue(&mut self, digits: &str) -> Result<(), DtmfError> {
        let mut count = 0;
        for ch in digits.chars() {
            key_position(ch).ok_or(DtmfError::InvalidDigit(ch))?;
            count += 1;
        }
        let room = GEN_QUEUE_LEN - self.len;
        if count > room {
            return Err(DtmfError::QueueFull { wanted: count, room });
        }
        for ch in digits.chars() {
            if let Some((r, c)) = key_position(ch) {
                self.queue[(self.head + self.len) % GEN_QUEUE_LEN] = (r as u8, c as u8);
                self.len += 1;
            }
        }
        Ok(())
    }

    /// Whether nothing is playing and nothing is queued.
    pub fn is_idle(&self) -> bool {
        !self.active && self.len == 0
    }

    /// Digits queued and not yet started.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Stop at once and drop the queue.
    pub fn clear(&mut self) {
        self.len = 0;
        self.active = false;
    }

    fn start_next(&mut self) -> bool {
        if self.len == 0 {
            return false;
        }
        let (r, c) = self.queue[self.head];
        self.head = (self.head + 1) % GEN_QUEUE_LEN;
        self.len -= 1;
        for (k, f) in [ROW_FREQS[r as usize], COL_FREQS[c as usize]].into_iter().enumerate() {
            self.step[k] = ((f64::from(f) / f64::from(RATE)) * 4_294_967_296.0) as u32;
            self.phase[k] = 0;
        }
        self.on_left = self.cfg.on_ms * 8;
        self.off_left = self.cfg.off_ms * 8;
        self.active = self.on_left + self.off_left > 0;
        true
    }

    #[inline]
    fn next_sample(&mut self) -> i16 {
        if !self.active && !self.start_next() {
            return 0;
        }
        let out = if self.on_left > 0 {
            self.on_left -= 1;
            let shift = 32 - self.table_bits;
            let mut acc = 0f32;
            for k in 0..2 {
                let p = self.phase[k];
                let idx = (p >> shift) as usize;
                let frac = (p & ((1 << shift) - 1)) as f32 * (1.0 / (1u64 << shift) as f32);
                let (a, b) = (self.table[idx], self.table[idx + 1]);
                acc += (a + (b - a) * frac) * self.amp[k];
                self.phase[k] = p.wrapping_add(self.step[k]);
            }
            acc.clamp(-32768.0, 32767.0) as i16
        } else {
            self.off_left = self.off_left.saturating_sub(1);
            0
        };
        if self.on_left == 0 && self.off_left == 0 {
            self.active = false;
        }
        out
    }

    /// Fill `out` with the next samples (silence when idle). Returns whether the generator is
    /// still busy afterwards (a digit or its pause unfinished, or digits queued); the call
    /// that returns `false` may still carry the last samples of the final pause.
    ///
    /// # Real-time
    /// Work proportional to `out.len()`, no allocation.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        for s in out.iter_mut() {
            *s = self.next_sample();
        }
        !self.is_idle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_q23_frequencies() {
        assert_eq!(key_freqs('1'), Some((697.0, 1209.0)));
        assert_eq!(key_freqs('0'), Some((941.0, 1336.0)));
        assert_eq!(key_freqs('#'), Some((941.0, 1477.0)));
        assert_eq!(key_freqs('d'), Some((941.0, 1633.0)));
        assert_eq!(key_freqs('x'), None);
    }

    #[test]
    fn generator_timing_is_exact() {
        let mut g = DtmfGenerator::new(DtmfGenConfig::default());
        g.queue("12").unwrap();
        // Two digits of 480 samples on and 480 off: 1920 samples in all.
        let mut out = vec![0i16; 1919];
        assert!(g.fill(&mut out), "one pause sample is left");
        let mut last = [1i16; 1];
        assert!(!g.fill(&mut last));
        assert_eq!(last[0], 0);
        assert!(g.is_idle());
        let sounding = |s: &[i16]| s.iter().filter(|&&x| x != 0).count();
        assert!(sounding(&out[..480]) >= 470);
        assert_eq!(sounding(&out[480..960]), 0);
        assert!(sounding(&out[960..1440]) >= 470);
        assert_eq!(sounding(&out[1440..]), 0);
    }

    #[test]
    fn generator_queue_is_all_or_nothing() {
        let mut g = DtmfGenerator::new(DtmfGenConfig::default());
        assert_eq!(g.queue("12x3"), Err(DtmfError::InvalidDigit('x')));
        assert!(g.is_idle());
        g.queue(&"1".repeat(60)).unwrap();
        assert_eq!(g.queue("12345"), Err(DtmfError::QueueFull { wanted: 5, room: 4 }));
        assert_eq!(g.pending(), 60);
        g.clear();
        assert!(g.is_idle());
    }
}
