//! Run ownership: one process executes a run; a dead owner is taken over.

use chrono::{Duration, Utc};
use weir_engine::Error;
use weir_types::{RunState, TaskState};

use crate::support::{Project, create_run, execute, options, states};

crate::on_both_backends!(
    a_run_owned_by_a_live_process_is_busy,
    a_run_owned_by_a_dead_process_on_this_host_is_taken_over_at_once,
    a_run_whose_owner_stopped_heartbeating_is_taken_over
);

const PIPELINE: &str =
    "name: owned\nsteps:\n  one:\n    shell: echo x >> \"$WEIR_PROJECT_DIR/one.count\"\n";

fn ran(project: &Project) -> bool {
    project.exists("one.count")
}

async fn a_run_owned_by_a_live_process_is_busy(project: &Project) {
    let plan = project.pipeline("owned", PIPELINE);
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let now = Utc::now();
    // Another host: its pid cannot be checked, and its heartbeat is fresh.
    assert!(
        engine
            .store()
            .claim_run(run, "otherhost:1:1", now, now - Duration::hours(1))
            .await
            .expect("claim")
    );

    let execution = execute(&engine, run, options(1)).await;
    match execution.result {
        Err(Error::RunBusy { run: r, owner }) => {
            assert_eq!(r, run);
            assert_eq!(owner, "otherhost:1:1");
        }
        other => panic!("expected Error::RunBusy, got {other:?}"),
    }
    assert!(execution.events.is_empty(), "{:#?}", execution.events);
    assert!(!ran(project), "nothing ran");
    let summary = engine.summary(run).await.expect("summary");
    assert_eq!(summary.run.state, RunState::Queued);
    assert_eq!(summary.run.owner.as_deref(), Some("otherhost:1:1"));
    assert_eq!(states(&summary, "one"), [TaskState::Pending]);
}

async fn a_run_owned_by_a_dead_process_on_this_host_is_taken_over_at_once(project: &Project) {
    let plan = project.pipeline("owned", PIPELINE);
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let this = weir_engine::process_owner_id();
    let host = this.split(':').next().expect("host part");
    const DEAD: i32 = 999_999;
    assert_eq!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(DEAD), None),
        Err(nix::errno::Errno::ESRCH),
        "the test needs pid {DEAD} to be unused"
    );
    let dead_owner = format!("{host}:{DEAD}:1");
    let now = Utc::now();
    // A fresh heartbeat: only the dead pid makes the run free.
    assert!(
        engine
            .store()
            .claim_run(run, &dead_owner, now, now - Duration::hours(1))
            .await
            .expect("claim")
    );

    let (summary, _) = execute(&engine, run, options(1)).await.checked();
    assert_eq!(summary.run.state, RunState::Succeeded);
    assert_eq!(states(&summary, "one"), [TaskState::Succeeded]);
    assert!(ran(project));
    assert_eq!(summary.run.owner, None);
}

async fn a_run_whose_owner_stopped_heartbeating_is_taken_over(project: &Project) {
    let plan = project.pipeline("owned", PIPELINE);
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let now = Utc::now();
    let last_beat = now - Duration::hours(1);
    assert!(
        engine
            .store()
            .claim_run(
                run,
                "otherhost:1:1",
                last_beat,
                last_beat - Duration::hours(1)
            )
            .await
            .expect("claim")
    );

    let (summary, _) = execute(&engine, run, options(1)).await.checked();
    assert_eq!(summary.run.state, RunState::Succeeded);
    assert_eq!(states(&summary, "one"), [TaskState::Succeeded]);
    assert!(ran(project));
}
