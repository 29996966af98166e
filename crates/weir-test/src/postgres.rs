//! A fresh PostgreSQL database per test.
//!
//! The server is the one at `WEIR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth). Each
//! [`TestDatabase`] is a database of its own, named
//! `weir_test_<unix secs>_<label>_<pid>_<n>`, dropped `WITH (FORCE)` when
//! the guard is dropped, also when the test panicked. Databases left behind
//! by killed test processes are dropped by later [`TestDatabase::create`]
//! calls once they are an hour old. An unreachable server fails the test:
//! a skipped backend is an untested one.
//!
//! The API is blocking so that plain `#[test]`s and `#[tokio::test]`s (of
//! either flavour) can all use it: the database work runs on a thread of its
//! own with a small current-thread runtime, never on the caller's runtime.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Databases older than this (by the seconds in their name) are left-overs
/// of killed test processes.
const STALE_AFTER_SECS: u64 = 3600;

/// A fresh database on the test server, dropped on drop.
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `weir_test_<secs>_<label>_<pid>_<n>` (first dropping stale
    /// test databases). `label` names the suite (`store`, `engine`, `cli`):
    /// lowercase ASCII letters, digits and `_`.
    ///
    /// Panics, with a hint, when the server is unreachable.
    pub fn create(label: &str) -> TestDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        assert!(
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "test database label `{label}` must be lowercase ASCII letters, digits and `_`"
        );
        let admin = admin_url();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let name = format!(
            "weir_test_{now}_{label}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let created = on_own_runtime(|| async {
            let mut conn = admin_connection(&admin).await;
            drop_stale_databases(&mut conn, now).await;
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
            {
                panic!(
                    "cannot create test database `{name}` on `{admin}`: {e}\n\
                     hint: point WEIR_TEST_POSTGRES_URL at a server where this user may \
                     CREATE DATABASE"
                );
            }
            conn.close().await.ok();
        });
        if let Err(panic) = created {
            std::panic::resume_unwind(panic);
        }
        let url = with_database(&admin, &name);
        TestDatabase { admin, name, url }
    }

    /// The database's connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` on the database and returns the first column of each row
    /// as text (PostgreSQL's text form of any type; cast or concatenate in
    /// the query for anything else). Panics on errors and on NULLs.
    pub fn query_strings(&self, sql: &str) -> Vec<String> {
        let rows = on_own_runtime(|| async {
            let mut conn = PgConnection::connect(&self.url)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to `{}`: {e}", self.url));
            // The simple query protocol: every value comes back as text.
            let rows = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                .fetch_all(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("query failed: {sql}\n{e}"));
            conn.close().await.ok();
            rows.iter()
                .map(|row| {
                    row.try_get_unchecked::<Option<String>, _>(0)
                        .unwrap_or_else(|e| panic!("cannot read the first column: {sql}\n{e}"))
                        .unwrap_or_else(|| panic!("NULL in the first column (use coalesce): {sql}"))
                })
                .collect::<Vec<String>>()
        });
        rows.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for TestDatabase {
    /// Drops the database, also when the test panicked (never panics itself:
    /// that would abort a panicking test).
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = on_own_runtime(|| async {
            let mut conn = PgConnection::connect(&self.admin).await?;
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
            conn.close().await
        });
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database `{}`: {e}", self.name),
            Err(_) => eprintln!("warning: could not drop test database `{}`", self.name),
        }
    }
}

/// Runs the future made by `work` to completion on a new thread with its own
/// current-thread runtime, so that it neither needs nor blocks on a runtime
/// of the caller's. A panic of `work` comes back as `Err`.
fn on_own_runtime<F, Fut>(work: F) -> std::thread::Result<Fut::Output>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future,
    Fut::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the test database")
                    .block_on(work())
            })
            .join()
    })
}

fn admin_url() -> String {
    std::env::var("WEIR_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `admin` with its database name replaced by `name`.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

async fn admin_connection(admin: &str) -> PgConnection {
    match PgConnection::connect(admin).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL is unreachable at `{admin}`: {e}\n\
             hint: start it (`service postgresql start`) or point WEIR_TEST_POSTGRES_URL \
             at a server where this user may CREATE DATABASE; the PostgreSQL tests are \
             never skipped"
        ),
    }
}

/// Drops the databases of test processes that were killed before their
/// guard ran: `weir_test_<secs>_…` more than an hour older than `now`.
async fn drop_stale_databases(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'weir\\_test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .expect("list test databases");
    for name in names {
        if created_secs(&name).is_some_and(|secs| secs + STALE_AFTER_SECS < now) {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .ok();
        }
    }
}

/// The creation time in a test database's name.
fn created_secs(name: &str) -> Option<u64> {
    name.strip_prefix("weir_test_")?
        .split('_')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_admin_one() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn creation_time_is_read_from_the_name() {
        assert_eq!(
            created_secs("weir_test_1700000000_cli_42_0"),
            Some(1_700_000_000)
        );
        assert_eq!(
            created_secs("weir_test_1700000000_42_0"),
            Some(1_700_000_000)
        );
        assert_eq!(created_secs("weir_test_x_1"), None);
        assert_eq!(created_secs("other"), None);
    }

    #[test]
    fn a_database_is_created_queried_and_dropped() {
        let db = TestDatabase::create("selftest");
        assert!(db.url().ends_with(db.name()), "{}", db.url());
        let name = db.name().to_owned();
        assert_eq!(
            db.query_strings("SELECT current_database()::text || '|' || 1 + 1"),
            [format!("{name}|2")]
        );
        assert_eq!(
            db.query_strings("SELECT g FROM generate_series(1, 3) AS g"),
            ["1", "2", "3"]
        );
        drop(db);
        let probe = TestDatabase::create("selftest");
        let left = probe.query_strings(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ));
        assert_eq!(left, ["0"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn it_works_inside_a_current_thread_runtime() {
        let db = TestDatabase::create("selftest");
        assert_eq!(db.query_strings("SELECT 'ok'"), ["ok"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn it_works_inside_a_multi_thread_runtime() {
        let db = TestDatabase::create("selftest");
        assert_eq!(db.query_strings("SELECT 'ok'"), ["ok"]);
    }

    #[test]
    fn the_database_is_dropped_when_the_test_panics() {
        let mut name = String::new();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let db = TestDatabase::create("selftest");
            name = db.name().to_owned();
            panic!("the test fails");
        }));
        assert!(panicked.is_err());
        let probe = TestDatabase::create("selftest");
        let left = probe.query_strings(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ));
        assert_eq!(left, ["0"]);
    }
}
