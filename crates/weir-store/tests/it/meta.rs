//! The `MetaStore` conformance suite. A backend is done when it passes it.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Barrier;
use weir_store::{
    Applied, Error, MetaStore, NewTask, RunFilter, RunUpdate, TaskRow, TaskUpdate, Transition,
};
use weir_types::{Metering, RunId, RunState, TaskId, TaskState};

use crate::support::{TestDb, at, new_run, new_task};

crate::conformance!(
    create_run_with_200_tasks_round_trips,
    create_run_truncates_times_to_microseconds,
    entering_states_sets_timestamps,
    stale_guard_rolls_back_the_whole_transition,
    guard_on_a_missing_task_conflicts,
    update_of_a_missing_run_rolls_back,
    metering_value_and_error_round_trip,
    retries_are_new_task_rows,
    duplicate_attempt_rolls_back,
    runs_are_listed_newest_first_with_filters,
    claim_heartbeat_and_release,
    terminal_run_update_clears_owner,
    concurrent_appliers_exactly_one_wins,
    reopening_keeps_everything,
    failed_and_cancelled_runs_can_be_claimed_for_resume,
);

fn task<'a>(tasks: &'a [TaskRow], step: &str, attempt: u32) -> &'a TaskRow {
    tasks
        .iter()
        .find(|t| t.step == step && t.attempt == attempt)
        .unwrap_or_else(|| panic!("task {step}#{attempt} missing"))
}

async fn create_run_with_200_tasks_round_trips(db: &TestDb) {
    let store = &db.store;
    let t0 = at(0);
    let mut run = new_run("default", "fanout", t0);
    run.state = RunState::Running;
    let new_tasks: Vec<NewTask> = (0..200)
        .map(|i| {
            let state = match i % 4 {
                0 | 1 => TaskState::Pending,
                2 => TaskState::Queued,
                _ => TaskState::Cached,
            };
            let mut t = new_task(&format!("step_{i:03}"), 1, state);
            if i == 7 {
                t.not_before = Some(at(30));
            }
            t
        })
        .collect();
    let (run_row, task_rows) = store
        .create_run(run.clone(), new_tasks.clone())
        .await
        .expect("create_run");

    assert!(run_row.id.0 > 0);
    assert_eq!(run_row.namespace, "default");
    assert_eq!(run_row.pipeline, "fanout");
    assert_eq!(run_row.state, RunState::Running);
    assert_eq!(run_row.params, run.params);
    assert_eq!(run_row.plan, run.plan);
    assert_eq!(run_row.environment.as_deref(), Some("dev"));
    assert_eq!(run_row.trigger, "manual");
    assert_eq!(run_row.created_by, "alice");
    assert_eq!(run_row.created_at, t0);
    assert_eq!(run_row.started_at, Some(t0), "created running: started");
    assert_eq!(run_row.finished_at, None);
    assert_eq!(run_row.owner, None);

    assert_eq!(task_rows.len(), 200);
    for (i, (row, new)) in task_rows.iter().zip(&new_tasks).enumerate() {
        assert_eq!(row.step, new.step, "order kept at {i}");
        assert_eq!(row.attempt, 1);
        assert_eq!(row.state, new.state);
        assert_eq!(row.run_id, run_row.id);
        assert_eq!(row.created_at, t0);
        assert_eq!(row.not_before, new.not_before);
        let queued = new.state == TaskState::Queued;
        assert_eq!(row.queued_at, queued.then_some(t0), "{}", row.step);
        assert_eq!(row.started_at, None);
        let finished = new.state == TaskState::Cached;
        assert_eq!(row.finished_at, finished.then_some(t0), "{}", row.step);
        assert_eq!(
            (row.exit_code, &row.error, &row.metering),
            (None, &None, &None)
        );
        assert_eq!((&row.worker, &row.value), (&None, &None));
    }
    assert!(
        task_rows.windows(2).all(|w| w[0].id < w[1].id),
        "ids ascend in creation order"
    );

    assert_eq!(
        store.run(run_row.id).await.expect("run"),
        Some(run_row.clone())
    );
    assert_eq!(store.tasks(run_row.id).await.expect("tasks"), task_rows);
    assert_eq!(
        store.run(RunId(run_row.id.0 + 1000)).await.expect("run"),
        None
    );
    assert!(
        store
            .tasks(RunId(run_row.id.0 + 1000))
            .await
            .expect("tasks")
            .is_empty()
    );

    // A run without tasks is fine too.
    let (empty, none) = store
        .create_run(new_run("default", "empty", t0), Vec::new())
        .await
        .expect("create_run without tasks");
    assert!(none.is_empty());
    assert!(empty.id > run_row.id);
}

