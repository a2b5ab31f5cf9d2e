//! ITU-T T.4 bilevel image coding: Modified Huffman (MH, 1-D) and Modified READ (MR, 2-D).
//!
//! Bitmaps are packed rows, most significant bit first, `1` = black (the PBM `P4` and TIFF
//! `PhotometricInterpretation = 0` convention). The coded stream is also packed MSB-first
//! (TIFF `FillOrder = 1`); use [`reverse_bit_order`] or [`BitOrder::LsbFirst`] for the
//! LSB-first order of fax modems and `FillOrder = 2` files.
//!
//! The decoder is built for noisy lines: it splits the stream at EOL codes (11 or more zeros
//! then a one, which no valid code sequence contains), decodes each scan line on its own and, when
//! a line does not decode to exactly the page width, replaces it with a copy of the previous line
//! and counts it as bad, as fax machines do. RTC (consecutive EOLs) ends the page.

use std::sync::OnceLock;

/// Widest scan line accepted (R16 A3 is 4864 pels; this leaves room).
pub const MAX_WIDTH: usize = 16384;
/// Standard A4 scan line width in pels.
pub const WIDTH_A4: usize = 1728;
/// B4 scan line width in pels.
pub const WIDTH_B4: usize = 2048;
/// A3 scan line width in pels.
pub const WIDTH_A3: usize = 2432;
/// Number of EOLs that make up RTC (return to control) at the end of a page.
pub const RTC_EOLS: usize = 6;

/// A bilevel page image: packed rows, MSB first, `1` = black, padding bits always zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    /// Pels per row.
    pub width: usize,
    /// Number of rows.
    pub height: usize,
    /// `height * stride()` bytes of packed rows.
    pub bits: Vec<u8>,
}

impl Bitmap {
    /// An all-white bitmap.
    pub fn new(width: usize, height: usize) -> Self {
        Bitmap { width, height, bits: vec![0; stride_of(width) * height] }
    }

    /// Builds a bitmap from packed rows (each at least `ceil(width / 8)` bytes; extra bytes and
    /// bits beyond `width` are ignored).
    ///
    /// # Panics
    /// If a row is shorter than `ceil(width / 8)` bytes.
    pub fn from_packed_rows(width: usize, rows: &[Vec<u8>]) -> Self {
        let mut b = Bitmap::new(width, 0);
        for r in rows {
            b.push_row(&r[..stride_of(width)]);
        }
        b
    }

    /// Bytes per packed row.
    pub fn stride(&self) -> usize {
        stride_of(self.width)
    }

    /// Packed row `y`.
    pub fn row(&self, y: usize) -> &[u8] {
        let s = self.stride();
        &self.bits[y * s..(y + 1) * s]
    }

    /// Mutable packed row `y` (keep the padding bits zero).
    pub fn row_mut(&mut self, y: usize) -> &mut [u8] {
        let s = self.stride();
        &mut self.bits[y * s..(y + 1) * s]
    }

    /// Appends a packed row of `stride()` bytes; padding bits are cleared.
    pub fn push_row(&mut self, row: &[u8]) {
        let s = self.stride();
        let start = self.bits.len();
        self.bits.extend_from_slice(&row[..s]);
        clear_padding(&mut self.bits[start..], self.width);
        self.height += 1;
    }

