use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use weir_types::{DatasetVersionRef, Diagnostic, Metering, RunId, TaskId};

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines weir itself writes about the task (spawn, timeout, kill).
    System,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::System => "weir",
        }
    }
}

/// Where a task's log lines go, one line at a time, as they are produced.
/// Implementations timestamp the line and must not block for long.
pub trait LogSink: Send + Sync {
    fn line(&self, stream: LogStream, text: &str);
}

/// Everything a running task may know about its run.
#[derive(Clone)]
pub struct TaskContext {
    pub run_id: RunId,
    pub task_id: TaskId,
    pub namespace: String,
    pub pipeline: String,
    pub step: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Resolved, typed run parameters.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The environment's variables; processes get these (plus `WEIR_*` and a
    /// few safe host variables such as `PATH`), nothing else.
    pub vars: BTreeMap<String, String>,
    /// The task's own working directory, created before `run` is called.
    pub work_dir: PathBuf,
    /// Kill the task after this long.
    pub timeout: Option<Duration>,
    /// Cancelled when the run is cancelled (Ctrl-C, API); the action must
    /// stop promptly and return [`ActionError::Cancelled`].
    pub cancel: CancellationToken,
    pub log: Arc<dyn LogSink>,
    /// Datasets this task reads, keyed by the name the step uses for them
    /// (the bare step name for a step of the same pipeline).
    pub inputs: BTreeMap<String, DatasetInput>,
    /// The blob store datasets live in: data actions read their inputs'
    /// files from it and write their output there before returning.
    pub blobs: Arc<dyn object_store::ObjectStore>,
    /// The step's contract, checks, anonymization and persistence.
    pub data: weir_spec::StepData,
    /// The environment the step runs in (default: none, strict contracts).
    pub environment: weir_spec::Environment,
    /// Values of the secrets the environment declares, by name.
    pub secrets: BTreeMap<String, String>,
}

/// One version of a dataset a task reads.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInput {
    pub version: DatasetVersionRef,
    /// Blob keys of its Parquet files.
    pub files: Vec<String>,
    /// Its Arrow schema (weir's JSON form, see `weir-data`).
    pub schema: serde_json::Value,
    pub rows: u64,
    /// Set when the upstream step is not stored (`persist: false`): the
    /// query that computes it, to run as part of this task's own plan.
    /// `version` is then `0` and `files` empty.
    pub view: Option<Box<View>>,
}

/// A step whose result is not stored: its (rendered) query and the inputs
/// that query reads.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub sql: String,
    pub inputs: BTreeMap<String, DatasetInput>,
}

impl DatasetInput {
    /// The stored dataset versions this input stands for: itself, or for a
    /// view every stored version it reads (lineage skips what is not stored).
    pub fn stored_versions(&self) -> Vec<DatasetVersionRef> {
        match &self.view {
            None => vec![self.version.clone()],
            Some(view) => {
                let mut out: Vec<DatasetVersionRef> = Vec::new();
                for input in view.inputs.values() {
                    for v in input.stored_versions() {
                        if !out.contains(&v) {
                            out.push(v);
                        }
                    }
                }
                out
            }
        }
    }
}

/// The value a step that is not stored returns: `{"view": "<query>"}`.
/// The engine reads it back to hand the query to downstream steps.
pub const VIEW_KEY: &str = "view";

/// The dataset a task produced: files already written to the blob store.
/// The engine records it as a new version in the same transaction that marks
/// the task succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetOutput {
    /// Blob keys (content-addressed, so a retry rewrites the same keys).
    pub files: Vec<String>,
    pub schema: serde_json::Value,
    pub rows: u64,
    pub bytes: u64,
}

/// What a successful task produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskOutput {
    /// Resources used by the task's processes; zero for in-process actions.
    pub metering: Metering,
    pub exit_code: Option<i32>,
    /// A small JSON value, usable downstream as `{{ steps.<name>.value }}`.
    pub value: Option<serde_json::Value>,
    /// Problems that did not fail the task (e.g. contract violations under
    /// `contracts: warn`), one line each.
    pub warnings: Vec<String>,
    /// The step's output dataset, for data actions.
    pub dataset: Option<DatasetOutput>,
}

/// Why a task did not succeed. Every variant carries the metering of what
/// did run, so a failed task's cost is still recorded.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{message}")]
    Failed {
        message: String,
        exit_code: Option<i32>,
        metering: Metering,
    },
    #[error("timed out after {}", humanize(*after))]
    TimedOut { after: Duration, metering: Metering },
    #[error("cancelled")]
    Cancelled { metering: Metering },
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The (templated) spec does not deserialize; `weir check` should have
    /// caught it, so this is reported with the spec error.
    #[error("invalid `{kind}` step: {message}")]
    InvalidSpec { kind: String, message: String },
}

impl ActionError {
    pub fn metering(&self) -> Metering {
        match self {
            ActionError::Failed { metering, .. }
            | ActionError::TimedOut { metering, .. }
            | ActionError::Cancelled { metering } => *metering,
            ActionError::Spawn { .. } | ActionError::InvalidSpec { .. } => Metering::default(),
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ActionError::Failed { exit_code, .. } => *exit_code,
            _ => None,
        }
    }
}

pub(crate) fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// A step kind. Implement it in one module and add one line to
/// [`crate::Registry::builtin`]; nothing else changes.
#[async_trait]
pub trait Action: Send + Sync + 'static {
    /// The YAML key that selects this kind (`shell: ...`).
    const KIND: &'static str;

    /// Whether the step outputs a dataset (and so may have `schema:`,
    /// `checks:` and `anonymize:`).
    const PRODUCES_DATASET: bool = false;

    /// Whether the step can be left unstored (`persist: false`): it then
    /// returns its query as a view (see [`VIEW_KEY`]) and downstream steps
    /// run it inside their own plans.
    const DEFERRABLE: bool = false;

    /// What the user writes under the key. Its doc comments are the user
    /// reference (`weir schema`).
    type Spec: DeserializeOwned + JsonSchema + Send + 'static;

    /// Checks a spec without any IO. Diagnostics carry no file or span; the
    /// registry points them at the step's action key.
    fn check(&self, _spec: &Self::Spec) -> Vec<Diagnostic> {
        Vec::new()
    }

    /// Steps this spec reads from (e.g. `inputs:`); they become dependencies.
    fn inputs(&self, _spec: &Self::Spec) -> Vec<String> {
        Vec::new()
    }

    /// Datasets of other pipelines this spec reads, as `pipeline.step` or
    /// `namespace.pipeline.step`: the engine passes their latest version
    /// (as of the run's start) as inputs under those names.
    fn reads(&self, _spec: &Self::Spec) -> Vec<String> {
        Vec::new()
    }

    /// Runs one attempt. `spec` has had its templates rendered.
    async fn run(&self, spec: Self::Spec, cx: TaskContext) -> Result<TaskOutput, ActionError>;
}
