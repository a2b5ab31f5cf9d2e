//! TIFF Class F (fax) files: multi-page read (little- and big-endian) and write (little-endian).
//!
//! Reading accepts Compression 3 (T.4 MH or MR, `T4Options` bit 0), 4 (T.6 MMR), 1
//! (uncompressed) and 32773 (PackBits, as plain bilevel TIFFs often use), `FillOrder` 1 or 2, `PhotometricInterpretation` 0 or 1, one or many strips.
//! Lines of the T.4 data that do not decode are replaced by the line above and counted in
//! [`FaxPage::bad_rows`]; a malformed file structure gives a [`TiffError`] that names the
//! offset or tag. Writing produces Compression 3 with EOLs, one IFD per page
//! (`NewSubfileType = 2`, `PageNumber`), and the fax tags `BadFaxLines`, `CleanFaxData` and
//! `ConsecutiveBadFaxLines`.

use super::t4::{self, BitOrder, Bitmap, Coding, EncodeOptions, T4Decoder, MAX_WIDTH};

/// Largest number of pages read from one file.
pub const MAX_PAGES: usize = 1024;
/// Largest image (packed bytes) read for one page.
pub const MAX_PAGE_BYTES: usize = 8 << 20;
/// Largest image data (packed bytes) read for all pages together.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// TIFF tag numbers used here.
pub mod tag {
    /// NewSubfileType.
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    /// ImageWidth.
    pub const IMAGE_WIDTH: u16 = 256;
    /// ImageLength.
    pub const IMAGE_LENGTH: u16 = 257;
    /// BitsPerSample.
    pub const BITS_PER_SAMPLE: u16 = 258;
    /// Compression.
    pub const COMPRESSION: u16 = 259;
    /// PhotometricInterpretation.
    pub const PHOTOMETRIC: u16 = 262;
    /// FillOrder.
    pub const FILL_ORDER: u16 = 266;
    /// StripOffsets.
    pub const STRIP_OFFSETS: u16 = 273;
    /// SamplesPerPixel.
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    /// RowsPerStrip.
    pub const ROWS_PER_STRIP: u16 = 278;
    /// StripByteCounts.
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    /// XResolution.
    pub const X_RESOLUTION: u16 = 282;
    /// YResolution.
    pub const Y_RESOLUTION: u16 = 283;
    /// PlanarConfiguration.
    pub const PLANAR_CONFIG: u16 = 284;
    /// T4Options (Group3Options).
    pub const T4_OPTIONS: u16 = 292;
    /// T6Options (Group4Options).
    pub const T6_OPTIONS: u16 = 293;
    /// ResolutionUnit.
    pub const RESOLUTION_UNIT: u16 = 296;
    /// PageNumber.
    pub const PAGE_NUMBER: u16 = 297;
    /// BadFaxLines.
    pub const BAD_FAX_LINES: u16 = 326;
    /// CleanFaxData.
    pub const CLEAN_FAX_DATA: u16 = 327;
    /// ConsecutiveBadFaxLines.
    pub const CONSECUTIVE_BAD_FAX_LINES: u16 = 328;
}

/// One page of a fax document.
#[derive(Clone, Debug, PartialEq)]
pub struct FaxPage {
    /// The image (`1` = black).
    pub bitmap: Bitmap,
    /// Horizontal resolution in `resolution_unit` (204 dpi for fax).
    pub x_resolution: f64,
    /// Vertical resolution in `resolution_unit` (98 standard, 196 fine, 391 superfine).
    pub y_resolution: f64,
    /// 2 = inch, 3 = centimetre.
    pub resolution_unit: u16,
    /// Lines that did not decode (replaced by the line above, or white when missing).
    pub bad_rows: usize,
    /// Longest run of consecutive bad lines.
    pub consecutive_bad_rows: usize,
    /// Compression read from the file (1, 3 or 4); 3 for pages built in memory.
    pub compression: u16,
    /// T.4 coding read from the file (MR if T4Options bit 0); meaningless for other compressions.
    pub coding: Coding,
    /// PageNumber (page, total) if present.
    pub page_number: Option<(u16, u16)>,
}

