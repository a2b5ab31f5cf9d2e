use super::*;
use crate::fax::t4::encode_page_with;
use proptest::prelude::*;

fn image(width: usize, height: usize, seed: u64) -> Bitmap {
    let mut s = seed | 1;
    let mut b = Bitmap::new(width, height);
    for y in 0..height {
        for x in 0..width {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Sparse blocks: mostly white with short black runs.
            if (x / 8 + y / 4).is_multiple_of(5) && s.is_multiple_of(3) {
                b.set(x, y, true);
            }
        }
    }
    b
}

fn pages() -> Vec<FaxPage> {
    vec![
        FaxPage::new(image(1728, 40, 1), false),
        FaxPage::new(image(1728, 33, 2), true),
        FaxPage::new(image(2048, 10, 3), false),
    ]
}

#[test]
fn round_trip_all_write_options() {
    let src = pages();
    for coding in [Coding::Mh, Coding::Mr] {
        for fill_order in [1, 2] {
            for rows_per_strip in [None, Some(1), Some(7)] {
                for byte_align_eol in [false, true] {
                    let opts =
                        WriteOptions { coding, k: 4, fill_order, rows_per_strip, byte_align_eol };
                    let file = write_tiff(&src, &opts);
                    let back = read_tiff(&file).unwrap();
                    assert_eq!(back.len(), 3);
                    for (n, (a, b)) in src.iter().zip(&back).enumerate() {
                        assert_eq!(a.bitmap, b.bitmap, "{opts:?}");
                        assert_eq!(b.bad_rows, 0);
                        assert_eq!(b.coding, coding);
                        assert_eq!(b.compression, 3);
                        assert_eq!(b.x_resolution, 204.0);
                        assert_eq!(b.y_resolution, a.y_resolution);
                        assert_eq!(b.resolution_unit, 2);
                        assert_eq!(b.page_number, Some((n as u16, 3)));
                    }
                }
            }
        }
    }
}

/// Minimal TIFF builder for reader tests: one strip per entry in `strips`.
struct Builder {
    big: bool,
    entries: Vec<(u16, u16, Vec<u32>)>,
}

impl Builder {
    fn new(big: bool) -> Self {
        Builder { big, entries: Vec::new() }
    }
    fn tag(mut self, tag: u16, typ: u16, values: &[u32]) -> Self {
        self.entries.retain(|e| e.0 != tag);
        self.entries.push((tag, typ, values.to_vec()));
        self
    }
    fn without(mut self, tag: u16) -> Self {
        self.entries.retain(|e| e.0 != tag);
        self
    }
    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    /// Builds the file with `strips` placed after the header; StripOffsets/Counts are filled in.
    fn build(mut self, strips: &[Vec<u8>]) -> Vec<u8> {
        let mut out = if self.big { b"MM\0\x2a".to_vec() } else { b"II\x2a\0".to_vec() };
        out.extend_from_slice(&[0; 4]);
        let mut offs = Vec::new();
        for s in strips {
            offs.push(out.len() as u32);
            out.extend_from_slice(s);
        }
        if !self.entries.iter().any(|e| e.0 == tag::STRIP_OFFSETS) {
            self = self.tag(tag::STRIP_OFFSETS, 4, &offs);
        }
        if !self.entries.iter().any(|e| e.0 == tag::STRIP_BYTE_COUNTS) {
            let counts: Vec<u32> = strips.iter().map(|s| s.len() as u32).collect();
            self = self.tag(tag::STRIP_BYTE_COUNTS, 4, &counts);
        }
        self.entries.sort_by_key(|e| e.0);
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let ifd = out.len() as u32;
        let h = self.u32b(ifd);
        out[4..8].copy_from_slice(&h);
        let mut extra_at = out.len() + 2 + 12 * self.entries.len() + 4;
        let mut extra = Vec::new();
        out.extend_from_slice(&self.u16b(self.entries.len() as u16));
        for (t, typ, vals) in &self.entries {
            let mut bytes = Vec::new();
            let count = if *typ == 5 { vals.len() / 2 } else { vals.len() };
            for &v in vals {
                match typ {
                    3 => bytes.extend_from_slice(&self.u16b(v as u16)),
                    _ => bytes.extend_from_slice(&self.u32b(v)),
                }
            }
            out.extend_from_slice(&self.u16b(*t));
            out.extend_from_slice(&self.u16b(*typ));
            out.extend_from_slice(&self.u32b(count as u32));
            if bytes.len() <= 4 {
                bytes.resize(4, 0);
                out.extend_from_slice(&bytes);
            } else {
                out.extend_from_slice(&self.u32b(extra_at as u32));
                extra_at += bytes.len();
                extra.extend_from_slice(&bytes);
            }
        }
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&extra);
        out
    }
}

