//! The adapter's own SQLite database: connection pool and embedded migrations.
//!
//! Migrations live in `municipal-adapter/migrations/` (sqlx's `<version>_<name>.sql`
//! layout, so the sqlx CLI can also run them) and are compiled into the binary, so a
//! deployed adapter needs no migrations directory at run time.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database_url {0:?} is not a SQLite URL (sqlite://…); the adapter keeps its register in SQLite")]
    NotSqlite(String),
    #[error("cannot open database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// (version, description, SQL) of every migration, in order.
const MIGRATIONS: [(i64, &str, &str); 5] = [
    (
        20261123000001,
        "register",
        include_str!("../migrations/20261123000001_register.sql"),
    ),
    (
        20261123000002,
        "answers",
        include_str!("../migrations/20261123000002_answers.sql"),
    ),
    (
        20261123000003,
        "register_ledgers",
        include_str!("../migrations/20261123000003_register_ledgers.sql"),
    ),
    (
        20261123000010,
        "domicile_registrations",
        include_str!("../migrations/20261123000010_domicile_registrations.sql"),
    ),
    (
        20261123000011,
        "issuance_records",
        include_str!("../migrations/20261123000011_issuance_records.sql"),
    ),
];

/// The migrations above as a sqlx source (avoids the `migrate!` macro and with it the
/// sqlx proc-macro build).
#[derive(Debug)]
struct EmbeddedMigrations;

impl MigrationSource<'static> for EmbeddedMigrations {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Opens (creating if needed) the database and applies pending migrations.
pub async fn connect_and_migrate(database_url: &str) -> Result<SqlitePool, DbError> {
    if !database_url.starts_with("sqlite:") {
        return Err(DbError::NotSqlite(database_url.to_owned()));
    }
    let open_error = |source| DbError::Open {
        url: database_url.to_owned(),
        source,
    };
    let options = SqliteConnectOptions::from_str(database_url)
        .map_err(open_error)?
        .create_if_missing(true)
        // WAL lets the many concurrent readers proceed while one answer is written.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        // Writers queue on SQLite's single write lock; wait instead of failing a fetch.
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(open_error)?;
    Migrator::new(EmbeddedMigrations).await?.run(&pool).await?;
    Ok(pool)
}
