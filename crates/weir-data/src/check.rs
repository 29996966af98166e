//! The `check` step kind: data quality assertions on another step's
//! dataset, as a step of their own (a gate before publishing, say).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use weir_exec::{Action, ActionError, TaskContext, TaskOutput};
use weir_spec::CheckSpec;
use weir_types::Diagnostic;

use crate::dataset::read_dataset;
use crate::output::{bullets, failed_checks};
use crate::quality::CheckedTable;
use crate::task::{failed, guarded};

/// Checks a dataset; the step fails when a check does not hold, reporting
/// how many rows violate it and showing up to 10 of them.
///
/// ```yaml
/// quality:
///   check:
///     input: revenue
///     checks:
///       - not_null: [country, month]
///       - unique: [country, segment, month]
///       - expr: revenue >= 0
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckStepSpec {
    /// The step whose dataset is checked; it becomes a dependency.
    pub input: String,
    /// The checks, as in a data step's `checks:`.
    pub checks: Vec<CheckSpec>,
}

/// `check: { input, checks }`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckAction;

#[async_trait]
impl Action for CheckAction {
    const KIND: &'static str = "check";
    type Spec = CheckStepSpec;

    fn check(&self, spec: &CheckStepSpec) -> Vec<Diagnostic> {
        if spec.checks.is_empty() {
            return vec![
                Diagnostic::error("no-checks", "a `check` step with no checks")
                    .with_help("list at least one check, e.g. `checks: [{ not_null: [id] }]`"),
            ];
        }
        Vec::new()
    }

    fn inputs(&self, spec: &CheckStepSpec) -> Vec<String> {
        vec![spec.input.clone()]
    }

    async fn run(&self, spec: CheckStepSpec, cx: TaskContext) -> Result<TaskOutput, ActionError> {
        guarded(&cx, run_checks(spec, &cx)).await
    }
}

async fn run_checks(spec: CheckStepSpec, cx: &TaskContext) -> Result<TaskOutput, ActionError> {
    let Some(input) = cx.inputs.get(&spec.input) else {
        return Err(failed(format!(
            "step `{}` produced no dataset to check\nhint: `check` reads the output of a data step (`load`, `sql`, ...)",
            spec.input
        )));
    };
    let (schema, batches) = read_dataset(&cx.blobs, &input.files).await?;
    let table = CheckedTable::new(schema, batches)?;
    let failures = failed_checks(&table, &spec.checks, cx).await;
    if !failures.is_empty() {
        return Err(failed(format!(
            "checks on `{}` ({}) failed: {} of {}\n{}",
            spec.input,
            input.version,
            failures.len(),
            spec.checks.len(),
            bullets(&failures)
        )));
    }
    Ok(TaskOutput {
        value: Some(json!({ "checks": spec.checks.len(), "rows": input.rows })),
        ..TaskOutput::default()
    })
}
