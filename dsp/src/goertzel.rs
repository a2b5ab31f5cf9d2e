//! A single-frequency Goertzel filter, and block power in dBm0.
//!
//! This is the small general-purpose filter that the simulator, the call-progress and busy-tone
//! detectors and the tests use to ask "how much energy is there at f Hz in this block?". The DTMF
//! detector in [`crate::dtmf`] does not use it: it runs its eight filters in one vectorised bank.
//!
//! The filter evaluates the DTFT at exactly `freq_hz` (not at the nearest DFT bin), so a tone at
//! that frequency is measured without scalloping loss. Levels are referred to the A-law
//! digital milliwatt ([`crate::tone::DBM0_PEAK`]), as the tone generator's are.

use crate::tone::DBM0_PEAK;

/// Samples per second.
const RATE: f32 = 8000.0;

/// Mean square (Σx²/N) of a 0 dBm0 sine in 16-bit linear units.
const DBM0_MEAN_SQUARE: f64 = (DBM0_PEAK as f64) * (DBM0_PEAK as f64) / 2.0;

/// Level given for silence (an all-zero block or filter), in dBm0.
pub const SILENCE_DBM0: f32 = -200.0;

/// A Goertzel filter tuned to one frequency, fed one sample at a time.
///
/// Push up to `block_len` samples, read [`Goertzel::power`] or [`Goertzel::level_dbm0`], then
/// [`Goertzel::reset`] for the next block. The filter itself does not stop at `block_len`; the
/// length is kept so that callers can ask [`Goertzel::is_full`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goertzel {
    freq_hz: f32,
    /// 2·cos(ω).
    coeff: f32,
    cos: f32,
    sin: f32,
    s1: f32,
    s2: f32,
    count: usize,
    block_len: usize,
}

impl Goertzel {
    /// A filter for `freq_hz` (0 < f < 4000 is meaningful) over blocks of `block_len` samples.
    pub fn new(freq_hz: f32, block_len: usize) -> Self {
        let w = std::f64::consts::TAU * f64::from(freq_hz) / f64::from(RATE);
        Goertzel {
            freq_hz,
            coeff: (2.0 * w.cos()) as f32,
            cos: w.cos() as f32,
            sin: w.sin() as f32,
            s1: 0.0,
            s2: 0.0,
            count: 0,
            block_len,
        }
    }

    /// The frequency the filter is tuned to, in Hz.
    pub fn freq_hz(&self) -> f32 {
        self.freq_hz
    }

    /// The block length given to [`Goertzel::new`].
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// Samples pushed since the last reset.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether `block_len` samples have been pushed since the last reset.
    pub fn is_full(&self) -> bool {
        self.count >= self.block_len
    }

    /// Feed one sample (16-bit linear scale, as f32).
    ///
    /// # Real-time
    /// One multiply and two adds.
    #[inline]
    pub fn push(&mut self, sample: f32) {
        let s = sample + self.coeff * self.s1 - self.s2;
        self.s2 = self.s1;
        self.s1 = s;
        self.count += 1;
    }

    /// Feed a slice of 16-bit samples.
    ///
    /// # Real-time
    /// Work proportional to `samples.len()`, no allocation.
    pub fn push_block(&mut self, samples: &[i16]) {
        for &x in samples {
            self.push(f32::from(x));
        }
    }

    /// Squared magnitude |X(f)|² of the samples pushed since the last reset.
    ///
    /// A sine of peak amplitude A at the filter frequency over N samples gives about (A·N/2)².
    pub fn power(&self) -> f32 {
        self.s1 * self.s1 + self.s2 * self.s2 - self.coeff * self.s1 * self.s2
    }

    /// The complex DTFT value at the filter frequency, as (re, im), up to a phase factor that
    /// depends only on the number of samples pushed. Its phase tracks the tone's phase.
    pub fn value(&self) -> (f32, f32) {
        (self.s1 - self.cos * self.s2, self.sin * self.s2)
    }

    /// Level in dBm0 of a sine at the filter frequency that would give the measured power over
    /// the samples pushed so far; [`SILENCE_DBM0`] if nothing was pushed or all was silence.
    pub fn level_dbm0(&self) -> f32 {
        if self.count == 0 {
            return SILENCE_DBM0;
        }
        let p = f64::from(self.power()).max(0.0);
        let amp = 2.0 * p.sqrt() / self.count as f64;
        if amp <= 0.0 {
            return SILENCE_DBM0;
        }
        (20.0 * (amp / f64::from(DBM0_PEAK)).log10()) as f32
    }

    /// Start a new block.
    pub fn reset(&mut self) {
        self.s1 = 0.0;
        self.s2 = 0.0;
        self.count = 0;
    }
}

/// Power of a block of samples (all frequencies) in dBm0: 10·log10(mean square / mean square of
/// a 0 dBm0 sine). [`SILENCE_DBM0`] for an empty or all-zero block.
///
/// # Real-time
/// Work proportional to `samples.len()`, no allocation.
pub fn block_power_dbm0(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return SILENCE_DBM0;
    }
    let sum: i64 = samples.iter().map(|&x| i64::from(x) * i64::from(x)).sum();
    if sum == 0 {
        return SILENCE_DBM0;
    }
    let ms = sum as f64 / samples.len() as f64;
    (10.0 * (ms / DBM0_MEAN_SQUARE).log10()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{ToneGen, ToneSpec};

    fn tone(freqs: [f32; 2], dbm0: f32, n: usize) -> Vec<i16> {
        let mut g = ToneGen::new(ToneSpec::continuous(freqs, dbm0).unwrap());
        let mut v = vec![0; n];
        g.fill(&mut v);
        v
    }

    #[test]
    fn measures_level_at_its_frequency() {
        let x = tone([1000.0, 0.0], -10.0, 400);
        let mut g = Goertzel::new(1000.0, 400);
        g.push_block(&x);
        assert!(g.is_full());
        assert!((g.level_dbm0() + 10.0).abs() < 0.1, "{}", g.level_dbm0());
    }

    #[test]
    fn ignores_other_frequencies() {
        let x = tone([1000.0, 0.0], -10.0, 400);
        let mut g = Goertzel::new(1400.0, 400);
        g.push_block(&x);
        assert!(g.level_dbm0() < -45.0, "{}", g.level_dbm0());
    }

    #[test]
    fn reset_starts_a_new_block() {
        let mut g = Goertzel::new(450.0, 160);
        g.push_block(&tone([450.0, 0.0], 0.0, 160));
        g.reset();
        assert_eq!(g.count(), 0);
        assert_eq!(g.power(), 0.0);
        assert_eq!(g.level_dbm0(), SILENCE_DBM0);
        g.push_block(&tone([450.0, 0.0], -20.0, 160));
        assert!((g.level_dbm0() + 20.0).abs() < 0.1);
    }

    #[test]
    fn block_power_of_a_sine_and_of_silence() {
        let x = tone([1020.0, 0.0], -10.0, 8000);
        assert!((block_power_dbm0(&x) + 10.0).abs() < 0.05);
        // Two tones at -10 dBm0 each add to -7 dBm0.
        let x = tone([697.0, 1209.0], -10.0, 8000);
        assert!((block_power_dbm0(&x) + 6.99).abs() < 0.05);
        assert_eq!(block_power_dbm0(&[0; 10]), SILENCE_DBM0);
        assert_eq!(block_power_dbm0(&[]), SILENCE_DBM0);
    }
}
