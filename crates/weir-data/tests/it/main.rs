#![expect(
    clippy::unwrap_used,
    reason = "a test binary: a panic is a failed test"
)]
//! weir-data against real files in temporary directories and real object
//! stores (on disk and in memory): no mocks.

mod dataset;
mod export;
mod lake;
mod load;
mod quality;
mod remote;
mod sql;
mod typecheck;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use tokio_util::sync::CancellationToken;
use weir_data::{Format, format_batches, read_dataset};
use weir_exec::{DatasetInput, DatasetOutput, LogSink, LogStream, TaskContext};
use weir_types::{DatasetVersionRef, RunId, TaskId};

/// Collects every log line.
#[derive(Default)]
pub struct Lines(Mutex<Vec<String>>);

impl LogSink for Lines {
    fn line(&self, _stream: LogStream, text: &str) {
        self.0.lock().unwrap().push(text.to_owned());
    }
}

/// A project directory, a blob store on disk and a task working directory,
/// all removed when the value is dropped.
pub struct Fixture {
    pub project: tempfile::TempDir,
    pub blob_dir: tempfile::TempDir,
    pub work: tempfile::TempDir,
    pub blobs: Arc<dyn ObjectStore>,
    pub log: Arc<Lines>,
}

impl Fixture {
    pub fn on_disk() -> Self {
        let blob_dir = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(blob_dir.path()).unwrap());
        Self::with_blobs(blobs, blob_dir)
    }

    pub fn in_memory() -> Self {
        Self::with_blobs(
            Arc::new(object_store::memory::InMemory::new()),
            tempfile::tempdir().unwrap(),
        )
    }

    fn with_blobs(blobs: Arc<dyn ObjectStore>, blob_dir: tempfile::TempDir) -> Self {
        Fixture {
            project: tempfile::tempdir().unwrap(),
            blob_dir,
            work: tempfile::tempdir().unwrap(),
            blobs,
            log: Arc::default(),
        }
    }

    /// Writes a file in the project directory (creating folders).
    pub fn file(&self, relative: &str, contents: impl AsRef<[u8]>) {
        let path = self.project.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// A context for step `step` of pipeline `sales` in namespace `default`.
    pub fn context(&self, step: &str) -> TaskContext {
        TaskContext {
            run_id: RunId(42),
            task_id: TaskId(7),
            namespace: "default".to_owned(),
            pipeline: "sales".to_owned(),
            step: step.to_owned(),
            attempt: 1,
            params: serde_json::Map::new(),
            vars: BTreeMap::from([(
                "WEIR_PROJECT_DIR".to_owned(),
                self.project.path().to_string_lossy().into_owned(),
            )]),
            work_dir: self.work.path().to_path_buf(),
            timeout: None,
            cancel: CancellationToken::new(),
            log: self.log.clone(),
            inputs: BTreeMap::new(),
            blobs: self.blobs.clone(),
            data: weir_spec::StepData::default(),
            environment: weir_spec::Environment::default(),
            secrets: BTreeMap::new(),
        }
    }

    pub fn blob_path(&self, key: &str) -> std::path::PathBuf {
        self.blob_dir.path().join(key)
    }
}

/// An input of step `name` of pipeline `sales`, from what a step produced.
pub fn input(name: &str, output: &DatasetOutput) -> DatasetInput {
    DatasetInput {
        version: DatasetVersionRef {
            namespace: "default".to_owned(),
            name: format!("sales.{name}"),
            version: 1,
        },
        files: output.files.clone(),
        schema: output.schema.clone(),
        rows: output.rows,
        view: None,
    }
}

/// The rows as sorted CSV lines (header first).
pub fn csv_rows(schema: &SchemaRef, batches: &[RecordBatch]) -> Vec<String> {
    let text = format_batches(schema, batches, Format::Csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.len() > 1 {
        lines[1..].sort();
    }
    lines
}

/// A dataset's rows, as [`csv_rows`].
pub async fn dataset_rows(blobs: &Arc<dyn ObjectStore>, output: &DatasetOutput) -> Vec<String> {
    let (schema, batches) = read_dataset(blobs, &output.files).await.unwrap();
    csv_rows(&schema, &batches)
}

pub fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected `{needle}` in:\n{haystack}"
    );
}
