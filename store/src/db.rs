//! Connecting, migrating, and the transaction helpers every operation uses.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::changes::{Change, Changes};
use crate::error::{Result, StoreError};

/// Rows bound by one multi-row statement ([`values_rows`]): far below the bind parameter limits
/// of both backends (SQLite 32766, PostgreSQL 65535) for the widest table written this way.
pub(crate) const ROWS_PER_STATEMENT: usize = 100;

/// The `VALUES` list of a multi-row statement: `rows` tuples of `cols` numbered placeholders,
/// the first being `$first`.
pub(crate) fn values_rows(rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (0..cols)
                .map(|c| format!("${}", first + r * cols + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Row counts a multi-row statement is padded to ([`padded_rows`]).
const PADDED_ROWS: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, ROWS_PER_STATEMENT];

/// The number of rows a multi-row statement of `rows` rows (at most [`ROWS_PER_STATEMENT`]) is
/// padded to with rows of NULLs the statement skips: a few statement texts then serve every
/// count and stay in each connection's prepared statement cache (sqlx prepares each distinct
/// text once per connection; a miss costs a round trip).
pub(crate) fn padded_rows(rows: usize) -> usize {
    PADDED_ROWS.into_iter().find(|&n| n >= rows).unwrap_or(rows)
}

/// Executes in `tx` the statement `sql` makes of a row source, for `values` in order: one
/// statement per [`ROWS_PER_STATEMENT`] values (one round trip each). The row source is a
/// `VALUES` list of one-column rows, padded ([`padded_rows`]) with NULL rows, given as
/// `(VALUES ...) AS v`: the statement reads `v.column1` and skips `v.column1 IS NULL`.
pub(crate) async fn execute_for_values(
    tx: &mut Transaction<'static, Any>,
    sql: impl Fn(&str) -> String,
    values: &[&str],
) -> Result<()> {
    for group in values.chunks(ROWS_PER_STATEMENT) {
        let rows = padded_rows(group.len());
        let source = format!("(VALUES {}) AS v", values_rows(rows, 1, 1));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql(&source)));
        for value in group {
            query = query.bind(*value);
        }
        for _ in group.len()..rows {
            query = query.bind(None::<&str>);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (the zero-setup default).
    Sqlite,
    /// A PostgreSQL server (production; several Postern nodes may share it).
    Postgres,
}

impl FromStr for Backend {
    type Err = StoreError;
    fn from_str(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }
}

/// The shared handle to Postern's database. Cheap to clone; all clones share one pool and one change bus.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) changes: Changes,
    /// The one login limiter of the process (see [`crate::login`]).
    pub(crate) limiter: std::sync::Arc<crate::login::Limiter>,
    /// Set once [`Store::index_backlog`] found every stored message indexed: from then on
    /// SEARCH skips its look for unindexed blobs (see [`crate::search_index`]).
    pub(crate) indexed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Accepted messages waiting to be written in one transaction ([`crate::group_commit`]).
    pub(crate) group: std::sync::Arc<crate::group_commit::GroupCommit>,
    /// The background indexer of delivered messages' body texts ([`crate::deferred_text`]).
    pub(crate) texts: std::sync::Arc<crate::deferred_text::TextIndexer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// SQLite settings applied to every connection: WAL for concurrent readers, `synchronous=FULL` so a
/// committed transaction survives power loss (not only a crash), and a busy timeout so writers queue.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
];

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`), creating a SQLite file if missing,
    /// and runs the pending migrations of that backend; logins use the default limits.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, crate::LoginConfig::default()).await
    }

    /// [`Store::open`] with the login limits of the `[login]` table; every clone of the store
    /// shares the one limiter made here.
    pub async fn open_with(url: &str, login: crate::LoginConfig) -> Result<Store> {
        let limiter = std::sync::Arc::new(crate::login::Limiter::new(login));
        sqlx::any::install_default_drivers();
        let backend = Backend::from_str(url)?;
        let store = match backend {
            Backend::Sqlite => {
                let url = sqlite_url_with_create(url);
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in SQLITE_PRAGMAS {
                                conn.execute(pragma).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                let changes = Changes::sqlite(pool.clone(), sqlite_file(&url)).await?;
                Store {
                    pool,
                    backend,
                    changes,
                    limiter,
                    indexed: Default::default(),
                    group: Default::default(),
                    texts: Default::default(),
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Store {
                    pool,
                    backend,
                    changes: Changes::postgres(url).await?,
                    limiter,
                    indexed: Default::default(),
                    group: Default::default(),
                    texts: Default::default(),
                }
            }
        };
        tracing::info!(backend = ?store.backend, "store ready");
        Ok(store)
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers a trivial query (`SELECT 1`), for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`) so that two writers queue on the busy timeout instead of deadlocking
    /// when both upgrade from a read lock.
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Starts a write transaction ([`Store::write_tx`]) that holds the rows of `user_ids`
    /// locked, in ascending id order, until it ends. Every transaction that writes a user's mail
    /// data (mailboxes, messages, quota, Sieve scripts, junk statistics) takes this lock before
    /// anything else, so such transactions queue per user and never take their row locks in
    /// opposite orders (on PostgreSQL two of them did: STORE locked the mailbox row, then
    /// messages; EXPUNGE locked messages, then the mailbox row, and both failed with "deadlock
    /// detected"). SQLite needs nothing: `BEGIN IMMEDIATE` already serialises writers. On
    /// PostgreSQL `BEGIN` and the lock go in one round trip (one simple-protocol query holding
    /// both statements).
    pub(crate) async fn locked_tx(&self, user_ids: &[i64]) -> Result<Transaction<'static, Any>> {
        let mut ids = user_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if self.backend != Backend::Postgres || ids.is_empty() {
            return self.write_tx().await;
        }
        // The row locks are taken above the sort, so in ascending id order. Only integers are
        // formatted into the text (the simple protocol has no parameters).
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        let sql = format!(
            "BEGIN; SELECT id FROM users WHERE id IN ({}) ORDER BY id FOR UPDATE",
            ids.join(", ")
        );
        Ok(self.pool.begin_with(sqlx::AssertSqlSafe(sql)).await?)
    }

    /// Commits `tx` and publishes `changes`. On PostgreSQL the changes go out as NOTIFY inside the
    /// transaction (delivered to every node at commit); on SQLite they are written to `change_log`
    /// in the transaction (for other processes on the file) and broadcast here after commit.
    pub(crate) async fn commit(
        &self,
        mut tx: Transaction<'static, Any>,
        changes: Vec<Change>,
    ) -> Result<()> {
        match self.backend {
            Backend::Postgres => {
                // One statement for all of them (one round trip), in order.
                let payloads: Vec<String> = changes.iter().map(Change::encode).collect();
                let payloads: Vec<&str> = payloads.iter().map(String::as_str).collect();
                execute_for_values(
                    &mut tx,
                    |rows| {
                        format!(
                            "SELECT pg_notify('postern_changes', v.column1) FROM {rows} \
                             WHERE v.column1 IS NOT NULL"
                        )
                    },
                    &payloads,
                )
                .await?;
                tx.commit().await?;
            }
            Backend::Sqlite => {
                for change in &changes {
                    sqlx::query(
                        "INSERT INTO change_log (origin, payload, created_at) VALUES ($1, $2, $3)",
                    )
                    .bind(&self.changes.origin)
                    .bind(change.encode())
                    .bind(crate::unix_now())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                if !changes.is_empty() {
                    // Only now are the rows visible to other processes: wake their watchers.
                    self.changes.ring();
                }
                for change in changes {
                    self.changes.publish(change);
                }
            }
        }
        Ok(())
    }

    /// Subscribes to every change committed by this node (and, on PostgreSQL, by every node sharing
    /// the database). Consumers filter for what they watch; a lagging receiver loses old events and
    /// should resynchronise from the store.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

/// The database file of a `sqlite://PATH?...` URL (none for in-memory databases).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// Adds `mode=rwc` so that sqlx creates the SQLite file on first start.
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Reads column `col` of `row`; a short wrapper so call sites stay readable.
pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    use sqlx::Row;
    Ok(row.try_get(col)?)
}