impl FaxPage {
    /// A page at standard fax resolution (204 x 98 dpi) or fine (204 x 196 dpi).
    pub fn new(bitmap: Bitmap, fine: bool) -> Self {
        FaxPage {
            bitmap,
            x_resolution: 204.0,
            y_resolution: if fine { 196.0 } else { 98.0 },
            resolution_unit: 2,
            bad_rows: 0,
            consecutive_bad_rows: 0,
            compression: 3,
            coding: Coding::Mh,
            page_number: None,
        }
    }
}

/// Errors reading a TIFF file: each says what was wrong and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TiffError {
    /// The file ends before a structure it must contain.
    #[error("truncated TIFF: {what} needs {need} bytes at offset {offset}, file is {len} bytes")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset of the structure.
        offset: u64,
        /// Bytes needed.
        need: u64,
        /// File length.
        len: usize,
    },
    /// The first two bytes are not `II` or `MM`.
    #[error("not a TIFF file: byte order mark {0:02x?} at offset 0 (expected \"II\" or \"MM\")")]
    BadByteOrder([u8; 2]),
    /// The version at offset 2 is not 42 (BigTIFF 43 is not supported).
    #[error("unsupported TIFF version {0} at offset 2 (expected 42)")]
    BadVersion(u16),
    /// The file holds no IFD.
    #[error("TIFF has no image (first IFD offset is 0)")]
    NoPages,
    /// The IFD chain comes back to an IFD already read.
    #[error("IFD chain loops back to offset {0}")]
    IfdLoop(u32),
    /// More than [`MAX_PAGES`] IFDs.
    #[error("TIFF has more than {MAX_PAGES} pages")]
    TooManyPages,
    /// A required tag is absent.
    #[error("page {page}: required tag {name} ({tag}) is missing")]
    MissingTag {
        /// Page index (0-based).
        page: usize,
        /// Tag number.
        tag: u16,
        /// Tag name.
        name: &'static str,
    },
    /// A tag has a type or count this reader cannot use.
    #[error("page {page}: tag {tag} has type {typ} count {count}, expected {expected}")]
    BadTagType {
        /// Page index.
        page: usize,
        /// Tag number.
        tag: u16,
        /// TIFF field type.
        typ: u16,
        /// Value count.
        count: u32,
        /// What was expected.
        expected: &'static str,
    },
    /// A tag's value is out of range.
    #[error("page {page}: tag {name} ({tag}) has invalid value {value}: {reason}")]
    BadValue {
        /// Page index.
        page: usize,
        /// Tag number.
        tag: u16,
        /// Tag name.
        name: &'static str,
        /// The value.
        value: u64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A feature outside TIFF Class F.
    #[error("page {page}: unsupported: {what}")]
    Unsupported {
        /// Page index.
        page: usize,
        /// Description.
        what: String,
    },
    /// A strip lies outside the file.
    #[error("page {page}: strip {strip} (offset {offset}, {len} bytes) lies outside the file ({file_len} bytes)")]
    StripOutOfRange {
        /// Page index.
        page: usize,
        /// Strip index.
        strip: usize,
        /// Strip offset.
        offset: u64,
        /// Strip byte count.
        len: u64,
        /// File length.
        file_len: usize,
    },
    /// The image is larger than [`MAX_PAGE_BYTES`] / [`MAX_FILE_BYTES`].
    #[error("page {page}: image {width} x {height} is too large")]
    TooLarge {
        /// Page index.
        page: usize,
        /// Width in pels.
        width: u64,
        /// Height in lines.
        height: u64,
    },
}

#[derive(Clone, Copy)]
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    /// Offset of the 4-byte value/offset field.
    field: usize,
}

