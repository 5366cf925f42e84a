//! Answers in flight: every relayed answer remembers whose access it serves, so that a revoke,
//! a token family's end, an app's or connector's removal, or the token's own expiry stops the
//! answers already flowing — not only the next request.
//!
//! Each relayed query takes a [`Ticket`] from [`InFlight::admit`] after the grant check and
//! before anything is sent to the connector; [`Ticket::relay`] is the one place every relayed
//! stream passes through (today the data API's queries, tomorrow subscriptions). The registry
//! listens to the hub's [`crate::revocation::RevocationAnnouncer`]: a matching announcement
//! cuts the ticket's answer at once — the connector's answer is dropped (which sends
//! `CancelQuery`, so the connector stops reading its source), by the ticket's own watcher task
//! so that an app which stopped reading does not delay it, and the app's stream yields an error
//! (so its body is cut, never completed). A timer cuts it when the token expires. An announcement the registry cannot
//! interpret, or announcements it missed (a lagging subscriber), make it re-read every
//! in-flight answer's grant from the store.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use std::future::Future as _;

use futures::task::AtomicWaker;
use futures::{Stream, StreamExt as _};
use tokio::sync::{broadcast, oneshot};
use tokio::time::{Instant, Sleep};
use uplink_link::RelayedQuery;

use crate::hub::Hub;
use crate::relay::{ConnectorRouter, RelayError, RelayStream};
use crate::revocation::Revocation;
use crate::store::Store;

/// Whose access an answer serves: what a revoke, a removal or the clock is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The user who consented.
    pub user_id: String,
    /// The app reading.
    pub app_id: String,
    /// The data source read (the hub's id).
    pub source_id: String,
    /// The connector serving it.
    pub connector_id: String,
    /// The access token's family.
    pub family_id: String,
    /// When the access token expires (Unix seconds).
    pub expires_at: i64,
}