async fn create_run_truncates_times_to_microseconds(db: &TestDb) {
    let with_nanos = at(0) + chrono::Duration::nanoseconds(789);
    let (run, tasks) = db
        .store
        .create_run(
            new_run("default", "p", with_nanos),
            vec![new_task("a", 1, TaskState::Queued)],
        )
        .await
        .expect("create_run");
    assert_eq!(run.created_at, at(0), "sub-microsecond digits dropped");
    assert_eq!(tasks[0].queued_at, Some(at(0)));
    let stored = db.store.run(run.id).await.expect("run").expect("exists");
    assert_eq!(stored.created_at, at(0));
}

async fn entering_states_sets_timestamps(db: &TestDb) {
    let store = &db.store;
    let (run, tasks) = store
        .create_run(
            new_run("default", "p", at(0)),
            vec![
                new_task("a", 1, TaskState::Pending),
                new_task("b", 1, TaskState::Queued),
                new_task("c", 1, TaskState::Pending),
            ],
        )
        .await
        .expect("create_run");
    let (a, b, c) = (tasks[0].id, tasks[1].id, tasks[2].id);

    let mut queue_a = TaskUpdate::new(a, TaskState::Pending, TaskState::Queued, at(1));
    queue_a.worker = None;
    store
        .apply(Transition {
            tasks: vec![queue_a],
            runs: vec![RunUpdate {
                id: run.id,
                to: RunState::Running,
                at: at(1),
            }],
            ..Transition::default()
        })
        .await
        .expect("queue a, start run");

    let mut start_a = TaskUpdate::new(a, TaskState::Queued, TaskState::Running, at(2));
    start_a.worker = Some("w1".to_owned());
    let start_b = TaskUpdate::new(b, TaskState::Queued, TaskState::Running, at(3));
    // Straight from pending to running: queued_at is filled in too.
    let start_c = TaskUpdate::new(c, TaskState::Pending, TaskState::Running, at(4));
    store
        .apply(Transition {
            tasks: vec![start_a, start_b, start_c],
            ..Transition::default()
        })
        .await
        .expect("start a, b, c");

    // Staying in a state enters nothing: only the given fields change.
    let mut progress = TaskUpdate::new(a, TaskState::Running, TaskState::Running, at(5));
    progress.value = Some(json!({"progress": 0.5}));
    store
        .apply(Transition {
            tasks: vec![progress],
            ..Transition::default()
        })
        .await
        .expect("same-state update");

    let finish_a = TaskUpdate::new(a, TaskState::Running, TaskState::Succeeded, at(6));
    store
        .apply(Transition {
            tasks: vec![finish_a],
            runs: vec![RunUpdate {
                id: run.id,
                to: RunState::Running,
                at: at(6),
            }],
            ..Transition::default()
        })
        .await
        .expect("finish a");

    let tasks = store.tasks(run.id).await.expect("tasks");
    let a = task(&tasks, "a", 1);
    assert_eq!(a.state, TaskState::Succeeded);
    assert_eq!(a.queued_at, Some(at(1)));
    assert_eq!(a.started_at, Some(at(2)));
    assert_eq!(a.finished_at, Some(at(6)));
    assert_eq!(
        a.worker.as_deref(),
        Some("w1"),
        "None keeps the stored worker"
    );
    assert_eq!(a.value, Some(json!({"progress": 0.5})));
    let b = task(&tasks, "b", 1);
    assert_eq!(b.queued_at, Some(at(0)), "kept from creation");
    assert_eq!(b.started_at, Some(at(3)));
    assert_eq!(b.finished_at, None);
    let c = task(&tasks, "c", 1);
    assert_eq!(
        c.queued_at,
        Some(at(4)),
        "set when unset on entering running"
    );
    assert_eq!(c.started_at, Some(at(4)));

    let run_row = store.run(run.id).await.expect("run").expect("exists");
    assert_eq!(run_row.state, RunState::Running);
    assert_eq!(
        run_row.started_at,
        Some(at(1)),
        "not moved by a later running"
    );
    assert_eq!(run_row.finished_at, None);

    store
        .apply(Transition {
            runs: vec![RunUpdate {
                id: run.id,
                to: RunState::Failed,
                at: at(9),
            }],
            ..Transition::default()
        })
        .await
        .expect("fail run");
    let run_row = store.run(run.id).await.expect("run").expect("exists");
    assert_eq!(run_row.state, RunState::Failed);
    assert_eq!(run_row.started_at, Some(at(1)));
    assert_eq!(run_row.finished_at, Some(at(9)));
}