    /// True if pel (`x`, `y`) is black.
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.row(y)[x / 8] & (0x80 >> (x % 8)) != 0
    }

    /// Sets pel (`x`, `y`) to black (`true`) or white.
    pub fn set(&mut self, x: usize, y: usize, black: bool) {
        let mask = 0x80u8 >> (x % 8);
        let r = self.row_mut(y);
        if black {
            r[x / 8] |= mask;
        } else {
            r[x / 8] &= !mask;
        }
    }

    /// Number of black pels.
    pub fn black_pels(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Renders the bitmap as a binary PBM (`P4`) file.
    pub fn to_pbm(&self) -> Vec<u8> {
        let mut out = format!("P4\n{} {}\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.bits);
        out
    }

    /// Parses a binary PBM (`P4`) file (comments allowed in the header).
    pub fn from_pbm(data: &[u8]) -> Option<Bitmap> {
        let mut pos = 0;
        let mut fields = Vec::new();
        while fields.len() < 3 {
            while pos < data.len() && (data[pos].is_ascii_whitespace() || data[pos] == b'#') {
                if data[pos] == b'#' {
                    while pos < data.len() && data[pos] != b'\n' {
                        pos += 1;
                    }
                } else {
                    pos += 1;
                }
            }
            let start = pos;
            while pos < data.len() && !data[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if start == pos {
                return None;
            }
            fields.push(std::str::from_utf8(&data[start..pos]).ok()?.to_string());
        }
        pos += 1; // the single whitespace byte after the height
        if fields[0] != "P4" {
            return None;
        }
        let width: usize = fields[1].parse().ok()?;
        let height: usize = fields[2].parse().ok()?;
        let len = stride_of(width).checked_mul(height)?;
        let body = data.get(pos..pos.checked_add(len)?)?;
        let mut b = Bitmap::new(width, 0);
        for r in body.chunks(stride_of(width).max(1)).take(height) {
            b.push_row(r);
        }
        b.height = height;
        b.bits.resize(len, 0);
        Some(b)
    }
}

fn stride_of(width: usize) -> usize {
    width.div_ceil(8)
}

fn clear_padding(row: &mut [u8], width: usize) {
    if !width.is_multiple_of(8) {
        if let Some(last) = row.get_mut(width / 8) {
            *last &= 0xFFu8 << (8 - width % 8);
        }
    }
}

/// T.4 coding scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    /// Modified Huffman, one-dimensional (T.4 §4.1).
    Mh,
    /// Modified READ, two-dimensional (T.4 §4.2): each EOL carries a tag bit.
    Mr,
}

/// Order of bits within the bytes of a coded stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitOrder {
    /// First bit in the most significant bit (TIFF `FillOrder = 1`).
    MsbFirst,
    /// First bit in the least significant bit (fax modems, TIFF `FillOrder = 2`).
    LsbFirst,
}

/// Returns `data` with the bit order of every byte reversed (MSB-first <-> LSB-first).
pub fn reverse_bit_order(data: &[u8]) -> Vec<u8> {
    data.iter().map(|b| b.reverse_bits()).collect()
}

/// Minimum bits per scan line for a modem bit rate and minimum scan-line time (T.30 DIS/DCS
/// "minimum scan line time"), e.g. `min_row_bits(9600, 20) == 192`.
pub fn min_row_bits(bit_rate: u32, min_scan_time_ms: u32) -> usize {
    (bit_rate as usize * min_scan_time_ms as usize) / 1000
}

/// Encoder settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    /// MH or MR.
    pub coding: Coding,
    /// MR parameter K: one 1-D line then at most `k - 1` 2-D lines (2 at standard, 4 at fine
    /// resolution). Ignored for MH; 0 is treated as 1.
    pub k: u32,
    /// Fill zeros are added after a line's data so that data plus fill plus the next EOL is at
    /// least this many bits (see [`min_row_bits`]). 0 = no fill.
    pub min_row_bits: usize,
    /// Add fill before each EOL so that the EOL ends on a byte boundary (TIFF T4Options bit 2).
    pub byte_align_eol: bool,
    /// Append RTC (6 EOLs, with tag bit 1 in MR) after the last line.
    pub rtc: bool,
}

impl EncodeOptions {
    /// Settings for a fax transmission: EOL before each line, RTC at the end, no fill.
    pub fn fax(coding: Coding, k: u32) -> Self {
        EncodeOptions { coding, k, min_row_bits: 0, byte_align_eol: false, rtc: true }
    }

    /// Settings for a TIFF Class F strip: EOL before each line, no RTC.
    pub fn tiff(coding: Coding, k: u32) -> Self {
        EncodeOptions { rtc: false, ..Self::fax(coding, k) }
    }
}

/// Errors of the T.4 decoder (errors inside lines are not errors: they are counted as bad rows).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum T4Error {
    /// The page width is 0 or above [`MAX_WIDTH`].
    #[error("invalid T.4 page width {0} (must be 1..={MAX_WIDTH})")]
    InvalidWidth(usize),
    /// The stream held no decodable scan line.
    #[error("no decodable T.4 scan line in {0} bytes of data")]
    NoRows(usize),
}

/// Result of decoding one page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedPage {
    /// The page; bad rows hold a copy of the row above (white for the first row).
    pub bitmap: Bitmap,
    /// Rows that did not decode and were replaced.
    pub bad_rows: usize,
    /// Longest run of consecutive bad rows (TIFF ConsecutiveBadFaxLines).
    pub max_consecutive_bad_rows: usize,
    /// True if RTC (two or more consecutive EOLs) ended the page.
    pub rtc_seen: bool,
}

