//! ITU-T T.30 document facsimile procedure, sans-IO: phases A to E for the calling and the
//! called terminal, sending or receiving (normal transmission and polling), with or without
//! error correction mode (Annex A, see [`ecm`]).
//!
//! The engine never touches audio. It asks for transmissions through [`T30::poll_transmit`]
//! ([`T30Tx`]: CNG, CED, HDLC frames on V.21, TCF or image data on an image modem), says what
//! it wants to hear through [`T30::rx_mode`], and is told what arrived through the
//! `handle_*` methods, each taking the current time. Timers (T1, T2, T4) are deadlines read
//! with [`T30::poll_timeout`] and fired only by [`T30::handle_timeout`]. Results come out of
//! [`T30::poll_event`]. [`super::session::FaxSession`] joins it to V.21, HDLC and an image
//! modem.
//!
//! Frames are the octets between flags without the FCS, in the order they are deframed
//! (least significant bit first on the line): `FF, 03 | 13 (final), FCF, FIF...`. The FCF
//! constants in [`fcf`] have the "X" bit (0x01) clear; frames sent by the calling terminal
//! carry X = 1, as T.30 §5.3.6.1 asks of the station that received DIS.
//!
//! ECM is offered and used when [`T30Config::ecm`] is set and the far end offers it too: 256
//! (or 64) octet frames, PPS/PPR with selective retransmission, CTC/CTR after four PPRs,
//! EOR/ERR, RR/RNR flow control under timer T5, and T.6 (MMR) coding when both ends offer it
//! (else MR or MH). A receiver accepts ECM whenever the sender's DCS asks for it.
//!
//! Not implemented: procedure interrupts (PIP/PIN, timer T3), NSF/NSS content, V.8/V.34,
//! T.38. PIP/PIN from the far end end the call with [`FaxStatus::ProtocolError`].
//!
//! Page coding allocates (T.4 encoding and decoding, frame and page buffers): run the engine
//! beside the real-time tick, not inside it.

use std::collections::VecDeque;
use std::time::Duration;

use super::t4::{self, BitOrder, Bitmap, Coding, EncodeOptions, T4Decoder};
use super::tiff::FaxPage;

/// T.30 facsimile control field values with the X bit clear (T.30 Table 1).
pub mod fcf {
    /// Digital identification signal (called terminal's capabilities).
    pub const DIS: u8 = 0x80;
    /// Called subscriber identification.
    pub const CSI: u8 = 0x40;
    /// Non-standard facilities.
    pub const NSF: u8 = 0x20;
    /// Digital transmit command (polling request).
    pub const DTC: u8 = 0x81;
    /// Calling subscriber identification (sent with DTC).
    pub const CIG: u8 = 0x41;
    /// Non-standard facilities command.
    pub const NSC: u8 = 0x21;
    /// Digital command signal.
    pub const DCS: u8 = 0x82;
    /// Transmitting subscriber identification.
    pub const TSI: u8 = 0x42;
    /// Non-standard facilities set-up.
    pub const NSS: u8 = 0x22;
    /// Confirmation to receive (training good).
    pub const CFR: u8 = 0x84;
    /// Failure to train.
    pub const FTT: u8 = 0x44;
    /// Multi-page signal: another page follows with the same settings.
    pub const MPS: u8 = 0x4E;
    /// End of message: another document follows, back to phase B.
    pub const EOM: u8 = 0x8E;
    /// End of procedure: last page.
    pub const EOP: u8 = 0x2E;
    /// Message confirmation: page received well.
    pub const MCF: u8 = 0x8C;
    /// Retrain negative: page not received well, retrain before going on.
    pub const RTN: u8 = 0x4C;
    /// Retrain positive: page received well, retrain before going on.
    pub const RTP: u8 = 0xCC;
    /// Procedure interrupt positive.
    pub const PIP: u8 = 0xAC;
    /// Procedure interrupt negative.
    pub const PIN: u8 = 0x2C;
    /// Disconnect.
    pub const DCN: u8 = 0xFA;
    /// Command repeat (the last frame arrived with a bad FCS).
    pub const CRP: u8 = 0x1A;
    /// ECM: partial page signal (FIF: post-page FCF, page, block, frames - 1).
    pub const PPS: u8 = 0xBE;
    /// ECM: partial page request (FIF: 256-bit map of the frames to send again).
    pub const PPR: u8 = 0xBC;
    /// ECM: continue to correct (FIF: DCS octets 1-2 with the new rate).
    pub const CTC: u8 = 0x12;
    /// ECM: response for continue to correct.
    pub const CTR: u8 = 0xC4;
    /// ECM: receive ready (asks a busy receiver for its response).
    pub const RR: u8 = 0x76;
    /// ECM: receive not ready.
    pub const RNR: u8 = 0xEC;
    /// ECM: end of retransmission (FIF: post-page FCF).
    pub const EOR: u8 = 0xCE;
    /// ECM: response for end of retransmission.
    pub const ERR: u8 = 0x1C;
    /// ECM: facsimile coded data frame (on the image modem; FIF: frame number, data).
    pub const FCD: u8 = 0x06;
    /// ECM: return to control for partial page (on the image modem).
    pub const RCP: u8 = 0x86;
}

/// Address octet of every T.30 frame.
pub const ADDRESS: u8 = 0xFF;
/// Control octet of a frame that is not the last of its burst.
pub const CONTROL: u8 = 0x03;
/// Control octet of the last frame of a burst (P/F = 1).
pub const CONTROL_FINAL: u8 = 0x13;
/// Length of the CSI/TSI/CIG identity field.
pub const IDENT_LEN: usize = 20;
/// TCF length in milliseconds (1.5 s ± 10 %).
pub const TCF_MS: u32 = 1500;
/// CED duration the engine asks for (T.30: 2.6 to 4.0 s).
pub const CED_MS: u32 = 3000;

/// Builds a frame `FF, 03/13, fcf, fif...`.
pub fn frame(fcf: u8, fif: &[u8], last: bool) -> Vec<u8> {
    let mut f = Vec::with_capacity(3 + fif.len());
    f.extend_from_slice(&[ADDRESS, if last { CONTROL_FINAL } else { CONTROL }, fcf]);
    f.extend_from_slice(fif);
    f
}

/// Encodes an identity for CSI/TSI/CIG: 20 octets, the last character first, padded with
/// spaces (T.30 §5.3.6.2.4). Characters outside printable ASCII become spaces; more than 20
/// characters keep the last 20.
pub fn encode_ident(id: &str) -> [u8; IDENT_LEN] {
    let mut out = [b' '; IDENT_LEN];
    let bytes: Vec<u8> =
        id.bytes().map(|b| if (0x20..0x7F).contains(&b) { b } else { b' ' }).collect();
    for (o, &b) in out.iter_mut().zip(bytes.iter().rev()) {
        *o = b;
    }
    out
}

/// Decodes a CSI/TSI/CIG field: reverses it and trims spaces.
pub fn decode_ident(fif: &[u8]) -> String {
    let s: String = fif
        .iter()
        .rev()
        .map(|&b| if (0x20..0x7F).contains(&b) { char::from(b) } else { ' ' })
        .collect();
    s.trim().to_string()
}

/// An image modem and data signalling rate (DCS bits 11 to 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaxRate {
    /// V.27 ter 2400 bit/s.
    V27ter2400,
    /// V.27 ter 4800 bit/s.
    V27ter4800,
    /// V.29 7200 bit/s.
    V29_7200,
    /// V.29 9600 bit/s.
    V29_9600,
    /// V.17 7200 bit/s.
    V17_7200,
    /// V.17 9600 bit/s.
    V17_9600,
    /// V.17 12000 bit/s.
    V17_12000,
    /// V.17 14400 bit/s.
    V17_14400,
}

/// Image modem recommendations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModemFamily {
    /// V.27 ter (2400/4800).
    V27ter,
    /// V.29 (7200/9600).
    V29,
    /// V.17 (7200 to 14400).
    V17,
}

