//! The hub on its PostgreSQL store, served over TLS by the test kit: the security core's
//! everyday path — sign-in, consent, code, token, a grant check on every request, a revoke on
//! the settings page refused at once — and a restart that finds everything where it was.

use reqwest::StatusCode;
use uplink_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_postgres_grants_revokes_at_once_and_keeps_its_state_across_a_restart() {
    let server = postgres::shared();
    let mut hub = TestHub::start_on_database(&server.fresh_database()).await;
    let historian = hub
        .hub
        .add_source(hub.plant_id(), "historian", "")
        .await
        .unwrap();
    let lab = hub.hub.add_source(hub.plant_id(), "lab", "").await.unwrap();
    let tokens = hub.grant_public(&[&historian.id, &lab.id]).await;
    assert_eq!(
        hub.access(&tokens.access, &historian.id).await,
        StatusCode::OK
    );

    let session = hub.settings_session().await;
    hub.revoke_on_settings_page(&session, PUBLIC_APP, Some(&historian.id))
        .await;
    assert_eq!(
        hub.access(&tokens.access, &historian.id).await,
        StatusCode::FORBIDDEN,
        "the revoke is read from the database on the next request"
    );
    assert_eq!(hub.access(&tokens.access, &lab.id).await, StatusCode::OK);

    hub.kill();
    hub.restart().await;
    assert_eq!(
        hub.access(&tokens.access, &lab.id).await,
        StatusCode::OK,
        "the grant, the sign-in and the key file survive the restart"
    );
    assert_eq!(
        hub.access(&tokens.access, &historian.id).await,
        StatusCode::FORBIDDEN,
        "and so does the revoke"
    );
    assert!(
        !hub.data_dir().join("hub.db").exists(),
        "the state is in PostgreSQL, not in a SQLite file"
    );
}
