//! Cancellation and resume at library level.

use std::time::Duration;

use weir_engine::Error;
use weir_types::{RunState, TaskState};

use crate::support::{Project, create_run, execute, options, states};

crate::on_both_backends!(
    a_cancelled_run_resumes_without_rerunning_succeeded_steps,
    executing_a_succeeded_run_is_refused,
    executing_a_missing_run_is_refused
);

/// `slow` blocks on its first attempt (until killed) and succeeds on the
/// next one; `fast` and `slow` count their runs in files.
const PIPELINE: &str = r#"name: cancel
steps:
  fast:
    shell: echo x >> "$WEIR_PROJECT_DIR/fast.count"
  slow:
    needs: [fast]
    shell: |
      echo x >> "$WEIR_PROJECT_DIR/slow.count"
      if [ "$(wc -l < "$WEIR_PROJECT_DIR/slow.count")" -eq 1 ]; then
        touch "$WEIR_PROJECT_DIR/slow.started"
        sleep 600
      fi
  after:
    needs: [slow]
    shell: echo x >> "$WEIR_PROJECT_DIR/after.count"
"#;

fn count(project: &Project, file: &str) -> usize {
    fs_err::read_to_string(project.root().join(file))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

async fn a_cancelled_run_resumes_without_rerunning_succeeded_steps(project: &Project) {
    let plan = project.pipeline("cancel", PIPELINE);
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;

    let opts = options(2);
    let cancel = opts.cancel.clone();
    // Bounds against hangs, not performance: a cancellation that does not
    // kill `sleep 600` fails the test instead of blocking it for 10 minutes.
    let execution = async {
        tokio::time::timeout(Duration::from_secs(60), execute(&engine, run, opts))
            .await
            .expect("the cancelled execution did not end")
    };
    let canceller = async {
        for _ in 0..3000 {
            if project.exists("slow.started") {
                cancel.cancel();
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("`slow` never started");
    };
    let (execution, ()) = tokio::join!(execution, canceller);
    let (summary, _) = execution.checked();

    assert_eq!(summary.run.state, RunState::Cancelled);
    assert_eq!(states(&summary, "fast"), [TaskState::Succeeded]);
    assert_eq!(states(&summary, "slow"), [TaskState::Cancelled]);
    assert_eq!(
        states(&summary, "after"),
        [TaskState::Cancelled],
        "a step that never started is cancelled too"
    );
    assert_eq!(summary.run.owner, None, "a finished run has no owner");

    // Resume: a new execution of the same run.
    let (summary, events) = execute(&engine, run, options(2)).await.checked();
    assert_eq!(summary.run.state, RunState::Succeeded);
    assert_eq!(
        states(&summary, "fast"),
        [TaskState::Succeeded],
        "a succeeded step keeps its single attempt"
    );
    assert_eq!(
        states(&summary, "slow"),
        [TaskState::Cancelled, TaskState::Succeeded]
    );
    assert_eq!(
        states(&summary, "after"),
        [TaskState::Cancelled, TaskState::Succeeded]
    );
    let finished = summary.run.finished_at.expect("run finished_at");
    for task in &summary.tasks {
        let task_finished = task.finished_at.expect("task finished_at");
        assert!(
            finished >= task_finished,
            "the resumed run ended at {finished}, before `{}` #{} ended at {task_finished}",
            task.step,
            task.attempt
        );
    }
    assert_eq!(count(project, "fast.count"), 1, "`fast` never ran again");
    assert_eq!(count(project, "slow.count"), 2);
    assert_eq!(count(project, "after.count"), 1);
    assert!(
        !events.iter().any(|e| matches!(e,
            weir_engine::RunEvent::Task { step, .. } if step == "fast")),
        "the resume did not touch `fast`: {events:#?}"
    );
}

async fn executing_a_succeeded_run_is_refused(project: &Project) {
    let plan = project.pipeline(
        "once",
        "name: once\nsteps:\n  only:\n    shell: echo x >> \"$WEIR_PROJECT_DIR/only.count\"\n",
    );
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let (summary, _) = execute(&engine, run, options(1)).await.checked();
    assert_eq!(summary.run.state, RunState::Succeeded);

    let again = execute(&engine, run, options(1)).await;
    match again.result {
        Err(Error::AlreadySucceeded { run: r, state }) => {
            assert_eq!(r, run);
            assert_eq!(state, RunState::Succeeded);
        }
        other => panic!("expected Error::AlreadySucceeded, got {other:?}"),
    }
    assert!(again.events.is_empty(), "{:#?}", again.events);
    assert_eq!(count(project, "only.count"), 1, "nothing ran again");
    let summary = engine.summary(run).await.expect("summary");
    assert_eq!(summary.run.state, RunState::Succeeded);
    assert_eq!(states(&summary, "only"), [TaskState::Succeeded]);
}

async fn executing_a_missing_run_is_refused(project: &Project) {
    let engine = project.engine().await;
    let missing = weir_types::RunId(4242);
    let execution = execute(&engine, missing, options(1)).await;
    match execution.result {
        Err(Error::RunNotFound(r)) => assert_eq!(r, missing),
        other => panic!("expected Error::RunNotFound, got {other:?}"),
    }
    assert!(execution.events.is_empty(), "{:#?}", execution.events);
}
