//! The app hub at [`PATH`] (`/hubs/app`): live values over one SignalR connection, so an app
//! adds and removes tags without opening a stream per set (docs/api.md, "Live values on one
//! connection").
//!
//! [`CREATE_CHANNEL`] (`CreateSnapshotTagValueChannel(source, tags, interval[, lastId])`,
//! named as App Store Connect names it) is a server→client stream: each call is one
//! live-values stream, opened exactly as `GET …/subscribe` opens one
//! ([`crate::api::open_live`]: the token's scope and the live grant read from the store *on
//! that call*, the caps, one connector subscription shared per app, source and tags, a ticket
//! of [`crate::in_flight`]). Every data item carries an `id`; a call whose fourth argument is
//! the last one the app received resumes after it exactly as the event stream's
//! `Last-Event-ID` does (the same producer, [`subscribe::stream`]), or begins with a
//! `restarted` item and a new snapshot when the hub no longer holds that subscription. The
//! client disposing of its subscription (`CancelInvocation`) ends it. A revoke, the token's
//! expiry, a site block or a removed source completes it with an error whose message starts
//! with a stable code and a colon (`revoked: …`), within the same bound as the event stream.
//!
//! The token is checked when the connection opens (the `Authorization` header, or the
//! `access_token` query parameter that browsers' WebSockets and event streams need; never
//! logged) and on every long-polling request; the connection is closed a second after the
//! token expires (its streams have said why by then).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt as _};
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use uplink_signalr::protocol::ValueEncoding;
use uplink_signalr::server::{
    AuthRejection, AuthRequest, Authenticator, Caller, Claims, EncodedItem, Hub as SignalrHub,
    HubError, HubServer, Identity, OriginPolicy, ServerOptions,
};

use crate::api::{ApiError, LiveRequest, open_live, subscribe};
use crate::hub::Hub;
use crate::relay::{ConnectorRouter, RelayError};
use crate::scopes;

/// Where the app hub is mounted.
pub const PATH: &str = "/hubs/app";

/// The stream method: `(source id, [tags], interval or null[, last item's id or null])`.
pub const CREATE_CHANNEL: &str = "CreateSnapshotTagValueChannel";

/// [`CREATE_CHANNEL`]'s arguments: three, or four with the `id` of the last item the app
/// received (a 3-argument call is the same as a null fourth).
#[derive(Debug)]
struct ChannelArguments {
    source: String,
    tags: Vec<String>,
    interval: Option<String>,
    last_id: Option<String>,
}

impl<'de> Deserialize<'de> for ChannelArguments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Arguments;
        impl<'de> Visitor<'de> for Arguments {
            type Value = ChannelArguments;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("(source, tags, interval) or (source, tags, interval, lastId)")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let missing = |at: usize| <A::Error as de::Error>::invalid_length(at, &self);
                let source = seq.next_element()?.ok_or_else(|| missing(0))?;
                let tags = seq.next_element()?.ok_or_else(|| missing(1))?;
                let interval = seq.next_element()?.ok_or_else(|| missing(2))?;
                let last_id = seq.next_element::<Option<String>>()?.flatten();
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(<A::Error as de::Error>::invalid_length(5, &self));
                }
                Ok(ChannelArguments {
                    source,
                    tags,
                    interval,
                    last_id,
                })
            }
        }
        deserializer.deserialize_seq(Arguments)
    }
}

/// What a connection keeps of the token it was opened with.
struct AppConnection {
    token: String,
    expires_at: i64,
}

impl std::fmt::Debug for AppConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConnection")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The app hub's routes, subscribing through `relay`; mount at [`PATH`].
pub fn router(hub: Arc<Hub>, relay: Arc<dyn ConnectorRouter>) -> Router {
    let options = ServerOptions {
        authenticator: Some(authenticator(hub.clone())),
        // Apps on any origin may connect: the hub authenticates them by bearer token only,
        // never by an ambient credential (a cookie) a foreign page could borrow.
        origins: OriginPolicy::Any,
        ..ServerOptions::default()
    };
    HubServer::new(methods(hub, relay), options).router()
}

fn methods(hub: Arc<Hub>, relay: Arc<dyn ConnectorRouter>) -> SignalrHub {
    SignalrHub::new()
        .encoded_stream(
            CREATE_CHANNEL,
            move |caller: Caller, arguments: ChannelArguments| {
                let (hub, relay) = (hub.clone(), relay.clone());
                let opened = async move { open(&hub, relay.as_ref(), &caller, arguments).await };
                Ok(stream::once(opened).flat_map(|opened| match opened {
                    Ok(items) => items,
                    Err(refused) => stream::iter([Err(refused)]).boxed(),
                }))
            },
        )
        .on_connected(|conn| async move {
            if let Some(app) = conn
                .identity()
                .and_then(|i| i.claims.shared::<AppConnection>())
            {
                tokio::spawn(watch(conn, app));
            }
        })
}

/// How long a connection stays after its token expired: its streams were ended by their
/// tickets at that moment and said so; the close comes after.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Closes the connection once its token expired, so that the client connects again with a
/// fresh one. (A revoked sign-in's connection needs no closing: every call checks the grant,
/// the revoke ended its streams, and long polling re-checks the token on every request.)
async fn watch(conn: Caller, app: Arc<AppConnection>) {
    let expiry = std::time::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(app.expires_at).unwrap_or(0))
        + CLOSE_GRACE;
    loop {
        let Ok(left) = expiry.duration_since(std::time::SystemTime::now()) else {
            conn.close(Some(
                "expired: the access token expired; connect again with a fresh one".into(),
            ));
            return;
        };
        // Wakes now and then so that a closed connection's task ends early.
        tokio::time::sleep(left.min(Duration::from_secs(30))).await;
        if !conn.is_connected() {
            return;
        }
    }
}

