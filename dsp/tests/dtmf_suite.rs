//! DTMF receiver test suite, modelled on the classic receiver tests (Mitel/Bellcore style):
//! every key, frequency tolerance, twist, duration, interruption, dynamic range, noise and
//! talk-off. All signals are synthesised here from the Q.23 frequencies with f64 sines, so the
//! detector is not tested against the crate's own generator (except in one round trip).

use cardpbx_dsp::dtmf::{
    key_freqs, DtmfConfig, DtmfDetector, DtmfEvent, DtmfGenConfig, DtmfGenerator, BLOCK_LEN,
};
use cardpbx_dsp::tone::dbm0_to_peak;
use std::f64::consts::TAU;

const KEYS: &str = "123A456B789C*0#D";
const MS: usize = 8;

/// A small deterministic PRNG (xorshift64*), so no external crate is needed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn gauss(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
}

/// Adds a sine of `freq` Hz at `dbm0` to `buf[start..start+len]`, starting at `phase`.
fn add_sine(buf: &mut [f64], start: usize, len: usize, freq: f64, dbm0: f32, phase: f64) {
    let amp = f64::from(dbm0_to_peak(dbm0));
    for n in 0..len {
        buf[start + n] += amp * (TAU * freq * n as f64 / 8000.0 + phase).sin();
    }
}

/// Adds a DTMF burst with separately scaled frequencies and levels.
#[allow(clippy::too_many_arguments)]
fn add_digit(
    buf: &mut [f64],
    start: usize,
    len: usize,
    digit: char,
    row_scale: f64,
    col_scale: f64,
    row_dbm0: f32,
    col_dbm0: f32,
) {
    let (r, c) = key_freqs(digit).unwrap();
    add_sine(buf, start, len, f64::from(r) * row_scale, row_dbm0, 0.3);
    add_sine(buf, start, len, f64::from(c) * col_scale, col_dbm0, 1.1);
}

fn to_i16(buf: &[f64]) -> Vec<i16> {
    buf.iter().map(|&x| x.round().clamp(-32768.0, 32767.0) as i16).collect()
}

/// Runs a fresh default detector over `x` in 8-sample ticks, as the media engine does.
fn detect(x: &[i16]) -> Vec<DtmfEvent> {
    detect_with(DtmfConfig::default(), x, 8)
}

fn detect_with(cfg: DtmfConfig, x: &[i16], chunk: usize) -> Vec<DtmfEvent> {
    let mut d = DtmfDetector::new(cfg);
    let mut ev = Vec::new();
    for c in x.chunks(chunk) {
        d.process(c, |e| ev.push(e));
    }
    // Flush a digit still in progress with trailing silence.
    d.process(&[0; 6 * BLOCK_LEN], |e| ev.push(e));
    ev
}

fn started(ev: &[DtmfEvent]) -> String {
    ev.iter().filter(|e| matches!(e, DtmfEvent::Start { .. })).map(|e| e.digit()).collect()
}

/// One digit burst of `ms` at the given levels/scales after 100 ms of silence; the digits found.
fn single(digit: char, ms: usize, rs: f64, cs: f64, rl: f32, cl: f32) -> String {
    let mut buf = vec![0.0; (ms + 300) * MS];
    add_digit(&mut buf, 100 * MS + 13, ms * MS, digit, rs, cs, rl, cl);
    started(&detect(&to_i16(&buf)))
}

#[test]
fn all_sixteen_keys_once_each_with_onset_and_end() {
    let mut buf = vec![0.0; 17 * 1000 + 2000];
    let mut truth = Vec::new();
    for (i, d) in KEYS.chars().enumerate() {
        // Onsets deliberately not aligned to the detector's blocks.
        let start = 500 + i * 1000 + i * 37;
        add_digit(&mut buf, start, 50 * MS, d, 1.0, 1.0, -10.0, -10.0);
        truth.push((d, start as u64, (start + 50 * MS) as u64));
    }
    let ev = detect(&to_i16(&buf));
    assert_eq!(started(&ev), KEYS);
    assert_eq!(ev.len(), 32, "{ev:?}");
    for (pair, &(d, on, off)) in ev.chunks(2).zip(&truth) {
        match pair {
            [DtmfEvent::Start { digit, at_sample: s }, DtmfEvent::End { digit: d2, at_sample: e }] =>
            {
                assert_eq!((*digit, *d2), (d, d));
                assert!(s.abs_diff(on) <= 10 * MS as u64, "{d}: onset {s} vs {on}");
                assert!(e.abs_diff(off) <= 10 * MS as u64, "{d}: end {e} vs {off}");
            }
            other => panic!("unexpected events {other:?}"),
        }
    }
}

