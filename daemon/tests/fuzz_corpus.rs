//! Replays the cargo-fuzz corpus (`fuzz/corpus/<target>/`) on stable: every stored input goes
//! through the same check the fuzz target runs (`cardpbx::fuzzing`), so a crash the fuzzer once
//! found, once minimised into the corpus, stays fixed without a nightly toolchain.

use cardpbx::fuzzing::{check_config, check_ctl, check_dtmf};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Run `check` on every file of `fuzz/corpus/<target>/` and return (file name, result) for
/// each; fail naming every input whose check panicked.
fn replay<R>(target: &str, check: fn(&[u8]) -> R) -> Vec<(String, R)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());

    let mut results = Vec::new();
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("read corpus input");
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        match catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Ok(r) => results.push((name, r)),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} input(s) failed:\n{}", failures.len(), failures.join("\n"));
    results
}

fn result_of<'a, R>(results: &'a [(String, R)], name: &str) -> &'a R {
    &results.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} not in corpus")).1
}

#[test]
fn config_parse_corpus() {
    let results = replay("config_parse", check_config);
    // The corpus reaches both sides of the parser, so the invariants of each were exercised.
    for accepted in ["sample-demo.toml", "sample-example.toml", "minimal-one-phone.toml"] {
        assert_eq!(*result_of(&results, accepted), Some(true), "{accepted}");
    }
    for rejected in ["bad-port-ref.toml", "duplicate-number.toml", "unterminated-string.toml"] {
        assert_eq!(*result_of(&results, rejected), Some(false), "{rejected}");
    }
    assert_eq!(*result_of(&results, "include-dir-skipped.toml"), None);
}

#[test]
fn ctl_request_corpus() {
    let results = replay("ctl_request", check_ctl);
    assert_eq!(*result_of(&results, "req-status"), 1, "a request is not a response");
    assert_eq!(
        *result_of(&results, "resp-error"),
        cardpbx::ctl::proto::CtlRequest::ALL.len(),
        "an error answers every request"
    );
    assert_eq!(*result_of(&results, "resp-calls-empty"), 6, "[] answers the six list requests");
    assert_eq!(*result_of(&results, "bad-not-json"), 0);
}

#[test]
fn dtmf_detect_corpus() {
    let results = replay("dtmf_detect", check_dtmf);
    assert_eq!(*result_of(&results, "digit-5-then-hash"), 4, "two digits, start and end each");
    assert_eq!(*result_of(&results, "digits-fast-1234"), 8);
    assert_eq!(*result_of(&results, "tone-too-short-20ms"), 0);
    assert_eq!(*result_of(&results, "noise"), 0);
}

#[test]
fn wav_input_corpus() {
    let results = replay("wav_input", cardpbx::audiofile::fuzz_check_wav);
    // Each seed is accepted (with its sample count) or rejected, as its name says.
    for (name, r) in &results {
        let expect_ok =
            !["stereo", "16k", "truncated-header", "missing", "empty", "not-wav", "float"]
                .iter()
                .any(|bad| name.contains(bad));
        assert_eq!(r.is_some(), expect_ok, "{name}: {r:?}");
    }
}