async fn stale_guard_rolls_back_the_whole_transition(db: &TestDb) {
    let store = &db.store;
    let (run, tasks) = store
        .create_run(
            new_run("default", "p", at(0)),
            vec![
                new_task("a", 1, TaskState::Pending),
                new_task("b", 1, TaskState::Queued),
            ],
        )
        .await
        .expect("create_run");
    let before = store.tasks(run.id).await.expect("tasks");
    let run_before = store.run(run.id).await.expect("run");

    // `a`'s update is valid and comes first; `b`'s guard is stale.
    let mut valid = TaskUpdate::new(tasks[0].id, TaskState::Pending, TaskState::Queued, at(1));
    valid.worker = Some("w1".to_owned());
    let stale = TaskUpdate::new(tasks[1].id, TaskState::Running, TaskState::Succeeded, at(1));
    let err = store
        .apply(Transition {
            tasks: vec![valid, stale],
            new_tasks: vec![(run.id, new_task("a", 2, TaskState::Queued))],
            runs: vec![RunUpdate {
                id: run.id,
                to: RunState::Running,
                at: at(1),
            }],
        })
        .await
        .expect_err("stale guard must fail");
    match err {
        Error::Conflict {
            task,
            expected,
            found,
        } => {
            assert_eq!(task, tasks[1].id);
            assert_eq!(expected, TaskState::Running);
            assert_eq!(found, Some(TaskState::Queued));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.tasks(run.id).await.expect("tasks"),
        before,
        "nothing changed"
    );
    assert_eq!(store.run(run.id).await.expect("run"), run_before);

    // The store stays usable after the rollback.
    let retry = TaskUpdate::new(tasks[1].id, TaskState::Queued, TaskState::Running, at(2));
    store
        .apply(Transition {
            tasks: vec![retry],
            ..Transition::default()
        })
        .await
        .expect("apply after a conflict");
}

async fn guard_on_a_missing_task_conflicts(db: &TestDb) {
    let missing = TaskId(424_242);
    let err = db
        .store
        .apply(Transition {
            tasks: vec![TaskUpdate::new(
                missing,
                TaskState::Queued,
                TaskState::Running,
                at(1),
            )],
            ..Transition::default()
        })
        .await
        .expect_err("missing task");
    assert!(
        matches!(err, Error::Conflict { task, found: None, .. } if task == missing),
        "{err:?}"
    );
    assert_eq!(
        db.store.apply(Transition::default()).await.expect("empty"),
        Applied::default()
    );
}

async fn update_of_a_missing_run_rolls_back(db: &TestDb) {
    let store = &db.store;
    let (run, tasks) = store
        .create_run(
            new_run("default", "p", at(0)),
            vec![new_task("a", 1, TaskState::Queued)],
        )
        .await
        .expect("create_run");
    let err = store
        .apply(Transition {
            tasks: vec![TaskUpdate::new(
                tasks[0].id,
                TaskState::Queued,
                TaskState::Running,
                at(1),
            )],
            runs: vec![RunUpdate {
                id: RunId(run.id.0 + 77),
                to: RunState::Running,
                at: at(1),
            }],
            ..Transition::default()
        })
        .await
        .expect_err("missing run");
    assert!(
        matches!(err, Error::RunNotFound { run: r } if r.0 == run.id.0 + 77),
        "{err:?}"
    );
    let after = store.tasks(run.id).await.expect("tasks");
    assert_eq!(after[0].state, TaskState::Queued, "task update rolled back");
}

async fn metering_value_and_error_round_trip(db: &TestDb) {
    let store = &db.store;
    let (run, tasks) = store
        .create_run(
            new_run("default", "p", at(0)),
            vec![new_task("a", 1, TaskState::Running)],
        )
        .await
        .expect("create_run");
    assert_eq!(tasks[0].started_at, Some(at(0)), "created running: started");
    assert_eq!(tasks[0].queued_at, Some(at(0)));
    let metering = Metering {
        wall_s: 1.234_567_891,
        cpu_user_s: 0.1,
        cpu_sys_s: 0.000_25,
        max_rss_kib: 1_234_567,
        rss_floor_kib: 13_000,
    };
    let value = json!({"rows": 42, "path": "blobs/x.parquet", "ratio": 0.3, "none": null});
    let mut fail = TaskUpdate::new(tasks[0].id, TaskState::Running, TaskState::Failed, at(5));
    fail.exit_code = Some(-9);
    fail.error = Some("killed\n\tby signal 9 — ünïcødé".to_owned());
    fail.metering = Some(metering);
    fail.worker = Some("host:123:abc".to_owned());
    fail.value = Some(value.clone());
    store
        .apply(Transition {
            tasks: vec![fail],
            ..Transition::default()
        })
        .await
        .expect("fail a");

    // A later same-state update that sets nothing keeps every field.
    store
        .apply(Transition {
            tasks: vec![TaskUpdate::new(
                tasks[0].id,
                TaskState::Failed,
                TaskState::Failed,
                at(6),
            )],
            ..Transition::default()
        })
        .await
        .expect("no-op update");

    let row = store.tasks(run.id).await.expect("tasks").remove(0);
    assert_eq!(row.state, TaskState::Failed);
    assert_eq!(row.exit_code, Some(-9));
    assert_eq!(
        row.error.as_deref(),
        Some("killed\n\tby signal 9 — ünïcødé")
    );
    assert_eq!(row.metering, Some(metering));
    assert_eq!(row.worker.as_deref(), Some("host:123:abc"));
    assert_eq!(row.value, Some(value));
    assert_eq!(row.finished_at, Some(at(5)));
}

async fn retries_are_new_task_rows(db: &TestDb) {
    let store = &db.store;
    let (run, tasks) = store
        .create_run(
            new_run("default", "p", at(0)),
            vec![
                new_task("a", 1, TaskState::Running),
                new_task("b", 1, TaskState::Pending),
            ],
        )
        .await
        .expect("create_run");
    let mut retry = new_task("a", 2, TaskState::Queued);
    retry.not_before = Some(at(15));
    let mut other_retry = new_task("b", 2, TaskState::Pending);
    other_retry.not_before = None;
    let created = store
        .apply(Transition {
            tasks: vec![TaskUpdate::new(
                tasks[0].id,
                TaskState::Running,
                TaskState::Failed,
                at(5),
            )],
            new_tasks: vec![(run.id, retry), (run.id, other_retry)],
            ..Transition::default()
        })
        .await
        .expect("fail and retry");
    assert!(created.datasets.is_empty());
    let created = created.tasks;
    assert_eq!(created.len(), 2);
    let (a2, b2) = (&created[0], &created[1]);
    assert_eq!(
        (a2.step.as_str(), a2.attempt),
        ("a", 2),
        "order of new_tasks"
    );
    assert_eq!((b2.step.as_str(), b2.attempt), ("b", 2));
    assert!(a2.id > tasks[1].id && b2.id > a2.id);
    assert_eq!(a2.run_id, run.id);
    assert_eq!(a2.state, TaskState::Queued);
    assert_eq!(a2.not_before, Some(at(15)));
    assert_eq!(a2.created_at, at(5), "created at the transition's time");
    assert_eq!(a2.queued_at, Some(at(5)));
    assert_eq!(b2.queued_at, None);

    let all = store.tasks(run.id).await.expect("tasks");
    let order: Vec<(&str, u32)> = all.iter().map(|t| (t.step.as_str(), t.attempt)).collect();
    assert_eq!(
        order,
        [("a", 1), ("b", 1), ("a", 2), ("b", 2)],
        "creation order"
    );
    assert_eq!(task(&all, "a", 1).state, TaskState::Failed);
    assert_eq!(&all[2], a2);
}

async fn duplicate_attempt_rolls_back(db: &TestDb) {
    let store = &db.store;
    let (run, tasks) = store
        .create_run(
            new_run("default", "p", at(0)),
            vec![new_task("a", 1, TaskState::Running)],
        )
        .await
        .expect("create_run");
    let err = store
        .apply(Transition {
            tasks: vec![TaskUpdate::new(
                tasks[0].id,
                TaskState::Running,
                TaskState::Failed,
                at(5),
            )],
            new_tasks: vec![(run.id, new_task("a", 1, TaskState::Queued))],
            ..Transition::default()
        })
        .await
        .expect_err("(run, step, attempt) is unique");
    assert!(matches!(err, Error::Database { .. }), "{err:?}");
    let all = store.tasks(run.id).await.expect("tasks");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, TaskState::Running, "update rolled back");
}

