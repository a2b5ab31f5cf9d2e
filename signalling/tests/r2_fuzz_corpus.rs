//! Replays the R2 fuzz corpus (`fuzz/corpus/r2`) through `r2::fuzz_check` on stable, so the
//! seeds and any crash reproducers saved there stay fixed.

use std::path::Path;

#[test]
fn r2_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/r2");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/r2 exists") {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            cardpbx_signalling::r2::fuzz_check(&data);
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} seeds in {}", dir.display());
}
