//! `cardpbx fax send|receive` against itself over two FIFOs (either process may start and
//! open first), and the end-of-input and failure paths.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use cardpbx_dsp::fax::t4::{Bitmap, WIDTH_A4};
use cardpbx_dsp::fax::tiff::{read_tiff, write_tiff, FaxPage, WriteOptions};

fn document(dir: &Path) -> (std::path::PathBuf, Vec<FaxPage>) {
    let pages: Vec<FaxPage> = (0..2)
        .map(|n| {
            let mut b = Bitmap::new(WIDTH_A4, 150);
            for y in 0..150 {
                for x in (y * 11 + n * 300) % 1500..(y * 11 + n * 300) % 1500 + 40 {
                    b.set(x, y, true);
                }
            }
            FaxPage::new(b, n == 1)
        })
        .collect();
    let path = dir.join("doc.tif");
    std::fs::write(&path, write_tiff(&pages, &WriteOptions::default())).unwrap();
    (path, pages)
}

fn fifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

fn cardpbx(args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardpbx"));
    c.arg("fax").args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn summary(o: &Output) -> String {
    let s = String::from_utf8_lossy(&o.stdout);
    s.lines().find(|l| l.starts_with("fax summary:")).unwrap_or_else(|| panic!("{s}")).to_string()
}

fn back_to_back(receiver_first: bool, modems: &str, bps: u32) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (doc, pages) = document(d);
    let (s2r, r2s, rx, pdf) = (d.join("s2r"), d.join("r2s"), d.join("rx.tif"), d.join("rx.pdf"));
    fifo(&s2r);
    fifo(&r2s);
    let m = std::ffi::OsStr::new(modems);
    let mut send = cardpbx(&[
        "send".as_ref(),
        doc.as_os_str(),
        "--in".as_ref(),
        r2s.as_os_str(),
        "--out".as_ref(),
        s2r.as_os_str(),
        "--modems".as_ref(),
        m,
    ]);
    let mut recv = cardpbx(&[
        "receive".as_ref(),
        rx.as_os_str(),
        "--pdf".as_ref(),
        pdf.as_os_str(),
        "--in".as_ref(),
        s2r.as_os_str(),
        "--out".as_ref(),
        r2s.as_os_str(),
        "--modems".as_ref(),
        m,
    ]);
    let (s, r) = if receiver_first {
        let r = recv.spawn().unwrap();
        let s = send.spawn().unwrap();
        (s, r)
    } else {
        let s = send.spawn().unwrap();
        let r = recv.spawn().unwrap();
        (s, r)
    };
    let (s, r) = (s.wait_with_output().unwrap(), r.wait_with_output().unwrap());
    let diag = format!(
        "send: {}\n{}\nrecv: {}\n{}",
        String::from_utf8_lossy(&s.stdout),
        String::from_utf8_lossy(&s.stderr),
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(s.status.success() && r.status.success(), "{diag}");
    assert_eq!(
        summary(&s),
        format!("fax summary: role=send status=success pages=2 bit_rate={bps} ecm=0")
    );
    assert_eq!(
        summary(&r),
        format!("fax summary: role=recv status=success pages=2 bit_rate={bps} ecm=0")
    );
    let got = read_tiff(&std::fs::read(&rx).unwrap()).unwrap();
    assert_eq!(got.len(), 2);
    for (g, p) in got.iter().zip(&pages) {
        assert_eq!(g.bitmap, p.bitmap);
        assert_eq!(g.y_resolution, p.y_resolution);
    }
    let pdf = std::fs::read(&pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF\n"));
}

#[test]
fn v29_receiver_opens_first() {
    back_to_back(true, "v29,v27ter", 9600);
}

#[test]
fn v27ter_sender_opens_first() {
    back_to_back(false, "v27ter", 4800);
}

#[test]
fn end_of_input_ends_the_session_with_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (doc, _) = document(d);
    let (inp, out) = (d.join("empty.raw"), d.join("out.raw"));
    std::fs::write(&inp, b"").unwrap();
    let o = cardpbx(&[
        "send".as_ref(),
        doc.as_os_str(),
        "--in".as_ref(),
        inp.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // Input ended at once: T.30 ran on silence and never heard DIS (or timed out waiting).
    let s = summary(&o);
    assert!(s.starts_with("fax summary: role=send status="), "{s}");
    assert!(s.ends_with("pages=0 bit_rate=0 ecm=0"), "{s}");
    assert!(!s.contains("status=success"), "{s}");
    // One block (20 ms, 320 bytes) was written before the read hit the end.
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 320);
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (doc, _) = document(d);
    let o = cardpbx(&[
        "send".as_ref(),
        doc.as_os_str(),
        "--in".as_ref(),
        "x".as_ref(),
        "--out".as_ref(),
        d.join("y").as_os_str(),
        "--modems".as_ref(),
        "v34".as_ref(),
    ])
    .output()
    .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown modem \"v34\""));
    let o = cardpbx(&[
        "send".as_ref(),
        d.join("missing.tif").as_os_str(),
        "--in".as_ref(),
        "x".as_ref(),
        "--out".as_ref(),
        "y".as_ref(),
    ])
    .output()
    .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.tif"));
}