fn base(big: bool, width: u32, height: u32) -> Builder {
    Builder::new(big)
        .tag(tag::IMAGE_WIDTH, 3, &[width])
        .tag(tag::IMAGE_LENGTH, 4, &[height])
        .tag(tag::BITS_PER_SAMPLE, 3, &[1])
        .tag(tag::COMPRESSION, 3, &[3])
        .tag(tag::PHOTOMETRIC, 3, &[0])
        .tag(tag::X_RESOLUTION, 5, &[204, 1])
        .tag(tag::Y_RESOLUTION, 5, &[392, 2])
}

#[test]
fn big_endian_multi_strip_mr() {
    let b = image(1728, 12, 9);
    let enc = EncodeOptions::tiff(Coding::Mr, 2);
    let top =
        Bitmap::from_packed_rows(1728, &(0..8).map(|y| b.row(y).to_vec()).collect::<Vec<_>>());
    let bottom =
        Bitmap::from_packed_rows(1728, &(8..12).map(|y| b.row(y).to_vec()).collect::<Vec<_>>());
    let strips = [encode_page_with(&top, &enc), encode_page_with(&bottom, &enc)];
    let file = base(true, 1728, 12)
        .tag(tag::ROWS_PER_STRIP, 4, &[8])
        .tag(tag::T4_OPTIONS, 4, &[1])
        .tag(tag::FILL_ORDER, 3, &[1])
        .build(&strips);
    let p = read_tiff(&file).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].bitmap, b);
    assert_eq!(p[0].y_resolution, 196.0);
    assert_eq!(p[0].coding, Coding::Mr);
}

#[test]
fn uncompressed_t6_and_black_is_zero() {
    let b = image(20, 5, 4);
    // Compression 1, BlackIsZero, LSB-first.
    let mut inv = b.clone();
    for v in &mut inv.bits {
        *v = !*v;
    }
    let raw = t4::reverse_bit_order(&inv.bits);
    let file = base(false, 20, 5)
        .tag(tag::COMPRESSION, 3, &[1])
        .tag(tag::PHOTOMETRIC, 3, &[1])
        .tag(tag::FILL_ORDER, 3, &[2])
        .build(&[raw]);
    assert_eq!(read_tiff(&file).unwrap()[0].bitmap, b);
    // Compression 4 (T.6).
    let file = base(false, 20, 5).tag(tag::COMPRESSION, 3, &[4]).build(&[t4::encode_t6(&b)]);
    let p = read_tiff(&file).unwrap();
    assert_eq!(p[0].bitmap, b);
    assert_eq!(p[0].compression, 4);
}

#[test]
fn damaged_strip_counts_bad_rows_not_error() {
    let b = image(1728, 10, 6);
    let mut data = encode_page_with(&b, &EncodeOptions::tiff(Coding::Mh, 0));
    data.truncate(data.len() / 2);
    let file = base(false, 1728, 10).build(&[data]);
    let p = read_tiff(&file).unwrap();
    assert_eq!(p[0].bitmap.height, 10);
    assert!(p[0].bad_rows >= 1);
}

fn err(file: &[u8]) -> String {
    read_tiff(file).unwrap_err().to_string()
}