impl FaxRate {
    /// All rates, in the order tried after each FTT (highest first).
    pub const FALLBACK: [FaxRate; 8] = [
        FaxRate::V17_14400,
        FaxRate::V17_12000,
        FaxRate::V17_9600,
        FaxRate::V29_9600,
        FaxRate::V17_7200,
        FaxRate::V29_7200,
        FaxRate::V27ter4800,
        FaxRate::V27ter2400,
    ];

    /// Bits per second.
    pub const fn bps(self) -> u32 {
        match self {
            FaxRate::V27ter2400 => 2400,
            FaxRate::V27ter4800 => 4800,
            FaxRate::V29_7200 | FaxRate::V17_7200 => 7200,
            FaxRate::V29_9600 | FaxRate::V17_9600 => 9600,
            FaxRate::V17_12000 => 12000,
            FaxRate::V17_14400 => 14400,
        }
    }

    /// The modem recommendation.
    pub const fn family(self) -> ModemFamily {
        match self {
            FaxRate::V27ter2400 | FaxRate::V27ter4800 => ModemFamily::V27ter,
            FaxRate::V29_7200 | FaxRate::V29_9600 => ModemFamily::V29,
            _ => ModemFamily::V17,
        }
    }

    /// DCS bits 11, 12, 13, 14 (as bit 0..3 of the result).
    pub const fn dcs_bits(self) -> u8 {
        // Table 2/T.30, written b11 b12 b13 b14.
        match self {
            FaxRate::V27ter2400 => 0b0000,
            FaxRate::V27ter4800 => 0b0010, // 0100
            FaxRate::V29_9600 => 0b0001,   // 1000
            FaxRate::V29_7200 => 0b0011,   // 1100
            FaxRate::V17_14400 => 0b1000,  // 0001
            FaxRate::V17_12000 => 0b1010,  // 0101
            FaxRate::V17_9600 => 0b1001,   // 1001
            FaxRate::V17_7200 => 0b1011,   // 1101
        }
    }

    /// The rate for DCS bits 11 to 14 (bit 0..3), or `None` for a reserved value.
    pub fn from_dcs_bits(bits: u8) -> Option<FaxRate> {
        FaxRate::FALLBACK.into_iter().find(|r| r.dcs_bits() == bits & 0x0F)
    }
}

/// Modem capability announced in DIS/DTC bits 11 to 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisModems {
    /// 0000: V.27 ter fall-back mode (2400 only).
    V27terFallback,
    /// 0100: V.27 ter.
    V27ter,
    /// 1000: V.29.
    V29,
    /// 1100: V.27 ter and V.29.
    V27terV29,
    /// 1101: V.27 ter, V.29 and V.17.
    V27terV29V17,
    /// A reserved combination (bits 11..14 as bit 0..3); treated as V.27 ter fall-back.
    Reserved(u8),
}

impl DisModems {
    fn bits(self) -> u8 {
        match self {
            DisModems::V27terFallback => 0b0000,
            DisModems::V27ter => 0b0010,
            DisModems::V29 => 0b0001,
            DisModems::V27terV29 => 0b0011,
            DisModems::V27terV29V17 => 0b1011,
            DisModems::Reserved(b) => b & 0x0F,
        }
    }

    fn from_bits(b: u8) -> Self {
        match b & 0x0F {
            0b0000 => DisModems::V27terFallback,
            0b0010 => DisModems::V27ter,
            0b0001 => DisModems::V29,
            0b0011 => DisModems::V27terV29,
            0b1011 => DisModems::V27terV29V17,
            other => DisModems::Reserved(other),
        }
    }

    /// Whether `rate` is covered.
    pub fn supports(self, rate: FaxRate) -> bool {
        match self {
            DisModems::V27terFallback | DisModems::Reserved(_) => rate == FaxRate::V27ter2400,
            DisModems::V27ter => rate.family() == ModemFamily::V27ter,
            DisModems::V29 => rate.family() == ModemFamily::V29,
            DisModems::V27terV29 => rate.family() != ModemFamily::V17,
            DisModems::V27terV29V17 => true,
        }
    }

    /// The announcement for a set of local rates (the largest combination they cover).
    pub fn for_rates(rates: &[FaxRate]) -> Self {
        let has = |f: ModemFamily| rates.iter().any(|r| r.family() == f);
        let v27 = rates.contains(&FaxRate::V27ter4800);
        match (v27, has(ModemFamily::V29), has(ModemFamily::V17)) {
            // No code announces V.17 alone: offering it means 1101.
            (_, _, true) => DisModems::V27terV29V17,
            (true, true, false) => DisModems::V27terV29,
            (false, true, _) => DisModems::V29,
            (true, false, _) => DisModems::V27ter,
            _ => DisModems::V27terFallback,
        }
    }
}

/// Scan line width (T.30 bits 17-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PageWidth {
    /// 215 mm, 1728 pels.
    A4,
    /// 255 mm, 2048 pels.
    B4,
    /// 303 mm, 2432 pels.
    A3,
}

impl PageWidth {
    /// Pels per line at 8 pels/mm.
    pub const fn pels(self) -> usize {
        match self {
            PageWidth::A4 => t4::WIDTH_A4,
            PageWidth::B4 => t4::WIDTH_B4,
            PageWidth::A3 => t4::WIDTH_A3,
        }
    }

    /// The width for a line of `pels`, if it is a standard one.
    pub fn from_pels(pels: usize) -> Option<Self> {
        [PageWidth::A4, PageWidth::B4, PageWidth::A3].into_iter().find(|w| w.pels() == pels)
    }
}

/// Recording length (T.30 bits 19-20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageLength {
    /// A4, 297 mm.
    A4,
    /// B4, 364 mm (in DIS: A4 and B4).
    B4,
    /// Unlimited.
    Unlimited,
}

/// Minimum scan line time capability in DIS/DTC (bits 21-23), at 3.85 lines/mm; the `Half`
/// variants allow half that time at 7.7 lines/mm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanTime {
    /// 000: 20 ms.
    Ms20,
    /// 001: 40 ms.
    Ms40,
    /// 010: 10 ms.
    Ms10,
    /// 100: 5 ms.
    Ms5,
    /// 011: 10 ms, 5 ms at fine resolution.
    Ms10Half,
    /// 110: 20 ms, 10 ms at fine resolution.
    Ms20Half,
    /// 101: 40 ms, 20 ms at fine resolution.
    Ms40Half,
    /// 111: 0 ms.
    Ms0,
}

impl ScanTime {
    /// (b21, b22, b23) as bits 0, 1, 2.
    fn bits(self) -> u8 {
        match self {
            ScanTime::Ms20 => 0b000,
            ScanTime::Ms40 => 0b100,
            ScanTime::Ms10 => 0b010,
            ScanTime::Ms5 => 0b001,
            ScanTime::Ms10Half => 0b110,
            ScanTime::Ms20Half => 0b011,
            ScanTime::Ms40Half => 0b101,
            ScanTime::Ms0 => 0b111,
        }
    }

    fn from_bits(b: u8) -> Self {
        match b & 7 {
            0b000 => ScanTime::Ms20,
            0b100 => ScanTime::Ms40,
            0b010 => ScanTime::Ms10,
            0b001 => ScanTime::Ms5,
            0b110 => ScanTime::Ms10Half,
            0b011 => ScanTime::Ms20Half,
            0b101 => ScanTime::Ms40Half,
            _ => ScanTime::Ms0,
        }
    }

    /// Minimum scan line time in ms at standard (`fine == false`) or fine resolution.
    pub fn ms(self, fine: bool) -> u32 {
        let (std, halves) = match self {
            ScanTime::Ms20 => (20, false),
            ScanTime::Ms40 => (40, false),
            ScanTime::Ms10 => (10, false),
            ScanTime::Ms5 => (5, false),
            ScanTime::Ms10Half => (10, true),
            ScanTime::Ms20Half => (20, true),
            ScanTime::Ms40Half => (40, true),
            ScanTime::Ms0 => (0, false),
        };
        if fine && halves {
            std / 2
        } else {
            std
        }
    }

