//! Dataset versions in the `MetaStore`: recorded with the task update that
//! produced them, numbered per dataset, immutable, read back by version.
//! Run against both backends, like the rest of the conformance suite.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Connection;
use tokio::sync::Barrier;
use weir_store::{
    Applied, DatasetVersionRow, Error, MetaStore, NewDatasetVersion, RunUpdate, TaskRow,
    TaskUpdate, Transition,
};
use weir_types::{DatasetVersionRef, RunId, RunState, TaskState};

use crate::support::{Backend, TestDb, at, new_run, new_task};

crate::conformance!(
    outputs_are_numbered_per_dataset_and_round_trip,
    datasets_lists_the_latest_of_each,
    updates_with_outputs_report_them_in_update_order,
    stale_guard_records_no_version,
    failure_after_the_insert_records_no_version,
    output_without_success_is_refused,
    output_beyond_i64_is_refused,
    concurrent_outputs_get_distinct_versions,
    dataset_versions_cannot_be_updated,
);

const BIG: u64 = 5_000_000_000; // > 2^32

fn output(namespace: &str, name: &str) -> NewDatasetVersion {
    NewDatasetVersion {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        schema: json!({
            "fields": [
                { "name": "id", "type": "int64", "nullable": false },
                { "name": "amount", "type": { "decimal": [18, 2] }, "nullable": true,
                  "metadata": { "pii": "false", "note": "ünïcødé \"quoted\"" } },
            ],
        }),
        rows: 3,
        bytes: 1_024,
        files: vec![format!("datasets/{namespace}/{name}/part-0.parquet")],
        inputs: Vec::new(),
    }
}

fn reference(namespace: &str, name: &str, version: u32) -> DatasetVersionRef {
    DatasetVersionRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        version,
    }
}

/// Creates a run whose tasks (one per step) are running.
async fn running(db: &TestDb, namespace: &str, steps: &[&str]) -> (RunId, Vec<TaskRow>) {
    let (run, tasks) = db
        .store
        .create_run(
            new_run(namespace, "p", at(0)),
            steps
                .iter()
                .map(|s| new_task(s, 1, TaskState::Running))
                .collect(),
        )
        .await
        .expect("create_run");
    (run.id, tasks)
}

fn success(task: &TaskRow, at: DateTime<Utc>, out: NewDatasetVersion) -> TaskUpdate {
    let mut update = TaskUpdate::new(task.id, TaskState::Running, TaskState::Succeeded, at);
    update.output = Some(out);
    update
}

/// Succeeds one task with its output, alone in its transition.
async fn commit(
    store: &dyn MetaStore,
    task: &TaskRow,
    at: DateTime<Utc>,
    out: NewDatasetVersion,
) -> DatasetVersionRow {
    let applied = store
        .apply(Transition {
            tasks: vec![success(task, at, out)],
            ..Transition::default()
        })
        .await
        .expect("succeed with output");
    assert!(applied.tasks.is_empty());
    let [row] = <[DatasetVersionRow; 1]>::try_from(applied.datasets).expect("one version");
    row
}