struct Reader<'a> {
    data: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn need(&self, what: &'static str, offset: u64, need: u64) -> Result<usize, TiffError> {
        if offset.checked_add(need).is_none_or(|e| e > self.data.len() as u64) {
            return Err(TiffError::Truncated { what, offset, need, len: self.data.len() });
        }
        Ok(offset as usize)
    }

    fn u16_at(&self, o: usize) -> u16 {
        let b = [self.data[o], self.data[o + 1]];
        if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, o: usize) -> u32 {
        let b = [self.data[o], self.data[o + 1], self.data[o + 2], self.data[o + 3]];
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Offset of an entry's value bytes, bounds-checked.
    fn value_pos(&self, e: &Entry, size: u64) -> Result<usize, TiffError> {
        let total = u64::from(e.count) * size;
        if total <= 4 {
            Ok(e.field)
        } else {
            let off = u64::from(self.u32_at(e.field));
            self.need("tag value", off, total)
        }
    }

    /// Unsigned integer values of a BYTE/SHORT/LONG entry.
    fn uints(&self, page: usize, e: &Entry) -> Result<Vec<u64>, TiffError> {
        let size = match e.typ {
            1 => 1,
            3 => 2,
            4 => 4,
            _ => {
                return Err(TiffError::BadTagType {
                    page,
                    tag: e.tag,
                    typ: e.typ,
                    count: e.count,
                    expected: "BYTE, SHORT or LONG",
                })
            }
        };
        let pos = self.value_pos(e, size)?;
        Ok((0..e.count as usize)
            .map(|i| match size {
                1 => u64::from(self.data[pos + i]),
                2 => u64::from(self.u16_at(pos + 2 * i)),
                _ => u64::from(self.u32_at(pos + 4 * i)),
            })
            .collect())
    }

    fn rational(&self, page: usize, e: &Entry) -> Result<f64, TiffError> {
        match e.typ {
            5 if e.count >= 1 => {
                let pos = self.value_pos(e, 8)?;
                let n = self.u32_at(pos);
                let d = self.u32_at(pos + 4);
                if d == 0 {
                    return Err(TiffError::BadValue {
                        page,
                        tag: e.tag,
                        name: "resolution",
                        value: u64::from(n),
                        reason: "rational with zero denominator",
                    });
                }
                Ok(f64::from(n) / f64::from(d))
            }
            1 | 3 | 4 if e.count >= 1 => Ok(self.uints(page, e)?[0] as f64),
            _ => Err(TiffError::BadTagType {
                page,
                tag: e.tag,
                typ: e.typ,
                count: e.count,
                expected: "RATIONAL",
            }),
        }
    }
}

struct Ifd {
    entries: Vec<Entry>,
    next: u32,
}

fn read_ifd(r: &Reader<'_>, offset: u32) -> Result<Ifd, TiffError> {
    let o = r.need("IFD entry count", u64::from(offset), 2)?;
    let n = r.u16_at(o) as usize;
    let body = r.need("IFD", u64::from(offset), 2 + 12 * n as u64 + 4)?;
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let e = body + 2 + 12 * i;
        entries.push(Entry {
            tag: r.u16_at(e),
            typ: r.u16_at(e + 2),
            count: r.u32_at(e + 4),
            field: e + 8,
        });
    }
    Ok(Ifd { entries, next: r.u32_at(body + 2 + 12 * n) })
}

/// TIFF Compression value of PackBits (Apple's byte-oriented run-length coding).
pub const PACKBITS: u64 = 32773;

/// Decodes PackBits data, stopping at `limit` bytes of output or the end of the input (a
/// truncated run gives what it has).
fn unpack_bits(data: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    let mut i = 0;
    while i < data.len() && out.len() < limit {
        let n = data[i] as i8;
        i += 1;
        if n >= 0 {
            let end = (i + n as usize + 1).min(data.len());
            out.extend_from_slice(&data[i..end]);
            i = end;
        } else if n != -128 {
            if let Some(&b) = data.get(i) {
                out.resize(out.len() + (1 - n as isize) as usize, b);
            }
            i += 1;
        }
    }
    out.truncate(limit);
    out
}

