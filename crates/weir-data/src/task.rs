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
    runtime_with_limit(work_dir, TASK_MEMORY_LIMIT)
}

fn runtime_with_limit(work_dir: &Path, limit: usize) -> Result<Arc<RuntimeEnv>> {
    Ok(RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(limit)))
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

/// The scheme of a remote path (`s3`, `https`, ...); `file://` is local.
pub(crate) fn remote_scheme(path: &str) -> Option<&str> {
    let (scheme, _) = path.split_once("://")?;
    let is_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (is_scheme && !scheme.eq_ignore_ascii_case("file")).then_some(scheme)
}

/// Where relative paths start: the project directory the engine passes in
/// `WEIR_PROJECT_DIR`, else the current directory.
pub(crate) fn project_dir(cx: &TaskContext) -> Result<std::path::PathBuf, ActionError> {
    match cx.vars.get("WEIR_PROJECT_DIR") {
        Some(dir) if !dir.is_empty() => Ok(std::path::PathBuf::from(dir)),
        _ => std::env::current_dir()
            .map_err(|e| failed(format!("cannot find the current directory: {e}"))),
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

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// About 175 MB of rows, sorted (a 64 MiB pool).
    async fn sort_under(runtime: Arc<RuntimeEnv>) -> datafusion::error::Result<Vec<RecordBatch>> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("pad", DataType::Utf8, false),
        ]));
        let pad = "x".repeat(100);
        let batches: Vec<RecordBatch> = (0..200)
            .map(|b| {
                let keys: Vec<i64> = (0..8192)
                    .map(|i| (i * 7919 + b * 104_729) % 1_000_003)
                    .collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(keys)),
                        Arc::new(StringArray::from(vec![pad.as_str(); 8192])),
                    ],
                )
                .expect("batch")
            })
            .collect();
        // The merge reserves 10 MB per partition by default, sized for
        // weir's 1 GiB pool; scaled down with the pool for this test.
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_sort_spill_reservation_bytes(1 << 20);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![batches])?))?;
        ctx.sql("SELECT k, pad FROM t ORDER BY k")
            .await?
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_sort_larger_than_the_pool_spills_to_the_work_dir() {
        let work = tempfile::tempdir().expect("dir");
        let batches = sort_under(runtime_with_limit(work.path(), 64 << 20).expect("runtime"))
            .await
            .expect("spills instead of failing");
        let keys: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("int64")
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(keys.len(), 200 * 8192);
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "sorted");

        // The same limit without a disk to spill to fails: the pool is what
        // bounds the task, and spilling is what saves it.
        let no_disk = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(64 << 20)))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .expect("runtime");
        let err = sort_under(no_disk).await.expect_err("cannot spill");
        assert!(
            err.to_string().contains("Resources exhausted") || err.to_string().contains("disk"),
            "{err}"
        );
    }
}
