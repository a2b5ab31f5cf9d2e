//! Replays fuzz corpora on stable, so the seeds and any crash reproducers saved there stay
//! fixed: `fuzz/corpus/r2` through `r2::fuzz_check` and `fuzz/corpus/q931_call` through the
//! Q.931 call state machines (`q931::call::call_fuzz_check`). (The LAPD and Q.931 codec corpora
//! are replayed by `lapd::tests` and `tests/q931.rs`.)

use std::path::Path;

/// Feeds every file of `fuzz/corpus/<name>` to `check`; returns how many there were.
fn replay(name: &str, check: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(name);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            check(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn r2_corpus_replays_cleanly() {
    let n = replay("r2", cardpbx_signalling::r2::fuzz_check);
    assert!(n >= 8, "only {n} seeds in fuzz/corpus/r2");
}

#[test]
fn q931_call_corpus_replays_cleanly() {
    let n = replay("q931_call", cardpbx_signalling::q931::call::call_fuzz_check);
    assert!(n >= 7, "only {n} seeds in fuzz/corpus/q931_call");
}
