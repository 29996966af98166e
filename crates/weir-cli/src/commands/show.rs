use anyhow::Result;
use clap::Args;
use weir_engine::RunSummary;
use weir_store::TaskRow;
use weir_types::RunId;

use crate::project::Globals;
use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id (see `weir runs`).
    pub run: RunId,

    /// Print the run and every task as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(globals: &Globals, args: ShowArgs) -> Result<Outcome> {
    let engine = globals.engine().await?;
    let summary = crate::project::run_summary(&engine, args.run).await?;
    if args.json {
        let value = serde_json::json!({ "run": summary.run, "tasks": summary.tasks });
        output::line(serde_json::to_string_pretty(&value)?);
        return Ok(Outcome::Success);
    }
    let run = &summary.run;
    output::line(format!("run {}  {}  {}", run.id, run.pipeline, run.state));
    output::line(format!(
        "  trigger {} by {}, namespace {}, environment {}",
        run.trigger,
        run.created_by,
        run.namespace,
        run.environment.as_deref().unwrap_or("-")
    ));
    output::line(format!("  params  {}", run.params));
    output::line(format!(
        "  created {}{}",
        run.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        match (run.started_at, run.finished_at) {
            (Some(s), Some(f)) => format!(", took {}", output::duration((f - s).as_seconds_f64())),
            _ => String::new(),
        }
    ));
    output::line("");
    output::text(attempts_table(&summary));
    if let Some(text) = warnings_text(&summary) {
        output::line("");
        output::text(text);
    }
    if !summary.datasets.is_empty() {
        output::line("");
        output::text(datasets_table(&summary));
    }
    Ok(Outcome::Success)
}

/// Warnings of the latest attempt of each step (e.g. contract violations
/// under `contracts: warn`), if any.
pub fn warnings_text(summary: &RunSummary) -> Option<String> {
    let mut out = String::new();
    for t in summary.latest_tasks() {
        for w in &t.warnings {
            out.push_str(&format!("warning: step `{}`: {w}\n", t.step));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The dataset versions a run produced.
pub fn datasets_table(summary: &RunSummary) -> String {
    let rows: Vec<Vec<String>> = summary
        .datasets
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.version.to_string(),
                d.rows.to_string(),
                output::memory(d.bytes / 1024),
            ]
        })
        .collect();
    output::table(&["DATASET", "VERSION", "ROWS", "SIZE"], &rows)
}

/// One row per step (its latest attempt).
pub fn steps_table(summary: &RunSummary) -> String {
    let rows: Vec<Vec<String>> = summary
        .latest_tasks()
        .into_iter()
        .map(|t| {
            let mut row = vec![t.step.clone(), t.state.to_string(), t.attempt.to_string()];
            row.extend(cost_cells(t));
            row
        })
        .collect();
    output::table(
        &["STEP", "STATE", "ATTEMPTS", "DURATION", "CPU", "PEAK RSS"],
        &rows,
    )
}

/// One row per attempt, steps in plan order.
fn attempts_table(summary: &RunSummary) -> String {
    let mut rows = Vec::new();
    for latest in summary.latest_tasks() {
        let mut attempts: Vec<&TaskRow> = summary
            .tasks
            .iter()
            .filter(|t| t.step == latest.step)
            .collect();
        attempts.sort_by_key(|t| t.attempt);
        for t in attempts {
            let mut row = vec![t.step.clone(), t.attempt.to_string(), t.state.to_string()];
            row.extend(cost_cells(t));
            row.push(t.exit_code.map_or_else(|| "-".into(), |c| c.to_string()));
            row.push(t.error.clone().unwrap_or_default());
            rows.push(row);
        }
    }
    output::table(
        &[
            "STEP", "ATTEMPT", "STATE", "DURATION", "CPU", "PEAK RSS", "EXIT", "ERROR",
        ],
        &rows,
    )
}

fn cost_cells(t: &TaskRow) -> [String; 3] {
    let duration = match (t.started_at, t.finished_at) {
        (Some(s), Some(f)) => output::duration((f - s).as_seconds_f64()),
        _ => "-".into(),
    };
    match &t.metering {
        Some(m) if m.wall_s > 0.0 || m.max_rss_kib > 0 => [
            duration,
            output::duration(m.cpu_s()),
            // Not above weir's own peak at spawn: only an upper bound.
            if m.rss_is_exact() {
                output::memory(m.max_rss_kib)
            } else {
                format!("≤{}", output::memory(m.max_rss_kib))
            },
        ],
        _ => [duration, "-".into(), "-".into()],
    }
}

#[cfg(test)]
mod tests {
    use weir_types::{Metering, RunId, TaskId, TaskState};

    use super::*;

    fn task(metering: Metering) -> TaskRow {
        TaskRow {
            warnings: Vec::new(),
            id: TaskId(1),
            run_id: RunId(1),
            step: "s".into(),
            attempt: 1,
            state: TaskState::Succeeded,
            created_at: chrono::Utc::now(),
            queued_at: None,
            started_at: None,
            finished_at: None,
            not_before: None,
            exit_code: Some(0),
            error: None,
            metering: Some(metering),
            worker: None,
            value: None,
        }
    }

    #[test]
    fn a_peak_not_above_weirs_own_is_shown_as_an_upper_bound() {
        let m = Metering {
            wall_s: 0.01,
            max_rss_kib: 13_000,
            rss_floor_kib: 13_000,
            ..Metering::default()
        };
        assert_eq!(cost_cells(&task(m))[2], "≤12.7 MiB");
        let big = Metering {
            max_rss_kib: 200_000,
            ..m
        };
        assert_eq!(cost_cells(&task(big))[2], "195.3 MiB");
    }
}