#[test]
fn malformed_files_give_clear_errors() {
    let good = base(false, 8, 1).build(&[vec![0x00, 0x19, 0x80]]);
    assert!(read_tiff(&good).is_ok(), "{:?}", read_tiff(&good));
    assert!(err(b"II*").contains("truncated TIFF: TIFF header"));
    assert!(err(b"XX*\0\x08\0\0\0").contains("byte order"));
    assert!(err(b"II\x2b\0\x08\0\0\0").contains("version 43"));
    assert!(err(b"II\x2a\0\0\0\0\0").contains("no image"));
    assert!(err(b"II\x2a\0\xff\0\0\0").contains("offset 255"));
    // IFD loop: next-IFD pointer aimed at itself.
    let mut looped = good.clone();
    let ifd = u32::from_le_bytes(looped[4..8].try_into().unwrap()) as usize;
    let n = u16::from_le_bytes([looped[ifd], looped[ifd + 1]]) as usize;
    let next = ifd + 2 + 12 * n;
    looped[next..next + 4].copy_from_slice(&(ifd as u32).to_le_bytes());
    assert!(err(&looped).contains("loops back"), "{}", err(&looped));
    let e = err(&base(false, 8, 1).without(tag::IMAGE_WIDTH).build(&[vec![0]]));
    assert!(e.contains("ImageWidth (256) is missing"), "{e}");
    let e = err(&base(false, 0, 1).build(&[vec![0]]));
    assert!(e.contains("ImageWidth (256) has invalid value 0"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::BITS_PER_SAMPLE, 3, &[8]).build(&[vec![0]]));
    assert!(e.contains("BitsPerSample"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::COMPRESSION, 3, &[5]).build(&[vec![0]]));
    assert!(e.contains("Compression 5"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::COMPRESSION, 3, &[2]).build(&[vec![0]]));
    assert!(e.contains("Compression 2"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::FILL_ORDER, 3, &[3]).build(&[vec![0]]));
    assert!(e.contains("FillOrder"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::T4_OPTIONS, 4, &[2]).build(&[vec![0]]));
    assert!(e.contains("uncompressed mode"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::STRIP_OFFSETS, 4, &[1000]).build(&[vec![0]]));
    assert!(e.contains("strip 0 (offset 1000"), "{e}");
    let e = err(&base(false, 8, 4).tag(tag::ROWS_PER_STRIP, 4, &[1]).build(&[vec![0]]));
    assert!(e.contains("fewer strips"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::X_RESOLUTION, 5, &[204, 0]).build(&[vec![0]]));
    assert!(e.contains("zero denominator"), "{e}");
    let e = err(&base(false, 8, 1).tag(tag::IMAGE_WIDTH, 2, &[8]).build(&[vec![0]]));
    assert!(e.contains("tag 256 has type 2"), "{e}");
    let e = err(&base(false, 16384, 60000).build(&[vec![0]]));
    assert!(e.contains("too large"), "{e}");
    // Tag value pointing past the end of the file.
    let mut far = base(false, 8, 1).build(&[vec![0]]);
    let len = far.len();
    far.truncate(len - 4);
    assert!(err(&far).contains("truncated"), "{}", err(&far));
}

#[test]
fn fuzz_check_accepts_good_and_bad_files() {
    let file = write_tiff(&pages(), &WriteOptions::default());
    tiff_fuzz_check(&file);
    tiff_fuzz_check(b"");
    tiff_fuzz_check(b"II\x2a\0\x08\0\0\0");
    // Every single-byte corruption of a small file.
    let small = write_tiff(&[FaxPage::new(image(40, 6, 2), false)], &WriteOptions::default());
    for i in 0..small.len() {
        for v in [0x00, 0xFF, 0x55] {
            let mut m = small.clone();
            m[i] = v;
            tiff_fuzz_check(&m);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        tiff_fuzz_check(&data);
        let mut with_header = b"II\x2a\0\x08\0\0\0".to_vec();
        with_header.extend_from_slice(&data);
        tiff_fuzz_check(&with_header);
    }

    #[test]
    fn mutated_files_never_panic(seed in any::<u64>(), n in 1usize..8) {
        let mut f = write_tiff(&[FaxPage::new(image(64, 8, seed), false)], &WriteOptions::default());
        let mut s = seed | 1;
        for _ in 0..n {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            let i = (s % f.len() as u64) as usize;
            f[i] = (s >> 32) as u8;
        }
        tiff_fuzz_check(&f);
    }
}

/// PackBits coding for the test: runs of 3+ equal bytes as repeats, the rest as literals.
fn pack_bits(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let run = data[i..].iter().take(128).take_while(|&&b| b == data[i]).count();
        if run >= 3 {
            out.push((1 - run as i16) as u8);
            out.push(data[i]);
            i += run;
        } else {
            let start = i;
            while i < data.len()
                && i - start < 128
                && !(i + 2 < data.len() && data[i] == data[i + 1] && data[i] == data[i + 2])
            {
                i += 1;
            }
            out.push((i - start - 1) as u8);
            out.extend_from_slice(&data[start..i]);
        }
    }
    out
}

