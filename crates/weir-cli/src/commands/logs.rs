use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use weir_store::LogLine;
use weir_types::RunId;

use crate::project::Globals;
use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run's id.
    pub run: RunId,

    /// Only this step.
    pub step: Option<String>,

    /// Keep printing new lines until the run ends.
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// Prefix each line with its timestamp.
    #[arg(long, short = 't')]
    pub timestamps: bool,
}

const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub async fn run(globals: &Globals, args: LogsArgs) -> Result<Outcome> {
    let engine = globals.engine().await?;
    let store = engine.store();
    // Byte offset reached in each attempt's log, and the attempts whose log
    // is complete: a task's log is stored before its end is committed, so
    // once it is seen terminal and read, it never changes again.
    let mut offsets: HashMap<(String, u32), u64> = HashMap::new();
    let mut complete: HashSet<(String, u32)> = HashSet::new();
    let mut checked_step = false;
    loop {
        let run = store
            .run(args.run)
            .await?
            .ok_or_else(|| crate::project::run_not_found(args.run))?;
        let mut tasks = store.tasks(args.run).await?;
        if let (Some(step), false) = (&args.step, checked_step) {
            if !tasks.iter().any(|t| &t.step == step) {
                let mut steps: Vec<&str> = tasks.iter().map(|t| t.step.as_str()).collect();
                steps.dedup();
                bail!(
                    "run {} has no step `{step}`\n  hint: its steps are {}",
                    args.run,
                    steps.join(", ")
                );
            }
            checked_step = true;
        }
        tasks.retain(|t| args.step.as_ref().is_none_or(|s| &t.step == s));
        tasks.sort_by_key(|t| (t.started_at, t.id));
        for task in tasks {
            let key = (task.step.clone(), task.attempt);
            if complete.contains(&key) {
                continue;
            }
            let offset = offsets.get(&key).copied().unwrap_or(0);
            let (lines, next) = engine
                .logs()
                .read_from(args.run, &task.step, task.attempt, offset)
                .await?;
            for line in &lines {
                print_line(&task.step, task.attempt, line, args.timestamps);
            }
            offsets.insert(key.clone(), next);
            if task.state.is_terminal() {
                complete.insert(key);
            }
        }
        if !args.follow || run.state.is_terminal() {
            break;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
    Ok(Outcome::Success)
}

fn print_line(step: &str, attempt: u32, line: &LogLine, timestamps: bool) {
    let prefix = if line.stream == "stdout" {
        format!("{step}#{attempt}")
    } else {
        format!("{step}#{attempt} {}", line.stream)
    };
    if timestamps {
        output::line(format!(
            "{} [{prefix}] {}",
            line.ts.format("%H:%M:%S%.3f"),
            line.text
        ));
    } else {
        output::line(format!("[{prefix}] {}", line.text));
    }
}
