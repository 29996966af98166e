//! Retries: new attempts, backoff, and what an exhausted step blocks.

use chrono::{Duration, SubsecRound};
use weir_types::{RunState, TaskState};

use crate::support::{Project, attempts, create_run, execute, options, states};

crate::on_both_backends!(
    a_flaky_step_is_retried_with_doubling_backoff,
    exhausted_retries_fail_the_step_and_block_only_its_downstream
);

/// A shell line that fails on its first `n` runs (counted in a file of the
/// project) and succeeds afterwards.
fn fails_first(counter: &str, n: u32) -> String {
    format!(
        r#"c="$WEIR_PROJECT_DIR/{counter}"; k=$(cat "$c" 2>/dev/null || echo 0); k=$((k + 1)); echo $k > "$c"; echo "try $k"; [ "$k" -gt {n} ]"#
    )
}

async fn a_flaky_step_is_retried_with_doubling_backoff(project: &Project) {
    let plan = project.pipeline(
        "flaky",
        &format!(
            "name: flaky\nsteps:\n  flaky:\n    retries: {{ max: 2, backoff: 50ms }}\n    shell: '{}'\n  after:\n    needs: [flaky]\n    shell: echo after\n",
            fails_first("flaky.count", 2)
        ),
    );
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let (summary, events) = execute(&engine, run, options(2)).await.checked();

    assert_eq!(summary.run.state, RunState::Succeeded);
    assert_eq!(
        states(&summary, "flaky"),
        [TaskState::Failed, TaskState::Failed, TaskState::Succeeded]
    );
    assert_eq!(states(&summary, "after"), [TaskState::Succeeded]);
    let tries = fs_err::read_to_string(project.root().join("flaky.count")).expect("counter");
    assert_eq!(tries.trim(), "3");

    let a = attempts(&summary, "flaky");
    let time = |t: Option<chrono::DateTime<chrono::Utc>>, what: &str| {
        t.unwrap_or_else(|| panic!("{what} is not set: {a:#?}"))
    };
    assert_eq!(a[0].not_before, None, "a first attempt does not wait");
    assert_eq!(a[0].exit_code, Some(1));
    assert!(a[0].error.is_some());
    // Each retry is due `backoff * 2^(n-2)` after the failure it follows
    // (both stamped with the same instant by the commit that records the
    // failure), and does not start before it is due.
    let backoff = Duration::milliseconds(50);
    for (n, delay) in [(1, backoff), (2, backoff * 2)] {
        let failed_at = time(a[n - 1].finished_at, "finished_at");
        let due = time(a[n].not_before, "not_before");
        assert_eq!(due - failed_at, delay, "attempt {} is due", n + 1);
        let started = time(a[n].started_at, "started_at");
        assert!(
            started >= due,
            "attempt {} started at {started}, before it was due at {due}",
            n + 1
        );
        assert!(started - failed_at >= delay);
    }

    // Retries are created `queued`, with their due time in the event.
    for (attempt, row) in [(2, a[1]), (3, a[2])] {
        let created = events.iter().find_map(|e| match e {
            weir_engine::RunEvent::Task {
                step,
                attempt: n,
                state,
                not_before,
                ..
            } if step == "flaky" && *n == attempt => {
                // The store keeps microseconds.
                Some((*state, not_before.map(|t| t.trunc_subsecs(6))))
            }
            _ => None,
        });
        assert_eq!(created, Some((TaskState::Queued, row.not_before)));
    }
}

/// An always failing step with `max: 1` fails twice; its downstream is
/// `upstream_failed`, an independent branch still succeeds, the run fails.
async fn exhausted_retries_fail_the_step_and_block_only_its_downstream(project: &Project) {
    let plan = project.pipeline(
        "doomed",
        r#"name: doomed
steps:
  doomed:
    retries: { max: 1, backoff: 50ms }
    shell: echo "no luck" >&2; exit 7
  after_doomed:
    needs: [doomed]
    shell: touch "$WEIR_PROJECT_DIR/after_doomed.ran"
  after_after:
    needs: [after_doomed]
    shell: touch "$WEIR_PROJECT_DIR/after_after.ran"
  solo:
    shell: sleep 0.2
  after_solo:
    needs: [solo]
    shell: echo fine
"#,
    );
    let engine = project.engine().await;
    let run = create_run(&engine, &plan, serde_json::Map::new()).await;
    let (summary, _) = execute(&engine, run, options(4)).await.checked();

    assert_eq!(summary.run.state, RunState::Failed);
    assert_eq!(
        states(&summary, "doomed"),
        [TaskState::Failed, TaskState::Failed]
    );
    for row in attempts(&summary, "doomed") {
        assert_eq!(row.exit_code, Some(7));
        assert!(
            row.error.as_deref().is_some_and(|e| e.contains('7')),
            "{row:#?}"
        );
    }
    assert_eq!(
        states(&summary, "after_doomed"),
        [TaskState::UpstreamFailed]
    );
    assert_eq!(states(&summary, "after_after"), [TaskState::UpstreamFailed]);
    assert!(!project.exists("after_doomed.ran"));
    assert!(!project.exists("after_after.ran"));
    assert_eq!(states(&summary, "solo"), [TaskState::Succeeded]);
    assert_eq!(states(&summary, "after_solo"), [TaskState::Succeeded]);
    let blocked = &attempts(&summary, "after_doomed")[0];
    assert_eq!(blocked.started_at, None, "a blocked step never starts");
}
