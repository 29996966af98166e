use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use weir_exec::Registry;
use weir_spec::{Environment, Plan};
use weir_store::{
    BlobStore, DatasetVersionRow, LogStore, MetaStore, NewRun, NewTask, RunRow, TaskRow,
};
use weir_types::{RunId, RunState, TaskState};

use crate::{Error, Result};

/// Where an engine keeps its state.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The project folder (`weir.yaml`); environments are read from it.
    pub project_root: PathBuf,
    /// Local state: `<project>/.weir` by default. Holds the SQLite database,
    /// the local blob store, log spool and task working directories.
    pub state_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; `None` = `<state_dir>/weir.db`.
    pub database_url: Option<String>,
}

impl EngineConfig {
    pub fn for_project(project_root: &Path) -> Self {
        EngineConfig {
            project_root: project_root.to_path_buf(),
            state_dir: project_root.join(".weir"),
            database_url: None,
        }
    }
}

/// Everything needed to create a run.
#[derive(Debug, Clone)]
pub struct NewRunRequest {
    pub plan: Plan,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub environment: Option<String>,
    pub namespace: String,
    pub created_by: String,
    pub trigger: String,
}

/// A run and all of its tasks (every attempt), as stored.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run: RunRow,
    pub tasks: Vec<TaskRow>,
    /// The dataset versions its tasks produced.
    pub datasets: Vec<DatasetVersionRow>,
}

impl RunSummary {
    /// The latest attempt of each step, in plan order when the plan is
    /// readable, else in creation order.
    pub fn latest_tasks(&self) -> Vec<&TaskRow> {
        let mut latest: BTreeMap<&str, &TaskRow> = BTreeMap::new();
        for task in &self.tasks {
            let entry = latest.entry(task.step.as_str()).or_insert(task);
            if task.attempt > entry.attempt {
                *entry = task;
            }
        }
        let order: Vec<String> = serde_json::from_value::<Plan>(self.run.plan.clone())
            .map(|p| p.steps.into_iter().map(|s| s.name).collect())
            .unwrap_or_default();
        let mut out: Vec<&TaskRow> = order
            .iter()
            .filter_map(|name| latest.remove(name.as_str()))
            .collect();
        let mut rest: Vec<&TaskRow> = latest.into_values().collect();
        rest.sort_by_key(|t| t.id);
        out.extend(rest);
        out
    }
}

/// The engine: a metadata store, a log store and the action registry.
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) store: Arc<dyn MetaStore>,
    pub(crate) logs: Arc<LogStore>,
    pub(crate) blobs: BlobStore,
    pub(crate) registry: Arc<Registry>,
    pub(crate) owner: String,
}

impl Engine {
    /// Opens (creating and migrating if needed) the stores of a project.
    pub async fn open(config: EngineConfig, registry: Arc<Registry>) -> Result<Engine> {
        create_dir(&config.state_dir)?;
        let url = match &config.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", config.state_dir.join("weir.db").display()),
        };
        let store = weir_store::open_meta_store(&url).await?;
        let blobs = BlobStore::open(&config.state_dir.join("blobs").display().to_string())?;
        let logs = LogStore::new(blobs.clone(), config.state_dir.join("spool"));
        Ok(Engine {
            config,
            store,
            logs: Arc::new(logs),
            blobs,
            registry,
            owner: process_owner_id(),
        })
    }

    pub fn store(&self) -> &Arc<dyn MetaStore> {
        &self.store
    }

    pub fn logs(&self) -> &Arc<LogStore> {
        &self.logs
    }

    /// Where datasets, artifacts and logs are stored.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Durably creates a run and one pending task per step.
    pub async fn create_run(&self, request: NewRunRequest) -> Result<RunId> {
        let plan = serde_json::to_value(&request.plan).map_err(|source| Error::PlanSnapshot {
            run: RunId(0),
            source,
        })?;
        let tasks = request
            .plan
            .steps
            .iter()
            .map(|step| NewTask {
                step: step.name.clone(),
                attempt: 1,
                state: TaskState::Pending,
                not_before: None,
            })
            .collect();
        let (run, _) = self
            .store
            .create_run(
                NewRun {
                    namespace: request.namespace,
                    pipeline: request.plan.pipeline.clone(),
                    params: serde_json::Value::Object(request.params),
                    environment: request.environment,
                    trigger: request.trigger,
                    created_by: request.created_by,
                    plan,
                    state: RunState::Queued,
                    at: Utc::now(),
                },
                tasks,
            )
            .await?;
        Ok(run.id)
    }

    pub async fn summary(&self, run: RunId) -> Result<RunSummary> {
        let row = self.store.run(run).await?.ok_or(Error::RunNotFound(run))?;
        let tasks = self.store.tasks(run).await?;
        let datasets = self.store.run_datasets(run).await?;
        Ok(RunSummary {
            run: row,
            tasks,
            datasets,
        })
    }

    /// Reads an environment of the project; `None` means no environment.
    pub(crate) fn load_environment(&self, name: &str) -> Result<Environment> {
        weir_spec::load_environment(&self.config.project_root, name).map_err(|d| {
            Error::Environment {
                name: name.to_owned(),
                message: d.message,
            }
        })
    }

    /// `<state>/work/<run>/<step>.<attempt>`: one new directory per task
    /// (step names have no `.`); every directory costs an inode allocation,
    /// which profiling showed to dominate weir's per-task CPU on ext4.
    pub(crate) fn work_dir(&self, run: RunId, step: &str, attempt: u32) -> PathBuf {
        self.run_work_dir(run).join(format!("{step}.{attempt}"))
    }

    /// The folder holding the working directories of a run's tasks.
    pub(crate) fn run_work_dir(&self, run: RunId) -> PathBuf {
        self.config.state_dir.join("work").join(run.to_string())
    }
}

/// `host:pid:nonce` — identifies this process as the owner of the runs it
/// executes; the pid lets a resume on the same host see that the owner died.
pub fn process_owner_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let nonce = Utc::now().timestamp_micros() % 1_000_000;
    format!("{host}:{}:{nonce}", std::process::id())
}

/// Whether the owner recorded on a run is a process on this host that no
/// longer exists (so its run can be taken over without waiting for the
/// heartbeat to go stale).
pub(crate) fn owner_is_dead_here(owner: &str) -> bool {
    let mut parts = owner.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let this_host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    if this_host.as_deref() != Some(host) {
        return false;
    }
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if pid == i32::try_from(std::process::id()).unwrap_or(-1) {
        return false;
    }
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

pub(crate) fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
