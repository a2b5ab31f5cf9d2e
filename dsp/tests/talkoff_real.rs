//! Talk-off on real(istic) material: the committed corpus of synthetic speech (espeak-ng:
//! English, German, Mandarin, French, Spanish; male and female voices, slow to fast, low to high
//! pitch) and music (sox synth chords, melodies, organ with noise). See
//! `tests/data/talkoff/make_corpus.sh`.
//!
//! - The DTMF detector reports no digit on any of it.
//! - The call-progress detector (China and Europe plans) never takes speech for dial, busy,
//!   ringback or congestion tone (it may report voice).
//! - The call-progress detector finds no special information tone in speech or music.
//! - The fax tone detector finds no CNG or CED in speech.
//! - Digits mixed into running speech at -10 to -20 dBm0 per tone are all found, in order.

#[path = "support/talkoff_corpus.rs"]
mod talkoff_corpus;

use cardpbx_dsp::dtmf::{DtmfConfig, DtmfDetector, DtmfEvent, DtmfGenConfig, DtmfGenerator};
use cardpbx_dsp::faxtone::FaxToneDetector;
use cardpbx_dsp::progress::{ProgressDetector, ProgressEvent};
use cardpbx_dsp::tone::DBM0_PEAK;
use cardpbx_dsp::toneplan::{ProgressTone, TonePlan};
use talkoff_corpus::corpus;

/// Samples per media-engine tick (1 ms).
const TICK: usize = 8;

fn speech() -> Vec<(String, Vec<i16>)> {
    corpus().into_iter().filter(|(n, _)| n.starts_with("speech_")).collect()
}

/// Digit starts found by a fresh default detector, fed in 1 ms ticks, with their sample.
fn digits(x: &[i16]) -> Vec<(char, u64)> {
    let mut d = DtmfDetector::new(DtmfConfig::default());
    let mut out = Vec::new();
    for c in x.chunks(TICK) {
        d.process(c, |e| {
            if let DtmfEvent::Start { digit, at_sample } = e {
                out.push((digit, at_sample));
            }
        });
    }
    d.process(&[0; 1000], |e| {
        if let DtmfEvent::Start { digit, at_sample } = e {
            out.push((digit, at_sample));
        }
    });
    out
}

#[test]
fn corpus_is_complete_and_long_enough() {
    let all = corpus();
    let secs = |pred: &dyn Fn(&str) -> bool| {
        all.iter().filter(|(n, _)| pred(n)).map(|(_, x)| x.len()).sum::<usize>() as f64 / 8000.0
    };
    let speech_s = secs(&|n| n.starts_with("speech_"));
    let music_s = secs(&|n| n.starts_with("music_"));
    assert!(speech_s >= 120.0, "only {speech_s:.1} s of speech");
    assert!(music_s >= 30.0, "only {music_s:.1} s of music");
    for lang in ["_en_", "_de_", "_cmn_"] {
        assert!(all.iter().any(|(n, _)| n.contains(lang)), "no {lang} speech");
    }
    // Not silence: every file has a real signal (peak above -10 dBm0).
    for (name, x) in &all {
        let peak = x.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
        assert!(peak as f32 > DBM0_PEAK * 0.316, "{name}: peak {peak}");
    }
}

#[test]
fn no_digits_in_speech_or_music() {
    let mut bad = Vec::new();
    for (name, x) in corpus() {
        let found = digits(&x);
        if !found.is_empty() {
            bad.push(format!("{name}: {found:?}"));
        }
    }
    assert!(bad.is_empty(), "talk-off:\n{}", bad.join("\n"));
}

#[test]
fn no_digits_in_speech_at_other_levels() {
    // Talk-off must not depend on the talker's level: 6 dB louder (clipping allowed) and
    // 20 dB quieter.
    let mut bad = Vec::new();
    for (name, x) in corpus() {
        for gain in [2.0f32, 0.1] {
            let y: Vec<i16> =
                x.iter().map(|&s| (f32::from(s) * gain).clamp(-32768.0, 32767.0) as i16).collect();
            let found = digits(&y);
            if !found.is_empty() {
                bad.push(format!("{name} x{gain}: {found:?}"));
            }
        }
    }
    assert!(bad.is_empty(), "talk-off:\n{}", bad.join("\n"));
}

#[test]
fn progress_detector_hears_voice_not_tones_in_speech() {
    for plan in [TonePlan::china(), TonePlan::europe()] {
        for (name, x) in speech() {
            let mut d = ProgressDetector::new(&plan);
            let mut tones = Vec::new();
            let mut voice = 0;
            for c in x.chunks(TICK) {
                d.process(c, |e| match e {
                    ProgressEvent::VoiceDetected { .. } => voice += 1,
                    other => tones.push(other),
                });
            }
            assert!(tones.is_empty(), "{name} ({} plan): {tones:?}", plan.name);
            assert!(voice > 0, "{name} ({} plan): speech not heard as voice", plan.name);
        }
    }
}

