//! The store's conformance suite: what every backend must do, written once against the room
//! traits and run against each backend.
//!
//! Every test below is an `async fn(&dyn Store)` that starts from an empty store. The
//! `conformance!` macro turns the list of them into one `#[tokio::test]` per test in a module
//! named after the backend, opening a fresh store for each. A backend joins the suite with one
//! line beside the others (just after the macro):
//!
//! ```text
//! conformance!(sqlite, super::open_sqlite());
//! conformance!(postgres, crate::store::postgres::open_for_test());
//! ```
//!
//! where the expression (evaluated inside the generated module, hence `super::`) is a future
//! of `(guard, store)`: the guard (a temporary folder, a scratch database) lives as long as
//! the test, and the store is any type implementing every room. A test function missing from
//! the list is dead code, which clippy (warnings denied) refuses, so none is skipped by
//! forgetting.
//!
//! Backend-specific behaviour (SQLite's file modes, migrations, polling for other processes'
//! changes, feed entries it cannot parse) is tested next to that backend's code.

use std::collections::BTreeMap;

use super::prelude::*;
use super::{
    App, AuditEvent, AuthorizationRequest, CodeGrant, CodeRedemption, ConnectorClaim, DataSource,
    DebitOutcome, DebitRequest, DeviceAuthorization, DevicePoll, LeaseCaps, LeaseOutcome,
    LinkAuthority, LoginSession, RefundOutcome, RefundRequest, Rotation, SqliteStore, StreamLease,
    TokenKeyRecord, TxKind, User, WriteClaim, WriteKey,
};
use crate::revocation::Revocation;

/// Opens a fresh SQLite store the way the hub does (`hub.db` in a private `hub` folder: the
/// hub refuses a data folder that is not 0700, and a temporary directory is not).
async fn open_sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::hub::open_store(&dir.path().join("hub"))
        .await
        .unwrap();
    (dir, store)
}

macro_rules! conformance {
    ($backend:ident, $open:expr) => {
        conformance!(@suite $backend, $open;
            usernames_are_unique_regardless_of_case,
            users_are_found_by_id_and_listed_by_name,
            a_profile_is_set_cleared_and_left_alone_field_by_field,
            a_new_password_ends_sessions_and_sign_ins,
            apps_round_trip_and_client_ids_are_unique,
            removing_an_app_cuts_its_grants_families_and_codes,
            connectors_belong_to_their_owner,
            a_registering_connector_claims_only_its_own_id,
            a_new_sign_in_takes_over_a_connector_only_from_one_no_longer_valid,
            removing_a_connector_cuts_its_grants_and_sign_in_and_retires_its_id,
            announced_sources_replace_the_list_and_keep_their_ids,
            a_renamed_source_keeps_its_id_and_grants,
            source_names_are_unique_per_connector,
            grants_are_checked_per_source_and_family_and_revoke_is_immediate,
            a_new_consent_replaces_the_scopes_and_use_is_recorded,
            revoking_one_of_two_sources_keeps_the_sign_in,
            an_authorization_request_is_bound_once_and_finished_once,
            a_code_is_spent_once_and_its_replay_revokes_the_family,
            concurrent_redemptions_of_one_code_yield_one_family,
            refresh_reuse_revokes_the_family,
            only_a_live_refresh_token_counts,
            sign_ins_list_live_families_newest_first,
            a_device_authorization_is_approved_and_redeemed_once,
            a_denied_or_expired_device_authorization_ends,
            a_session_lives_until_it_expires_or_ends,
            token_keys_are_listed_newest_first_and_forgotten_entirely,
            the_change_feed_holds_each_change_in_commit_order,
            the_audit_trail_reads_newest_first_up_to_the_limit,
            the_operator_credits_and_debits_never_below_zero,
            a_debit_needs_a_live_grant_and_sign_in_and_stays_within_balance_and_limit,
            an_idempotency_key_returns_the_first_debit_and_refuses_another,
            a_refund_is_at_most_what_is_left_within_the_window,
            racing_debits_never_overdraw,
            a_write_key_is_claimed_once_and_answers_its_retries,
            stream_leases_hold_each_cap_and_lapse_unless_renewed,
            racing_stream_leases_never_exceed_a_cap,
            writes_arriving_together_each_apply_once_and_keep_their_answers,
        );
    };
    (@suite $backend:ident, $open:expr; $($test:ident),+ $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let (_guard, store) = $open.await;
                    super::$test(&store).await;
                }
            )+
        }
    };
}

conformance!(sqlite, super::open_sqlite());
conformance!(postgres, crate::store::postgres::open_for_test());

// ---------------------------------------------------------------------------------------------
// Shared fixtures

const APP: &str = "app1";
const REDIRECT: &str = "https://app.example/cb";

/// Ada, her connector `con_1` (provisioned with a credential) with sources `historian` and
/// `lab`, and the public app `app1`.
struct Seed {
    ada: User,
    historian: DataSource,
    lab: DataSource,
}

async fn seeded(store: &dyn Store) -> Seed {
    let ada = store.create_user("ada", "hash").await.unwrap();
    store
        .create_connector("con_1", &ada.id, "Plant A", b"digest", 1)
        .await
        .unwrap();
    let historian = store.add_source("con_1", "historian", "", 1).await.unwrap();
    let lab = store.add_source("con_1", "lab", "", 1).await.unwrap();
    store.create_app(&app(APP, "Dashboard")).await.unwrap();
    Seed {
        ada,
        historian,
        lab,
    }
}

fn app(client_id: &str, name: &str) -> App {
    App {
        client_id: client_id.into(),
        name: name.into(),
        confidential: false,
        secret_digest: None,
        redirect_uris: vec![REDIRECT.into()],
        scopes: vec!["data.read".into()],
        created_at: 1,
    }
}

fn code(user: &User) -> CodeGrant {
    CodeGrant {
        app_id: APP.into(),
        user_id: user.id.clone(),
        redirect_uri: REDIRECT.into(),
        scopes: vec!["data.read".into()],
        code_challenge: "c".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: 1,
        created_at: 1,
        expires_at: 100,
    }
}

/// Opens a token family for `user` and `app1` the way the code flow does, at `now`.
async fn open_family(store: &dyn Store, user: &User, digest: &[u8], now: i64) -> String {
    store.create_code(digest, &code(user)).await.unwrap();
    match store.redeem_code(digest, now).await.unwrap() {
        CodeRedemption::Fresh { family_id, .. } => family_id,
        other => panic!("a fresh code must redeem, got {other:?}"),
    }
}

async fn grant_read(store: &dyn Store, user: &User, sources: &[&DataSource], now: i64) {
    let ids: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
    store
        .grant(&user.id, APP, &ids, &["data.read".into()], now)
        .await
        .unwrap();
}

async fn revoked_at(store: &dyn Store, family_id: &str) -> Option<i64> {
    store
        .family(family_id)
        .await
        .unwrap()
        .expect("the family exists")
        .revoked_at
}

/// Every change committed after `after`, read through to the end of the feed.
async fn changes_since(store: &dyn Store, after: i64) -> Vec<Revocation> {
    store.changes_after(after).await.unwrap().changes
}

fn family_change(family_id: &str) -> Revocation {
    Revocation::TokenFamily {
        family_id: family_id.to_owned(),
    }
}

/// Registers connector `con_site` for `owner` with the sign-in `family_id`.
async fn claim_site(store: &dyn Store, owner: &User, family_id: &str, now: i64) -> ConnectorClaim {
    store
        .claim_connector(
            "con_site",
            &owner.id,
            "Site",
            "uplink 0.1",
            LinkAuthority::SignIn { family_id },
            now,
        )
        .await
        .unwrap()
}

fn descriptor(name: &str, kind: &str) -> uplink_model::DataSourceDescriptor {
    uplink_model::DataSourceDescriptor {
        name: name.into(),
        kind: kind.into(),
        description: format!("{name} source"),
        capabilities: uplink_model::Capabilities::all_from_raw(),
    }
}

