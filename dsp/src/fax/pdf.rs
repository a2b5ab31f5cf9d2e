//! A minimal PDF writer for fax documents: one PDF page per fax page, each an image XObject
//! holding the page's T.4 (Group 3) data under `/Filter /CCITTFaxDecode`, so viewers decode
//! the fax coding themselves.
//!
//! Coding: MR (Group 3 2-D) with K = 2 at standard and 4 at fine resolution, EOL before every
//! line, RTC at the end, first bit in the most significant bit (PDF's order). The
//! `/DecodeParms` say `/K`, `/Columns`, `/Rows`, `/EndOfLine true` and `/BlackIs1 false`
//! (the filter's 0 = black, as `/DeviceGray` with one bit per sample draws it). The page is
//! sized from the fax resolution (204 dpi across, 98/196 dpi down).

use std::fmt::Write as _;

use super::t4::{self, Coding, EncodeOptions};
use super::tiff::FaxPage;

/// Points per inch.
const PT_PER_INCH: f64 = 72.0;

fn dpi(v: f64, unit: u16, default: f64) -> f64 {
    let d = if unit == 3 { v * 2.54 } else { v };
    if d.is_finite() && d > 1.0 {
        d
    } else {
        default
    }
}

/// The `/DecodeParms` K for a page (2 standard, 4 fine).
fn k_for(page: &FaxPage) -> u32 {
    if dpi(page.y_resolution, page.resolution_unit, 98.0) > 150.0 {
        4
    } else {
        2
    }
}