async fn runs_are_listed_newest_first_with_filters(db: &TestDb) {
    let store = &db.store;
    let mut ids = Vec::new();
    for (i, (ns, pipeline)) in [
        ("default", "sales"),
        ("default", "other"),
        ("team", "sales"),
        ("default", "sales"),
        ("team", "sales"),
        ("default", "other"),
        ("default", "sales"),
    ]
    .into_iter()
    .enumerate()
    {
        let (run, _) = store
            .create_run(new_run(ns, pipeline, at(i as i64)), Vec::new())
            .await
            .expect("create_run");
        ids.push((run.id, ns, pipeline));
    }
    let list = |namespace: Option<&str>, pipeline: Option<&str>, limit: u32| RunFilter {
        namespace: namespace.map(str::to_owned),
        pipeline: pipeline.map(str::to_owned),
        limit,
    };
    let expect = |ns: Option<&str>, pipeline: Option<&str>, limit: usize| -> Vec<RunId> {
        ids.iter()
            .rev()
            .filter(|(_, n, p)| ns.is_none_or(|ns| ns == *n) && pipeline.is_none_or(|x| x == *p))
            .map(|(id, _, _)| *id)
            .take(limit)
            .collect()
    };
    let cases = [
        (None, None, 50),
        (None, None, 3),
        (Some("default"), None, 50),
        (Some("default"), Some("sales"), 50),
        (Some("default"), Some("sales"), 2),
        (None, Some("sales"), 50),
        (Some("team"), Some("other"), 50),
        (Some("nope"), None, 50),
    ];
    for (ns, pipeline, limit) in cases {
        let got: Vec<RunId> = store
            .runs(&list(ns, pipeline, limit))
            .await
            .expect("runs")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            got,
            expect(ns, pipeline, limit as usize),
            "{ns:?} {pipeline:?} {limit}"
        );
    }
    let all = store.runs(&RunFilter::default()).await.expect("runs");
    assert_eq!(all.len(), 7);
    assert!(
        all.iter()
            .all(|r| r.params["countries"] == json!(["DE", "FR"]))
    );
}

