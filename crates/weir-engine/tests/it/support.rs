//! Fixtures: a throw-away project driven through `Engine` as a library, on a
//! fresh metadata store of either backend, plus checks shared by scenarios.
//!
//! PostgreSQL: the server at `WEIR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth). Each test gets
//! its own `weir_test_<secs>_engine_<pid>_<n>` database, dropped when the
//! fixture is dropped (also when the test panics). Databases left behind by
//! killed test processes follow weir-store's naming, so its fixture drops
//! them once they are an hour old. An unreachable server fails the test: a
//! skipped backend is an untested one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;
use tokio::sync::mpsc;
use weir_engine::{Engine, EngineConfig, ExecuteOptions, NewRunRequest, RunEvent, RunSummary};
use weir_exec::Registry;
use weir_spec::Plan;
use weir_store::TaskRow;
use weir_types::{RunId, RunState, TaskState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines `sqlite::NAME` and `postgres::NAME` for each scenario
/// `async fn NAME(&Project)` of the calling module.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let project =
                        $crate::support::Project::new($crate::support::Backend::Sqlite).await;
                    super::$name(&project).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let project =
                        $crate::support::Project::new($crate::support::Backend::Postgres).await;
                    super::$name(&project).await;
                }
            )*
        }
    };
}

/// A weir project in a temporary folder with its metadata store.
pub struct Project {
    dir: TempDir,
    database_url: Option<String>,
    _pg: Option<DropDatabase>,
}

impl Project {
    pub async fn new(backend: Backend) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("weir-engine-it-")
            .tempdir()
            .expect("temp dir");
        fs_err::write(dir.path().join("weir.yaml"), "name: test\n").expect("write weir.yaml");
        let (database_url, pg) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let (url, guard) = fresh_postgres_database().await;
                (Some(url), Some(guard))
            }
        };
        Project {
            dir,
            database_url,
            _pg: pg,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.root().join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).expect("create parent");
        }
        fs_err::write(path, content).expect("write project file");
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.root().join(relative).exists()
    }

    /// Opens a new engine on the project: another one is like another `weir`
    /// process would have (same stores, same owner id: same process).
    pub async fn engine(&self) -> Engine {
        let config = EngineConfig {
            project_root: self.root().to_path_buf(),
            state_dir: self.root().join(".weir"),
            database_url: self.database_url.clone(),
        };
        Engine::open(config, Arc::new(Registry::builtin()))
            .await
            .expect("open engine")
    }

    /// Writes `pipelines/<name>.yaml` and returns its checked plan.
    pub fn pipeline(&self, name: &str, yaml: &str) -> Plan {
        self.write(&format!("pipelines/{name}.yaml"), yaml);
        let registry = Registry::builtin();
        let checked = weir_spec::check_project(self.root(), &registry, &[]);
        assert!(
            !checked.has_errors(),
            "the test pipeline is invalid: {:#?}",
            checked.diagnostics
        );
        checked
            .plans
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no plan `{name}`"))
    }
}

/// Creates a run of `plan` with exactly these params (no defaults applied).
pub async fn create_run(
    engine: &Engine,
    plan: &Plan,
    params: serde_json::Map<String, serde_json::Value>,
) -> RunId {
    engine
        .create_run(NewRunRequest {
            plan: plan.clone(),
            params,
            environment: None,
            namespace: "default".to_owned(),
            created_by: "tester".to_owned(),
            trigger: "manual".to_owned(),
        })
        .await
        .expect("create run")
}

/// What one `execute` call did.
pub struct Execution {
    pub result: weir_engine::Result<RunSummary>,
    /// Every event it published, in order.
    pub events: Vec<RunEvent>,
    /// The stored state of each attempt before it started.
    pub before: HashMap<(String, u32), TaskState>,
}

impl Execution {
    /// The run's summary, after checking the events against it.
    pub fn checked(self) -> (RunSummary, Vec<RunEvent>) {
        let summary = self.result.expect("execute");
        check_events(&self.events, &self.before, &summary);
        (summary, self.events)
    }
}

/// Executes a run, collecting every event it published.
pub async fn execute(engine: &Engine, run: RunId, mut options: ExecuteOptions) -> Execution {
    let before = engine
        .summary(run)
        .await
        .map(|s| stored_states(&s))
        .unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    options.events = Some(tx);
    let result = engine.execute(run, options).await;
    // `execute` consumed the options: the sender is gone, so this ends.
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        events.push(event);
    }
    Execution {
        result,
        events,
        before,
    }
}

pub fn options(concurrency: usize) -> ExecuteOptions {
    ExecuteOptions {
        concurrency,
        ..ExecuteOptions::default()
    }
}

