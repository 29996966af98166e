//! The task log store: spool files while a task runs, blobs once it finished.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tempfile::TempDir;
use weir_store::{BlobStore, Error, LogStore};
use weir_types::RunId;

struct Fixture {
    dir: TempDir,
    logs: LogStore,
    blobs: BlobStore,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new().expect("temp dir");
        let blobs =
            BlobStore::open(&dir.path().join("blobs").display().to_string()).expect("blobs");
        let logs = LogStore::new(blobs.clone(), dir.path().join("spool"));
        Fixture { dir, logs, blobs }
    }

    /// Another process's view of the same directories (`weir logs --follow`).
    fn reader(&self) -> LogStore {
        LogStore::new(self.blobs.clone(), self.dir.path().join("spool"))
    }

    fn spool(&self, run: i64, step: &str, attempt: u32) -> PathBuf {
        self.dir
            .path()
            .join(format!("spool/{run}/{step}.{attempt}.log"))
    }
}

fn texts(lines: &[weir_store::LogLine]) -> Vec<(&str, &str)> {
    lines
        .iter()
        .map(|l| (l.stream.as_str(), l.text.as_str()))
        .collect()
}

const AWKWARD: &str = "tab\there, newline\nthere, cr\r\nand a back\\slash\\n";

#[tokio::test]
async fn lines_are_readable_live_then_from_the_blob() {
    let f = Fixture::new();
    let run = RunId(7);
    let writer = f.logs.writer(run, "clean", 1).expect("writer");
    writer.append("stdout", "first");
    writer.append("stderr", AWKWARD);
    writer.append("stdout", "");

    // Live, from the spool file, by another reader.
    let live = f.reader().read(run, "clean", 1).await.expect("read live");
    assert_eq!(
        texts(&live),
        [("stdout", "first"), ("stderr", AWKWARD), ("stdout", "")]
    );
    assert!(f.spool(7, "clean", 1).is_file());
    let now = Utc::now();
    assert!(live.iter().all(|l| (now - l.ts).num_seconds() < 60));
    let raw = std::fs::read_to_string(f.spool(7, "clean", 1)).expect("spool text");
    assert_eq!(raw.lines().count(), 3, "one line per log line: {raw:?}");

    writer.finish().await.expect("finish");
    assert!(!f.spool(7, "clean", 1).exists(), "spool removed");
    assert!(
        !f.dir.path().join("spool/7").exists(),
        "empty spool dirs removed"
    );
    let blob = f
        .blobs
        .get("logs/7/clean/1.log")
        .await
        .expect("get")
        .expect("uploaded");
    assert_eq!(blob, raw.as_bytes(), "the blob is the spool file");

    let done = f
        .reader()
        .read(run, "clean", 1)
        .await
        .expect("read finished");
    assert_eq!(done, live);
    let tail = f.logs.tail(run, "clean", 1, 2).await.expect("tail");
    assert_eq!(texts(&tail), [("stderr", AWKWARD), ("stdout", "")]);
    assert_eq!(
        f.logs.tail(run, "clean", 1, 10).await.expect("tail").len(),
        3
    );
}

#[tokio::test]
async fn timestamps_keep_milliseconds() {
    let f = Fixture::new();
    let ts: DateTime<Utc> = "2026-11-23T10:00:00.123456Z".parse().expect("time");
    let writer = f.logs.writer(RunId(1), "a", 1).expect("writer");
    writer.append_at(ts, "weir", "started");
    let lines = f.logs.read(RunId(1), "a", 1).await.expect("read");
    assert_eq!(
        lines[0].ts,
        "2026-11-23T10:00:00.123Z"
            .parse::<DateTime<Utc>>()
            .expect("time")
    );
    let raw = std::fs::read_to_string(f.spool(1, "a", 1)).expect("spool");
    assert_eq!(raw, "2026-11-23T10:00:00.123Z\tweir\tstarted\n");
}