    /// The DCS code (bits 21-23 as bits 0..2) for a time in ms (0, 5, 10, 20 or 40; others
    /// round up to the next of these).
    fn dcs_bits_for_ms(ms: u32) -> u8 {
        match ms {
            0 => ScanTime::Ms0.bits(),
            1..=5 => ScanTime::Ms5.bits(),
            6..=10 => ScanTime::Ms10.bits(),
            11..=20 => ScanTime::Ms20.bits(),
            _ => ScanTime::Ms40.bits(),
        }
    }

    fn dcs_ms_from_bits(b: u8) -> u32 {
        match b & 7 {
            0b000 => 20,
            0b100 => 40,
            0b010 => 10,
            0b001 => 5,
            0b111 => 0,
            // Not valid in DCS; take the DIS meaning at standard resolution.
            other => ScanTime::from_bits(other).ms(false),
        }
    }
}

/// Error parsing a DIS/DTC/DCS information field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FifError {
    /// Fewer than the 3 mandatory octets (bits 1 to 24).
    #[error("DIS/DCS information field of {0} octets, at least 3 needed")]
    TooShort(usize),
    /// DCS bits 11 to 14 hold a reserved value.
    #[error("DCS data signalling rate bits 0x{0:x} are reserved")]
    BadRate(u8),
    /// Bits 17-18 (or 19-20) both set: invalid.
    #[error("invalid {0} field")]
    Invalid(&'static str),
}

/// Reads bit `n` (1-based, T.30 numbering) of an information field.
fn bit(fif: &[u8], n: usize) -> bool {
    let i = (n - 1) / 8;
    i < fif.len() && fif[i] & (1 << ((n - 1) % 8)) != 0
}

/// Sets bit `n` (1-based) of an information field, growing it (and setting the extension
/// bits 24, 32, 40... of the octets before) as needed.
fn set_bit(fif: &mut Vec<u8>, n: usize) {
    let i = (n - 1) / 8;
    while fif.len() <= i {
        if fif.len() >= 3 {
            let last = fif.len() - 1;
            fif[last] |= 0x80; // extension bit
        }
        fif.push(0);
    }
    fif[i] |= 1 << ((n - 1) % 8);
}

fn put_field(fif: &mut Vec<u8>, first_bit: usize, width: usize, value: u8) {
    for k in 0..width {
        if value & (1 << k) != 0 {
            set_bit(fif, first_bit + k);
        }
    }
}

fn get_field(fif: &[u8], first_bit: usize, width: usize) -> u8 {
    (0..width).fold(0, |acc, k| acc | (u8::from(bit(fif, first_bit + k)) << k))
}

/// The octets of an information field that count: up to the first octet (from the third)
/// whose extension bit is clear.
fn valid_part(fif: &[u8]) -> &[u8] {
    let mut n = fif.len().min(3);
    while n < fif.len() && fif[n - 1] & 0x80 != 0 {
        n += 1;
    }
    &fif[..n]
}

/// DIS or DTC information field: a terminal's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dis {
    /// Bit 9: a document is ready to be polled.
    pub ready_to_transmit: bool,
    /// Bit 10: the terminal can receive.
    pub can_receive: bool,
    /// Bits 11-14.
    pub modems: DisModems,
    /// Bit 15: 7.7 lines/mm (fine).
    pub fine: bool,
    /// Bit 16: two-dimensional coding (MR).
    pub mr: bool,
    /// Bits 17-18: widest scan line.
    pub max_width: PageWidth,
    /// Bits 19-20: longest page.
    pub max_length: PageLength,
    /// Bits 21-23.
    pub min_scan: ScanTime,
    /// Bit 26: uncompressed mode.
    pub uncompressed: bool,
    /// Bit 27: error correction mode.
    pub ecm: bool,
    /// Bit 31: T.6 coding.
    pub t6: bool,
    /// Bit 41: 15.4 lines/mm (superfine).
    pub superfine: bool,
}

impl Dis {
    /// Parses a DIS/DTC information field (octets after the FCF).
    ///
    /// # Errors
    /// [`FifError::TooShort`] below 3 octets. Invalid width/length codes are read as the
    /// smallest size rather than rejected.
    pub fn parse(fif: &[u8]) -> Result<Dis, FifError> {
        if fif.len() < 3 {
            return Err(FifError::TooShort(fif.len()));
        }
        let f = valid_part(fif);
        Ok(Dis {
            ready_to_transmit: bit(f, 9),
            can_receive: bit(f, 10),
            modems: DisModems::from_bits(get_field(f, 11, 4)),
            fine: bit(f, 15),
            mr: bit(f, 16),
            max_width: match (bit(f, 17), bit(f, 18)) {
                (false, true) => PageWidth::A3,
                (true, false) => PageWidth::B4,
                _ => PageWidth::A4,
            },
            max_length: match (bit(f, 19), bit(f, 20)) {
                (false, true) => PageLength::Unlimited,
                (true, false) => PageLength::B4,
                _ => PageLength::A4,
            },
            min_scan: ScanTime::from_bits(get_field(f, 21, 3)),
            uncompressed: bit(f, 26),
            ecm: bit(f, 27),
            t6: bit(f, 31),
            superfine: bit(f, 41),
        })
    }

    /// The information field, as short as the set bits allow (at least 3 octets).
    pub fn emit(&self) -> Vec<u8> {
        let mut f = vec![0u8; 3];
        if self.ready_to_transmit {
            set_bit(&mut f, 9);
        }
        if self.can_receive {
            set_bit(&mut f, 10);
        }
        put_field(&mut f, 11, 4, self.modems.bits());
        if self.fine {
            set_bit(&mut f, 15);
        }
        if self.mr {
            set_bit(&mut f, 16);
        }
        match self.max_width {
            PageWidth::A4 => {}
            PageWidth::B4 => set_bit(&mut f, 17),
            PageWidth::A3 => set_bit(&mut f, 18),
        }
        match self.max_length {
            PageLength::A4 => {}
            PageLength::B4 => set_bit(&mut f, 19),
            PageLength::Unlimited => set_bit(&mut f, 20),
        }
        put_field(&mut f, 21, 3, self.min_scan.bits());
        if self.uncompressed {
            set_bit(&mut f, 26);
        }
        if self.ecm {
            set_bit(&mut f, 27);
        }
        if self.t6 {
            set_bit(&mut f, 31);
        }
        if self.superfine {
            set_bit(&mut f, 41);
        }
        f
    }
}

/// DCS information field: the settings the sender chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dcs {
    /// Bit 10: receiver, set yourself to receive (always set by a sender).
    pub receive: bool,
    /// Bits 11-14.
    pub rate: FaxRate,
    /// Bit 15: fine resolution.
    pub fine: bool,
    /// Bit 16: MR coding (else MH).
    pub coding: Coding,
    /// Bits 17-18.
    pub width: PageWidth,
    /// Bits 19-20.
    pub length: PageLength,
    /// Bits 21-23: minimum scan line time in ms (0, 5, 10, 20 or 40).
    pub min_scan_ms: u32,
    /// Bit 27: error correction mode.
    pub ecm: bool,
    /// Bit 28: 64-octet ECM frames (else 256).
    pub frame_64: bool,
    /// Bit 31: T.6 (MMR) coding (ECM only; `coding` is then ignored).
    pub t6: bool,
}

impl Dcs {
    /// Parses a DCS information field.
    ///
    /// # Errors
    /// [`FifError`] for a short field, a reserved rate or an invalid width/length.
    pub fn parse(fif: &[u8]) -> Result<Dcs, FifError> {
        if fif.len() < 3 {
            return Err(FifError::TooShort(fif.len()));
        }
        let f = valid_part(fif);
        let rb = get_field(f, 11, 4);
        Ok(Dcs {
            receive: bit(f, 10),
            rate: FaxRate::from_dcs_bits(rb).ok_or(FifError::BadRate(rb))?,
            fine: bit(f, 15),
            coding: if bit(f, 16) { Coding::Mr } else { Coding::Mh },
            width: match (bit(f, 17), bit(f, 18)) {
                (false, false) => PageWidth::A4,
                (true, false) => PageWidth::B4,
                (false, true) => PageWidth::A3,
                (true, true) => return Err(FifError::Invalid("recording width")),
            },
            length: match (bit(f, 19), bit(f, 20)) {
                (false, false) => PageLength::A4,
                (true, false) => PageLength::B4,
                (false, true) => PageLength::Unlimited,
                (true, true) => return Err(FifError::Invalid("recording length")),
            },
            min_scan_ms: ScanTime::dcs_ms_from_bits(get_field(f, 21, 3)),
            ecm: bit(f, 27),
            frame_64: bit(f, 28),
            t6: bit(f, 31),
        })
    }

