use anyhow::Result;
use clap::Args;

use crate::project::Globals;
use crate::{Outcome, output, render};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Pipelines to check (default: all of `pipelines/`).
    pub pipelines: Vec<String>,
}

pub async fn run(globals: &Globals, args: CheckArgs) -> Result<Outcome> {
    // Without a project, weir-spec still reports why (`missing-project`),
    // rendered like every other diagnostic.
    let root = match globals.project_root() {
        Ok(root) => root,
        Err(_) => match &globals.project {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()?,
        },
    };
    let (checked, types) = crate::project::check(&root, &args.pipelines).await;
    let errors = render::diagnostics(&checked.diagnostics, &checked.sources);
    let warnings = checked.diagnostics.len() - errors;
    if errors > 0 {
        output::line(format!(
            "{errors} error{} and {warnings} warning{}; nothing was run",
            plural(errors),
            plural(warnings)
        ));
        return Ok(Outcome::Failure);
    }
    let steps: usize = checked.plans.values().map(|p| p.steps.len()).sum();
    output::line(format!(
        "ok: {} pipeline{}, {steps} step{}{}",
        checked.plans.len(),
        plural(checked.plans.len()),
        plural(steps),
        if warnings > 0 {
            format!(", {warnings} warning{}", plural(warnings))
        } else {
            String::new()
        }
    ));
    if !types.checked.is_empty() || !types.unchecked.is_empty() {
        output::line(format!(
            "types: {} data step{} with a known schema",
            types.checked.len(),
            plural(types.checked.len())
        ));
    }
    for (step, why) in &types.unchecked {
        output::line(format!("  not type-checked: `{step}`: {why}"));
    }
    Ok(Outcome::Success)
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
