//! Fax image-data modems: ITU-T V.27ter (2400/4800 bit/s), V.29 (7200/9600 bit/s) and V.17
//! (7200–14400 bit/s, trellis-coded).
//!
//! Sans-IO and real-time safe: construction allocates (filter tables, equaliser, bit queue);
//! [`ModemTx::fill`] and [`ModemRx::process`] never allocate, lock or log.
//!
//! - [`common`]: the shared pieces (scrambler, pulse shaping, timing/carrier recovery,
//!   equaliser, AGC, carrier detect).
//! - [`v27ter`], [`v29`] and [`v17`]: the modems, each with its training sequence.
//! - [`ImageTx`] / [`ImageRx`]: one type per direction over all [`ImageRate`]s, which is what
//!   T.30 drives: after DCS it builds an `ImageTx` at the chosen rate, pushes 1.5 s of zero
//!   bits (TCF) or T.4 data, calls [`ModemTx::finish`], and pulls samples with
//!   [`ModemTx::fill`] until it returns short; the receiving side feeds line samples to
//!   [`ModemRx::process`] and gets bits (in line order; bytes are LSB first) once
//!   [`ModemRx::trained`] is true, and sees the end of the burst as [`ModemRx::carrier`]
//!   going false.
//!
//! Not here: V.21 (the control channel), and the optional V.29 4800 bit/s mode (not used by
//! T.30).

/// Implements [`ModemTx`] for a transmitter made of a `modulator: Modulator` and a `src`
/// symbol source with `next_symbol()`, a `queue: BitQueue` and the `rate`, `finished`, `done`
/// and `underruns` fields (every modem here is built that way).
macro_rules! impl_symbol_tx {
    ($tx:ty) => {
        impl $crate::fax::modem::ModemTx for $tx {
            fn fill(&mut self, out: &mut [i16]) -> usize {
                for i in 0..out.len() {
                    if self.src.done {
                        out[i..].iter_mut().for_each(|x| *x = 0);
                        return i;
                    }
                    let src = &mut self.src;
                    out[i] =
                        $crate::fax::modem::to_i16(self.modulator.sample(|| src.next_symbol()));
                }
                out.len()
            }
            fn push_bits(&mut self, bits: &[u8]) -> usize {
                bits.iter().take_while(|&&b| self.src.queue.push(b)).count()
            }
            fn push_bytes(&mut self, bytes: &[u8]) -> usize {
                $crate::fax::modem::push_bytes_lsb(&mut self.src.queue, bytes)
            }
            fn space(&self) -> usize {
                self.src.queue.space()
            }
            fn finish(&mut self) {
                self.src.finished = true;
            }
            fn is_done(&self) -> bool {
                self.src.done
            }
            fn underruns(&self) -> u32 {
                self.src.underruns
            }
            fn rate(&self) -> $crate::fax::modem::ImageRate {
                self.src.rate
            }
        }
    };
}

pub mod common;
pub mod v17;
pub mod v27ter;
pub mod v29;

use v17::{V17Rx, V17Tx};
use v27ter::{V27terRx, V27terTx};
use v29::{V29Rx, V29Tx};

/// An image-data rate (T.30 DCS bits 11–14 choose one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(non_camel_case_types)]
pub enum ImageRate {
    /// V.27ter, 4-phase DPSK, 1200 baud.
    V27_2400,
    /// V.27ter, 8-phase DPSK, 1600 baud.
    V27_4800,
    /// V.29, 8-point QAM, 2400 baud.
    V29_7200,
    /// V.29, 16-point QAM, 2400 baud.
    V29_9600,
    /// V.17, 16-point trellis-coded QAM, 2400 baud.
    V17_7200,
    /// V.17, 32-point trellis-coded QAM, 2400 baud.
    V17_9600,
    /// V.17, 64-point trellis-coded QAM, 2400 baud.
    V17_12000,
    /// V.17, 128-point trellis-coded QAM, 2400 baud.
    V17_14400,
}

impl ImageRate {
    /// Every rate, slowest first.
    pub const ALL: [ImageRate; 8] = [
        ImageRate::V27_2400,
        ImageRate::V27_4800,
        ImageRate::V29_7200,
        ImageRate::V17_7200,
        ImageRate::V29_9600,
        ImageRate::V17_9600,
        ImageRate::V17_12000,
        ImageRate::V17_14400,
    ];

    /// Data bits per second.
    pub fn bits_per_second(self) -> u32 {
        match self {
            ImageRate::V27_2400 => 2400,
            ImageRate::V27_4800 => 4800,
            ImageRate::V29_7200 | ImageRate::V17_7200 => 7200,
            ImageRate::V29_9600 | ImageRate::V17_9600 => 9600,
            ImageRate::V17_12000 => 12000,
            ImageRate::V17_14400 => 14400,
        }
    }