async fn outputs_are_numbered_per_dataset_and_round_trip(db: &TestDb) {
    let store = &*db.store;
    let (run1, tasks1) = running(db, "default", &["orders"]).await;
    let first = output("default", "p.orders");
    let v1 = commit(store, &tasks1[0], at(5), first.clone()).await;
    assert_eq!(
        v1,
        DatasetVersionRow {
            namespace: "default".to_owned(),
            name: "p.orders".to_owned(),
            version: 1,
            schema: first.schema.clone(),
            rows: 3,
            bytes: 1_024,
            files: first.files.clone(),
            inputs: Vec::new(),
            task_id: tasks1[0].id,
            run_id: run1,
            created_at: at(5),
        }
    );
    assert_eq!(v1.reference(), reference("default", "p.orders", 1));
    let task = &store.tasks(run1).await.expect("tasks")[0];
    assert_eq!(task.state, TaskState::Succeeded, "recorded together");
    assert_eq!(task.finished_at, Some(at(5)));

    // A second run of the same step: version 2, with lineage and big counts.
    let (run2, tasks2) = running(db, "default", &["orders"]).await;
    let mut second = output("default", "p.orders");
    second.rows = BIG;
    second.bytes = i64::MAX as u64;
    second.files = vec![
        "datasets/default/p.orders/2/part-0.parquet".to_owned(),
        "datasets/default/p.orders/2/part-1.parquet".to_owned(),
        "datasets/default/p.orders/2/part-ü.parquet".to_owned(),
    ];
    second.inputs = vec![
        reference("default", "raw.orders", 7),
        reference("shared", "ref.countries", 1),
    ];
    second.schema = json!({ "fields": [], "big": 9_007_199_254_740_993_i64, "f": 0.1 });
    let v2 = commit(store, &tasks2[0], at(9), second.clone()).await;
    assert_eq!(v2.version, 2);
    assert_eq!((v2.rows, v2.bytes), (BIG, i64::MAX as u64));
    assert_eq!(v2.files, second.files);
    assert_eq!(v2.inputs, second.inputs);
    assert_eq!(v2.schema, second.schema);
    assert_eq!((v2.task_id, v2.run_id), (tasks2[0].id, run2));
    assert_eq!(v2.created_at, at(9));

    // Read back, also through another handle (what was returned is what
    // was stored).
    for reader in [db.store.clone(), db.open_again().await] {
        let versions = reader
            .dataset_versions("default", "p.orders")
            .await
            .expect("versions");
        assert_eq!(versions, [v2.clone(), v1.clone()], "newest first");
        let get = |version| reader.dataset_version("default", "p.orders", version);
        assert_eq!(get(None).await.expect("latest"), Some(v2.clone()));
        assert_eq!(get(Some(1)).await.expect("v1"), Some(v1.clone()));
        assert_eq!(get(Some(2)).await.expect("v2"), Some(v2.clone()));
        assert_eq!(get(Some(3)).await.expect("v3"), None);
        assert_eq!(
            reader
                .dataset_version("default", "p.missing", None)
                .await
                .expect("missing"),
            None
        );
        assert_eq!(
            reader
                .dataset_version("other", "p.orders", Some(1))
                .await
                .expect("other namespace"),
            None
        );
        assert!(
            reader
                .dataset_versions("default", "p.missing")
                .await
                .expect("versions")
                .is_empty()
        );
        assert_eq!(
            reader.run_datasets(run1).await.expect("run 1"),
            std::slice::from_ref(&v1)
        );
        assert_eq!(
            reader.run_datasets(run2).await.expect("run 2"),
            std::slice::from_ref(&v2)
        );
        assert!(
            reader
                .run_datasets(RunId(run2.0 + 100))
                .await
                .expect("no such run")
                .is_empty()
        );
        assert_eq!(
            reader.datasets(None).await.expect("datasets"),
            std::slice::from_ref(&v2)
        );
    }
}