// ---------------------------------------------------------------------------------------------
// Users

async fn usernames_are_unique_regardless_of_case(store: &dyn Store) {
    store.create_user("Ada", "h").await.unwrap();
    let err = store.create_user("ada", "h").await.unwrap_err();
    assert_eq!(err.code(), "conflict");
    let (user, hash) = store.user_credentials("ADA").await.unwrap().unwrap();
    assert_eq!((user.username.as_str(), hash.as_str()), ("Ada", "h"));
    assert_eq!(store.users().await.unwrap().len(), 1);
}

async fn users_are_found_by_id_and_listed_by_name(store: &dyn Store) {
    let cy = store.create_user("cy", "h1").await.unwrap();
    let ada = store.create_user("ada", "h2").await.unwrap();
    let bob = store.create_user("bob", "h3").await.unwrap();
    assert_ne!(ada.id, bob.id);
    assert_eq!(store.user(&cy.id).await.unwrap(), Some(cy.clone()));
    assert_eq!(store.user("usr_nobody").await.unwrap(), None);
    assert_eq!(store.users().await.unwrap(), vec![ada, bob, cy]);
    assert_eq!(store.user_credentials("nobody").await.unwrap(), None);
}

async fn a_profile_is_set_cleared_and_left_alone_field_by_field(store: &dyn Store) {
    let ada = store.create_user("ada", "h").await.unwrap();
    assert_eq!((ada.display_name.clone(), ada.email.clone()), (None, None));
    let set = store
        .set_profile("ADA", Some("Ada Lovelace"), Some("ada@example.com"))
        .await
        .unwrap()
        .expect("found regardless of case");
    assert_eq!(set.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(set.email.as_deref(), Some("ada@example.com"));
    assert_eq!(store.user(&ada.id).await.unwrap(), Some(set.clone()));
    let kept = store
        .set_profile("ada", None, Some(""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.display_name.as_deref(),
        Some("Ada Lovelace"),
        "None leaves it"
    );
    assert_eq!(kept.email, None, "empty clears it");
    let (user, _) = store.user_credentials("ada").await.unwrap().unwrap();
    assert_eq!(user, kept);
    assert_eq!(
        store.set_profile("nobody", Some("x"), None).await.unwrap(),
        None
    );
}

async fn a_new_password_ends_sessions_and_sign_ins(store: &dyn Store) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    let session = LoginSession {
        user_id: seed.ada.id.clone(),
        expires_at: 1_000,
        signed_in_at: 5,
    };
    store.create_session(b"s1", &session, 5).await.unwrap();
    let start = store.change_cursor().await.unwrap();

    let revoked = store.set_password_hash("ada", "new-hash", 7).await.unwrap();
    assert_eq!(revoked, Some(vec![family.clone()]));
    assert_eq!(store.session(b"s1", 6).await.unwrap(), None);
    assert_eq!(revoked_at(store, &family).await, Some(7));
    let (_, hash) = store.user_credentials("ada").await.unwrap().unwrap();
    assert_eq!(hash, "new-hash");
    assert_eq!(
        changes_since(store, start).await,
        vec![family_change(&family)]
    );
    assert_eq!(
        store.set_password_hash("nobody", "h", 8).await.unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Apps

async fn apps_round_trip_and_client_ids_are_unique(store: &dyn Store) {
    let confidential = App {
        confidential: true,
        secret_digest: Some(vec![1, 2, 3]),
        redirect_uris: vec![REDIRECT.into(), "http://127.0.0.1/cb".into()],
        scopes: vec!["data.read".into(), "data.raw".into()],
        ..app("zeta", "Zeta reports")
    };
    store.create_app(&confidential).await.unwrap();
    store.create_app(&app("alpha", "Alpha")).await.unwrap();
    assert_eq!(store.app("zeta").await.unwrap(), Some(confidential.clone()));
    let err = store.create_app(&app("zeta", "Again")).await.unwrap_err();
    assert_eq!(err.code(), "conflict");
    let names: Vec<String> = store
        .apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["Alpha", "Zeta reports"]);

    let uris = vec!["https://new.example/cb".to_owned()];
    assert!(store.set_app_redirect_uris("zeta", &uris).await.unwrap());
    assert_eq!(
        store.app("zeta").await.unwrap().unwrap().redirect_uris,
        uris
    );
    assert!(!store.set_app_redirect_uris("nope", &uris).await.unwrap());
    assert_eq!(store.app("nope").await.unwrap(), None);
}

async fn removing_an_app_cuts_its_grants_families_and_codes(store: &dyn Store) {
    let seed = seeded(store).await;
    grant_read(store, &seed.ada, &[&seed.historian], 5).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    store.create_code(b"c2", &code(&seed.ada)).await.unwrap();
    assert_eq!(store.grants_of(&seed.ada.id).await.unwrap().len(), 1);
    let start = store.change_cursor().await.unwrap();

    assert!(store.remove_app(APP, 6).await.unwrap());
    assert!(store.grants_of(&seed.ada.id).await.unwrap().is_empty());
    assert_eq!(revoked_at(store, &family).await, Some(6));
    assert_eq!(
        store.redeem_code(b"c2", 7).await.unwrap(),
        CodeRedemption::Unknown,
        "an unspent code of a removed app is gone"
    );
    assert_eq!(store.app(APP).await.unwrap(), None);
    assert_eq!(
        changes_since(store, start).await,
        vec![
            Revocation::AppRemoved { app_id: APP.into() },
            family_change(&family),
        ]
    );
    assert!(!store.remove_app(APP, 8).await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Connectors and data sources

async fn connectors_belong_to_their_owner(store: &dyn Store) {
    let seed = seeded(store).await;
    let bob = store.create_user("bob", "h").await.unwrap();
    let err = store
        .create_connector("con_x", "usr_nobody", "X", b"d", 2)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
    let bobs = store
        .create_connector("con_2", &bob.id, "Bob's plant", b"d2", 2)
        .await
        .unwrap();
    assert_eq!(bobs.owner_name, "bob");

    let ids = |list: Vec<super::Connector>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.connectors(None).await.unwrap()),
        ["con_2", "con_1"]
    );
    assert_eq!(
        ids(store.connectors(Some(&bob.id)).await.unwrap()),
        ["con_2"]
    );
    assert_eq!(
        ids(store.connectors(Some(&seed.ada.id)).await.unwrap()),
        ["con_1"]
    );
    let con_1 = store.connector("con_1").await.unwrap().unwrap();
    assert_eq!(
        (
            con_1.owner_id.as_str(),
            con_1.owner_name.as_str(),
            con_1.name.as_str()
        ),
        (seed.ada.id.as_str(), "ada", "Plant A")
    );
    assert_eq!(store.connector("con_nope").await.unwrap(), None);
    let (connector, digest) = store.connector_credential("con_2").await.unwrap().unwrap();
    assert_eq!((connector, digest), (bobs, b"d2".to_vec()));
    assert_eq!(store.connector_credential("con_nope").await.unwrap(), None);
}

async fn a_registering_connector_claims_only_its_own_id(store: &dyn Store) {
    let seed = seeded(store).await;
    let ada = seed.ada;
    let bob = store.create_user("bob", "h").await.unwrap();
    let claim = |id: &'static str, owner: String, authority: LinkAuthority<'static>| async move {
        store
            .claim_connector(id, &owner, "Site PC", "uplink 0.1", authority, 3)
            .await
            .unwrap()
    };
    let mine = LinkAuthority::SignIn { family_id: "fam_a" };
    let credential = LinkAuthority::Credential;
    assert_eq!(
        claim("con_new", ada.id.clone(), credential).await,
        ConnectorClaim::Missing
    );
    assert!(
        matches!(claim("con_new", ada.id.clone(), mine).await, ConnectorClaim::Created(c) if c.owner_id == ada.id)
    );
    assert!(
        matches!(claim("con_new", ada.id.clone(), mine).await, ConnectorClaim::Updated(c) if c.name == "Site PC")
    );
    assert_eq!(
        claim("con_new", bob.id.clone(), mine).await,
        ConnectorClaim::OwnedByAnother
    );
    // A connector provisioned with a credential is reachable only with it.
    assert_eq!(
        claim("con_1", ada.id.clone(), mine).await,
        ConnectorClaim::NeedsCredential
    );
    assert!(matches!(
        claim("con_1", ada.id.clone(), credential).await,
        ConnectorClaim::Updated(c) if c.name == "Site PC"
    ));
    let (_, digest) = store
        .connector_credential("con_new")
        .await
        .unwrap()
        .unwrap();
    assert!(
        digest.is_empty(),
        "a self-registered connector has no credential"
    );
    assert_eq!(
        store
            .connector_credential("con_1")
            .await
            .unwrap()
            .unwrap()
            .1,
        b"digest".to_vec()
    );
}

async fn a_new_sign_in_takes_over_a_connector_only_from_one_no_longer_valid(store: &dyn Store) {
    let seed = seeded(store).await;
    let ada = &seed.ada;
    let first = open_family(store, ada, b"c1", 5).await;
    store
        .create_refresh_token(b"r1", &first, 5, 50)
        .await
        .unwrap();
    let second = open_family(store, ada, b"c2", 6).await;
    store
        .create_refresh_token(b"r2", &second, 6, 500)
        .await
        .unwrap();
    assert!(matches!(
        claim_site(store, ada, &first, 7).await,
        ConnectorClaim::Created(_)
    ));
    assert_eq!(
        claim_site(store, ada, &second, 8).await,
        ConnectorClaim::OtherSignIn,
        "the creating sign-in can still obtain tokens"
    );
    assert_eq!(revoked_at(store, &first).await, None);
    // Once the first sign-in's refresh token expired, the second takes over and the first
    // is revoked.
    assert!(matches!(
        claim_site(store, ada, &second, 60).await,
        ConnectorClaim::Updated(_)
    ));
    assert_eq!(revoked_at(store, &first).await, Some(60));
    let sign_ins = store.sign_ins_of(&ada.id, 60).await.unwrap();
    assert_eq!(sign_ins.len(), 1);
    assert_eq!(sign_ins[0].family_id, second);
    assert_eq!(sign_ins[0].connector_name.as_deref(), Some("Site"));
}

async fn removing_a_connector_cuts_its_grants_and_sign_in_and_retires_its_id(store: &dyn Store) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    let claimed = claim_site(store, &seed.ada, &family, 6).await;
    assert!(matches!(claimed, ConnectorClaim::Created(_)));
    let source = store.add_source("con_site", "meter", "", 6).await.unwrap();
    grant_read(store, &seed.ada, &[&source, &seed.historian], 7).await;
    let start = store.change_cursor().await.unwrap();

    assert_eq!(
        store.remove_connector("con_site", 8).await.unwrap(),
        Some(vec![family.clone()])
    );
    assert_eq!(store.connector("con_site").await.unwrap(), None);
    assert_eq!(store.source(&source.id).await.unwrap(), None);
    let left: Vec<String> = store
        .grants_of(&seed.ada.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.source_id)
        .collect();
    assert_eq!(
        left,
        std::slice::from_ref(&seed.historian.id),
        "other connectors' grants stay"
    );
    assert_eq!(revoked_at(store, &family).await, Some(8));
    assert_eq!(
        changes_since(store, start).await,
        vec![
            Revocation::ConnectorRemoved {
                connector_id: "con_site".into()
            },
            family_change(&family),
        ]
    );
    let again = claim_site(store, &seed.ada, "fam_other", 9).await;
    assert_eq!(again, ConnectorClaim::Removed);
    assert_eq!(store.remove_connector("con_site", 9).await.unwrap(), None);
}

async fn announced_sources_replace_the_list_and_keep_their_ids(store: &dyn Store) {
    let seed = seeded(store).await;
    let (user, historian, lab) = (seed.ada, seed.historian, seed.lab);
    let first = store
        .announce_sources(
            "con_1",
            &[
                descriptor("historian", "sqlite"),
                descriptor("sim", "simulated"),
            ],
            &BTreeMap::new(),
            4,
        )
        .await
        .unwrap();
    assert_eq!(first[0].id, historian.id, "an existing source keeps its id");
    assert_eq!(first[1].kind, "simulated");
    let all = store.sources_owned_by(&user.id).await.unwrap();
    let by_name = |n: &str| all.iter().find(|s| s.name == n).unwrap().clone();
    assert!(by_name("historian").available);
    assert_eq!(by_name("historian").kind, "sqlite");
    assert_eq!(by_name("historian").description, "historian source");
    assert!(by_name("historian").capabilities.unwrap().raw);
    assert!(
        !by_name("lab").available,
        "a source no longer announced is unavailable"
    );
    assert_eq!(by_name("lab").id, lab.id);
    assert_eq!(by_name("sim"), first[1]);
    grant_read(store, &user, &[&historian], 5).await;
    let grants = store.connector_grants("con_1").await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (grants[0].app_name.as_str(), grants[0].source_name.as_str()),
        ("Dashboard", "historian")
    );
    assert_eq!(grants[0].user_id, user.id);
    assert!(
        store
            .connector_revoked_apps("con_1")
            .await
            .unwrap()
            .is_empty()
    );
    store.revoke(&user.id, APP, None, 6).await.unwrap();
    assert!(store.connector_grants("con_1").await.unwrap().is_empty());
    let revoked = store.connector_revoked_apps("con_1").await.unwrap();
    assert_eq!(
        revoked
            .iter()
            .map(|a| (a.app_id.as_str(), a.app_name.as_str(), a.revoked_at))
            .collect::<Vec<_>>(),
        vec![(APP, "Dashboard", 6)],
        "a revoked app stays known to the connector"
    );
    let err = store
        .announce_sources("con_nope", &[descriptor("x", "csv")], &BTreeMap::new(), 7)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}

