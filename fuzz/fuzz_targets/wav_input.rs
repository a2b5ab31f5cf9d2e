//! Fuzz target: the WAV reader of the technician DSP tools,
//! `cardpbx::audiofile::parse_wav`.
//! The checks live in `cardpbx::audiofile::fuzz_check_wav` so that the corpus replay test runs
//! the same invariants on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cardpbx::audiofile::fuzz_check_wav(data);
});