#[test]
fn no_special_information_tone_in_speech_or_music() {
    // SIT (950/1400/1800 Hz) sits where speech formants and melodies are: neither the speech
    // nor the music of the corpus, at its level, 6 dB louder or 20 dB quieter, gives one.
    let plan = TonePlan::china();
    let mut bad = Vec::new();
    for (name, x) in corpus() {
        for gain in [1.0f32, 2.0, 0.1] {
            let y: Vec<i16> =
                x.iter().map(|&s| (f32::from(s) * gain).clamp(-32768.0, 32767.0) as i16).collect();
            let mut d = ProgressDetector::new(&plan);
            for c in y.chunks(TICK) {
                d.process(c, |e| {
                    if let ProgressEvent::Detected { tone: ProgressTone::Sit, at_sample } = e {
                        bad.push(format!("{name} x{gain}: SIT at {at_sample}"));
                    }
                });
            }
        }
    }
    assert!(bad.is_empty(), "SIT talk-off:\n{}", bad.join("\n"));
}

#[test]
fn fax_tone_detector_finds_nothing_in_speech() {
    for (name, x) in speech() {
        let mut d = FaxToneDetector::new();
        let mut ev = Vec::new();
        for c in x.chunks(TICK) {
            d.process(c, |e| ev.push(e));
        }
        assert!(ev.is_empty(), "{name}: {ev:?}");
    }
}

/// Scale `x` so that its active speech level (mean power of the 10 ms blocks above -50 dBm0)
/// is `dbm0`.
fn set_active_level(x: &[i16], dbm0: f64) -> Vec<i16> {
    let floor = f64::from(DBM0_PEAK).powi(2) / 2.0 * 1e-5;
    let (mut sum, mut n) = (0.0, 0usize);
    for b in x.chunks_exact(80) {
        let p = b.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 80.0;
        if p > floor {
            sum += p;
            n += 1;
        }
    }
    let active = sum / n.max(1) as f64;
    let want = f64::from(DBM0_PEAK).powi(2) / 2.0 * 10f64.powf(dbm0 / 10.0);
    let g = (want / active).sqrt();
    x.iter().map(|&s| (f64::from(s) * g).round().clamp(-32768.0, 32767.0) as i16).collect()
}

/// Speech at the nominal active level of -26 dBov (about -23 dBm0, ITU-T P.56 practice) with
/// the 16 keys played over it from 1 s on by the crate's generator.
fn speech_with_digits(x: &[i16], level: f32, on_ms: u32, off_ms: u32) -> (Vec<i16>, usize) {
    let mut y = set_active_level(x, -23.0);
    let mut g =
        DtmfGenerator::new(DtmfGenConfig { on_ms, off_ms, level_dbm0: level, twist_db: 0.0 });
    g.queue(KEYS).unwrap();
    let start = 8000;
    let len = ((on_ms + off_ms) as usize * 8) * KEYS.len();
    let mut tones = vec![0i16; len];
    g.fill(&mut tones);
    for (s, t) in y[start..start + len].iter_mut().zip(&tones) {
        *s = (i32::from(*s) + i32::from(*t)).clamp(-32768, 32767) as i16;
    }
    (y, start)
}

const KEYS: &str = "123A456B789C*0#D";

/// Whether `found` is `KEYS` with some keys left out (no extra, repeated or reordered key).
fn is_subsequence(found: &str) -> bool {
    let mut keys = KEYS.chars();
    found.chars().all(|c| keys.any(|k| k == c))
}

#[test]
fn digits_over_speech_at_minus_10_dbm0_are_all_found_in_order() {
    let mut bad = Vec::new();
    for (name, x) in speech() {
        let (y, start) = speech_with_digits(&x, -10.0, 70, 80);
        let found = digits(&y);
        let keys: String = found.iter().map(|&(d, _)| d).collect();
        if keys != KEYS {
            bad.push(format!("{name}: {keys}"));
            continue;
        }
        // Onsets within 10 ms of the truth.
        for (i, &(d, at)) in found.iter().enumerate() {
            let truth = (start + i * 150 * 8) as u64;
            if at.abs_diff(truth) > 80 {
                bad.push(format!("{name}: {d} onset {at} vs {truth}"));
            }
        }
    }
    assert!(bad.is_empty(), "digits lost in speech:\n{}", bad.join("\n"));
}

/// At -15 and -20 dBm0 per tone the digits are only 6 and 1 dB above the speech (-23 dBm0
/// active, vowels peak well above that), and loud syllables mask some of them: no detector
/// finds all (SpanDSP 0.0.6 misses 3 % and 20 % of them on this corpus, see
/// docs/dsp-quality.md). These floors guard against regressions; misses must never turn into
/// wrong or reordered digits.
#[test]
fn digits_over_speech_at_minus_15_and_minus_20_dbm0_mostly_found_never_wrong() {
    for (level, floor) in [(-15.0, 0.90), (-20.0, 0.70)] {
        let (mut hits, mut want) = (0, 0);
        for (name, x) in speech() {
            let (y, _) = speech_with_digits(&x, level, 70, 80);
            let keys: String = digits(&y).iter().map(|&(d, _)| d).collect();
            assert!(is_subsequence(&keys), "{name} at {level} dBm0: wrong digits {keys}");
            hits += keys.len();
            want += KEYS.len();
        }
        let rate = hits as f64 / want as f64;
        assert!(rate >= floor, "{level} dBm0: found {hits} of {want} ({rate:.3} < {floor})");
    }
}