async fn a_renamed_source_keeps_its_id_and_grants(store: &dyn Store) {
    let seed = seeded(store).await;
    let (user, historian, lab) = (seed.ada, seed.historian, seed.lab);
    let family = open_family(store, &user, b"c1", 4).await;
    grant_read(store, &user, &[&historian, &lab], 4).await;
    let keys = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, k)| ((*n).to_owned(), (*k).to_owned()))
            .collect()
    };
    // The first keys adopt the sources of their names (added before keys existed).
    let first = store
        .announce_sources(
            "con_1",
            &[descriptor("historian", "csv"), descriptor("lab", "csv")],
            &keys(&[("historian", "k-hist"), ("lab", "k-lab")]),
            5,
        )
        .await
        .unwrap();
    assert_eq!(
        (first[0].id.as_str(), first[1].id.as_str()),
        (historian.id.as_str(), lab.id.as_str())
    );
    // Renamed, and two names swapped in one announcement: each keeps its id and grants.
    let renamed = store
        .announce_sources(
            "con_1",
            &[
                descriptor("plant-historian", "csv"),
                descriptor("lab", "csv"),
            ],
            &keys(&[("plant-historian", "k-hist"), ("lab", "k-lab")]),
            6,
        )
        .await
        .unwrap();
    assert_eq!(renamed[0].id, historian.id, "a renamed source keeps its id");
    let swapped = store
        .announce_sources(
            "con_1",
            &[
                descriptor("lab", "csv"),
                descriptor("plant-historian", "csv"),
            ],
            &keys(&[("lab", "k-hist"), ("plant-historian", "k-lab")]),
            7,
        )
        .await
        .unwrap();
    assert_eq!(
        (swapped[0].id.as_str(), swapped[1].id.as_str()),
        (historian.id.as_str(), lab.id.as_str())
    );
    for source in [&historian.id, &lab.id] {
        assert!(
            store
                .active_grant(&user.id, APP, source, &family)
                .await
                .unwrap()
                .is_some(),
            "the grant follows the source's key"
        );
    }
    let names: Vec<(String, String)> = store
        .connector_grants("con_1")
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.source_id, g.source_name))
        .collect();
    assert!(names.contains(&(historian.id.clone(), "lab".to_owned())));
    assert!(names.contains(&(lab.id.clone(), "plant-historian".to_owned())));
    // A new source under a removed one's name is another source: no grant carries over, and
    // the removed one stays (unavailable, under a name of its own).
    let fresh = store
        .announce_sources(
            "con_1",
            &[descriptor("lab", "csv")],
            &keys(&[("lab", "k-new")]),
            8,
        )
        .await
        .unwrap();
    assert_ne!(fresh[0].id, historian.id);
    assert!(
        store
            .active_grant(&user.id, APP, &fresh[0].id, &family)
            .await
            .unwrap()
            .is_none()
    );
    let all = store.sources_owned_by(&user.id).await.unwrap();
    let old = all.iter().find(|s| s.id == historian.id).unwrap();
    assert_eq!((old.name.as_str(), old.available), ("lab (removed)", false));
}