// ---------------------------------------------------------------------------------------------
// Code tables, typed from ITU-T T.4 Tables 2/T.4, 3/T.4 (MH) and 4/T.4 (MR).

#[rustfmt::skip]
const WHITE_TERM: [&str; 64] = [
    "00110101", "000111", "0111", "1000", "1011", "1100", "1110", "1111", // 0-7
    "10011", "10100", "00111", "01000", "001000", "000011", "110100", "110101", // 8-15
    "101010", "101011", "0100111", "0001100", "0001000", "0010111", "0000011", "0000100", // 16-23
    "0101000", "0101011", "0010011", "0100100", "0011000", "00000010", "00000011", "00011010", // 24-31
    "00011011", "00010010", "00010011", "00010100", "00010101", "00010110", "00010111", "00101000", // 32-39
    "00101001", "00101010", "00101011", "00101100", "00101101", "00000100", "00000101", "00001010", // 40-47
    "00001011", "01010010", "01010011", "01010100", "01010101", "00100100", "00100101", "01011000", // 48-55
    "01011001", "01011010", "01011011", "01001010", "01001011", "00110010", "00110011", "00110100", // 56-63
];

#[rustfmt::skip]
const BLACK_TERM: [&str; 64] = [
    "0000110111", "010", "11", "10", "011", "0011", "0010", "00011", // 0-7
    "000101", "000100", "0000100", "0000101", "0000111", "00000100", "00000111", "000011000", // 8-15
    "0000010111", "0000011000", "0000001000", "00001100111", "00001101000", "00001101100", // 16-21
    "00000110111", "00000101000", "00000010111", "00000011000", "000011001010", "000011001011", // 22-27
    "000011001100", "000011001101", "000001101000", "000001101001", "000001101010", // 28-32
    "000001101011", "000011010010", "000011010011", "000011010100", "000011010101", // 33-37
    "000011010110", "000011010111", "000001101100", "000001101101", "000011011010", // 38-42
    "000011011011", "000001010100", "000001010101", "000001010110", "000001010111", // 43-47
    "000001100100", "000001100101", "000001010010", "000001010011", "000000100100", // 48-52
    "000000110111", "000000111000", "000000100111", "000000101000", "000001011000", // 53-57
    "000001011001", "000000101011", "000000101100", "000001011010", "000001100110", // 58-62
    "000001100111", // 63
];

/// Make-up codes for 64, 128, ..., 1728.
#[rustfmt::skip]
const WHITE_MAKEUP: [&str; 27] = [
    "11011", "10010", "010111", "0110111", "00110110", "00110111", "01100100", "01100101",
    "01101000", "01100111", "011001100", "011001101", "011010010", "011010011", "011010100",
    "011010101", "011010110", "011010111", "011011000", "011011001", "011011010", "011011011",
    "010011000", "010011001", "010011010", "011000", "010011011",
];

/// Make-up codes for 64, 128, ..., 1728.
#[rustfmt::skip]
const BLACK_MAKEUP: [&str; 27] = [
    "0000001111", "000011001000", "000011001001", "000001011011", "000000110011",
    "000000110100", "000000110101", "0000001101100", "0000001101101", "0000001001010",
    "0000001001011", "0000001001100", "0000001001101", "0000001110010", "0000001110011",
    "0000001110100", "0000001110101", "0000001110110", "0000001110111", "0000001010010",
    "0000001010011", "0000001010100", "0000001010101", "0000001011010", "0000001011011",
    "0000001100100", "0000001100101",
];

/// Extended make-up codes (both colours) for 1792, 1856, ..., 2560.
#[rustfmt::skip]
const EXT_MAKEUP: [&str; 13] = [
    "00000001000", "00000001100", "00000001101", "000000010010", "000000010011",
    "000000010100", "000000010101", "000000010110", "000000010111", "000000011100",
    "000000011101", "000000011110", "000000011111",
];

/// 2-D mode codes (Table 4/T.4).
const MODE_CODES: [(Mode, &str); 9] = [
    (Mode::Pass, "0001"),
    (Mode::Horizontal, "001"),
    (Mode::Vertical(0), "1"),
    (Mode::Vertical(1), "011"),
    (Mode::Vertical(2), "000011"),
    (Mode::Vertical(3), "0000011"),
    (Mode::Vertical(-1), "010"),
    (Mode::Vertical(-2), "000010"),
    (Mode::Vertical(-3), "0000010"),
];

