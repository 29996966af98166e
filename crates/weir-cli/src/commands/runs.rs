use anyhow::Result;
use clap::Args;
use weir_store::RunFilter;

use crate::project::Globals;
use crate::{Outcome, output};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only runs of this pipeline.
    pub pipeline: Option<String>,

    /// How many runs to list, newest first.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: u32,
}

pub async fn run(globals: &Globals, args: RunsArgs) -> Result<Outcome> {
    let engine = globals.engine().await?;
    let runs = engine
        .store()
        .runs(&RunFilter {
            namespace: None,
            pipeline: args.pipeline.clone(),
            limit: args.limit,
        })
        .await?;
    if runs.is_empty() {
        output::line(match &args.pipeline {
            Some(p) => format!("no runs of `{p}` yet; start one with `weir run {p}`"),
            None => "no runs yet; start one with `weir run PIPELINE`".to_owned(),
        });
        return Ok(Outcome::Success);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.pipeline.clone(),
                r.state.to_string(),
                r.trigger.clone(),
                r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                match (r.started_at, r.finished_at) {
                    (Some(s), Some(f)) => output::duration((f - s).as_seconds_f64()),
                    _ => "-".into(),
                },
                r.created_by.clone(),
            ]
        })
        .collect();
    output::text(output::table(
        &[
            "RUN",
            "PIPELINE",
            "STATE",
            "TRIGGER",
            "CREATED (UTC)",
            "DURATION",
            "BY",
        ],
        &rows,
    ));
    Ok(Outcome::Success)
}
