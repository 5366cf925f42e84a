//! The web UI and the control commands over loopback HTTP, for a browser.
//!
//! `POST /ipc/{command}` takes the command's arguments as a JSON object and answers with the
//! command's result, or a [`ControlError`] body with a 4xx status; `GET /events` streams the
//! status as Server-Sent Events, and `GET /tag-values` the values of the running tag watches
//! (event `tags`, the whole list on every change). Every request needs the
//! per-run access token (`Authorization: Bearer …`), which `uplink ui` prints in the URL's
//! fragment — fragments never leave the browser, so the token is not in any request line or
//! log. Requests whose `Host` is not a loopback name are refused, which defeats DNS
//! rebinding; everything else is the built UI from `dist`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{Control, ControlError, ControlErrorCode};

/// The content security policy of the served UI: nothing from elsewhere, no inline script.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; \
                   base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// A per-run secret that every command request must present.
#[derive(Clone)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// 256 random bits, hex-encoded.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self(hex.into())
    }

    /// The token's text, to put in the URL fragment shown to the user.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

#[derive(Debug, Clone)]
struct Served {
    control: Control,
    token: AccessToken,
}

/// Where the built web UI comes from.
#[derive(Debug, Clone)]
pub enum UiFiles {
    /// A folder on disk (`ui/dist` of a checkout, `--dist`).
    Folder(PathBuf),
    /// Files built into the binary: each path under the UI's folder (with `/`) and its bytes.
    Embedded(&'static [(&'static str, &'static [u8])]),
}

/// The router: the UI, and the commands under `/ipc/`.
pub fn router(control: Control, token: AccessToken, ui: UiFiles) -> Router {
    let commands = commands(control, token);
    guarded(match ui {
        UiFiles::Folder(dist) => {
            let index = ServeFile::new(dist.join("index.html"));
            commands.fallback_service(ServeDir::new(dist).fallback(index))
        }
        UiFiles::Embedded(files) => commands
            .fallback(move |request: Request| async move { embedded(files, request.uri().path()) }),
    })
}

/// A file of the embedded UI by its path; any other path is the page itself (the UI routes by
/// the fragment, so only a mistyped address lands here).
fn embedded(files: &'static [(&'static str, &'static [u8])], path: &str) -> Response {
    let wanted = path.trim_start_matches('/');
    let found = files
        .iter()
        .find(|(name, _)| *name == wanted)
        .or_else(|| files.iter().find(|(name, _)| *name == "index.html"));
    match found {
        Some((name, bytes)) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(name)),
            )],
            *bytes,
        )
            .into_response(),
        None => reply_error(
            StatusCode::NOT_FOUND,
            ControlErrorCode::HttpError,
            "this Uplink was built without its web UI",
        ),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The commands and the status events with no UI: how the desktop app's window process reaches
/// the connector that its tray process runs.
pub fn commands_router(control: Control, token: AccessToken) -> Router {
    guarded(commands(control, token))
}

fn commands(control: Control, token: AccessToken) -> Router {
    Router::new()
        .route("/ipc/{command}", post(command))
        .route("/events", get(events))
        .route("/tag-values", get(tag_values))
        .with_state(Served { control, token })
}

/// Loopback only, and headers that keep a browser from reusing the answers elsewhere.
fn guarded(router: Router) -> Router {
    router
        .layer(middleware::from_fn(loopback_host_only))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

fn reply_error(status: StatusCode, code: ControlErrorCode, message: impl Into<String>) -> Response {
    (status, axum::Json(ControlError::new(code, message))).into_response()
}

async fn loopback_host_only(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    if matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
        next.run(request).await
    } else {
        reply_error(
            StatusCode::MISDIRECTED_REQUEST,
            ControlErrorCode::NotLoopback,
            "this UI answers only on loopback addresses (127.0.0.1, localhost, [::1])",
        )
    }
}

/// Whether the request carries this run's access token.
fn authorised(served: &Served, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| served.token.matches(t))
}

fn unauthorised() -> Response {
    reply_error(
        StatusCode::UNAUTHORIZED,
        ControlErrorCode::Unauthorized,
        "open the UI with the link `uplink ui` printed; it carries this session's access token",
    )
}

async fn command(
    State(served): State<Served>,
    Path(command): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorised(&served, &headers) {
        return unauthorised();
    }
    let args: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return reply_error(
                    StatusCode::BAD_REQUEST,
                    ControlErrorCode::InvalidArguments,
                    "command arguments must be a JSON object",
                );
            }
            Err(e) => {
                return reply_error(
                    StatusCode::BAD_REQUEST,
                    ControlErrorCode::InvalidArguments,
                    format!("command arguments are not valid JSON: {e}"),
                );
            }
        }
    };
    tracing::debug!(command = %command, "control command over HTTP");
    match served.control.dispatch(&command, args).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) if e.code == ControlErrorCode::UnknownCommand => {
            (StatusCode::NOT_FOUND, axum::Json(e)).into_response()
        }
        Err(e) if e.code == ControlErrorCode::InvalidArguments => {
            (StatusCode::BAD_REQUEST, axum::Json(e)).into_response()
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(e)).into_response(),
    }
}

