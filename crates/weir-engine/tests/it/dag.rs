//! Dependencies and the concurrency bound.

use weir_types::{RunState, TaskState};

use crate::support::{Project, create_run, event_index, execute, only, options, states};

crate::on_both_backends!(
    diamond_runs_each_step_once_after_its_upstreams,
    concurrency_bounds_the_running_tasks
);

/// a → (b, c) → d: every step succeeds once, `d` starts only after both
/// branches finished, and the events are a valid history of each task.
async fn diamond_runs_each_step_once_after_its_upstreams(project: &Project) {
    let plan = project.pipeline(
        "diamond",
        r#"name: diamond
steps:
  a:
    shell: echo a >> "$WEIR_PROJECT_DIR/effects"
  b:
    needs: [a]
    shell: sleep 0.2; echo b >> "$WEIR_PROJECT_DIR/effects"
  c:
    needs: [a]
    shell: sleep 0.1; echo c >> "$WEIR_PROJECT_DIR/effects"
  d:
    needs: [b, c]
    shell: echo d >> "$WEIR_PROJECT_DIR/effects"
"#,
    );
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let (summary, events) = execute(&engine, run, options(4)).await.checked();

    assert_eq!(summary.run.state, RunState::Succeeded);
    assert_eq!(summary.tasks.len(), 4, "{:#?}", summary.tasks);
    for step in ["a", "b", "c", "d"] {
        assert_eq!(states(&summary, step), [TaskState::Succeeded], "{step}");
        assert_eq!(only(&summary, step).exit_code, Some(0), "{step}");
    }
    let effects = fs_err::read_to_string(project.root().join("effects")).expect("effects");
    let mut ran: Vec<&str> = effects.lines().collect();
    ran.sort_unstable();
    assert_eq!(ran, ["a", "b", "c", "d"], "each step ran exactly once");

    let started = |s: &str| only(&summary, s).started_at.expect("started_at");
    let finished = |s: &str| only(&summary, s).finished_at.expect("finished_at");
    for (up, down) in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")] {
        assert!(
            started(down) >= finished(up),
            "`{down}` started at {} before `{up}` finished at {}",
            started(down),
            finished(up)
        );
    }
    // b and c had free slots: they ran side by side.
    assert!(started("b") < finished("c") && started("c") < finished("b"));

    for step in ["a", "b", "c", "d"] {
        assert!(
            event_index(&events, step, 1, TaskState::Running)
                < event_index(&events, step, 1, TaskState::Succeeded)
        );
    }
    // Events are published after the commit that made them durable, so
    // `d` cannot be reported running before both branches succeeded.
    let d_running = event_index(&events, "d", 1, TaskState::Running);
    assert!(d_running > event_index(&events, "b", 1, TaskState::Succeeded));
    assert!(d_running > event_index(&events, "c", 1, TaskState::Succeeded));
}

/// Six independent `sleep 0.3` steps with concurrency 2: at no instant are
/// more than two tasks running, and the two slots are used.
async fn concurrency_bounds_the_running_tasks(project: &Project) {
    let mut yaml = String::from("name: wide\nsteps:\n");
    for i in 1..=6 {
        yaml.push_str(&format!("  s{i}:\n    shell: sleep 0.3\n"));
    }
    let plan = project.pipeline("wide", &yaml);
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let (summary, events) = execute(&engine, run, options(2)).await.checked();
    assert_eq!(summary.run.state, RunState::Succeeded);

    let spans: Vec<_> = (1..=6)
        .map(|i| {
            let t = only(&summary, &format!("s{i}"));
            assert_eq!(t.state, TaskState::Succeeded);
            (
                t.started_at.expect("started_at"),
                t.finished_at.expect("finished_at"),
            )
        })
        .collect();
    // The number of running tasks only rises at a start: checking each start
    // instant covers every instant. Intervals are half-open, because a slot
    // freed by a task is given to the next one in the same commit (same
    // timestamp).
    let mut most = 0;
    for &(at, _) in &spans {
        let running = spans.iter().filter(|&&(s, f)| s <= at && at < f).count();
        assert!(
            running <= 2,
            "{running} tasks were running at {at}: {spans:#?}"
        );
        most = most.max(running);
    }
    assert_eq!(most, 2, "two slots, six ready steps: both slots are used");
    // The same holds in the event stream.
    let mut running = 0usize;
    for event in &events {
        if let weir_engine::RunEvent::Task { state, .. } = event {
            match state {
                TaskState::Running => running += 1,
                s if s.is_terminal() => running -= 1,
                _ => {}
            }
            assert!(running <= 2, "{events:#?}");
        }
    }
}