/// EOL code word: 11 zeros and a one.
pub const EOL: (u32, u8) = (1, 12);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    Horizontal,
    Vertical(i8),
}

const PEEK_RUN: u8 = 13;
const PEEK_MODE: u8 = 7;

/// A code word: (value, bit length).
type Code = (u32, u8);

struct Tables {
    /// Encoding: terminating codes 0..64 then make-up codes 64..=2560 step 64 (index 64 + n-1).
    enc: [Vec<Code>; 2],
    /// Decoding by 13-bit look-ahead: (run, length); length 0 = invalid.
    dec: [Vec<(u16, u8)>; 2],
    /// 2-D mode by 7-bit look-ahead.
    mode: Vec<Option<(Mode, u8)>>,
}

fn parse_code(s: &str) -> Code {
    let v = s.bytes().fold(0u32, |acc, c| (acc << 1) | u32::from(c == b'1'));
    (v, s.len() as u8)
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let build = |term: &[&str; 64], makeup: &[&str; 27]| {
            let mut enc: Vec<Code> = Vec::with_capacity(64 + 40);
            enc.extend(term.iter().map(|s| parse_code(s)));
            enc.extend(makeup.iter().map(|s| parse_code(s)));
            enc.extend(EXT_MAKEUP.iter().map(|s| parse_code(s)));
            let mut dec = vec![(0u16, 0u8); 1 << PEEK_RUN];
            for (i, &(v, len)) in enc.iter().enumerate() {
                let run = if i < 64 { i } else { (i - 63) * 64 };
                let shift = PEEK_RUN - len;
                let base = (v << shift) as usize;
                for e in &mut dec[base..base + (1 << shift)] {
                    *e = (run as u16, len);
                }
            }
            (enc, dec)
        };
        let (we, wd) = build(&WHITE_TERM, &WHITE_MAKEUP);
        let (be, bd) = build(&BLACK_TERM, &BLACK_MAKEUP);
        let mut mode = vec![None; 1 << PEEK_MODE];
        for &(m, s) in &MODE_CODES {
            let (v, len) = parse_code(s);
            let shift = PEEK_MODE - len;
            let base = (v << shift) as usize;
            for e in &mut mode[base..base + (1 << shift)] {
                *e = Some((m, len));
            }
        }
        Tables { enc: [we, be], dec: [wd, bd], mode }
    })
}

/// The code words (value, bit length) that code a run of `run` pels of one colour: make-up
/// codes as needed, then one terminating code.
pub fn run_codes(run: usize, black: bool) -> Vec<(u32, u8)> {
    let t = &tables().enc[usize::from(black)];
    let mut out = Vec::new();
    let mut r = run;
    while r >= 2560 + 64 {
        out.push(t[63 + 40]);
        r -= 2560;
    }
    if r >= 64 {
        out.push(t[63 + r / 64]);
        r %= 64;
    }
    out.push(t[r]);
    out
}

// ---------------------------------------------------------------------------------------------
// Bit writer / reader (MSB first).

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    nbits: usize,
}

impl BitWriter {
    fn put(&mut self, (v, len): Code) {
        for i in (0..len).rev() {
            let bit = (v >> i) & 1;
            if self.nbits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if bit != 0 {
                *self.bytes.last_mut().expect("pushed above") |= 0x80 >> (self.nbits % 8);
            }
            self.nbits += 1;
        }
    }

    fn zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.put((0, 1));
        }
    }

    fn run(&mut self, run: usize, black: bool) {
        let t = &tables().enc[usize::from(black)];
        let mut r = run;
        while r >= 2560 + 64 {
            self.put(t[63 + 40]);
            r -= 2560;
        }
        if r >= 64 {
            self.put(t[63 + r / 64]);
            r %= 64;
        }
        self.put(t[r]);
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl BitReader<'_> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn peek(&self, n: u8) -> u32 {
        let mut v = 0u32;
        for i in 0..usize::from(n) {
            let p = self.pos + i;
            let bit = if p < self.end { (self.data[p / 8] >> (7 - p % 8)) & 1 } else { 0 };
            v = (v << 1) | u32::from(bit);
        }
        v
    }

    fn rest_is_zero(&self) -> bool {
        (self.pos..self.end).all(|p| (self.data[p / 8] >> (7 - p % 8)) & 1 == 0)
    }

    fn consume(&mut self, len: u8) -> Option<()> {
        if usize::from(len) > self.remaining() {
            return None;
        }
        self.pos += usize::from(len);
        Some(())
    }
}