    /// The information field (3 octets unless ECM is set).
    pub fn emit(&self) -> Vec<u8> {
        let mut f = vec![0u8; 3];
        if self.receive {
            set_bit(&mut f, 10);
        }
        put_field(&mut f, 11, 4, self.rate.dcs_bits());
        if self.fine {
            set_bit(&mut f, 15);
        }
        if self.coding == Coding::Mr {
            set_bit(&mut f, 16);
        }
        match self.width {
            PageWidth::A4 => {}
            PageWidth::B4 => set_bit(&mut f, 17),
            PageWidth::A3 => set_bit(&mut f, 18),
        }
        match self.length {
            PageLength::A4 => {}
            PageLength::B4 => set_bit(&mut f, 19),
            PageLength::Unlimited => set_bit(&mut f, 20),
        }
        put_field(&mut f, 21, 3, ScanTime::dcs_bits_for_ms(self.min_scan_ms));
        if self.ecm {
            set_bit(&mut f, 27);
        }
        if self.frame_64 {
            set_bit(&mut f, 28);
        }
        if self.t6 {
            set_bit(&mut f, 31);
        }
        f
    }
}

/// Longest run of zero bits in TCF data, fed byte by byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcfCheck {
    run: u32,
    longest: u32,
    bits: u32,
}

impl TcfCheck {
    /// Feeds received bytes (bit order does not matter for zero runs within bytes; runs
    /// across bytes are counted LSB first).
    pub fn push(&mut self, data: &[u8]) {
        for &b in data {
            if b == 0 {
                self.run += 8;
            } else {
                for i in 0..8 {
                    if b & (1 << i) == 0 {
                        self.run += 1;
                    } else {
                        self.longest = self.longest.max(self.run);
                        self.run = 0;
                    }
                }
            }
            self.bits += 8;
        }
        self.longest = self.longest.max(self.run);
    }

    /// Longest zero run in bits.
    pub fn longest_zero_run(&self) -> u32 {
        self.longest
    }

    /// Bits received.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The T.30 training verdict: at least one second of zeros at `rate`.
    pub fn passed(&self, rate: FaxRate) -> bool {
        self.longest >= rate.bps()
    }
}

/// Which end of the call this terminal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The terminal that dialled (sends CNG, receives DIS).
    Calling,
    /// The terminal that answered (sends CED and DIS).
    Called,
}

/// T.30 timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// T1 (35 s): the two terminals must identify each other within it; on expiry the call
    /// fails with [`FaxStatus::NoAnswer`] or [`FaxStatus::T1Expired`].
    T1,
    /// T2 (6 s): a receiver waiting for a command, TCF or page; on expiry it disconnects
    /// ([`FaxStatus::T2Expired`]), except after EOP/MCF, where the call has succeeded.
    T2,
    /// T4 (3 s): a command waiting for its response; on expiry the command is repeated, up
    /// to 3 times, then [`FaxStatus::NoResponse`] (a called terminal repeats DIS until T1).
    T4,
    /// T5 (60 s, ECM): a sender polling a busy receiver (RNR) with RR gives up after it
    /// ([`FaxStatus::T5Expired`]).
    T5,
}

/// Timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1, 35 s.
    pub t1: Duration,
    /// T2, 6 s.
    pub t2: Duration,
    /// T4, 3 s.
    pub t4: Duration,
    /// T5, 60 s.
    pub t5: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_secs(35),
            t2: Duration::from_secs(6),
            t4: Duration::from_secs(3),
            t5: Duration::from_secs(60),
        }
    }
}

/// Times a command is repeated after T4 expires before giving up.
pub const MAX_REPEATS: u32 = 3;

/// Local settings.
#[derive(Debug, Clone, PartialEq)]
pub struct T30Config {
    /// Our number for CSI/TSI/CIG (up to 20 characters).
    pub ident: String,
    /// Image modem rates the local modem offers.
    pub rates: Vec<FaxRate>,
    /// Receive fine resolution.
    pub fine: bool,
    /// Use/accept MR coding.
    pub mr: bool,
    /// Widest page we accept.
    pub max_width: PageWidth,
    /// Longest page we accept.
    pub max_length: PageLength,
    /// Minimum scan line time we ask senders for (a software receiver needs none).
    pub min_scan: ScanTime,
    /// Percentage of bad rows above which a received page is answered RTN.
    pub max_bad_row_percent: u32,
    /// Times a page answered RTN is sent again before giving up.
    pub max_page_retries: u32,
    /// Timer values.
    pub timers: Timers,
    /// Offer (receiver) and use (sender) error correction mode.
    pub ecm: bool,
    /// With ECM, offer and use T.6 (MMR) coding.
    pub t6: bool,
    /// With ECM, send 64-octet frames instead of 256.
    pub ecm_small_frames: bool,
}