/// Reads all pages of a TIFF Class F file.
pub fn read_tiff(data: &[u8]) -> Result<Vec<FaxPage>, TiffError> {
    let mut r = Reader { data, big: false };
    r.need("TIFF header", 0, 8)?;
    r.big = match &data[0..2] {
        b"II" => false,
        b"MM" => true,
        _ => return Err(TiffError::BadByteOrder([data[0], data[1]])),
    };
    let version = r.u16_at(2);
    if version != 42 {
        return Err(TiffError::BadVersion(version));
    }
    let mut next = r.u32_at(4);
    if next == 0 {
        return Err(TiffError::NoPages);
    }
    let mut seen = std::collections::HashSet::new();
    let mut pages = Vec::new();
    let mut total_bytes = 0usize;
    while next != 0 {
        if !seen.insert(next) {
            return Err(TiffError::IfdLoop(next));
        }
        if pages.len() >= MAX_PAGES {
            return Err(TiffError::TooManyPages);
        }
        let ifd = read_ifd(&r, next)?;
        let page = read_page(&r, &ifd, pages.len(), &mut total_bytes)?;
        pages.push(page);
        next = ifd.next;
    }
    Ok(pages)
}

fn tag_name(t: u16) -> &'static str {
    match t {
        tag::IMAGE_WIDTH => "ImageWidth",
        tag::IMAGE_LENGTH => "ImageLength",
        tag::BITS_PER_SAMPLE => "BitsPerSample",
        tag::COMPRESSION => "Compression",
        tag::PHOTOMETRIC => "PhotometricInterpretation",
        tag::FILL_ORDER => "FillOrder",
        tag::STRIP_OFFSETS => "StripOffsets",
        tag::SAMPLES_PER_PIXEL => "SamplesPerPixel",
        tag::ROWS_PER_STRIP => "RowsPerStrip",
        tag::STRIP_BYTE_COUNTS => "StripByteCounts",
        tag::X_RESOLUTION => "XResolution",
        tag::Y_RESOLUTION => "YResolution",
        tag::PLANAR_CONFIG => "PlanarConfiguration",
        tag::T4_OPTIONS => "T4Options",
        tag::T6_OPTIONS => "T6Options",
        tag::RESOLUTION_UNIT => "ResolutionUnit",
        tag::PAGE_NUMBER => "PageNumber",
        _ => "tag",
    }
}

