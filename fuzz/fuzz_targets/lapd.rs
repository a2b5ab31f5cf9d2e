//! Fuzz target: LAPD frame parse/emit round trip and the Q.921 data link entity in both roles,
//! `cardpbx_signalling::lapd::fuzz_check`. The corpus (`fuzz/corpus/lapd`) is replayed on stable
//! by the signalling crate's `lapd::tests::fuzz_corpus_replays`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cardpbx_signalling::lapd::fuzz_check(data));
