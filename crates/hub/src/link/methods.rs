//! The methods a connector calls on the link (`docs/protocol.md` §2). Every one but
//! `Register` needs a registered link; errors are sentences for the connector's log, and the
//! link stays up.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use uplink_link::{
    ChunkData, Heartbeat, QueryInfo, QueryOutcome, Registered, RegisteredSource, Registration,
    RevokeRequest, SubscriptionUpdate, TokenRenewed, to_hub,
};
use uplink_signalr::Binary;
use uplink_signalr::server::{Caller, Hub as SignalrHub, HubError};

use super::answer::{Item, Turn};
use super::identity::{self, LinkCredential};
use super::registration;
use super::session::{self, LinkRegistration, LinkSession, grant_list, revoked_list};
use crate::hub::Hub;
use crate::live::LiveEnd;
use crate::relay::RelayError;
use crate::store::{ConnectorClaim, LinkAuthority};

/// The link's SignalR hub: its methods and connection callbacks.
pub fn hub(hub: Arc<Hub>) -> SignalrHub {
    let h = hub.clone();
    let on_connected = move |connection: Caller| {
        let hub = h.clone();
        async move {
            if let Err(e) = attach(&hub, &connection) {
                tracing::debug!(error = %e, "link connected without a session");
            }
        }
    };
    let h = hub.clone();
    let on_disconnected = move |connection: Caller, error: Option<String>| {
        let hub = h.clone();
        async move {
            tracing::debug!(connection = connection.id(), ?error, "link disconnected");
            if let Some(session) = hub.links.session(connection.id()) {
                hub.links.detach(&session);
            }
        }
    };
    let with = |hub: &Arc<Hub>| hub.clone();
    let (h1, h2, h3, h4, h5, h6, h7, h8, h9) = (
        with(&hub),
        with(&hub),
        with(&hub),
        with(&hub),
        with(&hub),
        with(&hub),
        with(&hub),
        with(&hub),
        with(&hub),
    );
    SignalrHub::new()
        .on_connected(on_connected)
        .on_disconnected(on_disconnected)
        .method(to_hub::REGISTER, move |caller, (r,): (Registration,)| {
            let hub = h1.clone();
            async move { register(hub, caller, r).await }
        })
        .method(to_hub::RENEW_TOKEN, move |caller, (token,): (String,)| {
            let hub = h2.clone();
            async move { renew_token(hub, caller, token).await }
        })
        .method(
            to_hub::QUERY_CHUNK,
            move |caller, (query_id, seq, data): (String, u64, Binary)| {
                // Over MessagePack the chunk is a slice of the message it arrived in: bound
                // as `Binary`, not `ChunkData`, so that it is not copied out of it.
                let data = ChunkData(data.into_bytes());
                // Admission runs now, in arrival order; only the wait for room is deferred.
                let admitted = admit_chunk(&h3, &caller, &query_id, seq, data.len());
                async move { forward_chunk(admitted, query_id, seq, data).await }
            },
        )
        .method(
            to_hub::QUERY_END,
            move |caller, (query_id, outcome): (String, QueryOutcome)| {
                let ended = end_query(&h4, &caller, &query_id, outcome);
                async move {
                    let (sender, turn, end, item) = ended?;
                    // After every chunk went; an app that left is fine.
                    if turn.wait_all(end).await {
                        let _ = sender.send(item).await;
                    }
                    turn.finish();
                    Ok::<_, HubError>(())
                }
            },
        )
        .method(
            to_hub::QUERY_INFO,
            move |caller, (query_id, info): (String, QueryInfo)| {
                // Now, in arrival order: ahead of the first chunk, which the connector sends after.
                let noted = note_query_info(&h9, &caller, &query_id, info);
                async move { noted }
            },
        )
        .method(
            to_hub::REVOKE_GRANT,
            move |caller, (r,): (RevokeRequest,)| {
                let hub = h5.clone();
                async move { revoke_grant(hub, caller, r).await }
            },
        )
        .method(
            to_hub::SUBSCRIPTION_UPDATE,
            move |caller, (id, update): (String, SubscriptionUpdate)| {
                // Applied now, in arrival order: the hub holds the latest value per tag.
                let applied = subscription_update(&h7, &caller, &id, update);
                std::future::ready(applied)
            },
        )
        .method(
            to_hub::SUBSCRIPTION_END,
            move |caller, (id, outcome): (String, QueryOutcome)| {
                let ended = subscription_end(&h8, &caller, &id, outcome);
                std::future::ready(ended)
            },
        )
        .method(to_hub::HEARTBEAT, move |caller, (): ()| {
            let registered = registered(&h6, &caller, to_hub::HEARTBEAT).map(|_| ());
            async move {
                registered?;
                Ok::<_, HubError>(Heartbeat {
                    server_time: Utc::now(),
                })
            }
        })
}