async fn source_names_are_unique_per_connector(store: &dyn Store) {
    let seed = seeded(store).await;
    let err = store
        .add_source("con_1", "lab", "again", 2)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conflict");
    store
        .create_connector("con_0", &seed.ada.id, "Annex", b"d", 2)
        .await
        .unwrap();
    let annex_lab = store.add_source("con_0", "lab", "", 2).await.unwrap();
    assert_eq!(
        store
            .add_source("con_nope", "x", "", 2)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    let order: Vec<(String, String)> = store
        .sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.connector_name, s.name))
        .collect();
    assert_eq!(
        order,
        [
            ("Annex".into(), "lab".into()),
            ("Plant A".into(), "historian".into()),
            ("Plant A".into(), "lab".into()),
        ]
    );
    assert_eq!(store.source(&annex_lab.id).await.unwrap(), Some(annex_lab));
    assert_eq!(store.source("src_nope").await.unwrap(), None);
    let bob = store.create_user("bob", "h").await.unwrap();
    assert!(store.sources_owned_by(&bob.id).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Grants

async fn grants_are_checked_per_source_and_family_and_revoke_is_immediate(store: &dyn Store) {
    let Seed {
        ada: user,
        historian: a,
        lab: b,
    } = seeded(store).await;
    let family_id = open_family(store, &user, b"d1", 5).await;
    grant_read(store, &user, &[&a], 5).await;
    assert!(
        store
            .active_grant(&user.id, APP, &a.id, &family_id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .active_grant(&user.id, APP, &b.id, &family_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .active_grant(&user.id, APP, &a.id, "fam_other")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.revoke(&user.id, APP, Some(&a.id), 9).await.unwrap(),
        (1, vec![family_id.clone()]),
        "the last grant gone, the family goes and is named"
    );
    assert!(
        store
            .active_grant(&user.id, APP, &a.id, &family_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(revoked_at(store, &family_id).await, Some(9));
}

async fn a_new_consent_replaces_the_scopes_and_use_is_recorded(store: &dyn Store) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    grant_read(store, &seed.ada, &[&seed.historian], 5).await;
    let wider = ["data.read".to_owned(), "data.raw".to_owned()];
    store
        .grant(
            &seed.ada.id,
            APP,
            std::slice::from_ref(&seed.historian.id),
            &wider,
            6,
        )
        .await
        .unwrap();
    let active = store
        .active_grant(&seed.ada.id, APP, &seed.historian.id, &family)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.scopes, wider);
    assert_eq!(active.last_used_at, None);
    let views = store.grants_of(&seed.ada.id).await.unwrap();
    assert_eq!(views.len(), 1, "one grant per source, renewed in place");
    assert_eq!(
        (views[0].granted_at, views[0].connector_name.as_str()),
        (6, "Plant A")
    );

    store.touch_grant(active.id, 9).await.unwrap();
    let touched = store
        .active_grant(&seed.ada.id, APP, &seed.historian.id, &family)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.last_used_at, Some(9));
    assert_eq!(
        store.grants_of(&seed.ada.id).await.unwrap()[0].last_used_at,
        Some(9)
    );
}

async fn revoking_one_of_two_sources_keeps_the_sign_in(store: &dyn Store) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    grant_read(store, &seed.ada, &[&seed.historian, &seed.lab], 5).await;
    let start = store.change_cursor().await.unwrap();
    assert_eq!(
        store
            .revoke(&seed.ada.id, APP, Some(&seed.historian.id), 6)
            .await
            .unwrap(),
        (1, vec![])
    );
    assert_eq!(revoked_at(store, &family).await, None);
    assert!(
        store
            .active_grant(&seed.ada.id, APP, &seed.lab.id, &family)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.revoked_apps_of(&seed.ada.id).await.unwrap(),
        vec![],
        "an app with a grant left is not listed as revoked"
    );
    assert_eq!(
        store.revoke(&seed.ada.id, APP, None, 7).await.unwrap(),
        (1, vec![family.clone()])
    );
    let revoked = store.revoked_apps_of(&seed.ada.id).await.unwrap();
    assert_eq!(
        revoked
            .iter()
            .map(|a| (a.app_id.as_str(), a.revoked_at))
            .collect::<Vec<_>>(),
        vec![(APP, 7)],
        "an app with no grant left stays listed as revoked, with its last revoke"
    );
    assert_eq!(
        changes_since(store, start).await,
        vec![
            Revocation::Grant {
                user_id: seed.ada.id.clone(),
                app_id: APP.into(),
                source_id: Some(seed.historian.id.clone()),
            },
            Revocation::Grant {
                user_id: seed.ada.id.clone(),
                app_id: APP.into(),
                source_id: None,
            },
            family_change(&family),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Authorization requests and codes

async fn an_authorization_request_is_bound_once_and_finished_once(store: &dyn Store) {
    let seed = seeded(store).await;
    let request = AuthorizationRequest {
        id: "txn_1".into(),
        app_id: APP.into(),
        redirect_uri: REDIRECT.into(),
        scopes: vec!["data.read".into(), "data.raw".into()],
        state: Some("xyz".into()),
        code_challenge: "challenge".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        suggested_limit: Some(300),
        user_id: None,
        created_at: 3,
        expires_at: 600,
        finished_at: None,
    };
    store.create_authorization_request(&request).await.unwrap();
    assert_eq!(
        store.authorization_request("txn_1").await.unwrap(),
        Some(request.clone())
    );
    assert_eq!(store.authorization_request("txn_nope").await.unwrap(), None);

    assert!(
        store
            .bind_authorization_request("txn_1", &seed.ada.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .bind_authorization_request("txn_1", "usr_bob")
            .await
            .unwrap(),
        "bound to the first user who saw it"
    );
    assert!(
        store
            .bind_authorization_request("txn_1", &seed.ada.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .bind_authorization_request("txn_nope", &seed.ada.id)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_authorization_request("txn_1", 9)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_authorization_request("txn_1", 10)
            .await
            .unwrap()
    );
    let stored = store.authorization_request("txn_1").await.unwrap().unwrap();
    assert_eq!(
        (stored.user_id.as_deref(), stored.finished_at),
        (Some(seed.ada.id.as_str()), Some(9))
    );
}

async fn a_code_is_spent_once_and_its_replay_revokes_the_family(store: &dyn Store) {
    let seed = seeded(store).await;
    store.create_code(b"d1", &code(&seed.ada)).await.unwrap();
    let CodeRedemption::Fresh { grant, family_id } = store.redeem_code(b"d1", 5).await.unwrap()
    else {
        panic!("first redemption must succeed");
    };
    assert_eq!(grant, code(&seed.ada));
    let family = store.family(&family_id).await.unwrap().unwrap();
    assert_eq!(
        (
            family.user_id.as_str(),
            family.app_id.as_str(),
            family.revoked_at
        ),
        (seed.ada.id.as_str(), APP, None)
    );
    assert_eq!(family.scopes, ["data.read"]);
    assert_eq!(
        store.redeem_code(b"d1", 6).await.unwrap(),
        CodeRedemption::Replayed
    );
    assert_eq!(revoked_at(store, &family_id).await, Some(6));
    assert_eq!(
        store.redeem_code(b"nope", 6).await.unwrap(),
        CodeRedemption::Unknown
    );
}

async fn concurrent_redemptions_of_one_code_yield_one_family(store: &dyn Store) {
    let seed = seeded(store).await;
    store.create_code(b"d1", &code(&seed.ada)).await.unwrap();
    let outcomes = futures::future::join_all((0..8).map(|_| store.redeem_code(b"d1", 5))).await;
    let fresh = outcomes
        .into_iter()
        .map(Result::unwrap)
        .filter(|o| matches!(o, CodeRedemption::Fresh { .. }))
        .count();
    assert_eq!(fresh, 1, "exactly one redemption wins");
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens and families

async fn refresh_reuse_revokes_the_family(store: &dyn Store) {
    let seed = seeded(store).await;
    let family_id = open_family(store, &seed.ada, b"d1", 5).await;
    store
        .create_refresh_token(b"r1", &family_id, 5, 1000)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh_token(b"r1", b"r2", 6, 1000)
            .await
            .unwrap(),
        Rotation::Rotated(f) if f.id == family_id
    ));
    let start = store.change_cursor().await.unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(b"r1", b"r3", 7, 1000)
            .await
            .unwrap(),
        Rotation::Reused
    );
    assert_eq!(revoked_at(store, &family_id).await, Some(7));
    assert_eq!(
        changes_since(store, start).await,
        vec![family_change(&family_id)]
    );
    assert_eq!(
        store
            .rotate_refresh_token(b"r2", b"r4", 8, 1000)
            .await
            .unwrap(),
        Rotation::Invalid,
        "the successor dies with its family"
    );
    assert_eq!(
        store
            .rotate_refresh_token(b"unknown", b"r5", 8, 1000)
            .await
            .unwrap(),
        Rotation::Invalid
    );
}

async fn only_a_live_refresh_token_counts(store: &dyn Store) {
    let seed = seeded(store).await;
    let family_id = open_family(store, &seed.ada, b"d1", 5).await;
    store
        .create_refresh_token(b"r1", &family_id, 5, 100)
        .await
        .unwrap();
    let live = |digest: &'static [u8], now: i64| async move {
        store
            .live_refresh_token(digest, now)
            .await
            .unwrap()
            .map(|f| f.id)
    };
    assert_eq!(live(b"r1", 99).await, Some(family_id.clone()));
    assert_eq!(live(b"r1", 100).await, None, "expired at its expiry");
    assert_eq!(
        store
            .rotate_refresh_token(b"r1", b"r2", 100, 200)
            .await
            .unwrap(),
        Rotation::Invalid,
        "an expired token does not rotate"
    );
    store
        .create_refresh_token(b"r3", &family_id, 6, 300)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh_token(b"r3", b"r4", 7, 300)
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    assert_eq!(live(b"r3", 8).await, None, "spent");
    assert_eq!(live(b"r4", 8).await, Some(family_id.clone()));
    assert_eq!(
        store
            .refresh_token_family(b"r3")
            .await
            .unwrap()
            .map(|f| f.id),
        Some(family_id.clone()),
        "a spent token still names its family"
    );
    assert_eq!(store.refresh_token_family(b"nope").await.unwrap(), None);

    assert!(store.revoke_family(&family_id, "test", 9).await.unwrap());
    assert!(!store.revoke_family(&family_id, "again", 10).await.unwrap());
    assert_eq!(
        revoked_at(store, &family_id).await,
        Some(9),
        "first time kept"
    );
    assert!(!store.revoke_family("fam_nope", "test", 9).await.unwrap());
    assert_eq!(live(b"r4", 10).await, None, "its family is revoked");
    assert_eq!(store.family("fam_nope").await.unwrap(), None);
}

async fn sign_ins_list_live_families_newest_first(store: &dyn Store) {
    let seed = seeded(store).await;
    let older = open_family(store, &seed.ada, b"c1", 5).await;
    store
        .create_refresh_token(b"r1", &older, 5, 500)
        .await
        .unwrap();
    store
        .note_refresh_address(b"r1", "192.0.2.1")
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh_token(b"r1", b"r2", 20, 500)
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    store
        .note_refresh_address(b"r2", "192.0.2.2")
        .await
        .unwrap();
    let newer = open_family(store, &seed.ada, b"c2", 8).await;
    store
        .create_refresh_token(b"r3", &newer, 8, 500)
        .await
        .unwrap();
    let stale = open_family(store, &seed.ada, b"c3", 9).await;
    store
        .create_refresh_token(b"r4", &stale, 9, 30)
        .await
        .unwrap();
    let no_token = open_family(store, &seed.ada, b"c4", 10).await;

    let list = store.sign_ins_of(&seed.ada.id, 40).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s.family_id.as_str()).collect();
    assert_eq!(ids, [newer.as_str(), older.as_str()]);
    assert!(!ids.contains(&stale.as_str()) && !ids.contains(&no_token.as_str()));
    let old = &list[1];
    assert_eq!(
        (
            old.signed_in_at,
            old.last_used_at,
            old.last_address.as_deref()
        ),
        (5, 20, Some("192.0.2.2"))
    );
    assert_eq!(old.app_name.as_deref(), Some("Dashboard"));
    assert_eq!(old.scopes, ["data.read"]);
    assert_eq!(
        (list[0].last_used_at, list[0].last_address.as_deref()),
        (8, None)
    );

    store.revoke_family(&newer, "signed out", 41).await.unwrap();
    let after: Vec<String> = store
        .sign_ins_of(&seed.ada.id, 41)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.family_id)
        .collect();
    assert_eq!(after, [older]);
}

// ---------------------------------------------------------------------------------------------
// Device authorization (RFC 8628)

fn device_request(expires_at: i64) -> DeviceAuthorization {
    DeviceAuthorization {
        app_id: APP.into(),
        scopes: vec!["connector".into()],
        created_at: 10,
        expires_at,
        interval_secs: 5,
        requested_from: "198.51.100.7".into(),
    }
}

async fn a_device_authorization_is_approved_and_redeemed_once(store: &dyn Store) {
    let seed = seeded(store).await;
    let request = device_request(100);
    store
        .create_device_authorization(b"dev", b"user", &request)
        .await
        .unwrap();
    assert_eq!(
        store
            .pending_device_authorization(b"user", 11)
            .await
            .unwrap(),
        Some(request)
    );
    let poll = |app: &'static str, now: i64| async move {
        store
            .poll_device_authorization(b"dev", app, now)
            .await
            .unwrap()
    };
    assert_eq!(poll(APP, 11).await, DevicePoll::Pending { too_fast: false });
    assert_eq!(poll(APP, 13).await, DevicePoll::Pending { too_fast: true });
    assert_eq!(poll(APP, 18).await, DevicePoll::Pending { too_fast: false });
    assert_eq!(poll("other_app", 30).await, DevicePoll::Invalid);

    assert!(
        store
            .decide_device_authorization(b"user", Some(&seed.ada.id), 31)
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_device_authorization(b"user", None, 32)
            .await
            .unwrap(),
        "decided once"
    );
    assert_eq!(
        store
            .pending_device_authorization(b"user", 32)
            .await
            .unwrap(),
        None
    );
    let DevicePoll::Approved(family) = poll(APP, 40).await else {
        panic!("an approved device gets its family");
    };
    assert_eq!(
        (family.user_id.as_str(), family.app_id.as_str()),
        (seed.ada.id.as_str(), APP)
    );
    assert_eq!(family.scopes, ["connector"]);
    assert_eq!(
        store.family(&family.id).await.unwrap(),
        Some(family.clone())
    );
    assert_eq!(poll(APP, 50).await, DevicePoll::Invalid, "redeemed once");
    assert_eq!(
        store
            .poll_device_authorization(b"nope", APP, 50)
            .await
            .unwrap(),
        DevicePoll::Invalid
    );
}

