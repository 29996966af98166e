//! What the data actions share about running as a task: cancellation and
//! timeouts, the per-task DataFusion runtime, and turning errors into
//! [`ActionError`]s.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use weir_exec::{ActionError, TaskContext, TaskOutput};
use weir_types::Metering;

use crate::error::{Error, Result};

/// Memory one data task may hold before its operators spill to disk (sorts,
/// joins and aggregations) or, for those that cannot spill, fail with a
/// "resources exhausted" error. 1 GiB lets two tasks run side by side on the
/// 2-core, 24 GiB machines weir is measured on with room for Arrow batches
/// held outside the pool (scans, collected results).
// TODO: take it from the environment's compute settings once they exist.
pub const TASK_MEMORY_LIMIT: usize = 1 << 30;

/// A runtime with a [`TASK_MEMORY_LIMIT`] fair spill pool whose spill files
/// go to the task's working directory (cleaned up with the task).
pub(crate) fn task_runtime(work_dir: &Path) -> Result<Arc<RuntimeEnv>> {
    Ok(RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(TASK_MEMORY_LIMIT)))
        .with_temp_file_path(work_dir)
        .build_arc()?)
}

/// Runs `work`, stopping it when the run is cancelled or the task's timeout
/// passes. Dropping the future stops DataFusion's spawned tasks too.
pub(crate) async fn guarded<F>(cx: &TaskContext, work: F) -> Result<TaskOutput, ActionError>
where
    F: Future<Output = Result<TaskOutput, ActionError>>,
{
    let timed = async {
        match cx.timeout {
            Some(after) => {
                tokio::time::timeout(after, work)
                    .await
                    .unwrap_or(Err(ActionError::TimedOut {
                        after,
                        metering: Metering::default(),
                    }))
            }
            None => work.await,
        }
    };
    tokio::select! {
        biased;
        () = cx.cancel.cancelled() => Err(ActionError::Cancelled { metering: Metering::default() }),
        result = timed => result,
    }
}

/// A task failure with `message` (in-process: no exit code, no metering).
pub(crate) fn failed(message: impl Into<String>) -> ActionError {
    ActionError::Failed {
        message: message.into(),
        exit_code: None,
        metering: Metering::default(),
    }
}

impl From<Error> for ActionError {
    fn from(e: Error) -> Self {
        failed(match e {
            // DataFusion appends a backtrace when built with one; the user
            // needs the message.
            Error::DataFusion(e) => e.strip_backtrace(),
            e => e.to_string(),
        })
    }
}

/// Gives every batch exactly `schema` (DataFusion may report a column as
/// nullable in the plan and non-nullable in a batch, or the reverse).
pub(crate) fn conform(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|batch| {
            if batch.schema().fields() == schema.fields() {
                Ok(batch)
            } else {
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    batch.columns().to_vec(),
                )?)
            }
        })
        .collect()
}