impl Holder {
    /// Whether `change` ends this holder's access (for announcements [`understood`]).
    fn ended_by(&self, change: &Revocation) -> bool {
        match change {
            Revocation::Grant {
                user_id,
                app_id,
                source_id,
            } => {
                *user_id == self.user_id
                    && *app_id == self.app_id
                    && source_id.as_ref().is_none_or(|s| *s == self.source_id)
            }
            Revocation::AppRemoved { app_id } => *app_id == self.app_id,
            Revocation::TokenFamily { family_id } => *family_id == self.family_id,
            Revocation::ConnectorRemoved { connector_id } => *connector_id == self.connector_id,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// Whether the registry can tell from `change` alone which answers it ends; for any other
/// announcement it asks the store about every answer in flight.
fn understood(change: &Revocation) -> bool {
    matches!(
        change,
        Revocation::Grant { .. }
            | Revocation::AppRemoved { .. }
            | Revocation::TokenFamily { .. }
            | Revocation::ConnectorRemoved { .. }
            | Revocation::Granted { .. }
    )
}

struct Entry {
    holder: Holder,
    cut: Option<oneshot::Sender<RelayError>>,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Bumped (under the same lock as admissions) whenever announcements were applied or
    /// may have been missed: an answer admitted under a newer epoch than its grant check
    /// re-reads its grant.
    epoch: u64,
    answers: HashMap<u64, Entry>,
}

/// The registry of this hub node's answers in flight.
#[derive(Default)]
pub struct InFlight {
    state: Mutex<State>,
    /// Whether a task follows the announcer for this registry.
    watching: AtomicBool,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("answers", &self.running())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InFlight {
    /// The current epoch: read it before the grant check, and compare with
    /// [`Ticket::admitted_in`] after admission.
    pub fn epoch(&self) -> u64 {
        lock(&self.state).epoch
    }

    /// How many answers are in flight.
    pub fn running(&self) -> usize {
        lock(&self.state).answers.len()
    }

    /// Registers an answer about to be relayed for `holder`. Starts following `hub`'s
    /// announcer if nothing does yet.
    pub fn admit(self: &Arc<Self>, hub: &Hub, holder: Holder) -> Ticket {
        self.follow(hub);
        self.register(holder)
    }

    fn register(self: &Arc<Self>, holder: Holder) -> Ticket {
        let (sender, cut) = oneshot::channel();
        let expiry = Box::pin(tokio::time::sleep_until(deadline_of(holder.expires_at)));
        let mut state = lock(&self.state);
        let id = state.next;
        state.next += 1;
        let epoch = state.epoch;
        state.answers.insert(
            id,
            Entry {
                holder,
                cut: Some(sender),
            },
        );
        drop(state);
        Ticket {
            registry: Arc::downgrade(self),
            id,
            epoch,
            cut: Some(cut),
            expiry,
        }
    }

    /// Cuts every answer `change` ends; returns how many.
    pub fn apply(&self, change: &Revocation) -> usize {
        let mut state = lock(&self.state);
        state.epoch += 1;
        let mut cut = 0;
        for entry in state.answers.values_mut() {
            if entry.holder.ended_by(change)
                && let Some(sender) = entry.cut.take()
            {
                let _ = sender.send(RelayError::Revoked);
                cut += 1;
            }
        }
        cut
    }

    /// Re-reads the grant of every answer in flight and cuts those the store no longer
    /// allows, and returns how many. For announcements that were missed or cannot be matched.
    async fn recheck(&self, store: &dyn Store) -> usize {
        let holders: Vec<(u64, Holder)> = {
            let mut state = lock(&self.state);
            state.epoch += 1;
            state
                .answers
                .iter()
                .filter(|(_, e)| e.cut.is_some())
                .map(|(id, e)| (*id, e.holder.clone()))
                .collect()
        };
        let mut cut = 0;
        for (id, holder) in holders {
            let live = store
                .active_grant(
                    &holder.user_id,
                    &holder.app_id,
                    &holder.source_id,
                    &holder.family_id,
                )
                .await;
            // A store that cannot answer cannot prove access: cut.
            if !matches!(live, Ok(Some(_))) && self.cut(id) {
                cut += 1;
            }
        }
        cut
    }

    /// Cuts one answer; whether it was still running.
    fn cut(&self, id: u64) -> bool {
        let Some(sender) = lock(&self.state)
            .answers
            .get_mut(&id)
            .and_then(|e| e.cut.take())
        else {
            return false;
        };
        let _ = sender.send(RelayError::Revoked);
        true
    }

    fn forget(&self, id: u64) {
        lock(&self.state).answers.remove(&id);
    }

    /// Starts the task that applies `hub`'s announcements, unless one runs. Starting counts as
    /// an epoch change: announcements before it were not seen.
    fn follow(self: &Arc<Self>, hub: &Hub) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let announcements = hub.announcer.subscribe();
        lock(&self.state).epoch += 1;
        tokio::spawn(follow(
            Arc::downgrade(self),
            announcements,
            hub.store.clone(),
            hub.metrics.clone(),
        ));
    }
}

/// Applies announcements until the announcer or the registry goes away.
async fn follow(
    registry: Weak<InFlight>,
    mut announcements: broadcast::Receiver<Revocation>,
    store: Arc<dyn Store>,
    metrics: Arc<crate::metrics::HubMetrics>,
) {
    loop {
        let change = announcements.recv().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        match change {
            Ok(change) => {
                if understood(&change) {
                    let cut = registry.apply(&change);
                    metrics.answers_cut.inc_by(cut as u64);
                    if cut > 0 {
                        tracing::info!(
                            answers = cut,
                            revocation = ?change,
                            "answers in flight cut"
                        );
                    }
                } else {
                    let cut = registry.recheck(store.as_ref()).await;
                    metrics.answers_cut.inc_by(cut as u64);
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "revocations were missed; re-checking every answer in flight"
                );
                let cut = registry.recheck(store.as_ref()).await;
                metrics.answers_cut.inc_by(cut as u64);
            }
            Err(broadcast::error::RecvError::Closed) => {
                registry.watching.store(false, Ordering::Release);
                return;
            }
        }
    }
}

/// The monotonic instant at which a token expiring at `expires_at` (Unix seconds) ends.
fn deadline_of(expires_at: i64) -> Instant {
    let expiry = UNIX_EPOCH + Duration::from_secs(u64::try_from(expires_at).unwrap_or(0));
    let left = expiry
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    // Far-future expiries (none are issued) still make a valid deadline.
    Instant::now() + left.min(Duration::from_secs(10 * 365 * 24 * 3600))
}

/// One answer's place in the registry: cut by a matching announcement or by the token's
/// expiry, from admission to the answer's end.
pub struct Ticket {
    registry: Weak<InFlight>,
    id: u64,
    epoch: u64,
    /// None once the registry went away without cutting (the hub is shutting down).
    cut: Option<oneshot::Receiver<RelayError>>,
    expiry: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("id", &self.id).finish()
    }
}

impl Ticket {
    /// The epoch the answer was admitted in: when it differs from the epoch read before the
    /// grant check, an announcement may have come between the two, and the grant must be
    /// read again.
    pub fn admitted_in(&self) -> u64 {
        self.epoch
    }

    /// Whether the answer must stop now, and why.
    fn poll_cut(&mut self, cx: &mut Context<'_>) -> Poll<RelayError> {
        if let Some(cut) = self.cut.as_mut() {
            match Pin::new(cut).poll(cx) {
                Poll::Ready(Ok(reason)) => return Poll::Ready(reason),
                // The registry went away: only the clock is left.
                Poll::Ready(Err(_)) => self.cut = None,
                Poll::Pending => {}
            }
        }
        match self.expiry.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(RelayError::TokenExpired),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Relays `query` through `router` under this ticket: the wait for the first chunk and
    /// every chunk after it stop as soon as the ticket is cut.
    ///
    /// # Errors
    /// The router's refusal, or the cut's reason when it came before the first chunk.
    pub async fn relay(
        mut self,
        router: &dyn ConnectorRouter,
        connector_id: &str,
        query: RelayedQuery,
    ) -> Result<RelayStream, RelayError> {
        let relayed = self.until_cut(router.relay(connector_id, query)).await;
        Ok(self.guard(relayed??))
    }

    /// Runs `work` (the wait for a first chunk, a subscription's first values) unless the
    /// ticket is cut first, in which case `work` is dropped and the cut's reason returned.
    ///
    /// # Errors
    /// The cut's reason.
    pub async fn until_cut<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, RelayError> {
        tokio::select! {
            biased;
            // Dropping the pending work cancels it on the connector.
            reason = std::future::poll_fn(|cx| self.poll_cut(cx)) => Err(reason),
            done = work => Ok(done),
        }
    }

    /// Puts `stream` under this ticket: once cut, the stream is dropped at once (whether or
    /// not the app reads) and the app's stream yields the cut's reason, then ends.
    pub fn guard(mut self, stream: RelayStream) -> RelayStream {
        let computed_by = stream.computed();
        let (guarded, mut done) = Guarded::new(stream);
        // The cut does not wait for the app to read: an app that stopped reading still has
        // its query cancelled on the connector at once.
        let shared = guarded.shared.clone();
        tokio::spawn(async move {
            tokio::select! {
                reason = std::future::poll_fn(|cx| self.poll_cut(cx)) => shared.cut(reason),
                // The answer ended or the app went away.
                _ = &mut done => {}
            }
            // Leaves the registry.
            drop(self);
        });
        RelayStream::new(guarded.boxed()).computed_by(computed_by)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.forget(self.id);
        }
    }
}

/// What the app's stream and its ticket's watcher share.
struct Shared {
    state: Mutex<Cut>,
    waker: AtomicWaker,
}

#[derive(Default)]
struct Cut {
    /// The connector's answer, until it ends or is cut.
    answer: Option<RelayStream>,
    /// Why it was cut, until the app's stream has said so.
    reason: Option<RelayError>,
    /// Nothing more is yielded.
    over: bool,
}

impl Shared {
    /// Cuts the answer: the connector's stream is dropped now (cancelling the query there)
    /// and the app's stream yields `reason` next.
    fn cut(&self, reason: RelayError) {
        let answer = {
            let mut state = lock(&self.state);
            if state.over {
                return;
            }
            state.reason = Some(reason);
            state.answer.take()
        };
        drop(answer);
        self.waker.wake();
    }
}

/// An answer under a ticket: once cut it yields the reason and nothing more.
struct Guarded {
    shared: Arc<Shared>,
    /// Dropped when the stream is over or dropped: the ticket's watcher then stops.
    done: Option<oneshot::Sender<()>>,
}

impl Guarded {
    /// The stream, and what resolves when it is over or dropped.
    fn new(answer: RelayStream) -> (Self, oneshot::Receiver<()>) {
        let (done, over) = oneshot::channel();
        let guarded = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(Cut {
                    answer: Some(answer),
                    ..Cut::default()
                }),
                waker: AtomicWaker::new(),
            }),
            done: Some(done),
        };
        (guarded, over)
    }
}