impl Default for T30Config {
    fn default() -> Self {
        T30Config {
            ident: String::new(),
            rates: vec![
                FaxRate::V29_9600,
                FaxRate::V29_7200,
                FaxRate::V27ter4800,
                FaxRate::V27ter2400,
            ],
            fine: true,
            mr: true,
            max_width: PageWidth::A4,
            max_length: PageLength::Unlimited,
            min_scan: ScanTime::Ms0,
            max_bad_row_percent: 10,
            max_page_retries: 2,
            timers: Timers::default(),
            ecm: false,
            t6: true,
            ecm_small_frames: false,
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaxStatus {
    /// All pages sent and confirmed, or all pages received and the sender said EOP.
    Success,
    /// T1 expired without any T.30 frame from the far end.
    NoAnswer,
    /// T1 expired: frames were heard but phase B never completed.
    T1Expired,
    /// T2 expired while waiting for a command, TCF or page.
    T2Expired,
    /// A command was sent and repeated 3 times without a response.
    NoResponse,
    /// FTT at the lowest rate both ends support.
    TrainingFailed,
    /// A page was answered RTN more often than allowed.
    PageRejected,
    /// The far end sent DCN before the procedure ended.
    RemoteDisconnected,
    /// No common image modem, the far end cannot receive, or a page is wider than it accepts.
    Incompatible,
    /// We called to poll, but the far end has no document (DIS bit 9 clear).
    PollingRefused,
    /// A frame that makes no sense here (e.g. DCS while we are sending, PIN, bad DCS).
    ProtocolError,
    /// Stopped locally with [`T30::abort`].
    LocalAbort,
    /// ECM: the receiver stayed not ready (RNR) until T5 expired.
    T5Expired,
}

/// What the engine wants transmitted. After each one except [`T30Tx::Cng`] the caller reports
/// the end of transmission with [`T30::handle_tx_done`]. Leave about 75 ms of silence before
/// each one (T.30 §5.3.2.4); [`super::session::FaxSession`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T30Tx {
    /// Calling tone, 1100 Hz 0.5 s on / 3 s off, until the next request (no `handle_tx_done`).
    Cng,
    /// Answer tone, 2100 Hz for `ms` milliseconds.
    Ced {
        /// Duration.
        ms: u32,
    },
    /// HDLC frames on V.21 channel 2 after a 1 s flag preamble (FCS added by the framer).
    Frames(Vec<Vec<u8>>),
    /// Training check: zeros for `ms` at `rate`.
    Tcf {
        /// Modem and rate.
        rate: FaxRate,
        /// Duration of the zeros.
        ms: u32,
    },
    /// A page of T.4 data (LSB first: the first bit in the least significant bit), RTC
    /// included; in ECM, one block burst: the HDLC bit stream of flags, FCD and RCP frames
    /// (see [`ecm::block_stream`]), packed the same way.
    Image {
        /// Modem and rate.
        rate: FaxRate,
        /// Coded page.
        data: Vec<u8>,
    },
}

/// What the engine wants to listen for. V.21 is always listened to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// V.21 only.
    V21,
    /// V.21 and the image modem at this rate (TCF or page data).
    Image(FaxRate),
}

/// Something the user of the engine may want to know.
#[derive(Debug, Clone, PartialEq)]
pub enum T30Event {
    /// A frame was sent (its FCF, X bit included).
    FrameSent(u8),
    /// A frame was received (its FCF as received).
    FrameReceived(u8),
    /// The far end's CSI, TSI or CIG.
    RemoteIdent(String),
    /// The far end's DIS or DTC.
    RemoteCapabilities(Dis),
    /// The DCS sent or received.
    Negotiated(Dcs),
    /// TCF result: training at `rate` was good (CFR) or not (FTT).
    Training {
        /// The rate trained at.
        rate: FaxRate,
        /// CFR (true) or FTT.
        ok: bool,
    },
    /// A page was sent and answered; `accepted` is false for RTN.
    PageSent {
        /// Index into the document (0-based).
        index: usize,
        /// MCF/RTP (true) or RTN.
        accepted: bool,
    },
    /// A page was received and confirmed with MCF.
    PageReceived(FaxPage),
    /// The call is over.
    Finished(FaxStatus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Ced,
    /// Waiting for DIS (or DTC when we are the called sender).
    WaitDis,
    /// Our DIS/DTC is going out (after which we wait for a DCS or a DTC).
    SendingDis,
    SendingDcs,
    SendingTcf,
    WaitCfr,
    SendingImage,
    SendingPostPage,
    WaitPostPageResp,
    /// Receiver: waiting for DCS (after DIS/DTC, FTT or RTN).
    WaitDcs,
    ReceivingTcf,
    SendingCfr,
    SendingFtt,
    WaitImage,
    ReceivingImage,
    WaitPostPageCmd,
    SendingResponse,
    WaitDcn,
    SendingCrp,
    SendingDcn,
    /// ECM sender: a block burst, then PPS and its response, RR, CTC, EOR.
    SendingEcmBlock,
    SendingPps,
    WaitPpsResp,
    SendingRr,
    WaitRrResp,
    SendingCtc,
    WaitCtr,
    SendingEor,
    WaitErr,
    /// ECM receiver: a block burst is arriving.
    ReceivingEcm,
    Done,
}

/// The T.30 engine for one call.
#[derive(Debug)]
pub struct T30 {
    role: Role,
    cfg: T30Config,
    pages: Vec<FaxPage>,
    sending: bool,
    state: State,
    crp_resume: State,
    t1: Option<Duration>,
    timer: Option<(Timer, Duration)>,
    repeats: u32,
    last_cmd: Vec<Vec<u8>>,
    heard_remote: bool,
    remote: Option<Dis>,
    dcs: Option<Dcs>,
    rate: FaxRate,
    page_idx: usize,
    page_retries: u32,
    post_cmd: u8,
    // Receiver side.
    tcf: TcfCheck,
    decoder: Option<T4Decoder>,
    last_rx_cmd: Option<u8>,
    last_response: Option<Vec<u8>>,
    after_response: State,
    end_of_procedure: bool,
    tx: VecDeque<T30Tx>,
    events: VecDeque<T30Event>,
    rx_mode: RxMode,
    status: Option<FaxStatus>,
    pending_status: Option<FaxStatus>,
    // ECM.
    ecm_tx: Option<ecm::EcmTxPage>,
    ecm_rx: Option<ecm::EcmRx>,
    t5: Option<Duration>,
    ctc_rate: Option<FaxRate>,
    receiver_busy: bool,
    last_ecm_pps: Option<ecm::Pps>,
}

impl T30 {
    /// An engine that sends `pages` (sending) or receives (empty `pages`) as `role`.
    /// A calling terminal with no pages polls; a called terminal with pages offers them for
    /// polling and sends them when the caller asks with DTC.
    pub fn new(role: Role, pages: Vec<FaxPage>, cfg: T30Config) -> Self {
        let sending = !pages.is_empty();
        let rate =
            cfg.rates.iter().copied().max_by_key(|r| rank(*r)).unwrap_or(FaxRate::V27ter2400);
        T30 {
            role,
            cfg,
            pages,
            sending,
            state: State::Idle,
            crp_resume: State::Idle,
            t1: None,
            timer: None,
            repeats: 0,
            last_cmd: Vec::new(),
            heard_remote: false,
            remote: None,
            dcs: None,
            rate,
            page_idx: 0,
            page_retries: 0,
            post_cmd: 0,
            tcf: TcfCheck::default(),
            decoder: None,
            last_rx_cmd: None,
            last_response: None,
            after_response: State::Idle,
            end_of_procedure: false,
            tx: VecDeque::new(),
            events: VecDeque::new(),
            rx_mode: RxMode::V21,
            status: None,
            pending_status: None,
            ecm_tx: None,
            ecm_rx: None,
            t5: None,
            ctc_rate: None,
            receiver_busy: false,
            last_ecm_pps: None,
        }
    }

    /// Starts phase A at `now`.
    pub fn start(&mut self, now: Duration) {
        if self.state != State::Idle {
            return;
        }
        self.t1 = Some(now + self.cfg.timers.t1);
        match self.role {
            Role::Calling => {
                self.tx.push_back(T30Tx::Cng);
                self.state = State::WaitDis;
            }
            Role::Called => {
                self.tx.push_back(T30Tx::Ced { ms: CED_MS });
                self.state = State::Ced;
            }
        }
    }

    /// Stops the call: sends DCN and finishes with [`FaxStatus::LocalAbort`].
    pub fn abort(&mut self, now: Duration) {
        if self.status.is_none() && self.pending_status.is_none() {
            self.disconnect(now, FaxStatus::LocalAbort);
        }
    }

    /// The next transmission request.
    pub fn poll_transmit(&mut self) -> Option<T30Tx> {
        self.tx.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<T30Event> {
        self.events.pop_front()
    }

    /// What to listen for now.
    pub fn rx_mode(&self) -> RxMode {
        self.rx_mode
    }

    /// The final status once finished.
    pub fn status(&self) -> Option<FaxStatus> {
        self.status
    }

    /// Whether the call is over.
    pub fn is_finished(&self) -> bool {
        self.status.is_some()
    }

    /// The DCS in force, if any.
    pub fn dcs(&self) -> Option<Dcs> {
        self.dcs
    }

    /// The earliest running timer deadline.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.status.is_some() {
            return None;
        }
        [self.t1, self.timer.map(|(_, t)| t), self.t5].into_iter().flatten().min()
    }

    /// ECM receiver flow control: while busy, PPS and RR are answered RNR (the sender polls
    /// with RR for up to T5); once ready again the pending PPS is answered MCF or PPR.
    pub fn set_receiver_busy(&mut self, busy: bool) {
        self.receiver_busy = busy;
    }

    fn start_timer(&mut self, t: Timer, now: Duration) {
        let d = match t {
            Timer::T1 => self.cfg.timers.t1,
            Timer::T2 => self.cfg.timers.t2,
            Timer::T4 => self.cfg.timers.t4,
            Timer::T5 => self.cfg.timers.t5,
        };
        self.timer = Some((t, now + d));
    }

    fn x(&self) -> u8 {
        u8::from(self.role == Role::Calling)
    }

    fn send_frames(&mut self, frames: Vec<Vec<u8>>) {
        for f in &frames {
            self.events.push_back(T30Event::FrameSent(f[2]));
        }
        self.tx.push_back(T30Tx::Frames(frames));
    }

    fn send_one(&mut self, fcf_code: u8) {
        let x = self.x();
        self.send_frames(vec![frame(fcf_code | x, &[], true)]);
    }

    fn finish(&mut self, status: FaxStatus) {
        if self.status.is_none() {
            self.status = Some(status);
            self.state = State::Done;
            self.timer = None;
            self.t1 = None;
            self.rx_mode = RxMode::V21;
            self.tx.clear();
            self.events.push_back(T30Event::Finished(status));
        }
    }

    /// Sends DCN, then finishes with `status` when it has gone out.
    fn disconnect(&mut self, _now: Duration, status: FaxStatus) {
        self.tx.clear();
        self.timer = None;
        self.t1 = None;
        self.t5 = None;
        self.rx_mode = RxMode::V21;
        self.pending_status = Some(status);
        self.state = State::SendingDcn;
        self.send_one(fcf::DCN);
    }

