use super::*;
use proptest::prelude::*;

/// Deterministic xorshift for test images.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Uniform noise with the given black density in percent.
pub(crate) fn noise(width: usize, height: usize, percent: usize, seed: u64) -> Bitmap {
    let mut r = Rng(seed | 1);
    let mut b = Bitmap::new(width, height);
    for y in 0..height {
        for x in 0..width {
            if r.below(100) < percent {
                b.set(x, y, true);
            }
        }
    }
    b
}

/// Text-like page: rectangles, rulings, a full black row, edge pels.
pub(crate) fn structured(width: usize, height: usize, seed: u64) -> Bitmap {
    let mut r = Rng(seed | 1);
    let mut b = Bitmap::new(width, height);
    for _ in 0..(width * height / 2000).max(3) {
        let x0 = r.below(width);
        let y0 = r.below(height);
        let w = 1 + r.below(40.min(width));
        let h = 1 + r.below(12.min(height));
        for y in y0..(y0 + h).min(height) {
            for x in x0..(x0 + w).min(width) {
                b.set(x, y, true);
            }
        }
    }
    if height > 3 {
        for x in 0..width {
            b.set(x, 2, true); // full black line
        }
        b.set(0, 3, true);
        b.set(width - 1, 3, true);
    }
    for y in 0..height {
        if y % 17 == 5 {
            for x in (0..width).step_by(3) {
                b.set(x, y, true); // dense alternation: long 2-D lines
            }
        }
    }
    b
}

fn bits_of(data: &[u8], n: usize) -> String {
    (0..n).map(|i| if data[i / 8] & (0x80 >> (i % 8)) != 0 { '1' } else { '0' }).collect()
}

#[test]
fn known_code_words() {
    assert_eq!(run_codes(0, false), vec![(0b00110101, 8)]);
    assert_eq!(run_codes(0, true), vec![(0b0000110111, 10)]);
    assert_eq!(run_codes(1, false), vec![(0b000111, 6)]);
    assert_eq!(run_codes(2, true), vec![(0b11, 2)]);
    assert_eq!(run_codes(63, true), vec![(0b000001100111, 12)]);
    assert_eq!(run_codes(64, false), vec![(0b11011, 5), (0b00110101, 8)]);
    assert_eq!(run_codes(1728, false), vec![(0b010011011, 9), (0b00110101, 8)]);
    assert_eq!(run_codes(1728, true), vec![(0b0000001100101, 13), (0b0000110111, 10)]);
    assert_eq!(run_codes(2432, false), vec![(0b000000011101, 12), (0b00110101, 8)]);
    // 2623 = 2560 + 63; 5200 = 2560 + 2560 + 64 + 16
    assert_eq!(run_codes(2623, true), vec![(0b000000011111, 12), (0b000001100111, 12)]);
    assert_eq!(run_codes(5200, false).len(), 4);
    assert_eq!(EOL, (1, 12));
}

#[test]
fn code_tables_are_prefix_free() {
    for black in [false, true] {
        let mut codes: Vec<(u32, u8)> = (0..64).map(|r| run_codes(r, black)[0]).collect();
        codes.extend((1..=40).map(|m| run_codes(m * 64, black)[0]));
        codes.push(EOL);
        for (i, &(a, la)) in codes.iter().enumerate() {
            for (j, &(b, lb)) in codes.iter().enumerate() {
                if i != j && la <= lb {
                    assert_ne!(b >> (lb - la), a, "code {i} is a prefix of code {j}");
                }
            }
        }
    }
    let modes: Vec<Code> = MODE_CODES.iter().map(|&(m, _)| parse_mode(m)).collect();
    for (i, &(a, la)) in modes.iter().enumerate() {
        for (j, &(b, lb)) in modes.iter().enumerate() {
            if i != j && la <= lb {
                assert_ne!(b >> (lb - la), a);
            }
        }
    }
}

#[test]
fn white_line_exact_bits() {
    let b = Bitmap::new(1728, 1);
    let mh = encode_page(&b, Coding::Mh, 0);
    // EOL, white make-up 1728, white terminating 0, then RTC = 6 EOLs.
    let expect = format!("000000000001{}{}{}", "010011011", "00110101", "000000000001".repeat(6));
    assert_eq!(bits_of(&mh, expect.len()), expect);
    assert_eq!(mh.len(), expect.len().div_ceil(8));
    // MR: EOL + tag 1 + 1-D line; RTC = 6 x (EOL + 1).
    let mr = encode_page(&b, Coding::Mr, 2);
    let expect = format!("0000000000011{}{}{}", "010011011", "00110101", "0000000000011".repeat(6));
    assert_eq!(bits_of(&mr, expect.len()), expect);
}

