//! Fixtures: a fresh database per test, for each backend.
//!
//! PostgreSQL: a `weir_test::TestDatabase` (server, naming, clean-up and the
//! never-skipped rule are described there), dropped with the fixture.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tempfile::TempDir;
use weir_store::{MetaStore, NewRun, NewTask, PostgresStore, SqliteStore};
use weir_test::TestDatabase;
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
    _pg: Option<TestDatabase>,
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
                let pg = TestDatabase::create("store");
                let url = pg.url().to_owned();
                let store = PostgresStore::connect(&url)
                    .await
                    .expect("connect postgres");
                TestDb {
                    backend,
                    store: Arc::new(store),
                    url,
                    _dir: None,
                    _pg: Some(pg),
                }
            }
        }
    }

    /// The store's URL (`sqlite://...` or `postgres://...`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A second, independent handle on the same database, like another weir
    /// process would have (re-running the migrations, which must be a no-op).
    pub async fn open_again(&self) -> Arc<dyn MetaStore> {
        weir_store::open_meta_store(&self.url)
            .await
            .expect("open the same store again")
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
