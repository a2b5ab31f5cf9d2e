//! `cardpbx dsp ...` run as a process on files generated in a temporary directory: DTMF
//! generate/detect round trip, call-progress and fax tones, FSK caller ID, the echo canceller
//! on a simulated hybrid, and the errors for files the tools do not take.

use cardpbx::audiofile::write_wav;
use cardpbx_dsp::callerid::{
    encode_mdmf, encode_sdmf, AbsenceReason, CallerIdMessage, FskStandard, FskTx, MARK_BITS,
    SEIZURE_BITS,
};
use cardpbx_dsp::g711::Law;
use cardpbx_dsp::tone::{ToneGen, ToneSpec};
use cardpbx_dsp::toneplan::{ProgressTone, TonePlan};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cardpbx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cardpbx"))
        .arg("dsp")
        .args(args)
        .env_remove("CARDPBX_LOG")
        .output()
        .expect("run cardpbx")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and require success; returns stdout.
fn ok(args: &[&str]) -> String {
    let o = cardpbx(args);
    assert!(o.status.success(), "{args:?} failed: {}\n{}", stderr(&o), stdout(&o));
    stdout(&o)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 8]
}

fn render(spec: ToneSpec, ms: usize) -> Vec<i16> {
    let mut g = ToneGen::new(spec);
    let mut v = vec![0; ms * 8];
    g.fill(&mut v);
    v
}

