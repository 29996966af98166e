//! What happens to a data step's result between computing it and storing
//! it, the same for every step kind: the contract's types, anonymization (so
//! raw values never reach the blob store), the contract's rules, the
//! checks, then the write.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use serde_json::json;
use weir_exec::{ActionError, LogStream, TaskContext, TaskOutput};
use weir_spec::ContractsMode;

use crate::anonymize::HashSalt;
use crate::dataset::write_dataset;
use crate::quality::{CheckedTable, cast_to_contract, check_contract};
use crate::task::failed;

/// Anonymizes, checks and stores a step's result as its dataset.
pub(crate) async fn finish_output(
    cx: &TaskContext,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<TaskOutput, ActionError> {
    let (schema, batches, cast_failures) = match &cx.data.contract {
        Some(contract) => cast_to_contract(contract, schema, batches)?,
        None => (schema, batches, Vec::new()),
    };
    let (schema, batches) = anonymize(cx, schema, batches)?;
    let mut warnings = Vec::new();
    let (schema, batches) = match &cx.data.contract {
        None => (schema, batches),
        Some(contract) => {
            let outcome = check_contract(contract, schema, batches, cast_failures).await?;
            if !outcome.violations.is_empty() {
                let header = format!(
                    "the output breaks contract `{}` ({} problem{})",
                    contract.file,
                    outcome.violations.len(),
                    if outcome.violations.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                );
                match cx.environment.contracts {
                    ContractsMode::Strict => {
                        return Err(failed(format!(
                            "{header}:\n{}\nhint: fix the data or the contract; in development, `contracts: warn` in the environment records these as warnings instead",
                            bullets(&outcome.violations)
                        )));
                    }
                    ContractsMode::Warn => {
                        cx.log.line(
                            LogStream::System,
                            &format!("warning: {header}:\n{}", bullets(&outcome.violations)),
                        );
                        for v in &outcome.violations {
                            // The first line: the sample rows are in the log.
                            let first = v.lines().next().unwrap_or_default();
                            warnings.push(format!("contract `{}`: {first}", contract.name));
                        }
                    }
                }
            }
            (outcome.schema, outcome.batches)
        }
    };
    if !cx.data.checks.is_empty() {
        let table = CheckedTable::new(schema.clone(), batches.clone())?;
        let failures = failed_checks(&table, &cx.data.checks, cx).await;
        if !failures.is_empty() {
            return Err(failed(format!(
                "checks failed: {} of {}\n{}",
                failures.len(),
                cx.data.checks.len(),
                bullets(&failures)
            )));
        }
    }
    let output = write_dataset(&cx.blobs, schema, &batches).await?;
    cx.log.line(
        LogStream::System,
        &format!("wrote {} rows ({} bytes)", output.rows, output.bytes),
    );
    Ok(TaskOutput {
        value: Some(json!({ "rows": output.rows })),
        dataset: Some(output),
        warnings,
        ..TaskOutput::default()
    })
}

fn anonymize(
    cx: &TaskContext,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>), ActionError> {
    if cx.data.anonymize.is_empty() {
        return Ok((schema, batches));
    }
    let salt = match &cx.environment.hash_salt {
        Some(secret) => match cx.secrets.get(secret) {
            Some(value) => HashSalt::Value {
                secret,
                value: value.as_bytes(),
            },
            None => HashSalt::Unset { secret },
        },
        None => HashSalt::NotConfigured,
    };
    crate::anonymize::anonymize(schema, batches, &cx.data.anonymize, salt)
        .map_err(|e| failed(e.to_string()))
}

/// Runs `checks` on `table`, logging each that passes; one message per
/// check that fails (or cannot be evaluated).
pub(crate) async fn failed_checks(
    table: &CheckedTable,
    checks: &[weir_spec::CheckSpec],
    cx: &TaskContext,
) -> Vec<String> {
    let mut failures = Vec::new();
    for check in checks {
        match table.run(check).await {
            Ok(None) => cx.log.line(
                LogStream::System,
                &format!("check `{}` passed", check.describe()),
            ),
            Ok(Some(failure)) => failures.push(failure.to_string()),
            Err(message) => failures.push(message),
        }
    }
    failures
}

/// `- line` per item, continuation lines indented.
pub(crate) fn bullets(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("  - {}", item.replace('\n', "\n    ")))
        .collect::<Vec<_>>()
        .join("\n")
}