#[tokio::test]
async fn empty_log_uploads_nothing() {
    let f = Fixture::new();
    let writer = f.logs.writer(RunId(3), "quiet", 2).expect("writer");
    assert!(
        f.logs
            .read(RunId(3), "quiet", 2)
            .await
            .expect("read")
            .is_empty()
    );
    writer.finish().await.expect("finish");
    assert!(!f.spool(3, "quiet", 2).exists());
    assert!(!f.blobs.exists("logs/3/quiet/2.log").await.expect("exists"));
    assert!(f.blobs.list("logs").await.expect("list").is_empty());
    assert!(
        f.logs
            .read(RunId(3), "quiet", 2)
            .await
            .expect("read")
            .is_empty()
    );
    // A log that never existed reads as empty too.
    assert!(
        f.logs
            .read(RunId(99), "never", 1)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(
        f.logs
            .read_from(RunId(99), "never", 1, 0)
            .await
            .expect("read_from"),
        (Vec::new(), 0)
    );
}

#[tokio::test]
async fn follow_reads_complete_lines_across_finish() {
    let f = Fixture::new();
    let run = RunId(5);
    let follower = f.reader();
    let writer = f.logs.writer(run, "load", 1).expect("writer");
    writer.append("stdout", "one");
    let (lines, offset) = follower.read_from(run, "load", 1, 0).await.expect("follow");
    assert_eq!(texts(&lines), [("stdout", "one")]);

    // Nothing new: same offset.
    let (lines, same) = follower
        .read_from(run, "load", 1, offset)
        .await
        .expect("follow");
    assert!(lines.is_empty());
    assert_eq!(same, offset);

    // A line caught half-written is left for the next call.
    let mut spool = std::fs::OpenOptions::new()
        .append(true)
        .open(f.spool(5, "load", 1))
        .expect("open spool");
    spool
        .write_all(b"2026-11-23T10:00:00.000Z\tstdout\thal")
        .expect("partial");
    let (lines, after_partial) = follower
        .read_from(run, "load", 1, offset)
        .await
        .expect("follow");
    assert!(lines.is_empty());
    assert_eq!(after_partial, offset);
    spool.write_all(b"f\n").expect("rest");
    writer.append("stderr", "two\nlines");
    let (lines, offset) = follower
        .read_from(run, "load", 1, offset)
        .await
        .expect("follow");
    assert_eq!(
        texts(&lines),
        [("stdout", "half"), ("stderr", "two\nlines")]
    );

    // Finishing moves the bytes to the blob; the offset stays valid.
    writer.finish().await.expect("finish");
    let (lines, end) = follower
        .read_from(run, "load", 1, offset)
        .await
        .expect("follow");
    assert!(lines.is_empty());
    assert_eq!(end, offset);
    let (all, end) = follower
        .read_from(run, "load", 1, 0)
        .await
        .expect("from start");
    assert_eq!(all.len(), 3);
    assert_eq!(end, offset);
}

#[tokio::test]
async fn concurrent_appends_never_interleave() {
    let f = Fixture::new();
    let writer = Arc::new(f.logs.writer(RunId(9), "fan", 1).expect("writer"));
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    writer.append(&format!("t{n}"), &format!("line {i} of\tthread {n}\n"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(writer.errors(), 0);
    let lines = f.logs.read(RunId(9), "fan", 1).await.expect("read");
    assert_eq!(lines.len(), 2000);
    for n in 0..4 {
        let mine: Vec<&str> = lines
            .iter()
            .filter(|l| l.stream == format!("t{n}"))
            .map(|l| l.text.as_str())
            .collect();
        let expected: Vec<String> = (0..500)
            .map(|i| format!("line {i} of\tthread {n}\n"))
            .collect();
        assert_eq!(mine, expected, "thread {n}'s lines, whole and in order");
    }
    let writer = Arc::into_inner(writer).expect("last handle");
    writer.finish().await.expect("finish");
    assert_eq!(
        f.logs.read(RunId(9), "fan", 1).await.expect("read").len(),
        2000
    );
}

#[tokio::test]
async fn attempts_and_steps_are_separate_logs() {
    let f = Fixture::new();
    let a1 = f.logs.writer(RunId(2), "a", 1).expect("writer");
    let a2 = f.logs.writer(RunId(2), "a", 2).expect("writer");
    let b1 = f.logs.writer(RunId(2), "b", 1).expect("writer");
    a1.append("stdout", "a1");
    a2.append("stdout", "a2");
    b1.append("stdout", "b1");
    a1.finish().await.expect("finish");
    // The run's directory still holds attempt 2: finishing attempt 1 keeps it.
    assert!(f.spool(2, "a", 2).is_file());
    assert_eq!(
        texts(&f.logs.read(RunId(2), "a", 1).await.expect("read")),
        [("stdout", "a1")]
    );
    assert_eq!(
        texts(&f.logs.read(RunId(2), "a", 2).await.expect("read")),
        [("stdout", "a2")]
    );
    assert_eq!(
        texts(&f.logs.read(RunId(2), "b", 1).await.expect("read")),
        [("stdout", "b1")]
    );
    a2.finish().await.expect("finish");
    b1.finish().await.expect("finish");
    assert_eq!(
        f.blobs.list("logs/2").await.expect("list"),
        ["logs/2/a/1.log", "logs/2/a/2.log", "logs/2/b/1.log"]
    );
}

#[tokio::test]
async fn unsafe_step_names_are_rejected() {
    let f = Fixture::new();
    for step in ["../etc", "a/b", "..", ""] {
        let err = f.logs.writer(RunId(1), step, 1).expect_err(step);
        assert!(
            matches!(&err, Error::InvalidStep { step: s } if s == step),
            "{err:?}"
        );
        assert!(f.logs.read(RunId(1), step, 1).await.is_err());
    }
}

/// Most tasks of a large fan-out print nothing; they must not cost a file.
#[tokio::test]
async fn a_silent_task_creates_no_spool_file_and_no_blob() {
    let f = Fixture::new();
    let writer = f.logs.writer(RunId(11), "quiet", 1).expect("writer");
    assert!(!f.spool(11, "quiet", 1).exists(), "created before any line");
    assert!(!f.dir.path().join("spool/11").exists());
    writer.finish().await.expect("finish");
    assert!(
        f.blobs
            .get("logs/11/quiet/1.log")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        f.logs
            .read(RunId(11), "quiet", 1)
            .await
            .expect("read")
            .is_empty()
    );
}
