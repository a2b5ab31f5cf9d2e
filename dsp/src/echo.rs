//! Line (hybrid) echo canceller for analog lines: an adaptive FIR filter trained with NLMS, a
//! Geigel double-talk detector and a non-linear processor with comfort noise.
//!
//! The canceller sits on the card side of a 2-wire line. `far` is what the PBX sent towards the
//! line (the reference), `near` is what came back from the hybrid: the near-end talker plus an
//! echo of `far`. [`EchoCanceller::process`] returns `near` with the estimated echo removed.
//!
//! What it does not do: it does not search for a bulk delay (the echo must fall inside
//! `tail_ms`), it has no acoustic-echo features (no frequency-domain filter, no gain control),
//! and it does not detect 2100 Hz disabling tones (the caller disables it for fax/modem calls).
//!
//! # Algorithm
//! - Far-end history is a circular buffer stored twice (`2 × taps` long) so that the window
//!   `x[n], x[n-1], …, x[n-taps+1]` is always one contiguous slice; the dot product and the
//!   coefficient update are straight loops over equal-length slices the compiler vectorises.
//! - NLMS: `h += µ · e · x / (Σx² + δ)`, with `Σx²` the far-end energy over the tail (kept as a
//!   running sum, exact in `f64`) and `δ` a small regulariser. Adaptation stops when the far end
//!   is quiet (nothing to learn from) and during double talk.
//! - Geigel double-talk detection: `|near| > dtd_threshold · max|far|` over the tail declares
//!   double talk and freezes adaptation for a 30 ms hangover. The far-end maximum is kept per
//!   1 ms block, so the check costs `tail_ms / 8` comparisons per sample instead of `taps`.
//! - A power check backs Geigel up from the start: near-end short-term (≈ 4 ms) power above
//!   `dtd_threshold²` times the far end's mean power over the tail cannot be echo (a hybrid does
//!   not amplify), so adaptation pauses while it holds (no hangover). Adaptation also waits
//!   while the far end is quiet right now (peak of the last 1–2 ms below the activity level) even if
//!   the tail still holds far energy: the echo of a burst that just ended is then
//!   indistinguishable by level from a near talker who starts at that moment. Geigel alone lets a steady near talker
//!   through once a loud far-end burst (a DTMF digit, say) has just ended: its peak still sits
//!   in the tail while little far energy is left to explain the near signal, and NLMS learns
//!   the near talker.
//! - Energy double-talk detection backs Geigel up once the filter has converged: a short-term
//!   (≈ 4 ms) residual more than 12 dB above what the filter normally leaves (near power minus
//!   the linear ERLE over ≈ 1 s) also freezes adaptation. Geigel alone misses a near talker
//!   quieter than half the far-end peak, and NLMS diverges quickly on that. If this detector
//!   holds for about 2 s (a leaky count, so short normal stretches do not restart it) it is
//!   taken as an echo-path change and let go, so adaptation resumes.
//! - Non-linear processor (NLP): once the linear filter has converged (linear ERLE estimate at
//!   least [`NLP_MIN_ERLE_DB`]), whenever the far end is active, Geigel sees no double talk and
//!   the short-term residual is at least 6 dB below the near input, the residual echo is
//!   replaced with comfort noise: white noise at the level of the tracked background noise
//!   (the ≈ 4 ms residual power followed down within ≈ 32 ms and up over
//!   ≈ 2 s, so it settles on the quiet stretches between words), capped at
//!   [`COMFORT_NOISE_MAX_DBM0`]. The near end therefore hears a steady low hiss instead of a
//!   pumping, clipped residual.
//!
//! # Real-time
//! [`EchoCanceller::new`] allocates the history and the coefficients (`3 × taps` `f32`s, 12 KiB
//! at 128 ms). [`EchoCanceller::process`] never allocates; its work per sample is two passes over
//! `taps = 8 × tail_ms` values (dot product and update) plus `tail_ms / 8` comparisons.