/// The session of a connection, starting its watcher the first time.
fn attach(hub: &Arc<Hub>, caller: &Caller) -> Result<Arc<LinkSession>, HubError> {
    let (session, new) = hub.links.session_for(caller).map_err(HubError::new)?;
    if new {
        tokio::spawn(session::watch(hub.clone(), session.clone()));
    }
    Ok(session)
}

/// The session of a registered link, or the error every method but `Register` gives before.
fn registered(hub: &Arc<Hub>, caller: &Caller, method: &str) -> Result<Arc<LinkSession>, HubError> {
    let session = attach(hub, caller)?;
    if session.registration().is_none() {
        return Err(HubError::new(format!(
            "register first: call Register with the connector's id and data sources before {method}"
        )));
    }
    Ok(session)
}

fn store_failure(e: crate::error::HubError) -> HubError {
    tracing::error!(error = %e, "connector link request could not use the store");
    HubError::new("the hub could not complete the request; try again")
}

async fn register(
    hub: Arc<Hub>,
    caller: Caller,
    registration: Registration,
) -> Result<Registered, HubError> {
    let session = attach(&hub, &caller)?;
    registration::validate(&registration).map_err(HubError::new)?;
    let id = registration.connector_id.as_str();
    let authority = match &session.identity.credential {
        LinkCredential::Connector { connector_id } => {
            if connector_id != id {
                return Err(HubError::new(format!(
                    "this link's token belongs to connector '{connector_id}'; register as '{connector_id}', not '{id}'"
                )));
            }
            LinkAuthority::Credential
        }
        LinkCredential::SignedIn { family_id, .. } => LinkAuthority::SignIn { family_id },
    };
    if let Some(current) = session.registration()
        && current.connector.id != id
    {
        return Err(HubError::new(format!(
            "this link is registered as connector '{}'; open another link for another connector",
            current.connector.id
        )));
    }
    let now = crate::clock::now();
    let claim = hub
        .store
        .claim_connector(
            id,
            &session.identity.user_id,
            registration.name.trim(),
            &registration.software,
            authority,
            now,
        )
        .await
        .map_err(store_failure)?;
    // A sign-in that took the connector over revoked the one before it: its links close.
    hub.publish_changes().await;
    let connector = match claim {
        ConnectorClaim::Created(connector) => {
            hub.audit(
                "connector_registered",
                Some(&connector.owner_id),
                None,
                None,
                connector.id.clone(),
            )
            .await;
            connector
        }
        ConnectorClaim::Updated(connector) => connector,
        ConnectorClaim::OwnedByAnother => {
            tracing::warn!(connector = id, user = %session.identity.user_id, "registration with another user's connector id refused");
            hub.audit(
                "connector_register_refused",
                Some(&session.identity.user_id),
                None,
                None,
                id.to_owned(),
            )
            .await;
            return Err(HubError::new(format!(
                "connector id '{id}' belongs to another account; a connector must register with its own id"
            )));
        }
        ConnectorClaim::Missing => {
            caller.close(Some(uplink_link::close_reason::REMOVED.into()));
            return Err(HubError::new(format!(
                "connector '{id}' no longer exists on this hub"
            )));
        }
        ConnectorClaim::Removed => {
            return Err(HubError::new(format!(
                "connector id '{id}' was removed from this hub and cannot be registered again; sign the connector in with a new connector id"
            )));
        }
        refused @ (ConnectorClaim::NeedsCredential | ConnectorClaim::OtherSignIn) => {
            tracing::warn!(connector = id, user = %session.identity.user_id, ?refused, "registration without the connector's authority refused");
            hub.audit(
                "connector_register_refused",
                Some(&session.identity.user_id),
                None,
                None,
                format!("{id}: {refused:?}"),
            )
            .await;
            return Err(HubError::new(match refused {
                ConnectorClaim::NeedsCredential => format!(
                    "connector '{id}' was registered by an administrator with its own credential; only a link authenticated with that credential may register as it"
                ),
                _ => format!(
                    "connector '{id}' is signed in with another sign-in that is still valid; a sign-in registers only the connectors it created (to move the connector to this sign-in, revoke the other one on the hub's settings page first)"
                ),
            }));
        }
    };
    let sources = hub
        .store
        .announce_sources(
            &connector.id,
            &registration.sources,
            &registration.source_keys,
            now,
        )
        .await
        .map_err(store_failure)?;
    tracing::info!(connector = %connector.id, sources = sources.len(), transport = ?caller.transport(), "connector registered its link");
    let connector_id = connector.id.clone();
    hub.metrics
        .link_connects
        .get_or_create(&crate::metrics::TransportLabel {
            transport: caller
                .transport()
                .map_or("unknown", crate::metrics::transport_label)
                .to_owned(),
        })
        .inc();
    hub.links.install(
        &session,
        LinkRegistration {
            connector,
            software: registration.software,
            sources: registration.sources,
        },
    );
    let grants = grant_list(&hub, &connector_id)
        .await
        .map_err(store_failure)?;
    let revoked_apps = revoked_list(&hub, &connector_id)
        .await
        .map_err(store_failure)?;
    let _ = caller.send(
        uplink_link::to_connector::GRANTS,
        (uplink_link::GrantList {
            grants: grants.clone(),
            revoked_apps: revoked_apps.clone(),
        },),
    );
    Ok(Registered {
        connector_id,
        sources: sources
            .into_iter()
            .map(|s| RegisteredSource {
                name: s.name,
                id: s.id,
            })
            .collect(),
        grants,
        revoked_apps,
    })
}

