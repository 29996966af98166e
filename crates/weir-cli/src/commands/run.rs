use anyhow::{Context, Result, anyhow};
use clap::Args;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use weir_engine::{Engine, ExecuteOptions, NewRunRequest, RunSummary};
use weir_spec::Plan;
use weir_types::{DEFAULT_NAMESPACE, RunId, RunState, TaskState};

use crate::project::Globals;
use crate::{Outcome, output, progress, render};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline to run (its file name in `pipelines/` without `.yaml`).
    #[arg(required_unless_present = "resume")]
    pub pipeline: Option<String>,

    /// Set a parameter, e.g. `--param min_amount=10`; repeatable.
    #[arg(long = "param", short = 'P', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,

    /// Environment to run in (a file in `environments/`); default: the
    /// project's `environment:`.
    #[arg(long)]
    pub env: Option<String>,

    /// How many steps may run at once (1–256); default: the number of CPUs.
    // Each running process holds a thread of tokio's blocking pool (512) to
    // be reaped with wait4; the cap leaves room for the pool's other work.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: Option<u16>,

    /// Continue an interrupted, failed or cancelled run: succeeded steps are
    /// kept, every other step runs again as a new attempt.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["pipeline", "params", "env"])]
    pub resume: Option<RunId>,
}

pub async fn run(globals: &Globals, args: RunArgs) -> Result<Outcome> {
    let root = globals.project_root()?;
    // The steps, for the progress display, in plan order.
    let (engine, run_id, steps) = match args.resume {
        Some(run_id) => {
            let engine = globals.engine().await?;
            let existing = crate::project::run_summary(&engine, run_id).await?;
            let run = &existing.run;
            if run.state == RunState::Succeeded {
                output::line(format!(
                    "run {run_id} of `{}` already succeeded; nothing to resume",
                    run.pipeline
                ));
                return Ok(Outcome::Success);
            }
            output::line(format!(
                "resuming run {run_id} of `{}` (was {})",
                run.pipeline, run.state
            ));
            let steps = existing
                .latest_tasks()
                .iter()
                .map(|t| t.step.clone())
                .collect();
            (engine, run_id, steps)
        }
        None => match create(globals, &root, &args).await? {
            Some((engine, run_id, plan)) => {
                output::line(format!("run {run_id} of `{}`", plan.pipeline));
                let steps = plan.steps.into_iter().map(|s| s.name).collect();
                (engine, run_id, steps)
            }
            None => return Ok(Outcome::Failure),
        },
    };

    let cancel = CancellationToken::new();
    watch_interrupts(cancel.clone(), run_id)?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let display = tokio::spawn(progress::display(events_rx, steps, output::is_rich()));
    let mut options = ExecuteOptions {
        events: Some(events_tx),
        cancel,
        ..ExecuteOptions::default()
    };
    if let Some(n) = args.concurrency {
        options.concurrency = usize::from(n);
    }
    let result = engine.execute(run_id, options).await;
    let _ = display.await;
    let summary = result.with_context(|| {
        format!(
            "run {run_id} stopped before it ended\n  hint: what had succeeded is kept; continue with `weir run --resume {run_id}`"
        )
    })?;
    print_summary(&engine, &summary).await;
    Ok(if summary.run.state == RunState::Succeeded {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

/// Validates the project and creates the run; `None` after reporting a
/// user error. The stores are opened only once the pipeline is valid.
async fn create(
    globals: &Globals,
    root: &std::path::Path,
    args: &RunArgs,
) -> Result<Option<(Engine, RunId, Plan)>> {
    let pipeline = args
        .pipeline
        .clone()
        .ok_or_else(|| anyhow!("name the pipeline to run, e.g. `weir run sales`"))?;
    let (checked, _) = crate::project::check(root, std::slice::from_ref(&pipeline)).await;
    let errors = render::diagnostics(&checked.diagnostics, &checked.sources);
    if errors > 0 {
        output::line(format!(
            "`{pipeline}` has {errors} error{}; nothing was run (see `weir check`)",
            super::check::plural(errors)
        ));
        return Ok(None);
    }
    let plan = checked
        .plans
        .get(&pipeline)
        .cloned()
        .ok_or_else(|| anyhow!("pipeline `{pipeline}` was not found"))?;
    let params = match plan.resolve_params(&args.params) {
        Ok(params) => params,
        Err(problems) => {
            for problem in problems {
                output::error(&problem);
            }
            return Ok(None);
        }
    };
    let environment = args.env.clone().or(checked.config.environment.clone());
    if let Some(name) = &environment
        && let Err(d) = weir_spec::load_environment(root, name)
    {
        render::diagnostics(std::slice::from_ref(&d), &checked.sources);
        return Ok(None);
    }
    let engine = globals.engine().await?;
    let run = engine
        .create_run(NewRunRequest {
            plan: plan.clone(),
            params,
            environment,
            namespace: if checked.config.namespace.is_empty() {
                DEFAULT_NAMESPACE.to_owned()
            } else {
                checked.config.namespace.clone()
            },
            created_by: os_user(),
            trigger: "manual".to_owned(),
        })
        .await?;
    Ok(Some((engine, run, plan)))
}

/// `NAME=VALUE`; a malformed one is a usage error (exit 2, from clap).
fn parse_param(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{raw}` is not NAME=VALUE, e.g. `--param min_amount=10`"))
}

/// The first Ctrl-C (or SIGTERM) cancels cleanly; a second one exits at
/// once, leaving the run resumable. The handlers are installed before this
/// returns: a signal arriving before the watcher task is first polled must
/// not fall through to the default action (killing weir mid-run).
fn watch_interrupts(cancel: CancellationToken, run: RunId) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        output::error("interrupted: cancelling the run (press Ctrl-C again to exit at once)");
        cancel.cancel();
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        output::error(&format!(
            "exited without waiting; continue with `weir run --resume {run}`"
        ));
        std::process::exit(130);
    });
    Ok(())
}

fn os_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

const LOG_LINES_OF_FAILURES: usize = 10;

async fn print_summary(engine: &weir_engine::Engine, summary: &RunSummary) {
    output::line("");
    output::text(super::show::steps_table(summary));
    if !summary.datasets.is_empty() {
        output::line("");
        output::text(super::show::datasets_table(summary));
    }
    if let Some(text) = super::show::warnings_text(summary) {
        output::line("");
        output::text(text);
    }
    for task in summary.latest_tasks() {
        if task.state != TaskState::Failed {
            continue;
        }
        output::line("");
        output::line(format!(
            "step `{}` failed (attempt {}): {}",
            task.step,
            task.attempt,
            task.error.as_deref().unwrap_or("no reason recorded")
        ));
        if let Ok(lines) = engine
            .logs()
            .tail(
                summary.run.id,
                &task.step,
                task.attempt,
                LOG_LINES_OF_FAILURES,
            )
            .await
        {
            for line in lines {
                for text in line.text.lines() {
                    output::line(format!("  | {text}"));
                }
            }
        }
    }
    output::line("");
    let run = &summary.run;
    let took = match (run.started_at, run.finished_at) {
        (Some(s), Some(f)) => format!(" in {}", output::duration((f - s).as_seconds_f64())),
        _ => String::new(),
    };
    output::line(format!("run {} {}{took}", run.id, run.state));
    if matches!(run.state, RunState::Failed | RunState::Cancelled) {
        output::line(format!(
            "  hint: fix the cause, then `weir run --resume {}` re-runs only what did not succeed",
            run.id
        ));
    }
}
