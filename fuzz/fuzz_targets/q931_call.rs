//! Fuzz target: the Q.931 call state machines, a user and a network stack back to back, driven
//! by a script of requests, timer steps, link changes and arbitrary received messages
//! (`cardpbx_signalling::q931::call::call_fuzz_check`: the bookkeeping invariants hold after
//! every step). The corpus (`fuzz/corpus/q931_call`) is replayed on stable by
//! `signalling/tests/fuzz_corpus.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cardpbx_signalling::q931::call::call_fuzz_check(data));