/// Samples per millisecond at 8 kHz.
const SAMPLES_PER_MS: usize = 8;
/// Double-talk hangover after the last detector hit: 30 ms.
const DT_HANGOVER: u32 = 30 * SAMPLES_PER_MS as u32;
/// Mean far-end power (linear units²) over the tail above which the far end counts as active:
/// about −45 dBm0 (rms ≈ 91).
const FAR_ACTIVE_POWER: f64 = 91.0 * 91.0;
/// Far-end peak over the last 1–2 ms below which the far end counts as quiet right now
/// (the peak of a sine at the activity level).
const FAR_ACTIVE_PEAK: u16 = 129;
/// Regulariser per tap, in linear units²: about −60 dBm0 (rms 16) per tap.
const DELTA_PER_TAP: f64 = 16.0 * 16.0;
/// Far-active samples the ERLE estimate needs before it reports anything (50 ms).
const ERLE_MIN_SAMPLES: u32 = 400;
/// Smoothing factor of the ERLE power estimates (time constant ≈ 250 ms of far-end activity).
const ERLE_ALPHA: f32 = 1.0 / 2000.0;
/// Smoothing factor of the short-term powers used by the energy double-talk detector (≈ 4 ms).
const SHORT_ALPHA: f32 = 1.0 / 32.0;
/// Smoothing factor of the energy detector's reference powers (≈ 1 s).
const SLOW_ALPHA: f32 = 1.0 / 8000.0;
/// The energy detector acts once the linear ERLE estimate reaches this many dB.
const ENERGY_DT_MIN_ERLE_DB: f32 = 15.0;
/// The energy detector declares double talk when the short-term residual is this many dB above
/// what the converged filter normally leaves (`near − ERLE`).
const ENERGY_DT_MARGIN_DB: f32 = 12.0;
/// The energy detector gives up after ≈ 2 s of holding (leaky count): a residual that stays high
/// that long (a near talker pauses more often) is an echo-path change, not double talk, so
/// adaptation must resume.
const ENERGY_DT_MAX_RUN: u32 = 16_000;
/// Linear ERLE (dB) above which the filter counts as converged and the NLP may act.
pub const NLP_MIN_ERLE_DB: f32 = 18.0;
/// The NLP only acts while the short-term residual is at least 6 dB below the near input.
const NLP_MAX_RESIDUAL: f32 = 0.25;
/// Highest comfort-noise level the NLP injects, in dBm0.
pub const COMFORT_NOISE_MAX_DBM0: f32 = -55.0;
/// Highest ERLE [`EchoCanceller::erle_db`] reports (output digital silence would be infinite).
const ERLE_CAP_DB: f32 = 100.0;
/// rms of a 0 dBm0 sine in 16-bit linear (A-law digital milliwatt: peak 22 827).
const DBM0_RMS: f32 = 16_141.0;

/// Settings of an [`EchoCanceller`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EchoConfig {
    /// Echo tail covered, in milliseconds (1..=128); 8 taps per millisecond.
    pub tail_ms: u32,
    /// NLMS step size µ, in (0, 2); 0.5 is a good compromise of speed and residual.
    pub step: f32,
    /// Whether the non-linear processor suppresses the residual echo.
    pub nlp: bool,
    /// Geigel threshold: double talk when `|near| > dtd_threshold · max|far|` over the tail.
    /// 0.5 assumes at least 6 dB of hybrid loss.
    pub dtd_threshold: f32,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig { tail_ms: 64, step: 0.5, nlp: true, dtd_threshold: 0.5 }
    }
}

/// Why an [`EchoConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum EchoConfigError {
    /// `tail_ms` outside 1..=128.
    #[error("echo tail {0} ms outside 1..=128")]
    Tail(u32),
    /// `step` outside (0, 2) or not finite.
    #[error("NLMS step {0} outside (0, 2)")]
    Step(f32),
    /// `dtd_threshold` not positive or not finite.
    #[error("double-talk threshold {0} must be positive")]
    DtdThreshold(f32),
}

