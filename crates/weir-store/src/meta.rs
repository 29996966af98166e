use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use weir_types::{Metering, RunId, RunState, TaskId, TaskState};

use crate::{Error, PostgresStore, Result, SqliteStore};

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
/// `finished_at`. Fields left `None` keep their stored value. An update with
/// `to == from` enters nothing: it changes only the fields it sets.
/// Tasks created in a state (by [`MetaStore::create_run`] or
/// [`Transition::new_tasks`]) get the timestamps of entering it.
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
/// a terminal state sets `finished_at` and clears `owner`; a live state
/// clears `finished_at` (a resumed run is not finished). Updating a run that
/// does not exist fails the whole transition with
/// [`crate::Error::RunNotFound`].
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
    /// Tasks to create (retries, ...). They are created, and enter their
    /// state, at the latest `at` of the transition's updates (now if it has
    /// none).
    pub new_tasks: Vec<(RunId, NewTask)>,
    pub runs: Vec<RunUpdate>,
}

impl Transition {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.new_tasks.is_empty() && self.runs.is_empty()
    }

    /// When `new_tasks` are created.
    pub(crate) fn created_at(&self) -> DateTime<Utc> {
        let tasks = self.tasks.iter().map(|t| t.at);
        let runs = self.runs.iter().map(|r| r.at);
        tasks.chain(runs).max().unwrap_or_else(Utc::now)
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
    /// order of `new_tasks`. Task updates are checked first: one stale guard
    /// ([`crate::Error::Conflict`]) and nothing of the transition is stored.
    async fn apply(&self, transition: Transition) -> Result<Vec<TaskRow>>;

    async fn run(&self, id: RunId) -> Result<Option<RunRow>>;

    /// Newest first.
    async fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>>;

    /// All tasks (attempts) of a run, in creation order.
    async fn tasks(&self, run: RunId) -> Result<Vec<TaskRow>>;

    /// Takes ownership of a run for `owner` if it has no owner or its
    /// owner's heartbeat is older than `stale_before`. Returns whether it did.
    /// Re-claiming a run one already owns succeeds (and refreshes the
    /// heartbeat). A failed or cancelled run can be claimed (resuming
    /// re-opens it); a succeeded or missing run is never claimed.
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

/// Opens (and migrates) the store a URL names: `sqlite://PATH` or
/// `sqlite:PATH` (created if missing) or `postgres://...`.
pub async fn open_meta_store(url: &str) -> Result<Arc<dyn MetaStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open_url(url).await?))
    }
}

/// The timestamps a task gets when it enters `to` (from `from`, or on
/// creation when `from` is `None`), shared so both backends agree.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TaskStamps {
    /// Overwrites `queued_at` (entering `queued`).
    pub queued: Option<DateTime<Utc>>,
    /// Sets `queued_at` only if unset (entering `running`).
    pub queued_if_unset: Option<DateTime<Utc>>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
}

impl TaskStamps {
    pub(crate) fn entering(from: Option<TaskState>, to: TaskState, at: DateTime<Utc>) -> Self {
        if from == Some(to) {
            return TaskStamps::default();
        }
        TaskStamps {
            queued: (to == TaskState::Queued).then_some(at),
            queued_if_unset: (to == TaskState::Running).then_some(at),
            started: (to == TaskState::Running).then_some(at),
            finished: to.is_terminal().then_some(at),
        }
    }

    /// `queued_at` of a task created in `to`.
    pub(crate) fn queued_at(&self) -> Option<DateTime<Utc>> {
        self.queued.or(self.queued_if_unset)
    }
}

/// What a run gets when it enters `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunStamps {
    /// Sets `started_at` only if unset.
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// Clears `owner` and `heartbeat_at`.
    pub release: bool,
}

impl RunStamps {
    pub(crate) fn entering(to: RunState, at: DateTime<Utc>) -> Self {
        RunStamps {
            started: (to == RunState::Running).then_some(at),
            finished: to.is_terminal().then_some(at),
            release: to.is_terminal(),
        }
    }
}

pub(crate) fn parse_task_state(text: &str, task: i64) -> Result<TaskState> {
    text.parse()
        .map_err(|_| Error::corrupt(format!("task {task} has unknown state `{text}`")))
}

pub(crate) fn parse_run_state(text: &str, run: i64) -> Result<RunState> {
    text.parse()
        .map_err(|_| Error::corrupt(format!("run {run} has unknown state `{text}`")))
}

pub(crate) fn parse_attempt(attempt: i64, task: i64) -> Result<u32> {
    u32::try_from(attempt)
        .map_err(|_| Error::corrupt(format!("task {task} has attempt number {attempt}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entering_running_sets_started_and_queued_if_unset() {
        let at = Utc::now();
        let s = TaskStamps::entering(Some(TaskState::Pending), TaskState::Running, at);
        assert_eq!(s.started, Some(at));
        assert_eq!(s.queued_if_unset, Some(at));
        assert_eq!(s.queued, None);
        assert_eq!(s.finished, None);
    }

    #[test]
    fn staying_in_a_state_enters_nothing() {
        let at = Utc::now();
        let s = TaskStamps::entering(Some(TaskState::Running), TaskState::Running, at);
        assert_eq!(s, TaskStamps::default());
    }

    #[test]
    fn creation_in_a_terminal_state_sets_finished() {
        let at = Utc::now();
        let s = TaskStamps::entering(None, TaskState::Cached, at);
        assert_eq!(s.finished, Some(at));
        assert_eq!(s.queued_at(), None);
        let s = TaskStamps::entering(None, TaskState::Queued, at);
        assert_eq!(s.queued_at(), Some(at));
    }
}
