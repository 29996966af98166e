//! `weir` on PostgreSQL end to end: `WEIR_DATABASE_URL` points every command
//! at a fresh database of the server at `WEIR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth).
//!
//! weir-cli has no database client among its dependencies, so the database
//! is created and dropped with `psql`. An unreachable server (or a missing
//! `psql`) fails the test: a skipped backend is an untested one.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{project, run_id};

fn admin_url() -> String {
    std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `admin` with its database name replaced by `name`.
fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `psql URL -c SQL`, its stdout (unaligned, tuples only).
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([
            url,
            "-v",
            "ON_ERROR_STOP=1",
            "-X",
            "-q",
            "-t",
            "-A",
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("cannot run `psql`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A fresh database, dropped on drop (also when the test panics). Named
/// like weir-store's test databases, whose fixture drops those that killed
/// test processes left behind.
struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn new() -> TestDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin = admin_url();
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let name = format!(
            "weir_test_{secs}_cli_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = psql(&admin, &format!("CREATE DATABASE {name}")) {
            panic!(
                "cannot create a test database on `{admin}`: {e}\n\
                 hint: start PostgreSQL (`service postgresql start`) or point \
                 WEIR_TEST_POSTGRES_URL at a server where this user may CREATE DATABASE"
            );
        }
        let url = with_database(&admin, &name);
        TestDatabase { admin, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin, &sql) {
            eprintln!("warning: could not drop test database `{}`: {e}", self.name);
        }
    }
}

#[test]
fn run_runs_show_and_logs_use_the_postgres_store() {
    let db = TestDatabase::new();
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
            .env("WEIR_DATABASE_URL", &db.url)
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
    let stored = psql(
        &db.url,
        &format!("SELECT pipeline, state FROM runs WHERE id = {id}"),
    )
    .expect("query runs");
    assert_eq!(stored.trim(), "etl|succeeded");
    let tasks = psql(
        &db.url,
        &format!("SELECT step, state FROM tasks WHERE run_id = {id} ORDER BY step"),
    )
    .expect("query tasks");
    assert_eq!(
        tasks.trim(),
        "extract|succeeded\nload|succeeded\ntransform|succeeded"
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
