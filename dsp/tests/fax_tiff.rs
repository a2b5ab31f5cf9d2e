//! TIFF Class F interoperability with libtiff's command-line tools.
//!
//! These tests need `tiffinfo`, `tiffcp`, `ppm2tiff`, `tiffset` and `python3` (for the peer
//! script `shared/peers/mk_test_tiff.py`). When a tool is missing the test prints a note and
//! passes, so `cargo test` works on a fresh machine.

use cardpbx_dsp::fax::t4::{Bitmap, Coding};
use cardpbx_dsp::fax::tiff::{read_tiff, tiff_fuzz_check, write_tiff, FaxPage, WriteOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn tools_or_skip(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        true
    } else {
        println!("note: skipping {test}: missing tools {missing:?}");
        false
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("cardpbx-fax-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &str, args: &[&Path]) -> std::process::Output {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A text-like test page: border, rulings and scattered blocks.
fn page(width: usize, height: usize, seed: u64) -> Bitmap {
    let mut b = Bitmap::new(width, height);
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s as usize
    };
    for x in 0..width {
        b.set(x, 0, true);
        b.set(x, height - 1, true);
    }
    for y in 0..height {
        b.set(0, y, true);
        b.set(width - 1, y, true);
        if y % 9 == 4 {
            for x in (10..width - 10).step_by(2) {
                b.set(x, y, true);
            }
        }
    }
    for _ in 0..60 {
        let (x0, y0) = (next() % width, next() % height);
        let (w, h) = (1 + next() % 70, 1 + next() % 9);
        for y in y0..(y0 + h).min(height) {
            for x in x0..(x0 + w).min(width) {
                b.set(x, y, true);
            }
        }
    }
    b
}

#[test]
fn decode_libtiff_reference_fax() {
    if !tools_or_skip("decode_libtiff_reference_fax", &["python3", "ppm2tiff", "tiffset", "tiffcp"])
    {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/mk_test_tiff.py");
    if !script.exists() {
        println!("note: skipping: {} not found", script.display());
        return;
    }
    let dir = TempDir::new("ref");
    let tif = dir.path("ref.tif");
    run("python3", &[&script, &tif, Path::new("3")]);
    let pages = read_tiff(&std::fs::read(&tif).unwrap()).unwrap();
    assert_eq!(pages.len(), 3);
    for (n, p) in pages.iter().enumerate() {
        let pbm = std::fs::read(format!("{}.p{}.pbm", tif.display(), n + 1)).unwrap();
        let want = Bitmap::from_pbm(&pbm).unwrap();
        assert_eq!(p.bitmap.width, 1728);
        assert_eq!(p.bitmap.height, 1100);
        assert_eq!(p.bad_rows, 0, "page {n}");
        assert_eq!(p.coding, Coding::Mr, "ppm2tiff -c g3:2d");
        assert_eq!(p.x_resolution, 204.0);
        assert_eq!(p.y_resolution, 98.0);
        assert!(p.bitmap == want, "page {} differs from its PBM reference", n + 1);
    }
    tiff_fuzz_check(&std::fs::read(&tif).unwrap());
}

#[test]
fn libtiff_reads_what_we_write() {
    if !tools_or_skip("libtiff_reads_what_we_write", &["tiffinfo", "tiffcp"]) {
        return;
    }
    let dir = TempDir::new("ours");
    let pages: Vec<FaxPage> = [(1728, 120, 1), (2048, 60, 2), (2432, 40, 3)]
        .iter()
        .map(|&(w, h, s)| FaxPage::new(page(w, h, s), s == 2))
        .collect();
    let variants = [
        WriteOptions::default(),
        WriteOptions {
            coding: Coding::Mr,
            k: 4,
            fill_order: 1,
            rows_per_strip: Some(16),
            byte_align_eol: false,
        },
        WriteOptions {
            coding: Coding::Mr,
            k: 2,
            fill_order: 2,
            rows_per_strip: None,
            byte_align_eol: true,
        },
    ];
    for (i, opts) in variants.iter().enumerate() {
        let ours = dir.path(&format!("ours{i}.tif"));
        std::fs::write(&ours, write_tiff(&pages, opts)).unwrap();
        let info = run("tiffinfo", &[&ours]);
        let text = String::from_utf8_lossy(&info.stdout).to_string()
            + &String::from_utf8_lossy(&info.stderr);
        assert!(!text.contains("Error"), "{text}");
        assert!(text.contains("CCITT Group 3"), "{text}");
        assert!(text.contains("Image Width: 1728 Image Length: 120"), "{text}");
        // libtiff decodes our T.4 data: every page must match exactly.
        let raw = dir.path(&format!("raw{i}.tif"));
        let out = run("tiffcp", &[Path::new("-c"), Path::new("none"), &ours, &raw]);
        assert!(out.stderr.is_empty(), "tiffcp warnings: {}", String::from_utf8_lossy(&out.stderr));
        let back = read_tiff(&std::fs::read(&raw).unwrap()).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in pages.iter().zip(&back) {
            assert_eq!(b.compression, 1);
            assert!(a.bitmap == b.bitmap, "variant {i}: libtiff decoded a different image");
        }
    }
}

#[test]
fn we_read_libtiff_g3_g4_variants() {
    if !tools_or_skip("we_read_libtiff_g3_g4_variants", &["tiffcp"]) {
        return;
    }
    let dir = TempDir::new("variants");
    let src = FaxPage::new(page(1728, 90, 7), true);
    let ours = dir.path("src.tif");
    std::fs::write(&ours, write_tiff(std::slice::from_ref(&src), &WriteOptions::default()))
        .unwrap();
    let cases: [&[&str]; 6] = [
        &["-c", "g3"],
        &["-c", "g3:2d"],
        &["-c", "g3:2d:fill", "-f", "lsb2msb"],
        &["-c", "g4"],
        &["-c", "g4", "-B", "-r", "13"],
        &["-c", "g3", "-B", "-f", "msb2lsb", "-r", "7"],
    ];
    for (i, args) in cases.iter().enumerate() {
        let out = dir.path(&format!("v{i}.tif"));
        let mut all: Vec<&Path> = args.iter().map(Path::new).collect();
        all.push(&ours);
        all.push(&out);
        run("tiffcp", &all);
        let data = std::fs::read(&out).unwrap();
        let p = read_tiff(&data).unwrap_or_else(|e| panic!("tiffcp {args:?}: {e}"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].bad_rows, 0, "tiffcp {args:?}");
        assert!(p[0].bitmap == src.bitmap, "tiffcp {args:?}: image differs");
        tiff_fuzz_check(&data);
    }
}

#[test]
fn tiff2pdf_accepts_our_file() {
    if !tools_or_skip("tiff2pdf_accepts_our_file", &["tiff2pdf"]) {
        return;
    }
    let dir = TempDir::new("pdf");
    let ours = dir.path("doc.tif");
    let pages = vec![FaxPage::new(page(1728, 200, 9), false); 2];
    std::fs::write(&ours, write_tiff(&pages, &WriteOptions::default())).unwrap();
    let pdf = dir.path("doc.pdf");
    run("tiff2pdf", &[Path::new("-o"), &pdf, &ours]);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"));
}

#[test]
fn fuzz_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/tiff_input");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("note: no corpus at {}", dir.display());
        return;
    };
    let mut n = 0;
    for e in entries {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        tiff_fuzz_check(&data);
        n += 1;
    }
    assert!(n >= 1);
}

/// Writes the fuzz seed files: `cargo test -p cardpbx-dsp --test fax_tiff -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/tiff_input");
    std::fs::create_dir_all(&dir).unwrap();
    let small = |s| FaxPage::new(page(64, 12, s), false);
    let seeds: [(&str, Vec<FaxPage>, WriteOptions); 4] = [
        ("mh_lsb_1page.tif", vec![small(1)], WriteOptions::default()),
        (
            "mr_msb_2pages_strips.tif",
            vec![small(2), small(3)],
            WriteOptions {
                coding: Coding::Mr,
                k: 4,
                fill_order: 1,
                rows_per_strip: Some(5),
                byte_align_eol: false,
            },
        ),
        (
            "mr_aligned_fine.tif",
            vec![FaxPage::new(page(40, 6, 4), true)],
            WriteOptions {
                coding: Coding::Mr,
                k: 2,
                fill_order: 2,
                rows_per_strip: None,
                byte_align_eol: true,
            },
        ),
        ("mh_wide_1728.tif", vec![FaxPage::new(page(1728, 3, 5), false)], WriteOptions::default()),
    ];
    for (name, pages, opts) in &seeds {
        std::fs::write(dir.join(name), write_tiff(pages, opts)).unwrap();
    }
    if have("tiffcp") {
        let src = dir.join("mh_lsb_1page.tif");
        for (name, args) in
            [("g4_bigendian.tif", ["-c", "g4", "-B"]), ("raw_bigendian.tif", ["-c", "none", "-B"])]
        {
            let out = dir.join(name);
            let mut all: Vec<&Path> = args.iter().map(Path::new).collect();
            all.push(&src);
            all.push(&out);
            run("tiffcp", &all);
        }
    }
}
