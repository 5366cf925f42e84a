//! No secret reaches the hub's log: a whole session with every log line at TRACE captured.
//!
//! It runs in a process of its own: tracing caches per call site whether anyone listens, for
//! every thread at once, so a test capturing the log with a scoped subscriber can miss lines when
//! other tests in the same process hit the same call sites.

#[allow(dead_code)] // shared with the attack suite; this test uses part of it
#[path = "security/harness.rs"]
mod harness;

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;

use harness::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs a whole session — failed and successful sign-in, consent, exchange with a wrong and a
/// right secret, refresh, replay, refresh reuse — with every log line at TRACE captured, then
/// searches the log for each secret that crossed the wire.
#[test]
fn no_secret_reaches_the_log() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // A single-threaded runtime keeps the test's tasks on this thread, under this subscriber;
    // the test kit's hub runs on threads of its own that log to the same subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secrets = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let hub = TestHub::start().await;
            let mut secrets = vec![PASSWORD.to_owned(), hub.conf_secret.clone()];
            let wrong = "wrong-password-1234567";
            let r = hub
                .client
                .post(hub.url("/account/login"))
                .headers(hub.same_origin(None))
                .form(&[("username", "ada"), ("password", wrong)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            secrets.push(wrong.to_owned());
            secrets.push(hub.sign_in().await);
            let code = hub
                .consent_for(CONF_APP, CONF_REDIRECT, &[&hub.historian.id])
                .await;
            secrets.push(code.code.clone());
            let r = hub
                .client
                .post(hub.url("/oauth/token"))
                .basic_auth(CONF_APP, Some("a-wrong-client-secret"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.code.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            secrets.push("a-wrong-client-secret".to_owned());
            let tokens = TestHub::tokens(hub.exchange(CONF_APP, &code).await).await;
            secrets.push(tokens.access.clone());
            secrets.push(tokens.refresh.clone());
            assert_eq!(
                hub.access(&tokens.access, &hub.historian.id).await,
                StatusCode::OK
            );
            let next = TestHub::tokens(
                hub.token_request(
                    CONF_APP,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &tokens.refresh),
                    ],
                )
                .await,
            )
            .await;
            secrets.push(next.access.clone());
            secrets.push(next.refresh.clone());
            // The app hub takes the token in the query string too, as browsers' WebSockets
            // must send it: neither it nor a bad one is logged.
            for (token, status) in [
                (next.access.as_str(), StatusCode::OK),
                (
                    "v4.local.not-a-token-but-long-enough",
                    StatusCode::UNAUTHORIZED,
                ),
            ] {
                let r = hub
                    .client
                    .post(hub.url(&format!(
                        "/hubs/app/negotiate?negotiateVersion=1&access_token={token}"
                    )))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), status);
            }
            secrets.push("v4.local.not-a-token-but-long-enough".to_owned());
            // Replays and reuse make the hub log warnings: those must not quote the secret.
            assert_eq!(
                hub.exchange(CONF_APP, &code).await.status(),
                StatusCode::BAD_REQUEST
            );
            let r = hub
                .token_request(
                    CONF_APP,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &tokens.refresh),
                    ],
                )
                .await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            let mut tampered = tokens.access.clone().into_bytes();
            let mid = tampered.len() / 2;
            tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(
                hub.access(&tampered, &hub.historian.id).await,
                StatusCode::UNAUTHORIZED
            );
            secrets.push(tampered);
            secrets
        })
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("authorization code replayed"),
        "the log was captured"
    );
    assert!(log.contains("refresh token reused"));
    for secret in &secrets {
        assert!(secret.len() >= 16);
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
}