/// Writes `pages` as a PDF document.
pub fn write_pdf(pages: &[FaxPage]) -> Vec<u8> {
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let n = pages.len();
    // Objects: 1 catalog, 2 page tree, then per page i: 3+3i page, 4+3i contents, 5+3i image.
    let total = 2 + 3 * n;
    let mut offsets = vec![0usize; total + 1];
    let mut obj = |out: &mut Vec<u8>, id: usize, dict: &str, stream: Option<&[u8]>| {
        offsets[id] = out.len();
        out.extend_from_slice(format!("{id} 0 obj\n{dict}").as_bytes());
        if let Some(s) = stream {
            out.extend_from_slice(b"\nstream\n");
            out.extend_from_slice(s);
            out.extend_from_slice(b"\nendstream");
        }
        out.extend_from_slice(b"\nendobj\n");
    };
    obj(&mut out, 1, "<< /Type /Catalog /Pages 2 0 R >>", None);
    let kids: String = (0..n).fold(String::new(), |mut s, i| {
        let _ = write!(s, "{} 0 R ", 3 + 3 * i);
        s
    });
    obj(&mut out, 2, &format!("<< /Type /Pages /Kids [ {kids}] /Count {n} >>"), None);
    for (i, page) in pages.iter().enumerate() {
        let (pid, cid, iid) = (3 + 3 * i, 4 + 3 * i, 5 + 3 * i);
        let b = &page.bitmap;
        let w_pt =
            b.width as f64 / dpi(page.x_resolution, page.resolution_unit, 204.0) * PT_PER_INCH;
        let h_pt =
            b.height as f64 / dpi(page.y_resolution, page.resolution_unit, 98.0) * PT_PER_INCH;
        obj(
            &mut out,
            pid,
            &format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt:.2} {h_pt:.2}] \
                 /Resources << /XObject << /Im{i} {iid} 0 R >> >> /Contents {cid} 0 R >>"
            ),
            None,
        );
        let content = format!("q {w_pt:.2} 0 0 {h_pt:.2} 0 0 cm /Im{i} Do Q");
        obj(&mut out, cid, &format!("<< /Length {} >>", content.len()), Some(content.as_bytes()));
        let k = k_for(page);
        let data = t4::encode_page_with(b, &EncodeOptions::fax(Coding::Mr, k));
        obj(
            &mut out,
            iid,
            &format!(
                "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray \
                 /BitsPerComponent 1 /Length {} /Filter /CCITTFaxDecode /DecodeParms << /K {k} \
                 /Columns {} /Rows {} /EndOfLine true /EncodedByteAlign false /BlackIs1 false >> >>",
                b.width,
                b.height,
                data.len(),
                b.width,
                b.height
            ),
            Some(&data),
        );
    }
    let xref_at = out.len();
    let mut x = format!("xref\n0 {}\n0000000000 65535 f \n", total + 1);
    for off in &offsets[1..] {
        let _ = writeln!(x, "{off:010} 00000 n ");
    }
    let _ =
        write!(x, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n", total + 1);
    out.extend_from_slice(x.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::t4::{decode_page, Bitmap};

    fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
        hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    }

    fn text_after<'a>(pdf: &'a [u8], key: &str, from: usize) -> &'a str {
        let at = find(pdf, key.as_bytes(), from).expect(key) + key.len();
        let rest = std::str::from_utf8(&pdf[at..(at + 40).min(pdf.len())]).unwrap_or_else(|e| {
            std::str::from_utf8(&pdf[at..at + e.valid_up_to()]).expect("valid prefix")
        });
        rest.trim_start().split(|c: char| c.is_whitespace() || c == '/' || c == '>').next().unwrap()
    }

    fn pages() -> Vec<FaxPage> {
        let mut a = Bitmap::new(1728, 100);
        for y in 0..100 {
            for x in (y * 7) % 1700..(y * 7) % 1700 + 20 {
                a.set(x, y, true);
            }
        }
        let mut b = Bitmap::new(1728, 60);
        for y in 10..50 {
            for x in 100..1600 {
                b.set(x, y, true);
            }
        }
        vec![FaxPage::new(a, false), FaxPage::new(b, true)]
    }

    #[test]
    fn xref_offsets_point_at_their_objects() {
        let pdf = write_pdf(&pages());
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let sx = find(&pdf, b"startxref\n", 0).unwrap();
        let xref_at: usize = text_after(&pdf, "startxref", sx).parse().unwrap();
        assert!(pdf[xref_at..].starts_with(b"xref\n0 9\n"));
        let table = std::str::from_utf8(&pdf[xref_at..sx]).unwrap();
        let entries: Vec<&str> = table.lines().skip(2).take(9).collect();
        assert_eq!(entries[0], "0000000000 65535 f ");
        for (id, e) in entries.iter().enumerate().skip(1) {
            assert_eq!(e.len(), 19, "{e:?}");
            assert!(e.ends_with(" 00000 n "));
            let off: usize = e[..10].parse().unwrap();
            assert!(pdf[off..].starts_with(format!("{id} 0 obj\n").as_bytes()), "object {id}");
        }
        assert!(table.contains("trailer\n<< /Size 9 /Root 1 0 R >>"));
    }

    #[test]
    fn images_carry_decodable_g3_data_and_pages_are_sized_by_resolution() {
        let ps = pages();
        let pdf = write_pdf(&ps);
        // Page 1: 1728 / 204 in × 100 / 98 in; page 2: 60 / 196 in.
        assert!(find(&pdf, b"/MediaBox [0 0 609.88 73.47]", 0).is_some());
        assert!(find(&pdf, b"/MediaBox [0 0 609.88 22.04]", 0).is_some());
        let mut from = 0;
        for (p, k) in ps.iter().zip([2, 4]) {
            let at = find(&pdf, b"/Filter /CCITTFaxDecode", from).unwrap();
            let dict_start = find(&pdf, b"/Subtype /Image", from).unwrap();
            assert!(dict_start < at);
            assert_eq!(text_after(&pdf, "/K", at), k.to_string());
            assert_eq!(text_after(&pdf, "/Rows", at), p.bitmap.height.to_string());
            assert_eq!(text_after(&pdf, "/Columns", at), "1728");
            let len: usize = text_after(&pdf, "/Length", dict_start).parse().unwrap();
            let s = find(&pdf, b"stream\n", at).unwrap() + 7;
            assert_eq!(&pdf[s + len..s + len + 10], b"\nendstream");
            let d = decode_page(&pdf[s..s + len], 1728, Coding::Mr).unwrap();
            assert_eq!(d.bitmap, p.bitmap);
            from = s + len;
        }
    }

    /// A binary PGM (`P5`, 8 bits) thresholded at half grey: dark = black.
    fn read_pgm(data: &[u8]) -> Bitmap {
        let mut fields = Vec::new();
        let mut pos = 0;
        while fields.len() < 4 {
            while data[pos].is_ascii_whitespace() {
                pos += 1;
            }
            let start = pos;
            while !data[pos].is_ascii_whitespace() {
                pos += 1;
            }
            fields.push(String::from_utf8_lossy(&data[start..pos]).into_owned());
        }
        assert_eq!(fields[0], "P5");
        let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        let px = &data[pos + 1..];
        let mut b = Bitmap::new(w, h);
        for y in 0..h {
            for x in 0..w {
                b.set(x, y, px[y * w + x] < 128);
            }
        }
        b
    }

    /// Renders the PDF with poppler's `pdftoppm`, and extracts the images with `pdfimages`
    /// (which decodes them with poppler's CCITT filter) to compare them bit for bit (run by
    /// `.ci/interop`).
    #[test]
    #[ignore = "needs pdftoppm (poppler-utils); run by .ci/interop"]
    fn pdftoppm_renders_the_pages() {
        let ps = pages();
        let dir = std::env::temp_dir().join(format!("cardpbx-pdf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pdf = dir.join("fax.pdf");
        std::fs::write(&pdf, write_pdf(&ps)).unwrap();
        for (i, p) in ps.iter().enumerate() {
            let prefix = dir.join(format!("p{i}"));
            // Render at the fax resolution so pixels map 1:1.
            let (w, h) = (p.bitmap.width.to_string(), p.bitmap.height.to_string());
            let st = std::process::Command::new("pdftoppm")
                .args(["-gray", "-scale-to-x", &w, "-scale-to-y", &h])
                .args(["-f", &(i + 1).to_string(), "-l", &(i + 1).to_string(), "-singlefile"])
                .arg(&pdf)
                .arg(&prefix)
                .status()
                .expect("run pdftoppm");
            assert!(st.success());
            let got = read_pgm(&std::fs::read(prefix.with_extension("pgm")).unwrap());
            assert_eq!((got.width, got.height), (p.bitmap.width, p.bitmap.height));
            // Rendering scales and smooths a little: compare the amount of black.
            let (a, b) = (got.black_pels() as f64, p.bitmap.black_pels() as f64);
            assert!((a - b).abs() <= 0.05 * b, "page {i}: {a} black pels rendered, {b} drawn");
        }
        // The images themselves, decoded by poppler's CCITT filter: exact.
        let st = std::process::Command::new("pdfimages")
            .arg(&pdf)
            .arg(dir.join("im"))
            .status()
            .expect("run pdfimages");
        assert!(st.success());
        for (i, p) in ps.iter().enumerate() {
            let pbm = std::fs::read(dir.join(format!("im-{i:03}.pbm"))).unwrap();
            assert_eq!(Bitmap::from_pbm(&pbm).expect("PBM"), p.bitmap, "page {i}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
