//! Fax page images: ITU-T T.4 image coding and TIFF Class F files.
//!
//! - [`t4`]: Modified Huffman (MH, 1-D) and Modified READ (MR, 2-D) encoder and an
//!   error-tolerant decoder (batch and streaming) for bilevel scan lines of 1728, 2048 or 2432
//!   pels (any width up to [`t4::MAX_WIDTH`] works).
//! - [`tiff`]: reader and writer for TIFF Class F (Compression 3, multi-page).
//!
//! None of this is on the real-time path: it allocates freely.

#![warn(missing_docs)]

pub mod t4;
pub mod tiff;
