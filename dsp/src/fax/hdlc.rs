//! Bit-level HDLC framing as T.30 uses it on V.21 channel 2 (and as ECM uses it on the image
//! modems): flags `0x7E`, zero-bit insertion after five ones, a CRC-16 frame check sequence
//! (ITU-T V.41 / ISO 3309, sent low octet first) and aborts (seven or more ones).
//!
//! Bits are `u8` values 0/1, octets go out least significant bit first. [`HdlcTx`] turns frames
//! into a bit stream (preamble flags, frames separated by one flag, closing flags);
//! [`HdlcRx`] turns a bit stream back into frames, reporting frames whose FCS is wrong rather
//! than dropping them silently, so T.30 can answer with CRP.
//!
//! Neither side allocates after construction: the transmit queue and the receive buffer are
//! fixed arrays.

/// Largest frame body (address, control, FCF, FIF, without FCS) handled. T.30 ECM frames are
/// at most 4 + 256 octets.
pub const MAX_FRAME: usize = 264;
/// The flag octet.
pub const FLAG: u8 = 0x7E;
/// CRC register value after a good frame including its FCS has been run through [`crc16`].
pub const FCS_GOOD_RESIDUE: u16 = 0xF0B8;
/// Frames [`HdlcTx`] can hold at once.
pub const TX_QUEUE: usize = 8;

/// Updates a CRC-16/X.25 register (polynomial x^16 + x^12 + x^5 + 1, bit-reflected) with
/// `data`. Start from `0xFFFF`; the FCS to send is the ones' complement of the result, low
/// octet first.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb != 0 {
                crc ^= 0x8408;
            }
        }
    }
    crc
}

/// The two FCS octets (in transmission order) for a frame body.
pub fn fcs(frame: &[u8]) -> [u8; 2] {
    let v = !crc16(0xFFFF, frame);
    v.to_le_bytes()
}

/// Whether `frame_with_fcs` (body followed by its two FCS octets) checks out.
pub fn fcs_ok(frame_with_fcs: &[u8]) -> bool {
    frame_with_fcs.len() >= 2 && crc16(0xFFFF, frame_with_fcs) == FCS_GOOD_RESIDUE
}