async fn a_denied_or_expired_device_authorization_ends(store: &dyn Store) {
    seeded(store).await;
    store
        .create_device_authorization(b"dev1", b"user1", &device_request(100))
        .await
        .unwrap();
    assert!(
        store
            .decide_device_authorization(b"user1", None, 20)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .poll_device_authorization(b"dev1", APP, 21)
            .await
            .unwrap(),
        DevicePoll::Denied
    );

    store
        .create_device_authorization(b"dev2", b"user2", &device_request(50))
        .await
        .unwrap();
    assert!(
        store
            .pending_device_authorization(b"user2", 49)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .pending_device_authorization(b"user2", 50)
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .decide_device_authorization(b"user2", Some("usr_x"), 50)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .poll_device_authorization(b"dev2", APP, 50)
            .await
            .unwrap(),
        DevicePoll::Invalid
    );
}

// ---------------------------------------------------------------------------------------------
// Login sessions

async fn a_session_lives_until_it_expires_or_ends(store: &dyn Store) {
    let seed = seeded(store).await;
    let session = LoginSession {
        user_id: seed.ada.id.clone(),
        expires_at: 100,
        signed_in_at: 1,
    };
    store.create_session(b"s1", &session, 1).await.unwrap();
    store.create_session(b"s2", &session, 1).await.unwrap();
    assert_eq!(
        store.session(b"s1", 99).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(store.session(b"s1", 100).await.unwrap(), None, "expired");
    assert_eq!(store.session(b"nope", 50).await.unwrap(), None);
    store.delete_session(b"s1").await.unwrap();
    assert_eq!(store.session(b"s1", 50).await.unwrap(), None);
    assert_eq!(
        store.session(b"s2", 50).await.unwrap(),
        Some(session),
        "ending one session leaves the others"
    );
}

// ---------------------------------------------------------------------------------------------
// Token keys

async fn token_keys_are_listed_newest_first_and_forgotten_entirely(store: &dyn Store) {
    for (id, created_at) in [("k4.lid.a", 1), ("k4.lid.c", 3), ("k4.lid.b", 2)] {
        store
            .add_token_key(&TokenKeyRecord {
                id: id.into(),
                key_bytes: vec![u8::try_from(created_at).unwrap(); 32],
                created_at,
                retired_at: None,
            })
            .await
            .unwrap();
    }
    let keys = store.token_keys().await.unwrap();
    let order: Vec<(&str, i64, u8)> = keys
        .iter()
        .map(|k| (k.id.as_str(), k.created_at, k.key_bytes[0]))
        .collect();
    assert_eq!(
        order,
        [("k4.lid.c", 3, 3), ("k4.lid.b", 2, 2), ("k4.lid.a", 1, 1)]
    );
    assert!(keys.iter().all(|k| k.key_bytes.len() == 32));
    store.forget_token_keys().await.unwrap();
    assert!(store.token_keys().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The change feed

async fn the_change_feed_holds_each_change_in_commit_order(store: &dyn Store) {
    assert_eq!(store.change_cursor().await.unwrap(), 0, "an empty feed");
    let seed = seeded(store).await;
    let start = store.change_cursor().await.unwrap();
    assert!(changes_since(store, start).await.is_empty());
    grant_read(store, &seed.ada, &[&seed.historian], 5).await;
    store.wait_for_changes(start).await.unwrap();
    store.revoke(&seed.ada.id, APP, None, 7).await.unwrap();
    let batch = store.changes_after(start).await.unwrap();
    assert_eq!(
        batch.changes,
        vec![
            Revocation::Granted {
                user_id: seed.ada.id.clone(),
                app_id: APP.into(),
                source_ids: vec![seed.historian.id.clone()],
            },
            Revocation::Grant {
                user_id: seed.ada.id.clone(),
                app_id: APP.into(),
                source_id: None,
            },
        ]
    );
    assert_eq!(batch.cursor, store.change_cursor().await.unwrap());
    assert!(batch.cursor > start);
    let after = store.changes_after(batch.cursor).await.unwrap();
    assert_eq!((after.cursor, after.changes.len()), (batch.cursor, 0));
    assert_eq!(store.prune_changes(7).await.unwrap(), 1, "older than 7 go");
    assert_eq!(changes_since(store, start).await.len(), 1);
    assert_eq!(
        store.change_cursor().await.unwrap(),
        batch.cursor,
        "pruning never moves the cursor back"
    );
    // A change of its own (a key rotation) follows in order.
    let rotated = Revocation::TokenKeysRotated {
        key_id: "k4.lid.new".into(),
    };
    store.append_change(&rotated).await.unwrap();
    let id_rotated = Revocation::IdTokenKeysRotated {
        key_id: "thumbprint-new".into(),
    };
    store.append_change(&id_rotated).await.unwrap();
    store.wait_for_changes(batch.cursor).await.unwrap();
    assert_eq!(
        changes_since(store, batch.cursor).await,
        vec![rotated, id_rotated]
    );
}

// ---------------------------------------------------------------------------------------------
// Audit

async fn the_audit_trail_reads_newest_first_up_to_the_limit(store: &dyn Store) {
    let event = |at: i64, event: &str| AuditEvent {
        at,
        event: event.into(),
        user_id: Some("usr_1".into()),
        app_id: (at > 1).then(|| APP.to_owned()),
        source_id: None,
        detail: format!("detail {at}"),
    };
    // Appended out of time order: the trail is read in the order it was written.
    for e in [event(1, "sign_in"), event(3, "grant"), event(2, "revoke")] {
        store.audit(&e).await.unwrap();
    }
    assert_eq!(
        store.audit_events(2).await.unwrap(),
        vec![event(2, "revoke"), event(3, "grant")]
    );
    assert_eq!(store.audit_events(10).await.unwrap().len(), 3);
    assert_eq!(
        store.audit_events(10).await.unwrap()[2],
        event(1, "sign_in")
    );
}

// ---------------------------------------------------------------------------------------------
// Accounts and the ledger

fn debit_of(user: &User, family: &str, amount: i64, key: Option<&str>, now: i64) -> DebitRequest {
    DebitRequest {
        user_id: user.id.clone(),
        app_id: APP.into(),
        family_id: family.into(),
        amount,
        description: "a report".into(),
        idempotency_key: key.map(str::to_owned),
        now,
        period_start: 100,
    }
}

async fn the_operator_credits_and_debits_never_below_zero(store: &dyn Store) {
    let seed = seeded(store).await;
    assert_eq!(store.balance(&seed.ada.id).await.unwrap(), 0);
    let credit = store
        .operator_entry(&seed.ada.id, TxKind::Credit, 1_000, "top-up", 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (credit.kind, credit.amount, credit.app_id.clone()),
        (TxKind::Credit, 1_000, None)
    );
    assert!(
        store
            .operator_entry(&seed.ada.id, TxKind::Debit, 1_001, "too much", 6)
            .await
            .unwrap()
            .is_none(),
        "never below zero"
    );
    store
        .operator_entry(&seed.ada.id, TxKind::Debit, 400, "fee", 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.balance(&seed.ada.id).await.unwrap(), 600);
    let rows = store.transactions(&seed.ada.id, None).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], credit, "oldest first");
}

async fn a_debit_needs_a_live_grant_and_sign_in_and_stays_within_balance_and_limit(
    store: &dyn Store,
) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    store
        .operator_entry(&seed.ada.id, TxKind::Credit, 1_000, "top-up", 5)
        .await
        .unwrap();
    assert_eq!(
        store
            .debit(&debit_of(&seed.ada, &family, 10, None, 110))
            .await
            .unwrap(),
        DebitOutcome::NoGrant,
        "no consent yet"
    );
    let grant = store
        .grant_billing(&seed.ada.id, APP, Some(300), 100)
        .await
        .unwrap();
    let DebitOutcome::Done(first) = store
        .debit(&debit_of(&seed.ada, &family, 250, None, 110))
        .await
        .unwrap()
    else {
        panic!("a debit within both")
    };
    assert_eq!(first.grant_id.as_deref(), Some(grant.id.as_str()));
    assert_eq!(
        store
            .debit(&debit_of(&seed.ada, &family, 51, None, 111))
            .await
            .unwrap(),
        DebitOutcome::LimitReached {
            limit_remaining: 50,
            balance: 750
        }
    );
    // A debit of the previous period does not count against this one's limit.
    let fresh = DebitRequest {
        period_start: 111,
        ..debit_of(&seed.ada, &family, 300, None, 112)
    };
    assert!(matches!(
        store.debit(&fresh).await.unwrap(),
        DebitOutcome::Done(_)
    ));
    assert_eq!(
        store
            .grant_billing(&seed.ada.id, APP, None, 113)
            .await
            .unwrap()
            .id,
        grant.id,
        "a new consent changes the live grant's limit"
    );
    assert_eq!(
        store
            .debit(&debit_of(&seed.ada, &family, 451, None, 114))
            .await
            .unwrap(),
        DebitOutcome::InsufficientFunds {
            balance: 450,
            limit_remaining: None
        }
    );
    let allowance = store
        .allowance(&seed.ada.id, APP, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (allowance.spent, allowance.balance, allowance.available()),
        (550, 450, 450)
    );
    assert!(
        store
            .set_billing_limit(&seed.ada.id, APP, Some(600))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .allowance(&seed.ada.id, APP, 100)
            .await
            .unwrap()
            .unwrap()
            .available(),
        50
    );
    // Revoked: refused at once; a revoked sign-in too.
    assert!(store.revoke_billing(&seed.ada.id, APP, 115).await.unwrap());
    assert!(!store.revoke_billing(&seed.ada.id, APP, 115).await.unwrap());
    assert_eq!(
        store
            .debit(&debit_of(&seed.ada, &family, 1, None, 116))
            .await
            .unwrap(),
        DebitOutcome::NoGrant
    );
    assert_eq!(store.allowance(&seed.ada.id, APP, 100).await.unwrap(), None);
    store
        .grant_billing(&seed.ada.id, APP, None, 117)
        .await
        .unwrap();
    store.revoke_family(&family, "test", 118).await.unwrap();
    assert_eq!(
        store
            .debit(&debit_of(&seed.ada, &family, 1, None, 119))
            .await
            .unwrap(),
        DebitOutcome::NoGrant,
        "the sign-in was revoked"
    );
    assert_eq!(
        store.allowances_of(&seed.ada.id, 100).await.unwrap().len(),
        1
    );
}

