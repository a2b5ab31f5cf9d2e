//! Special information tone (ITU-T E.180 §6 / Q.35 SIT) in the call-progress detector: found
//! in every plan at -10 to -35 dBm0, within ±50 Hz and 330 ± 70 ms, with gaps up to 30 ms;
//! not found off frequency, too short, too long, out of order or with long gaps; not confused
//! with the plan tones; never taken for voice; North American variants classified.

use cardpbx_dsp::progress::{ProgressDetector, ProgressEvent, SitKind, SitSegments};
use cardpbx_dsp::tone::{dbm0_to_peak, Segment, ToneGen, ToneSpec};
use cardpbx_dsp::toneplan::{sit_three_tone, ProgressTone, TonePlan};

const RATE: usize = 8000;

fn render(spec: ToneSpec, n: usize) -> Vec<i16> {
    let mut g = ToneGen::new(spec);
    let mut v = vec![0; n];
    g.fill(&mut v);
    v
}

/// One SIT: three segments (frequency, ms) at `level` with `gap_ms` of silence between them,
/// then 1 s of silence.
fn sit(segs: [(f32, u32); 3], level: f32, gap_ms: u32) -> Vec<i16> {
    let mut out = Vec::new();
    for (i, (f, ms)) in segs.into_iter().enumerate() {
        let s = Segment { ms, freqs: [f, 0.0], level_dbm0: level };
        out.extend(render(ToneSpec::new(&[s], false).unwrap(), ms as usize * 8));
        if i < 2 {
            out.extend(std::iter::repeat_n(0, gap_ms as usize * 8));
        }
    }
    out.extend(std::iter::repeat_n(0, RATE));
    out
}

fn itu_sit(level: f32) -> Vec<i16> {
    sit([(950.0, 330), (1400.0, 330), (1800.0, 330)], level, 0)
}

struct Run {
    events: Vec<ProgressEvent>,
    last: Option<SitSegments>,
}

fn run(plan: &TonePlan, x: &[i16], chunk: usize) -> Run {
    let mut d = ProgressDetector::new(plan);
    let mut events = Vec::new();
    for c in x.chunks(chunk) {
        d.process(c, |e| events.push(e));
    }
    Run { events, last: d.last_sit() }
}

fn detected(r: &Run) -> Vec<(ProgressTone, u64)> {
    r.events
        .iter()
        .filter_map(|e| match *e {
            ProgressEvent::Detected { tone, at_sample } => Some((tone, at_sample)),
            _ => None,
        })
        .collect()
}

fn sits(r: &Run) -> usize {
    detected(r).iter().filter(|d| d.0 == ProgressTone::Sit).count()
}

#[test]
fn plan_sit_is_found_once_at_every_level_in_every_plan() {
    for plan in [TonePlan::china(), TonePlan::itu(), TonePlan::europe()] {
        for level in [-10.0, -15.0, -20.0, -25.0, -30.0, -35.0] {
            // The plan's own generated SIT, repeated three times, at this level.
            let x = render(sit_three_tone(level), 3 * 2000 * 8);
            let r = run(&plan, &x, 8);
            let d = detected(&r);
            assert_eq!(d.len(), 1, "{} {level} dBm0: {d:?}", plan.name);
            assert_eq!(d[0].0, ProgressTone::Sit);
            // At the end of the third segment (990 ms) plus the gap that proves it ended.
            let at_ms = d[0].1 / 8;
            assert!((990..=1060).contains(&at_ms), "{} {level}: at {at_ms} ms", plan.name);
            assert!(!r.events.iter().any(|e| matches!(e, ProgressEvent::VoiceDetected { .. })));
            let seg = r.last.expect("segments kept");
            for ms in seg.ms {
                assert!((310..=340).contains(&ms), "{seg:?}");
            }
        }
    }
    // The plans generate it too.
    for plan in [TonePlan::china(), TonePlan::itu(), TonePlan::europe()] {
        let x = render(plan.tone(ProgressTone::Sit), 4000 * 8);
        assert_eq!(sits(&run(&plan, &x, 160)), 1, "{}", plan.name);
    }
}

#[test]
fn too_quiet_sit_is_not_found() {
    let r = run(&TonePlan::china(), &itu_sit(-45.0), 80);
    assert!(detected(&r).is_empty());
}

