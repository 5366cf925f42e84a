//! [`ClusterRouter`]: the connector router of a hub replica in a cluster. A connector whose
//! link this replica holds is served in-process, exactly as on a single hub (so it keeps
//! working while NATS is away); any other is asked on NATS of the replica that holds it, as
//! [`Presence`] says ([`ask`]). Live values and events of a connector held elsewhere are
//! mirrored here (`super::live`).

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_nats::client::RequestErrorKind;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;
use uplink_link::{RelayedQuery, SubscribeRequest};
use uplink_model::{ComputedBy, DataSourceDescriptor};

use super::Presence;
use super::holder::BEAT;
use super::live::Mirrors;
use super::wire::{self, kind};
use crate::link::LocalRouter;
use crate::live::LiveHandle;
use crate::relay::{ConnectorRouter, RelayError, RelayStream};

/// How long the holder may stay silent (no chunk, no beat) before the answer counts as
/// broken: the holder beats every [`BEAT`], so this is a holder that died or lost NATS.
pub const SILENCE: Duration = Duration::from_millis(3 * BEAT.as_millis() as u64);

/// How long the holder has to take a query (it accepts before asking its connector).
pub const ACCEPT_WITHIN: Duration = Duration::from_secs(2);

/// Routes to this replica's links in-process, and to other replicas' links over NATS.
#[derive(Debug)]
pub struct ClusterRouter {
    local: Arc<LocalRouter>,
    client: Client,
    presence: Arc<Presence>,
    /// Subscriptions held by other replicas, mirrored here for this replica's app streams.
    mirrors: Mirrors,
}

impl ClusterRouter {
    /// A router over `local` links and the replicas reached through `client`.
    pub fn new(local: Arc<LocalRouter>, client: Client, presence: Arc<Presence>) -> Self {
        Self {
            mirrors: Mirrors::new(client.clone(), local.clone(), presence.clone()),
            local,
            client,
            presence,
        }
    }

    async fn relay_remote(
        &self,
        connector_id: &str,
        query: RelayedQuery,
    ) -> Result<RelayStream, RelayError> {
        let offline = || self.local.offline(connector_id);
        let Ok(payload) = serde_json::to_vec(&query) else {
            return Err(offline().await);
        };
        let Some((accepted, answers)) = ask(
            &self.client,
            &self.presence,
            connector_id,
            kind::QUERY,
            payload.into(),
        )
        .await
        else {
            return Err(offline().await);
        };
        let Some(control) =
            wire::header(accepted.headers.as_ref(), wire::CONTROL).map(str::to_owned)
        else {
            return Err(RelayError::LinkLost);
        };
        let mut remote = Remote {
            answers,
            client: self.client.clone(),
            control,
            next_seq: 0,
            armed: true,
        };
        let mut computed_by = None;
        let first = loop {
            match remote.next().await {
                Next::Info(by) => computed_by = by,
                Next::Chunk(first) => break first,
                Next::End => {
                    return Ok(
                        RelayStream::new(futures::stream::empty().boxed()).computed_by(computed_by)
                    );
                }
                Next::Failed(error) => return Err(error),
            }
        };
        let rest = futures::stream::unfold(Some(remote), |remote| async move {
            let mut remote = remote?;
            loop {
                match remote.next().await {
                    Next::Info(_) => continue,
                    Next::Chunk(bytes) => return Some((Ok(bytes), Some(remote))),
                    Next::End => return None,
                    Next::Failed(error) => return Some((Err(error), None)),
                }
            }
        });
        let body = futures::stream::once(std::future::ready(Ok(first))).chain(rest);
        Ok(RelayStream::new(body.boxed()).computed_by(computed_by))
    }
}

#[async_trait]
impl ConnectorRouter for ClusterRouter {
    async fn relay(
        &self,
        connector_id: &str,
        query: RelayedQuery,
    ) -> Result<RelayStream, RelayError> {
        if self.local.is_online(connector_id) {
            return self.local.relay(connector_id, query).await;
        }
        self.relay_remote(connector_id, query).await
    }

    async fn subscribe(
        &self,
        connector_id: &str,
        request: SubscribeRequest,
    ) -> Result<LiveHandle, RelayError> {
        if self.local.is_online(connector_id) {
            return self.local.subscribe(connector_id, request).await;
        }
        // Held elsewhere (or nowhere: "no responders" says so at once).
        self.mirrors.subscribe(connector_id, request).await
    }

    fn is_online(&self, connector_id: &str) -> bool {
        self.local.is_online(connector_id) || self.presence.holds(connector_id)
    }

    fn describe(&self, connector_id: &str) -> Option<Vec<DataSourceDescriptor>> {
        self.local.describe(connector_id)
    }
}

