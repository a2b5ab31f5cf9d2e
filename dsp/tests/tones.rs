//! Tone generator and tone plans: cadences to the sample, frequencies and levels measured with
//! the Goertzel filter and RMS, and plan overrides.

use cardpbx_dsp::goertzel::{block_power_dbm0, Goertzel};
use cardpbx_dsp::tone::{Segment, ToneGen, ToneSpec};
use cardpbx_dsp::toneplan::{OverrideProblem, ProgressTone, ToneDef, TonePlan, TonePlanOverrides};

fn render(spec: ToneSpec, n: usize) -> Vec<i16> {
    let mut g = ToneGen::new(spec);
    let mut v = vec![0; n];
    g.fill(&mut v);
    v
}

/// (sounding, length in samples) runs of a signal, a run of silence being ≥ 4 zero samples.
fn runs(x: &[i16]) -> Vec<(bool, usize)> {
    let mut out: Vec<(bool, usize)> = Vec::new();
    let mut i = 0;
    while i < x.len() {
        let silent = x[i..].iter().take(4).all(|&s| s == 0) && x.len() - i >= 4;
        let mut j = i;
        if silent {
            while j < x.len() && x[j] == 0 {
                j += 1;
            }
        } else {
            while j < x.len() && !x[j..].iter().take(4).all(|&s| s == 0) {
                j += 1;
            }
        }
        out.push((!silent, j - i));
        i = j;
    }
    out
}

/// Run lengths in ms, rounded: a sounding run may start or end on a zero crossing, which
/// moves its edge by a sample or two (sample-exact timing is checked separately).
fn runs_ms(x: &[i16]) -> Vec<u32> {
    runs(x).iter().map(|&(_, n)| (n as f64 / 8.0).round() as u32).collect()
}

/// On/off pattern in ms of a repeating cadence, read from one period of generated audio.
fn cadence_ms(spec: ToneSpec) -> Vec<u32> {
    let period = spec.period_ms() as usize;
    runs_ms(&render(spec, period * 8))
}

#[test]
fn cadence_is_exact_to_the_sample() {
    let spec = ToneSpec::cadenced([450.0, 0.0], -10.0, &[350, 350]).unwrap();
    let x = render(spec, 5600 * 2);
    for (k, chunk) in x.chunks(5600).enumerate() {
        let (on, off) = chunk.split_at(2800);
        assert!(off.iter().all(|&s| s == 0), "off period {k} silent");
        // The sine crosses zero now and then; it is never silent for 4 samples.
        assert_eq!(runs(on), vec![(true, 2800)], "on period {k}");
    }
}

#[test]
fn non_repeating_tone_ends_and_stays_silent() {
    let seg = Segment { ms: 20, freqs: [1000.0, 0.0], level_dbm0: -10.0 };
    let spec = ToneSpec::new(&[seg, Segment::silence(10), seg], false).unwrap();
    let mut g = ToneGen::new(spec);
    let mut x = vec![0i16; 399];
    g.fill(&mut x);
    assert!(!g.is_done(), "one sample left");
    assert_ne!(g.next_sample(), 0);
    assert!(g.is_done());
    assert!((0..100).all(|_| g.next_sample() == 0));
    x.push(1);
    assert_eq!(runs_ms(&x), vec![20, 10, 20]);
    assert!(x[160..240].iter().all(|&s| s == 0), "the gap is exact to the sample");
}

#[test]
fn continuous_tone_never_stops() {
    let spec = ToneSpec::continuous([425.0, 0.0], -10.0).unwrap();
    let x = render(spec, 8000 * 5);
    assert_eq!(runs(&x), vec![(true, 40_000)]);
    assert_eq!(spec.period_ms(), 0);
}

#[test]
fn dual_tone_has_both_frequencies_at_their_level() {
    let x = render(ToneSpec::continuous([350.0, 440.0], -13.0).unwrap(), 800);
    for f in [350.0, 440.0] {
        let mut g = Goertzel::new(f, 800);
        g.push_block(&x);
        assert!((g.level_dbm0() + 13.0).abs() < 0.2, "{f}: {}", g.level_dbm0());
    }
    let mut g = Goertzel::new(395.0, 800);
    g.push_block(&x);
    assert!(g.level_dbm0() < -35.0);
}