/// All attempts of `step`, by attempt number.
pub fn attempts<'a>(summary: &'a RunSummary, step: &str) -> Vec<&'a TaskRow> {
    let mut rows: Vec<&TaskRow> = summary.tasks.iter().filter(|t| t.step == step).collect();
    rows.sort_by_key(|t| t.attempt);
    rows
}

/// The states of every attempt of `step`, in attempt order.
pub fn states(summary: &RunSummary, step: &str) -> Vec<TaskState> {
    attempts(summary, step).iter().map(|t| t.state).collect()
}

/// The only attempt of `step`.
pub fn only<'a>(summary: &'a RunSummary, step: &str) -> &'a TaskRow {
    let rows = attempts(summary, step);
    assert_eq!(rows.len(), 1, "`{step}` has one attempt: {rows:#?}");
    rows[0]
}

/// Whether the state machine allows `from → to` (crate docs of weir-engine).
fn allowed(from: TaskState, to: TaskState) -> bool {
    use TaskState::*;
    matches!(
        (from, to),
        (Pending, Queued | Running | UpstreamFailed | Cancelled)
            | (Queued, Running | Cancelled)
            | (Running, Succeeded | Failed | Cancelled)
    )
}

/// Checks the events of one `execute` call: per attempt, each event is an
/// allowed transition from the previous one (attempts that existed start
/// from their stored state `initial`, attempts the call created are created
/// `pending` or `queued`), so nothing follows a terminal state; the run goes
/// `running` first and ends exactly once, last. Also checks that the last
/// event of each attempt is the state stored for it in `summary`.
fn check_events(
    events: &[RunEvent],
    initial: &HashMap<(String, u32), TaskState>,
    summary: &RunSummary,
) {
    let mut current: HashMap<(String, u32), TaskState> = initial.clone();
    let mut run_states = Vec::new();
    for (i, event) in events.iter().enumerate() {
        match event {
            RunEvent::Run { state, .. } => {
                assert!(
                    run_states
                        .last()
                        .is_none_or(|s: &RunState| !s.is_terminal()),
                    "event {i}: the run changed after it ended: {events:#?}"
                );
                run_states.push(*state);
            }
            RunEvent::Task {
                step,
                attempt,
                state,
                ..
            } => {
                let key = (step.clone(), *attempt);
                match current.get(&key) {
                    Some(&from) => assert!(
                        allowed(from, *state),
                        "event {i}: `{step}` attempt {attempt} went {from:?} → {state:?}: {events:#?}"
                    ),
                    None => assert!(
                        matches!(state, TaskState::Pending | TaskState::Queued),
                        "event {i}: `{step}` attempt {attempt} was created {state:?}: {events:#?}"
                    ),
                }
                current.insert(key, *state);
            }
        }
    }
    assert_eq!(
        run_states.first(),
        Some(&RunState::Running),
        "the run starts running: {events:#?}"
    );
    let ends = run_states.iter().filter(|s| s.is_terminal()).count();
    assert_eq!(ends, 1, "the run ends exactly once: {run_states:?}");
    assert_eq!(run_states.last(), Some(&summary.run.state));
    for task in &summary.tasks {
        if let Some(&last) = current.get(&(task.step.clone(), task.attempt)) {
            assert_eq!(
                last, task.state,
                "the last event of `{}` attempt {} is its stored state",
                task.step, task.attempt
            );
        }
    }
}

/// State of every stored attempt, as the start of `check_events`.
fn stored_states(summary: &RunSummary) -> HashMap<(String, u32), TaskState> {
    summary
        .tasks
        .iter()
        .map(|t| ((t.step.clone(), t.attempt), t.state))
        .collect()
}

/// Index of the first event where `step` attempt `attempt` enters `state`.
pub fn event_index(events: &[RunEvent], step: &str, attempt: u32, state: TaskState) -> usize {
    events
        .iter()
        .position(|e| {
            matches!(e, RunEvent::Task { step: s, attempt: a, state: st, .. }
                if s == step && *a == attempt && *st == state)
        })
        .unwrap_or_else(|| panic!("no event `{step}` #{attempt} {state:?}: {events:#?}"))
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

async fn fresh_postgres_database() -> (String, DropDatabase) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = admin_url();
    let mut conn = match PgConnection::connect(&admin).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL is unreachable at `{admin}`: {e}\n\
             hint: start it (`service postgresql start`) or point WEIR_TEST_POSTGRES_URL \
             at a server where this user may CREATE DATABASE; the PostgreSQL half of \
             these tests is never skipped"
        ),
    };
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let name = format!(
        "weir_test_{secs}_engine_{}_{}",
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
