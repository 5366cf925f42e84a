use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use reqwest::StatusCode;

use crate::harness::*;

/// Many requests in flight while the user revokes on the settings page: every request that
/// starts after the revoke has returned must be refused. No cache may let one through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_starting_after_a_revoke_is_allowed() {
    let hub = Arc::new(TestHub::start().await);
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let cookie = hub.sign_in().await;
    let csrf = hub.page_csrf(&cookie, "/account/settings").await;

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (hub, stop, token) = (hub.clone(), stop.clone(), tokens.access.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let status = hub.access(&token, &hub.historian.id).await;
                    seen.push((started, status));
                }
                seen
            })
        })
        .collect();
    // Let traffic build up, with grants allowed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = hub
        .settings_revoke(
            hub.same_origin(Some(&cookie)),
            &csrf,
            PUBLIC_APP,
            Some(&hub.historian.id),
        )
        .await;
    let revoked = Instant::now();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut allowed_before = 0;
    let mut after = 0;
    for w in workers {
        for (started, status) in w.await.unwrap() {
            if started >= revoked {
                after += 1;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "a request started after the revoke was allowed"
                );
            } else if status == StatusCode::OK {
                allowed_before += 1;
            }
        }
    }
    assert!(allowed_before > 0, "the race had traffic before the revoke");
    assert!(after > 0, "the race had traffic after the revoke");
}
