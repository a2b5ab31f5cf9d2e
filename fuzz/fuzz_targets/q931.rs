//! Fuzz target: the Q.931 message codec and §5.8 checker,
//! `cardpbx_signalling::q931::fuzz_check` (parse; if accepted, emit, re-parse, compare;
//! run the checks). `signalling/tests/q931.rs` replays `fuzz/corpus/q931` on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cardpbx_signalling::q931::fuzz_check(data));