/// Asks the replica that [`Presence`] says holds `connector_id`'s link to take a request of
/// kind `what`, whose answer comes to an inbox of its own. Returns the holder's acceptance
/// and that inbox; `None` when the connector is offline as far as the cluster knows, found out
/// at once: no holder heard of, NATS away, the holder gone ("no responders") or no longer
/// holding the link (`not-held`).
pub(super) async fn ask(
    client: &Client,
    presence: &Presence,
    connector_id: &str,
    what: &str,
    payload: Bytes,
) -> Option<(async_nats::Message, async_nats::Subscriber)> {
    // NATS away: nobody can be asked, and waiting for a reconnect would only hang the app.
    if client.connection_state() != async_nats::connection::State::Connected {
        return None;
    }
    let Some(node) = presence.holder(connector_id) else {
        ask_who_holds(client, connector_id).await;
        return None;
    };
    let subject = wire::query_subject(&node, connector_id)?;
    let inbox = client.new_inbox();
    let answers = client.subscribe(inbox.clone()).await.ok()?;
    let mut headers = wire::headers(what);
    headers.insert(wire::ANSWER, inbox.as_str());
    let request = async_nats::Request::new()
        .payload(payload)
        .headers(headers)
        .timeout(Some(ACCEPT_WITHIN));
    match client.send_request(subject, request).await {
        Ok(accepted)
            if wire::header(accepted.headers.as_ref(), wire::KIND) == Some(kind::NOT_HELD) =>
        {
            // Its link ended (or moved) and this replica has not heard yet.
            presence.forget(connector_id, &node);
            ask_who_holds(client, connector_id).await;
            None
        }
        Ok(accepted) => Some((accepted, answers)),
        Err(e) => {
            if e.kind() == RequestErrorKind::NoResponders {
                // Known at once: the replica that held the link is gone.
                presence.forget(connector_id, &node);
            } else {
                tracing::debug!(connector = connector_id, error = %e, "the holding replica did not take the request");
            }
            None
        }
    }
}

/// Offline as far as this replica knows, unless a holder's word was missed (this replica just
/// joined, or a message was lost): whichever replica holds `connector_id`'s link says so
/// again, for the next request. Nothing waits for it.
async fn ask_who_holds(client: &Client, connector_id: &str) {
    let _ = client
        .publish(
            wire::HELD_SYNC,
            Bytes::copy_from_slice(connector_id.as_bytes()),
        )
        .await;
}

/// The asking replica's end of one remote answer.
struct Remote {
    answers: async_nats::Subscriber,
    client: Client,
    /// The holder's control inbox: acknowledgements go there, and only its messages count.
    control: String,
    next_seq: u64,
    /// Whether dropping this cancels the query (until the answer ended either way).
    armed: bool,
}

enum Next {
    Info(Option<ComputedBy>),
    Chunk(Bytes),
    End,
    Failed(RelayError),
}

impl Remote {
    /// The next thing the holder said. A gap in the chunks, or silence past [`SILENCE`],
    /// breaks the answer: it is never completed without the holder's end.
    async fn next(&mut self) -> Next {
        loop {
            let message = match tokio::time::timeout(SILENCE, self.answers.next()).await {
                Ok(Some(message)) => message,
                Ok(None) | Err(_) => return self.broken(),
            };
            let headers = message.headers.as_ref();
            if wire::header(headers, wire::CONTROL) != Some(self.control.as_str()) {
                continue;
            }
            match wire::header(headers, wire::KIND) {
                Some(kind::CHUNK) => {
                    if wire::seq(headers) != Some(self.next_seq) {
                        return self.broken();
                    }
                    self.acknowledge(self.next_seq).await;
                    self.next_seq += 1;
                    return Next::Chunk(message.payload);
                }
                Some(kind::END) => {
                    self.armed = false;
                    return Next::End;
                }
                Some(kind::FAILED) => {
                    self.armed = false;
                    return Next::Failed(
                        serde_json::from_slice(&message.payload).unwrap_or(RelayError::LinkLost),
                    );
                }
                Some(kind::INFO) => {
                    return Next::Info(serde_json::from_slice(&message.payload).ok());
                }
                _ => {}
            }
        }
    }

    fn broken(&mut self) -> Next {
        self.cancel();
        Next::Failed(RelayError::LinkLost)
    }

    async fn acknowledge(&self, seq: u64) {
        let mut headers = wire::headers(kind::ACK);
        headers.insert(wire::SEQ, seq.to_string().as_str());
        let _ = self
            .client
            .publish_with_headers(self.control.clone(), headers, Bytes::new())
            .await;
    }

    fn cancel(&mut self) {
        if !std::mem::take(&mut self.armed) {
            return;
        }
        let (client, control) = (self.client.clone(), self.control.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client
                    .publish_with_headers(control, wire::headers(kind::CANCEL), Bytes::new())
                    .await;
            });
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.cancel();
    }
}