fn read_page(
    r: &Reader<'_>,
    ifd: &Ifd,
    page: usize,
    total_bytes: &mut usize,
) -> Result<FaxPage, TiffError> {
    let find = |t: u16| ifd.entries.iter().find(|e| e.tag == t);
    let uints = |t: u16| -> Result<Option<Vec<u64>>, TiffError> {
        match find(t) {
            None => Ok(None),
            Some(e) => {
                let v = r.uints(page, e)?;
                if v.is_empty() {
                    return Err(TiffError::BadTagType {
                        page,
                        tag: t,
                        typ: e.typ,
                        count: 0,
                        expected: "at least one value",
                    });
                }
                Ok(Some(v))
            }
        }
    };
    let required = |t: u16| -> Result<Vec<u64>, TiffError> {
        uints(t)?.ok_or(TiffError::MissingTag { page, tag: t, name: tag_name(t) })
    };
    let one = |t: u16, default: u64| -> Result<u64, TiffError> {
        Ok(uints(t)?.map_or(default, |v| v[0]))
    };
    let bad = |t: u16, value: u64, reason: &'static str| TiffError::BadValue {
        page,
        tag: t,
        name: tag_name(t),
        value,
        reason,
    };

    let width = required(tag::IMAGE_WIDTH)?[0];
    if width == 0 || width > MAX_WIDTH as u64 {
        return Err(bad(tag::IMAGE_WIDTH, width, "width must be 1..=16384"));
    }
    let height = required(tag::IMAGE_LENGTH)?[0];
    if height == 0 {
        return Err(bad(tag::IMAGE_LENGTH, height, "height must be at least 1"));
    }
    let image_bytes = width.div_ceil(8).saturating_mul(height);
    if image_bytes > MAX_PAGE_BYTES as u64 || *total_bytes + image_bytes as usize > MAX_FILE_BYTES {
        return Err(TiffError::TooLarge { page, width, height });
    }
    *total_bytes += image_bytes as usize;
    let (width, height) = (width as usize, height as usize);

    if let Some(v) = uints(tag::BITS_PER_SAMPLE)? {
        if v.iter().any(|&b| b != 1) {
            return Err(bad(tag::BITS_PER_SAMPLE, v[0], "fax images are bilevel (1)"));
        }
    }
    let spp = one(tag::SAMPLES_PER_PIXEL, 1)?;
    if spp != 1 {
        return Err(bad(tag::SAMPLES_PER_PIXEL, spp, "fax images have one sample"));
    }
    let compression = one(tag::COMPRESSION, 1)?;
    let photometric = one(tag::PHOTOMETRIC, 0)?;
    if photometric > 1 {
        return Err(bad(
            tag::PHOTOMETRIC,
            photometric,
            "must be 0 (WhiteIsZero) or 1 (BlackIsZero)",
        ));
    }
    let fill = one(tag::FILL_ORDER, 1)?;
    let order = match fill {
        1 => BitOrder::MsbFirst,
        2 => BitOrder::LsbFirst,
        v => return Err(bad(tag::FILL_ORDER, v, "must be 1 or 2")),
    };
    let t4opt = one(tag::T4_OPTIONS, 0)?;
    let t6opt = one(tag::T6_OPTIONS, 0)?;
    let coding = match compression {
        1 | PACKBITS => Coding::Mh,
        3 => {
            if t4opt & 2 != 0 {
                return Err(TiffError::Unsupported {
                    page,
                    what: "T4Options bit 1 (uncompressed mode)".into(),
                });
            }
            if t4opt & 1 != 0 {
                Coding::Mr
            } else {
                Coding::Mh
            }
        }
        4 => {
            if t6opt & 2 != 0 {
                return Err(TiffError::Unsupported {
                    page,
                    what: "T6Options bit 1 (uncompressed mode)".into(),
                });
            }
            Coding::Mr
        }
        2 => {
            return Err(TiffError::Unsupported {
                page,
                what: "Compression 2 (CCITT modified Huffman RLE without EOLs)".into(),
            })
        }
        v => {
            return Err(TiffError::Unsupported {
                page,
                what: format!("Compression {v} (fax files use 3 = T.4 or 4 = T.6)"),
            })
        }
    };
    let rps = one(tag::ROWS_PER_STRIP, height as u64)?;
    if rps == 0 {
        return Err(bad(tag::ROWS_PER_STRIP, 0, "must be at least 1"));
    }
    let rps = rps.min(height as u64) as usize;
    let strips_needed = height.div_ceil(rps);
    let offsets = required(tag::STRIP_OFFSETS)?;
    let counts = required(tag::STRIP_BYTE_COUNTS)?;
    if offsets.len() < strips_needed {
        return Err(bad(
            tag::STRIP_OFFSETS,
            offsets.len() as u64,
            "fewer strips than ImageLength / RowsPerStrip needs",
        ));
    }
    if counts.len() != offsets.len() {
        return Err(bad(
            tag::STRIP_BYTE_COUNTS,
            counts.len() as u64,
            "count differs from StripOffsets",
        ));
    }

    let mut bitmap = Bitmap::new(width, 0);
    let mut bad_rows = 0;
    let mut consecutive = 0;
    let mut run = 0;
    for strip in 0..strips_needed {
        let rows = rps.min(height - strip * rps);
        let (off, len) = (offsets[strip], counts[strip]);
        if off.checked_add(len).is_none_or(|e| e > r.data.len() as u64) {
            return Err(TiffError::StripOutOfRange {
                page,
                strip,
                offset: off,
                len,
                file_len: r.data.len(),
            });
        }
        let bytes = &r.data[off as usize..(off + len) as usize];
        let unpacked;
        let bytes = if compression == PACKBITS {
            unpacked = unpack_bits(bytes, width.div_ceil(8) * rows);
            &unpacked[..]
        } else {
            bytes
        };
        let decoded = match compression {
            1 | PACKBITS => {
                let stride = width.div_ceil(8);
                let mut b = Bitmap::new(width, 0);
                for row in bytes.chunks_exact(stride).take(rows) {
                    let row: Vec<u8> = match order {
                        BitOrder::MsbFirst => row.to_vec(),
                        BitOrder::LsbFirst => t4::reverse_bit_order(row),
                    };
                    b.push_row(&row);
                }
                Some((b, 0, 0))
            }
            3 => {
                let mut d = T4Decoder::new(width, coding, order)
                    .expect("width checked above")
                    .with_max_rows(rows);
                d.push(bytes);
                d.finish().ok().map(|p| (p.bitmap, p.bad_rows, p.max_consecutive_bad_rows))
            }
            _ => {
                let msb = match order {
                    BitOrder::MsbFirst => bytes.to_vec(),
                    BitOrder::LsbFirst => t4::reverse_bit_order(bytes),
                };
                t4::decode_t6(&msb, width, rows)
                    .ok()
                    .map(|p| (p.bitmap, p.bad_rows, p.max_consecutive_bad_rows))
            }
        };
        let (b, nbad, ncons) = decoded.unwrap_or((Bitmap::new(width, 0), 0, 0));
        bad_rows += nbad;
        consecutive = consecutive.max(ncons);
        for y in 0..b.height.min(rows) {
            bitmap.push_row(b.row(y));
            run = 0;
        }
        // Lines missing from the strip are white and bad.
        let missing = rows.saturating_sub(b.height);
        let blank = vec![0u8; bitmap.stride()];
        for _ in 0..missing {
            bitmap.push_row(&blank);
            bad_rows += 1;
            run += 1;
            consecutive = consecutive.max(run);
        }
    }
    if photometric == 1 {
        let stride = bitmap.stride();
        for row in bitmap.bits.chunks_mut(stride) {
            for b in row.iter_mut() {
                *b = !*b;
            }
            if width % 8 != 0 {
                row[stride - 1] &= 0xFFu8 << (8 - width % 8);
            }
        }
    }

    let x_resolution = match find(tag::X_RESOLUTION) {
        Some(e) => r.rational(page, e)?,
        None => 204.0,
    };
    let y_resolution = match find(tag::Y_RESOLUTION) {
        Some(e) => r.rational(page, e)?,
        None => 98.0,
    };
    let resolution_unit = one(tag::RESOLUTION_UNIT, 2)?.min(u64::from(u16::MAX)) as u16;
    let page_number = match uints(tag::PAGE_NUMBER)? {
        Some(v) if v.len() >= 2 => Some((v[0] as u16, v[1] as u16)),
        _ => None,
    };
    Ok(FaxPage {
        bitmap,
        x_resolution,
        y_resolution,
        resolution_unit,
        bad_rows,
        consecutive_bad_rows: consecutive,
        compression: compression as u16,
        coding,
        page_number,
    })
}

