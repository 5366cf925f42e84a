//! Keeps the UI's TypeScript bindings (`ui/src/lib/bindings/`) equal to the Rust types.
//! Run with `UPDATE_BINDINGS=1` to rewrite them after changing a type.

use std::path::PathBuf;

use ts_rs::TS;

use crate::{AppInfo, ControlError, HostKind};

fn check<T: TS + 'static>() -> Option<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/bindings");
    let path = dir.join(format!("{}.ts", T::name()));
    let expected = T::export_to_string().expect("type exports to TypeScript");
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::create_dir_all(&dir).expect("bindings folder can be created");
        std::fs::write(&path, &expected).expect("binding can be written");
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(found) if found == expected => None,
        Ok(_) => Some(format!("{} differs from the Rust type", path.display())),
        Err(e) => Some(format!("{} cannot be read: {e}", path.display())),
    }
}

#[test]
fn typescript_bindings_match_the_rust_types() {
    let drift: Vec<String> = [
        check::<AppInfo>(),
        check::<HostKind>(),
        check::<ControlError>(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        drift.is_empty(),
        "UI bindings out of date (run `UPDATE_BINDINGS=1 cargo test -p uplink-control bindings`):\n{}",
        drift.join("\n")
    );
}