/// One `CreateSnapshotTagValueChannel` call: checked, then its items.
async fn open(
    hub: &Arc<Hub>,
    relay: &dyn ConnectorRouter,
    caller: &Caller,
    ChannelArguments {
        source,
        tags,
        interval,
        last_id,
    }: ChannelArguments,
) -> Result<BoxStream<'static, Result<EncodedItem, HubError>>, HubError> {
    let connection = caller
        .identity()
        .and_then(|i| i.claims.shared::<AppConnection>())
        .ok_or_else(|| HubError::new("missing_token: this connection has no access token"))?;
    let wanted = LiveRequest {
        tags: subscribe::tags(tags.iter().map(String::as_str)).map_err(refusal)?,
        interval: subscribe::interval(interval.as_deref()).map_err(refusal)?,
        last_event_id: last_id,
    };
    // Items are encoded once, by the stream's producer, in the encoding this connection's
    // protocol speaks; the SignalR server copies each into its frame as it is.
    let encoding = caller
        .value_encoding()
        .ok_or_else(|| HubError::new("failed: the connection closed"))?;
    let frames = open_live(
        hub,
        relay,
        &connection.token,
        &source,
        wanted,
        subscribe::Encoding::Items(encoding),
    )
    .await
    .map_err(refusal)?;
    Ok(items(encoding, frames).boxed())
}

/// A refusal before the stream began, as the completion's error: `code: message`.
fn refusal(error: ApiError) -> HubError {
    HubError::new(format!("{}: {error}", error.code()))
}

/// The stream's frames as SignalR items (`snapshot`, `values`, and `restarted` before a new
/// snapshot), passed on as the producer encoded them; its end or a cut as the completion's
/// error, `event: message`.
fn items(
    encoding: ValueEncoding,
    frames: impl Stream<Item = Result<bytes::Bytes, RelayError>> + Send + 'static,
) -> impl Stream<Item = Result<EncodedItem, HubError>> + Send + 'static {
    frames.map(move |frame| match frame {
        Ok(frame) => match frame.first() {
            Some(&subscribe::ITEM) => {
                let item = frame.slice(1..);
                Ok(match encoding {
                    ValueEncoding::Json => EncodedItem::json(item),
                    ValueEncoding::MessagePack => EncodedItem::messagepack(item),
                })
            }
            _ => Err(HubError::new(
                String::from_utf8_lossy(frame.get(1..).unwrap_or_default()).into_owned(),
            )),
        },
        Err(cut) => Err(HubError::new(format!(
            "{}: {cut}",
            subscribe::cut_name(&cut)
        ))),
    })
}

/// Who may open an app connection: a valid access token with `data.read` whose sign-in is
/// live. The subject is the sign-in (token family), so a long-polling client may present a
/// renewed token of the same sign-in.
fn authenticator(hub: Arc<Hub>) -> Authenticator {
    Authenticator::new(move |request: AuthRequest| {
        let hub = hub.clone();
        async move {
            let Some(token) = request.bearer else {
                return Err(AuthRejection(
                    "an access token is required (Authorization: Bearer …, or access_token=…)"
                        .into(),
                ));
            };
            let claims = hub.keys.verify(&token).map_err(|rejection| {
                tracing::info!(%rejection, "app hub token refused");
                AuthRejection(rejection.to_string())
            })?;
            if !claims.has_scope(scopes::DATA_READ) {
                return Err(AuthRejection(format!(
                    "the access token lacks the scope '{}'",
                    scopes::DATA_READ
                )));
            }
            match hub.store.family(&claims.family_id).await {
                Ok(Some(f))
                    if f.revoked_at.is_none()
                        && f.app_id == claims.app_id
                        && f.user_id == claims.user_id => {}
                Ok(_) => {
                    return Err(AuthRejection(
                        "this sign-in was revoked; sign in again".into(),
                    ));
                }
                Err(e) => {
                    tracing::error!(error = %e, "app hub token check could not read the store");
                    return Err(AuthRejection(
                        "the hub cannot check tokens right now; try again".into(),
                    ));
                }
            }
            Ok(Identity {
                subject: format!("sign-in:{}", claims.family_id),
                claims: Claims::new(AppConnection {
                    token,
                    expires_at: claims.expires_at,
                }),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn bind(arguments: Value) -> Result<ChannelArguments, serde_json::Error> {
        serde_json::from_value(arguments)
    }

    #[test]
    fn three_arguments_as_before_or_four_with_the_id_to_resume_after() {
        let three = bind(json!(["src_a", ["A", "B"], "1s"])).unwrap();
        assert_eq!(
            (three.source.as_str(), three.tags.len(), three.interval.as_deref()),
            ("src_a", 2, Some("1s"))
        );
        assert_eq!(three.last_id, None);
        let null_interval = bind(json!(["src_a", ["A"], null])).unwrap();
        assert_eq!(null_interval.interval, None);
        let four = bind(json!(["src_a", ["A"], null, "g_x-12"])).unwrap();
        assert_eq!(four.last_id.as_deref(), Some("g_x-12"));
        let null_id = bind(json!(["src_a", ["A"], "0s", null])).unwrap();
        assert_eq!(null_id.last_id, None);
    }

    #[test]
    fn too_few_too_many_or_mistyped_arguments_are_refused() {
        for refused in [
            json!(["src_a", ["A"]]),
            json!(["src_a", ["A"], "1s", "g_x-1", 5]),
            json!(["src_a", ["A"], "1s", 7]),
            json!(["src_a", "A", "1s"]),
            json!({"source": "src_a"}),
        ] {
            assert!(bind(refused.clone()).is_err(), "{refused}");
        }
    }
}
