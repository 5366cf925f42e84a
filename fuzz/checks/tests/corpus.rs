//! Replays every kept fuzz input (`fuzz/corpus/<target>/`) through its target's checks, on
//! stable Rust: the corpora, and the crashes fixed since, stay regressions in every test run.

use std::path::PathBuf;

#[test]
fn every_corpus_input_passes_its_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for &(target, check) in uplink_fuzz_checks::TARGETS {
        let folder = root.join(target);
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", folder.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let input = std::fs::read(&path).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| check(&input));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its checks",
                path.display()
            );
            replayed += 1;
        }
        assert!(replayed > 0, "{target}: the corpus is empty");
    }
}