async fn claim_heartbeat_and_release(db: &TestDb) {
    let store = &db.store;
    let (run, _) = store
        .create_run(new_run("default", "p", at(0)), Vec::new())
        .await
        .expect("create_run");
    let id = run.id;

    assert!(
        store
            .claim_run(id, "p1", at(0), at(-30))
            .await
            .expect("claim")
    );
    let row = store.run(id).await.expect("run").expect("exists");
    assert_eq!(row.owner.as_deref(), Some("p1"));
    assert_eq!(row.heartbeat_at, Some(at(0)));

    // Fresh heartbeat: a second owner is refused.
    assert!(
        !store
            .claim_run(id, "p2", at(10), at(-20))
            .await
            .expect("claim")
    );
    assert!(
        store
            .heartbeat_run(id, "p1", at(20))
            .await
            .expect("heartbeat")
    );
    assert!(
        !store
            .heartbeat_run(id, "p2", at(20))
            .await
            .expect("heartbeat")
    );
    assert!(
        !store
            .claim_run(id, "p2", at(25), at(19))
            .await
            .expect("claim")
    );
    // Re-claiming one's own run works and refreshes the heartbeat.
    assert!(
        store
            .claim_run(id, "p1", at(26), at(0))
            .await
            .expect("claim")
    );
    assert_eq!(
        store
            .run(id)
            .await
            .expect("run")
            .expect("exists")
            .heartbeat_at,
        Some(at(26))
    );

    // Stale heartbeat: taken over.
    assert!(
        store
            .claim_run(id, "p2", at(90), at(60))
            .await
            .expect("claim")
    );
    let row = store.run(id).await.expect("run").expect("exists");
    assert_eq!(row.owner.as_deref(), Some("p2"));
    assert_eq!(row.heartbeat_at, Some(at(90)));
    assert!(
        !store
            .heartbeat_run(id, "p1", at(91))
            .await
            .expect("heartbeat"),
        "p1 lost it"
    );

    // Releasing someone else's run is a no-op.
    store.release_run(id, "p1").await.expect("release");
    assert_eq!(
        store
            .run(id)
            .await
            .expect("run")
            .expect("exists")
            .owner
            .as_deref(),
        Some("p2")
    );
    store.release_run(id, "p2").await.expect("release");
    let row = store.run(id).await.expect("run").expect("exists");
    assert_eq!((row.owner, row.heartbeat_at), (None, None));
    assert!(
        store
            .claim_run(id, "p3", at(92), at(0))
            .await
            .expect("claim after release")
    );

    assert!(
        !store
            .claim_run(RunId(id.0 + 99), "p1", at(0), at(0))
            .await
            .expect("claim missing")
    );
    assert!(
        !store
            .heartbeat_run(RunId(id.0 + 99), "p1", at(0))
            .await
            .expect("heartbeat missing")
    );
}