#[test]
fn china_plan() {
    let p = TonePlan::china();
    assert_eq!(p.name, "cn");
    assert_eq!(p.ring_cadence_ms(), &[1000, 4000]);
    assert_eq!(p.tone(ProgressTone::Dial).segments()[0].ms, 0);
    let c = |t| cadence_ms(p.tone(t));
    assert_eq!(c(ProgressTone::Busy), vec![350, 350]);
    assert_eq!(c(ProgressTone::Ringback), vec![1000, 4000]);
    assert_eq!(c(ProgressTone::Congestion), vec![700, 700]);
    assert_eq!(c(ProgressTone::CallWaiting), vec![400, 4000]);
    assert_eq!(c(ProgressTone::Info), vec![100, 100, 100, 100, 100, 100, 400, 400]);
    assert_eq!(c(ProgressTone::Record), vec![400, 10_000]);
    // The E.180 SIT: 950, 1400, 1800 Hz, 330 ms each, then 1 s of silence.
    let sit: Vec<(u32, f32)> =
        p.tone(ProgressTone::Sit).segments().iter().map(|s| (s.ms, s.freqs[0])).collect();
    assert_eq!(sit, [(330, 950.0), (330, 1400.0), (330, 1800.0), (1000, 0.0)]);
    for t in ProgressTone::ALL.into_iter().filter(|&t| t != ProgressTone::Sit) {
        let spec = p.tone(t);
        let want = if t == ProgressTone::Record { 950.0 } else { 450.0 };
        for s in spec.segments().iter().filter(|s| !s.is_silent()) {
            assert_eq!(s.freqs, [want, 0.0], "{t}");
            assert_eq!(s.level_dbm0, -10.0);
        }
        assert!(spec.repeat);
    }
    assert_eq!(TonePlan::default(), p);
}

#[test]
fn itu_and_europe_plans() {
    let p = TonePlan::itu();
    let c = |p: &TonePlan, t| cadence_ms(p.tone(t));
    assert_eq!(p.tone(ProgressTone::Dial).segments()[0].freqs, [425.0, 0.0]);
    assert_eq!(c(&p, ProgressTone::Busy), vec![500, 500]);
    assert_eq!(c(&p, ProgressTone::Ringback), vec![1000, 4000]);
    assert_eq!(c(&p, ProgressTone::Congestion), vec![250, 250]);
    let e = TonePlan::europe();
    assert_eq!(e.tone(ProgressTone::Dial).segments()[0].freqs, [425.0, 0.0]);
    assert_eq!(c(&e, ProgressTone::Busy), vec![480, 480]);
    assert_eq!(c(&e, ProgressTone::Congestion), vec![240, 240]);
    assert_eq!(c(&e, ProgressTone::CallWaiting), vec![200, 200, 200, 5000]);
    assert_eq!(e.ring_cadence_ms(), &[1000, 4000]);
    for plan in [&p, &e] {
        let sit = plan.tone(ProgressTone::Info);
        let segs: Vec<_> = sit.segments().iter().map(|s| (s.ms, s.freqs[0])).collect();
        assert_eq!(segs, vec![(330, 950.0), (330, 1400.0), (330, 1800.0), (1000, 0.0)]);
        // Each SIT segment really sounds at its own frequency.
        let x = render(sit, 8 * 990);
        for (i, f) in [950.0, 1400.0, 1800.0].into_iter().enumerate() {
            let mut g = Goertzel::new(f, 2640);
            g.push_block(&x[i * 2640..(i + 1) * 2640]);
            assert!((g.level_dbm0() + 10.0).abs() < 0.2, "{f}");
        }
    }
}

#[test]
fn plans_by_name() {
    for (n, want) in [
        ("cn", "cn"),
        ("China", "cn"),
        ("itu", "itu"),
        ("e180", "itu"),
        ("eu", "eu"),
        ("de", "eu"),
        ("europe", "eu"),
    ] {
        assert_eq!(TonePlan::by_name(n).unwrap().name, want);
    }
    assert!(TonePlan::by_name("us").is_none());
}