/// `GET /events`: the status as Server-Sent Events, the current one at once and then every
/// change — the browser's equivalent of the desktop app's `status` event.
async fn events(State(served): State<Served>, headers: HeaderMap) -> Response {
    if !authorised(&served, &headers) {
        return unauthorised();
    }
    let status = served.control.watch();
    let stream = futures::stream::unfold((status, true), |(mut status, first)| async move {
        if !first && status.changed().await.is_err() {
            return None;
        }
        let json =
            serde_json::to_string(&*status.borrow_and_update()).expect("the status serialises");
        let event = Event::default().event("status").data(json);
        Some((Ok::<_, std::convert::Infallible>(event), (status, false)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}

/// The event name of [`tag_values`]'s stream, and of the desktop app's event that carries it.
pub const TAG_VALUES_EVENT: &str = "tag-values";

/// `GET /tag-values`: the latest values of every running tag watch as Server-Sent Events
/// (event `tag-values`, a list of `WatchedValues`), now and on every change. A reader that
/// falls behind skips to the newest list; nothing queues.
async fn tag_values(State(served): State<Served>, headers: HeaderMap) -> Response {
    if !authorised(&served, &headers) {
        return unauthorised();
    }
    let values = served.control.watched_values();
    let stream = futures::stream::unfold((values, true), |(mut values, first)| async move {
        if !first && values.changed().await.is_err() {
            return None;
        }
        let list: Vec<crate::WatchedValues> =
            values.borrow_and_update().values().cloned().collect();
        let json = serde_json::to_string(&list).expect("the values serialise");
        let event = Event::default().event(TAG_VALUES_EVENT).data(json);
        Some((Ok::<_, std::convert::Infallible>(event), (values, false)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::HostKind;

    fn app(dist: &std::path::Path, token: &AccessToken) -> Router {
        let data_dir = dist.join("connector");
        router(
            Control::start(HostKind::Browser, data_dir),
            token.clone(),
            UiFiles::Folder(dist.to_path_buf()),
        )
    }

    fn dist() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("uplink-control-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("index.html"),
            "<!doctype html><title>Uplink</title>",
        )
        .unwrap();
        dir
    }

    async fn send(app: Router, req: axum::http::Request<Body>) -> (StatusCode, Value) {
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn ipc(
        command: &str,
        token: Option<&str>,
        host: &str,
        body: &str,
    ) -> axum::http::Request<Body> {
        let mut b = axum::http::Request::post(format!("/ipc/{command}")).header(header::HOST, host);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn app_info_needs_the_token() {
        let token = AccessToken::generate();
        let d = dist();
        let (status, body) = send(app(&d, &token), ipc("app_info", None, "127.0.0.1:9", "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "unauthorized");

        let (status, _) = send(
            app(&d, &token),
            ipc("app_info", Some("wrong"), "127.0.0.1:9", ""),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (status, body) = send(
            app(&d, &token),
            ipc("app_info", Some(token.expose()), "localhost:9", "{}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["name"], "Uplink");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(body["host"], "browser");
    }

    #[tokio::test]
    async fn foreign_host_is_refused_before_anything_else() {
        let token = AccessToken::generate();
        let req = ipc("app_info", Some(token.expose()), "evil.example:80", "");
        let (status, body) = send(app(&dist(), &token), req).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(body["code"], "not_loopback");
    }

    #[tokio::test]
    async fn bad_arguments_and_unknown_commands_are_named() {
        let token = AccessToken::generate();
        let d = dist();
        let (status, body) = send(
            app(&d, &token),
            ipc("app_info", Some(token.expose()), "127.0.0.1", "[1]"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_arguments");

        let (status, body) = send(
            app(&d, &token),
            ipc("app_info", Some(token.expose()), "127.0.0.1", "{oops"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["message"].as_str().unwrap().contains("not valid JSON"));

        let (status, body) = send(
            app(&d, &token),
            ipc("format_disk", Some(token.expose()), "127.0.0.1", ""),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "unknown_command");
        assert!(body["message"].as_str().unwrap().contains("format_disk"));
    }

    #[tokio::test]
    async fn ui_is_served_with_a_strict_policy() {
        let token = AccessToken::generate();
        let req = axum::http::Request::get("/some/route")
            .header(header::HOST, "127.0.0.1:1")
            .body(Body::empty())
            .unwrap();
        let res = app(&dist(), &token).oneshot(req).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "unknown paths fall back to the UI's index"
        );
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    }

    #[test]
    fn token_never_shows_in_debug_output() {
        let token = AccessToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
        assert_eq!(token.expose().len(), 64);
    }
}
