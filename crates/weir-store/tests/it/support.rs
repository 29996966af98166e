//! Fixtures: a fresh database per test, for each backend.
//!
//! PostgreSQL: the server at `WEIR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth). Each test gets
//! its own `weir_test_<secs>_<pid>_<n>` database, dropped when the fixture is
//! dropped (also when the test panics); databases left by killed test
//! processes are dropped by later runs once they are an hour old. An
//! unreachable server fails the test: a skipped backend is an untested one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;
use weir_store::{MetaStore, NewRun, NewTask, PostgresStore, SqliteStore};
use weir_types::{RunState, TaskState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a conformance test against both backends: `conformance!(a, b)`
/// defines `meta::sqlite::a`, `meta::postgres::a`, ... each calling
/// `meta::a(&TestDb)` on a fresh database.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::TestDb::new($crate::support::Backend::Sqlite).await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::support::TestDb::new($crate::support::Backend::Postgres).await;
                    super::$name(&db).await;
                }
            )*
        }
    };
}

pub struct TestDb {
    pub backend: Backend,
    pub store: Arc<dyn MetaStore>,
    url: String,
    _dir: Option<TempDir>,
    _pg: Option<DropDatabase>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new().expect("temp dir");
                // A parent that does not exist yet: `open_url` creates it.
                let url = format!("sqlite://{}", dir.path().join("state/weir.db").display());
                let store = SqliteStore::open_url(&url).await.expect("open sqlite");
                TestDb {
                    backend,
                    store: Arc::new(store),
                    url,
                    _dir: Some(dir),
                    _pg: None,
                }
            }
            Backend::Postgres => {
                let (url, guard) = fresh_postgres_database().await;
                let store = PostgresStore::connect(&url)
                    .await
                    .expect("connect postgres");
                TestDb {
                    backend,
                    store: Arc::new(store),
                    url,
                    _dir: None,
                    _pg: Some(guard),
                }
            }
        }
    }

    /// A second, independent handle on the same database, like another weir
    /// process would have (re-running the migrations, which must be a no-op).
    pub async fn open_again(&self) -> Arc<dyn MetaStore> {
        weir_store::open_meta_store(&self.url)
            .await
            .expect("open the same store again")
    }
}

fn admin_url() -> String {
    std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
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
             at a server where this user may CREATE DATABASE; the PostgreSQL half of the \
             conformance suite is never skipped"
        ),
    }
}

async fn fresh_postgres_database() -> (String, DropDatabase) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = admin_url();
    let mut conn = admin_connection(&admin).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    drop_stale_databases(&mut conn, now).await;
    let name = format!(
        "weir_test_{now}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let url = with_database(&admin, &name);
    (url, DropDatabase { admin, name })
}

/// Databases of test processes that were killed before their guard ran.
async fn drop_stale_databases(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'weir\\_test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .expect("list test databases");
    for name in names {
        let created = name
            .strip_prefix("weir_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|secs| secs + 3600 < now) {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .ok();
        }
    }
}

/// Drops the test database, also when the test panicked. `Drop` cannot be
/// async, so it runs on a thread of its own with a small runtime.
struct DropDatabase {
    admin: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database `{}`", self.name);
        }
    }
}

/// A fixed point in time with sub-microsecond digits, `secs` seconds on.
pub fn at(secs: i64) -> DateTime<Utc> {
    base() + Duration::seconds(secs)
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
        .single()
        .expect("valid time")
        + Duration::microseconds(123_456)
}

pub fn new_run(namespace: &str, pipeline: &str, at: DateTime<Utc>) -> NewRun {
    NewRun {
        namespace: namespace.to_owned(),
        pipeline: pipeline.to_owned(),
        params: json!({
            "min_amount": 1.5,
            "countries": ["DE", "FR"],
            "nested": { "none": null, "flag": true, "text": "ünïcødé \"quoted\" \n" },
            "big": 9_007_199_254_740_993_i64,
        }),
        environment: Some("dev".to_owned()),
        trigger: "manual".to_owned(),
        created_by: "alice".to_owned(),
        plan: json!({ "name": pipeline, "steps": [{ "name": "a", "needs": [] }] }),
        state: RunState::Queued,
        at,
    }
}

pub fn new_task(step: &str, attempt: u32, state: TaskState) -> NewTask {
    NewTask {
        step: step.to_owned(),
        attempt,
        state,
        not_before: None,
    }
}