/// Line echo canceller state for one channel. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct EchoCanceller {
    cfg: EchoConfig,
    taps: usize,
    /// Filter coefficients, `h[k]` applies to `x[n-k]`.
    coeffs: Box<[f32]>,
    /// Far-end history stored twice; the window is `hist[pos..pos + taps]`, newest first.
    hist: Box<[f32]>,
    pos: usize,
    /// Σx² over the window (integers squared, so exact in f64).
    far_energy: f64,
    /// Max |far| of each completed 1 ms block, circular (`tail_ms + 1` blocks).
    block_max: Box<[u16]>,
    block_idx: usize,
    /// Max |far| in the block being filled and samples in it.
    cur_max: u16,
    /// Far-end peak of the last complete 1 ms block.
    last_block_max: u16,
    cur_len: usize,
    /// Max over `block_max`, refreshed at each block end.
    blocks_max: u16,
    dt_hangover: u32,
    /// Hangover of the Geigel detector alone (gates the NLP).
    geigel_hangover: u32,
    /// Smoothed powers for the ERLE estimates (far active, no double talk).
    p_near: f32,
    p_lin: f32,
    p_out: f32,
    erle_samples: u32,
    /// Background noise power estimate (minimum-following) and the comfort-noise generator.
    noise_floor: f32,
    rng: u32,
    nlp_active: bool,
    /// Short-term (≈ 4 ms) powers of near input and linear residual, for the energy detector.
    short_near: f32,
    short_err: f32,
    /// Slow (≈ 1 s) powers of near input and linear residual: the energy detector's reference.
    slow_near: f32,
    slow_lin: f32,
    /// Leaky count of samples the energy detector has held.
    energy_run: u32,
    /// The energy detector held too long and is let go (echo-path change).
    energy_released: bool,
    k: Limits,
}

impl EchoCanceller {
    /// Build a canceller; allocates `3 × 8 × tail_ms` floats.
    ///
    /// # Errors
    /// [`EchoConfigError`] for a tail, step or threshold out of range.
    pub fn new(cfg: EchoConfig) -> Result<Self, EchoConfigError> {
        if !(1..=128).contains(&cfg.tail_ms) {
            return Err(EchoConfigError::Tail(cfg.tail_ms));
        }
        if !(cfg.step > 0.0 && cfg.step < 2.0) {
            return Err(EchoConfigError::Step(cfg.step));
        }
        if !(cfg.dtd_threshold > 0.0 && cfg.dtd_threshold.is_finite()) {
            return Err(EchoConfigError::DtdThreshold(cfg.dtd_threshold));
        }
        let taps = cfg.tail_ms as usize * SAMPLES_PER_MS;
        let mut ec = EchoCanceller {
            cfg,
            taps,
            coeffs: vec![0.0; taps].into_boxed_slice(),
            hist: vec![0.0; 2 * taps].into_boxed_slice(),
            pos: 0,
            far_energy: 0.0,
            block_max: vec![0; cfg.tail_ms as usize + 1].into_boxed_slice(),
            block_idx: 0,
            cur_max: 0,
            last_block_max: 0,
            cur_len: 0,
            blocks_max: 0,
            dt_hangover: 0,
            geigel_hangover: 0,
            p_near: 0.0,
            p_lin: 0.0,
            p_out: 0.0,
            erle_samples: 0,
            noise_floor: 0.0,
            rng: 0x2545_f491,
            nlp_active: false,
            short_near: 0.0,
            short_err: 0.0,
            energy_run: 0,
            energy_released: false,
            slow_near: 0.0,
            slow_lin: 0.0,
            k: Limits::new(),
        };
        ec.reset();
        Ok(ec)
    }

    /// The configuration in use.
    pub fn config(&self) -> &EchoConfig {
        &self.cfg
    }

