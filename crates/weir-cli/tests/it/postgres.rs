//! `weir` on PostgreSQL end to end: `WEIR_DATABASE_URL` points every command
//! at a fresh `weir_test::TestDatabase` (server, naming, clean-up and the
//! never-skipped rule are described there).

use weir_test::TestDatabase;

use crate::{project, run_id};

#[test]
fn run_runs_show_and_logs_use_the_postgres_store() {
    let db = TestDatabase::create("cli");
    let p = project();
    p.write(
        "pipelines/etl.yaml",
        r#"name: etl
steps:
  extract:
    shell: echo extracted
  transform:
    needs: [extract]
    shell: echo transformed
  load:
    needs: [transform]
    shell: echo loaded
"#,
    )
    .unwrap();
    let on_pg = |args: &[&str]| {
        p.command(args)
            .env("WEIR_DATABASE_URL", db.url())
            .output()
            .unwrap()
    };

    let run = on_pg(&["run", "etl", "--concurrency", "1"]);
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let id = run_id(&run.stdout);

    // The server has the run and its tasks.
    let stored = db.query_strings(&format!(
        "SELECT pipeline || '|' || state FROM runs WHERE id = {id}"
    ));
    assert_eq!(stored, ["etl|succeeded"]);
    let tasks = db.query_strings(&format!(
        "SELECT step || '|' || state FROM tasks WHERE run_id = {id} ORDER BY step"
    ));
    assert_eq!(
        tasks,
        ["extract|succeeded", "load|succeeded", "transform|succeeded"]
    );

    // `weir runs` and `weir show` read it back from there.
    let runs = on_pg(&["runs"]);
    assert!(runs.status.success());
    let runs = String::from_utf8_lossy(&runs.stdout);
    let row = runs
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("run {id} is not listed:\n{runs}"));
    assert!(row.contains("etl") && row.contains("succeeded"), "{row}");

    let show = on_pg(&["show", &id.to_string(), "--json"]);
    assert!(show.status.success());
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(show["run"]["state"], "succeeded");
    let mut steps: Vec<(String, String)> = show["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["step"].as_str().unwrap_or_default().to_owned(),
                t["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        [
            ("extract".to_owned(), "succeeded".to_owned()),
            ("load".to_owned(), "succeeded".to_owned()),
            ("transform".to_owned(), "succeeded".to_owned()),
        ]
    );
    let logs = on_pg(&["logs", &id.to_string()]);
    assert!(logs.status.success());
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.contains("[transform#1] transformed"), "{logs}");

    // The project's own SQLite store never saw it.
    let local = p.weir(&["runs"]).unwrap();
    assert!(local.status.success());
    assert!(
        String::from_utf8_lossy(&local.stdout).contains("no runs yet"),
        "{}",
        String::from_utf8_lossy(&local.stdout)
    );
    let local_show = p.weir(&["show", &id.to_string()]).unwrap();
    assert_eq!(local_show.status.code(), Some(1));
}