    /// True for the V.17 (trellis-coded) rates.
    pub fn is_v17(self) -> bool {
        matches!(
            self,
            ImageRate::V17_7200 | ImageRate::V17_9600 | ImageRate::V17_12000 | ImageRate::V17_14400
        )
    }
}

/// Transmitter settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TxConfig {
    /// Transmit level in dBm0 (data and training).
    pub level_dbm0: f32,
    /// Send the optional talker-echo-protection tone (unmodulated carrier about 200 ms, then
    /// 20 ms silence) before the training.
    pub echo_protection: bool,
    /// Capacity of the bit queue, in bits.
    pub queue_bits: usize,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig { level_dbm0: -12.0, echo_protection: false, queue_bits: 16_384 }
    }
}

/// Receiver settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RxConfig {
    /// Energy level at which the carrier is considered present (dBm0).
    pub carrier_on_dbm0: f32,
    /// Energy level below which it is considered gone (dBm0).
    pub carrier_off_dbm0: f32,
}

impl Default for RxConfig {
    /// V.27ter's −43/−48 dBm0 (used for V.29 too: fax lines often lose more than V.29's
    /// leased-line −26/−31 dBm0 allows).
    fn default() -> Self {
        RxConfig { carrier_on_dbm0: -43.0, carrier_off_dbm0: -48.0 }
    }
}

/// A transmitting image modem.
pub trait ModemTx {
    /// Fill `out` with line samples. Returns how many were written: `out.len()` while the
    /// burst lasts, fewer (the rest zeroed) once training, data and the closing symbols are
    /// all sent, and 0 after that.
    ///
    /// # Real-time
    /// No allocation; work is bounded by `out.len()`.
    fn fill(&mut self, out: &mut [i16]) -> usize;
    /// Queue bits (0/1, one per byte, in line order); returns how many fitted.
    fn push_bits(&mut self, bits: &[u8]) -> usize;
    /// Queue bytes, each sent least significant bit first; returns how many whole bytes fitted.
    fn push_bytes(&mut self, bytes: &[u8]) -> usize;
    /// Free queue room, in bits.
    fn space(&self) -> usize;
    /// No more data: once the queue drains, send the closing symbols and stop. Until this is
    /// called an empty queue sends binary ones (counted by [`ModemTx::underruns`]).
    fn finish(&mut self);
    /// True once the whole burst has been produced.
    fn is_done(&self) -> bool;
    /// Data bits that had to be replaced by ones because the queue was empty.
    fn underruns(&self) -> u32;
    /// The rate in use.
    fn rate(&self) -> ImageRate;
}

/// A receiving image modem.
pub trait ModemRx {
    /// Demodulate `samples`; every recovered data bit (0/1) goes to `on_bit` in line order.
    /// Bits are delivered only after training; a few descrambled training ones may precede
    /// the first data bit.
    ///
    /// # Real-time
    /// No allocation; work is bounded by `samples.len()`.
    fn process(&mut self, samples: &[i16], on_bit: &mut dyn FnMut(u8));
    /// Energy above the carrier-on threshold (with hysteresis).
    fn carrier(&self) -> bool;
    /// Training recognised and completed: data bits are flowing.
    fn trained(&self) -> bool;
    /// Forget everything and wait for a new carrier.
    fn reset(&mut self);
    /// Mean squared symbol error relative to the mean symbol power (lower is better; about
    /// 10^(−SNR/10) on a clean line), measured over recent symbols.
    fn quality(&self) -> f32;
    /// The rate in use.
    fn rate(&self) -> ImageRate;
}

/// A transmitter for any [`ImageRate`].
#[derive(Debug, Clone)]
pub enum ImageTx {
    /// V.27ter.
    V27ter(V27terTx),
    /// V.29.
    V29(V29Tx),
    /// V.17.
    V17(V17Tx),
}

impl ImageTx {
    /// A transmitter at `rate` (allocates).
    pub fn new(rate: ImageRate, cfg: TxConfig) -> Self {
        match rate {
            ImageRate::V27_2400 | ImageRate::V27_4800 => ImageTx::V27ter(V27terTx::new(rate, cfg)),
            ImageRate::V29_7200 | ImageRate::V29_9600 => ImageTx::V29(V29Tx::new(rate, cfg)),
            _ => ImageTx::V17(V17Tx::new(rate, cfg)),
        }
    }