impl Stream for Guarded {
    type Item = Result<Bytes, RelayError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.shared.waker.register(cx.waker());
        let mut state = lock(&this.shared.state);
        if state.over {
            return Poll::Ready(None);
        }
        if let Some(reason) = state.reason.take() {
            state.over = true;
            drop(state);
            this.done = None;
            return Poll::Ready(Some(Err(reason)));
        }
        let Some(answer) = state.answer.as_mut() else {
            return Poll::Pending;
        };
        match answer.poll_next_unpin(cx) {
            Poll::Ready(None) => {
                state.answer = None;
                state.over = true;
                drop(state);
                this.done = None;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder {
            user_id: "u1".into(),
            app_id: "app".into(),
            source_id: "src_a".into(),
            connector_id: "con_a".into(),
            family_id: "fam".into(),
            expires_at: crate::clock::now() + 600,
        }
    }

    #[test]
    fn announcements_match_whose_access_an_answer_serves() {
        let h = holder();
        let grant = |user: &str, app: &str, source: Option<&str>| Revocation::Grant {
            user_id: user.into(),
            app_id: app.into(),
            source_id: source.map(str::to_owned),
        };
        let cases = [
            (grant("u1", "app", Some("src_a")), true),
            (grant("u1", "app", None), true),
            (grant("u1", "app", Some("src_b")), false),
            (grant("u2", "app", None), false),
            (grant("u1", "other", None), false),
            (
                Revocation::AppRemoved {
                    app_id: "app".into(),
                },
                true,
            ),
            (
                Revocation::AppRemoved {
                    app_id: "other".into(),
                },
                false,
            ),
            (
                Revocation::TokenFamily {
                    family_id: "fam".into(),
                },
                true,
            ),
            (
                Revocation::TokenFamily {
                    family_id: "other".into(),
                },
                false,
            ),
            (
                Revocation::ConnectorRemoved {
                    connector_id: "con_a".into(),
                },
                true,
            ),
            (
                Revocation::ConnectorRemoved {
                    connector_id: "con_b".into(),
                },
                false,
            ),
            (
                Revocation::Granted {
                    user_id: "u1".into(),
                    app_id: "app".into(),
                    source_ids: vec!["src_a".into()],
                },
                false,
            ),
        ];
        for (change, ends) in cases {
            assert!(understood(&change), "{change:?}");
            assert_eq!(h.ended_by(&change), ends, "{change:?}");
        }
    }

    #[tokio::test]
    async fn an_announcement_cuts_only_the_matching_answers() {
        let registry = Arc::new(InFlight::default());
        let mut mine = holder();
        let mut other = holder();
        other.app_id = "other".into();
        let (a, b) = (registry.clone(), registry.clone());
        mine.source_id = "src_a".into();
        let mut ticket_a = a.register(mine);
        let mut ticket_b = b.register(other);
        assert_eq!(registry.running(), 2);
        let before = registry.epoch();
        let cut = registry.apply(&Revocation::AppRemoved {
            app_id: "app".into(),
        });
        assert_eq!(cut, 1);
        assert!(
            registry.epoch() > before,
            "an applied announcement moves the epoch"
        );
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(ticket_a.poll_cut(&mut cx), Poll::Ready(RelayError::Revoked));
        assert_eq!(ticket_b.poll_cut(&mut cx), Poll::Pending);
        drop(ticket_a);
        assert_eq!(registry.running(), 1, "an ended answer leaves the registry");
    }

    #[tokio::test]
    async fn missed_announcements_make_the_registry_ask_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::hub::open_store(&dir.path().join("hub"))
            .await
            .unwrap();
        let registry = Arc::new(InFlight::default());
        // No grant in this store: an answer the store no longer allows.
        let mut ticket = registry.register(holder());
        let before = registry.epoch();
        registry.recheck(&store).await;
        assert!(registry.epoch() > before, "a re-check moves the epoch");
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(ticket.poll_cut(&mut cx), Poll::Ready(RelayError::Revoked));
    }