#[test]
fn busy_tone_measured_with_goertzel() {
    let x = render(TonePlan::china().tone(ProgressTone::Busy), 8 * 2800);
    // 10 ms blocks: energy at 450 Hz in the on blocks, none in the off blocks, and nothing at
    // neighbouring frequencies.
    let mut pattern = String::new();
    for block in x.chunks(80) {
        let level = |f: f32| {
            let mut g = Goertzel::new(f, 80);
            g.push_block(block);
            g.level_dbm0()
        };
        let at450 = level(450.0);
        if at450 > -11.0 {
            assert!(level(1000.0) < -30.0 && level(2000.0) < -30.0);
            pattern.push('#');
        } else {
            assert!(at450 < -60.0, "{at450}");
            pattern.push('.');
        }
    }
    let want = format!("{}{}", "#".repeat(35), ".".repeat(35)).repeat(4);
    assert_eq!(pattern, want);
}

#[test]
fn tone_level_measured_as_rms() {
    for (f, dbm0) in [(450.0, -10.0), (425.0, -10.0), (1400.0, -20.0), (950.0, -3.0)] {
        let x = render(ToneSpec::continuous([f, 0.0], dbm0).unwrap(), 8000);
        let got = block_power_dbm0(&x);
        assert!((got - dbm0).abs() < 0.2, "{f} Hz at {dbm0}: {got}");
    }
}

#[test]
fn overrides_apply() {
    let o: TonePlanOverrides = serde_json::from_str(
        r#"{
            "busy": { "freqs": [480, 620], "cadence_ms": [500, 500] },
            "dial": { "freqs": [350, 440], "level_dbm0": -13 },
            "ring_cadence": [2000, 4000],
            "level_dbm0": -12
        }"#,
    )
    .unwrap();
    let p = TonePlan::china().with_overrides(&o).unwrap();
    let busy = p.tone(ProgressTone::Busy);
    assert_eq!(busy.segments()[0], Segment { ms: 500, freqs: [480.0, 620.0], level_dbm0: -12.0 });
    assert_eq!(p.tone(ProgressTone::Dial).segments()[0].level_dbm0, -13.0);
    // Untouched tones keep their cadence and take the plan-wide level.
    assert_eq!(cadence_ms(p.tone(ProgressTone::Congestion)), vec![700, 700]);
    assert_eq!(p.tone(ProgressTone::Congestion).segments()[0].level_dbm0, -12.0);
    assert_eq!(p.ring_cadence_ms(), &[2000, 4000]);
    assert_eq!(p.level_dbm0(), -12.0);
    assert_eq!(p.name, "cn");
}

#[test]
fn bad_overrides_name_the_item() {
    let base = TonePlan::europe();
    let def =
        |freqs: Vec<f32>, cadence_ms: Vec<u32>| ToneDef { freqs, cadence_ms, level_dbm0: None };
    let cases = [
        (TonePlanOverrides { busy: Some(def(vec![], vec![])), ..Default::default() }, "busy"),
        (
            TonePlanOverrides {
                info: Some(def(vec![1.0, 2.0, 3.0], vec![])),
                ..Default::default()
            },
            "info",
        ),
        (
            TonePlanOverrides {
                call_waiting: Some(def(vec![425.0], vec![1, 2, 3])),
                ..Default::default()
            },
            "call_waiting",
        ),
        (
            TonePlanOverrides {
                record: Some(def(vec![4500.0], vec![100, 100])),
                ..Default::default()
            },
            "record",
        ),
        (
            TonePlanOverrides { ring_cadence: Some(vec![1000, 0]), ..Default::default() },
            "ring_cadence",
        ),
        (TonePlanOverrides { level_dbm0: Some(10.0), ..Default::default() }, "level_dbm0"),
    ];
    for (o, item) in cases {
        let err = base.with_overrides(&o).unwrap_err();
        assert_eq!(err.item, item, "{err}");
        assert!(err.to_string().contains(item));
    }
    let err = base
        .with_overrides(&TonePlanOverrides {
            busy: Some(def(vec![425.0], vec![100; 10])),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.problem, OverrideProblem::LongCadence(10));
    assert!(serde_json::from_str::<TonePlanOverrides>(r#"{"bussy": null}"#).is_err());
}