/// Decodes one run length (make-up codes then a terminating code).
fn read_run(r: &mut BitReader<'_>, black: bool, limit: usize) -> Option<usize> {
    let dec = &tables().dec[usize::from(black)];
    let mut total = 0usize;
    loop {
        let (run, len) = dec[r.peek(PEEK_RUN) as usize];
        if len == 0 {
            return None;
        }
        r.consume(len)?;
        total += usize::from(run);
        if total > limit {
            return None;
        }
        if run < 64 {
            return Some(total);
        }
    }
}

fn read_mode(r: &mut BitReader<'_>) -> Option<Mode> {
    let (m, len) = tables().mode[r.peek(PEEK_MODE) as usize]?;
    r.consume(len)?;
    Some(m)
}

// ---------------------------------------------------------------------------------------------
// Changing elements.

fn pel(row: &[u8], x: usize) -> bool {
    row[x / 8] & (0x80 >> (x % 8)) != 0
}

/// Positions where a pel differs from the one before it (the pel before the row is white).
fn changes_of(row: &[u8], width: usize, out: &mut Vec<usize>) {
    out.clear();
    let mut colour = false;
    let mut x = 0;
    while x < width {
        // Skip whole bytes of the current colour quickly.
        if x % 8 == 0 && x + 8 <= width {
            let b = row[x / 8];
            if (colour && b == 0xFF) || (!colour && b == 0) {
                x += 8;
                continue;
            }
        }
        if pel(row, x) != colour {
            out.push(x);
            colour = !colour;
        }
        x += 1;
    }
}

/// Renders a change list (non-decreasing, values <= width) into a packed row.
fn render_changes(changes: &[usize], width: usize, row: &mut [u8]) {
    row.fill(0);
    let mut i = 0;
    while i < changes.len() {
        let start = changes[i];
        let end = changes.get(i + 1).copied().unwrap_or(width).min(width);
        for x in start..end {
            row[x / 8] |= 0x80 >> (x % 8);
        }
        i += 2;
    }
}

/// b1 and b2 for the reference line: b1 is the first change right of `a0` whose new colour is
/// the opposite of `colour`; b2 the next change. `ptr` caches the first change > a0.
fn find_b(refc: &[usize], ptr: &mut usize, a0: i64, colour: bool, width: usize) -> (usize, usize) {
    while *ptr < refc.len() && (refc[*ptr] as i64) <= a0 {
        *ptr += 1;
    }
    let mut j = *ptr;
    // Change j turns the line black when j is even.
    let turns_black = j.is_multiple_of(2);
    if turns_black == colour {
        j += 1;
    }
    let b1 = refc.get(j).copied().unwrap_or(width);
    let b2 = refc.get(j + 1).copied().unwrap_or(width);
    (b1, b2)
}

// ---------------------------------------------------------------------------------------------
// Encoder.

fn encode_row_1d(w: &mut BitWriter, cur: &[usize], width: usize) {
    let mut prev = 0;
    let mut black = false;
    for &c in cur {
        w.run(c - prev, black);
        black = !black;
        prev = c;
    }
    w.run(width - prev, black);
}

fn encode_row_2d(w: &mut BitWriter, cur: &[usize], refc: &[usize], width: usize) {
    let mut a0: i64 = -1;
    let mut colour = false; // false = white
    let mut rptr = 0usize;
    let mut cptr = 0usize;
    while a0 < width as i64 {
        while cptr < cur.len() && (cur[cptr] as i64) <= a0 {
            cptr += 1;
        }
        let a1 = cur.get(cptr).copied().unwrap_or(width);
        let (b1, b2) = find_b(refc, &mut rptr, a0, colour, width);
        if b2 < a1 {
            w.put(parse_mode(Mode::Pass));
            a0 = b2 as i64;
        } else {
            let d = a1 as i64 - b1 as i64;
            if d.abs() <= 3 {
                w.put(parse_mode(Mode::Vertical(d as i8)));
                a0 = a1 as i64;
                colour = !colour;
            } else {
                let a2 = cur.get(cptr + 1).copied().unwrap_or(width);
                let start = a0.max(0) as usize;
                w.put(parse_mode(Mode::Horizontal));
                w.run(a1 - start, colour);
                w.run(a2 - a1, !colour);
                a0 = a2 as i64;
            }
        }
    }
}