#[test]
fn second_line_two_d_is_vertical_zero() {
    // Two identical lines with one black pel at 10: line 2 is V0 V0 (a1 under b1, then a2).
    let mut b = Bitmap::new(32, 2);
    b.set(10, 0, true);
    b.set(10, 1, true);
    let opts = EncodeOptions { rtc: false, ..EncodeOptions::fax(Coding::Mr, 2) };
    let mr = encode_page_with(&b, &opts);
    // Line 1: EOL 1 | white 10 (00111) black 1 (010) white 21 (0010111)
    // Line 2: EOL 0 | V0 V0 V0 (b1=10, then b1=11, then a1 = b1 = width)
    let expect = "00000000000110011101000101110000000000010111";
    assert_eq!(bits_of(&mr, expect.len()), expect);
}

fn check_roundtrip(b: &Bitmap, opts: &EncodeOptions) {
    let data = encode_page_with(b, opts);
    let page = decode_page(&data, b.width, opts.coding).expect("decodes");
    assert_eq!(page.bad_rows, 0, "width {} {:?}", b.width, opts);
    assert_eq!(page.rtc_seen, opts.rtc);
    assert_eq!(&page.bitmap, b, "width {} {:?}", b.width, opts);
}

#[test]
fn round_trips_all_widths_and_codings() {
    for (i, &width) in [1728usize, 2048, 2432, 3456, 4864, 13, 1].iter().enumerate() {
        let images = [
            noise(width, 24, 3, 11 + i as u64),
            noise(width, 12, 50, 99 + i as u64),
            structured(width, 60, 7 + i as u64),
            Bitmap::new(width, 3),
        ];
        for img in &images {
            for (coding, k) in [(Coding::Mh, 0), (Coding::Mr, 2), (Coding::Mr, 4), (Coding::Mr, 1)]
            {
                check_roundtrip(img, &EncodeOptions::fax(coding, k));
                let mut o = EncodeOptions::tiff(coding, k);
                o.byte_align_eol = true;
                o.min_row_bits = 192;
                check_roundtrip(img, &o);
            }
        }
    }
}

#[test]
fn all_black_and_checkerboard() {
    let mut b = Bitmap::new(1728, 4);
    b.bits.fill(0xFF);
    check_roundtrip(&b, &EncodeOptions::fax(Coding::Mr, 4));
    let mut c = Bitmap::new(2048, 6);
    for y in 0..6 {
        for x in 0..2048 {
            c.set(x, y, (x + y) % 2 == 0);
        }
    }
    check_roundtrip(&c, &EncodeOptions::fax(Coding::Mh, 0));
    check_roundtrip(&c, &EncodeOptions::fax(Coding::Mr, 4));
}

#[test]
fn fill_bits_meet_minimum_line_length() {
    let b = Bitmap::new(1728, 10);
    let mut o = EncodeOptions::fax(Coding::Mh, 0);
    o.rtc = false;
    let plain = encode_page_with(&b, &o);
    o.min_row_bits = min_row_bits(9600, 20);
    assert_eq!(o.min_row_bits, 192);
    let filled = encode_page_with(&b, &o);
    // Each line is at least 192 bits including its EOL.
    assert!(filled.len() * 8 >= 10 * 192, "{}", filled.len());
    assert!(plain.len() < filled.len());
    assert_eq!(decode_page(&filled, 1728, Coding::Mh).unwrap().bitmap, b);
}

#[test]
fn streaming_lsb_first_byte_by_byte() {
    let b = structured(1728, 80, 5);
    let data = reverse_bit_order(&encode_page(&b, Coding::Mr, 4));
    let mut d = T4Decoder::new(1728, Coding::Mr, BitOrder::LsbFirst).unwrap();
    for chunk in data.chunks(1) {
        d.push(chunk);
    }
    assert!(d.is_complete(), "RTC ends the page");
    assert_eq!(d.rows(), 80);
    let page = d.finish().unwrap();
    assert!(page.rtc_seen);
    assert_eq!(page.bitmap, b);
}

#[test]
fn data_after_rtc_is_ignored() {
    let b = structured(1728, 10, 3);
    let mut data = encode_page(&b, Coding::Mh, 0);
    data.extend_from_slice(&[0xA5; 50]);
    let page = decode_page(&data, 1728, Coding::Mh).unwrap();
    assert_eq!(page.bitmap, b);
    assert_eq!(page.bad_rows, 0);
}

/// Byte offsets just after each byte-aligned EOL.
fn eol_ends(data: &[u8]) -> Vec<usize> {
    (1..data.len()).filter(|&i| data[i] == 0x01 && data[i - 1] & 0x0F == 0).map(|i| i + 1).collect()
}

#[test]
fn mh_error_resynchronises_at_next_eol() {
    let b = structured(1728, 30, 21);
    let mut o = EncodeOptions::fax(Coding::Mh, 0);
    o.byte_align_eol = true;
    let mut data = encode_page_with(&b, &o);
    let ends = eol_ends(&data);
    assert!(ends.len() >= 30 + RTC_EOLS);
    // Garbage (all ones: cannot form a false EOL) over the start of line 7.
    for byte in &mut data[ends[7]..ends[7] + 2] {
        *byte = 0xFF;
    }
    let page = decode_page(&data, 1728, Coding::Mh).unwrap();
    assert_eq!(page.bitmap.height, 30);
    assert_eq!(page.bad_rows, 1);
    assert_eq!(page.max_consecutive_bad_rows, 1);
    for y in 0..30 {
        let want = if y == 7 { b.row(6) } else { b.row(y) };
        assert_eq!(page.bitmap.row(y), want, "row {y}");
    }
}

