//! Measures the cost of one durable `apply` (one guarded task update, one
//! commit) on both backends, and of `create_run` with 200 tasks.
//!
//! ```text
//! cargo run --release -p weir-store --example commit_cost [-- N]
//! ```
//!
//! SQLite: a temporary file (WAL, `synchronous=FULL`). PostgreSQL: a fresh
//! database on the server at `WEIR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.
#![expect(clippy::print_stdout, reason = "a measurement tool prints its table")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use weir_store::{MetaStore, NewRun, NewTask, RunUpdate, TaskUpdate, Transition};
use weir_types::{RunState, TaskState};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 2_000,
    };
    println!(
        "| backend | {n} single-task applies | µs/commit | µs/commit, task + run update | create_run(200 tasks) |"
    );
    println!("| --- | --- | --- | --- | --- |");

    let dir = tempfile::TempDir::new()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = weir_store::open_meta_store(&url).await?;
    report("sqlite", &sqlite, n).await?;

    let admin = std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("weir_bench_{}", std::process::id());
    let mut conn = PgConnection::connect(&admin).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or("admin URL without a database")?;
    let result = async {
        let pg = weir_store::open_meta_store(&format!("{base}/{name}")).await?;
        report("postgres", &pg, n).await
    }
    .await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&mut conn)
        .await?;
    result
}

async fn report(backend: &str, store: &Arc<dyn MetaStore>, n: usize) -> Result<(), BoxError> {
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| NewTask {
            step: format!("s{i}"),
            attempt: 1,
            state: TaskState::Pending,
            not_before: None,
        })
        .collect();
    let (run_row, rows) = store.create_run(run(), tasks).await?;

    let started = Instant::now();
    for row in &rows {
        let update = TaskUpdate::new(row.id, TaskState::Pending, TaskState::Queued, Utc::now());
        store
            .apply(Transition {
                tasks: vec![update],
                ..Transition::default()
            })
            .await?;
    }
    let applies = started.elapsed();

    // A multi-statement transition: BEGIN, two updates, COMMIT.
    let started = Instant::now();
    for row in &rows {
        let update = TaskUpdate::new(row.id, TaskState::Queued, TaskState::Running, Utc::now());
        store
            .apply(Transition {
                tasks: vec![update],
                runs: vec![RunUpdate {
                    id: run_row.id,
                    to: RunState::Running,
                    at: Utc::now(),
                }],
                ..Transition::default()
            })
            .await?;
    }
    let pairs = started.elapsed();

    let mut creates = Duration::ZERO;
    const CREATES: u32 = 20;
    for _ in 0..CREATES {
        let tasks: Vec<NewTask> = (0..200)
            .map(|i| NewTask {
                step: format!("s{i}"),
                attempt: 1,
                state: TaskState::Pending,
                not_before: None,
            })
            .collect();
        let started = Instant::now();
        store.create_run(run(), tasks).await?;
        creates += started.elapsed();
    }
    println!(
        "| {backend} | {:.2} s | {:.0} | {:.0} | {:.2} ms |",
        applies.as_secs_f64(),
        applies.as_secs_f64() * 1e6 / n as f64,
        pairs.as_secs_f64() * 1e6 / n as f64,
        creates.as_secs_f64() * 1e3 / f64::from(CREATES),
    );
    Ok(())
}

fn run() -> NewRun {
    NewRun {
        namespace: "default".to_owned(),
        pipeline: "bench".to_owned(),
        params: json!({}),
        environment: None,
        trigger: "manual".to_owned(),
        created_by: "bench".to_owned(),
        plan: json!({"steps": []}),
        state: RunState::Running,
        at: Utc::now(),
    }
}
