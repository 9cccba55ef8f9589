//! The center's write path: every change to the store is a [`Store::write`] job.
//!
//! On PostgreSQL a job is simply its own transaction on the pool: the server runs many
//! at once and groups their commits itself.
//!
//! On SQLite (the embedded default) one process-wide write lock and one `fsync` per
//! commit (`synchronous = FULL`) made every issuance wait: five commits per visit, each
//! holding the lock across its round trips to sqlx's database thread and through its
//! `fsync` (~0.9 ms here), while the other writers slept in SQLite's busy handler. So
//! on SQLite the jobs go to one writer task that owns one connection and runs them
//! *group commit*: it takes the first job waiting, `BEGIN IMMEDIATE`, runs it and every
//! job that arrived meanwhile (up to [`MAX_JOBS_PER_BATCH`]) each inside its own
//! savepoint, then one `COMMIT` (one `fsync`) for all. A job's caller hears its answer
//! only after that commit, so nothing is acknowledged that is not durable; if the
//! commit fails every job of the batch fails and nothing of it was written.
//!
//! A job decides for itself, as a transaction would: [`Decision::Commit`] keeps what it
//! wrote, [`Decision::Rollback`] or an error undoes it (its savepoint) without touching
//! the other jobs of the batch. A job sees the writes of the jobs before it in its
//! batch, exactly as if they had committed just before it.
//!
//! Reads do not come here: they use the pool ([`Store`] dereferences to it), and in
//! WAL mode they never wait on the writer. Nor does the bulk of checkpointing: the
//! writer's connection has automatic checkpoints off, and a task checkpoints the log
//! from the pool (`PASSIVE`, which never blocks the writer) every second.
//!
//! A `PASSIVE` checkpoint cannot bound the log alone: SQLite starts the log over only
//! when a write begins with every frame already copied, and under steady load the
//! writer has always appended more by then, so the log grew by every byte ever written
//! (1.5 GB for a 57 MB database in `cargo bench -p center --bench periodic`), and every
//! read got slower with it. So once the log passes [`WAL_RESTART_AT_FRAMES`] the task
//! asks the writer, between two batches, for a `RESTART` checkpoint: it copies the
//! little the last `PASSIVE` left and lets the next batch write the log from its start.

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::{AnyConnection, AnyPool, Connection as _};
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

/// Most jobs committed together: bounds how long one batch holds SQLite's lock (and so
/// how long a job can wait behind a batch that started without it).
pub const MAX_JOBS_PER_BATCH: usize = 128;

/// Jobs that may wait for the writer before [`Store::write`] itself waits (backpressure
/// instead of an unbounded queue).
const WRITE_QUEUE_CAPACITY: usize = 1_024;

/// How often the SQLite write-ahead log is copied back into the database file, off the
/// writer (see [`run_checkpoints`]).
const CHECKPOINT_INTERVAL_MS: u64 = 1_000;

/// Log length (frames, one database page each: 16 MiB at SQLite's 4 KiB pages) from
/// which the writer is asked to start the log over.
pub const WAL_RESTART_AT_FRAMES: i64 = 4_096;

/// The most the writer waits for readers to leave the log before it starts it over;
/// past it the restart is skipped and asked for again at the next checkpoint.
const WAL_RESTART_BUSY_TIMEOUT_MS: u64 = 100;

/// How long a connection waits for another process's write lock (the CLI's, another
/// replica's) before its statement fails busy.
pub const BUSY_TIMEOUT_MS: u64 = 10_000;

/// After a restart, the log file is cut back to this size (SQLite reuses the file
/// otherwise, keeping a burst's size on disk).
const WAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Commit latency buckets, seconds: an `fsync` here is ~1 ms, a slow disk's tens to
/// hundreds, and a batch behind another process's lock up to the busy timeout.
const COMMIT_BUCKETS_S: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Jobs per commit buckets: 1 on PostgreSQL, up to [`MAX_JOBS_PER_BATCH`] on SQLite.
const JOBS_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// How the write path is doing, for `/metrics` (`crate::metrics` registers these very
/// handles). Nothing here decides anything.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// One commit's time from its first statement to the end of `COMMIT`: on SQLite a
    /// whole group commit, which every job in it waited for.
    pub commit_seconds: Histogram,
    /// Jobs per commit (SQLite's group commits; always 1 on PostgreSQL).
    pub jobs_per_commit: Histogram,
    /// Commits that failed whole (every job of the batch answered an error).
    pub failed_commits: Counter,
    /// SQLite: times the write-ahead log was started over.
    pub log_restarts: Counter,
}