#[test]
fn onset_and_end_estimates_are_close_at_every_block_alignment() {
    for offset in (0..BLOCK_LEN).step_by(3) {
        for ms in [40, 60, 85] {
            let mut buf = vec![0.0; 4000];
            let start = 1000 + offset;
            let end = start + ms * MS;
            add_digit(&mut buf, start, ms * MS, '5', 1.0, 1.0, -10.0, -10.0);
            let ev = detect(&to_i16(&buf));
            assert_eq!(started(&ev), "5", "offset {offset}");
            let (s, e) = (ev[0].at_sample(), ev[1].at_sample());
            assert!(s.abs_diff(start as u64) <= 2 * MS as u64, "{offset}: onset {s} vs {start}");
            assert!(e.abs_diff(end as u64) <= 2 * MS as u64, "{offset}: end {e} vs {end}");
        }
    }
}

#[test]
fn chunking_does_not_change_results() {
    let mut buf = vec![0.0; 12_000];
    for (i, d) in "9#0".chars().enumerate() {
        add_digit(&mut buf, 700 + i * 3000, 70 * MS, d, 1.0, 1.0, -12.0, -10.0);
    }
    let x = to_i16(&buf);
    let whole = detect_with(DtmfConfig::default(), &x, x.len());
    assert_eq!(started(&whole), "9#0");
    for chunk in [1, 7, 8, 101, 160] {
        assert_eq!(detect_with(DtmfConfig::default(), &x, chunk), whole, "chunk {chunk}");
    }
}

#[test]
fn generator_round_trip() {
    let mut g = DtmfGenerator::new(DtmfGenConfig::default());
    g.queue("0123456789*#ABCD").unwrap();
    let mut d = DtmfDetector::new(DtmfConfig::default());
    let mut ev = Vec::new();
    let mut tick = [0i16; 8];
    let mut ticks = 0u64;
    while g.fill(&mut tick) {
        d.process(&tick, |e| ev.push(e));
        ticks += 1;
    }
    d.process(&tick, |e| ev.push(e));
    d.process(&[0; 800], |e| ev.push(e));
    // 16 digits × 120 ms = 1920 ticks.
    assert_eq!(ticks + 1, 16 * 120);
    assert_eq!(started(&ev), "0123456789*#ABCD");
    for (i, e) in ev.iter().filter(|e| matches!(e, DtmfEvent::Start { .. })).enumerate() {
        let on = (i * 120 * MS) as u64;
        assert!(e.at_sample().abs_diff(on) <= 10 * MS as u64, "{e:?}");
    }
}

#[test]
fn frequency_deviation_within_1_5_percent_accepted() {
    for d in KEYS.chars() {
        for (rs, cs) in [(1.015, 1.0), (0.985, 1.0), (1.0, 1.015), (1.0, 0.985), (1.015, 0.985)] {
            assert_eq!(single(d, 80, rs, cs, -10.0, -10.0), d.to_string(), "{d} {rs} {cs}");
        }
    }
}

#[test]
fn frequency_deviation_of_3_5_percent_rejected() {
    for d in KEYS.chars() {
        for (rs, cs) in [(1.035, 1.0), (0.965, 1.0), (1.0, 1.035), (1.0, 0.965)] {
            assert_eq!(single(d, 80, rs, cs, -10.0, -10.0), "", "{d} {rs} {cs}");
        }
    }
}

#[test]
fn twist_inside_limits_accepted() {
    for d in KEYS.chars() {
        // Row (low group) louder by 7.5 dB; column (high group) louder by 3.5 dB.
        assert_eq!(single(d, 80, 1.0, 1.0, -10.0, -17.5), d.to_string(), "{d} row louder");
        assert_eq!(single(d, 80, 1.0, 1.0, -13.5, -10.0), d.to_string(), "{d} col louder");
    }
}

#[test]
fn twist_outside_limits_rejected() {
    for d in KEYS.chars() {
        assert_eq!(single(d, 80, 1.0, 1.0, -10.0, -20.0), "", "{d} row louder by 10 dB");
        assert_eq!(single(d, 80, 1.0, 1.0, -16.0, -10.0), "", "{d} col louder by 6 dB");
    }
}

#[test]
fn forty_ms_accepted_twenty_ms_rejected_at_every_alignment() {
    for offset in (0..BLOCK_LEN).step_by(3) {
        for (ms, want) in [(40, true), (20, false)] {
            let mut buf = vec![0.0; 3000];
            add_digit(&mut buf, 800 + offset, ms * MS, '8', 1.0, 1.0, -10.0, -10.0);
            let got = started(&detect(&to_i16(&buf)));
            assert_eq!(got == "8", want, "{ms} ms at offset {offset}: {got:?}");
        }
    }
}