    /// V.17 only: send the short training instead of the long one (see
    /// [`V17Tx::set_short_train`]); no effect on the other modems or once started.
    pub fn set_short_train(&mut self, short: bool) {
        if let ImageTx::V17(t) = self {
            t.set_short_train(short);
        }
    }

    fn inner(&mut self) -> &mut dyn ModemTx {
        match self {
            ImageTx::V27ter(t) => t,
            ImageTx::V29(t) => t,
            ImageTx::V17(t) => t,
        }
    }

    fn inner_ref(&self) -> &dyn ModemTx {
        match self {
            ImageTx::V27ter(t) => t,
            ImageTx::V29(t) => t,
            ImageTx::V17(t) => t,
        }
    }
}

impl ModemTx for ImageTx {
    fn fill(&mut self, out: &mut [i16]) -> usize {
        self.inner().fill(out)
    }
    fn push_bits(&mut self, bits: &[u8]) -> usize {
        self.inner().push_bits(bits)
    }
    fn push_bytes(&mut self, bytes: &[u8]) -> usize {
        self.inner().push_bytes(bytes)
    }
    fn space(&self) -> usize {
        self.inner_ref().space()
    }
    fn finish(&mut self) {
        self.inner().finish()
    }
    fn is_done(&self) -> bool {
        self.inner_ref().is_done()
    }
    fn underruns(&self) -> u32 {
        self.inner_ref().underruns()
    }
    fn rate(&self) -> ImageRate {
        self.inner_ref().rate()
    }
}

/// A receiver for any [`ImageRate`].
#[derive(Debug, Clone)]
pub enum ImageRx {
    /// V.27ter.
    V27ter(V27terRx),
    /// V.29.
    V29(V29Rx),
    /// V.17.
    V17(V17Rx),
}

impl ImageRx {
    /// A receiver at `rate` (allocates).
    pub fn new(rate: ImageRate, cfg: RxConfig) -> Self {
        match rate {
            ImageRate::V27_2400 | ImageRate::V27_4800 => ImageRx::V27ter(V27terRx::new(rate, cfg)),
            ImageRate::V29_7200 | ImageRate::V29_9600 => ImageRx::V29(V29Rx::new(rate, cfg)),
            _ => ImageRx::V17(V17Rx::new(rate, cfg)),
        }
    }

    fn inner(&mut self) -> &mut dyn ModemRx {
        match self {
            ImageRx::V27ter(r) => r,
            ImageRx::V29(r) => r,
            ImageRx::V17(r) => r,
        }
    }

    fn inner_ref(&self) -> &dyn ModemRx {
        match self {
            ImageRx::V27ter(r) => r,
            ImageRx::V29(r) => r,
            ImageRx::V17(r) => r,
        }
    }
}

impl ModemRx for ImageRx {
    fn process(&mut self, samples: &[i16], on_bit: &mut dyn FnMut(u8)) {
        self.inner().process(samples, on_bit)
    }
    fn carrier(&self) -> bool {
        self.inner_ref().carrier()
    }
    fn trained(&self) -> bool {
        self.inner_ref().trained()
    }
    fn reset(&mut self) {
        self.inner().reset()
    }
    fn quality(&self) -> f32 {
        self.inner_ref().quality()
    }
    fn rate(&self) -> ImageRate {
        self.inner_ref().rate()
    }
}

/// Phase change (in 45° steps) for a tribit, first bit in time as the most significant bit
/// (V.27ter Table 1 / V.29 Table 1: 001→0°, 000→45°, 010→90°, 011→135°, 111→180°, 110→225°,
/// 100→270°, 101→315°).
pub(crate) const TRIBIT_TO_STEP: [u8; 8] = [1, 0, 2, 3, 6, 7, 5, 4];
/// The inverse of [`TRIBIT_TO_STEP`].
pub(crate) const STEP_TO_TRIBIT: [u8; 8] = [1, 0, 2, 3, 7, 6, 4, 5];
/// Phase change (in 45° steps) for a V.27ter 2400 bit/s dibit: 00→0°, 01→90°, 11→180°,
/// 10→270°.
pub(crate) const DIBIT_TO_STEP: [u8; 4] = [0, 2, 6, 4];

/// Shared transmitter plumbing: samples out with saturation, the bit queue.
pub(crate) fn to_i16(x: f32) -> i16 {
    x.round().clamp(-32768.0, 32767.0) as i16
}

/// Push bytes LSB first into a queue; returns whole bytes accepted.
pub(crate) fn push_bytes_lsb(q: &mut common::BitQueue, bytes: &[u8]) -> usize {
    let mut n = 0;
    for &b in bytes {
        if q.space() < 8 {
            break;
        }
        for i in 0..8 {
            q.push((b >> i) & 1);
        }
        n += 1;
    }
    n
}
