//! Templates rendered at run time.

use weir_types::{RunState, TaskState};

use crate::support::{Project, create_run, execute, only, options, states};

crate::on_both_backends!(a_template_error_fails_the_task_without_spawning_it);

/// `{{ params.x }}` is valid for the checker (`x` is declared) but the run
/// was created without it: the task fails with a template error and its
/// command never runs.
async fn a_template_error_fails_the_task_without_spawning_it(project: &Project) {
    let plan = project.pipeline(
        "templ",
        r#"name: templ
params:
  x: { type: string }
steps:
  uses_x:
    shell: touch "$WEIR_PROJECT_DIR/spawned"; echo "{{ params.x }}"
  downstream:
    needs: [uses_x]
    shell: touch "$WEIR_PROJECT_DIR/downstream.ran"
"#,
    );
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let (summary, _) = execute(&engine, run, options(1)).await.checked();

    assert_eq!(summary.run.state, RunState::Failed);
    let task = only(&summary, "uses_x");
    assert_eq!(task.state, TaskState::Failed);
    let error = task.error.as_deref().unwrap_or_default();
    assert!(error.contains("template"), "{error}");
    assert!(error.contains('x'), "names the undefined variable: {error}");
    assert_eq!(task.exit_code, None, "no process exited");
    assert!(!project.exists("spawned"), "the command was not run");
    assert_eq!(states(&summary, "downstream"), [TaskState::UpstreamFailed]);
    assert!(!project.exists("downstream.ran"));

    let log = engine
        .logs()
        .read(run, "uses_x", 1)
        .await
        .expect("read the task log");
    assert!(
        log.iter().any(|l| l.text.contains("template error")),
        "the log says why: {log:#?}"
    );
}