async fn renew_token(
    hub: Arc<Hub>,
    caller: Caller,
    token: String,
) -> Result<TokenRenewed, HubError> {
    let session = registered(&hub, &caller, to_hub::RENEW_TOKEN)?;
    let renewed = identity::verify(&hub, &token)
        .await
        .map_err(|why| HubError::new(format!("token not renewed: {why}")))?;
    if renewed.subject() != session.identity.subject() {
        return Err(HubError::new(
            "token not renewed: it belongs to another connector or sign-in; a link renews with tokens of its own",
        ));
    }
    session.extend(renewed.expires_at);
    Ok(TokenRenewed {
        expires_at: DateTime::from_timestamp(renewed.expires_at, 0).unwrap_or_default(),
    })
}

/// A chunk admitted: where it goes and its turn, or the failure to report to the app.
type Admission = Result<(mpsc::Sender<Item>, Turn, Option<RelayError>), HubError>;

/// Checks a chunk against its query: registered link, known query, its window, size limits.
/// A chunk that breaks the rules fails the query for the app as well.
fn admit_chunk(hub: &Arc<Hub>, caller: &Caller, query_id: &str, seq: u64, len: usize) -> Admission {
    let session = registered(hub, caller, to_hub::QUERY_CHUNK)?;
    let limit = hub.links.max_answer_bytes();
    let verdict = session.with_query(query_id, |slot| {
        let failure = slot.admit(seq, len, limit).err();
        (slot.sender.clone(), slot.turn.clone(), failure)
    });
    let Some((sender, turn, failure)) = verdict else {
        return Err(HubError::new(format!(
            "no query '{query_id}' is running on this link (finished, cancelled or unknown); stop sending it"
        )));
    };
    if failure.is_some() {
        session.take_query(query_id);
    }
    Ok((sender, turn, failure))
}

async fn forward_chunk(
    admitted: Admission,
    query_id: String,
    seq: u64,
    data: ChunkData,
) -> Result<(), HubError> {
    let (sender, turn, failure) = admitted?;
    if let Some(failure) = failure {
        let message = format!("query '{query_id}' failed: {failure}; stop sending it");
        turn.finish();
        let _ = sender.send(Item::Failed(failure)).await;
        return Err(HubError::new(message));
    }
    if !turn.wait(seq).await {
        return Err(HubError::new(format!(
            "query '{query_id}' is over (cancelled or failed); stop sending it"
        )));
    }
    // The argument's own buffer (a JSON string's, or a slice of the MessagePack message)
    // becomes the chunk: no copy, no re-encoding.
    let sent = sender.send(Item::Chunk(data.into_bytes())).await;
    turn.advance(seq);
    sent.map_err(|_| {
        HubError::new(format!(
            "the app stopped waiting for query '{query_id}'; stop sending it"
        ))
    })
}

