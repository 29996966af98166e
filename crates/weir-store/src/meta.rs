use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use weir_types::{DatasetVersionRef, Metering, RunId, RunState, TaskId, TaskState};

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
    /// Problems that did not fail the task, one line each.
    pub warnings: Vec<String>,
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
    /// Problems that did not fail the task; empty keeps what is stored.
    pub warnings: Vec<String>,
    /// The dataset version this task produced: only with `to: Succeeded`.
    /// Inserted in the same transaction, as the next version number of its
    /// dataset, so a task's success and its output are recorded together or
    /// not at all (exactly-once commit, DESIGN §5).
    pub output: Option<NewDatasetVersion>,
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
            warnings: Vec::new(),
            output: None,
        }
    }
}

/// A dataset version about to be recorded (see [`TaskUpdate::output`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDatasetVersion {
    pub namespace: String,
    /// `<pipeline>.<step>`.
    pub name: String,
    /// Arrow schema in weir's JSON form.
    pub schema: serde_json::Value,
    pub rows: u64,
    pub bytes: u64,
    /// Blob keys of its files, in order.
    pub files: Vec<String>,
    /// The versions it was computed from (lineage).
    pub inputs: Vec<DatasetVersionRef>,
}

/// A recorded dataset version. Immutable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetVersionRow {
    pub namespace: String,
    pub name: String,
    /// 1, 2, ... per dataset, allocated at commit.
    pub version: u32,
    pub schema: serde_json::Value,
    pub rows: u64,
    pub bytes: u64,
    pub files: Vec<String>,
    pub inputs: Vec<DatasetVersionRef>,
    /// The task (and its run) that produced it.
    pub task_id: TaskId,
    pub run_id: RunId,
    pub created_at: DateTime<Utc>,
}

impl DatasetVersionRow {
    pub fn reference(&self) -> DatasetVersionRef {
        DatasetVersionRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            version: self.version,
        }
    }
}

/// What a committed [`Transition`] created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The tasks of `new_tasks`, in order, with their ids.
    pub tasks: Vec<TaskRow>,
    /// The dataset versions of the updates' `output`s, in update order.
    pub datasets: Vec<DatasetVersionRow>,
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

    /// Applies a transition atomically; returns the created tasks (in the
    /// order of `new_tasks`) and dataset versions (in the order of the
    /// updates with an `output`). Outputs are checked before anything is
    /// written ([`crate::Error::OutputWithoutSuccess`],
    /// [`crate::Error::OutputOutOfRange`]), then task updates: one stale
    /// guard ([`crate::Error::Conflict`]) and nothing of the transition is
    /// stored, no dataset version included.
    async fn apply(&self, transition: Transition) -> Result<Applied>;

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

    /// The latest version of every dataset (of one namespace, or all),
    /// ordered by namespace and name.
    async fn datasets(&self, namespace: Option<&str>) -> Result<Vec<DatasetVersionRow>>;

    /// Every version of one dataset, newest first.
    async fn dataset_versions(&self, namespace: &str, name: &str)
    -> Result<Vec<DatasetVersionRow>>;

    /// One version (`None`: the latest) of one dataset.
    async fn dataset_version(
        &self,
        namespace: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<DatasetVersionRow>>;

    /// The dataset versions a run's tasks produced, in creation order.
    async fn run_datasets(&self, run: RunId) -> Result<Vec<DatasetVersionRow>>;
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

/// An update's output, checked and ready to insert.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output<'a> {
    /// Position among the transition's outputs (= in [`Applied::datasets`]).
    pub index: usize,
    pub task: TaskId,
    pub at: DateTime<Utc>,
    pub version: &'a NewDatasetVersion,
    pub rows: i64,
    pub bytes: i64,
}

impl Transition {
    /// The outputs of the task updates, refused as a whole if one cannot be
    /// recorded, in the order to insert them: by (namespace, name), stably.
    /// Two transactions allocating versions of the same datasets then lock
    /// the `datasets` rows in the same order and cannot deadlock
    /// (PostgreSQL).
    pub(crate) fn outputs(&self) -> Result<Vec<Output<'_>>> {
        let mut outputs = Vec::new();
        for update in &self.tasks {
            let Some(version) = &update.output else {
                continue;
            };
            if update.to != TaskState::Succeeded {
                return Err(Error::OutputWithoutSuccess { task: update.id });
            }
            let count = |field: &'static str, value: u64| {
                i64::try_from(value).map_err(|_| Error::OutputOutOfRange {
                    task: update.id,
                    field,
                    value,
                })
            };
            outputs.push(Output {
                index: outputs.len(),
                task: update.id,
                at: update.at,
                version,
                rows: count("rows", version.rows)?,
                bytes: count("bytes", version.bytes)?,
            });
        }
        outputs.sort_by(|a, b| {
            (&a.version.namespace, &a.version.name).cmp(&(&b.version.namespace, &b.version.name))
        });
        Ok(outputs)
    }
}

/// Puts dataset versions inserted in [`Transition::outputs`] order back in
/// update order.
pub(crate) fn in_update_order(mut rows: Vec<(usize, DatasetVersionRow)>) -> Vec<DatasetVersionRow> {
    rows.sort_by_key(|(index, _)| *index);
    rows.into_iter().map(|(_, row)| row).collect()
}

/// What a dataset version row is called in messages.
pub(crate) fn version_text(namespace: &str, name: &str, version: i64) -> String {
    format!("dataset version {namespace}.{name}@{version}")
}

pub(crate) fn parse_version(version: i64, namespace: &str, name: &str) -> Result<u32> {
    u32::try_from(version)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            Error::corrupt(format!(
                "{} has an invalid version number",
                version_text(namespace, name, version)
            ))
        })
}

pub(crate) fn parse_count(count: i64, column: &str, what: &dyn Fn() -> String) -> Result<u64> {
    u64::try_from(count)
        .map_err(|_| Error::corrupt(format!("{}: `{column}` = {count} is negative", what())))
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