    // ---- transmitter side -------------------------------------------------------------

    fn local_dis(&self, dtc: bool) -> Dis {
        Dis {
            ready_to_transmit: !dtc && self.sending,
            can_receive: !self.sending,
            modems: DisModems::for_rates(&self.cfg.rates),
            fine: self.cfg.fine,
            mr: self.cfg.mr,
            max_width: self.cfg.max_width,
            max_length: self.cfg.max_length,
            min_scan: self.cfg.min_scan,
            uncompressed: false,
            ecm: self.cfg.ecm,
            t6: self.cfg.ecm && self.cfg.t6,
            superfine: false,
        }
    }

    fn send_dis(&mut self, now: Duration) {
        let ident = encode_ident(&self.cfg.ident);
        let frames = if self.role == Role::Called {
            vec![
                frame(fcf::CSI, &ident, false),
                frame(fcf::DIS, &self.local_dis(false).emit(), true),
            ]
        } else {
            vec![
                frame(fcf::CIG, &ident, false),
                frame(fcf::DTC, &self.local_dis(true).emit(), true),
            ]
        };
        self.last_cmd = frames.clone();
        self.send_frames(frames);
        self.state = State::SendingDis;
        self.timer = None;
        let _ = now;
    }

    fn common_rates(&self) -> Vec<FaxRate> {
        let remote = self.remote.map(|d| d.modems).unwrap_or(DisModems::V27terFallback);
        FaxRate::FALLBACK
            .into_iter()
            .filter(|r| self.cfg.rates.contains(r) && remote.supports(*r))
            .collect()
    }

    /// DCS for the current page at the current rate.
    fn make_dcs(&self) -> Result<Dcs, FaxStatus> {
        let remote = self.remote.ok_or(FaxStatus::ProtocolError)?;
        let page = &self.pages[self.page_idx];
        let width = PageWidth::from_pels(page.bitmap.width).ok_or(FaxStatus::Incompatible)?;
        if width > remote.max_width {
            return Err(FaxStatus::Incompatible);
        }
        let fine = page_is_fine(page) && remote.fine;
        let coding = if self.cfg.mr && remote.mr { Coding::Mr } else { Coding::Mh };
        let length = remote.max_length;
        let ecm = self.cfg.ecm && remote.ecm;
        let t6 = ecm && self.cfg.t6 && remote.t6;
        Ok(Dcs {
            receive: true,
            rate: self.rate,
            fine,
            coding: if t6 { Coding::Mh } else { coding },
            width,
            length,
            // ECM pages carry no fill.
            min_scan_ms: if ecm { 0 } else { remote.min_scan.ms(fine) },
            ecm,
            frame_64: ecm && self.cfg.ecm_small_frames,
            t6,
        })
    }

    fn send_dcs(&mut self, now: Duration) {
        let dcs = match self.make_dcs() {
            Ok(d) => d,
            Err(s) => return self.disconnect(now, s),
        };
        self.dcs = Some(dcs);
        self.events.push_back(T30Event::Negotiated(dcs));
        let x = self.x();
        let frames = vec![
            frame(fcf::TSI | x, &encode_ident(&self.cfg.ident), false),
            frame(fcf::DCS | x, &dcs.emit(), true),
        ];
        self.last_cmd = frames.clone();
        self.send_frames(frames);
        self.state = State::SendingDcs;
        self.timer = None;
    }

    fn on_remote_dis(&mut self, now: Duration, dis: Dis, is_dtc: bool) {
        self.events.push_back(T30Event::RemoteCapabilities(dis));
        self.remote = Some(dis);
        if self.sending {
            if !is_dtc && !dis.can_receive {
                return self.disconnect(now, FaxStatus::Incompatible);
            }
            let common = self.common_rates();
            let Some(&top) = common.first() else {
                return self.disconnect(now, FaxStatus::Incompatible);
            };
            // Keep a fall-back already learnt (after EOM) if it is still common.
            if !common.contains(&self.rate) || rank(self.rate) > rank(top) {
                self.rate = top;
            }
            self.repeats = 0;
            self.t1 = None;
            self.send_dcs(now);
        } else {
            // We called to receive: poll.
            if !dis.ready_to_transmit {
                return self.disconnect(now, FaxStatus::PollingRefused);
            }
            self.repeats = 0;
            self.send_dis(now);
        }
    }

    fn encode_current_page(&self) -> Vec<u8> {
        let dcs = self.dcs.expect("DCS is set before a page is sent");
        let page = &self.pages[self.page_idx];
        let bitmap = if page_is_fine(page) && !dcs.fine {
            drop_alternate_rows(&page.bitmap)
        } else {
            page.bitmap.clone()
        };
        let opts = EncodeOptions {
            coding: dcs.coding,
            k: if dcs.fine { 4 } else { 2 },
            min_row_bits: t4::min_row_bits(dcs.rate.bps(), dcs.min_scan_ms),
            byte_align_eol: false,
            rtc: true,
        };
        t4::reverse_bit_order(&t4::encode_page_with(&bitmap, &opts))
    }

    fn send_page(&mut self) {
        let data = self.encode_current_page();
        let rate = self.dcs.map(|d| d.rate).unwrap_or(self.rate);
        self.tx.push_back(T30Tx::Image { rate, data });
        self.state = State::SendingImage;
        self.timer = None;
    }

    /// The post-page command for the current page.
    fn post_page_command(&self) -> u8 {
        if self.page_idx + 1 >= self.pages.len() {
            return fcf::EOP;
        }
        let cur = &self.pages[self.page_idx];
        let next = &self.pages[self.page_idx + 1];
        if cur.bitmap.width != next.bitmap.width || page_is_fine(cur) != page_is_fine(next) {
            fcf::EOM
        } else {
            fcf::MPS
        }
    }

    fn send_post_page(&mut self) {
        self.post_cmd = self.post_page_command();
        let x = self.x();
        let frames = vec![frame(self.post_cmd | x, &[], true)];
        self.last_cmd = frames.clone();
        self.send_frames(frames);
        self.state = State::SendingPostPage;
    }

    fn repeat_last_command(&mut self) {
        let frames = self.last_cmd.clone();
        self.send_frames(frames);
        self.state = match self.state {
            State::WaitCfr => State::SendingDcs,
            State::WaitPostPageResp => State::SendingPostPage,
            _ => self.ecm_resend_state().unwrap_or(State::SendingDis),
        };
        self.timer = None;
    }

    fn next_after_accepted_page(&mut self, now: Duration, retrain: bool) {
        self.events.push_back(T30Event::PageSent { index: self.page_idx, accepted: true });
        self.page_idx += 1;
        self.page_retries = 0;
        match self.post_cmd {
            fcf::EOP => self.disconnect(now, FaxStatus::Success),
            fcf::EOM => {
                self.state = State::WaitDis;
                self.timer = None;
                self.t1 = Some(now + self.cfg.timers.t1);
            }
            _ if retrain => {
                self.repeats = 0;
                self.send_dcs(now);
            }
            _ if self.dcs.is_some_and(|d| d.ecm) => self.start_ecm_page(),
            _ => self.send_page(),
        }
    }

    fn on_post_page_response(&mut self, now: Duration, code: u8) {
        match code {
            fcf::MCF => self.next_after_accepted_page(now, false),
            fcf::RTP => self.next_after_accepted_page(now, true),
            fcf::RTN => {
                self.events.push_back(T30Event::PageSent { index: self.page_idx, accepted: false });
                self.page_retries += 1;
                if self.page_retries > self.cfg.max_page_retries {
                    return self.disconnect(now, FaxStatus::PageRejected);
                }
                self.repeats = 0;
                self.send_dcs(now);
            }
            fcf::PIP | fcf::PIN => self.disconnect(now, FaxStatus::ProtocolError),
            _ => {}
        }
    }

