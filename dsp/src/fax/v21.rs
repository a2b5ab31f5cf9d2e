//! ITU-T V.21 channel 2 (the T.30 control channel): 300 bit/s binary FSK, mark ("1") 1650 Hz,
//! space ("0") 1850 Hz, used synchronously (HDLC bits, no start/stop bits).
//!
//! - [`V21Tx`] is a phase-continuous FSK modulator that pulls bits from a closure (normally
//!   [`super::hdlc::HdlcTx::next_bit`]) and stops the carrier when the closure runs dry.
//! - [`V21Rx`] mixes the line down around 1750 Hz, low-pass filters it, discriminates the
//!   frequency from the phase advance over 1 ms, and recovers the bit clock with a digital PLL
//!   that re-times on every transition, emitting one bit per bit period while the carrier
//!   detector (in-band power, on above -43 dBm0, off below -48 dBm0) is on.
//!
//! Unlike the asynchronous caller ID modem in [`crate::callerid`], there is no start-bit
//! framing: bit timing must be tracked continuously across a whole burst of flags and frames.
//! Both sides are sans-IO and do not allocate.

use crate::tone::DBM0_PEAK;

/// Sample rate.
const RATE: u32 = 8000;
/// Bit rate.
pub const BIT_RATE: u32 = 300;
/// Mark (binary 1) frequency in Hz.
pub const MARK_HZ: f32 = 1650.0;
/// Space (binary 0) frequency in Hz.
pub const SPACE_HZ: f32 = 1850.0;
/// Default transmit level (T.30 signals are usually sent at -10 to -15 dBm0).
pub const DEFAULT_LEVEL_DBM0: f32 = -13.0;
/// Carrier detect turns on above this in-band level.
pub const CARRIER_ON_DBM0: f32 = -43.0;
/// Carrier detect turns off below this in-band level.
pub const CARRIER_OFF_DBM0: f32 = -48.0;

/// V.21 channel 2 modulator.
#[derive(Debug, Clone)]
pub struct V21Tx {
    amp: f32,
    /// Carrier phase in cycles, 0..1.
    phase: f64,
    mark_step: f64,
    space_step: f64,
    /// Bit clock: +BIT_RATE per sample, a new bit at RATE.
    clock: u32,
    bit: Option<u8>,
}

impl V21Tx {
    /// A modulator at `level_dbm0` (use [`DEFAULT_LEVEL_DBM0`]).
    pub fn new(level_dbm0: f32) -> Self {
        let amp = DBM0_PEAK * 10f32.powf(level_dbm0 / 20.0);
        V21Tx {
            amp,
            phase: 0.0,
            mark_step: f64::from(MARK_HZ) / f64::from(RATE),
            space_step: f64::from(SPACE_HZ) / f64::from(RATE),
            clock: 0,
            bit: None,
        }
    }

    /// Shifts both tones by `hz` (a line frequency offset, to test receivers).
    pub fn with_offset_hz(mut self, hz: f32) -> Self {
        self.mark_step = f64::from(MARK_HZ + hz) / f64::from(RATE);
        self.space_step = f64::from(SPACE_HZ + hz) / f64::from(RATE);
        self
    }

    /// Whether a bit is being sent (the carrier is on).
    pub fn is_active(&self) -> bool {
        self.bit.is_some()
    }

    /// Fills `out` with FSK carrying the bits returned by `next_bit`. When `next_bit` returns
    /// `None` at a bit boundary the carrier stops; the return value is the number of samples
    /// written (less than `out.len()` only when the carrier stopped; the rest is untouched).
    /// A later call starts a new burst.
    ///
    /// # Real-time
    /// Constant work per sample, no allocation.
    pub fn fill(&mut self, out: &mut [i16], next_bit: &mut dyn FnMut() -> Option<u8>) -> usize {
        for (i, s) in out.iter_mut().enumerate() {
            let bit = match self.bit {
                Some(b) => b,
                None => match next_bit() {
                    Some(b) => {
                        self.bit = Some(b);
                        self.clock = 0;
                        b
                    }
                    None => return i,
                },
            };
            let step = if bit != 0 { self.mark_step } else { self.space_step };
            *s = (self.amp * (std::f64::consts::TAU * self.phase).sin() as f32).round() as i16;
            self.phase = (self.phase + step).fract();
            self.clock += BIT_RATE;
            if self.clock >= RATE {
                self.clock -= RATE;
                self.bit = next_bit();
            }
        }
        out.len()
    }
}