impl StoreMetrics {
    fn new() -> Self {
        Self {
            commit_seconds: Histogram::new(COMMIT_BUCKETS_S),
            jobs_per_commit: Histogram::new(JOBS_BUCKETS),
            failed_commits: Counter::default(),
            log_restarts: Counter::default(),
        }
    }

    fn committed(&self, started: Instant, jobs: usize, failed: bool) {
        self.commit_seconds.observe(started.elapsed().as_secs_f64());
        self.jobs_per_commit.observe(jobs as f64);
        if failed {
            self.failed_commits.inc();
        }
    }
}

/// What a job's transaction does at its end.
#[derive(Debug)]
pub enum Decision<T> {
    /// Keep what the job wrote.
    Commit(T),
    /// Undo what the job wrote (nothing of it reaches the database) and answer `T`.
    Rollback(T),
}

/// The center's database: the pool for reads, [`Store::write`] for every change.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// SQLite only: the group-commit writer's queue.
    writer: Option<mpsc::Sender<Message>>,
    metrics: StoreMetrics,
}

impl std::ops::Deref for Store {
    type Target = AnyPool;

    fn deref(&self) -> &AnyPool {
        &self.pool
    }
}

impl Store {
    /// Wraps an opened pool; on SQLite takes one of its connections for the writer
    /// (must be called inside a Tokio runtime: the writer is a task).
    pub async fn new(pool: AnyPool) -> Result<Self, sqlx::Error> {
        let is_sqlite = pool.connect_options().database_url.scheme() == "sqlite";
        let metrics = StoreMetrics::new();
        if !is_sqlite {
            return Ok(Self {
                pool,
                writer: None,
                metrics,
            });
        }
        // Detached: the writer keeps it for its life, and the pool may open another.
        let mut connection = pool.acquire().await?.detach();
        // The writer never checkpoints itself: a checkpoint after a commit (copying the
        // log into the database file and its fsync) would hold up every queued job.
        execute(&mut connection, "PRAGMA wal_autocheckpoint = 0").await?;
        execute(
            &mut connection,
            &format!("PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}"),
        )
        .await?;
        let (sender, receiver) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        tokio::spawn(run_checkpoints(pool.clone(), sender.downgrade()));
        tokio::spawn(run_writer(connection, receiver, metrics.clone()));
        Ok(Self {
            pool,
            writer: Some(sender),
            metrics,
        })
    }

    /// The pool, for readers that keep their own handle.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The write path's metrics (shared handles: registering them exports them live).
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Runs `body` as one transaction (on SQLite: one savepoint of a group commit) and
    /// answers what it decided once that is durable. `body` owns what it needs: on
    /// SQLite it runs on the writer task, which finishes it even if the caller stops
    /// waiting. `body` must not open a transaction of its own (`begin()` on its
    /// connection): on SQLite it already runs inside the writer's.
    pub async fn write<T, E, F>(&self, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<sqlx::Error> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<Decision<T>, E>>
            + Send
            + 'static,
    {
        let Some(writer) = &self.writer else {
            let started = Instant::now();
            let mut tx = self.pool.begin().await?;
            return match body(&mut tx).await? {
                Decision::Commit(value) => {
                    let committed = tx.commit().await;
                    self.metrics.committed(started, 1, committed.is_err());
                    committed?;
                    Ok(value)
                }
                Decision::Rollback(value) => {
                    tx.rollback().await?;
                    Ok(value)
                }
            };
        };
        let (reply, answer) = oneshot::channel();
        let job = Box::new(WriteJob {
            body,
            reply,
            span: tracing::Span::current(),
        });
        writer
            .send(Message::Job(job))
            .await
            .map_err(|_| E::from(sqlx::Error::PoolClosed))?;
        // No answer: the job panicked (its batch was rolled back) or the writer stopped.
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(sqlx::Error::WorkerCrashed)))
    }

    /// Closes the pool and stops the writer after the batch it is running; later
    /// writes fail with `PoolClosed`.
    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            let (ack, stopped) = oneshot::channel();
            if writer.send(Message::Stop(ack)).await.is_ok() {
                let _ = stopped.await;
            }
        }
        self.pool.close().await;
    }
}

enum Message {
    Job(Box<dyn Job>),
    /// Start the write-ahead log over between two batches ([`restart_log`]).
    RestartLog,
    Stop(oneshot::Sender<()>),
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Job(_) => f.write_str("Job"),
            Self::RestartLog => f.write_str("RestartLog"),
            Self::Stop(_) => f.write_str("Stop"),
        }
    }
}

/// Hands a job's answer to its caller once its batch has committed (`None`) or failed
/// (`Some(why)`).
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