async fn datasets_lists_the_latest_of_each(db: &TestDb) {
    let store = &*db.store;
    // Byte order (what both backends sort by) differs from most locales'
    // order on these names: `Z` < `_` < `b` < `l`.
    let names = [
        ("default", "sales.alpha", 2),
        ("team", "sales.alpha", 1),
        ("default", "sales.Zeta", 3),
        ("default", "sales.ab", 1),
        ("default", "sales.a_b", 2),
        ("team", "other.x", 1),
    ];
    let mut latest = Vec::new();
    let mut secs = 0;
    for (ns, name, versions) in names {
        for _ in 0..versions {
            secs += 1;
            let (_, tasks) = running(db, ns, &["s"]).await;
            let row = commit(store, &tasks[0], at(secs), output(ns, name)).await;
            assert_eq!(row.reference().namespace, ns);
            if row.version == versions {
                latest.push(row);
            }
        }
    }
    latest.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let all = store.datasets(None).await.expect("datasets");
    let refs: Vec<String> = all.iter().map(|d| d.reference().to_string()).collect();
    assert_eq!(
        refs,
        [
            "default.sales.Zeta@3",
            "default.sales.a_b@2",
            "default.sales.ab@1",
            "default.sales.alpha@2",
            "team.other.x@1",
            "team.sales.alpha@1",
        ]
    );
    assert_eq!(all, latest);
    let team = store.datasets(Some("team")).await.expect("team");
    assert_eq!(team, latest[4..]);
    let default = store.datasets(Some("default")).await.expect("default");
    assert_eq!(default, latest[..4]);
    assert!(store.datasets(Some("nope")).await.expect("nope").is_empty());

    let versions: Vec<u32> = store
        .dataset_versions("default", "sales.Zeta")
        .await
        .expect("versions")
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [3, 2, 1]);
}

/// Several outputs in one transition, with new tasks and a run update:
/// `Applied` lists them in update order, whatever order they were inserted
/// in.
async fn updates_with_outputs_report_them_in_update_order(db: &TestDb) {
    let store = &*db.store;
    let (run, tasks) = running(db, "default", &["x", "y", "z", "w"]).await;
    let mut plain = TaskUpdate::new(tasks[3].id, TaskState::Running, TaskState::Failed, at(3));
    plain.error = Some("boom".to_owned());
    let applied = store
        .apply(Transition {
            tasks: vec![
                success(&tasks[0], at(1), output("default", "p.zz")),
                plain,
                success(&tasks[1], at(2), output("default", "p.aa")),
                success(&tasks[2], at(3), output("default", "p.mm")),
            ],
            new_tasks: vec![(run, new_task("w", 2, TaskState::Queued))],
            runs: vec![RunUpdate {
                id: run,
                to: RunState::Running,
                at: at(3),
            }],
        })
        .await
        .expect("apply");
    assert_eq!(applied.tasks.len(), 1);
    assert_eq!(
        (applied.tasks[0].step.as_str(), applied.tasks[0].attempt),
        ("w", 2)
    );
    let names: Vec<&str> = applied.datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["p.zz", "p.aa", "p.mm"], "update order");
    let owners: Vec<_> = applied.datasets.iter().map(|d| d.task_id).collect();
    assert_eq!(owners, [tasks[0].id, tasks[1].id, tasks[2].id]);
    assert_eq!(applied.datasets[1].created_at, at(2), "the update's time");
    assert!(
        applied
            .datasets
            .iter()
            .all(|d| d.version == 1 && d.run_id == run)
    );

    let stored: BTreeSet<DatasetVersionRef> = store
        .run_datasets(run)
        .await
        .expect("run_datasets")
        .iter()
        .map(DatasetVersionRow::reference)
        .collect();
    let returned: BTreeSet<DatasetVersionRef> = applied
        .datasets
        .iter()
        .map(DatasetVersionRow::reference)
        .collect();
    assert_eq!(stored, returned);
}