    /// Number of filter taps (8 per millisecond of tail).
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// Forget everything learnt: coefficients, history, detectors and estimates. No allocation.
    pub fn reset(&mut self) {
        self.coeffs.fill(0.0);
        self.hist.fill(0.0);
        self.pos = 0;
        self.far_energy = 0.0;
        self.block_max.fill(0);
        self.block_idx = 0;
        self.last_block_max = 0;
        self.cur_max = 0;
        self.cur_len = 0;
        self.blocks_max = 0;
        self.dt_hangover = 0;
        self.geigel_hangover = 0;
        self.p_near = 0.0;
        self.p_lin = 0.0;
        self.p_out = 0.0;
        self.erle_samples = 0;
        self.noise_floor = 0.0;
        self.rng = 0x2545_f491;
        self.nlp_active = false;
        self.short_near = 0.0;
        self.short_err = 0.0;
        self.energy_run = 0;
        self.energy_released = false;
        self.slow_near = 0.0;
        self.slow_lin = 0.0;
    }

    /// Turn the non-linear processor on or off without losing what was learnt.
    pub fn set_nlp(&mut self, on: bool) {
        self.cfg.nlp = on;
    }

    /// Cancel the echo of `far` from `near` for one sample and return the cleaned near signal.
    ///
    /// # Real-time
    /// No allocation; about `2 × taps` multiply-adds plus `tail_ms / 8` comparisons.
    pub fn process(&mut self, far: i16, near: i16) -> i16 {
        let taps = self.taps;
        let x = f32::from(far);

        // Push far into the doubled history (newest at hist[pos]).
        let old = self.hist[self.pos + taps - 1];
        self.pos = if self.pos == 0 { taps - 1 } else { self.pos - 1 };
        self.hist[self.pos] = x;
        self.hist[self.pos + taps] = x;
        self.far_energy += f64::from(x) * f64::from(x) - f64::from(old) * f64::from(old);
        if self.far_energy < 0.0 {
            self.far_energy = 0.0;
        }
        self.track_far_max(far.unsigned_abs());

        let window = &self.hist[self.pos..self.pos + taps];
        let y = dot(&self.coeffs, window);
        let d = f32::from(near);
        let e = d - y;

        let far_active = self.far_energy > FAR_ACTIVE_POWER * taps as f64;
        let pe = e * e;
        self.short_near += (d * d - self.short_near) * SHORT_ALPHA;
        self.short_err += (pe - self.short_err) * SHORT_ALPHA;

        // Double talk: Geigel, the near end louder than any echo of the far end over the tail
        // could be, or (once converged) a residual far above what the filter leaves.
        let far_max = f32::from(self.blocks_max.max(self.cur_max));
        let thr = self.cfg.dtd_threshold;
        let geigel = d.abs() > thr * far_max;
        // Checked per sample, without hangover: they hold exactly while they are true.
        let too_loud = f64::from(self.short_near)
            > f64::from(thr * thr) * self.far_energy / taps as f64 + FAR_ACTIVE_POWER;
        let far_quiet_now = self.cur_max.max(self.last_block_max) < FAR_ACTIVE_PEAK;
        // Compared as power ratios (no logarithms on the per-sample path).
        let energy = far_active
            && self.erle_samples >= 8000
            && self.slow_lin > 0.0
            && self.slow_near >= self.slow_lin * self.k.energy_min_erle
            && self.short_err
                > self.short_near
                    * (self.k.energy_margin * self.slow_lin / self.slow_near).min(0.5);
        // Leaky hold counter: +1 per holding sample, −3 per far-active sample with a normal
        // residual. Reaching 2 s releases the detector (echo-path change) until the counter
        // has drained to 0; the slow reference restarts at 0 dB, so it stays quiet until the
        // filter has converged on the new path.
        if energy {
            self.energy_run = (self.energy_run + 1).min(ENERGY_DT_MAX_RUN);
            if self.energy_run == ENERGY_DT_MAX_RUN && !self.energy_released {
                // Forget the old path's ERLE: the detector re-arms only after reconverging.
                self.energy_released = true;
                self.slow_lin = self.slow_near;
            }
        } else if far_active {
            self.energy_run = self.energy_run.saturating_sub(3);
            if self.energy_run == 0 {
                self.energy_released = false;
            }
        }
        let energy = energy && !self.energy_released;
        if geigel || energy {
            self.dt_hangover = DT_HANGOVER;
        } else if self.dt_hangover > 0 {
            self.dt_hangover -= 1;
        }
        if geigel {
            self.geigel_hangover = DT_HANGOVER;
        } else if self.geigel_hangover > 0 {
            self.geigel_hangover -= 1;
        }
        let double_talk = self.dt_hangover > 0;
        let adapt = far_active && !double_talk && !too_loud && !far_quiet_now;

        if adapt {
            let g = (f64::from(self.cfg.step) / (self.far_energy + DELTA_PER_TAP * taps as f64))
                as f32
                * e;
            axpy(&mut self.coeffs, g, &self.hist[self.pos..self.pos + taps]);
        }

        // Background noise: follow the short-term residual power down quickly, up slowly.
        let se = self.short_err;
        if se < self.noise_floor {
            self.noise_floor += (se - self.noise_floor) * (1.0 / 256.0);
        } else {
            self.noise_floor += (se - self.noise_floor) * (1.0 / 16_384.0);
        }

        let converged = self.erle_samples >= ERLE_MIN_SAMPLES
            && self.p_near > 0.0
            && self.p_near >= self.p_lin * self.k.nlp_min_erle;
        // The NLP acts on what looks like residual echo: the far end talks, Geigel sees no near
        // talker and the residual is well below the near input. It deliberately ignores the
        // energy detector, which fires exactly when the residual echo is largest.
        self.nlp_active = self.cfg.nlp
            && far_active
            && self.geigel_hangover == 0
            && converged
            && self.short_err < self.short_near * NLP_MAX_RESIDUAL;
        let out = if self.nlp_active { self.comfort_noise() } else { e };

        if adapt {
            self.p_near += (d * d - self.p_near) * ERLE_ALPHA;
            self.p_lin += (pe - self.p_lin) * ERLE_ALPHA;
            self.p_out += (out * out - self.p_out) * ERLE_ALPHA;
            self.erle_samples = self.erle_samples.saturating_add(1);
            self.slow_near += (d * d - self.slow_near) * SLOW_ALPHA;
            self.slow_lin += (pe - self.slow_lin) * SLOW_ALPHA;
        }

        out.round().clamp(-32768.0, 32767.0) as i16
    }