fn parse_mode(m: Mode) -> Code {
    let s =
        MODE_CODES.iter().find(|(mm, _)| *mm == m).map(|(_, s)| *s).expect("every mode has a code");
    parse_code(s)
}

/// Encodes a page with EOL before each line and RTC at the end (a fax transmission).
/// `k` is the MR K parameter (ignored for MH).
pub fn encode_page(bitmap: &Bitmap, coding: Coding, k: u32) -> Vec<u8> {
    encode_page_with(bitmap, &EncodeOptions::fax(coding, k))
}

/// Encodes a page with explicit options. Output is packed MSB-first.
pub fn encode_page_with(bitmap: &Bitmap, opts: &EncodeOptions) -> Vec<u8> {
    let width = bitmap.width;
    let k = opts.k.max(1) as usize;
    let mut w = BitWriter::default();
    let mut refc: Vec<usize> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let put_eol = |w: &mut BitWriter| {
        if opts.byte_align_eol {
            let pad = (8 - (w.nbits + 12) % 8) % 8;
            w.zeros(pad);
        }
        w.put(EOL);
    };
    for y in 0..bitmap.height {
        put_eol(&mut w);
        let start = w.nbits;
        changes_of(bitmap.row(y), width, &mut cur);
        match opts.coding {
            Coding::Mh => encode_row_1d(&mut w, &cur, width),
            Coding::Mr => {
                if y % k == 0 {
                    w.put((1, 1));
                    encode_row_1d(&mut w, &cur, width);
                } else {
                    w.put((0, 1));
                    encode_row_2d(&mut w, &cur, &refc, width);
                }
            }
        }
        let used = w.nbits - start + 12;
        if used < opts.min_row_bits {
            w.zeros(opts.min_row_bits - used);
        }
        std::mem::swap(&mut refc, &mut cur);
    }
    if opts.rtc {
        for _ in 0..RTC_EOLS {
            put_eol(&mut w);
            if opts.coding == Coding::Mr {
                w.put((1, 1));
            }
        }
    }
    w.bytes
}

// ---------------------------------------------------------------------------------------------
// Decoder.

/// Decodes one line starting at the reader position into `changes`; `two_d` uses `refc`.
fn decode_row(
    r: &mut BitReader<'_>,
    width: usize,
    two_d: bool,
    refc: &[usize],
    changes: &mut Vec<usize>,
) -> Option<()> {
    changes.clear();
    if !two_d {
        let mut x = 0usize;
        let mut black = false;
        loop {
            let run = read_run(r, black, width - x)?;
            x += run;
            if x == width {
                break;
            }
            changes.push(x);
            black = !black;
        }
        return Some(());
    }
    let mut a0: i64 = -1;
    let mut colour = false;
    let mut rptr = 0usize;
    while a0 < width as i64 {
        let (b1, b2) = find_b(refc, &mut rptr, a0, colour, width);
        match read_mode(r)? {
            Mode::Pass => {
                if (b2 as i64) <= a0 {
                    return None;
                }
                a0 = b2 as i64;
            }
            Mode::Vertical(d) => {
                let a1 = b1 as i64 + i64::from(d);
                if a1 <= a0 || a1 > width as i64 {
                    return None;
                }
                if (a1 as usize) < width {
                    changes.push(a1 as usize);
                }
                a0 = a1;
                colour = !colour;
            }
            Mode::Horizontal => {
                let start = a0.max(0) as usize;
                let r1 = read_run(r, colour, width - start)?;
                let a1 = start + r1;
                let r2 = read_run(r, !colour, width - a1)?;
                let a2 = a1 + r2;
                for c in [a1, a2] {
                    if c < width {
                        changes.push(c);
                    }
                }
                a0 = a2 as i64;
            }
        }
    }
    Some(())
}

