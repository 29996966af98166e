//! One integration-test binary for the `weir` CLI (link time): golden
//! projects, run behaviour, crash recovery, output snapshots.

mod golden;
mod logs_follow;
mod postgres;
mod runs;
mod schema;
mod slt;
mod snapshots;

use weir_test::TestProject;

pub fn project() -> TestProject {
    TestProject::new(env!("CARGO_BIN_EXE_weir")).expect("temp project")
}

/// The run id printed by `weir run` on its first line: `run 12 of `x``.
pub fn run_id(stdout: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("run ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no run id in output:\n{text}"))
}