async fn stale_guard_records_no_version(db: &TestDb) {
    let store = &*db.store;
    let (_, earlier) = running(db, "default", &["s"]).await;
    let v1 = commit(store, &earlier[0], at(1), output("default", "p.s")).await;
    let before = store.datasets(None).await.expect("datasets");

    let (run, tasks) = running(db, "default", &["s", "t"]).await;
    // The output's own update is valid and comes first; `t`'s guard is stale.
    let stale = TaskUpdate::new(tasks[1].id, TaskState::Queued, TaskState::Running, at(2));
    let err = store
        .apply(Transition {
            tasks: vec![success(&tasks[0], at(2), output("default", "p.s")), stale],
            ..Transition::default()
        })
        .await
        .expect_err("stale guard");
    assert!(
        matches!(err, Error::Conflict { task, .. } if task == tasks[1].id),
        "{err:?}"
    );
    // The output's task itself is stale (it is not running any more).
    let (_, done) = running(db, "default", &["u"]).await;
    commit(store, &done[0], at(3), output("default", "p.u")).await;
    let err = store
        .apply(Transition {
            tasks: vec![success(&done[0], at(4), output("default", "p.s"))],
            ..Transition::default()
        })
        .await
        .expect_err("output of a finished task");
    assert!(
        matches!(
            err,
            Error::Conflict {
                found: Some(TaskState::Succeeded),
                ..
            }
        ),
        "{err:?}"
    );

    let u = store
        .dataset_version("default", "p.u", None)
        .await
        .expect("u");
    let mut expected = before.clone();
    expected.extend(u);
    assert_eq!(store.datasets(None).await.expect("datasets"), expected);
    assert_eq!(
        store
            .dataset_versions("default", "p.s")
            .await
            .expect("versions"),
        std::slice::from_ref(&v1)
    );
    assert!(store.run_datasets(run).await.expect("run").is_empty());
    assert_eq!(
        store.tasks(run).await.expect("tasks")[0].state,
        TaskState::Running
    );

    // Nothing was consumed: the next version is 2.
    let v2 = commit(store, &tasks[0], at(5), output("default", "p.s")).await;
    assert_eq!(v2.version, 2);
}

/// The version is inserted before the run updates and new tasks; when one of
/// those fails, the version goes with the rollback.
async fn failure_after_the_insert_records_no_version(db: &TestDb) {
    let store = &*db.store;
    let (run, tasks) = running(db, "default", &["s"]).await;
    let err = store
        .apply(Transition {
            tasks: vec![success(&tasks[0], at(1), output("default", "p.s"))],
            runs: vec![RunUpdate {
                id: RunId(run.0 + 50),
                to: RunState::Succeeded,
                at: at(1),
            }],
            ..Transition::default()
        })
        .await
        .expect_err("missing run");
    assert!(matches!(err, Error::RunNotFound { .. }), "{err:?}");
    let err = store
        .apply(Transition {
            tasks: vec![success(&tasks[0], at(1), output("default", "p.s"))],
            // (run, step, attempt) is taken.
            new_tasks: vec![(run, new_task("s", 1, TaskState::Queued))],
            ..Transition::default()
        })
        .await
        .expect_err("duplicate attempt");
    assert!(matches!(err, Error::Database { .. }), "{err:?}");

    assert!(store.datasets(None).await.expect("datasets").is_empty());
    assert!(store.run_datasets(run).await.expect("run").is_empty());
    assert_eq!(
        store.tasks(run).await.expect("tasks")[0].state,
        TaskState::Running
    );
    let v = commit(store, &tasks[0], at(2), output("default", "p.s")).await;
    assert_eq!(v.version, 1, "the rolled-back allocations left nothing");
}

async fn output_without_success_is_refused(db: &TestDb) {
    let store = &*db.store;
    let (run, tasks) = running(db, "default", &["s", "t"]).await;
    let before = store.tasks(run).await.expect("tasks");
    for to in [TaskState::Failed, TaskState::Running, TaskState::Cancelled] {
        let mut update = TaskUpdate::new(tasks[0].id, TaskState::Running, to, at(1));
        update.output = Some(output("default", "p.s"));
        // Alone (PostgreSQL's single-statement path) and with a valid update.
        let other = TaskUpdate::new(tasks[1].id, TaskState::Running, TaskState::Succeeded, at(1));
        for updates in [vec![update.clone()], vec![other, update]] {
            let err = store
                .apply(Transition {
                    tasks: updates,
                    ..Transition::default()
                })
                .await
                .expect_err("output without success");
            assert!(
                matches!(err, Error::OutputWithoutSuccess { task } if task == tasks[0].id),
                "{to}: {err:?}"
            );
        }
    }
    assert_eq!(
        store.tasks(run).await.expect("tasks"),
        before,
        "nothing changed"
    );
    assert!(store.datasets(None).await.expect("datasets").is_empty());
}

