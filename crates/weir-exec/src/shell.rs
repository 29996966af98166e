//! The `shell` step kind: one command line run by bash.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weir_types::Diagnostic;

use crate::action::{Action, ActionError, TaskContext, TaskOutput};
use crate::process::{DEFAULT_KILL_GRACE, ProcessSpec, run_process, task_env};

/// Runs a command line with `bash -c` in the task's working directory.
///
/// Templates (`{{ params.x }}`, `{{ run.id }}`, ...) are rendered before it
/// runs. The process sees a clean environment: the environment's variables,
/// `PATH` and a few other host variables, `WEIR_RUN_ID`, `WEIR_STEP`,
/// `WEIR_WORK_DIR`, ... and each run parameter as `WEIR_PARAM_<NAME>`.
/// Exit code 0 is success; anything else fails the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ShellSpec(
    /// The command line, e.g. `./scripts/export.sh {{ run.logical_date }}`.
    pub String,
);

/// `shell: <command>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellAction;

#[async_trait]
impl Action for ShellAction {
    const KIND: &'static str = "shell";
    type Spec = ShellSpec;

    fn check(&self, spec: &ShellSpec) -> Vec<Diagnostic> {
        if spec.0.trim().is_empty() {
            return vec![
                Diagnostic::error("empty-command", "the `shell` command is empty")
                    .with_help("write the command line to run, e.g. `shell: ./scripts/export.sh`"),
            ];
        }
        Vec::new()
    }

    async fn run(&self, spec: ShellSpec, cx: TaskContext) -> Result<TaskOutput, ActionError> {
        let process = ProcessSpec {
            program: "bash".to_owned(),
            args: vec!["-c".to_owned(), spec.0],
            env: task_env(&cx),
            cwd: cx.work_dir.clone(),
            timeout: cx.timeout,
            kill_grace: DEFAULT_KILL_GRACE,
        };
        let exit = run_process(&process, cx.log.as_ref(), &cx.cancel).await?;
        if exit.success() {
            return Ok(TaskOutput {
                metering: exit.metering,
                exit_code: exit.code,
                ..TaskOutput::default()
            });
        }
        Err(ActionError::Failed {
            message: exit.to_string(),
            exit_code: exit.code,
            metering: exit.metering,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_commands_are_rejected() {
        let codes = |s: &str| -> Vec<String> {
            ShellAction
                .check(&ShellSpec(s.to_owned()))
                .into_iter()
                .map(|d| d.code)
                .collect()
        };
        assert_eq!(codes(" \n"), ["empty-command"]);
        assert!(codes("true").is_empty());
    }

    #[test]
    fn the_spec_is_a_plain_string_in_yaml_and_in_its_schema() {
        let spec: ShellSpec = serde_json::from_value(serde_json::json!("echo hi")).unwrap();
        assert_eq!(spec, ShellSpec("echo hi".to_owned()));
        let schema = serde_json::to_value(schemars::schema_for!(ShellSpec)).unwrap();
        assert_eq!(schema["type"], "string");
        let description = schema["description"].as_str().unwrap();
        assert!(description.contains("bash -c"), "{description}");
    }
}