async fn an_idempotency_key_returns_the_first_debit_and_refuses_another(store: &dyn Store) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    store
        .operator_entry(&seed.ada.id, TxKind::Credit, 1_000, "top-up", 5)
        .await
        .unwrap();
    store
        .grant_billing(&seed.ada.id, APP, None, 100)
        .await
        .unwrap();
    let DebitOutcome::Done(first) = store
        .debit(&debit_of(&seed.ada, &family, 100, Some("k"), 110))
        .await
        .unwrap()
    else {
        panic!("debited")
    };
    assert_eq!(
        store
            .debit(&debit_of(&seed.ada, &family, 100, Some("k"), 111))
            .await
            .unwrap(),
        DebitOutcome::Repeated(first)
    );
    assert_eq!(
        store
            .debit(&debit_of(&seed.ada, &family, 101, Some("k"), 112))
            .await
            .unwrap(),
        DebitOutcome::KeyReused
    );
    assert_eq!(
        store.balance(&seed.ada.id).await.unwrap(),
        900,
        "debited once"
    );
}

async fn a_refund_is_at_most_what_is_left_within_the_window(store: &dyn Store) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    store
        .operator_entry(&seed.ada.id, TxKind::Credit, 1_000, "top-up", 5)
        .await
        .unwrap();
    store
        .grant_billing(&seed.ada.id, APP, Some(500), 100)
        .await
        .unwrap();
    let DebitOutcome::Done(debit) = store
        .debit(&debit_of(&seed.ada, &family, 300, None, 110))
        .await
        .unwrap()
    else {
        panic!("debited")
    };
    let refund = |amount: Option<i64>, window_start: i64, key: Option<&str>| RefundRequest {
        user_id: seed.ada.id.clone(),
        app_id: APP.into(),
        debit_id: debit.id.clone(),
        amount,
        idempotency_key: key.map(str::to_owned),
        now: 120,
        window_start,
    };
    assert_eq!(
        store.refund(&refund(Some(10), 111, None)).await.unwrap(),
        RefundOutcome::TooLate
    );
    let RefundOutcome::Done(part) = store
        .refund(&refund(Some(100), 0, Some("r")))
        .await
        .unwrap()
    else {
        panic!("refunded")
    };
    assert_eq!(
        (part.kind, part.refund_of.as_deref()),
        (TxKind::Refund, Some(debit.id.as_str()))
    );
    assert_eq!(
        store
            .refund(&refund(Some(100), 0, Some("r")))
            .await
            .unwrap(),
        RefundOutcome::Done(part),
        "a repeated key refunds once"
    );
    assert_eq!(
        store.refund(&refund(Some(201), 0, None)).await.unwrap(),
        RefundOutcome::TooMuch { refundable: 200 }
    );
    let RefundOutcome::Done(rest) = store.refund(&refund(None, 0, None)).await.unwrap() else {
        panic!("the rest refunded")
    };
    assert_eq!(rest.amount, 200);
    assert_eq!(store.balance(&seed.ada.id).await.unwrap(), 1_000);
    assert_eq!(
        store
            .allowance(&seed.ada.id, APP, 100)
            .await
            .unwrap()
            .unwrap()
            .spent,
        0,
        "refunds give the limit back"
    );
    let other = RefundRequest {
        app_id: "another-app".into(),
        ..refund(Some(1), 0, None)
    };
    assert_eq!(store.refund(&other).await.unwrap(), RefundOutcome::NotFound);
}