/// Number of flags lasting at least `ms` milliseconds at `bit_rate` bit/s (T.30 asks for a
/// 1 s ± 15 % preamble: `preamble_flags(1000, 300) == 38`).
pub fn preamble_flags(ms: u32, bit_rate: u32) -> usize {
    let bits = (u64::from(ms) * u64::from(bit_rate)).div_ceil(1000);
    bits.div_ceil(8) as usize
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HdlcError {
    /// The frame is empty or longer than [`MAX_FRAME`].
    #[error("HDLC frame of {0} octets (must be 1..={MAX_FRAME})")]
    BadLength(usize),
    /// [`TX_QUEUE`] items are already queued.
    #[error("HDLC transmit queue full")]
    QueueFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Flags(usize),
    Frame(usize),
}

/// HDLC transmitter: a queue of flag runs and frames, read out one bit at a time.
///
/// Each frame is followed by one closing flag (which also opens the next frame), so a burst is
/// `preamble flags, frame, flag, frame, flag, ...`. Queue extra flags with
/// [`HdlcTx::push_flags`] to hold the line between frames or before the carrier drops.
#[derive(Debug, Clone)]
pub struct HdlcTx {
    bufs: [[u8; MAX_FRAME + 2]; TX_QUEUE],
    items: [Item; TX_QUEUE],
    head: usize,
    len: usize,
    /// Position in the current item: bit index into a flag run, or octet index in a frame.
    pos: usize,
    /// Bits of the current octet still to send (LSB first) and how many.
    octet: u8,
    octet_bits: u8,
    /// Consecutive ones sent inside a frame (for zero insertion).
    ones: u8,
    /// A stuffed zero is due before the next data bit.
    stuff: bool,
    bits_sent: u64,
}

impl Default for HdlcTx {
    fn default() -> Self {
        Self::new()
    }
}

impl HdlcTx {
    /// An empty transmitter.
    pub fn new() -> Self {
        HdlcTx {
            bufs: [[0; MAX_FRAME + 2]; TX_QUEUE],
            items: [Item::Flags(0); TX_QUEUE],
            head: 0,
            len: 0,
            pos: 0,
            octet: 0,
            octet_bits: 0,
            ones: 0,
            stuff: false,
            bits_sent: 0,
        }
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.pos = 0;
        self.octet_bits = 0;
        self.ones = 0;
        self.stuff = false;
    }

    /// Whether nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bits produced since construction.
    pub fn bits_sent(&self) -> u64 {
        self.bits_sent
    }

    fn push_item(&mut self, item: Item) -> Result<usize, HdlcError> {
        if self.len == TX_QUEUE {
            return Err(HdlcError::QueueFull);
        }
        let slot = (self.head + self.len) % TX_QUEUE;
        self.items[slot] = item;
        self.len += 1;
        Ok(slot)
    }

    /// Queues `n` flags.
    ///
    /// # Errors
    /// [`HdlcError::QueueFull`].
    pub fn push_flags(&mut self, n: usize) -> Result<(), HdlcError> {
        if n == 0 {
            return Ok(());
        }
        // Merge with a flag run still waiting at the tail.
        if self.len > 1 {
            let tail = (self.head + self.len - 1) % TX_QUEUE;
            if let Item::Flags(m) = self.items[tail] {
                self.items[tail] = Item::Flags(m + n);
                return Ok(());
            }
        }
        self.push_item(Item::Flags(n)).map(|_| ())
    }

    /// Queues a frame body (the FCS is computed and appended) followed by one flag.
    ///
    /// # Errors
    /// [`HdlcError::BadLength`] or [`HdlcError::QueueFull`] (a frame takes two queue slots).
    pub fn push_frame(&mut self, frame: &[u8]) -> Result<(), HdlcError> {
        if frame.is_empty() || frame.len() > MAX_FRAME {
            return Err(HdlcError::BadLength(frame.len()));
        }
        if self.len + 2 > TX_QUEUE {
            return Err(HdlcError::QueueFull);
        }
        let slot = self.push_item(Item::Frame(frame.len() + 2))?;
        self.bufs[slot][..frame.len()].copy_from_slice(frame);
        self.bufs[slot][frame.len()..frame.len() + 2].copy_from_slice(&fcs(frame));
        self.push_item(Item::Flags(1)).map(|_| ())
    }

    /// The next bit to send, or `None` when the queue is empty.
    ///
    /// # Real-time
    /// Constant work, no allocation.
    pub fn next_bit(&mut self) -> Option<u8> {
        loop {
            if self.len == 0 {
                return None;
            }
            match self.items[self.head] {
                Item::Flags(n) => {
                    if self.pos < n * 8 {
                        let bit = (FLAG >> (self.pos % 8)) & 1;
                        self.pos += 1;
                        self.ones = 0;
                        self.bits_sent += 1;
                        return Some(bit);
                    }
                }
                Item::Frame(n) => {
                    if self.stuff {
                        self.stuff = false;
                        self.ones = 0;
                        self.bits_sent += 1;
                        return Some(0);
                    }
                    if self.octet_bits == 0 && self.pos < n {
                        self.octet = self.bufs[self.head][self.pos];
                        self.octet_bits = 8;
                        self.pos += 1;
                    }
                    if self.octet_bits > 0 {
                        let bit = self.octet & 1;
                        self.octet >>= 1;
                        self.octet_bits -= 1;
                        if bit == 1 {
                            self.ones += 1;
                            if self.ones == 5 {
                                self.stuff = true;
                            }
                        } else {
                            self.ones = 0;
                        }
                        self.bits_sent += 1;
                        return Some(bit);
                    }
                }
            }
            // Current item finished.
            self.head = (self.head + 1) % TX_QUEUE;
            self.len -= 1;
            self.pos = 0;
            self.ones = 0;
        }
    }
}

/// What [`HdlcRx::push_bit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HdlcEvent<'a> {
    /// The first flag after silence, an abort or noise: the receiver is in frame sync.
    Sync,
    /// A frame whose FCS checked out (body without the FCS).
    Frame(&'a [u8]),
    /// A frame with a wrong FCS or not a whole number of octets; `len` octets were received
    /// (FCS included).
    BadFrame {
        /// Octets received, FCS included.
        len: usize,
    },
    /// Seven or more ones inside a frame: the sender abandoned it.
    Abort,
    /// More than [`MAX_FRAME`] + 2 octets without a closing flag; the frame was dropped.
    TooLong,
}

/// HDLC receiver: finds flags, removes stuffed zeros, collects octets and checks the FCS.
#[derive(Debug, Clone)]
pub struct HdlcRx {
    buf: [u8; MAX_FRAME + 3],
    len: usize,
    octet: u8,
    nbits: u8,
    ones: u8,
    synced: bool,
    /// Inside a frame (octets or bits received since the last flag).
    in_frame: bool,
    overflow: bool,
    flags_seen: u32,
    good_frames: u32,
    bad_frames: u32,
    aborts: u32,
}

impl Default for HdlcRx {
    fn default() -> Self {
        Self::new()
    }
}

impl HdlcRx {
    /// A receiver out of sync, hunting for a flag.
    pub fn new() -> Self {
        HdlcRx {
            buf: [0; MAX_FRAME + 3],
            len: 0,
            octet: 0,
            nbits: 0,
            ones: 0,
            synced: false,
            in_frame: false,
            overflow: false,
            flags_seen: 0,
            good_frames: 0,
            bad_frames: 0,
            aborts: 0,
        }
    }

    /// Back to hunting for a flag (call when the carrier drops). Counters are kept.
    pub fn reset(&mut self) {
        self.synced = false;
        self.in_frame = false;
        self.len = 0;
        self.nbits = 0;
        self.ones = 0;
        self.overflow = false;
    }

    /// Whether a flag has been seen since the last reset or abort.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Flags seen since construction.
    pub fn flags_seen(&self) -> u32 {
        self.flags_seen
    }

    /// Frames with a good FCS since construction.
    pub fn good_frames(&self) -> u32 {
        self.good_frames
    }

    /// Frames with a bad FCS or length since construction.
    pub fn bad_frames(&self) -> u32 {
        self.bad_frames
    }

    /// Aborts since construction.
    pub fn aborts(&self) -> u32 {
        self.aborts
    }

    fn start_frame(&mut self) {
        self.len = 0;
        self.nbits = 0;
        self.octet = 0;
        self.in_frame = false;
        self.overflow = false;
    }

    /// Feeds one received bit (0 or 1; any non-zero value counts as 1).
    ///
    /// # Real-time
    /// Constant work per bit, except at a closing flag, where the FCS is checked over at most
    /// [`MAX_FRAME`] + 2 octets; no allocation.
    pub fn push_bit(&mut self, bit: u8) -> Option<HdlcEvent<'_>> {
        let bit = u8::from(bit != 0);
        if bit == 1 {
            self.ones = self.ones.saturating_add(1);
            if self.ones == 7 {
                // Abort (or idle ones): lose sync.
                let was_in_frame = self.synced && self.len > 0;
                self.synced = false;
                self.start_frame();
                if was_in_frame {
                    self.aborts = self.aborts.wrapping_add(1);
                    return Some(HdlcEvent::Abort);
                }
                return None;
            }
            if self.synced {
                self.data_bit(1);
            }
            return self.take_overflow();
        }
        // A zero.
        let ones = self.ones;
        self.ones = 0;
        if ones == 6 {
            // Flag 01111110 (its leading zero was already taken as data; drop it below).
            self.flags_seen = self.flags_seen.wrapping_add(1);
            if !self.synced {
                self.synced = true;
                self.start_frame();
                return Some(HdlcEvent::Sync);
            }
            // The 7 bits after the flag's leading zero were counted as data: remove them.
            let ev = self.end_frame();
            return ev;
        }
        if !self.synced {
            return None;
        }
        if ones == 5 {
            return None; // stuffed zero
        }
        self.data_bit(0);
        self.take_overflow()
    }

    fn take_overflow(&mut self) -> Option<HdlcEvent<'_>> {
        if self.overflow {
            self.overflow = false;
            self.synced = false;
            self.start_frame();
            self.bad_frames = self.bad_frames.wrapping_add(1);
            return Some(HdlcEvent::TooLong);
        }
        None
    }

    fn data_bit(&mut self, bit: u8) {
        self.in_frame = true;
        self.octet |= bit << self.nbits;
        self.nbits += 1;
        if self.nbits == 8 {
            if self.len == self.buf.len() {
                self.overflow = true;
                return;
            }
            self.buf[self.len] = self.octet;
            self.len += 1;
            self.octet = 0;
            self.nbits = 0;
        }
    }

    fn end_frame(&mut self) -> Option<HdlcEvent<'_>> {
        // The flag's first (zero) bit and its six ones were taken as data bits: 7 bits.
        let mut total_bits = self.len * 8 + usize::from(self.nbits);
        let had_data = self.in_frame;
        self.in_frame = false;
        if !had_data || total_bits <= 7 {
            self.start_frame();
            return None; // back-to-back flags (possibly sharing a zero)
        }
        total_bits -= 7;
        let len = self.len;
        self.start_frame();
        if !total_bits.is_multiple_of(8) || total_bits < 24 {
            self.bad_frames = self.bad_frames.wrapping_add(1);
            return Some(HdlcEvent::BadFrame { len: total_bits / 8 });
        }
        let n = total_bits / 8;
        debug_assert!(n <= len);
        if fcs_ok(&self.buf[..n]) {
            self.good_frames = self.good_frames.wrapping_add(1);
            Some(HdlcEvent::Frame(&self.buf[..n - 2]))
        } else {
            self.bad_frames = self.bad_frames.wrapping_add(1);
            Some(HdlcEvent::BadFrame { len: n })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits_of(tx: &mut HdlcTx) -> Vec<u8> {
        std::iter::from_fn(|| tx.next_bit()).collect()
    }

    fn frames_of(bits: &[u8]) -> Vec<Result<Vec<u8>, String>> {
        let mut rx = HdlcRx::new();
        let mut out = Vec::new();
        for &b in bits {
            match rx.push_bit(b) {
                Some(HdlcEvent::Frame(f)) => out.push(Ok(f.to_vec())),
                Some(HdlcEvent::BadFrame { len }) => out.push(Err(format!("bad{len}"))),
                Some(HdlcEvent::Abort) => out.push(Err("abort".into())),
                Some(HdlcEvent::TooLong) => out.push(Err("long".into())),
                Some(HdlcEvent::Sync) | None => {}
            }
        }
        out
    }

    #[test]
    fn crc_check_value() {
        // CRC-16/X.25 check value for "123456789" is 0x906E.
        assert_eq!(!crc16(0xFFFF, b"123456789"), 0x906E);
        let mut f = b"123456789".to_vec();
        f.extend_from_slice(&fcs(b"123456789"));
        assert_eq!(&f[9..], &[0x6E, 0x90]);
        assert!(fcs_ok(&f));
        f[3] ^= 0x10;
        assert!(!fcs_ok(&f));
    }

    #[test]
    fn preamble_length() {
        assert_eq!(preamble_flags(1000, 300), 38);
        let secs = preamble_flags(1000, 300) as f64 * 8.0 / 300.0;
        assert!((0.85..=1.15).contains(&secs));
    }

    #[test]
    fn flag_bits_and_stuffing() {
        let mut tx = HdlcTx::new();
        tx.push_flags(1).unwrap();
        // 0xFF: eight ones -> a zero is stuffed after the fifth.
        tx.push_frame(&[0xFF]).unwrap();
        let bits = bits_of(&mut tx);
        assert_eq!(&bits[..8], &[0, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(&bits[8..17], &[1, 1, 1, 1, 1, 0, 1, 1, 1]);
        // Never six ones in a row between the flags.
        let body = &bits[8..bits.len() - 8];
        let mut run = 0;
        for &b in body {
            run = if b == 1 { run + 1 } else { 0 };
            assert!(run <= 5);
        }
    }

    #[test]
    fn round_trip_frames() {
        let frames: Vec<Vec<u8>> = vec![
            vec![0xFF, 0x03, 0x80, 0x00, 0xCE, 0x78],
            vec![0x7E, 0x7E, 0xFF, 0xFF, 0x00],
            (0..=255u8).collect(),
        ];
        let mut tx = HdlcTx::new();
        tx.push_flags(38).unwrap();
        for f in &frames {
            tx.push_frame(f).unwrap();
        }
        tx.push_flags(2).unwrap();
        let bits = bits_of(&mut tx);
        let got = frames_of(&bits);
        assert_eq!(got, frames.into_iter().map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn every_single_bit_error_is_caught() {
        let mut tx = HdlcTx::new();
        tx.push_flags(2).unwrap();
        tx.push_frame(&[0xFF, 0x13, 0x84]).unwrap();
        let bits = bits_of(&mut tx);
        for i in 16..bits.len() - 8 {
            let mut b = bits.clone();
            b[i] ^= 1;
            let got = frames_of(&b);
            assert!(got.iter().all(|r| r.is_err()), "flip {i}: {got:?}");
        }
    }

    #[test]
    fn abort_is_reported() {
        let mut bits = vec![0, 1, 1, 1, 1, 1, 1, 0];
        bits.extend([1, 0, 1, 0, 0, 0, 0, 1, 0, 1]);
        bits.extend([1; 8]);
        let mut rx = HdlcRx::new();
        let evs: Vec<String> =
            bits.iter().filter_map(|&b| rx.push_bit(b).map(|e| format!("{e:?}"))).collect();
        assert_eq!(evs, vec!["Sync".to_string(), "Abort".to_string()]);
        assert_eq!(rx.aborts(), 1);
        assert!(!rx.synced());
    }

    #[test]
    fn bad_fcs_reported_with_length() {
        let mut tx = HdlcTx::new();
        tx.push_flags(1).unwrap();
        tx.push_frame(&[0xFF, 0x13, 0xFA]).unwrap();
        let mut bits = bits_of(&mut tx);
        // Flip a bit in the FCF (bits 24..32 counting the opening flag; no stuffing there
        // since 0xFF 0x13 has at most five ones in a row after stuffing... use a safe index).
        bits[8 + 17] ^= 1;
        let got = frames_of(&bits);
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
    }

    #[test]
    fn too_long_frame_dropped() {
        let mut bits = vec![0, 1, 1, 1, 1, 1, 1, 0];
        bits.extend(std::iter::repeat_n(0, (MAX_FRAME + 4) * 8));
        let got = frames_of(&bits);
        assert_eq!(got, vec![Err("long".to_string())]);
    }

    #[test]
    fn queue_limits() {
        let mut tx = HdlcTx::new();
        assert_eq!(tx.push_frame(&[]), Err(HdlcError::BadLength(0)));
        for _ in 0..TX_QUEUE / 2 {
            tx.push_frame(&[1, 2, 3]).unwrap();
        }
        assert_eq!(tx.push_frame(&[1, 2, 3]), Err(HdlcError::QueueFull));
        // Flags merge into the tail flag run.
        tx.push_flags(5).unwrap();
        tx.clear();
        assert!(tx.is_empty());
        assert_eq!(tx.next_bit(), None);
    }
}
