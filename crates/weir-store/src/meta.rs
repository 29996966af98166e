use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use weir_types::{Metering, RunId, RunState, TaskId, TaskState};

use crate::{PostgresStore, Result, SqliteStore};

/// A run about to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub namespace: String,
    pub pipeline: String,
    /// Resolved parameters, a JSON object.
    pub params: serde_json::Value,
    pub environment: Option<String>,
    /// What started it: `manual`, later `cron`, `webhook`, ...
    pub trigger: String,
    /// The user who started it (the OS user for the CLI).
    pub created_by: String,
    /// Snapshot of the `weir_spec::Plan` the run executes.
    pub plan: serde_json::Value,
    pub state: RunState,
    pub at: DateTime<Utc>,
}

/// A task (one attempt of one step) about to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub step: String,
    pub attempt: u32,
    pub state: TaskState,
    /// A queued retry must not start before this.
    pub not_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: RunId,
    pub namespace: String,
    pub pipeline: String,
    pub state: RunState,
    pub params: serde_json::Value,
    pub environment: Option<String>,
    pub trigger: String,
    pub created_by: String,
    pub plan: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The process executing the run (`host:pid:nonce`), while it runs.
    pub owner: Option<String>,
    pub heartbeat_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: TaskId,
    pub run_id: RunId,
    pub step: String,
    pub attempt: u32,
    pub state: TaskState,
    pub created_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub metering: Option<Metering>,
    pub worker: Option<String>,
    pub value: Option<serde_json::Value>,
}

/// A guarded state change of one task.
///
/// Applied only if the task is still in `from`; otherwise the whole
/// [`Transition`] fails with [`crate::Error::Conflict`] and changes nothing.
/// This is what makes "never records a success twice" hold.
///
/// Timestamps: entering `queued` sets `queued_at`; entering `running` sets
/// `started_at` (and `queued_at` if unset); entering a terminal state sets
/// `finished_at`. Fields left `None` keep their stored value.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    pub id: TaskId,
    pub from: TaskState,
    pub to: TaskState,
    pub at: DateTime<Utc>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub metering: Option<Metering>,
    pub worker: Option<String>,
    pub value: Option<serde_json::Value>,
}

impl TaskUpdate {
    pub fn new(id: TaskId, from: TaskState, to: TaskState, at: DateTime<Utc>) -> Self {
        TaskUpdate {
            id,
            from,
            to,
            at,
            exit_code: None,
            error: None,
            metering: None,
            worker: None,
            value: None,
        }
    }
}

/// A state change of a run. Entering `running` sets `started_at` (if unset),
/// a terminal state sets `finished_at` and clears `owner`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunUpdate {
    pub id: RunId,
    pub to: RunState,
    pub at: DateTime<Utc>,
}

/// Everything that changes together, committed in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transition {
    pub tasks: Vec<TaskUpdate>,
    pub new_tasks: Vec<(RunId, NewTask)>,
    pub runs: Vec<RunUpdate>,
}

impl Transition {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.new_tasks.is_empty() && self.runs.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFilter {
    pub namespace: Option<String>,
    pub pipeline: Option<String>,
    /// Newest first, at most this many.
    pub limit: u32,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            namespace: None,
            pipeline: None,
            limit: 50,
        }
    }
}

/// Durable metadata. Every method is one transaction.
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Which backend, for messages: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Creates the run and its first tasks atomically.
    async fn create_run(&self, run: NewRun, tasks: Vec<NewTask>) -> Result<(RunRow, Vec<TaskRow>)>;

    /// Applies a transition atomically; returns the created tasks in the
    /// order of `new_tasks`.
    async fn apply(&self, transition: Transition) -> Result<Vec<TaskRow>>;

    async fn run(&self, id: RunId) -> Result<Option<RunRow>>;

    /// Newest first.
    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>>;

    /// All tasks (attempts) of a run, in creation order.
    async fn tasks(&self, run: RunId) -> Result<Vec<TaskRow>>;

    /// Takes ownership of a run for `owner` if it has no owner or its
    /// owner's heartbeat is older than `stale_before`. Returns whether it did.
    async fn claim_run(
        &self,
        id: RunId,
        owner: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool>;

    /// Refreshes the owner's heartbeat; false if `owner` lost the run.
    async fn heartbeat_run(&self, id: RunId, owner: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Gives up ownership (no-op if `owner` does not own it).
    async fn release_run(&self, id: RunId, owner: &str) -> Result<()>;
}

/// Opens (and migrates) the store a URL names: `sqlite://PATH` (created if
/// missing) or `postgres://...`.
pub async fn open_meta_store(url: &str) -> Result<Arc<dyn MetaStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open_url(url).await?))
    }
}
