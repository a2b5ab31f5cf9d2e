//! Fuzz target: the TIFF Class F reader and the T.4/T.6 decoders,
//! `cardpbx_dsp::fax::tiff::tiff_fuzz_check` (parse; on success re-encode MH and MR, re-parse and
//! compare the bitmaps). `dsp/tests/fax_tiff.rs` replays `fuzz/corpus/tiff_input` on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cardpbx_dsp::fax::tiff::tiff_fuzz_check(data));
