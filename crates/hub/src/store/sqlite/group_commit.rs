//! Group commit for the writes room and the audit trail on SQLite: the statements of writes
//! arriving together run in one transaction on the single writer connection and share its
//! commit (one fsync under `synchronous=FULL`), instead of a commit each.
//!
//! Each caller still gets its answer only after the commit that holds its statements, so
//! nothing is answered before it is durable. The jobs of a batch run one after another in
//! arrival order inside the transaction, so two claims of one key in the same batch see each
//! other exactly as they would in two transactions: the first claims, the second finds it in
//! progress. If any statement of a batch fails, the whole transaction is rolled back and each
//! job runs again alone, so one bad job costs the others nothing but time.
//!
//! No timer: a batch is whatever queued while the previous one was committing, so a lone
//! write waits for nothing, and under load the batches grow by themselves. A runner task is
//! spawned when a job finds none running and ends when the queue is empty, so the batch in
//! progress finishes even if the request that started it goes away.

use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::SqlitePool;
use tokio::sync::oneshot;

use crate::error::{HubError, Result};
use crate::store::rows::writes::ClaimRow;
use crate::store::{AuditEvent, WriteClaim, WriteKey};

/// The most jobs one transaction takes: bounds how long a batch holds the writer.
const MAX_BATCH: usize = 128;