async fn racing_debits_never_overdraw(store: &dyn Store) {
    let seed = seeded(store).await;
    let family = open_family(store, &seed.ada, b"c1", 5).await;
    store
        .operator_entry(&seed.ada.id, TxKind::Credit, 1_000, "top-up", 5)
        .await
        .unwrap();
    store
        .grant_billing(&seed.ada.id, APP, Some(700), 100)
        .await
        .unwrap();
    let requests: Vec<DebitRequest> = (0..40)
        .map(|i| debit_of(&seed.ada, &family, 100, Some(&format!("k{i}")), 110))
        .collect();
    let outcomes = futures::future::join_all(requests.iter().map(|r| store.debit(r))).await;
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(DebitOutcome::Done(_))))
        .count();
    assert_eq!(done, 7, "the limit holds");
    assert_eq!(store.balance(&seed.ada.id).await.unwrap(), 300);
}

async fn a_write_key_is_claimed_once_and_answers_its_retries(store: &dyn Store) {
    let key = WriteKey {
        app_id: "app_1".into(),
        user_id: "usr_1".into(),
        key: "k-1".into(),
    };
    let claim = |digest: &'static str, now: i64| {
        let key = key.clone();
        async move {
            store
                .claim_write(&key, digest, now, now - 100)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim("body-a", 1_000).await, WriteClaim::Claimed);
    // While it is applied, a retry waits; another body under the key is refused.
    assert_eq!(claim("body-a", 1_001).await, WriteClaim::InProgress);
    assert_eq!(claim("body-b", 1_001).await, WriteClaim::KeyReused);
    let audited = AuditEvent {
        at: 1_001,
        event: "write".into(),
        user_id: Some("usr_1".into()),
        app_id: Some("app_1".into()),
        source_id: Some("src_1".into()),
        detail: "tag=\"SP1\" old=1 new=2 result=ok".into(),
    };
    store
        .answer_write(
            &key,
            200,
            r#"{"results":[]}"#,
            std::slice::from_ref(&audited),
        )
        .await
        .unwrap();
    assert_eq!(
        store.audit_events(10).await.unwrap(),
        [audited],
        "kept with the answer"
    );
    assert_eq!(
        claim("body-a", 1_002).await,
        WriteClaim::Answered {
            status: 200,
            answer: r#"{"results":[]}"#.into()
        }
    );
    // An answered key is not released; keys are per app and user.
    store.release_write(&key).await.unwrap();
    assert_eq!(claim("body-b", 1_003).await, WriteClaim::KeyReused);
    let other_app = WriteKey {
        app_id: "app_2".into(),
        ..key.clone()
    };
    assert_eq!(
        store
            .claim_write(&other_app, "body-b", 1_003, 900)
            .await
            .unwrap(),
        WriteClaim::Claimed
    );
    // A released claim (nothing applied) can be claimed again, once.
    store.release_write(&other_app).await.unwrap();
    let racing = futures::future::join_all(
        (0..8).map(|_| store.claim_write(&other_app, "body-b", 1_004, 900)),
    )
    .await;
    let claimed = racing
        .into_iter()
        .filter(|c| *c.as_ref().unwrap() == WriteClaim::Claimed)
        .count();
    assert_eq!(claimed, 1);
    // An expired record is forgotten: the key starts afresh.
    assert_eq!(claim("body-c", 1_200).await, WriteClaim::Claimed);
}

