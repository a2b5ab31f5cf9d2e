//! Fax page images: ITU-T T.4 image coding and TIFF Class F files.
//!
//! - [`t4`]: Modified Huffman (MH, 1-D) and Modified READ (MR, 2-D) encoder and an
//!   error-tolerant decoder (batch and streaming) for bilevel scan lines of 1728, 2048 or 2432
//!   pels (any width up to [`t4::MAX_WIDTH`] works).
//! - [`tiff`]: reader and writer for TIFF Class F (Compression 3, multi-page).
//! - [`hdlc`]: bit-level HDLC framing (flags, zero insertion, FCS) for the T.30 control channel.
//! - [`v21`]: V.21 channel 2 FSK modem (300 bit/s, synchronous) carrying those frames.
//! - [`t30`]: the T.30 procedure (sans-IO state machine, DIS/DCS coding, timers).
//! - [`session`]: T.30 + V.21 + an image modem on 8 kHz audio.
//! - [`audio_modem`]: the session's image modem over the real V.27 ter / V.29 modems.
//! - [`pdf`]: received pages as a PDF with the G3 data under the CCITT fax filter.
//!
//! None of this is on the real-time path: it allocates freely.

#![warn(missing_docs)]

pub mod audio_modem;
pub mod hdlc;
pub mod modem;
pub mod pdf;
pub mod session;
pub mod t30;
pub mod t4;
pub mod tiff;
pub mod v21;