/// Passes the connector's word about its answer (who computed it) to the app end, ahead of
/// the body; once the body began, or for a query not running, it changes nothing.
fn note_query_info(
    hub: &Arc<Hub>,
    caller: &Caller,
    query_id: &str,
    info: QueryInfo,
) -> Result<(), HubError> {
    let session = registered(hub, caller, to_hub::QUERY_INFO)?;
    session.with_query(query_id, |slot| {
        let _ = slot.sender.try_send(Item::Info(info));
    });
    Ok(())
}

/// The end of an answer: where it goes, after which chunk, and what it says.
type Ending = (mpsc::Sender<Item>, Turn, u64, Item);

fn end_query(
    hub: &Arc<Hub>,
    caller: &Caller,
    query_id: &str,
    outcome: QueryOutcome,
) -> Result<Ending, HubError> {
    let session = registered(hub, caller, to_hub::QUERY_END)?;
    let slot = session.take_query(query_id).ok_or_else(|| {
        HubError::new(format!(
            "no query '{query_id}' is running on this link (finished, cancelled or unknown)"
        ))
    })?;
    let item = match outcome.error {
        None => Item::End,
        Some(failure) => Item::Failed(RelayError::Connector {
            code: failure.code,
            message: failure.message,
        }),
    };
    Ok((slot.sender, slot.turn, slot.end, item))
}

fn subscription_update(
    hub: &Arc<Hub>,
    caller: &Caller,
    id: &str,
    update: SubscriptionUpdate,
) -> Result<(), HubError> {
    let session = registered(hub, caller, to_hub::SUBSCRIPTION_UPDATE)?;
    let live = session.subscription(id).ok_or_else(|| {
        HubError::new(format!(
            "no subscription '{id}' is open on this link (ended or unknown); stop sending it"
        ))
    })?;
    let stamp = update.values.first().map(|v| v.value.time.timestamp_micros());
    live.apply(update);
    if let Some(stamp) = stamp {
        tracing::trace!(target: uplink_link::LATENCY_TARGET, hop = "applied", stamp);
    }
    Ok(())
}

fn subscription_end(
    hub: &Arc<Hub>,
    caller: &Caller,
    id: &str,
    outcome: QueryOutcome,
) -> Result<(), HubError> {
    let session = registered(hub, caller, to_hub::SUBSCRIPTION_END)?;
    let live = session.take_subscription(id).ok_or_else(|| {
        HubError::new(format!(
            "no subscription '{id}' is open on this link (ended or unknown)"
        ))
    })?;
    live.end(match outcome.error {
        Some(failure) => LiveEnd::of_failure(&failure.code, failure.message),
        None => LiveEnd::Closed,
    });
    Ok(())
}

async fn revoke_grant(
    hub: Arc<Hub>,
    caller: Caller,
    request: RevokeRequest,
) -> Result<(), HubError> {
    let session = registered(&hub, &caller, to_hub::REVOKE_GRANT)?;
    let Some(registration) = session.registration() else {
        return Err(HubError::new("register first"));
    };
    let connector = &registration.connector;
    // An app the hub does not know is a mistake on site (a stale list, a typo): say so rather
    // than report a revoke that revoked nothing.
    if hub
        .store
        .app(&request.app_id)
        .await
        .map_err(store_failure)?
        .is_none()
    {
        return Err(HubError::new(format!(
            "no app '{}' on this hub; nothing was revoked",
            request.app_id
        )));
    }
    if let Some(name) = &request.source {
        let known = hub
            .store
            .sources_owned_by(&connector.owner_id)
            .await
            .map_err(store_failure)?
            .into_iter()
            .any(|s| s.connector_id == connector.id && s.name == *name);
        if !known {
            return Err(HubError::new(format!(
                "no data source named '{name}' on this connector"
            )));
        }
    }
    let mut targets: Vec<(String, String)> = hub
        .store
        .connector_grants(&connector.id)
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter(|g| {
            g.app_id == request.app_id
                && request
                    .source
                    .as_ref()
                    .is_none_or(|name| *name == g.source_name)
        })
        .map(|g| (g.user_id, g.source_id))
        .collect();
    targets.dedup();
    for (user_id, source_id) in &targets {
        // The same path as the settings page: the store commits, then it is audited and
        // announced (which pushes Grants to this link).
        hub.revoke(user_id, &request.app_id, Some(source_id))
            .await
            .map_err(store_failure)?;
    }
    hub.audit(
        "revoked_on_site",
        Some(&connector.owner_id),
        Some(&request.app_id),
        None,
        format!("connector {}: {} grant(s)", connector.id, targets.len()),
    )
    .await;
    Ok(())
}