/// A job as the writer sees it: run it on the batch's connection; or fail it unrun.
trait Job: Send {
    fn run<'c>(self: Box<Self>, connection: &'c mut AnyConnection) -> BoxFuture<'c, Ran>;
    fn fail(self: Box<Self>, why: &str);
}

/// A job that has run: whether its savepoint is kept, and its deferred answer.
struct Ran {
    keep: bool,
    deliver: Deliver,
}

struct WriteJob<F, T, E> {
    body: F,
    reply: oneshot::Sender<Result<T, E>>,
    /// The caller's span (the request id), so the job's statements log under it.
    span: tracing::Span,
}

impl<F, T, E> Job for WriteJob<F, T, E>
where
    T: Send + 'static,
    E: From<sqlx::Error> + Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<Decision<T>, E>>
        + Send
        + 'static,
{
    fn run<'c>(self: Box<Self>, connection: &'c mut AnyConnection) -> BoxFuture<'c, Ran> {
        let WriteJob { body, reply, span } = *self;
        async move {
            let (keep, result) = match body(connection).await {
                Ok(Decision::Commit(value)) => (true, Ok(value)),
                Ok(Decision::Rollback(value)) => (false, Ok(value)),
                Err(error) => (false, Err(error)),
            };
            let deliver: Deliver = Box::new(move |batch_failure| {
                let answer = match (batch_failure, result) {
                    // Its own error stands: nothing of it was kept either way.
                    (_, Err(error)) => Err(error),
                    (None, Ok(value)) => Ok(value),
                    // Even a rolled-back job's answer may rest on the batch's earlier
                    // writes (a key it found taken), which are gone now.
                    (Some(why), Ok(_)) => Err(E::from(batch_failed(why))),
                };
                let _ = reply.send(answer);
            });
            Ran { keep, deliver }
        }
        .instrument(span)
        .boxed()
    }

    fn fail(self: Box<Self>, why: &str) {
        let _ = self.reply.send(Err(E::from(batch_failed(why))));
    }
}

fn batch_failed(why: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!(
        "the group commit failed, nothing of this write was stored: {why}"
    )))
}

/// The SQLite writer: one batch at a time until every [`Store`] is gone or one asks it
/// to stop.
async fn run_writer(
    mut connection: AnyConnection,
    mut queue: mpsc::Receiver<Message>,
    metrics: StoreMetrics,
) {
    while let Some(message) = queue.recv().await {
        let first = match message {
            Message::Job(job) => job,
            Message::RestartLog => {
                restart_log(&mut connection, &metrics).await;
                continue;
            }
            Message::Stop(ack) => {
                let _ = connection.close().await;
                let _ = ack.send(());
                return;
            }
        };
        let after = run_batch(&mut connection, first, &mut queue, &metrics).await;
        if after.restart_log {
            restart_log(&mut connection, &metrics).await;
        }
        if let Some(ack) = after.stop {
            let _ = connection.close().await;
            let _ = ack.send(());
            return;
        }
    }
    let _ = connection.close().await;
}

/// Requests a batch met in the queue, for after its commit.
#[derive(Default)]
struct AfterBatch {
    stop: Option<oneshot::Sender<()>>,
    restart_log: bool,
}

/// On the writer, between batches: copies what is left of the write-ahead log into the
/// database file and waits (at most [`WAL_RESTART_BUSY_TIMEOUT_MS`]) for readers to
/// leave it, so that the next batch writes the log from its start.
async fn restart_log(connection: &mut AnyConnection, metrics: &StoreMetrics) {
    let outcome = async {
        execute(
            connection,
            &format!("PRAGMA busy_timeout = {WAL_RESTART_BUSY_TIMEOUT_MS}"),
        )
        .await?;
        let checkpoint = checkpoint(connection, "RESTART").await;
        execute(
            connection,
            &format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"),
        )
        .await?;
        checkpoint
    }
    .await;
    match outcome {
        Ok(result) if result.busy => tracing::debug!(
            log_frames = result.log_frames,
            copied_frames = result.copied_frames,
            "log restart skipped: a reader stayed; asked again later"
        ),
        Ok(result) => {
            metrics.log_restarts.inc();
            tracing::debug!(log_frames = result.log_frames, "write-ahead log restarted");
        }
        Err(error) => tracing::warn!(%error, "write-ahead log restart failed; asked again later"),
    }
}

/// What `PRAGMA wal_checkpoint` reports.
struct Checkpoint {
    /// It could not finish (a reader or writer was in the way).
    busy: bool,
    /// Frames in the log.
    log_frames: i64,
    /// Of those, frames now copied into the database file.
    copied_frames: i64,
}