async fn terminal_run_update_clears_owner(db: &TestDb) {
    let store = &db.store;
    let (run, _) = store
        .create_run(new_run("default", "p", at(0)), Vec::new())
        .await
        .expect("create_run");
    assert!(
        store
            .claim_run(run.id, "p1", at(1), at(0))
            .await
            .expect("claim")
    );
    store
        .apply(Transition {
            runs: vec![RunUpdate {
                id: run.id,
                to: RunState::Running,
                at: at(2),
            }],
            ..Transition::default()
        })
        .await
        .expect("start");
    assert_eq!(
        store
            .run(run.id)
            .await
            .expect("run")
            .expect("exists")
            .owner
            .as_deref(),
        Some("p1"),
        "a non-terminal update keeps the owner"
    );
    store
        .apply(Transition {
            runs: vec![RunUpdate {
                id: run.id,
                to: RunState::Succeeded,
                at: at(3),
            }],
            ..Transition::default()
        })
        .await
        .expect("finish");
    let row = store.run(run.id).await.expect("run").expect("exists");
    assert_eq!(row.state, RunState::Succeeded);
    assert_eq!(row.owner, None);
    assert_eq!(row.heartbeat_at, None);
    assert_eq!(row.finished_at, Some(at(3)));
    assert!(
        !store
            .heartbeat_run(run.id, "p1", at(4))
            .await
            .expect("heartbeat")
    );
    assert!(
        !store
            .claim_run(run.id, "p2", at(4), at(4))
            .await
            .expect("claim"),
        "a finished run is never claimed"
    );
}

