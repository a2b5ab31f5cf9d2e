//! Fuzz target: two back-to-back MFC/R2 channels driven by a byte script,
//! `cardpbx_signalling::r2::fuzz_check` (time steps, calls, decisions, hang-ups, blocking,
//! injected ABCD and MF, wire cuts; channel invariants checked after every step).
//! `signalling/tests/fuzz_corpus.rs` replays `fuzz/corpus/r2` with the same checks on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cardpbx_signalling::r2::fuzz_check(data));
