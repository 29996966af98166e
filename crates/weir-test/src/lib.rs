//! Dev-only helpers for weir's tests: throw-away projects, running the real
//! `weir` binary against them, and filters that make its output stable
//! (temp paths, durations, timestamps) for golden files and snapshots; and
//! database fixtures ([`TestDatabase`]: a fresh PostgreSQL database per test).
//!
//! Nothing here is a mock: tests run the real binary on real files and real
//! databases.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::sync::LazyLock;

use anyhow::{Context, Result};
use regex::Regex;

mod postgres;

pub use postgres::TestDatabase;

/// A weir project in a temporary folder, removed on drop.
pub struct TestProject {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl TestProject {
    /// An empty project (a `weir.yaml` naming it `test`).
    pub fn new(bin: impl Into<PathBuf>) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("weir-test-").tempdir()?;
        let project = TestProject {
            dir,
            bin: bin.into(),
        };
        project.write("weir.yaml", "name: test\n")?;
        Ok(project)
    }

    /// A copy of an existing project folder (without its `.weir/` state or
    /// `expected/` outputs).
    pub fn copy_of(bin: impl Into<PathBuf>, source: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("weir-test-").tempdir()?;
        copy_dir(source, dir.path())?;
        Ok(TestProject {
            dir,
            bin: bin.into(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, content: &str) -> Result<()> {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(path, content)?;
        Ok(())
    }

    pub fn read(&self, relative: &str) -> Result<String> {
        Ok(fs_err::read_to_string(self.dir.path().join(relative))?)
    }

    /// `weir ARGS` in the project folder, plain output, no colours.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("WEIR_PROJECT")
            .env_remove("WEIR_DATABASE_URL");
        cmd
    }

    /// Runs `weir ARGS` to completion.
    pub fn weir(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .output()
            .with_context(|| format!("cannot run {} {args:?}", self.bin.display()))
    }

    /// `weir show RUN --json`, parsed.
    pub fn show_json(&self, run: i64) -> Result<serde_json::Value> {
        let out = self.weir(&["show", &run.to_string(), "--json"])?;
        anyhow::ensure!(
            out.status.success(),
            "weir show failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Replaces what changes between runs with placeholders.
    pub fn filter(&self, text: &str) -> String {
        let mut text = text.replace(&self.dir.path().display().to_string(), "[PROJECT]");
        text = replace_durations(&text);
        text
    }
}

/// `1.23s`, `12m03s` → `[T]` and `3.2 MiB` → `[MEM]`, so golden files do
/// not depend on the machine's speed or the allocator.
pub fn replace_durations(text: &str) -> String {
    static DURATION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(\d+\.\d+s|\d+m\d\ds)\b").expect("valid regex"));
    static MEMORY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b\d+(\.\d+)? (KiB|MiB|GiB)\b").expect("valid regex"));
    static DATETIME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z?\b").expect("valid regex")
    });
    let text = DATETIME.replace_all(text, "[DATETIME]");
    let text = DURATION.replace_all(&text, "[T]");
    MEMORY.replace_all(&text, "[MEM]").into_owned()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs_err::create_dir_all(to)?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".weir" || name == "expected" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs_err::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The repository's root folder (for `tests/golden`, `examples/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_replaced_but_other_numbers_stay() {
        assert_eq!(
            replace_durations("run 12 succeeded in 1.23s, step 2m03s; 3 steps, v1.5, 1h30m, 5m"),
            "run 12 succeeded in [T], step [T]; 3 steps, v1.5, 1h30m, 5m"
        );
        assert_eq!(replace_durations("[  0.12s] clean"), "[  [T]] clean");
        assert_eq!(replace_durations("0.01s  3.2 MiB"), "[T]  [MEM]");
        assert_eq!(
            replace_durations("updated 2026-11-24 01:43:25  run 1"),
            "updated [DATETIME]  run 1"
        );
        assert_eq!(
            replace_durations("timeout: 5x at 3:4"),
            "timeout: 5x at 3:4"
        );
    }
}