// ---------------------------------------------------------------------------------------------
// Live-stream leases

fn lease<'a>(replica: &'a str, family_id: &'a str, connector_id: &'a str) -> StreamLease<'a> {
    StreamLease {
        replica,
        family_id,
        connector_id,
    }
}

const LEASE_CAPS: LeaseCaps = LeaseCaps {
    per_sign_in: 2,
    per_connector: 3,
};

async fn leased(store: &dyn Store, l: StreamLease<'_>, now: i64, until: i64) -> LeaseOutcome {
    store.lease_stream(l, LEASE_CAPS, now, until).await.unwrap()
}

async fn stream_leases_hold_each_cap_and_lapse_unless_renewed(store: &dyn Store) {
    let LeaseOutcome::Leased(a1) = leased(store, lease("r1", "fam_a", "con"), 100, 110).await
    else {
        panic!("the first lease is taken");
    };
    assert!(matches!(
        leased(store, lease("r2", "fam_a", "con"), 100, 110).await,
        LeaseOutcome::Leased(_)
    ));
    assert_eq!(
        leased(store, lease("r3", "fam_a", "con"), 100, 110).await,
        LeaseOutcome::SignInFull,
        "the sign-in's cap counts its leases on every replica"
    );
    assert!(matches!(
        leased(store, lease("r2", "fam_b", "con"), 100, 110).await,
        LeaseOutcome::Leased(_)
    ));
    assert_eq!(
        leased(store, lease("r1", "fam_c", "con"), 100, 110).await,
        LeaseOutcome::ConnectorFull,
        "the connector's cap counts every sign-in's leases"
    );
    assert!(matches!(
        leased(store, lease("r1", "fam_c", "other"), 100, 110).await,
        LeaseOutcome::Leased(_)
    ));
    // A released lease frees its place at once.
    store.release_stream_leases(&[a1]).await.unwrap();
    store.release_stream_leases(&[a1]).await.unwrap();
    assert!(matches!(
        leased(store, lease("r1", "fam_a", "con"), 101, 110).await,
        LeaseOutcome::Leased(_)
    ));
    // r1 lives on and renews; r2 died: its leases (fam_a and fam_b on con) lapse at 110.
    assert_eq!(store.renew_stream_leases("r1", 105, 120).await.unwrap(), 2);
    assert_eq!(
        leased(store, lease("r3", "fam_c", "con"), 109, 120).await,
        LeaseOutcome::ConnectorFull,
        "not before they lapse"
    );
    assert!(matches!(
        leased(store, lease("r3", "fam_c", "con"), 110, 120).await,
        LeaseOutcome::Leased(_)
    ));
    assert!(matches!(
        leased(store, lease("r3", "fam_b", "con"), 110, 120).await,
        LeaseOutcome::Leased(_)
    ));
    assert_eq!(
        leased(store, lease("r3", "fam_d", "con"), 110, 120).await,
        LeaseOutcome::ConnectorFull,
        "r1's renewed lease, and r3's two, fill the connector's cap"
    );
    // Renewing drops what lapsed: r2 has nothing left to renew.
    assert_eq!(store.renew_stream_leases("r2", 111, 130).await.unwrap(), 0);
    assert_eq!(store.renew_stream_leases("r3", 111, 130).await.unwrap(), 2);
}

async fn racing_stream_leases_never_exceed_a_cap(store: &dyn Store) {
    let replicas: Vec<String> = (0..12).map(|i| format!("r{}", i % 3)).collect();
    let outcomes = futures::future::join_all(
        replicas
            .iter()
            .map(|r| store.lease_stream(lease(r, "fam", "con"), LEASE_CAPS, 100, 110)),
    )
    .await;
    let taken = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(LeaseOutcome::Leased(_))))
        .count();
    assert_eq!(taken, LEASE_CAPS.per_sign_in);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(LeaseOutcome::Leased(_) | LeaseOutcome::SignInFull)))
    );
}

async fn writes_arriving_together_each_apply_once_and_keep_their_answers(store: &dyn Store) {
    let key = |i: usize| WriteKey {
        app_id: "app_1".into(),
        user_id: "usr_1".into(),
        key: format!("together-{i}"),
    };
    // Every key twice at once, as two requests with the same key racing each other.
    let claims = futures::future::join_all((0..40).flat_map(|i| [i, i]).map(|i| async move {
        (
            i,
            store
                .claim_write(&key(i), "body", 1_000, 900)
                .await
                .unwrap(),
        )
    }))
    .await;
    for i in 0..40 {
        let mut of_key: Vec<&WriteClaim> = claims
            .iter()
            .filter(|(k, _)| *k == i)
            .map(|(_, c)| c)
            .collect();
        of_key.sort_by_key(|c| *c != &WriteClaim::Claimed);
        assert_eq!(
            of_key,
            [&WriteClaim::Claimed, &WriteClaim::InProgress],
            "key {i}: one applies, the other waits"
        );
    }
    let audit = |i: usize| AuditEvent {
        at: 1_001,
        event: "write".into(),
        user_id: Some("usr_1".into()),
        app_id: Some("app_1".into()),
        source_id: Some("src_1".into()),
        detail: format!("write {i}"),
    };
    // Answers and other audit rows arriving together are each kept.
    let answers = (0..40).map(|i| async move {
        store
            .answer_write(&key(i), 200, &format!("{{\"n\":{i}}}"), &[audit(i)])
            .await
    });
    let others = (40..50).map(|i| async move { store.audit(&audit(i)).await });
    let (answered, audited) = futures::future::join(
        futures::future::join_all(answers),
        futures::future::join_all(others),
    )
    .await;
    assert!(answered.iter().chain(&audited).all(Result::is_ok));
    let mut details: Vec<String> = store
        .audit_events(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.detail)
        .collect();
    details.sort();
    let mut expected: Vec<String> = (0..50).map(|i| format!("write {i}")).collect();
    expected.sort();
    assert_eq!(
        details, expected,
        "one audit row per write, none lost or doubled"
    );
    let retries = futures::future::join_all((0..40).map(|i| async move {
        store
            .claim_write(&key(i), "body", 1_002, 900)
            .await
            .unwrap()
    }))
    .await;
    for (i, retry) in retries.into_iter().enumerate() {
        assert_eq!(
            retry,
            WriteClaim::Answered {
                status: 200,
                answer: format!("{{\"n\":{i}}}"),
            },
            "key {i} answers its retry with its own answer"
        );
    }
}
