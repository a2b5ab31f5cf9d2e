//! Call-progress and fax tone detection: each plan tone found as itself and nothing else, in
//! time, at low level; no talk-off on noise and speech-like signals; chunk-size independence.

use cardpbx_dsp::faxtone::{FaxToneDetector, FaxToneEvent};
use cardpbx_dsp::progress::{ProgressDetector, ProgressEvent};
use cardpbx_dsp::tone::{dbm0_to_peak, ToneGen, ToneSpec};
use cardpbx_dsp::toneplan::{ProgressTone, TonePlan, TonePlanOverrides};

const RATE: usize = 8000;

fn render(spec: ToneSpec, n: usize) -> Vec<i16> {
    let mut g = ToneGen::new(spec);
    let mut v = vec![0; n];
    g.fill(&mut v);
    v
}

fn plan_tone(plan: &TonePlan, t: ProgressTone, secs: f32) -> Vec<i16> {
    render(plan.tone(t), (secs * RATE as f32) as usize)
}

fn progress_events(plan: &TonePlan, x: &[i16], chunk: usize) -> Vec<ProgressEvent> {
    let mut d = ProgressDetector::new(plan);
    let mut ev = Vec::new();
    for c in x.chunks(chunk) {
        d.process(c, |e| ev.push(e));
    }
    ev
}

fn detected(ev: &[ProgressEvent]) -> Vec<(ProgressTone, u64)> {
    ev.iter()
        .filter_map(|e| match *e {
            ProgressEvent::Detected { tone, at_sample } => Some((tone, at_sample)),
            _ => None,
        })
        .collect()
}

/// Small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
}

fn white_noise(seed: u64, n: usize, dbm0: f32) -> Vec<i16> {
    let mut r = Rng(seed);
    // Uniform in [-a, a] has mean square a²/3; a 0 dBm0 sine has peak²/2.
    let a = f64::from(dbm0_to_peak(dbm0)) * (1.5f64).sqrt();
    (0..n).map(|_| r.range(-a, a) as i16).collect()
}

/// Speech-like signal: voiced syllables (harmonics of a gliding 100–250 Hz pitch shaped by three
/// formants of a random vowel) separated by pauses, some unvoiced (noise) syllables.
fn speech(seed: u64, secs: f64) -> Vec<i16> {
    const VOWELS: [[f64; 3]; 6] = [
        [730.0, 1090.0, 2440.0], // a
        [270.0, 2290.0, 3010.0], // i
        [300.0, 870.0, 2240.0],  // u
        [530.0, 1840.0, 2480.0], // e
        [570.0, 840.0, 2410.0],  // o
        [440.0, 1020.0, 2240.0], // schwa-ish, F1 near the 425/450 Hz tones
    ];
    let mut r = Rng(seed);
    let n = (secs * RATE as f64) as usize;
    let mut out = Vec::with_capacity(n);
    let peak = f64::from(dbm0_to_peak(-12.0));
    let mut phase = [0f64; 40];
    while out.len() < n {
        let syl = (r.range(0.08, 0.4) * RATE as f64) as usize;
        let unvoiced = r.uniform() < 0.15;
        let v = VOWELS[(r.next() % VOWELS.len() as u64) as usize];
        let f0a = r.range(100.0, 250.0);
        let f0b = (f0a * r.range(0.8, 1.25)).clamp(90.0, 280.0);
        let level = r.range(0.3, 1.0);
        for i in 0..syl {
            let t = i as f64 / syl as f64;
            let env = (std::f64::consts::PI * t).sin().powf(0.5) * level;
            let mut s = 0.0;
            if unvoiced {
                s = r.range(-1.0, 1.0) * 0.5;
            } else {
                let f0 = f0a + (f0b - f0a) * t;
                for (k, ph) in phase.iter_mut().enumerate() {
                    let f = f0 * (k + 1) as f64;
                    if f > 3600.0 {
                        break;
                    }
                    let gain: f64 = v
                        .iter()
                        .enumerate()
                        .map(|(j, &fm)| {
                            let bw = 80.0 + 40.0 * j as f64;
                            (1.0 / (j + 1) as f64) / (1.0 + ((f - fm) / bw).powi(2))
                        })
                        .sum();
                    *ph += std::f64::consts::TAU * f / RATE as f64;
                    s += gain * ph.sin();
                }
                s *= 0.4;
            }
            out.push((s * env * peak).clamp(-32768.0, 32767.0) as i16);
        }
        let pause = (r.range(0.03, 0.5) * RATE as f64) as usize;
        out.extend(std::iter::repeat_n(0i16, pause));
    }
    out.truncate(n);
    out
}