/// One thing to write, and where its outcome goes.
pub(super) enum Job {
    Claim {
        key: WriteKey,
        body_digest: String,
        now: i64,
        expired_before: i64,
        reply: oneshot::Sender<Result<WriteClaim>>,
    },
    Answer {
        key: WriteKey,
        status: u16,
        answer: String,
        audit: Vec<AuditEvent>,
        reply: oneshot::Sender<Result<()>>,
    },
    Release {
        key: WriteKey,
        reply: oneshot::Sender<Result<()>>,
    },
    Audit {
        event: AuditEvent,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// What a job's statements gave, before it is known whether they were committed.
enum Done {
    Claim(WriteClaim),
    Unit,
}

impl Job {
    async fn run(&self, conn: &mut sqlx::SqliteConnection) -> Result<Done> {
        match self {
            Self::Claim {
                key,
                body_digest,
                now,
                expired_before,
                ..
            } => claim(conn, key, body_digest, *now, *expired_before)
                .await
                .map(Done::Claim),
            Self::Answer {
                key,
                status,
                answer,
                audit,
                ..
            } => {
                for event in audit {
                    insert_audit(&mut *conn, event).await?;
                }
                sqlx::query(
                    "UPDATE idempotent_writes SET status = ?, answer = ? WHERE app_id = ? AND user_id = ? AND idempotency_key = ?",
                )
                .bind(i64::from(*status))
                .bind(answer)
                .bind(&key.app_id)
                .bind(&key.user_id)
                .bind(&key.key)
                .execute(conn)
                .await?;
                Ok(Done::Unit)
            }
            Self::Release { key, .. } => {
                sqlx::query(
                    "DELETE FROM idempotent_writes WHERE app_id = ? AND user_id = ? AND idempotency_key = ? AND answer IS NULL",
                )
                .bind(&key.app_id)
                .bind(&key.user_id)
                .bind(&key.key)
                .execute(conn)
                .await?;
                Ok(Done::Unit)
            }
            Self::Audit { event, .. } => {
                insert_audit(conn, event).await?;
                Ok(Done::Unit)
            }
        }
    }

    /// Tells the caller: `outcome` once committed, or the error.
    fn answer(self, outcome: Result<Done>) {
        match self {
            Self::Claim { reply, .. } => {
                let _ = reply.send(outcome.map(|done| match done {
                    Done::Claim(claim) => claim,
                    // A claim's statements always give a claim.
                    Done::Unit => WriteClaim::InProgress,
                }));
            }
            Self::Answer { reply, .. }
            | Self::Release { reply, .. }
            | Self::Audit { reply, .. } => {
                let _ = reply.send(outcome.map(|_| ()));
            }
        }
    }
}

async fn insert_audit(conn: &mut sqlx::SqliteConnection, e: &AuditEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, event, user_id, app_id, source_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(e.at)
    .bind(&e.event)
    .bind(&e.user_id)
    .bind(&e.app_id)
    .bind(&e.source_id)
    .bind(&e.detail)
    .execute(conn)
    .await?;
    Ok(())
}

async fn claim(
    conn: &mut sqlx::SqliteConnection,
    key: &WriteKey,
    body_digest: &str,
    now: i64,
    expired_before: i64,
) -> Result<WriteClaim> {
    sqlx::query(
        "DELETE FROM idempotent_writes WHERE app_id = ? AND user_id = ? AND idempotency_key = ? AND created_at < ?",
    )
    .bind(&key.app_id)
    .bind(&key.user_id)
    .bind(&key.key)
    .bind(expired_before)
    .execute(&mut *conn)
    .await?;
    let found: Option<ClaimRow> = sqlx::query_as(
        "SELECT body_digest, status, answer FROM idempotent_writes WHERE app_id = ? AND user_id = ? AND idempotency_key = ?",
    )
    .bind(&key.app_id)
    .bind(&key.user_id)
    .bind(&key.key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match found {
        Some(row) if row.body_digest != body_digest => WriteClaim::KeyReused,
        Some(ClaimRow {
            status: Some(status),
            answer: Some(answer),
            ..
        }) => WriteClaim::Answered {
            status: u16::try_from(status).unwrap_or(500),
            answer,
        },
        Some(_) => WriteClaim::InProgress,
        None => {
            sqlx::query(
                "INSERT INTO idempotent_writes (app_id, user_id, idempotency_key, body_digest, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&key.app_id)
            .bind(&key.user_id)
            .bind(&key.key)
            .bind(body_digest)
            .bind(now)
            .execute(conn)
            .await?;
            WriteClaim::Claimed
        }
    })
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Whether a runner is draining the queue.
    running: bool,
}

/// The queue of jobs waiting for the writer, shared by every clone of the store.
#[derive(Clone)]
pub(super) struct GroupCommit {
    writer: SqlitePool,
    queue: Arc<Mutex<Queue>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error a caller gets when its job was never run (the runtime shut down, or the runner
/// panicked).
fn not_run(_: oneshot::error::RecvError) -> HubError {
    HubError::Store(sqlx::Error::PoolClosed)
}

impl GroupCommit {
    pub(super) fn new(writer: SqlitePool) -> Self {
        Self {
            writer,
            queue: Arc::default(),
        }
    }

    /// Queues `job` (made with its reply channel) and waits for its committed outcome.
    pub(super) async fn run<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job,
    ) -> Result<T> {
        let (reply, outcome) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.queue);
            queue.jobs.push(job(reply));
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            let runner = self.clone();
            tokio::spawn(async move { runner.drain().await });
        }
        outcome.await.map_err(not_run)?
    }

    /// Commits batches until the queue is empty.
    async fn drain(self) {
        // A runner that stops early (a panic, or its runtime shutting down) must not leave
        // the queue marked as drained by nobody: its jobs are dropped (their callers get an
        // error) and the next job starts a new runner.
        struct Running<'a> {
            queue: &'a Mutex<Queue>,
            finished: bool,
        }
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                if !self.finished {
                    let mut queue = lock(self.queue);
                    queue.running = false;
                    queue.jobs.clear();
                }
            }
        }
        let mut running = Running {
            queue: &self.queue,
            finished: false,
        };
        loop {
            let batch: Vec<Job> = {
                let mut queue = lock(&self.queue);
                if queue.jobs.is_empty() {
                    queue.running = false;
                    running.finished = true;
                    return;
                }
                let n = queue.jobs.len().min(MAX_BATCH);
                queue.jobs.drain(..n).collect()
            };
            self.commit(batch).await;
        }
    }

    /// Runs `batch` in one transaction and answers each job once it is committed; on any
    /// failure, runs each job alone instead.
    async fn commit(&self, batch: Vec<Job>) {
        if batch.len() > 1 {
            match self.together(&batch).await {
                Ok(outcomes) => {
                    for (job, done) in batch.into_iter().zip(outcomes) {
                        job.answer(Ok(done));
                    }
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, jobs = batch.len(), "a grouped commit failed; running its writes one by one");
                }
            }
        }
        for job in batch {
            let outcome = self.alone(&job).await;
            job.answer(outcome);
        }
    }

    async fn together(&self, batch: &[Job]) -> Result<Vec<Done>> {
        let mut tx = self.writer.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in batch {
            outcomes.push(job.run(&mut tx).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn alone(&self, job: &Job) -> Result<Done> {
        let mut tx = self.writer.begin().await?;
        let done = job.run(&mut tx).await?;
        tx.commit().await?;
        Ok(done)
    }
}
