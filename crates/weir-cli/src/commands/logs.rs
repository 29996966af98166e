use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
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
    let mut printed: HashMap<(String, u32), usize> = HashMap::new();
    loop {
        let summary = crate::project::run_summary(&engine, args.run).await?;
        if let Some(step) = &args.step
            && !summary.tasks.iter().any(|t| &t.step == step)
        {
            let steps: Vec<&str> = summary
                .latest_tasks()
                .iter()
                .map(|t| t.step.as_str())
                .collect();
            bail!(
                "run {} has no step `{step}`\n  hint: its steps are {}",
                args.run,
                steps.join(", ")
            );
        }
        let mut tasks: Vec<_> = summary
            .tasks
            .iter()
            .filter(|t| args.step.as_ref().is_none_or(|s| &t.step == s))
            .collect();
        tasks.sort_by_key(|t| (t.started_at, t.id));
        for task in tasks {
            let key = (task.step.clone(), task.attempt);
            let lines = engine
                .logs()
                .read(args.run, &task.step, task.attempt)
                .await?;
            let done = printed.entry(key).or_insert(0);
            for line in lines.iter().skip(*done) {
                let prefix = if line.stream == "stdout" {
                    format!("{}#{}", task.step, task.attempt)
                } else {
                    format!("{}#{} {}", task.step, task.attempt, line.stream)
                };
                if args.timestamps {
                    output::line(format!(
                        "{} [{prefix}] {}",
                        line.ts.format("%H:%M:%S%.3f"),
                        line.text
                    ));
                } else {
                    output::line(format!("[{prefix}] {}", line.text));
                }
            }
            *done = lines.len().max(*done);
        }
        if !args.follow || summary.run.state.is_terminal() {
            break;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
    Ok(Outcome::Success)
}
