//! Task logs: appended to a local spool file while the task runs (so
//! `weir logs --follow` in another process can read them live), uploaded to
//! the blob store when it finishes.
//!
//! One line per log line: `RFC3339-millis-UTC \t stream \t text \n`, with `\`,
//! newline, carriage return and tab escaped in `stream` and `text`
//! (`\\ \n \r \t`). The blob is byte-for-byte the spool file, so a byte offset
//! read from one stays valid in the other.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use weir_types::RunId;

use crate::{BlobStore, Error, Result};

/// One line a task wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When weir received it (millisecond precision).
    pub ts: DateTime<Utc>,
    /// `stdout`, `stderr`, or `weir` for the engine's own notes.
    pub stream: String,
    pub text: String,
}

/// Task logs of all runs: live ones in `spool_dir`, finished ones in the
/// blob store under `logs/`.
#[derive(Debug, Clone)]
pub struct LogStore {
    blobs: BlobStore,
    spool_dir: PathBuf,
}

impl LogStore {
    pub fn new(blobs: BlobStore, spool_dir: PathBuf) -> LogStore {
        LogStore { blobs, spool_dir }
    }

    /// Starts (or, for a resumed task, continues) the log of one attempt.
    ///
    /// The spool file is created by the first line: most tasks of a big
    /// fan-out print nothing, and creating a file per task was measured as
    /// the largest part of weir's own per-task CPU on ext4 (bench/README.md).
    pub fn writer(&self, run: RunId, step: &str, attempt: u32) -> Result<TaskLogWriter> {
        let path = self.spool_path(run, step, attempt)?;
        Ok(TaskLogWriter {
            file: Mutex::new(None),
            path,
            key: blob_key(run, step, attempt),
            blobs: self.blobs.clone(),
            errors: AtomicU64::new(0),
        })
    }

    /// The whole log of one attempt: from the blob store once the task
    /// finished, from the spool file while it runs, empty if it wrote nothing.
    pub async fn read(&self, run: RunId, step: &str, attempt: u32) -> Result<Vec<LogLine>> {
        let (lines, _) = self.read_from(run, step, attempt, 0).await?;
        Ok(lines)
    }

    /// The complete lines after byte `offset`, and the offset to pass next
    /// time (`weir logs --follow`). A line still being written is left for
    /// the next call. Works across the task finishing: the blob holds the same
    /// bytes as the spool file did.
    pub async fn read_from(
        &self,
        run: RunId,
        step: &str,
        attempt: u32,
        offset: u64,
    ) -> Result<(Vec<LogLine>, u64)> {
        let bytes = self.bytes(run, step, attempt).await?;
        let key = blob_key(run, step, attempt);
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let tail = &bytes[start..];
        // Only complete lines: the writer may be in the middle of one.
        let complete = tail
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |last| last + 1);
        let lines = parse_lines(&tail[..complete], &key)?;
        Ok((lines, offset.min(bytes.len() as u64) + complete as u64))
    }

    /// The last `n` lines of one attempt.
    pub async fn tail(
        &self,
        run: RunId,
        step: &str,
        attempt: u32,
        n: usize,
    ) -> Result<Vec<LogLine>> {
        let mut lines = self.read(run, step, attempt).await?;
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
        Ok(lines)
    }

    async fn bytes(&self, run: RunId, step: &str, attempt: u32) -> Result<Bytes> {
        let path = self.spool_path(run, step, attempt)?;
        if let Some(bytes) = self.blobs.get(&blob_key(run, step, attempt)).await? {
            return Ok(bytes);
        }
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // `finish` uploads, then removes the spool file: if it did
                // both between our two reads, the blob has it now.
                Ok(self
                    .blobs
                    .get(&blob_key(run, step, attempt))
                    .await?
                    .unwrap_or_default())
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// `<spool>/<run>/<step>.<attempt>.log`: one directory per run, not per
    /// step, as every directory costs an inode (step names have no `.`).
    fn spool_path(&self, run: RunId, step: &str, attempt: u32) -> Result<PathBuf> {
        check_step(step)?;
        Ok(self
            .spool_dir
            .join(run.to_string())
            .join(format!("{step}.{attempt}.log")))
    }
}

/// Appends one attempt's lines to its spool file. Shared by the tasks that
/// pump the child's stdout and stderr (`&self`, `Sync`).
#[derive(Debug)]
pub struct TaskLogWriter {
    /// `None` until the first line.
    file: Mutex<Option<fs_err::File>>,
    path: PathBuf,
    key: String,
    blobs: BlobStore,
    errors: AtomicU64,
}