    /// [`process`](Self::process) over a block: `out[i] = process(far[i], near[i])`.
    ///
    /// # Panics
    /// If the three slices differ in length.
    pub fn process_block(&mut self, far: &[i16], near: &[i16], out: &mut [i16]) {
        assert!(
            far.len() == near.len() && near.len() == out.len(),
            "echo canceller block lengths differ"
        );
        for ((&f, &n), o) in far.iter().zip(near).zip(out.iter_mut()) {
            *o = self.process(f, n);
        }
    }

    /// Running ERLE estimate in dB: near-input power against output power (after the NLP when
    /// it is on), both smoothed over ≈ 250 ms of far-end activity without double talk.
    /// 0 until enough such samples have been seen; capped at 100 dB.
    pub fn erle_db(&self) -> f32 {
        self.ratio_db(self.p_out)
    }

    /// Like [`erle_db`](Self::erle_db) but for the linear filter alone (before the NLP).
    pub fn linear_erle_db(&self) -> f32 {
        self.ratio_db(self.p_lin)
    }

    /// Whether the double-talk detector is holding adaptation frozen.
    pub fn double_talk(&self) -> bool {
        self.dt_hangover > 0
    }

    /// Whether the NLP replaced the last output sample with comfort noise.
    pub fn nlp_active(&self) -> bool {
        self.nlp_active
    }

    /// The filter coefficients (`h[k]` applies to the far sample `k` samples ago).
    pub fn coefficients(&self) -> &[f32] {
        &self.coeffs
    }

    fn ratio_db(&self, p: f32) -> f32 {
        if self.erle_samples < ERLE_MIN_SAMPLES || self.p_near <= 0.0 {
            return 0.0;
        }
        if p <= 0.0 {
            return ERLE_CAP_DB;
        }
        (10.0 * (self.p_near / p).log10()).min(ERLE_CAP_DB)
    }