fn mix(a: &mut [i16], b: &[i16]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = (i32::from(*x) + i32::from(*y)).clamp(-32768, 32767) as i16;
    }
}

#[test]
fn china_tones_are_detected_as_themselves_only() {
    let plan = TonePlan::china();
    for (t, secs) in [
        (ProgressTone::Dial, 3.0),
        (ProgressTone::Busy, 6.0),
        (ProgressTone::Congestion, 8.0),
        (ProgressTone::Ringback, 15.0),
    ] {
        let x = plan_tone(&plan, t, secs);
        let d = detected(&progress_events(&plan, &x, 160));
        assert!(!d.is_empty(), "{t} not detected");
        assert!(d.iter().all(|&(tone, _)| tone == t), "{t} gave {d:?}");
        assert_eq!(d.len(), 1, "{t} reported once while it lasts: {d:?}");
    }
}

#[test]
fn busy_and_congestion_within_three_periods() {
    for plan in [TonePlan::china(), TonePlan::europe(), TonePlan::itu()] {
        for t in [ProgressTone::Busy, ProgressTone::Congestion] {
            let period = u64::from(plan.tone(t).period_ms()) * 8;
            let x = plan_tone(&plan, t, 5.0);
            let d = detected(&progress_events(&plan, &x, 80));
            assert_eq!(d.first().map(|d| d.0), Some(t), "{} {t}: {d:?}", plan.name);
            assert!(d[0].1 <= 3 * period, "{} {t} at {} > {}", plan.name, d[0].1, 3 * period);
            // And not before two on/off cycles were (almost) complete.
            assert!(d[0].1 >= 2 * period - period / 4, "{} {t} too early: {}", plan.name, d[0].1);
        }
    }
}

#[test]
fn ringback_is_not_dial_and_dial_needs_a_second() {
    let plan = TonePlan::china();
    let d = ProgressDetector::new(&plan);
    assert!(d.dial_min_ms() > 1100, "{}", d.dial_min_ms());
    assert_eq!(d.freqs().collect::<Vec<_>>(), vec![450.0]);
    let x = plan_tone(&plan, ProgressTone::Ringback, 11.0);
    let det = detected(&progress_events(&plan, &x, 8));
    assert_eq!(det.len(), 1, "{det:?}");
    assert_eq!(det[0].0, ProgressTone::Ringback);
    // One on (1 s) and the off time's minimum (3.6 s).
    assert!(det[0].1 >= 4500 * 8 && det[0].1 <= 4700 * 8, "{det:?}");
    // Dial: not before 1 s, shortly after the automatic minimum.
    let x = plan_tone(&plan, ProgressTone::Dial, 2.0);
    let det = detected(&progress_events(&plan, &x, 8));
    assert_eq!(det.len(), 1);
    assert!(det[0].1 >= 8000 && det[0].1 <= u64::from(d.dial_min_ms() + 50) * 8, "{det:?}");
}

