//! Fuzz target: the configuration parser, `cardpbx::config::Config::parse_str`.
//! The checks live in `cardpbx::fuzzing` so that `daemon/tests/fuzz_corpus.rs` replays the
//! corpus with the same invariants on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cardpbx::fuzzing::check_config(data);
});
