//! Fuzz target: the DTMF detector on arbitrary 16-bit samples,
//! `cardpbx_dsp::dtmf::DtmfDetector::process`.
//! The checks live in `cardpbx::fuzzing` so that `daemon/tests/fuzz_corpus.rs` replays the
//! corpus with the same invariants on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cardpbx::fuzzing::check_dtmf(data);
});
