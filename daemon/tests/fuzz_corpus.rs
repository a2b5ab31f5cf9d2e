//! Replays the cargo-fuzz corpus (`fuzz/corpus/<target>/`) on stable: every stored input goes
//! through the same check the fuzz target runs (`cardpbx::fuzzing`), so a crash the fuzzer once
//! found, once minimised into the corpus, stays fixed without a nightly toolchain.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Run `check` on every file of `fuzz/corpus/<target>/`; fail naming each input that panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());

    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("read corpus input");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{} input(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", cardpbx::fuzzing::check_config);
}

#[test]
fn ctl_request_corpus() {
    replay("ctl_request", cardpbx::fuzzing::check_ctl);
}

#[test]
fn dtmf_detect_corpus() {
    replay("dtmf_detect", cardpbx::fuzzing::check_dtmf);
}

/// The checks are not vacuous: each catches a broken input the way the fuzzer would.
#[test]
fn checks_accept_good_and_survive_bad_inputs() {
    cardpbx::fuzzing::check_ctl(b"{\"cmd\":\"status\"}");
    cardpbx::fuzzing::check_ctl(b"{\"ok\":true,\"data\":{\"pong\":true,\"version\":\"1\"}}");
    cardpbx::fuzzing::check_config(b"[system]\nname = \"x\"\n");
    cardpbx::fuzzing::check_config(b"[system\n");
    cardpbx::fuzzing::check_dtmf(&[0x7f; 2000]);
}
