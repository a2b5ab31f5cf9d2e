//! Fax interoperability with SpanDSP: `cardpbx fax send|receive` against the reference peer
//! `fax_peer` (built on SpanDSP), over two FIFOs carrying raw s16le 8 kHz PCM in lock-step
//! 160-sample blocks.
//!
//! `.ci/interop` builds `fax_peer` and the 2-page test fax (`test/test.tif` with its
//! `test.tif.pN.pbm` reference bitmaps) from the shared peers directory into
//! `target/peers/`, and runs these tests with `FAX_PEER` set. `FAX_TEST_TIFF` overrides the
//! test fax.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use cardpbx_dsp::fax::t4::Bitmap;
use cardpbx_dsp::fax::tiff::read_tiff;

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers")
}

fn fax_peer() -> PathBuf {
    let p = std::env::var_os("FAX_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| peers_dir().join("fax_peer"));
    assert!(
        p.is_file(),
        "fax_peer not found at {} (build it with .ci/interop, or set FAX_PEER)",
        p.display()
    );
    p
}

fn test_tiff() -> PathBuf {
    let p = std::env::var_os("FAX_TEST_TIFF")
        .map(PathBuf::from)
        .unwrap_or_else(|| fax_peer().parent().unwrap().join("test/test.tif"));
    assert!(p.is_file(), "test fax not found at {} (make test/test.tif)", p.display());
    p
}

/// The reference bitmaps `mk_test_tiff.py` wrote next to the test fax.
fn reference_pages(tif: &Path) -> Vec<Bitmap> {
    (1..)
        .map(|n| PathBuf::from(format!("{}.p{n}.pbm", tif.display())))
        .take_while(|p| p.is_file())
        .map(|p| Bitmap::from_pbm(&std::fs::read(&p).unwrap()).expect("reference PBM"))
        .collect()
}

/// `key=value` from a summary line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn summary(out: &Output, prefix: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| {
            panic!(
                "no {prefix:?} line; stdout:\n{text}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_string()
}

struct Run {
    ours: Output,
    peer: Output,
    ours_summary: String,
    peer_summary: String,
    secs: f64,
}

/// Runs our side and fax_peer against each other; the receiver is started first.
fn run(
    ours_send: bool,
    modems: &str,
    doc: &Path,
    dir: &Path,
    pdf: bool,
    peer_extra: &[&str],
) -> Run {
    run_opts(ours_send, modems, doc, dir, pdf, peer_extra, &[])
}

/// [`run`] with extra options for both sides (e.g. `--ecm`).
fn run_opts(
    ours_send: bool,
    modems: &str,
    doc: &Path,
    dir: &Path,
    pdf: bool,
    peer_extra: &[&str],
    both_extra: &[&str],
) -> Run {
    let (s2r, r2s) = (dir.join("s2r"), dir.join("r2s"));
    for f in [&s2r, &r2s] {
        nix::unistd::mkfifo(f.as_path(), nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
    }
    let rx_tif = dir.join(if ours_send { "peer_rx.tif" } else { "our_rx.tif" });
    let mut ours = Command::new(env!("CARGO_BIN_EXE_cardpbx"));
    ours.arg("fax");
    let mut peer = Command::new(fax_peer());
    if ours_send {
        peer.arg("recv").arg(&rx_tif).arg("--in").arg(&s2r).arg("--out").arg(&r2s);
        ours.arg("send").arg(doc).arg("--in").arg(&r2s).arg("--out").arg(&s2r);
    } else {
        ours.arg("receive").arg(&rx_tif).arg("--in").arg(&s2r).arg("--out").arg(&r2s);
        if pdf {
            ours.arg("--pdf").arg(dir.join("our_rx.pdf"));
        }
        peer.arg("send").arg(doc).arg("--in").arg(&r2s).arg("--out").arg(&s2r);
    }
    peer.args(peer_extra);
    for c in [&mut ours, &mut peer] {
        c.args(["--modems", modems, "--max-sec", "120", "-v"]);
        c.args(both_extra);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let start = Instant::now();
    let (ours, peer) = if ours_send {
        let p = peer.spawn().expect("start fax_peer");
        let o = ours.spawn().expect("start cardpbx");
        (o.wait_with_output().unwrap(), p.wait_with_output().unwrap())
    } else {
        let o = ours.spawn().expect("start cardpbx");
        let p = peer.spawn().expect("start fax_peer");
        (o.wait_with_output().unwrap(), p.wait_with_output().unwrap())
    };
    let secs = start.elapsed().as_secs_f64();
    let ours_summary = summary(&ours, "fax summary:");
    let peer_summary = summary(&peer, "fax_peer summary:");
    Run { ours, peer, ours_summary, peer_summary, secs }
}

/// Seconds of audio our side reports having exchanged.
fn audio_secs(out: &Output) -> f64 {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("fax: stopped after "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn check(r: &Run, bps: u32, pages: usize) {
    let diag = format!(
        "ours: {}\npeer: {}\n--- our stderr ---\n{}\n--- peer stderr (tail) ---\n{}",
        r.ours_summary,
        r.peer_summary,
        String::from_utf8_lossy(&r.ours.stderr),
        String::from_utf8_lossy(&r.peer.stderr)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n"),
    );
    assert_eq!(field(&r.ours_summary, "status"), "success", "{diag}");
    assert_eq!(field(&r.peer_summary, "status"), "0", "{diag}");
    assert!(r.ours.status.success() && r.peer.status.success(), "{diag}");
    assert_eq!(field(&r.ours_summary, "pages"), pages.to_string(), "{diag}");
    assert_eq!(field(&r.peer_summary, "pages"), pages.to_string(), "{diag}");
    assert_eq!(field(&r.ours_summary, "bit_rate"), bps.to_string(), "{diag}");
    assert_eq!(field(&r.peer_summary, "bit_rate"), bps.to_string(), "{diag}");
    eprintln!(
        "{} | {} | {:.1} s of audio, {:.2} s wall",
        r.ours_summary,
        r.peer_summary,
        audio_secs(&r.ours),
        r.secs
    );
}

fn compare_pages(file: &Path, refs: &[Bitmap]) {
    let pages = read_tiff(&std::fs::read(file).expect("received TIFF")).expect("parse TIFF");
    assert_eq!(pages.len(), refs.len(), "{}", file.display());
    for (i, (p, r)) in pages.iter().zip(refs).enumerate() {
        assert_eq!(p.bad_rows, 0, "page {}", i + 1);
        assert!(p.bitmap == *r, "page {} differs from the reference", i + 1);
        assert_eq!((p.x_resolution, p.y_resolution), (204.0, 98.0), "page {}", i + 1);
    }
}

/// `tiffinfo -D` (decode every strip) must report nothing on stderr.
fn tiffinfo_clean(file: &Path) {
    let out = Command::new("tiffinfo").arg("-D").arg(file).output().expect("run tiffinfo");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "tiffinfo: {err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Compression Scheme: CCITT Group 3"), "{text}");
    assert!(text.contains("Resolution: 204, 98 pixels/inch"), "{text}");
}

fn ours_send(modems: &str, bps: u32, doc: Option<&Path>) {
    let dir = tempfile::tempdir().unwrap();
    let tif = test_tiff();
    let refs = reference_pages(&tif);
    assert!(refs.len() >= 2, "the test fax should have 2 pages");
    let r = run(true, modems, doc.unwrap_or(&tif), dir.path(), false, &[]);
    check(&r, bps, refs.len());
    compare_pages(&dir.path().join("peer_rx.tif"), &refs);
}

fn ours_receive(modems: &str, bps: u32) {
    let dir = tempfile::tempdir().unwrap();
    let tif = test_tiff();
    let refs = reference_pages(&tif);
    assert!(refs.len() >= 2, "the test fax should have 2 pages");
    let r = run(false, modems, &tif, dir.path(), true, &[]);
    check(&r, bps, refs.len());
    let rx = dir.path().join("our_rx.tif");
    compare_pages(&rx, &refs);
    tiffinfo_clean(&rx);
    // The PDF renders, one page per fax page.
    let pdf = dir.path().join("our_rx.pdf");
    let out = Command::new("pdftoppm")
        .args(["-r", "50", "-png"])
        .arg(&pdf)
        .arg(dir.path().join("render"))
        .output()
        .expect("run pdftoppm (apt-get install poppler-utils)");
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let rendered = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("render"))
        .count();
    assert_eq!(rendered, refs.len());
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn send_to_spandsp_v27ter_4800() {
    ours_send("v27ter", 4800, None);
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn send_to_spandsp_v29_9600() {
    ours_send("v29", 9600, None);
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn receive_from_spandsp_v27ter_4800() {
    ours_receive("v27ter", 4800);
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn receive_from_spandsp_v29_9600() {
    ours_receive("v29", 9600);
}

/// A plain bilevel TIFF (PackBits, as libtiff's `tiffcp -c packbits` writes it) is read
/// and sent like a TIFF-F.
#[test]
#[ignore = "needs fax_peer (SpanDSP) and libtiff-tools; run by .ci/interop"]
fn send_packbits_tiff_to_spandsp() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.tif");
    let st = Command::new("tiffcp")
        .args(["-c", "packbits"])
        .arg(test_tiff())
        .arg(&plain)
        .status()
        .expect("run tiffcp");
    assert!(st.success());
    ours_send("v27ter,v29", 9600, Some(&plain));
}

/// SpanDSP hears us 25 dB down with noise at -55 dBm0: its TCF check fails at 9600 (FTT) and
/// we fall back to 7200, where the pages go through.
#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn send_falls_back_when_spandsp_hears_a_weak_noisy_line() {
    let dir = tempfile::tempdir().unwrap();
    let tif = test_tiff();
    let refs = reference_pages(&tif);
    let impair = ["--rx-gain", "-25", "--rx-noise", "-55", "--seed", "1"];
    let r = run(true, "v27ter,v29", &tif, dir.path(), false, &impair);
    check(&r, 7200, refs.len());
    let err = String::from_utf8_lossy(&r.ours.stderr);
    assert!(err.contains("Training { rate: V29_9600, ok: false }"), "{err}");
    assert!(err.contains("Training { rate: V29_7200, ok: true }"), "{err}");
    let pages = read_tiff(&std::fs::read(dir.path().join("peer_rx.tif")).unwrap()).unwrap();
    assert_eq!(pages.len(), refs.len());
    for (p, r) in pages.iter().zip(&refs) {
        assert_eq!(p.bitmap.height, r.height);
        assert!(p.bad_rows * 100 <= p.bitmap.height, "{} bad rows", p.bad_rows);
    }
}

/// ECM both ways at V.29 9600: the DCS chose ECM on both sides (the summaries say `ecm=1`),
/// the pages arrive intact.
fn ecm_interop(ours_send: bool) {
    let dir = tempfile::tempdir().unwrap();
    let tif = test_tiff();
    let refs = reference_pages(&tif);
    assert!(refs.len() >= 2, "the test fax should have 2 pages");
    let r = run_opts(ours_send, "v29", &tif, dir.path(), !ours_send, &[], &["--ecm"]);
    check(&r, 9600, refs.len());
    assert_eq!(field(&r.ours_summary, "ecm"), "1", "{}", r.ours_summary);
    assert_eq!(field(&r.peer_summary, "ecm"), "1", "{}", r.peer_summary);
    let rx = dir.path().join(if ours_send { "peer_rx.tif" } else { "our_rx.tif" });
    compare_pages(&rx, &refs);
    if !ours_send {
        tiffinfo_clean(&rx);
    }
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn send_to_spandsp_v29_9600_ecm() {
    ecm_interop(true);
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn receive_from_spandsp_v29_9600_ecm() {
    ecm_interop(false);
}

/// SpanDSP hears us 25 dB down with noise at -55 dBm0, in ECM: frames arrive garbled, it
/// answers PPR, we send only those frames again, and the pages arrive bit-exact at 9600.
#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn send_to_spandsp_ecm_retransmits_after_ppr_on_a_noisy_line() {
    let dir = tempfile::tempdir().unwrap();
    let tif = test_tiff();
    let refs = reference_pages(&tif);
    let impair = ["--rx-gain", "-25", "--rx-noise", "-55", "--seed", "1"];
    let r = run_opts(true, "v29", &tif, dir.path(), false, &impair, &["--ecm"]);
    check(&r, 9600, refs.len());
    assert_eq!(field(&r.peer_summary, "ecm"), "1", "{}", r.peer_summary);
    let err = String::from_utf8_lossy(&r.ours.stderr);
    assert!(err.contains("FrameReceived(0xbc)"), "no PPR from SpanDSP:\n{err}");
    compare_pages(&dir.path().join("peer_rx.tif"), &refs);
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn send_to_spandsp_v17_14400() {
    ours_send("v17", 14400, None);
}

#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn receive_from_spandsp_v17_14400() {
    ours_receive("v17", 14400);
}

/// Every modem offered on both sides: V.17 14400 is chosen.
#[test]
#[ignore = "needs fax_peer (SpanDSP); run by .ci/interop"]
fn send_to_spandsp_all_modems_picks_v17_14400() {
    ours_send("v27ter,v29,v17", 14400, None);
}
