//! Datasets through the engine: a task's output is recorded as a new
//! version in the commit that marks it succeeded, downstream tasks receive
//! their upstreams' versions as inputs, lineage is stored, and a resumed run
//! keeps the outputs of the steps that had succeeded.
//!
//! The data kind here, `emit`, is a real `Action` (it writes real blobs);
//! weir-engine's tests stay free of DataFusion, which weir-data's own tests
//! and the CLI's exercise.

use std::time::Duration;

use async_trait::async_trait;
use object_store::ObjectStoreExt as _;
use object_store::path::Path as ObjectPath;
use schemars::JsonSchema;
use serde::Deserialize;
use weir_exec::{Action, ActionError, DatasetOutput, TaskContext, TaskOutput};
use weir_types::{DatasetVersionRef, RunState, TaskState};

use crate::support::{Project, create_run, execute, options, states};

crate::on_both_backends!(
    outputs_become_versions_and_inputs_of_downstream_steps,
    a_resumed_run_keeps_the_outputs_of_succeeded_steps,
    datasets_of_other_pipelines_are_read_at_their_latest_version,
);

/// Emits `text`, after the contents of its inputs, as a one-file dataset.
pub struct EmitAction;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitSpec {
    text: String,
    #[serde(default)]
    inputs: Vec<String>,
    /// Datasets of other pipelines (`pipeline.step`).
    #[serde(default)]
    reads: Vec<String>,
}

#[async_trait]
impl Action for EmitAction {
    const KIND: &'static str = "emit";
    type Spec = EmitSpec;

    fn inputs(&self, spec: &EmitSpec) -> Vec<String> {
        spec.inputs.clone()
    }

    fn reads(&self, spec: &EmitSpec) -> Vec<String> {
        spec.reads.clone()
    }

