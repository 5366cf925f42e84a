//! A real `uplink hub serve --max-connectors 1` and two real connector runtimes: the second
//! is refused while the first is linked, takes the refusal as "retry later" (it keeps trying,
//! says why, and is never signed out), and links once the first leaves.

#[path = "soak/driver.rs"]
#[allow(dead_code)]
mod driver;

use std::time::Duration;

use uplink_connector::runtime::LinkState;
use uplink_signalr::client::Backoff;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_refused_at_the_cap_retries_and_links_once_a_slot_frees() {
    uplink_tls::install_crypto_provider();
    let uplink = std::path::Path::new(env!("CARGO_BIN_EXE_uplink"));
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    driver::add_user(uplink, &hub_dir, "owner", "a long enough password").unwrap();
    let first = driver::add_connector(uplink, &hub_dir, "owner", "Site A").unwrap();
    let second = driver::add_connector(uplink, &hub_dir, "owner", "Site B").unwrap();
    let mut hub = driver::start_hub(uplink, &hub_dir, 1).unwrap();
    // Short reconnect delays, so the test waits on the hub, not on the backoff.
    let quick = |o: &mut uplink_connector::RuntimeOptions| {
        o.backoff = Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(1),
        };
    };

    let a = driver::start_connector(&dir.path().join("a"), 0, &hub, &first, quick)
        .await
        .unwrap();
    driver::wait_registered(std::slice::from_ref(&a))
        .await
        .unwrap();
    let b = driver::start_connector(&dir.path().join("b"), 1, &hub, &second, quick)
        .await
        .unwrap();

    // B is refused and says why.
    let mut status = b.status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let refused = |error: &Option<String>| {
        error
            .as_deref()
            .is_some_and(|e| e.contains("503") && e.contains("at most 1 connector links"))
    };
    loop {
        let (state, error) = {
            let s = status.borrow_and_update();
            (s.link, s.last_error.clone())
        };
        assert_ne!(state, LinkState::Connected, "B linked past the cap");
        if refused(&error) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never reported the refusal ({state:?}, {error:?})"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), status.changed()).await;
    }
    // Seconds later (several attempts at these delays) it is still trying: neither signed out
    // nor stopped, and still refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    {
        let s = b.status().borrow().clone();
        assert_eq!(s.link, LinkState::Connecting, "{:?}", s.last_error);
        assert!(refused(&s.last_error), "{:?}", s.last_error);
    }
    // A, linked before, is untouched.
    assert_eq!(a.status().borrow().link, LinkState::Connected);
    hub.alive().unwrap();

    // A leaves: B links on its own, with no error left.
    a.stop().await;
    driver::wait_registered(std::slice::from_ref(&b))
        .await
        .expect("B links once A's slot is free");
    assert_eq!(b.status().borrow().last_error, None);
    hub.alive().unwrap();
    b.stop().await;
}