/// Settings for [`write_tiff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// MH (T4Options bit 0 clear) or MR (bit 0 set).
    pub coding: Coding,
    /// MR K parameter (2 at standard, 4 at fine resolution).
    pub k: u32,
    /// FillOrder: 1 = MSB first, 2 = LSB first (usual for fax software).
    pub fill_order: u16,
    /// Lines per strip; `None` = one strip per page.
    pub rows_per_strip: Option<usize>,
    /// Byte-align EOLs (T4Options bit 2).
    pub byte_align_eol: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            coding: Coding::Mh,
            k: 2,
            fill_order: 2,
            rows_per_strip: None,
            byte_align_eol: false,
        }
    }
}

fn rational(v: f64) -> (u32, u32) {
    if !v.is_finite() || v <= 0.0 {
        return (0, 1);
    }
    if v.fract() == 0.0 && v <= f64::from(u32::MAX) {
        return (v as u32, 1);
    }
    ((v * 100.0).round().min(f64::from(u32::MAX)) as u32, 100)
}

/// Writes pages as a little-endian TIFF Class F file (Compression 3).
pub fn write_tiff(pages: &[FaxPage], opts: &WriteOptions) -> Vec<u8> {
    let mut out = b"II\x2a\x00\0\0\0\0".to_vec();
    let mut link = 4usize; // where to patch the offset of the next IFD
    let total = pages.len().min(usize::from(u16::MAX)) as u16;
    for (n, page) in pages.iter().enumerate() {
        let b = &page.bitmap;
        let rps = opts.rows_per_strip.unwrap_or(b.height).clamp(1, b.height.max(1));
        let mut enc = EncodeOptions::tiff(opts.coding, opts.k);
        enc.byte_align_eol = opts.byte_align_eol;
        let mut strip_offsets = Vec::new();
        let mut strip_counts = Vec::new();
        let mut y = 0;
        while y < b.height || (b.height == 0 && strip_offsets.is_empty()) {
            let rows = rps.min(b.height - y);
            let mut part = Bitmap::new(b.width, rows);
            part.bits.copy_from_slice(&b.bits[y * b.stride()..(y + rows) * b.stride()]);
            let mut data = t4::encode_page_with(&part, &enc);
            if opts.fill_order == 2 {
                data = t4::reverse_bit_order(&data);
            }
            strip_offsets.push(out.len() as u32);
            strip_counts.push(data.len() as u32);
            out.extend_from_slice(&data);
            y += rows.max(1);
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
        let t4opt = u32::from(opts.coding == Coding::Mr) | (u32::from(opts.byte_align_eol) << 2);
        let consecutive = page.consecutive_bad_rows.min(u32::MAX as usize) as u32;
        // (tag, type, values) with values as u32 (SHORT/LONG) or rationals.
        enum V {
            Short(Vec<u16>),
            Long(Vec<u32>),
            Rat(u32, u32),
        }
        let entries: Vec<(u16, V)> = vec![
            (tag::NEW_SUBFILE_TYPE, V::Long(vec![2])),
            (tag::IMAGE_WIDTH, V::Long(vec![b.width as u32])),
            (tag::IMAGE_LENGTH, V::Long(vec![b.height as u32])),
            (tag::BITS_PER_SAMPLE, V::Short(vec![1])),
            (tag::COMPRESSION, V::Short(vec![3])),
            (tag::PHOTOMETRIC, V::Short(vec![0])),
            (tag::FILL_ORDER, V::Short(vec![opts.fill_order])),
            (tag::STRIP_OFFSETS, V::Long(strip_offsets)),
            (tag::SAMPLES_PER_PIXEL, V::Short(vec![1])),
            (tag::ROWS_PER_STRIP, V::Long(vec![rps as u32])),
            (tag::STRIP_BYTE_COUNTS, V::Long(strip_counts)),
            (
                tag::X_RESOLUTION,
                V::Rat(rational(page.x_resolution).0, rational(page.x_resolution).1),
            ),
            (
                tag::Y_RESOLUTION,
                V::Rat(rational(page.y_resolution).0, rational(page.y_resolution).1),
            ),
            (tag::PLANAR_CONFIG, V::Short(vec![1])),
            (tag::T4_OPTIONS, V::Long(vec![t4opt])),
            (tag::RESOLUTION_UNIT, V::Short(vec![page.resolution_unit])),
            (tag::PAGE_NUMBER, V::Short(vec![n as u16, total])),
            (tag::BAD_FAX_LINES, V::Long(vec![page.bad_rows.min(u32::MAX as usize) as u32])),
            (tag::CLEAN_FAX_DATA, V::Short(vec![if page.bad_rows == 0 { 0 } else { 1 }])),
            (tag::CONSECUTIVE_BAD_FAX_LINES, V::Long(vec![consecutive])),
        ];
        let ifd_at = out.len();
        out[link..link + 4].copy_from_slice(&(ifd_at as u32).to_le_bytes());
        let mut extra_at = ifd_at + 2 + 12 * entries.len() + 4;
        let mut extra = Vec::new();
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (t, v) in &entries {
            let (typ, count, bytes): (u16, usize, Vec<u8>) = match v {
                V::Short(s) => (3, s.len(), s.iter().flat_map(|x| x.to_le_bytes()).collect()),
                V::Long(l) => (4, l.len(), l.iter().flat_map(|x| x.to_le_bytes()).collect()),
                V::Rat(a, d) => (5, 1, [a.to_le_bytes(), d.to_le_bytes()].concat()),
            };
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&typ.to_le_bytes());
            out.extend_from_slice(&(count as u32).to_le_bytes());
            if bytes.len() <= 4 {
                let mut f = [0u8; 4];
                f[..bytes.len()].copy_from_slice(&bytes);
                out.extend_from_slice(&f);
            } else {
                out.extend_from_slice(&(extra_at as u32).to_le_bytes());
                extra_at += bytes.len();
                extra.extend_from_slice(&bytes);
            }
        }
        link = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&extra);
    }
    out
}