#[test]
fn interruption_of_10_ms_is_bridged_and_40_ms_pause_separates() {
    for offset in (0..BLOCK_LEN).step_by(17) {
        let mut buf = vec![0.0; 6000];
        let s = 500 + offset;
        add_digit(&mut buf, s, 50 * MS, '6', 1.0, 1.0, -10.0, -10.0);
        add_digit(&mut buf, s + 60 * MS, 50 * MS, '6', 1.0, 1.0, -10.0, -10.0);
        assert_eq!(started(&detect(&to_i16(&buf))), "6", "10 ms gap at {offset}");

        let mut buf = vec![0.0; 6000];
        add_digit(&mut buf, s, 50 * MS, '6', 1.0, 1.0, -10.0, -10.0);
        add_digit(&mut buf, s + 90 * MS, 50 * MS, '6', 1.0, 1.0, -10.0, -10.0);
        assert_eq!(started(&detect(&to_i16(&buf))), "66", "40 ms pause at {offset}");
    }
}

#[test]
fn dynamic_range() {
    for d in KEYS.chars() {
        assert_eq!(single(d, 60, 1.0, 1.0, -36.0, -36.0), d.to_string(), "{d} at -36 dBm0");
        assert_eq!(single(d, 60, 1.0, 1.0, -3.0, -3.0), d.to_string(), "{d} at -3 dBm0");
        assert_eq!(single(d, 60, 1.0, 1.0, -50.0, -50.0), "", "{d} at -50 dBm0");
    }
}

#[test]
fn white_noise_at_15_db_snr() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    // Both tones at -10 dBm0 make -7 dBm0; the noise is 15 dB below that.
    let noise_rms = f64::from(dbm0_to_peak(-7.0 - 15.0)) / 2f64.sqrt();
    let digits = "1472583690*#ABCD".repeat(3);
    let mut buf = vec![0.0; digits.len() * 1000 + 2000];
    for (i, d) in digits.chars().enumerate() {
        add_digit(&mut buf, 600 + i * 1000, 50 * MS, d, 1.0, 1.0, -10.0, -10.0);
    }
    for x in buf.iter_mut() {
        *x += noise_rms * rng.gauss();
    }
    assert_eq!(started(&detect(&to_i16(&buf))), digits);
}

#[test]
fn noise_alone_gives_nothing() {
    let mut rng = Rng(99);
    let rms = f64::from(dbm0_to_peak(-10.0)) / 2f64.sqrt();
    let buf: Vec<f64> = (0..8000 * 20).map(|_| rms * rng.gauss()).collect();
    assert_eq!(started(&detect(&to_i16(&buf))), "");
}

/// Formant centre frequencies (F1, F2, F3) of a few vowels, in Hz.
const VOWELS: [[f64; 3]; 6] = [
    [730.0, 1090.0, 2440.0], // a
    [270.0, 2290.0, 3010.0], // i
    [300.0, 870.0, 2240.0],  // u
    [530.0, 1840.0, 2480.0], // e
    [570.0, 840.0, 2410.0],  // o
    [660.0, 1720.0, 2410.0], // æ
];

/// Gain of a harmonic at `f` through a vowel's formants (resonance peaks with 50–90 Hz
/// bandwidth on a −6 dB/octave glottal slope).
fn formant_gain(f: f64, formants: &[f64; 3]) -> f64 {
    let mut g = 0.0;
    for (i, &fc) in formants.iter().enumerate() {
        let bw = 50.0 + 20.0 * i as f64;
        let weight = [1.0, 0.6, 0.3][i];
        g += weight / (1.0 + ((f - fc) / bw).powi(2)).sqrt();
    }
    g * (200.0 / f.max(100.0))
}

/// Synthetic voiced speech: vowels of 80–400 ms with gliding pitch between 100 and 250 Hz,
/// all harmonics below 3.6 kHz shaped by the vowel's formants, with syllable envelopes and
/// short pauses.
fn speech(rng: &mut Rng, seconds: usize) -> Vec<i16> {
    let total = seconds * 8000;
    let mut out = Vec::with_capacity(total);
    let mut phases = [0f64; 40];
    while out.len() < total {
        // Half the vowels from the table, half with random formants (F1 250–900 Hz,
        // F2 800–2300 Hz), which also puts formants right on DTMF rows and columns.
        let formants = if rng.uniform() < 0.5 {
            VOWELS[(rng.uniform() * VOWELS.len() as f64) as usize]
        } else {
            [rng.range(250.0, 900.0), rng.range(800.0, 2300.0), rng.range(2200.0, 3200.0)]
        };
        let len = (rng.range(80.0, 400.0) * 8.0) as usize;
        let f_start = rng.range(100.0, 250.0);
        let f_end = (f_start * rng.range(0.8, 1.25)).clamp(100.0, 250.0);
        let level = f64::from(dbm0_to_peak(rng.range(-25.0, -5.0) as f32));
        let mut gains = [0f64; 40];
        for n in 0..len {
            let t = n as f64 / len as f64;
            let f0 = f_start + (f_end - f_start) * t;
            if n % 40 == 0 {
                for (h, g) in gains.iter_mut().enumerate() {
                    let f = f0 * (h + 1) as f64;
                    *g = if f < 3600.0 { formant_gain(f, &formants) } else { 0.0 };
                }
            }
            let env = (TAU / 2.0 * t).sin().powf(0.5);
            let mut acc = 0.0;
            for (h, p) in phases.iter_mut().enumerate() {
                *p = (*p + TAU * f0 * (h + 1) as f64 / 8000.0) % TAU;
                acc += gains[h] * p.sin();
            }
            out.push(acc * env * level * 0.25);
        }
        let pause = (rng.range(0.0, 120.0) * 8.0) as usize;
        out.extend(std::iter::repeat_n(0.0, pause));
    }
    out.truncate(total);
    to_i16(&out)
}