    fn on_training_response(&mut self, now: Duration, code: u8) {
        match code {
            fcf::CFR => {
                self.events.push_back(T30Event::Training { rate: self.rate, ok: true });
                if self.dcs.is_some_and(|d| d.ecm) {
                    self.start_ecm_page();
                } else {
                    self.send_page();
                }
            }
            fcf::FTT => {
                self.events.push_back(T30Event::Training { rate: self.rate, ok: false });
                let lower = self.common_rates().into_iter().find(|r| rank(*r) < rank(self.rate));
                match lower {
                    Some(r) => {
                        self.rate = r;
                        self.repeats = 0;
                        self.send_dcs(now);
                    }
                    None => self.disconnect(now, FaxStatus::TrainingFailed),
                }
            }
            _ => {}
        }
    }

    // ---- receiver side ----------------------------------------------------------------

    fn on_dcs(&mut self, now: Duration, fif: &[u8]) {
        let dcs = match Dcs::parse(fif) {
            Ok(d) => d,
            Err(_) => return self.disconnect(now, FaxStatus::ProtocolError),
        };
        if !self.cfg.rates.contains(&dcs.rate) || dcs.width > self.cfg.max_width {
            // Answer FTT so the sender falls back (a rate we do not have) or gives up.
            self.events.push_back(T30Event::Negotiated(dcs));
            self.dcs = Some(dcs);
            self.events.push_back(T30Event::Training { rate: dcs.rate, ok: false });
            self.state = State::SendingFtt;
            self.send_one(fcf::FTT);
            return;
        }
        self.events.push_back(T30Event::Negotiated(dcs));
        self.dcs = Some(dcs);
        self.t1 = None;
        self.tcf = TcfCheck::default();
        self.rx_mode = RxMode::Image(dcs.rate);
        self.state = State::ReceivingTcf;
        self.start_timer(Timer::T2, now);
        self.decoder = None;
        self.last_rx_cmd = None;
    }

    fn finish_tcf(&mut self, _now: Duration) {
        let dcs = self.dcs.expect("DCS precedes TCF");
        let ok = self.tcf.passed(dcs.rate);
        self.events.push_back(T30Event::Training { rate: dcs.rate, ok });
        self.timer = None;
        self.rx_mode = RxMode::V21;
        if ok {
            self.state = State::SendingCfr;
            self.send_one(fcf::CFR);
        } else {
            self.state = State::SendingFtt;
            self.send_one(fcf::FTT);
        }
    }

    fn new_decoder(&self) -> Option<T4Decoder> {
        let dcs = self.dcs?;
        T4Decoder::new(dcs.width.pels(), dcs.coding, BitOrder::LsbFirst).ok()
    }

    fn on_post_page_command(&mut self, now: Duration, code: u8) {
        let decoder = self.decoder.take();
        let response;
        match decoder {
            None => {
                // No page since our last response: the sender did not hear it.
                if self.last_rx_cmd == Some(code) {
                    if let Some(r) = self.last_response.clone() {
                        self.events.push_back(T30Event::FrameSent(r[2]));
                        self.tx.push_back(T30Tx::Frames(vec![r]));
                        self.state = State::SendingResponse;
                        self.timer = None;
                        return;
                    }
                }
                response = fcf::RTN;
            }
            Some(d) => {
                let dcs = self.dcs.expect("page implies DCS");
                response = match d.finish() {
                    Ok(p)
                        if p.bitmap.height > 0
                            && p.bad_rows * 100
                                <= p.bitmap.height * self.cfg.max_bad_row_percent as usize =>
                    {
                        let mut page = FaxPage::new(p.bitmap, dcs.fine);
                        page.bad_rows = p.bad_rows;
                        page.consecutive_bad_rows = p.max_consecutive_bad_rows;
                        page.coding = dcs.coding;
                        self.events.push_back(T30Event::PageReceived(page));
                        fcf::MCF
                    }
                    _ => fcf::RTN,
                };
            }
        }
        self.last_rx_cmd = Some(code);
        let x = self.x();
        let f = frame(response | x, &[], true);
        self.last_response = Some(f.clone());
        self.send_frames(vec![f]);
        self.state = State::SendingResponse;
        self.timer = None;
        self.rx_mode = RxMode::V21;
        self.after_response = match (code, response) {
            (_, fcf::RTN) => State::WaitDcs,
            (fcf::MPS, _) => State::WaitImage,
            (fcf::EOM, _) => State::SendingDis,
            _ => {
                self.end_of_procedure = true;
                State::WaitDcn
            }
        };
        let _ = now;
    }

    // ---- inputs -----------------------------------------------------------------------

    /// A frame with a good FCS arrived on V.21 (address, control, FCF, FIF; no FCS).
    pub fn handle_frame(&mut self, now: Duration, f: &[u8]) {
        if self.status.is_some() || f.len() < 3 || f[0] != ADDRESS || f[1] & 0xEF != CONTROL {
            return;
        }
        let raw = f[2];
        let fif = &f[3..];
        self.events.push_back(T30Event::FrameReceived(raw));
        self.heard_remote = true;
        // Initial identification frames are told apart by the X bit; others ignore it.
        match raw {
            fcf::CSI | fcf::CIG | fcf::TSI | 0x43 => {
                self.events.push_back(T30Event::RemoteIdent(decode_ident(fif)));
                return;
            }
            fcf::NSF | fcf::NSC | fcf::NSS | 0x23 => return,
            fcf::DIS | fcf::DTC => {
                let dtc = raw == fcf::DTC;
                let Ok(dis) = Dis::parse(fif) else {
                    return self.disconnect(now, FaxStatus::ProtocolError);
                };
                return self.on_dis_frame(now, dis, dtc);
            }
            _ => {}
        }
        let code = raw & 0xFE;
        if code == fcf::DCN {
            if self.state == State::WaitDcn || (self.end_of_procedure && !self.sending) {
                return self.finish(FaxStatus::Success);
            }
            return self.finish(FaxStatus::RemoteDisconnected);
        }
        if code == fcf::CRP {
            let waiting =
                matches!(self.state, State::WaitCfr | State::WaitPostPageResp | State::WaitDcs)
                    || self.ecm_wait_state();
            if waiting || (self.state == State::WaitDis && self.role == Role::Called) {
                self.repeat_last_command();
            }
            return;
        }
        match self.state {
            State::WaitCfr => match code {
                fcf::CFR | fcf::FTT => {
                    self.timer = None;
                    self.on_training_response(now, code);
                }
                _ => {}
            },
            State::WaitPostPageResp => {
                if matches!(code, fcf::MCF | fcf::RTP | fcf::RTN | fcf::PIP | fcf::PIN) {
                    self.timer = None;
                    self.on_post_page_response(now, code);
                }
            }
            _ if self.ecm_wait_state() => {
                let ecm_responses =
                    [fcf::MCF, fcf::PPR, fcf::RNR, fcf::CTR, fcf::ERR, fcf::PIP, fcf::PIN];
                if ecm_responses.contains(&code) {
                    self.timer = None;
                    self.on_ecm_response(now, code, fif);
                }
            }
            State::WaitImage | State::WaitPostPageCmd | State::WaitDcn | State::ReceivingEcm
                if matches!(code, fcf::PPS | fcf::RR | fcf::CTC | fcf::EOR)
                    && !self.sending
                    && self.dcs.is_some_and(|d| d.ecm) =>
            {
                self.on_ecm_command(now, code, fif)
            }
            State::WaitDcs | State::WaitImage | State::ReceivingTcf | State::SendingResponse
                if code == fcf::DCS && !self.sending =>
            {
                self.on_dcs(now, fif)
            }
            State::WaitImage | State::WaitPostPageCmd | State::WaitDcn | State::ReceivingImage
                if matches!(code, fcf::MPS | fcf::EOM | fcf::EOP) && !self.sending =>
            {
                if self.state == State::ReceivingImage {
                    self.rx_mode = RxMode::V21;
                }
                self.on_post_page_command(now, code)
            }
            _ if code == fcf::DCS && self.sending => self.disconnect(now, FaxStatus::ProtocolError),
            _ => {}
        }
    }