impl TaskLogWriter {
    /// Appends one line, stamped now.
    ///
    /// Each line is one unbuffered `write(2)` of the whole line: a live reader
    /// sees it at once, and a crash loses at most the line being written. A
    /// failing disk must not fail the task, so IO errors are only counted
    /// ([`TaskLogWriter::errors`]) and logged.
    pub fn append(&self, stream: &str, text: &str) {
        self.append_at(Utc::now(), stream, text);
    }

    /// Appends one line with a given timestamp.
    pub fn append_at(&self, ts: DateTime<Utc>, stream: &str, text: &str) {
        let line = format_line(ts, stream, text);
        // A panic elsewhere while holding the lock leaves the file usable.
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = match &mut *file {
            Some(f) => f.write_all(line.as_bytes()),
            None => self.create_spool().and_then(|mut f| {
                let result = f.write_all(line.as_bytes());
                *file = Some(f);
                result
            }),
        };
        if let Err(error) = written {
            drop(file);
            let before = self.errors.fetch_add(1, Ordering::Relaxed);
            if before == 0 {
                tracing::warn!(path = %self.path.display(), %error, "cannot write task log; further errors are counted");
            }
        }
    }

    fn create_spool(&self) -> std::io::Result<fs_err::File> {
        if let Some(dir) = self.path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    /// How many lines could not be written.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The spool file being written (created by the first line).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished log to the blob store (unless it is empty) and
    /// removes the spool file.
    pub async fn finish(self) -> Result<()> {
        let file = self
            .file
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(file) = file else {
            // Nothing was written: no spool file, nothing to store.
            return Ok(());
        };
        drop(file);
        let bytes = tokio::fs::read(&self.path)
            .await
            .map_err(|e| Error::io(&self.path, e))?;
        if !bytes.is_empty() {
            self.blobs.put(&self.key, Bytes::from(bytes)).await?;
        }
        tokio::fs::remove_file(&self.path)
            .await
            .map_err(|e| Error::io(&self.path, e))?;
        // Tidy the run's spool directory once its last live log is gone; it
        // is not empty while other tasks of the run still write.
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(())
    }
}

/// `logs/<run>/<step>/<attempt>.log`
fn blob_key(run: RunId, step: &str, attempt: u32) -> String {
    format!("logs/{run}/{step}/{attempt}.log")
}

/// Step names are validated identifiers before they get here; this only keeps
/// a bad one from escaping the spool directory or the `logs/` prefix.
fn check_step(step: &str) -> Result<()> {
    let bad = step.is_empty()
        || step.starts_with('.')
        || step.contains("..")
        || step
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control());
    if bad {
        return Err(Error::InvalidStep {
            step: step.to_owned(),
        });
    }
    Ok(())
}

fn format_line(ts: DateTime<Utc>, stream: &str, text: &str) -> String {
    let mut line = String::with_capacity(32 + stream.len() + text.len());
    line.push_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true));
    line.push('\t');
    escape_into(&mut line, stream);
    line.push('\t');
    escape_into(&mut line, text);
    line.push('\n');
    line
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            // Not written by us; keep it as it is.
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn parse_lines(bytes: &[u8], key: &str) -> Result<Vec<LogLine>> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            parse_line(line).ok_or_else(|| {
                Error::corrupt(format!(
                    "log `{key}` line {}: `{line}` is not a log line",
                    i + 1
                ))
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Option<LogLine> {
    let mut fields = line.splitn(3, '\t');
    let ts = DateTime::parse_from_rfc3339(fields.next()?).ok()?;
    let stream = unescape(fields.next()?);
    let text = unescape(fields.next()?);
    Some(LogLine {
        ts: ts.with_timezone(&Utc),
        stream,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_escapes() {
        let ts = DateTime::parse_from_rfc3339("2026-11-23T10:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        for text in [
            "plain",
            "a\tb",
            "two\nlines",
            "cr\r\n",
            "back\\slash\\n",
            "",
            "\\",
        ] {
            let line = format_line(ts, "std\terr", text);
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            let parsed = parse_line(line.trim_end_matches('\n')).unwrap();
            assert_eq!(parsed.ts, ts);
            assert_eq!(parsed.stream, "std\terr");
            assert_eq!(parsed.text, text);
        }
    }

    #[test]
    fn format_is_tab_separated_rfc3339_millis() {
        let ts = DateTime::parse_from_rfc3339("2026-11-23T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            format_line(ts, "stdout", "hi\tthere"),
            "2026-11-23T10:00:00.123Z\tstdout\thi\\tthere\n"
        );
    }

    #[test]
    fn unsafe_step_names_are_rejected() {
        for step in ["", "..", "a/b", "../x", "a\\b", ".hidden", "a..b"] {
            assert!(check_step(step).is_err(), "{step:?}");
        }
        for step in ["clean", "load_orders", "step-2", "Revenue9"] {
            assert!(check_step(step).is_ok(), "{step:?}");
        }
    }
}
