//! Keeps the UI's TypeScript bindings (`ui/src/lib/bindings/`) equal to the Rust types.
//! Run with `UPDATE_BINDINGS=1` to rewrite them after changing a type.

use std::path::PathBuf;

use ts_rs::TS;

use uplink_connector::activity::ActivityRecord;
use uplink_connector::diagnostics::{
    CheckId, DiagnosticCheck, DiagnosticsExport, DiagnosticsReport, Outcome,
};
use uplink_connector::form::{Constraints, FieldError, FieldSchema, FieldType, FormSchema};
use uplink_connector::policy::LocalPolicy;
use uplink_connector::runtime::{
    ConnectorStatus, ConsentedApp, LinkState, SkippedTransport, SourceStatus,
};
use uplink_connector::{Health, HealthIssue, HealthState, SourceConfig};

use crate::{
    AppInfo, ControlError, ControlStatus, HostKind, LinkEvent, LocalHub, PendingSignIn,
    SampleValue, SourceTest, TransportPreference,
};

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
        check::<ControlStatus>(),
        check::<TransportPreference>(),
        check::<LinkEvent>(),
        check::<LocalHub>(),
        check::<PendingSignIn>(),
        check::<SourceTest>(),
        check::<SampleValue>(),
        check::<ConnectorStatus>(),
        check::<LinkState>(),
        check::<SkippedTransport>(),
        check::<SourceStatus>(),
        check::<ConsentedApp>(),
        check::<Health>(),
        check::<HealthState>(),
        check::<HealthIssue>(),
        check::<LocalPolicy>(),
        check::<ActivityRecord>(),
        check::<FormSchema>(),
        check::<FieldSchema>(),
        check::<FieldType>(),
        check::<Constraints>(),
        check::<FieldError>(),
        check::<SourceConfig>(),
        check::<DiagnosticsReport>(),
        check::<DiagnosticCheck>(),
        check::<CheckId>(),
        check::<Outcome>(),
        check::<DiagnosticsExport>(),
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