    fn on_dis_frame(&mut self, now: Duration, dis: Dis, dtc: bool) {
        match self.state {
            State::WaitDis => {
                // A caller waits for DIS; a called sender for DTC.
                let expected = if self.role == Role::Calling { !dtc } else { dtc };
                if expected {
                    self.timer = None;
                    self.on_remote_dis(now, dis, dtc);
                }
            }
            // The far end did not hear our DCS: it sent DIS again.
            State::WaitCfr if !dtc => {
                self.events.push_back(T30Event::RemoteCapabilities(dis));
                self.count_repeat(now);
            }
            _ => {}
        }
    }

    /// Repeats the last command if the repeat budget allows, else disconnects.
    fn count_repeat(&mut self, now: Duration) {
        if self.repeats >= MAX_REPEATS {
            return self.disconnect(now, FaxStatus::NoResponse);
        }
        self.repeats += 1;
        if self.state == State::WaitCfr {
            // DCS must be followed by TCF again.
            let frames = self.last_cmd.clone();
            self.send_frames(frames);
            self.state = State::SendingDcs;
            self.timer = None;
        } else {
            self.repeat_last_command();
        }
    }

    /// A frame with a bad FCS arrived. A receiver waiting for a command asks for it again
    /// with CRP; a sender waits for T4 and repeats.
    pub fn handle_bad_frame(&mut self, now: Duration) {
        if self.status.is_some() || self.sending {
            return;
        }
        if matches!(self.state, State::WaitPostPageCmd | State::WaitImage) {
            self.crp_resume = self.state;
            self.state = State::SendingCrp;
            self.timer = None;
            self.send_one(fcf::CRP);
        }
        let _ = now;
    }

    /// The V.21 carrier came up or dropped.
    pub fn handle_v21_carrier(&mut self, now: Duration, on: bool) {
        // A response in progress holds off T4 until the frames are in (T.30 §5.4.3.1 has
        // the response timer stop on flags; we simply restart T4 at the carrier's end).
        let waiting = matches!(self.state, State::WaitCfr | State::WaitPostPageResp);
        if !on && (waiting || self.ecm_wait_state()) {
            if let Some((Timer::T4, _)) = self.timer {
                self.start_timer(Timer::T4, now);
            }
        }
    }

    /// The image modem carrier came up or dropped.
    pub fn handle_image_carrier(&mut self, now: Duration, on: bool) {
        match (self.state, on) {
            (State::ReceivingTcf, false) if self.tcf.bits() > 0 => self.finish_tcf(now),
            (State::WaitImage, true) if self.dcs.is_some_and(|d| d.ecm) => self.start_ecm_burst(),
            (State::ReceivingEcm, false) => {
                self.state = State::WaitPostPageCmd;
                self.rx_mode = RxMode::V21;
                self.start_timer(Timer::T2, now);
            }
            (State::WaitImage, true) => {
                self.decoder = self.new_decoder();
                self.state = State::ReceivingImage;
                self.timer = None;
            }
            (State::ReceivingImage, false) => {
                self.state = State::WaitPostPageCmd;
                self.rx_mode = RxMode::V21;
                self.start_timer(Timer::T2, now);
            }
            _ => {}
        }
    }

    /// Bytes from the image modem (first bit in the least significant bit).
    pub fn handle_image_data(&mut self, _now: Duration, data: &[u8]) {
        match self.state {
            State::ReceivingTcf => self.tcf.push(data),
            State::ReceivingImage => {
                if let Some(d) = self.decoder.as_mut() {
                    d.push(data);
                }
            }
            State::ReceivingEcm => {
                if let Some(rx) = self.ecm_rx.as_mut() {
                    rx.block.push(data);
                }
            }
            _ => {}
        }
    }

    /// The transmission last requested has finished.
    pub fn handle_tx_done(&mut self, now: Duration) {
        if self.ecm_after_command(now) {
            return;
        }
        match self.state {
            State::Ced => self.send_dis(now),
            State::SendingDis => {
                self.state = if self.sending { State::WaitDis } else { State::WaitDcs };
                self.start_timer(Timer::T4, now);
            }
            State::SendingDcs => {
                self.tx.push_back(T30Tx::Tcf { rate: self.rate, ms: TCF_MS });
                self.state = State::SendingTcf;
            }
            State::SendingTcf => {
                self.state = State::WaitCfr;
                self.start_timer(Timer::T4, now);
            }
            State::SendingImage => self.send_post_page(),
            State::SendingPostPage => {
                self.state = State::WaitPostPageResp;
                self.start_timer(Timer::T4, now);
            }
            State::SendingCfr => {
                self.state = State::WaitImage;
                self.rx_mode = RxMode::Image(self.dcs.map(|d| d.rate).unwrap_or(self.rate));
                self.start_timer(Timer::T2, now);
            }
            State::SendingFtt => {
                self.state = State::WaitDcs;
                self.start_timer(Timer::T4, now);
            }
            State::SendingResponse => match self.after_response {
                State::SendingDis => self.send_dis(now),
                State::WaitImage => {
                    self.state = State::WaitImage;
                    self.rx_mode = RxMode::Image(self.dcs.map(|d| d.rate).unwrap_or(self.rate));
                    self.start_timer(Timer::T2, now);
                }
                State::WaitDcs => {
                    self.state = State::WaitDcs;
                    self.start_timer(Timer::T4, now);
                }
                State::WaitPostPageCmd => {
                    // ECM: RNR sent, waiting for RR.
                    self.state = State::WaitPostPageCmd;
                    self.start_timer(Timer::T2, now);
                }
                _ => {
                    self.state = State::WaitDcn;
                    self.start_timer(Timer::T2, now);
                }
            },
            State::SendingCrp => {
                self.state = self.crp_resume;
                self.start_timer(Timer::T2, now);
            }
            State::SendingDcn => {
                let s = self.pending_status.take().unwrap_or(FaxStatus::LocalAbort);
                self.finish(s);
            }
            _ => {}
        }
    }

    /// Fires timers due at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.status.is_some() {
            return;
        }
        if self.t1.is_some_and(|t| now >= t) {
            self.t1 = None;
            let s = if self.heard_remote { FaxStatus::T1Expired } else { FaxStatus::NoAnswer };
            return self.disconnect(now, s);
        }
        if self.t5.is_some_and(|t| now >= t) {
            return self.t5_expired(now);
        }
        let Some((t, at)) = self.timer else { return };
        if now < at {
            return;
        }
        self.timer = None;
        match (t, self.state) {
            (Timer::T4, State::WaitDis | State::WaitDcs) => {
                if self.role == Role::Called && self.t1.is_some() {
                    // A called terminal repeats DIS until T1 expires.
                    self.send_dis(now);
                } else if self.repeats < MAX_REPEATS {
                    self.repeats += 1;
                    self.send_dis(now);
                } else {
                    self.disconnect(now, FaxStatus::NoResponse);
                }
            }
            (Timer::T4, State::WaitCfr | State::WaitPostPageResp) => self.count_repeat(now),
            (Timer::T4, _) if self.ecm_wait_state() => self.count_repeat(now),
            (Timer::T2, State::WaitDcn) => self.finish(FaxStatus::Success),
            (Timer::T2, State::ReceivingTcf) => {
                if self.tcf.bits() > 0 {
                    self.finish_tcf(now);
                } else {
                    self.rx_mode = RxMode::V21;
                    self.state = State::WaitDcs;
                    self.start_timer(Timer::T4, now);
                }
            }
            (Timer::T2, _) => self.disconnect(now, FaxStatus::T2Expired),
            _ => {}
        }
    }
}

/// Preference order of rates (higher is tried first).
fn rank(r: FaxRate) -> usize {
    FaxRate::FALLBACK.len() - FaxRate::FALLBACK.iter().position(|x| *x == r).unwrap_or(7)
}

fn page_is_fine(p: &FaxPage) -> bool {
    let per_inch = if p.resolution_unit == 3 { p.y_resolution * 2.54 } else { p.y_resolution };
    per_inch > 150.0
}

fn drop_alternate_rows(b: &Bitmap) -> Bitmap {
    let mut out = Bitmap::new(b.width, 0);
    for y in (0..b.height).step_by(2) {
        out.push_row(b.row(y));
    }
    out
}

pub mod ecm;

#[cfg(test)]
mod tests;