#[test]
fn frequency_tolerance_is_plus_minus_50_hz() {
    let plan = TonePlan::itu();
    for off in [-50.0, -30.0, 0.0, 30.0, 50.0] {
        for level in [-10.0, -30.0] {
            let x = sit([(950.0 + off, 330), (1400.0 + off, 330), (1800.0 + off, 330)], level, 0);
            assert_eq!(sits(&run(&plan, &x, 8)), 1, "offset {off} Hz at {level} dBm0");
        }
    }
    for off in [-150.0, -100.0, -80.0, 80.0, 100.0, 150.0] {
        let x = sit([(950.0 + off, 330), (1400.0 + off, 330), (1800.0 + off, 330)], -10.0, 0);
        let r = run(&plan, &x, 8);
        assert_eq!(sits(&r), 0, "offset {off} Hz: {:?}", detected(&r));
        // One segment off is enough to reject.
        let x = sit([(950.0, 330), (1400.0 + off, 330), (1800.0, 330)], -10.0, 0);
        assert_eq!(sits(&run(&plan, &x, 8)), 0, "middle segment off by {off} Hz");
    }
}

#[test]
fn segment_durations_of_330_plus_minus_70_ms_only() {
    let plan = TonePlan::china();
    for ms in [260, 274, 300, 330, 380, 400] {
        let x = sit([(950.0, ms), (1400.0, ms), (1800.0, ms)], -20.0, 0);
        assert_eq!(sits(&run(&plan, &x, 8)), 1, "{ms} ms segments");
    }
    for ms in [100, 150, 200, 450, 550, 800] {
        let x = sit([(950.0, ms), (1400.0, ms), (1800.0, ms)], -20.0, 0);
        assert_eq!(sits(&run(&plan, &x, 8)), 0, "{ms} ms segments");
        // One bad segment is enough.
        let x = sit([(950.0, 330), (1400.0, 330), (1800.0, ms)], -20.0, 0);
        assert_eq!(sits(&run(&plan, &x, 8)), 0, "last segment {ms} ms");
    }
}

#[test]
fn gaps_up_to_30_ms_but_not_long_pauses_or_other_orders() {
    let plan = TonePlan::china();
    for gap in [0, 10, 20, 30] {
        let x = sit([(950.0, 330), (1400.0, 330), (1800.0, 330)], -20.0, gap);
        assert_eq!(sits(&run(&plan, &x, 8)), 1, "gap {gap} ms");
    }
    for gap in [80, 150, 500] {
        let x = sit([(950.0, 330), (1400.0, 330), (1800.0, 330)], -20.0, gap);
        assert_eq!(sits(&run(&plan, &x, 8)), 0, "gap {gap} ms");
    }
    for order in [[1800.0, 1400.0, 950.0], [950.0, 1800.0, 1400.0], [1400.0, 950.0, 1800.0]] {
        let x = sit([(order[0], 330), (order[1], 330), (order[2], 330)], -20.0, 0);
        assert_eq!(sits(&run(&plan, &x, 8)), 0, "{order:?}");
    }
    // Two of the three tones, or one tone three times, is no SIT.
    let x = sit([(950.0, 330), (1400.0, 330), (1400.0, 330)], -20.0, 40);
    assert_eq!(sits(&run(&plan, &x, 8)), 0);
    let x = sit([(1800.0, 330), (1800.0, 330), (1800.0, 330)], -20.0, 80);
    assert_eq!(sits(&run(&plan, &x, 8)), 0);
}

#[test]
fn plan_tones_are_not_sit_and_sit_is_no_plan_tone() {
    for plan in [TonePlan::china(), TonePlan::europe(), TonePlan::itu()] {
        for (t, secs) in [
            (ProgressTone::Dial, 3.0),
            (ProgressTone::Busy, 6.0),
            (ProgressTone::Congestion, 6.0),
            (ProgressTone::Ringback, 12.0),
            (ProgressTone::CallWaiting, 12.0),
            (ProgressTone::Record, 12.0),
        ] {
            let x = render(plan.tone(t), (secs * RATE as f32) as usize);
            let d = detected(&run(&plan, &x, 80));
            assert!(d.iter().all(|d| d.0 != ProgressTone::Sit), "{} {t}: {d:?}", plan.name);
        }
        // Ten seconds of SIT: only SIT, once.
        let x = render(plan.tone(ProgressTone::Sit), 10 * RATE);
        let d = detected(&run(&plan, &x, 80));
        assert_eq!(d.iter().map(|d| d.0).collect::<Vec<_>>(), vec![ProgressTone::Sit]);
    }
    // The China "info" tone (450 Hz bursts) is not SIT either.
    let cn = TonePlan::china();
    let x = render(cn.tone(ProgressTone::Info), 10 * RATE);
    assert!(detected(&run(&cn, &x, 80)).iter().all(|d| d.0 != ProgressTone::Sit));
}