#[test]
fn packbits_bilevel_multi_strip() {
    let b = image(1728, 9, 11);
    let stride = b.stride();
    let strips: Vec<Vec<u8>> = b.bits.chunks(stride * 4).map(pack_bits).collect();
    assert!(strips[0].len() < stride * 4, "PackBits compresses the sparse image");
    let file = base(false, 1728, 9)
        .tag(tag::COMPRESSION, 3, &[32773])
        .tag(tag::ROWS_PER_STRIP, 4, &[4])
        .build(&strips);
    let p = read_tiff(&file).unwrap();
    assert_eq!(p[0].bitmap, b);
    assert_eq!(p[0].bad_rows, 0);
    // A no-op (-128) header and a truncated strip: the missing rows are white and bad.
    let mut short = vec![0x80];
    short.extend_from_slice(&strips[0][..strips[0].len() / 2]);
    let file = base(false, 1728, 4)
        .tag(tag::COMPRESSION, 3, &[32773])
        .tag(tag::ROWS_PER_STRIP, 4, &[4])
        .build(&[short]);
    let p = read_tiff(&file).unwrap();
    assert_eq!(p[0].bitmap.height, 4);
    assert!(p[0].bad_rows > 0);
}

#[test]
fn to_fax_page_keeps_fax_pages_and_converts_others() {
    let fax = FaxPage::new(image(1728, 20, 12), true);
    assert_eq!(to_fax_page(&fax), fax);
    // A 300 dpi letter-width scan (2550 pels = 8.5 in): shrunk to 1728, fine resolution.
    let mut scan = FaxPage::new(Bitmap::new(2550, 300), false);
    (scan.x_resolution, scan.y_resolution) = (300.0, 300.0);
    for y in 100..103 {
        for x in 0..2550 {
            scan.bitmap.set(x, y, true);
        }
    }
    let p = to_fax_page(&scan);
    assert_eq!(p.bitmap.width, 1728);
    assert_eq!(p.y_resolution, 196.0);
    // 300 lines × 196/300, times 1728/1734 (the shrink to fit 1728 pels) = 195.3.
    assert_eq!(p.bitmap.height, 195);
    // The 3-line rule is still there, across the whole width.
    let rows: Vec<usize> = (0..p.bitmap.height).filter(|&y| p.bitmap.get(864, y)).collect();
    assert!(!rows.is_empty() && rows.len() <= 3, "{rows:?}");
    assert!(p.bitmap.get(0, rows[0]) && p.bitmap.get(1727, rows[0]));
    // A narrow 204 × 98 dpi page (1000 pels) is centred on 1728 pels.
    let mut narrow = FaxPage::new(Bitmap::new(1000, 10), false);
    for x in 0..1000 {
        narrow.bitmap.set(x, 5, true);
    }
    let p = to_fax_page(&narrow);
    assert_eq!((p.bitmap.width, p.bitmap.height), (1728, 10));
    assert!(!p.bitmap.get(363, 5) && p.bitmap.get(364, 5) && p.bitmap.get(1363, 5));
    assert!(!p.bitmap.get(1364, 5));
    // Centimetres: 80 × 38.6 pels/cm is 203.2 × 98 dpi: already fax, converted to inches.
    let mut cm = FaxPage::new(image(1728, 8, 13), false);
    (cm.x_resolution, cm.y_resolution, cm.resolution_unit) = (80.3, 38.6, 3);
    let p = to_fax_page(&cm);
    assert_eq!((p.bitmap.clone(), p.y_resolution, p.resolution_unit), (cm.bitmap, 98.0, 2));
}