/// Taps of the complex low-pass after mixing down (Blackman window: stop band from about
/// 630 Hz off centre, so CNG at 1100 Hz does not reach the carrier detector).
const LPF_TAPS: usize = 97;
/// LPF cut-off (Hz): the two tones sit at ±100 Hz around the mixing frequency.
const LPF_CUTOFF_HZ: f64 = 400.0;
/// The low-pass output is computed every `DECIM` samples (2 kHz).
const DECIM: usize = 4;
/// Rate after decimation.
const RATE2: u32 = RATE / DECIM as u32;
/// Mixing frequency, halfway between mark and space.
const CENTER_HZ: f64 = 1750.0;
/// Local oscillator period: 1750/8000 = 7/32.
const LO_LEN: usize = 32;
/// Discriminator lag in decimated samples (phase advance of ±100 Hz over 1 ms = ±36 degrees).
const DISC_LAG: usize = 2;
/// Smoothing of the discriminator output (decimated samples).
const DISC_SMOOTH: usize = 2;
/// Decimated samples (10 ms) the power must stay past a threshold before the carrier state
/// changes.
const CD_HOLD: u32 = 20;

fn dbm0_to_power(dbm0: f32) -> f32 {
    // Mean square of a sine at this level; the in-band estimator below reports the same.
    (DBM0_PEAK * DBM0_PEAK / 2.0) * 10f32.powf(dbm0 / 10.0)
}

/// V.21 channel 2 synchronous demodulator with carrier detect and bit-clock recovery.
#[derive(Debug, Clone)]
pub struct V21Rx {
    lo: [(f32, f32); LO_LEN],
    lo_pos: usize,
    taps: [f32; LPF_TAPS],
    hist: [(f32, f32); LPF_TAPS],
    hist_pos: usize,
    lagged: [(f32, f32); DISC_LAG],
    lag_pos: usize,
    smooth: [f32; DISC_SMOOTH],
    smooth_pos: usize,
    power: f32,
    on_level: f32,
    off_level: f32,
    carrier: bool,
    hold: u32,
    last_bit: u8,
    /// Bit clock phase: 0..RATE2, bit boundary at 0, sampling point at RATE2/2.
    clock: u32,
    decim: usize,
    bits_out: u64,
}

impl Default for V21Rx {
    fn default() -> Self {
        Self::new()
    }
}

impl V21Rx {
    /// A demodulator with the default carrier thresholds.
    pub fn new() -> Self {
        let lo = std::array::from_fn(|n| {
            let w = std::f64::consts::TAU * CENTER_HZ * n as f64 / f64::from(RATE);
            (w.cos() as f32, -(w.sin() as f32))
        });
        // Blackman-windowed sinc, unity gain at DC.
        let mid = (LPF_TAPS - 1) as f64 / 2.0;
        let fc = LPF_CUTOFF_HZ / f64::from(RATE);
        let mut taps = [0f32; LPF_TAPS];
        let mut sum = 0.0;
        for (n, t) in taps.iter_mut().enumerate() {
            let x = n as f64 - mid;
            let sinc = if x == 0.0 {
                2.0 * fc
            } else {
                (std::f64::consts::TAU * fc * x).sin() / (std::f64::consts::PI * x)
            };
            let a = std::f64::consts::TAU * n as f64 / (LPF_TAPS - 1) as f64;
            let w = 0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos();
            *t = (sinc * w) as f32;
            sum += sinc * w;
        }
        for t in taps.iter_mut() {
            *t /= sum as f32;
        }
        V21Rx {
            lo,
            lo_pos: 0,
            taps,
            hist: [(0.0, 0.0); LPF_TAPS],
            hist_pos: 0,
            lagged: [(0.0, 0.0); DISC_LAG],
            lag_pos: 0,
            smooth: [0.0; DISC_SMOOTH],
            smooth_pos: 0,
            power: 0.0,
            on_level: dbm0_to_power(CARRIER_ON_DBM0),
            off_level: dbm0_to_power(CARRIER_OFF_DBM0),
            carrier: false,
            hold: 0,
            last_bit: 1,
            clock: 0,
            decim: 0,
            bits_out: 0,
        }
    }