    fn track_far_max(&mut self, a: u16) {
        self.cur_max = self.cur_max.max(a);
        self.cur_len += 1;
        if self.cur_len == SAMPLES_PER_MS {
            self.block_max[self.block_idx] = self.cur_max;
            self.last_block_max = self.cur_max;
            self.block_idx = (self.block_idx + 1) % self.block_max.len();
            self.blocks_max = self.block_max.iter().copied().max().unwrap_or(0);
            self.cur_max = 0;
            self.cur_len = 0;
        }
    }

    /// One comfort-noise sample: uniform white noise with the power of the background estimate,
    /// capped at [`COMFORT_NOISE_MAX_DBM0`].
    fn comfort_noise(&mut self) -> f32 {
        let rms = self.noise_floor.sqrt().min(self.k.comfort_noise_max_rms);
        // xorshift32
        let mut s = self.rng;
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        self.rng = s;
        // Uniform in [-1, 1) has rms 1/√3.
        let u = (s >> 8) as f32 * (2.0 / 16_777_216.0) - 1.0;
        u * rms * 3f32.sqrt()
    }
}

fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// Thresholds turned from dB into linear factors once, at construction.
#[derive(Debug, Clone, Copy)]
struct Limits {
    nlp_min_erle: f32,
    energy_min_erle: f32,
    energy_margin: f32,
    comfort_noise_max_rms: f32,
}

impl Limits {
    fn new() -> Self {
        Limits {
            nlp_min_erle: db_to_power(NLP_MIN_ERLE_DB),
            energy_min_erle: db_to_power(ENERGY_DT_MIN_ERLE_DB),
            energy_margin: db_to_power(ENERGY_DT_MARGIN_DB),
            comfort_noise_max_rms: DBM0_RMS * 10f32.powf(COMFORT_NOISE_MAX_DBM0 / 20.0),
        }
    }
}

/// Dot product with eight independent accumulators so it vectorises without fast-math.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `a += g · b`, element-wise.
#[inline]
fn axpy(a: &mut [f32], g: f32, b: &[f32]) {
    for (h, &x) in a.iter_mut().zip(b) {
        *h += g * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_config() {
        let bad = |c: EchoConfig| EchoCanceller::new(c).err();
        let d = EchoConfig::default();
        assert_eq!(bad(EchoConfig { tail_ms: 0, ..d }), Some(EchoConfigError::Tail(0)));
        assert_eq!(bad(EchoConfig { tail_ms: 129, ..d }), Some(EchoConfigError::Tail(129)));
        assert_eq!(bad(EchoConfig { step: 0.0, ..d }), Some(EchoConfigError::Step(0.0)));
        assert_eq!(bad(EchoConfig { step: 2.0, ..d }), Some(EchoConfigError::Step(2.0)));
        assert!(bad(EchoConfig { dtd_threshold: f32::NAN, ..d }).is_some());
        assert!(bad(d).is_none());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 3.0 - i as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn window_is_newest_first_and_energy_exact() {
        let mut ec = EchoCanceller::new(EchoConfig { tail_ms: 1, ..Default::default() }).unwrap();
        for s in 1..=20i16 {
            ec.process(s, 0);
        }
        let w = &ec.hist[ec.pos..ec.pos + ec.taps];
        let want: Vec<f32> = (13..=20i16).rev().map(f32::from).collect();
        assert_eq!(w, &want[..]);
        let e: f64 = (13..=20).map(|v: i32| f64::from(v * v)).sum();
        assert_eq!(ec.far_energy, e);
    }

    #[test]
    fn silence_in_silence_out() {
        let mut ec = EchoCanceller::new(EchoConfig::default()).unwrap();
        for _ in 0..1000 {
            assert_eq!(ec.process(0, 0), 0);
        }
        assert_eq!(ec.erle_db(), 0.0);
    }
}