    fn endless() -> RelayStream {
        RelayStream::new(
            futures::stream::repeat_with(|| Ok(Bytes::from_static(b"x")))
                .then(|item| async move {
                    tokio::task::yield_now().await;
                    item
                })
                .boxed(),
        )
    }

    /// A router whose every answer is endless, and which counts the answers still alive.
    #[derive(Debug, Default)]
    struct Endless {
        alive: Arc<()>,
    }

    #[async_trait::async_trait]
    impl ConnectorRouter for Endless {
        async fn relay(&self, _: &str, _: RelayedQuery) -> Result<RelayStream, RelayError> {
            let alive = self.alive.clone();
            Ok(RelayStream::new(
                endless()
                    .map(move |item| {
                        let _alive = &alive;
                        item
                    })
                    .boxed(),
            ))
        }

        fn is_online(&self, _: &str) -> bool {
            true
        }
    }

    fn query() -> RelayedQuery {
        RelayedQuery {
            query_id: "q".into(),
            app_id: "app".into(),
            user_id: "u1".into(),
            source: "line-1".into(),
            format: uplink_link::ResultFormat::Json,
            query: serde_json::from_str(r#"{"type":"snapshot","tags":["T"]}"#).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_cut_answer_yields_an_error_then_nothing_and_is_dropped_unread() {
        let registry = Arc::new(InFlight::default());
        let router = Endless::default();
        let mut answer = registry
            .register(holder())
            .relay(&router, "con_a", query())
            .await
            .unwrap();
        assert!(answer.next().await.unwrap().is_ok());
        assert_eq!(Arc::strong_count(&router.alive), 2);
        // The app stops reading; the revoke still reaches the connector's stream.
        registry.apply(&Revocation::AppRemoved {
            app_id: "app".into(),
        });
        tokio::time::timeout(Duration::from_secs(10), async {
            while Arc::strong_count(&router.alive) > 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the connector's answer is dropped without the app reading");
        assert_eq!(answer.next().await, Some(Err(RelayError::Revoked)));
        assert_eq!(answer.next().await, None);
        tokio::task::yield_now().await;
        assert_eq!(registry.running(), 0, "a cut answer leaves the registry");
    }

    #[tokio::test]
    async fn an_expired_token_cuts_its_answer() {
        let registry = Arc::new(InFlight::default());
        let mut expiring = holder();
        expiring.expires_at = crate::clock::now() + 1;
        let mut answer = registry
            .register(expiring)
            .relay(&Endless::default(), "con_a", query())
            .await
            .unwrap();
        let mut last = None;
        while let Some(item) = answer.next().await {
            last = Some(item);
        }
        assert_eq!(last, Some(Err(RelayError::TokenExpired)));
    }

    #[tokio::test]
    async fn an_answer_that_ends_leaves_the_registry() {
        let registry = Arc::new(InFlight::default());
        #[derive(Debug)]
        struct Short;
        #[async_trait::async_trait]
        impl ConnectorRouter for Short {
            async fn relay(&self, _: &str, _: RelayedQuery) -> Result<RelayStream, RelayError> {
                Ok(RelayStream::new(
                    futures::stream::iter([Ok(Bytes::from_static(b"{}"))]).boxed(),
                ))
            }
            fn is_online(&self, _: &str) -> bool {
                true
            }
        }
        let mut answer = registry
            .register(holder())
            .relay(&Short, "con_a", query())
            .await
            .unwrap();
        assert_eq!(answer.next().await, Some(Ok(Bytes::from_static(b"{}"))));
        assert_eq!(answer.next().await, None);
        tokio::time::timeout(Duration::from_secs(10), async {
            while registry.running() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the ticket is released");
    }
}