/// Streaming T.4 page decoder: feed bytes as they arrive, then [`T4Decoder::finish`].
#[derive(Clone, Debug)]
pub struct T4Decoder {
    width: usize,
    coding: Coding,
    order: BitOrder,
    max_rows: Option<usize>,
    /// Bits received since the end of the last EOL (packed MSB-first).
    seg: Vec<u8>,
    seg_bits: usize,
    /// Trailing zero bits in `seg`.
    zeros: usize,
    seen_eol: bool,
    want_tag: bool,
    tag_2d: bool,
    done: bool,
    rtc_seen: bool,
    bitmap: Bitmap,
    refc: Vec<usize>,
    scratch: Vec<usize>,
    bad_rows: usize,
    consecutive_bad: usize,
    max_consecutive_bad: usize,
    bytes_in: usize,
}

impl T4Decoder {
    /// A decoder for lines of `width` pels.
    pub fn new(width: usize, coding: Coding, order: BitOrder) -> Result<Self, T4Error> {
        if width == 0 || width > MAX_WIDTH {
            return Err(T4Error::InvalidWidth(width));
        }
        Ok(T4Decoder {
            width,
            coding,
            order,
            max_rows: None,
            seg: Vec::new(),
            seg_bits: 0,
            zeros: 0,
            seen_eol: false,
            want_tag: false,
            tag_2d: false,
            done: false,
            rtc_seen: false,
            bitmap: Bitmap::new(width, 0),
            refc: Vec::new(),
            scratch: Vec::new(),
            bad_rows: 0,
            consecutive_bad: 0,
            max_consecutive_bad: 0,
            bytes_in: 0,
        })
    }

    /// Stops after `rows` lines (a TIFF strip knows its row count).
    pub fn with_max_rows(mut self, rows: usize) -> Self {
        self.max_rows = Some(rows);
        self
    }

    /// True once RTC was seen or the row limit was reached; later input is ignored.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Lines decoded so far (good and bad).
    pub fn rows(&self) -> usize {
        self.bitmap.height
    }

    /// Bad lines so far.
    pub fn bad_rows(&self) -> usize {
        self.bad_rows
    }

    /// Feeds coded bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.bytes_in += data.len();
        for &byte in data {
            if self.done {
                return;
            }
            let b = match self.order {
                BitOrder::MsbFirst => byte,
                BitOrder::LsbFirst => byte.reverse_bits(),
            };
            for i in (0..8).rev() {
                self.push_bit((b >> i) & 1 != 0);
                if self.done {
                    return;
                }
            }
        }
    }

    fn push_bit(&mut self, bit: bool) {
        if self.want_tag {
            self.want_tag = false;
            self.tag_2d = !bit;
            return;
        }
        if bit && self.zeros >= 11 {
            // EOL: the segment is everything before its 11 zeros (fill zeros and the trailing
            // zeros of the last code word stay in the segment).
            let end = self.seg_bits - 11;
            self.end_segment(end);
            self.seg.clear();
            self.seg_bits = 0;
            self.zeros = 0;
            self.seen_eol = true;
            if self.coding == Coding::Mr {
                self.want_tag = true;
            }
            self.tag_2d = false;
            return;
        }
        if self.seg_bits.is_multiple_of(8) {
            self.seg.push(0);
        }
        if bit {
            *self.seg.last_mut().expect("pushed above") |= 0x80 >> (self.seg_bits % 8);
            self.zeros = 0;
        } else {
            self.zeros += 1;
        }
        self.seg_bits += 1;
    }

    fn end_segment(&mut self, end: usize) {
        let seg = std::mem::take(&mut self.seg);
        let mut r = BitReader { data: &seg, pos: 0, end };
        if r.rest_is_zero() {
            // Empty line: two EOLs in a row after some data is RTC.
            if self.seen_eol && self.bitmap.height > 0 {
                self.rtc_seen = true;
                self.done = true;
            }
        } else if self.seen_eol {
            // Exactly one line follows an EOL.
            let two_d = self.coding == Coding::Mr && self.tag_2d;
            let ok = self.decode_one(&mut r, two_d) && r.rest_is_zero();
            self.finish_row(ok);
        } else {
            // Data before the first EOL: lines without EOLs (TIFF) or junk.
            let mut decoded = 0;
            loop {
                if self.done || r.rest_is_zero() {
                    break;
                }
                if self.decode_one(&mut r, false) {
                    self.finish_row(true);
                    decoded += 1;
                } else {
                    if decoded > 0 {
                        self.finish_row(false);
                    }
                    break;
                }
            }
        }
        self.seg = seg;
    }

    fn decode_one(&mut self, r: &mut BitReader<'_>, two_d: bool) -> bool {
        let mut changes = std::mem::take(&mut self.scratch);
        let ok = decode_row(r, self.width, two_d, &self.refc, &mut changes).is_some();
        if ok {
            changes.sort_unstable();
        }
        self.scratch = changes;
        ok
    }

    /// Appends the line in `scratch` (if `ok`) or a copy of the previous line.
    fn finish_row(&mut self, ok: bool) {
        let stride = self.bitmap.stride();
        let mut row = vec![0u8; stride];
        if ok {
            render_changes(&self.scratch, self.width, &mut row);
            self.consecutive_bad = 0;
        } else {
            if self.bitmap.height > 0 {
                row.copy_from_slice(self.bitmap.row(self.bitmap.height - 1));
            }
            self.bad_rows += 1;
            self.consecutive_bad += 1;
            self.max_consecutive_bad = self.max_consecutive_bad.max(self.consecutive_bad);
        }
        changes_of(&row, self.width, &mut self.refc);
        self.bitmap.push_row(&row);
        if self.max_rows.is_some_and(|m| self.bitmap.height >= m) {
            self.done = true;
        }
    }

    /// Decodes whatever follows the last EOL and returns the page.
    pub fn finish(mut self) -> Result<DecodedPage, T4Error> {
        if !self.done && !self.want_tag {
            let end = self.seg_bits;
            self.end_segment(end);
        }
        if self.bitmap.height == 0 {
            return Err(T4Error::NoRows(self.bytes_in));
        }
        Ok(DecodedPage {
            bitmap: self.bitmap,
            bad_rows: self.bad_rows,
            max_consecutive_bad_rows: self.max_consecutive_bad,
            rtc_seen: self.rtc_seen,
        })
    }
}