    /// Whether the carrier detector is on.
    pub fn carrier(&self) -> bool {
        self.carrier
    }

    /// In-band signal level estimate in dBm0.
    pub fn level_dbm0(&self) -> f32 {
        10.0 * (self.power.max(1e-3) / dbm0_to_power(0.0)).log10()
    }

    /// Bits delivered since construction.
    pub fn bits_out(&self) -> u64 {
        self.bits_out
    }

    /// Demodulates `samples`, calling `on_bit` with each recovered bit (0 or 1) while the
    /// carrier is on. Check [`V21Rx::carrier`] afterwards to see a carrier loss.
    ///
    /// # Real-time
    /// About 50 multiply-adds per sample (a 97-tap complex filter every 4th sample), no
    /// allocation.
    pub fn process(&mut self, samples: &[i16], on_bit: &mut dyn FnMut(u8)) {
        for &s in samples {
            if let Some(b) = self.step(s) {
                self.bits_out += 1;
                on_bit(b);
            }
        }
    }

    fn step(&mut self, s: i16) -> Option<u8> {
        let x = f32::from(s);
        let (c, q) = self.lo[self.lo_pos];
        self.lo_pos = (self.lo_pos + 1) % LO_LEN;
        self.hist[self.hist_pos] = (x * c, x * q);
        self.hist_pos = (self.hist_pos + 1) % LPF_TAPS;
        self.decim += 1;
        if self.decim < DECIM {
            return None;
        }
        self.decim = 0;
        // FIR: oldest sample first.
        let (mut re, mut im) = (0f32, 0f32);
        for (k, t) in self.taps.iter().enumerate() {
            let (a, b) = self.hist[(self.hist_pos + k) % LPF_TAPS];
            re += a * t;
            im += b * t;
        }
        // |z|^2 = A^2/4 for a sine of peak A, whose mean square is A^2/2.
        let p = 2.0 * (re * re + im * im);
        self.power += (p - self.power) * (1.0 / 8.0);

        // Frequency discriminator: Im(z[n] * conj(z[n - lag])) normalised.
        let (pr, pi) = self.lagged[self.lag_pos];
        self.lagged[self.lag_pos] = (re, im);
        self.lag_pos = (self.lag_pos + 1) % DISC_LAG;
        let cross = im * pr - re * pi;
        let norm = (re * re + im * im).sqrt() * (pr * pr + pi * pi).sqrt() + 1e-6;
        self.smooth[self.smooth_pos] = cross / norm;
        self.smooth_pos = (self.smooth_pos + 1) % DISC_SMOOTH;
        let d: f32 = self.smooth.iter().sum();
        // Mark (1650 Hz) is below the centre: negative rotation.
        let bit = u8::from(d < 0.0);

        // Carrier detect with hysteresis and a hold time.
        let past =
            if self.carrier { self.power < self.off_level } else { self.power > self.on_level };
        if past {
            self.hold += 1;
            if self.hold >= CD_HOLD {
                self.hold = 0;
                self.carrier = !self.carrier;
                if self.carrier {
                    self.clock = RATE2 / 2;
                    self.last_bit = bit;
                }
            }
        } else {
            self.hold = 0;
        }
        if !self.carrier {
            return None;
        }

        // DPLL: a transition marks a bit boundary (clock 0); pull the clock half-way there.
        if bit != self.last_bit {
            let c = self.clock as i32;
            let err = if self.clock < RATE2 / 2 { c } else { c - RATE2 as i32 };
            self.clock = (c - err / 2).rem_euclid(RATE2 as i32) as u32;
        }
        self.last_bit = bit;
        let before = self.clock;
        self.clock = (self.clock + BIT_RATE) % RATE2;
        // Sample at the middle of the bit.
        if before < RATE2 / 2 && self.clock >= RATE2 / 2 {
            return Some(bit);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::hdlc::{HdlcEvent, HdlcRx, HdlcTx};

    /// xorshift64* + Box-Muller Gaussian noise, deterministic.
    struct Noise(u64);
    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn gauss(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    fn modulate(frames: &[Vec<u8>], tx: V21Tx) -> Vec<i16> {
        let mut h = HdlcTx::new();
        h.push_flags(38).unwrap();
        for f in frames {
            h.push_frame(f).unwrap();
        }
        h.push_flags(2).unwrap();
        let mut tx = tx;
        let mut out = vec![0i16; 8000 * 3];
        let n = tx.fill(&mut out, &mut || h.next_bit());
        assert!(n < out.len());
        out.truncate(n);
        // Silence before and after.
        let mut all = vec![0i16; 400];
        all.extend(out);
        all.extend(vec![0i16; 800]);
        all
    }

    fn demodulate(samples: &[i16]) -> (Vec<Vec<u8>>, usize) {
        let mut rx = V21Rx::new();
        let mut hdlc = HdlcRx::new();
        let mut frames = Vec::new();
        let mut bad = 0;
        for chunk in samples.chunks(160) {
            let was = rx.carrier();
            rx.process(chunk, &mut |b| match hdlc.push_bit(b) {
                Some(HdlcEvent::Frame(f)) => frames.push(f.to_vec()),
                Some(HdlcEvent::BadFrame { .. }) => bad += 1,
                _ => {}
            });
            if was && !rx.carrier() {
                hdlc.reset();
            }
        }
        (frames, bad)
    }

    fn test_frames() -> Vec<Vec<u8>> {
        vec![
            vec![0xFF, 0x03, 0x40, b'4', b'3', b'2', b'1', b' ', b' '],
            vec![0xFF, 0x13, 0x80, 0x00, 0xCE, 0x78],
        ]
    }

    fn channel(samples: &[i16], gain_db: f64, snr_db: f64, seed: u64) -> Vec<i16> {
        let g = 10f64.powf(gain_db / 20.0);
        let sig_rms = (DBM0_PEAK as f64 * 10f64.powf(DEFAULT_LEVEL_DBM0 as f64 / 20.0)) * g
            / std::f64::consts::SQRT_2;
        let noise_rms = sig_rms / 10f64.powf(snr_db / 20.0);
        let mut n = Noise(seed);
        samples
            .iter()
            .map(|&s| {
                (f64::from(s) * g + n.gauss() * noise_rms).round().clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    #[test]
    fn clean_round_trip() {
        let frames = test_frames();
        let audio = modulate(&frames, V21Tx::new(DEFAULT_LEVEL_DBM0));
        let (got, bad) = demodulate(&audio);
        assert_eq!(got, frames);
        assert_eq!(bad, 0);
    }

    #[test]
    fn tx_is_phase_continuous_and_at_level() {
        let mut h = HdlcTx::new();
        h.push_flags(40).unwrap();
        let mut tx = V21Tx::new(-10.0);
        let mut out = vec![0i16; 8000];
        assert_eq!(tx.fill(&mut out, &mut || h.next_bit()), 8000);
        let peak = DBM0_PEAK * 10f32.powf(-0.5);
        let max = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((f32::from(max) - peak).abs() < peak * 0.01, "{max} vs {peak}");
        // No jumps larger than the steepest slope of a 1850 Hz sine.
        let slope = peak * (std::f32::consts::TAU * 1850.0 / 8000.0) * 1.05;
        for w in out.windows(2) {
            assert!((f32::from(w[1]) - f32::from(w[0])).abs() <= slope);
        }
        // Exactly 26 2/3 samples per bit: 8000 samples = 300 bits.
        assert_eq!(h.bits_sent(), 300 + 1);
    }

    #[test]
    fn noise_gain_and_offset() {
        let frames = test_frames();
        for (i, &(gain, snr, offset)) in [
            (0.0, 20.0, 0.0),
            (-25.0, 15.0, 0.0),
            (6.0, 12.0, 0.0),
            (-10.0, 15.0, 15.0),
            (-10.0, 15.0, -15.0),
            (-20.0, 10.0, 7.0),
        ]
        .iter()
        .enumerate()
        {
            for seed in 1..=3u64 {
                let audio =
                    modulate(&frames, V21Tx::new(DEFAULT_LEVEL_DBM0).with_offset_hz(offset));
                let audio = channel(&audio, gain, snr, seed * 7919 + i as u64);
                let (got, _) = demodulate(&audio);
                assert_eq!(got, frames, "gain {gain} snr {snr} offset {offset} seed {seed}");
            }
        }
    }

    #[test]
    fn no_carrier_on_quiet_noise_or_other_tones() {
        // -55 dBm0 noise: below carrier detect.
        let mut n = Noise(42);
        let rms = DBM0_PEAK as f64 / std::f64::consts::SQRT_2 * 10f64.powf(-55.0 / 20.0);
        let noise: Vec<i16> = (0..16000).map(|_| (n.gauss() * rms) as i16).collect();
        let mut rx = V21Rx::new();
        let mut bits = 0;
        rx.process(&noise, &mut |_| bits += 1);
        assert!(!rx.carrier());
        assert_eq!(bits, 0);
        // A loud 1100 Hz CNG tone is out of band.
        let cng: Vec<i16> = (0..8000)
            .map(|i| (10000.0 * (std::f64::consts::TAU * 1100.0 * i as f64 / 8000.0).sin()) as i16)
            .collect();
        let mut rx = V21Rx::new();
        rx.process(&cng, &mut |_| {});
        assert!(!rx.carrier(), "level {}", rx.level_dbm0());
    }

    #[test]
    fn carrier_follows_signal() {
        let audio = modulate(&test_frames(), V21Tx::new(DEFAULT_LEVEL_DBM0));
        let mut rx = V21Rx::new();
        rx.process(&audio[..400], &mut |_| {});
        assert!(!rx.carrier());
        rx.process(&audio[400..1000], &mut |_| {});
        assert!(rx.carrier());
        rx.process(&audio[audio.len() - 400..], &mut |_| {});
        assert!(!rx.carrier());
    }

    #[test]
    fn bit_count_matches_duration() {
        let mut h = HdlcTx::new();
        h.push_flags(100).unwrap();
        let mut tx = V21Tx::new(DEFAULT_LEVEL_DBM0);
        let mut out = vec![0i16; 8000 * 3];
        let n = tx.fill(&mut out, &mut || h.next_bit());
        let mut rx = V21Rx::new();
        let mut bits = Vec::new();
        rx.process(&out[..n], &mut |b| bits.push(b));
        // 800 bits sent; carrier detect takes ~10 ms (3 bits) plus filter delay.
        assert!(bits.len() >= 780 && bits.len() <= 805, "{}", bits.len());
        // After sync every 8 bits are a flag.
        let s: String = bits.iter().map(|b| char::from(b'0' + b)).collect();
        assert!(s.contains(&"01111110".repeat(90)));
    }
}