#[test]
fn sit_stops_after_silence_and_before_the_announcement_or_a_tone() {
    let plan = TonePlan::china();
    // SIT, then 3 s of silence: stopped 1.5 s after the last segment.
    let mut x = itu_sit(-15.0);
    x.extend(std::iter::repeat_n(0, 2 * RATE));
    let r = run(&plan, &x, 8);
    let stop = r.events.iter().find_map(|e| match *e {
        ProgressEvent::ToneStopped { tone: ProgressTone::Sit, at_sample } => Some(at_sample),
        _ => None,
    });
    let stop_ms = stop.expect("stopped") / 8;
    assert!((2400..=2600).contains(&stop_ms), "stopped at {stop_ms} ms");
    // SIT, then an "announcement" (a voice-like chord): Detected, ToneStopped, VoiceDetected.
    let mut x = itu_sit(-15.0);
    x.truncate(1100 * 8);
    let peak = f64::from(dbm0_to_peak(-15.0));
    x.extend((0..2 * RATE).map(|i| {
        let t = i as f64 / RATE as f64;
        let v: f64 = [240.0, 480.0, 720.0, 1200.0, 2200.0]
            .iter()
            .map(|f| (2.0 * std::f64::consts::PI * f * t).sin())
            .sum();
        (v * peak / 3.0) as i16
    }));
    let r = run(&plan, &x, 8);
    let kinds: Vec<&str> = r
        .events
        .iter()
        .map(|e| match e {
            ProgressEvent::Detected { .. } => "detected",
            ProgressEvent::ToneStopped { .. } => "stopped",
            ProgressEvent::VoiceDetected { .. } => "voice",
        })
        .collect();
    assert_eq!(kinds, ["detected", "stopped", "voice"], "{:?}", r.events);
    // SIT, then busy tone: the busy tone is reported after the SIT stopped.
    let mut x = itu_sit(-15.0);
    x.truncate(1100 * 8);
    x.extend(render(plan.tone(ProgressTone::Busy), 4 * RATE));
    let d = detected(&run(&plan, &x, 8));
    assert_eq!(
        d.iter().map(|d| d.0).collect::<Vec<_>>(),
        [ProgressTone::Sit, ProgressTone::Busy],
        "{d:?}"
    );
}

#[test]
fn north_american_variants_are_found_and_classified() {
    let (lo1, hi1, lo2, hi2, lo3) = (913.8, 985.2, 1370.6, 1428.5, 1776.7);
    let (s, l) = (274, 380);
    let cases = [
        ([(lo1, s), (lo2, s), (lo3, l)], SitKind::Intercept),
        ([(hi1, l), (lo2, s), (lo3, l)], SitKind::VacantCode),
        ([(lo1, s), (hi2, l), (lo3, l)], SitKind::Reorder),
        ([(hi1, s), (lo2, l), (lo3, l)], SitKind::ReorderInterLata),
        ([(hi1, l), (hi2, l), (lo3, l)], SitKind::NoCircuit),
        ([(lo1, l), (lo2, l), (lo3, l)], SitKind::NoCircuitInterLata),
        ([(lo1, l), (hi2, s), (lo3, l)], SitKind::IneffectiveOther),
        ([(hi1, s), (hi2, s), (lo3, l)], SitKind::Reserved),
    ];
    for (segs, kind) in cases {
        for level in [-13.0, -30.0] {
            let r = run(&TonePlan::china(), &sit(segs, level, 0), 8);
            assert_eq!(sits(&r), 1, "{kind:?} at {level}");
            let seg = r.last.unwrap();
            assert_eq!(seg.north_american_kind(), Some(kind), "{seg:?} at {level}");
        }
    }
}

#[test]
fn sit_detection_can_be_switched_off() {
    let cfg = cardpbx_dsp::progress::ProgressConfig { sit: false, ..Default::default() };
    let mut d = ProgressDetector::with_config(&TonePlan::china(), cfg);
    let mut ev = Vec::new();
    d.process(&itu_sit(-10.0), |e| ev.push(e));
    assert!(!ev.iter().any(|e| matches!(e, ProgressEvent::Detected { .. })), "{ev:?}");
}