/// `weir run --resume` re-opens failed and cancelled runs, so they must be
/// claimable; only a succeeded run has nothing left to do.
async fn failed_and_cancelled_runs_can_be_claimed_for_resume(db: &TestDb) {
    let store = &db.store;
    for end in [RunState::Failed, RunState::Cancelled] {
        let (run, _) = store
            .create_run(new_run("default", "p", at(0)), Vec::new())
            .await
            .expect("create_run");
        assert!(
            store
                .claim_run(run.id, "p1", at(1), at(0))
                .await
                .expect("claim")
        );
        store
            .apply(Transition {
                runs: vec![RunUpdate {
                    id: run.id,
                    to: end,
                    at: at(2),
                }],
                ..Transition::default()
            })
            .await
            .expect("finish");
        assert!(
            store
                .claim_run(run.id, "p2", at(3), at(3))
                .await
                .expect("claim"),
            "a {end} run is claimable for resume"
        );
        let row = store.run(run.id).await.expect("run").expect("exists");
        assert_eq!(row.owner.as_deref(), Some("p2"));
        assert_eq!(row.finished_at, Some(at(2)));
        store
            .apply(Transition {
                runs: vec![RunUpdate {
                    id: run.id,
                    to: RunState::Running,
                    at: at(4),
                }],
                ..Transition::default()
            })
            .await
            .expect("re-open");
        let row = store.run(run.id).await.expect("run").expect("exists");
        assert_eq!(row.finished_at, None, "a re-opened run is not finished");
    }
}

async fn concurrent_appliers_exactly_one_wins(db: &TestDb) {
    const TASKS: usize = 20;
    let steps: Vec<NewTask> = (0..TASKS)
        .map(|i| new_task(&format!("s{i}"), 1, TaskState::Queued))
        .collect();
    let (run, tasks) = db
        .store
        .create_run(new_run("default", "race", at(0)), steps)
        .await
        .expect("create_run");
    // Two handles, as two processes would have: for SQLite two writer
    // connections contending for the file lock, for PostgreSQL two pools.
    let stores: [Arc<dyn MetaStore>; 2] = [db.store.clone(), db.open_again().await];
    let barrier = Arc::new(Barrier::new(2));
    let mut racers = Vec::new();
    for (n, store) in stores.into_iter().enumerate() {
        let ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
        let barrier = barrier.clone();
        racers.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for id in ids {
                barrier.wait().await;
                let mut claim = TaskUpdate::new(id, TaskState::Queued, TaskState::Running, at(1));
                claim.worker = Some(format!("w{n}"));
                match store
                    .apply(Transition {
                        tasks: vec![claim],
                        ..Transition::default()
                    })
                    .await
                {
                    Ok(_) => won.push(id),
                    Err(Error::Conflict {
                        found: Some(TaskState::Running),
                        ..
                    }) => {}
                    Err(other) => panic!("racer w{n}: unexpected {other:?}"),
                }
            }
            won
        }));
    }
    let mut wins = Vec::new();
    for racer in racers {
        wins.push(racer.await.expect("racer"));
    }
    for t in db.store.tasks(run.id).await.expect("tasks") {
        let winners: Vec<usize> = (0..2).filter(|&n| wins[n].contains(&t.id)).collect();
        assert_eq!(winners.len(), 1, "task {} won by {winners:?}", t.id);
        assert_eq!(t.state, TaskState::Running);
        assert_eq!(
            t.worker,
            Some(format!("w{}", winners[0])),
            "the winner's write"
        );
    }
}

async fn reopening_keeps_everything(db: &TestDb) {
    let (run, tasks) = db
        .store
        .create_run(
            new_run("default", "p", at(0)),
            vec![new_task("a", 1, TaskState::Queued)],
        )
        .await
        .expect("create_run");
    let again = db.open_again().await;
    assert_eq!(again.backend(), db.store.backend());
    assert_eq!(again.run(run.id).await.expect("run"), Some(run));
    assert_eq!(again.tasks(tasks[0].run_id).await.expect("tasks"), tasks);
    let expected = match db.backend {
        crate::support::Backend::Sqlite => "sqlite",
        crate::support::Backend::Postgres => "postgres",
    };
    assert_eq!(db.store.backend(), expected);
}
