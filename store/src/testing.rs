//! Throw-away databases for tests: a SQLite file in a temporary directory, or a fresh PostgreSQL
//! database created through `DATABASE_URL` (which must name a role allowed to create databases).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::Store;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database that exists for one test and is removed when dropped.
pub struct TestDb {
    /// URL to open it with ([`Store::open`] or Postern's `database_url`).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl TestDb {
    /// A new SQLite database file.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create temp dir");
        let url = format!("sqlite://{}/postern.db", dir.path().display());
        TestDb {
            url,
            _dir: Some(dir),
            pg_drop: None,
        }
    }

    /// A new, empty PostgreSQL database next to the one `DATABASE_URL` names. Panics with
    /// instructions if `DATABASE_URL` is unset: PostgreSQL tests are never skipped silently.
    pub async fn postgres() -> TestDb {
        let base = std::env::var("DATABASE_URL").expect(
            "DATABASE_URL must name a PostgreSQL database whose role may CREATE DATABASE \
             (bash .ci/run sets one up); PostgreSQL tests are not skipped",
        );
        let name = format!(
            "postern_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("CREATE DATABASE (the role needs CREATEDB)");
        admin.close().await;
        let url = replace_db_name(&base, &name);
        TestDb {
            url,
            _dir: None,
            pg_drop: Some((base, name)),
        }
    }

    /// Opens a [`Store`] on this database.
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open store")
    }

    /// How many rows `table` has (for tests that check what an operation left behind).
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url)
            .await
            .expect("connect for counting");
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .expect("count rows");
        pool.close().await;
        row.try_get("n").expect("count is an integer")
    }

    /// Runs one SQL statement on this database (for tests that set up a state an older release
    /// left behind).
    pub async fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url)
            .await
            .expect("connect to execute");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .expect("execute");
        pool.close().await;
    }

    /// Whether this database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg_drop.take() else {
            return;
        };
        // Drop runs outside any runtime guarantee, so use a small runtime of our own on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(&base).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&admin)
                    .await
                    .ok()?;
                admin.close().await;
                Some(())
            })
        })
        .join();
    }
}

/// An Argon2id hash of `password` with other costs (`m_cost` KiB, `t_cost` iterations), as an
/// older release would have stored it.
pub fn legacy_hash(password: &str, m_cost: u32, t_cost: u32) -> String {
    crate::password::hash_with_costs(password, m_cost, t_cost).expect("valid Argon2 costs")
}

/// The stored password hash of a user (`table = "users"`, `name` an address) or an administrator
/// (`table = "admins"`, `name` the admin name).
pub async fn stored_hash(store: &Store, table: &str, name: &str) -> String {
    use sqlx::Row;
    let row = match table {
        "users" => {
            let a = crate::normalize_address(name).expect("address");
            sqlx::query(
                "SELECT u.password_hash FROM users u JOIN domains d ON d.id = u.domain_id \
                 WHERE d.name = $1 AND u.local_part = $2",
            )
            .bind(a.domain)
            .bind(a.local)
            .fetch_one(&store.pool)
            .await
        }
        _ => {
            sqlx::query("SELECT password_hash FROM admins WHERE username = $1")
                .bind(name.to_owned())
                .fetch_one(&store.pool)
                .await
        }
    }
    .expect("account exists");
    row.try_get("password_hash").expect("password_hash")
}

/// Replaces a stored password hash directly (to plant a hash made with old parameters).
pub async fn set_stored_hash(store: &Store, table: &str, name: &str, hash: &str) {
    let result = match table {
        "users" => {
            let user = store.user(name).await.expect("query").expect("user exists");
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash.to_owned())
                .bind(user.id)
                .execute(&store.pool)
                .await
        }
        _ => {
            sqlx::query("UPDATE admins SET password_hash = $1 WHERE username = $2")
                .bind(hash.to_owned())
                .bind(name.to_owned())
                .execute(&store.pool)
                .await
        }
    };
    assert_eq!(result.expect("update").rows_affected(), 1);
}

/// `postgres://u:p@h:port/db?x` with `db` replaced by `name`.
fn replace_db_name(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database_name() {
        assert_eq!(
            super::replace_db_name("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(
            super::replace_db_name("postgres://h", "x"),
            "postgres://h/x"
        );
    }
}
