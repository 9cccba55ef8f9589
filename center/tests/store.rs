//! The store's write path (`center::store`) on SQLite (group commit on one writer) and
//! PostgreSQL (a transaction per job): a job's commit, rollback or error reaches only
//! its own writes, also when it shares a batch with others; a job sees the writes of
//! the jobs before it; an answer is given only once its write is stored; a panicking
//! job fails its batch cleanly and the writer goes on; a closed store refuses writes;
//! on SQLite the write-ahead log is checkpointed and starts over under steady writes.

mod common;

use center::store::{Decision, Store};
use common::{fresh_url, Backend};
use futures_util::FutureExt as _;
use sqlx::{AnyConnection, Connection as _};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the job gave up: {0}")]
    GaveUp(String),
}

struct World {
    dir: std::path::PathBuf,
    store: Store,
    url: String,
}

impl World {
    async fn new(backend: Backend) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("center-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = fresh_url(backend, &dir).await?;
        let store = center::db::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE scratch (name TEXT PRIMARY KEY, seen BIGINT NOT NULL)")
            .execute(store.pool())
            .await
            .unwrap();
        Some(Self { dir, store, url })
    }

    async fn names(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM scratch ORDER BY name")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }

    async fn close(self) {
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One write job that runs `sql` with `value` as its one parameter.
async fn insert_text(store: &Store, sql: &'static str, value: String) -> Result<(), TestError> {
    store
        .write(move |connection| {
            async move {
                sqlx::query(sql)
                    .bind(&value)
                    .execute(&mut *connection)
                    .await?;
                Ok::<_, TestError>(Decision::Commit(()))
            }
            .boxed()
        })
        .await
}

/// Inserts `name` with the number of rows it saw before its own insert.
async fn insert(connection: &mut AnyConnection, name: &str) -> Result<i64, TestError> {
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scratch")
        .fetch_one(&mut *connection)
        .await?;
    sqlx::query("INSERT INTO scratch (name, seen) VALUES ($1, $2)")
        .bind(name)
        .bind(seen)
        .execute(&mut *connection)
        .await?;
    Ok(seen)
}

/// What a job does after its insert.
#[derive(Clone, Copy, Debug)]
enum Then {
    Commit,
    Rollback,
    Fail,
}

async fn job(
    store: &Store,
    name: &'static str,
    delay_ms: u64,
    then: Then,
) -> Result<i64, TestError> {
    store
        .write(move |connection| {
            async move {
                // The first job holds its batch open so the others queue behind it and
                // join the same group commit.
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                let seen = insert(connection, name).await?;
                match then {
                    Then::Commit => Ok(Decision::Commit(seen)),
                    Then::Rollback => Ok(Decision::Rollback(seen)),
                    Then::Fail => Err(TestError::GaveUp(name.to_owned())),
                }
            }
            .boxed()
        })
        .await
}

async fn each_job_decides_for_itself(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let (a, b, c, d, e) = tokio::join!(
        job(&w.store, "a", 100, Then::Commit),
        job(&w.store, "b", 0, Then::Rollback),
        job(&w.store, "c", 0, Then::Fail),
        job(&w.store, "d", 0, Then::Commit),
        job(&w.store, "e", 0, Then::Commit),
    );
    assert!(a.is_ok(), "{a:?}");
    // A rolled-back job still answers its value; a failed one its own error.
    assert!(b.is_ok(), "{b:?}");
    assert!(
        matches!(&c, Err(TestError::GaveUp(name)) if name == "c"),
        "{c:?}"
    );
    assert!(d.is_ok() && e.is_ok(), "{d:?} {e:?}");
    // Only the committed jobs' rows are stored.
    assert_eq!(w.names().await, ["a", "d", "e"]);
    // Each saw exactly the committed rows before it: on SQLite the whole group shares
    // one transaction, and the undone jobs left nothing behind for later ones.
    let seen: Vec<(String, i64)> = sqlx::query_as("SELECT name, seen FROM scratch ORDER BY name")
        .fetch_all(w.store.pool())
        .await
        .unwrap();
    let mut counts: Vec<i64> = seen.iter().map(|(_, n)| *n).collect();
    counts.sort_unstable();
    if backend == Backend::Sqlite {
        // In submission order: a (0), then d (1: a's row), then e (2).
        assert_eq!(seen, [("a".into(), 0), ("d".into(), 1), ("e".into(), 2)]);
    } else {
        // Concurrent transactions on PostgreSQL: each saw the rows committed before it.
        assert!(counts.iter().all(|n| (0..=2).contains(n)), "{seen:?}");
    }
    w.close().await;
}

#[tokio::test]
async fn each_job_decides_for_itself_sqlite() {
    each_job_decides_for_itself(Backend::Sqlite).await;
}

#[tokio::test]
async fn each_job_decides_for_itself_postgres() {
    each_job_decides_for_itself(Backend::Postgres).await;
}

/// Many concurrent writers: every answer is stored before it is given (a fresh
/// connection on the same database sees the row at once), and nothing is lost.
async fn answers_only_what_is_stored(backend: Backend) {
    const WRITERS: usize = 300;
    let Some(w) = World::new(backend).await else {
        return;
    };
    let observer = sqlx::AnyPool::connect(&w.url).await.unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = w.store.clone();
            let observer = observer.clone();
            tokio::spawn(async move {
                let name = format!("writer-{i:04}");
                let own = name.clone();
                insert_text(
                    &store,
                    "INSERT INTO scratch (name, seen) VALUES ($1, 0)",
                    own,
                )
                .await
                .unwrap();
                let stored: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM scratch WHERE name = $1")
                        .bind(&name)
                        .fetch_one(&observer)
                        .await
                        .unwrap();
                assert_eq!(stored, 1, "{name} answered before it was stored");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(w.names().await.len(), WRITERS);
    // /metrics sees every job, and on SQLite fewer commits than jobs: they were grouped.
    let metrics = w.store.metrics();
    assert_eq!(metrics.jobs_per_commit.sum(), WRITERS as f64);
    assert_eq!(
        metrics.commit_seconds.count(),
        metrics.jobs_per_commit.count()
    );
    assert_eq!(metrics.failed_commits.get(), 0);
    let commits = metrics.jobs_per_commit.count();
    match backend {
        Backend::Sqlite => assert!(
            commits < WRITERS as u64,
            "{WRITERS} concurrent writers made {commits} commits"
        ),
        Backend::Postgres => assert_eq!(commits, WRITERS as u64),
    }
    observer.close().await;
    w.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_only_what_is_stored_sqlite() {
    answers_only_what_is_stored(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_only_what_is_stored_postgres() {
    answers_only_what_is_stored(Backend::Postgres).await;
}

/// SQLite only (on PostgreSQL a job runs on its caller's task, so a panic is the
/// caller's): a panicking job undoes its whole batch and fails every job of it, and
/// the writer serves the next batch.
#[tokio::test]
async fn a_panicking_job_fails_its_batch_and_the_writer_goes_on() {
    let w = World::new(Backend::Sqlite).await.unwrap();
    let panicking = async {
        w.store
            .write(|connection| {
                async move {
                    insert(connection, "p").await?;
                    if connection.ping().await.is_ok() {
                        panic!("a bug in a write job");
                    }
                    Ok::<_, TestError>(Decision::Commit(0))
                }
                .boxed()
            })
            .await
    };
    let (before, panicked) = tokio::join!(job(&w.store, "before", 100, Then::Commit), panicking);
    assert!(
        matches!(&before, Err(TestError::Db(sqlx::Error::Io(e))) if e.to_string().contains("nothing of this write was stored")),
        "{before:?}"
    );
    assert!(
        matches!(panicked, Err(TestError::Db(sqlx::Error::WorkerCrashed))),
        "{panicked:?}"
    );
    assert!(w.names().await.is_empty(), "the batch was undone");
    // The writer still works.
    assert_eq!(job(&w.store, "after", 0, Then::Commit).await.unwrap(), 0);
    assert_eq!(w.names().await, ["after"]);
    let metrics = w.store.metrics();
    assert_eq!(metrics.failed_commits.get(), 1, "the panicked batch");
    assert_eq!(
        metrics.commit_seconds.count(),
        2,
        "that batch and the one after"
    );
    w.close().await;
}

/// A closed store refuses writes with a database error instead of hanging.
async fn a_closed_store_refuses_writes(backend: Backend) {
    let Some(w) = World::new(backend).await else {
        return;
    };
    let store = w.store.clone();
    store.close().await;
    let refused = job(&store, "late", 0, Then::Commit).await;
    assert!(matches!(refused, Err(TestError::Db(_))), "{refused:?}");
    w.close().await;
}

#[tokio::test]
async fn a_closed_store_refuses_writes_sqlite() {
    a_closed_store_refuses_writes(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_closed_store_refuses_writes_postgres() {
    a_closed_store_refuses_writes(Backend::Postgres).await;
}

/// SQLite: the writer never checkpoints, so a background task must copy the
/// write-ahead log into the database file; within a few intervals the file alone (read
/// as immutable, which ignores the log) holds every committed row.
#[tokio::test]
async fn the_log_is_checkpointed_into_the_database_file() {
    const ROWS: usize = 50;
    let w = World::new(Backend::Sqlite).await.unwrap();
    for i in 0..ROWS {
        let name = format!("row-{i:03}");
        w.store
            .write(move |connection| {
                async move {
                    insert(connection, &name).await?;
                    Ok::<_, TestError>(Decision::Commit(()))
                }
                .boxed()
            })
            .await
            .unwrap();
    }
    let file_only = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(w.dir.join("center.sqlite"))
        .immutable(true)
        .read_only(true);
    let mut in_file = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut reader = sqlx::SqliteConnection::connect_with(&file_only)
            .await
            .unwrap();
        in_file = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM scratch")
            .fetch_one(&mut reader)
            .await
            .unwrap_or(0);
        reader.close().await.unwrap();
        if in_file == ROWS as i64 {
            break;
        }
    }
    assert_eq!(
        in_file, ROWS as i64,
        "rows still only in the write-ahead log"
    );
    w.close().await;
}

/// The checkpoint sequence number in a write-ahead log's header: SQLite adds one each
/// time it starts the log over. `None` while there is no log yet.
fn log_restarts(wal: &std::path::Path) -> Option<u32> {
    let header = std::fs::read(wal).ok()?;
    let bytes: [u8; 4] = header.get(12..16)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// SQLite under steady load: writes without pause and readers always in the log, the
/// state in which a `PASSIVE` checkpoint alone never lets the log start over (it held
/// every byte ever written). The log must start over again and again, so that it stays
/// far smaller than what went through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_over_under_steady_writes() {
    const WRITERS: usize = 16;
    const ROW_BYTES: usize = 4_096;
    const DEADLINE_MS: u64 = 60_000;
    let w = World::new(Backend::Sqlite).await.unwrap();
    sqlx::query("CREATE TABLE bulk (n INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(w.store.pool())
        .await
        .unwrap();
    let wal = w.dir.join("center.sqlite-wal");
    let threshold_bytes = center::store::WAL_RESTART_AT_FRAMES as u64 * 4_096;
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let written_bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (store, running, written) = (w.store.clone(), running.clone(), written_bytes.clone());
        tasks.push(tokio::spawn(async move {
            let row = format!("{writer:x}").repeat(ROW_BYTES)[..ROW_BYTES].to_owned();
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                let body = row.clone();
                insert_text(&store, "INSERT INTO bulk (body) VALUES ($1)", body)
                    .await
                    .unwrap();
                written.fetch_add(ROW_BYTES as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for _ in 0..2 {
        let (pool, running) = (w.store.pool().clone(), running.clone());
        tasks.push(tokio::spawn(async move {
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM bulk")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            }
        }));
    }
    // Until the log has started over twice after its first threshold's worth.
    let started = std::time::Instant::now();
    let mut first = None;
    let mut last = None;
    let mut largest_wal_bytes = 0;
    while started.elapsed() < Duration::from_millis(DEADLINE_MS) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        largest_wal_bytes = largest_wal_bytes.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        let restarts = log_restarts(&wal);
        if written_bytes.load(std::sync::atomic::Ordering::Relaxed) < threshold_bytes {
            continue;
        }
        first = first.or(restarts);
        last = restarts;
        if let (Some(a), Some(b)) = (first, last) {
            if b >= a + 2 {
                break;
            }
        }
    }
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let written = written_bytes.load(std::sync::atomic::Ordering::Relaxed);
    let (Some(first), Some(last)) = (first, last) else {
        panic!("no write-ahead log after {written} bytes written");
    };
    assert!(
        last >= first + 2,
        "the log started over {} times in {DEADLINE_MS} ms of steady writes ({written} bytes, \
         log at most {largest_wal_bytes} bytes)",
        last - first
    );
    assert!(written > threshold_bytes, "the load wrote {written} bytes");
    assert!(
        largest_wal_bytes < written,
        "the log grew to {largest_wal_bytes} bytes for {written} bytes written"
    );
    assert!(
        w.store.metrics().log_restarts.get() >= 2,
        "counted in /metrics"
    );
    w.close().await;
}
