//! Fixtures: a throw-away project driven through `Engine` as a library, on a
//! fresh metadata store of either backend, plus checks shared by scenarios.
//!
//! PostgreSQL: a `weir_test::TestDatabase` (server, naming, clean-up and the
//! never-skipped rule are described there), dropped with the project.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tempfile::TempDir;
use tokio::sync::mpsc;
use weir_engine::{Engine, EngineConfig, ExecuteOptions, NewRunRequest, RunEvent, RunSummary};
use weir_exec::Registry;
use weir_spec::Plan;
use weir_store::TaskRow;
use weir_test::TestDatabase;
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

/// The built-in kinds plus the test data kind `emit`.
pub fn registry() -> Registry {
    let mut registry = Registry::builtin();
    registry.register(crate::datasets::EmitAction);
    registry
}

/// A weir project in a temporary folder with its metadata store.
pub struct Project {
    dir: TempDir,
    database_url: Option<String>,
    _pg: Option<TestDatabase>,
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
                let pg = TestDatabase::create("engine");
                (Some(pg.url().to_owned()), Some(pg))
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
        Engine::open(config, Arc::new(registry()))
            .await
            .expect("open engine")
    }

    /// Writes `pipelines/<name>.yaml` and returns its checked plan.
    pub fn pipeline(&self, name: &str, yaml: &str) -> Plan {
        self.write(&format!("pipelines/{name}.yaml"), yaml);
        let checked = weir_spec::check_project(self.root(), &registry(), &[]);
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