async fn output_beyond_i64_is_refused(db: &TestDb) {
    let store = &*db.store;
    let (run, tasks) = running(db, "default", &["s"]).await;
    let mut huge = output("default", "p.s");
    huge.bytes = i64::MAX as u64 + 1;
    let err = store
        .apply(Transition {
            tasks: vec![success(&tasks[0], at(1), huge)],
            ..Transition::default()
        })
        .await
        .expect_err("too many bytes");
    assert!(
        matches!(err, Error::OutputOutOfRange { task, field: "bytes", .. } if task == tasks[0].id),
        "{err:?}"
    );
    assert_eq!(
        store.tasks(run).await.expect("tasks")[0].state,
        TaskState::Running
    );
    assert!(store.datasets(None).await.expect("datasets").is_empty());
}

/// Two handles, as two processes would have, committing versions of one
/// dataset at the same moment: every commit gets its own number.
async fn concurrent_outputs_get_distinct_versions(db: &TestDb) {
    const ROUNDS: usize = 10;
    let steps: Vec<String> = (0..2 * ROUNDS).map(|i| format!("s{i}")).collect();
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let (run, tasks) = running(db, "default", &steps).await;
    let stores: [Arc<dyn MetaStore>; 2] = [db.store.clone(), db.open_again().await];
    let barrier = Arc::new(Barrier::new(2));
    let mut racers = Vec::new();
    for (n, store) in stores.into_iter().enumerate() {
        let mine: Vec<TaskRow> = tasks.iter().skip(n).step_by(2).cloned().collect();
        let barrier = barrier.clone();
        racers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for task in mine {
                barrier.wait().await;
                let applied: Applied = store
                    .apply(Transition {
                        tasks: vec![success(&task, at(1), output("default", "p.race"))],
                        ..Transition::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("racer {n}: {e:?}"));
                got.extend(applied.datasets);
            }
            got
        }));
    }
    let mut committed = Vec::new();
    for racer in racers {
        committed.extend(racer.await.expect("racer"));
    }
    committed.sort_by_key(|v| v.version);
    let numbers: Vec<u32> = committed.iter().map(|v| v.version).collect();
    let expected: Vec<u32> = (1..=2 * ROUNDS as u32).collect();
    assert_eq!(numbers, expected, "no duplicate, no gap");

    let mut stored = db
        .store
        .dataset_versions("default", "p.race")
        .await
        .expect("versions");
    stored.reverse();
    assert_eq!(stored, committed, "what each racer got is what is stored");
    assert_eq!(
        db.store
            .dataset_version("default", "p.race", None)
            .await
            .expect("latest")
            .map(|v| v.version),
        Some(2 * ROUNDS as u32)
    );
    assert_eq!(
        db.store.run_datasets(run).await.expect("run").len(),
        2 * ROUNDS
    );
}

/// The schema refuses updates of a recorded version, whoever tries.
async fn dataset_versions_cannot_be_updated(db: &TestDb) {
    let (_, tasks) = running(db, "default", &["s"]).await;
    let v1 = commit(&*db.store, &tasks[0], at(1), output("default", "p.s")).await;
    let statement = "UPDATE dataset_versions SET row_count = 0";
    let result = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url())
                .await
                .expect("connect");
            sqlx::query(statement).execute(&mut conn).await.map(drop)
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url())
                .await
                .expect("connect");
            sqlx::query(statement).execute(&mut conn).await.map(drop)
        }
    };
    let err = result.expect_err("versions are immutable");
    assert!(err.to_string().contains("immutable"), "{err}");
    assert_eq!(
        db.store
            .dataset_version("default", "p.s", Some(1))
            .await
            .expect("v1"),
        Some(v1)
    );
}