#[test]
fn mr_error_is_contained_to_its_k_group() {
    let b = structured(1728, 40, 8);
    let mut o = EncodeOptions::fax(Coding::Mr, 4);
    o.byte_align_eol = true;
    let mut data = encode_page_with(&b, &o);
    let ends = eol_ends(&data);
    // Line 9 (a 2-D line: 9 % 4 == 1). Keep its tag bit, force the rest to ones.
    data[ends[9]] |= 0x7F;
    data[ends[9] + 1] = 0xFF;
    let page = decode_page(&data, 1728, Coding::Mr).unwrap();
    assert_eq!(page.bitmap.height, 40);
    assert!(page.bad_rows >= 1);
    for y in (0..9).chain(12..40) {
        assert_eq!(page.bitmap.row(y), b.row(y), "row {y}");
    }
}

#[test]
fn truncated_stream_keeps_decoded_lines() {
    let b = structured(1728, 20, 4);
    let data = encode_page(&b, Coding::Mh, 0);
    let page = decode_page(&data[..data.len() / 2], 1728, Coding::Mh).unwrap();
    assert!(page.bitmap.height >= 5 && page.bitmap.height <= 20);
    assert!(!page.rtc_seen);
    let good = page.bitmap.height - page.bad_rows;
    for y in 0..good {
        assert_eq!(page.bitmap.row(y), b.row(y));
    }
}

#[test]
fn lines_without_eol_decode() {
    // TIFF-style MH lines with no EOL at all.
    let b = structured(64, 9, 2);
    let mut w = BitWriter::default();
    let mut ch = Vec::new();
    for y in 0..b.height {
        changes_of(b.row(y), 64, &mut ch);
        encode_row_1d(&mut w, &ch, 64);
    }
    let mut d = T4Decoder::new(64, Coding::Mh, BitOrder::MsbFirst).unwrap().with_max_rows(9);
    d.push(&w.bytes);
    assert_eq!(d.finish().unwrap().bitmap, b);
}

#[test]
fn errors() {
    assert_eq!(decode_page(&[1, 2], 0, Coding::Mh), Err(T4Error::InvalidWidth(0)));
    assert_eq!(decode_page(&[], 1728, Coding::Mh), Err(T4Error::NoRows(0)));
    assert!(decode_page(&[0xFF; 10], 20_000, Coding::Mr).is_err());
}

#[test]
fn t6_round_trip() {
    for width in [1728, 2432, 5] {
        let b = structured(width, 50, 13);
        let data = encode_t6(&b);
        let page = decode_t6(&data, width, 50).unwrap();
        assert_eq!(page.bad_rows, 0);
        assert_eq!(page.bitmap, b);
    }
}

#[test]
fn pbm_round_trip() {
    let b = noise(13, 5, 40, 3);
    assert_eq!(Bitmap::from_pbm(&b.to_pbm()), Some(b));
    assert_eq!(
        Bitmap::from_pbm(b"P4\n# c\n8 1\n\x81"),
        Some(Bitmap::from_packed_rows(8, &[vec![0x81]]))
    );
    assert_eq!(Bitmap::from_pbm(b"P4 8 2\n\x00"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600),
                            width in 1usize..3000, mr in any::<bool>()) {
        let coding = if mr { Coding::Mr } else { Coding::Mh };
        if let Ok(p) = decode_page(&data, width, coding) {
            prop_assert_eq!(p.bitmap.width, width);
            prop_assert_eq!(p.bitmap.bits.len(), p.bitmap.height * p.bitmap.stride());
        }
        let _ = decode_t6(&data, width, 50);
    }

    #[test]
    fn random_bitmaps_round_trip(width in 1usize..300, height in 1usize..12, seed in any::<u64>(),
                                 density in 0usize..100, k in 1u32..5, mr in any::<bool>()) {
        let b = noise(width, height, density, seed);
        let coding = if mr { Coding::Mr } else { Coding::Mh };
        let data = encode_page(&b, coding, k);
        let p = decode_page(&data, width, coding).unwrap();
        prop_assert_eq!(p.bad_rows, 0);
        prop_assert_eq!(p.bitmap, b.clone());
        let t6 = decode_t6(&encode_t6(&b), width, height).unwrap();
        prop_assert_eq!(t6.bitmap, b);
    }

    #[test]
    fn corrupted_stream_keeps_height_sane(seed in any::<u64>(), flips in 1usize..20) {
        let b = structured(1728, 30, seed);
        let mut data = encode_page(&b, Coding::Mr, 4);
        let mut r = Rng(seed | 1);
        for _ in 0..flips {
            let i = r.below(data.len() * 8);
            data[i / 8] ^= 0x80 >> (i % 8);
        }
        if let Ok(p) = decode_page(&data, 1728, Coding::Mr) {
            prop_assert!(p.bad_rows <= p.bitmap.height);
        }
    }
}