/// Decodes a whole page (MSB-first bytes). Bad lines are replaced and counted, not errors.
pub fn decode_page(data: &[u8], width: usize, coding: Coding) -> Result<DecodedPage, T4Error> {
    let mut d = T4Decoder::new(width, coding, BitOrder::MsbFirst)?;
    d.push(data);
    d.finish()
}

/// Decodes a T.6 (MMR) page: 2-D lines against an initial white line, no EOLs, ending at EOFB
/// or after `rows` lines. T.6 has no resynchronisation: lines after an error are bad.
pub fn decode_t6(data: &[u8], width: usize, rows: usize) -> Result<DecodedPage, T4Error> {
    if width == 0 || width > MAX_WIDTH {
        return Err(T4Error::InvalidWidth(width));
    }
    let mut bitmap = Bitmap::new(width, 0);
    let mut refc = Vec::new();
    let mut changes = Vec::new();
    let mut r = BitReader { data, pos: 0, end: data.len() * 8 };
    let mut row = vec![0u8; bitmap.stride()];
    let mut bad = 0;
    while bitmap.height < rows {
        if r.peek(12) == 1 || r.remaining() == 0 {
            break; // EOFB (EOL EOL) or end of data
        }
        if decode_row(&mut r, width, true, &refc, &mut changes).is_none() {
            bad = rows - bitmap.height;
            break;
        }
        changes.sort_unstable();
        render_changes(&changes, width, &mut row);
        changes_of(&row, width, &mut refc);
        bitmap.push_row(&row);
    }
    if bitmap.height == 0 && bad == 0 {
        return Err(T4Error::NoRows(data.len()));
    }
    // Lines that could not be decoded repeat the last good line.
    for _ in 0..bad {
        bitmap.push_row(&row);
    }
    Ok(DecodedPage { bitmap, bad_rows: bad, max_consecutive_bad_rows: bad, rtc_seen: false })
}

/// Encodes a page as T.6 (MMR) with EOFB, MSB-first (used to test [`decode_t6`]).
pub fn encode_t6(bitmap: &Bitmap) -> Vec<u8> {
    let mut w = BitWriter::default();
    let mut refc = Vec::new();
    let mut cur = Vec::new();
    for y in 0..bitmap.height {
        changes_of(bitmap.row(y), bitmap.width, &mut cur);
        encode_row_2d(&mut w, &cur, &refc, bitmap.width);
        std::mem::swap(&mut refc, &mut cur);
    }
    w.put(EOL);
    w.put(EOL);
    w.bytes
}

#[cfg(test)]
mod tests;