/// Fax resolution across the page (pels per inch at 1728 pels on 215 mm).
pub const FAX_X_DPI: f64 = 204.0;

/// Converts a page to something a fax machine accepts: 1728 pels wide at 204 dpi, 98
/// (standard) or 196 (fine) lines per inch. A page already in that shape is returned as is
/// (to within 1 % of the resolutions). Otherwise it is resampled (nearest neighbour; a
/// pel is black if any source pel it covers is, so thin lines survive shrinking) to 204 dpi
/// across and to fine resolution down if it has more than 150 lines per inch (standard
/// otherwise), shrunk further to fit 1728 pels if it is wider than that, and centred on a
/// white 1728-pel line if narrower.
pub fn to_fax_page(page: &FaxPage) -> FaxPage {
    let inch = |v: f64| if page.resolution_unit == 3 { v * 2.54 } else { v };
    let (xdpi, ydpi) = (inch(page.x_resolution), inch(page.y_resolution));
    let xdpi = if xdpi.is_finite() && xdpi > 1.0 { xdpi } else { FAX_X_DPI };
    let ydpi = if ydpi.is_finite() && ydpi > 1.0 { ydpi } else { 98.0 };
    let fine = ydpi > 150.0;
    let ty = if fine { 196.0 } else { 98.0 };
    let close = |a: f64, b: f64| (a - b).abs() <= 0.01 * b;
    let src = &page.bitmap;
    if src.width == t4::WIDTH_A4 && close(xdpi, FAX_X_DPI) && close(ydpi, ty) {
        let mut p = page.clone();
        p.x_resolution = FAX_X_DPI;
        p.y_resolution = ty;
        p.resolution_unit = 2;
        return p;
    }
    // Scale factors (output pels per input pel).
    let mut sx = FAX_X_DPI / xdpi;
    let mut sy = ty / ydpi;
    if src.width as f64 * sx > t4::WIDTH_A4 as f64 {
        let shrink = t4::WIDTH_A4 as f64 / (src.width as f64 * sx);
        sx *= shrink;
        sy *= shrink;
    }
    let w = ((src.width as f64 * sx).round() as usize).clamp(1, t4::WIDTH_A4);
    let h = ((src.height as f64 * sy).round() as usize).max(1);
    let left = (t4::WIDTH_A4 - w) / 2;
    let mut out = Bitmap::new(t4::WIDTH_A4, h);
    for y in 0..h {
        let y0 = ((y as f64 / sy) as usize).min(src.height.saturating_sub(1));
        let y1 = (((y + 1) as f64 / sy).ceil() as usize).clamp(y0 + 1, src.height.max(1));
        for x in 0..w {
            let x0 = ((x as f64 / sx) as usize).min(src.width - 1);
            let x1 = (((x + 1) as f64 / sx).ceil() as usize).clamp(x0 + 1, src.width);
            let black = (y0..y1).any(|yy| (x0..x1).any(|xx| src.get(xx, yy)));
            if black {
                out.set(left + x, y, true);
            }
        }
    }
    let mut p = FaxPage::new(out, fine);
    p.page_number = page.page_number;
    p
}

/// Fuzz check: parse `data`; if it parses, write it again (MH/LSB-first/several strips and
/// MR/MSB-first), re-read both and check the bitmaps are identical and clean.
///
/// # Panics
/// If a re-encoded file does not read back to the same images (a bug).
pub fn tiff_fuzz_check(data: &[u8]) {
    let Ok(pages) = read_tiff(data) else {
        return;
    };
    for opts in [
        WriteOptions { rows_per_strip: Some(7), ..WriteOptions::default() },
        WriteOptions {
            coding: Coding::Mr,
            k: 4,
            fill_order: 1,
            rows_per_strip: None,
            byte_align_eol: true,
        },
    ] {
        let file = write_tiff(&pages, &opts);
        let again = read_tiff(&file).expect("re-encoded TIFF must parse");
        assert_eq!(again.len(), pages.len(), "page count changed");
        for (a, b) in pages.iter().zip(&again) {
            assert_eq!(a.bitmap, b.bitmap, "bitmap changed in round trip");
            assert_eq!(b.bad_rows, 0, "re-encoded page has bad rows");
        }
    }
}

#[cfg(test)]
mod tests;