/// Synthetic music: chords of 2–4 equal-tempered notes (C4..C7) with 4–6 decaying harmonics,
/// each chord 100–600 ms long with an attack/decay envelope.
fn music(rng: &mut Rng, seconds: usize) -> Vec<i16> {
    let total = seconds * 8000;
    let mut out = vec![0.0; total];
    let mut pos = 0;
    while pos < total {
        let len = ((rng.range(100.0, 600.0) * 8.0) as usize).min(total - pos);
        let notes = 2 + (rng.uniform() * 3.0) as usize;
        let harmonics = 4 + (rng.uniform() * 3.0) as usize;
        let level = f64::from(dbm0_to_peak(rng.range(-22.0, -10.0) as f32));
        for _ in 0..notes {
            let semitone = (rng.uniform() * 36.0).floor();
            let f = 261.63 * 2f64.powf(semitone / 12.0);
            let phase = rng.range(0.0, TAU);
            for h in 1..=harmonics {
                let fh = f * h as f64;
                if fh >= 3900.0 {
                    break;
                }
                let a = level / (h as f64) / notes as f64;
                for n in 0..len {
                    let t = n as f64 / 8000.0;
                    let env = (1.0 - (-t * 200.0).exp()) * (-t * 3.0).exp();
                    out[pos + n] += a * env * (TAU * fh * t + phase * h as f64).sin();
                }
            }
        }
        pos += len;
    }
    to_i16(&out)
}

#[test]
fn talk_off_synthetic_speech() {
    let mut rng = Rng(0x5EED_0001);
    let x = speech(&mut rng, 90);
    assert_eq!(started(&detect(&x)), "");
}

#[test]
fn talk_off_synthetic_music() {
    let mut rng = Rng(0x5EED_0002);
    let x = music(&mut rng, 60);
    assert_eq!(started(&detect(&x)), "");
}

#[test]
fn digits_are_found_over_speech_pauses() {
    // A digit pressed between words is still found: speech, digit, speech.
    let mut rng = Rng(7);
    let mut x = speech(&mut rng, 2);
    x.extend(std::iter::repeat_n(0, 400));
    let mut buf = vec![0.0; 1200];
    add_digit(&mut buf, 100, 70 * MS, '7', 1.0, 1.0, -8.0, -8.0);
    x.extend(to_i16(&buf));
    x.extend(speech(&mut rng, 2));
    assert_eq!(started(&detect(&x)), "7");
}

#[test]
fn reset_restarts_the_sample_count() {
    let mut buf = vec![0.0; 2000];
    add_digit(&mut buf, 200, 60 * MS, '1', 1.0, 1.0, -10.0, -10.0);
    let x = to_i16(&buf);
    let mut d = DtmfDetector::new(DtmfConfig::default());
    let mut first = Vec::new();
    d.process(&x, |e| first.push(e));
    assert_eq!(d.samples_processed(), 2000);
    d.reset();
    assert_eq!(d.samples_processed(), 0);
    assert_eq!(d.current_digit(), None);
    let mut second = Vec::new();
    d.process(&x, |e| second.push(e));
    assert_eq!(first, second);
    assert_eq!(started(&first), "1");
}

#[test]
fn frequency_check_is_what_rejects_low_group_offsets() {
    // 672.6 Hz (697 − 3.5 %) has no lower neighbour to fail the relative-peak test against,
    // and a 102-sample filter loses only 1.5 dB on it: only the phase test rejects it.
    let mut buf = vec![0.0; 3000];
    add_digit(&mut buf, 813, 80 * MS, '1', 0.965, 1.0, -10.0, -10.0);
    let x = to_i16(&buf);
    assert_eq!(started(&detect(&x)), "");
    let loose = DtmfConfig { max_freq_dev_pct: 10.0, ..DtmfConfig::default() };
    assert_eq!(started(&detect_with(loose, &x, 8)), "1");
}