async fn checkpoint(connection: &mut AnyConnection, mode: &str) -> Result<Checkpoint, sqlx::Error> {
    let (busy, log_frames, copied_frames): (i64, i64, i64) =
        sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})"))
            .fetch_one(&mut *connection)
            .await?;
    Ok(Checkpoint {
        busy: busy != 0,
        log_frames,
        copied_frames,
    })
}

/// Runs one group commit starting with `first`; returns what the queue asked for
/// meanwhile.
async fn run_batch(
    connection: &mut AnyConnection,
    first: Box<dyn Job>,
    queue: &mut mpsc::Receiver<Message>,
    metrics: &StoreMetrics,
) -> AfterBatch {
    let mut after = AfterBatch::default();
    let started = Instant::now();
    // IMMEDIATE: take the write lock now (another process may hold it; the busy
    // timeout waits), so no job finds its snapshot stale halfway.
    if let Err(error) = execute(connection, "BEGIN IMMEDIATE").await {
        first.fail(&error.to_string());
        metrics.committed(started, 1, true);
        return after;
    }
    let mut deliveries: Vec<Deliver> = Vec::with_capacity(MAX_JOBS_PER_BATCH);
    let mut aborted: Option<String> = None;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        if let Err(error) = execute(connection, "SAVEPOINT kofu_job").await {
            job.fail(&error.to_string());
            aborted = Some(error.to_string());
            break;
        }
        // A panicking job must not take the writer (and every later write) with it:
        // its answer is dropped (its caller hears `WorkerCrashed`) and the batch undone.
        let Ok(ran) = AssertUnwindSafe(job.run(connection)).catch_unwind().await else {
            tracing::error!("a write job panicked; its group commit is rolled back");
            aborted = Some("a write job of the same batch panicked".to_owned());
            break;
        };
        deliveries.push(ran.deliver);
        let end = if ran.keep {
            execute(connection, "RELEASE SAVEPOINT kofu_job").await
        } else {
            // Fails if SQLite already ended the whole transaction on an error: then
            // the batch is gone and must not be reported as stored.
            match execute(connection, "ROLLBACK TO SAVEPOINT kofu_job").await {
                Ok(()) => execute(connection, "RELEASE SAVEPOINT kofu_job").await,
                Err(error) => Err(error),
            }
        };
        if let Err(error) = end {
            aborted = Some(error.to_string());
            break;
        }
        if deliveries.len() >= MAX_JOBS_PER_BATCH {
            break;
        }
        match queue.try_recv() {
            Ok(Message::Job(job)) => next = Some(job),
            Ok(Message::RestartLog) => after.restart_log = true,
            Ok(Message::Stop(ack)) => after.stop = Some(ack),
            Err(_) => {}
        }
    }
    let failure = match aborted {
        Some(why) => {
            let _ = execute(connection, "ROLLBACK").await;
            Some(why)
        }
        None => match execute(connection, "COMMIT").await {
            Ok(()) => None,
            Err(error) => {
                let _ = execute(connection, "ROLLBACK").await;
                Some(error.to_string())
            }
        },
    };
    metrics.committed(started, deliveries.len(), failure.is_some());
    if let Some(why) = &failure {
        tracing::error!(jobs = deliveries.len(), %why, "group commit failed");
    }
    for deliver in deliveries {
        deliver(failure.as_deref());
    }
    after
}

/// Checkpoints the write-ahead log on a pool connection every
/// [`CHECKPOINT_INTERVAL_MS`] while the store lives. `PASSIVE` copies what no reader
/// still needs and never blocks the writer; a log left over by a busy interval is
/// copied at the next one. A log past [`WAL_RESTART_AT_FRAMES`] is the writer's to
/// start over (see the module documentation).
async fn run_checkpoints(pool: AnyPool, writer: mpsc::WeakSender<Message>) {
    let mut interval =
        tokio::time::interval(std::time::Duration::from_millis(CHECKPOINT_INTERVAL_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if pool.is_closed() {
            return;
        }
        let passive = async {
            let mut connection = pool.acquire().await?;
            checkpoint(&mut connection, "PASSIVE").await
        }
        .await;
        match passive {
            // Full queue: the writer is busy; the next interval asks again.
            Ok(result) if result.log_frames >= WAL_RESTART_AT_FRAMES => {
                let _ = writer.try_send(Message::RestartLog);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "write-ahead log checkpoint failed; retried next interval");
            }
        }
    }
}

async fn execute(connection: &mut AnyConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(&mut *connection).await.map(|_| ())
}