    async fn run(&self, spec: EmitSpec, cx: TaskContext) -> Result<TaskOutput, ActionError> {
        let fail = |message: String| ActionError::Failed {
            message,
            exit_code: None,
            metering: Default::default(),
        };
        let mut content = String::new();
        for name in spec.inputs.iter().chain(&spec.reads) {
            // A step of its own pipeline named `pipeline.step` is an
            // ordinary input, keyed by the step's name.
            let own = name.rsplit('.').next().unwrap_or(name);
            let input = cx
                .inputs
                .get(name)
                .or_else(|| cx.inputs.get(own))
                .ok_or_else(|| fail(format!("input `{name}` was not given")))?;
            for file in &input.files {
                let bytes = cx
                    .blobs
                    .get(&ObjectPath::from(file.as_str()))
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .bytes()
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                content.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        content.push_str(&spec.text);
        content.push('\n');
        let key = format!("datasets/emit-{}-{}.txt", cx.step, content.len());
        cx.blobs
            .put(&ObjectPath::from(key.as_str()), content.clone().into())
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(TaskOutput {
            dataset: Some(DatasetOutput {
                files: vec![key],
                schema: serde_json::json!({ "fields": [] }),
                rows: content.lines().count() as u64,
                bytes: content.len() as u64,
            }),
            ..TaskOutput::default()
        })
    }
}

const FLOW: &str = r#"name: flow
steps:
  a:
    emit: { text: alpha }
  b:
    emit: { text: beta, inputs: [a] }
"#;

fn version(namespace: &str, name: &str, version: u32) -> DatasetVersionRef {
    DatasetVersionRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        version,
    }
}

async fn outputs_become_versions_and_inputs_of_downstream_steps(project: &Project) {
    let plan = project.pipeline("flow", FLOW);
    assert_eq!(plan.steps[1].depends_on, ["a"], "inputs are dependencies");
    let engine = project.engine().await;
    for run_number in 1..=2u32 {
        let run = create_run(&engine, &plan, serde_json::Map::new()).await;
        let (summary, _) = execute(&engine, run, options(2)).await.checked();
        assert_eq!(summary.run.state, RunState::Succeeded);
        let mut produced: Vec<_> = summary.datasets.iter().map(|d| d.reference()).collect();
        produced.sort();
        assert_eq!(
            produced,
            [
                version("default", "flow.a", run_number),
                version("default", "flow.b", run_number)
            ]
        );
        let b = summary
            .datasets
            .iter()
            .find(|d| d.name == "flow.b")
            .expect("flow.b");
        assert_eq!(
            b.inputs,
            [version("default", "flow.a", run_number)],
            "lineage"
        );
        assert_eq!(b.rows, 2);
        let content = engine
            .blobs()
            .get(&b.files[0])
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(&content[..], b"alpha\nbeta\n", "b read a's output");
        let task_b = summary
            .tasks
            .iter()
            .find(|t| t.step == "b")
            .expect("task b");
        assert_eq!(b.task_id, task_b.id);
    }
    let latest = engine
        .store()
        .datasets(Some("default"))
        .await
        .expect("datasets");
    assert_eq!(latest.len(), 2);
    assert!(latest.iter().all(|d| d.version == 2));
}

/// `a` succeeds, `wait` is cancelled mid-run, then the resume runs `b`,
/// which must be given `a`'s version from before the cancel.
async fn a_resumed_run_keeps_the_outputs_of_succeeded_steps(project: &Project) {
    let plan = project.pipeline(
        "flow",
        r#"name: flow
steps:
  a:
    emit: { text: alpha }
  wait:
    needs: [a]
    shell: |
      if [ "$WEIR_ATTEMPT" = 1 ]; then touch "$WEIR_PROJECT_DIR/waiting"; sleep 600; fi
  b:
    needs: [wait]
    emit: { text: beta, inputs: [a] }
"#,
    );
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let mut opts = options(2);
    let cancel = opts.cancel.clone();
    let waiting = project.root().join("waiting");
    tokio::spawn(async move {
        while !waiting.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
    });
    opts.concurrency = 2;
    let first = execute(&engine, run, opts)
        .await
        .result
        .expect("first execute");
    assert_eq!(first.run.state, RunState::Cancelled);
    assert_eq!(first.datasets.len(), 1, "a's output was committed");

    let (resumed, _) = execute(&engine, run, options(2)).await.checked();
    assert_eq!(resumed.run.state, RunState::Succeeded);
    assert_eq!(
        states(&resumed, "a"),
        [TaskState::Succeeded],
        "a is not re-run"
    );
    let b = resumed
        .datasets
        .iter()
        .find(|d| d.name == "flow.b")
        .expect("flow.b");
    assert_eq!(b.inputs, [version("default", "flow.a", 1)]);
    let content = engine
        .blobs()
        .get(&b.files[0])
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(&content[..], b"alpha\nbeta\n");
}

/// `use.b` reads `src.a`: without a version it fails saying which pipeline
/// to run; then it reads the latest version, records it as lineage, and a
/// newer version is picked up by the next run.
async fn datasets_of_other_pipelines_are_read_at_their_latest_version(project: &Project) {
    project.pipeline("src", "steps:\n  a:\n    emit: { text: alpha }\n");
    let reader = project.pipeline(
        "use",
        "steps:\n  b:\n    emit: { text: beta, reads: [src.a] }\n  c:\n    emit: { text: own, reads: [use.b] }\n",
    );
    assert_eq!(reader.steps[0].reads, ["src.a"]);
    assert!(reader.steps[0].depends_on.is_empty());
    // `use.b` inside pipeline `use` is its own step: a dependency.
    assert_eq!(reader.steps[1].depends_on, ["b"]);
    assert!(reader.steps[1].reads.is_empty());
    let src = project.pipeline("src", "steps:\n  a:\n    emit: { text: alpha }\n");
    let engine = project.engine().await;

    let run = create_run(&engine, &reader, serde_json::Map::new()).await;
    let (failed, _) = execute(&engine, run, options(1)).await.checked();
    assert_eq!(failed.run.state, RunState::Failed);
    let error = crate::support::only(&failed, "b")
        .error
        .clone()
        .unwrap_or_default();
    assert!(
        error.contains("dataset `src.a` has no version yet") && error.contains("weir run src"),
        "{error}"
    );

    for expected in 1..=2u32 {
        let run = create_run(&engine, &src, serde_json::Map::new()).await;
        execute(&engine, run, options(1)).await.checked();
        let run = create_run(&engine, &reader, serde_json::Map::new()).await;
        let (summary, _) = execute(&engine, run, options(1)).await.checked();
        assert_eq!(summary.run.state, RunState::Succeeded);
        let b = summary
            .datasets
            .iter()
            .find(|d| d.name == "use.b")
            .expect("use.b");
        assert_eq!(b.inputs, [version("default", "src.a", expected)], "lineage");
        let content = engine
            .blobs()
            .get(&b.files[0])
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(&content[..], b"alpha\nbeta\n");
    }
}