/// A WAV header + data written by hand (for formats `write_wav` does not produce).
fn wav_file(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    f.extend_from_slice(b"WAVEfmt ");
    f.extend_from_slice(&16u32.to_le_bytes());
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(&channels.to_le_bytes());
    f.extend_from_slice(&rate.to_le_bytes());
    f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    f.extend_from_slice(&align.to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f.extend_from_slice(b"data");
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(data);
    f
}

/// Parse `<digit> <ms>` lines.
fn digit_lines(out: &str) -> Vec<(char, i64)> {
    out.lines()
        .map(|l| {
            let (d, t) = l.split_once(' ').unwrap_or_else(|| panic!("bad line {l:?}"));
            assert_eq!(d.chars().count(), 1, "{l:?}");
            (d.chars().next().unwrap(), t.parse().unwrap_or_else(|_| panic!("bad ms in {l:?}")))
        })
        .collect()
}

#[test]
fn dtmf_gen_then_detect_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("digits.wav");
    let digits = "0123456789*#ABCD";
    let msg = ok(&["dtmf-gen", digits, s(&wav), "--on-ms", "80", "--off-ms", "120", "--level=-12"]);
    assert!(msg.contains("16 digits") && msg.contains("25600 samples"), "{msg}");
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(bytes.len(), 44 + 2 * 16 * 200 * 8, "8 kHz 16-bit mono, 200 ms per digit");
    assert_eq!(&bytes[22..28], &[1, 0, 0x40, 0x1f, 0, 0], "mono, 8000 Hz");

    let found = digit_lines(&ok(&["dtmf-detect", s(&wav)]));
    let got: String = found.iter().map(|&(d, _)| d).collect();
    assert_eq!(got, digits);
    for (k, &(d, ms)) in found.iter().enumerate() {
        // The detector estimates the onset to about a millisecond.
        let want = 200 * k as i64;
        assert!((ms - want).abs() <= 2, "{d}: start {ms} ms, generated at {want} ms");
    }

    // Same audio as A-law and µ-law WAV, and as raw s16le: same digits.
    let samples: Vec<i16> =
        bytes[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    for (tag, law, name) in [(6u16, Law::Alaw, "a.wav"), (7, Law::Ulaw, "u.wav")] {
        let codes: Vec<u8> = samples.iter().map(|&x| law.encode(x)).collect();
        let p = dir.path().join(name);
        std::fs::write(&p, wav_file(tag, 1, 8000, 8, &codes)).unwrap();
        let again = digit_lines(&ok(&["dtmf-detect", s(&p)]));
        assert_eq!(again.iter().map(|&(d, _)| d).collect::<String>(), digits, "{name}");
    }
    let raw = dir.path().join("digits.sln");
    std::fs::write(&raw, &bytes[44..]).unwrap();
    assert_eq!(digit_lines(&ok(&["dtmf-detect", s(&raw)])), found);
}

#[test]
fn dtmf_bench_prints_the_reference_format() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("d.wav");
    ok(&["dtmf-gen", "159#", s(&wav)]);
    let o = cardpbx(&["dtmf-detect", "--bench", "2", s(&wav)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let value = |line: &str, key: &str| -> f64 {
        line.strip_prefix(key).unwrap_or_else(|| panic!("{line:?} lacks {key}")).parse().unwrap()
    };
    assert!(value(&lines[0], "cardpbx_dtmf_rx samples_per_sec=") > 0.0);
    assert!(value(&lines[1], "ns_per_sample=") > 0.0);
    assert!(stderr(&o).contains("6400 samples x 2 iterations") && stderr(&o).contains("digits 8"));
}

#[test]
fn dtmf_gen_rejects_bad_digits_and_levels() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("x.wav");
    let o = cardpbx(&["dtmf-gen", "12E4", s(&wav)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("'E' at position 3 is not a DTMF digit"), "{}", stderr(&o));
    assert!(!wav.exists());
    let o = cardpbx(&["dtmf-gen", "1", s(&wav), "--level", "3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--level"), "{}", stderr(&o));
    let o = cardpbx(&["dtmf-gen", "1", s(&wav), "--on-ms", "zero"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}

/// Parse `<kind> <start> <end>` lines.
fn tone_lines(out: &str) -> Vec<(String, i64, i64)> {
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "{l:?}");
            (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn tones_finds_china_busy_with_its_extent() {
    let dir = tempfile::tempdir().unwrap();
    let plan = TonePlan::china();
    // 0.5 s silence, six 350/350 ms busy cycles (last tone ends at 4350 ms), 1 s silence.
    let mut x = silence(500);
    x.extend(render(plan.tone(ProgressTone::Busy), 4200));
    x.extend(silence(1000));
    let wav = dir.path().join("busy.wav");
    write_wav(&wav, &x).unwrap();
    let found = tone_lines(&ok(&["tones", s(&wav), "--plan", "china"]));
    assert_eq!(found.len(), 1, "{found:?}");
    let (kind, start, end) = &found[0];
    assert_eq!(kind, "busy");
    assert!((start - 500).abs() <= 10, "start {start}");
    assert!((end - 4350).abs() <= 10, "end {end}");

    // The same file under the European plan (425 Hz) has no busy tone.
    let o = ok(&["tones", s(&wav), "--plan", "europe"]);
    assert!(!o.contains("busy"), "{o}");
}

#[test]
fn tones_finds_the_special_information_tone_under_every_plan() {
    let dir = tempfile::tempdir().unwrap();
    // 0.5 s silence, two SITs (990 ms of tones, 1 s silence, 990 ms of tones), 2 s silence.
    let mut x = silence(500);
    x.extend(render(TonePlan::itu().tone(ProgressTone::Sit), 2980));
    x.extend(silence(2000));
    let wav = dir.path().join("sit.wav");
    write_wav(&wav, &x).unwrap();
    for plan in ["china", "itu", "europe"] {
        let found = tone_lines(&ok(&["tones", s(&wav), "--plan", plan]));
        assert_eq!(found.len(), 1, "{plan}: {found:?}");
        let (kind, start, end) = &found[0];
        assert_eq!(kind, "sit", "{plan}");
        assert!((start - 500).abs() <= 10, "{plan}: start {start}");
        assert!((end - 3480).abs() <= 10, "{plan}: end {end}");
    }
}

#[test]
fn tones_finds_fax_calling_and_answer_tones() {
    let dir = tempfile::tempdir().unwrap();
    let cng = ToneSpec::cadenced([1100.0, 0.0], -12.0, &[500, 3000]).unwrap();
    let mut x = silence(200);
    x.extend(render(cng, 3500));
    // 2100 Hz with a phase reversal every 450 ms (ANS/PR).
    let start = x.len();
    x.extend((0..8 * 1500).map(|i| {
        let flip = if (i / 3600) % 2 == 1 { std::f64::consts::PI } else { 0.0 };
        let ph = std::f64::consts::TAU * 2100.0 * i as f64 / 8000.0 + flip;
        (ph.sin() * 7000.0) as i16
    }));
    assert_eq!(start, 8 * 3700);
    x.extend(silence(300));
    let wav = dir.path().join("fax.wav");
    write_wav(&wav, &x).unwrap();
    let found = tone_lines(&ok(&["tones", s(&wav)]));
    let kinds: Vec<&str> = found.iter().map(|t| t.0.as_str()).collect();
    assert!(kinds.contains(&"cng"), "{found:?}");
    let cng = found.iter().find(|t| t.0 == "cng").unwrap();
    assert!((cng.1 - 200).abs() <= 10 && (cng.2 - 700).abs() <= 10, "{cng:?}");
    let ans = found.iter().find(|t| t.0 == "ced-phase-reversal").expect("ANS/PR found");
    assert!((ans.1 - 3700).abs() <= 10 && (ans.2 - 5200).abs() <= 10, "{ans:?}");
}

fn fsk(standard: FskStandard, message: &[u8]) -> Vec<i16> {
    let mut tx = FskTx::new(standard, -13.0, SEIZURE_BITS, MARK_BITS);
    tx.send(message).unwrap();
    let mut x = silence(300);
    let mut buf = [0i16; 160];
    while tx.fill(&mut buf) {
        x.extend_from_slice(&buf);
    }
    x.extend_from_slice(&buf);
    x.extend(silence(300));
    x
}

#[test]
fn callerid_decodes_bell202_and_v23_sdmf_and_mdmf() {
    let dir = tempfile::tempdir().unwrap();
    let sdmf = CallerIdMessage {
        date_time: Some("03150930".into()),
        number: Some("5551234".into()),
        ..Default::default()
    };
    let mdmf = CallerIdMessage {
        date_time: Some("12312359".into()),
        number: Some("01012345678".into()),
        name_absent: Some(AbsenceReason::Private),
        ..Default::default()
    };
    for (standard, name) in [(FskStandard::Bell202, "bell202"), (FskStandard::V23, "v23")] {
        let f = dir.path().join(format!("{name}-sdmf.wav"));
        write_wav(&f, &fsk(standard, &encode_sdmf(&sdmf).unwrap())).unwrap();
        let want = format!(
            "standard: {name}\ntype: SDMF\ndate_time: 03150930 (03-15 09:30)\nnumber: 5551234\n\
             name: -\nchecksum: OK\n"
        );
        assert_eq!(ok(&["callerid", s(&f), "--standard", name]), want);
        assert_eq!(ok(&["callerid", s(&f)]), want, "auto finds {name}");

        let f = dir.path().join(format!("{name}-mdmf.wav"));
        write_wav(&f, &fsk(standard, &encode_mdmf(&mdmf).unwrap())).unwrap();
        assert_eq!(
            ok(&["callerid", s(&f), "--standard", name]),
            format!(
                "standard: {name}\ntype: MDMF\ndate_time: 12312359 (12-31 23:59)\n\
                 number: 01012345678\nname: absent (private)\nchecksum: OK\n"
            )
        );
    }

    // DTMF caller ID.
    let f = dir.path().join("dtmf-cid.wav");
    ok(&["dtmf-gen", "A5551234C", s(&f), "--on-ms", "60", "--off-ms", "60"]);
    let out = ok(&["callerid", s(&f), "--standard", "dtmf"]);
    assert!(out.contains("type: DTMF\n") && out.contains("number: 5551234\n"), "{out}");

    // Nothing there: exit 1 with a reason per standard tried.
    let f = dir.path().join("quiet.wav");
    write_wav(&f, &silence(1000)).unwrap();
    let o = cardpbx(&["callerid", s(&f)]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("quiet.wav: no caller ID found") && e.contains("no FSK carrier"), "{e}");

    // A message with a wrong checksum is reported as such.
    let mut bad = encode_sdmf(&sdmf).unwrap();
    *bad.last_mut().unwrap() ^= 0x55;
    let f = dir.path().join("bad-sum.wav");
    write_wav(&f, &fsk(FskStandard::Bell202, &bad)).unwrap();
    let o = cardpbx(&["callerid", s(&f), "--standard", "bell202"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad checksum"), "{}", stderr(&o));
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Speech-like far end: voiced bursts with gliding pitch and harmonics, short pauses.
fn speech_like(seconds: usize) -> Vec<f64> {
    let mut rng = Rng(7);
    let n = seconds * 8000;
    let mut x = Vec::with_capacity(n);
    let mut phase = 0.0f64;
    while x.len() < n {
        let len = (800.0 + 1600.0 * rng.unit()) as usize;
        let f0 = 100.0 + 150.0 * rng.unit();
        for i in 0..len {
            let env = ((i as f64 / len as f64) * std::f64::consts::PI).sin();
            phase += std::f64::consts::TAU * (f0 + 30.0 * (i as f64 / 2000.0).sin()) / 8000.0;
            let v: f64 = (1..12).map(|h| (phase * h as f64).sin() / h as f64).sum();
            x.push(v * env * 4000.0 + (rng.unit() - 0.5) * 600.0);
        }
        x.extend(std::iter::repeat_n(0.0, (400.0 * rng.unit()) as usize));
    }
    x.truncate(n);
    x
}

#[test]
fn echo_cancel_on_a_simulated_hybrid() {
    let dir = tempfile::tempdir().unwrap();
    let far = speech_like(8);
    // Hybrid: 5 ms flat delay, then a short band-limited response with about 10 dB loss.
    let h = [0.25, 0.12, -0.08, 0.04, -0.02];
    let mut rng = Rng(99);
    let near: Vec<i16> = (0..far.len())
        .map(|n| {
            let echo: f64 = h
                .iter()
                .enumerate()
                .map(|(k, c)| c * far.get(n.wrapping_sub(40 + k)).copied().unwrap_or(0.0))
                .sum();
            (echo + (rng.unit() - 0.5) * 8.0).round() as i16
        })
        .collect();
    let far: Vec<i16> = far.iter().map(|&v| v.round() as i16).collect();
    let (pf, pn, po) =
        (dir.path().join("far.wav"), dir.path().join("near.raw"), dir.path().join("out.wav"));
    write_wav(&pf, &far).unwrap();
    std::fs::write(&pn, near.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();

    let db = |out: &str, key: &str| -> f64 {
        let line =
            out.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in {out}"));
        let v = &line[key.len()..];
        if v == "inf" {
            f64::INFINITY
        } else {
            v.parse().unwrap()
        }
    };
    for (extra, min_late) in [(None, 30.0), (Some("--no-nlp"), 20.0)] {
        let mut args = vec![
            "echo-cancel",
            "--far",
            s(&pf),
            "--near",
            s(&pn),
            "--out",
            s(&po),
            "--tail-ms",
            "32",
        ];
        args.extend(extra);
        let out = ok(&args);
        let overall = db(&out, "erle_overall_db=");
        let late = db(&out, "erle_last_half_db=");
        assert!(late >= min_late, "{extra:?}: last half ERLE {late} dB\n{out}");
        assert!(
            overall >= 10.0 && late >= overall - 0.5,
            "{extra:?}: overall {overall}, late {late}"
        );
        let written = cardpbx::audiofile::read_audio(&po).unwrap();
        assert_eq!(written.samples.len(), near.len());
    }

    // The help text documents the ERLE definition.
    let o = cardpbx(&["echo-cancel", "--help"]);
    assert!(stdout(&o).contains("10·log10(Σ near² / Σ out²)"), "{}", stdout(&o));
    let o = cardpbx(&[
        "echo-cancel",
        "--far",
        s(&pf),
        "--near",
        s(&pn),
        "--out",
        s(&po),
        "--tail-ms",
        "129",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

fn assert_fails(args: &[&str], file: &Path, needles: &[&str]) {
    let o = cardpbx(args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
    assert!(e.contains(s(file)), "{e} does not name {}", file.display());
    for n in needles {
        assert!(e.contains(n), "{e} lacks {n:?}");
    }
}

#[test]
fn bad_inputs_name_the_file_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { dir.path().join(n) };
    std::fs::write(p("stereo.wav"), wav_file(1, 2, 8000, 16, &[0; 400])).unwrap();
    std::fs::write(p("wide.wav"), wav_file(1, 1, 16000, 16, &[0; 400])).unwrap();
    std::fs::write(p("float.wav"), wav_file(3, 1, 8000, 32, &[0; 400])).unwrap();
    std::fs::write(p("odd.raw"), [0u8; 101]).unwrap();
    std::fs::write(p("text.wav"), b"hello").unwrap();

    assert_fails(
        &["dtmf-detect", s(&p("stereo.wav"))],
        &p("stereo.wav"),
        &["2 channels", "1 channel (mono)"],
    );
    assert_fails(&["tones", s(&p("wide.wav"))], &p("wide.wav"), &["16000 Hz", "8000 Hz"]);
    assert_fails(&["callerid", s(&p("float.wav"))], &p("float.wav"), &["IEEE float", "accepted"]);
    assert_fails(&["dtmf-detect", s(&p("odd.raw"))], &p("odd.raw"), &["odd length (101 bytes)"]);
    assert_fails(&["dtmf-detect", s(&p("text.wav"))], &p("text.wav"), &["not a WAV file"]);
    assert_fails(&["dtmf-detect", s(&p("missing.wav"))], &p("missing.wav"), &["No such file"]);
    let far = p("stereo.wav");
    assert_fails(
        &["echo-cancel", "--far", s(&far), "--near", s(&p("odd.raw")), "--out", s(&p("o.wav"))],
        &far,
        &["stereo"],
    );
    assert!(!p("o.wav").exists());

    // Usage errors are clap's: status 2.
    assert_eq!(cardpbx(&["tones", s(&p("wide.wav")), "--plan", "mars"]).status.code(), Some(2));
    assert_eq!(cardpbx(&["dtmf-detect"]).status.code(), Some(2));
    assert_eq!(cardpbx(&["frobnicate"]).status.code(), Some(2));
}