#[test]
fn europe_tones_are_detected_as_themselves_only() {
    let plan = TonePlan::europe();
    assert_eq!(ProgressDetector::new(&plan).freqs().collect::<Vec<_>>(), vec![425.0]);
    for (t, secs) in [
        (ProgressTone::Dial, 3.0),
        (ProgressTone::Busy, 6.0),
        (ProgressTone::Congestion, 4.0),
        (ProgressTone::Ringback, 12.0),
    ] {
        let x = plan_tone(&plan, t, secs);
        let d = detected(&progress_events(&plan, &x, 160));
        assert_eq!(d.iter().map(|d| d.0).collect::<Vec<_>>(), vec![t], "{t}");
    }
    // China's busy (450 Hz 350/350) is not a European tone.
    let cn = plan_tone(&TonePlan::china(), ProgressTone::Busy, 6.0);
    let d = detected(&progress_events(&plan, &cn, 160));
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn quiet_tones_at_minus_30_dbm0_are_detected() {
    let o = TonePlanOverrides { level_dbm0: Some(-30.0), ..Default::default() };
    let quiet = TonePlan::china().with_overrides(&o).unwrap();
    let plan = TonePlan::china();
    for (t, secs) in
        [(ProgressTone::Dial, 3.0), (ProgressTone::Busy, 3.0), (ProgressTone::Congestion, 5.0)]
    {
        let x = plan_tone(&quiet, t, secs);
        let d = detected(&progress_events(&plan, &x, 160));
        assert_eq!(d.iter().map(|d| d.0).collect::<Vec<_>>(), vec![t], "{t}");
    }
    // Far below the threshold: nothing.
    let o = TonePlanOverrides { level_dbm0: Some(-50.0), ..Default::default() };
    let faint = TonePlan::china().with_overrides(&o).unwrap();
    let x = plan_tone(&faint, ProgressTone::Busy, 4.0);
    assert!(detected(&progress_events(&plan, &x, 160)).is_empty());
}

#[test]
fn tone_stopped_after_busy_ends() {
    let plan = TonePlan::china();
    let mut x = plan_tone(&plan, ProgressTone::Busy, 3.0);
    x.extend(std::iter::repeat_n(0, 8000));
    let ev = progress_events(&plan, &x, 160);
    let det = ev
        .iter()
        .position(|e| matches!(e, ProgressEvent::Detected { tone: ProgressTone::Busy, .. }));
    let stop = ev.iter().position(|e| {
        matches!(e, ProgressEvent::ToneStopped { tone: ProgressTone::Busy, at_sample } if *at_sample > 24_000)
    });
    assert!(det.is_some() && stop.is_some() && det < stop, "{ev:?}");
}

#[test]
fn noise_and_speech_do_not_talk_off() {
    for plan in [TonePlan::china(), TonePlan::europe()] {
        for seed in 1..=3u64 {
            let noise = white_noise(seed, 60 * RATE, -20.0);
            let d = detected(&progress_events(&plan, &noise, 160));
            assert!(d.is_empty(), "{} noise {seed}: {d:?}", plan.name);
            let sp = speech(seed, 60.0);
            let ev = progress_events(&plan, &sp, 160);
            let d = detected(&ev);
            assert!(
                !d.iter().any(|&(t, _)| matches!(
                    t,
                    ProgressTone::Busy | ProgressTone::Congestion | ProgressTone::Dial
                )),
                "{} speech {seed}: {d:?}",
                plan.name
            );
            assert!(ev.iter().any(|e| matches!(e, ProgressEvent::VoiceDetected { .. })));
        }
    }
}

#[test]
fn busy_after_speech_is_detected() {
    let plan = TonePlan::china();
    let mut x = speech(7, 10.0);
    let start = x.len() as u64;
    x.extend(plan_tone(&plan, ProgressTone::Busy, 4.0));
    let d = detected(&progress_events(&plan, &x, 160));
    let busy: Vec<_> = d.iter().filter(|d| d.0 == ProgressTone::Busy).collect();
    assert_eq!(busy.len(), 1, "{d:?}");
    assert!(busy[0].1 > start && busy[0].1 <= start + 3 * 700 * 8, "{d:?}");
    // Busy over background noise (~20 dB below the tone) is still found.
    let mut x = plan_tone(&plan, ProgressTone::Busy, 4.0);
    let n = white_noise(9, x.len(), -30.0);
    mix(&mut x, &n);
    let d = detected(&progress_events(&plan, &x, 160));
    assert_eq!(d.iter().map(|d| d.0).collect::<Vec<_>>(), vec![ProgressTone::Busy]);
}

#[test]
fn voice_after_ringback_is_reported() {
    let plan = TonePlan::china();
    let mut x = plan_tone(&plan, ProgressTone::Ringback, 6.0);
    let answer = x.len() as u64;
    x.extend(speech(3, 3.0));
    let ev = progress_events(&plan, &x, 8);
    let ring = ev
        .iter()
        .position(|e| matches!(e, ProgressEvent::Detected { tone: ProgressTone::Ringback, .. }));
    let voice = ev.iter().position(
        |e| matches!(e, ProgressEvent::VoiceDetected { at_sample } if *at_sample > answer),
    );
    assert!(ring.is_some() && voice.is_some() && ring < voice, "{ev:?}");
    assert!(!ev
        .iter()
        .any(|e| matches!(e, ProgressEvent::VoiceDetected { at_sample } if *at_sample <= answer)));
}

#[test]
fn chunk_size_does_not_change_events() {
    let plan = TonePlan::china();
    let mut x = speech(11, 5.0);
    x.extend(plan_tone(&plan, ProgressTone::Ringback, 6.0));
    x.extend(plan_tone(&plan, ProgressTone::Busy, 3.0));
    x.extend(plan_tone(&plan, ProgressTone::Dial, 2.0));
    x.extend(std::iter::repeat_n(0, 4000));
    let a = progress_events(&plan, &x, 8);
    let b = progress_events(&plan, &x, 160);
    let c = progress_events(&plan, &x, 37);
    assert!(detected(&a).len() >= 3, "{a:?}");
    assert_eq!(a, b);
    assert_eq!(a, c);
    let mut y = fax_signal();
    y.extend(speech(5, 2.0));
    assert_eq!(fax_events(&y, 8), fax_events(&y, 160));
}

// ---- fax tones ----

fn fax_events(x: &[i16], chunk: usize) -> Vec<FaxToneEvent> {
    let mut d = FaxToneDetector::new();
    let mut ev = Vec::new();
    for c in x.chunks(chunk) {
        d.process(c, |e| ev.push(e));
    }
    ev
}

fn cng(level: f32) -> ToneSpec {
    ToneSpec::cadenced([1100.0, 0.0], level, &[500, 3000]).unwrap()
}

/// 2100 Hz for `ms` at `dbm0`, its phase reversed every `reversal_ms` (0 = never).
fn ans(ms: usize, reversal_ms: usize, dbm0: f32) -> Vec<i16> {
    let a = f64::from(dbm0_to_peak(dbm0));
    let n = ms * 8;
    (0..n)
        .map(|i| {
            let flips = if reversal_ms == 0 { 0 } else { i / (reversal_ms * 8) };
            let sign = if flips % 2 == 0 { 1.0 } else { -1.0 };
            let ph = std::f64::consts::TAU * 2100.0 * i as f64 / RATE as f64;
            (sign * a * ph.sin()) as i16
        })
        .collect()
}

fn fax_signal() -> Vec<i16> {
    let mut y = render(cng(-15.0), 7 * RATE);
    y.extend(ans(3000, 450, -12.0));
    y
}

#[test]
fn cng_is_detected_per_burst() {
    let x = render(cng(-15.0), 7 * RATE);
    let ev = fax_events(&x, 160);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(
        matches!(ev[0], FaxToneEvent::Cng { at_sample } if (3200..=3400).contains(&at_sample)),
        "{ev:?}"
    );
    assert!(matches!(ev[1], FaxToneEvent::Cng { at_sample } if at_sample > 28_000));
    // Quiet CNG still found.
    let ev = fax_events(&render(cng(-35.0), 3 * RATE), 160);
    assert_eq!(ev.len(), 1, "{ev:?}");
}

#[test]
fn ced_plain_and_with_reversals() {
    let ev = fax_events(&ans(3000, 0, -12.0), 160);
    assert_eq!(ev, vec![FaxToneEvent::Ced { at_sample: 4000, phase_reversals: false }]);
    let ev = fax_events(&ans(3000, 450, -12.0), 8);
    assert_eq!(ev, vec![FaxToneEvent::Ced { at_sample: 4000, phase_reversals: true }]);
    // A reversal inside a block (not on a block boundary) is also seen.
    let mut x = vec![0i16; 37];
    x.extend(ans(3000, 450, -20.0));
    let ev = fax_events(&x, 160);
    assert!(matches!(ev[..], [FaxToneEvent::Ced { phase_reversals: true, .. }]), "{ev:?}");
}

#[test]
fn short_bursts_are_not_fax_tones() {
    let mut x = Vec::new();
    for _ in 0..5 {
        x.extend(render(ToneSpec::continuous([1100.0, 0.0], -10.0).unwrap(), 300 * 8));
        x.extend(std::iter::repeat_n(0, 8000));
        x.extend(ans(400, 0, -10.0));
        x.extend(std::iter::repeat_n(0, 8000));
    }
    assert!(fax_events(&x, 160).is_empty());
    // Speech and noise are not fax tones either.
    let mut y = speech(21, 30.0);
    y.extend(white_noise(4, 10 * RATE, -15.0));
    assert!(fax_events(&y, 160).is_empty());
    // Neither are the call-progress tones.
    let plan = TonePlan::china();
    let z = plan_tone(&plan, ProgressTone::Dial, 3.0);
    assert!(fax_events(&z, 160).is_empty());
}
