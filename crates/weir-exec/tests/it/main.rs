#![expect(
    clippy::unwrap_used,
    reason = "a test binary: a panic is a failed test"
)]
//! weir-exec against real bash, python3 and the kernel: no mocks.

mod process;
mod shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_exec::process::{ProcessSpec, task_env};
use weir_exec::{LogSink, LogStream, TaskContext};
use weir_types::{RunId, TaskId};

/// Collects every line, in arrival order.
#[derive(Default)]
pub struct Lines(Mutex<Vec<(LogStream, String)>>);

impl LogSink for Lines {
    fn line(&self, stream: LogStream, text: &str) {
        self.0.lock().unwrap().push((stream, text.to_owned()));
    }
}

impl Lines {
    pub fn of(&self, stream: LogStream) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// A task context in a fresh working directory (kept alive by the `TempDir`).
pub fn context(log: Arc<Lines>) -> (TaskContext, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let params = serde_json::json!({
        "min_amount": 2.5,
        "region": "eu west",
        "tags": ["a", "b"],
    });
    let cx = TaskContext {
        run_id: RunId(42),
        task_id: TaskId(7),
        namespace: "default".to_owned(),
        pipeline: "sales".to_owned(),
        step: "notify".to_owned(),
        attempt: 1,
        params: params.as_object().unwrap().clone(),
        vars: BTreeMap::from([("COLOR".to_owned(), "blue".to_owned())]),
        work_dir: dir.path().to_path_buf(),
        timeout: None,
        cancel: CancellationToken::new(),
        log,
        inputs: BTreeMap::new(),
        blobs: Arc::new(object_store::memory::InMemory::new()),
        data: weir_spec::StepData::default(),
        environment: weir_spec::Environment::default(),
        secrets: BTreeMap::new(),
    };
    (cx, dir)
}

/// `bash -c <script>` in `dir` with the task environment of a default context.
pub fn bash(script: &str, dir: &Path) -> ProcessSpec {
    let (cx, _tmp) = context(Arc::default());
    ProcessSpec::new("bash", dir)
        .args(["-c", script])
        .env(task_env(&cx))
}

/// Whether `pid` is a live process (a zombie is dead: it only waits for its
/// parent, possibly a container's init that never reaps, to collect it).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) S ...`: the state follows the last `)`.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !(state.starts_with('Z') || state.starts_with('X'))
        }
        Err(_) => false,
    }
}

/// Waits for `pid` to die. Signals are asynchronous, so a process killed a
/// moment ago may still be tearing down.
pub fn dies(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Reads the pid a script wrote, waiting for the file to appear.
pub async fn read_pid(path: &PathBuf) -> u32 {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never got a pid", path.display());
}
