//! weir's benchmark harness: runs the real `weir` binary on generated
//! projects and prints a table (workload, weir, reference, ratio).
//!
//! Usage: `cargo build --release && cargo run --release -p weir-bench [-- --weir PATH --repeat N --no-postgres]`;
//! `weir-bench etl [...]` runs the ETL workload against DuckDB instead (see
//! `etl.rs`). The default `--weir` is the `weir` next to this executable.
//!
//! Engine overhead per step = the time task slots were not spent inside the
//! steps' child processes, divided by the number of steps:
//! `(concurrency × run wall − Σ child wall) / steps`. For a chain
//! (concurrency 1) that is `(run wall − Σ child wall) / steps`. Child wall is
//! measured by weir itself from spawn to exit (wait4), so the figure includes
//! durable commits, scheduling, log handling and the tokio plumbing, but not
//! bash's own start-up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

mod etl;
mod etl_data;

struct Options {
    weir: PathBuf,
    repeat: usize,
    postgres: Option<String>,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("etl") {
        args.next();
        return etl::main(args, default_weir());
    }
    let options = parse_args(args)?;
    ensure!(
        options.weir.is_file(),
        "no weir binary at `{}`; build it with `cargo build --release`",
        options.weir.display()
    );
    let mut rows = Vec::new();
    let mut backends = vec![("sqlite", None)];
    if let Some(admin) = &options.postgres {
        backends.push(("postgres", Some(admin.clone())));
    }
    for (backend, admin) in backends {
        for workload in [Workload::Chain(200), Workload::FanOut(200)] {
            let mut samples = Vec::new();
            for _ in 0..options.repeat {
                samples.push(measure(&options.weir, workload, admin.as_deref())?);
            }
            let stat = |f: fn(&Sample) -> f64| {
                let mut v: Vec<f64> = samples.iter().map(f).collect();
                v.sort_by(f64::total_cmp);
                (v[v.len() / 2], v[0])
            };
            let (overhead, overhead_min) = stat(|s| s.overhead_ms);
            let (cpu, cpu_min) = stat(|s| s.engine_cpu_ms);
            samples.sort_by(|a, b| a.overhead_ms.total_cmp(&b.overhead_ms));
            let median = &samples[samples.len() / 2];
            rows.push(vec![
                format!(
                    "{} on {backend}: {}",
                    workload.name(),
                    match workload {
                        Workload::Chain(_) => "overhead/step",
                        Workload::FanOut(_) => "slot time not in children/step",
                    }
                ),
                format!("{overhead:.3} ms (min {overhead_min:.3})"),
                "1.000 ms (budget)".to_owned(),
                format!("{:.2}x", overhead / 1.0),
            ]);
            rows.push(vec![
                format!("{} on {backend}: weir's own CPU/step", workload.name()),
                format!("{cpu:.3} ms (min {cpu_min:.3})"),
                "1.000 ms (budget)".to_owned(),
                format!("{:.2}x", cpu / 1.0),
            ]);
            rows.push(vec![
                format!("{} on {backend}: run wall", workload.name()),
                format!("{:.3} s", median.run_wall_s),
                format!("{:.3} s in children", median.child_wall_s),
                format!("{:.2}x", median.run_wall_s / median.child_wall_s.max(1e-9)),
            ]);
            rows.push(vec![
                format!("{} on {backend}: `weir run` process", workload.name()),
                format!("{:.3} s", median.process_wall_s),
                "-".to_owned(),
                "-".to_owned(),
            ]);
        }
    }
    print_table(&["workload", "weir", "reference", "ratio"], &rows);
    Ok(())
}

/// The `weir` built next to this executable (so that `CARGO_TARGET_DIR`
/// builds find theirs), else the workspace's release build.
fn default_weir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("weir")))
        .filter(|weir| weir.is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/weir"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options> {
    let mut options = Options {
        weir: default_weir(),
        repeat: 3,
        postgres: Some("postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--weir" => options.weir = args.next().context("--weir PATH")?.into(),
            "--repeat" => options.repeat = args.next().context("--repeat N")?.parse()?,
            "--postgres" => options.postgres = Some(args.next().context("--postgres URL")?),
            "--no-postgres" => options.postgres = None,
            other => bail!("unknown argument `{other}`; see the header of bench/main.rs"),
        }
    }
    Ok(options)
}

#[derive(Clone, Copy)]
enum Workload {
    /// n no-op steps, each needing the previous one; concurrency 1.
    Chain(usize),
    /// one root, n no-op steps needing it, one sink needing them all;
    /// concurrency 2 (the cores of these machines).
    FanOut(usize),
}

impl Workload {
    fn name(self) -> String {
        match self {
            Workload::Chain(n) => format!("chain of {n} no-op shell steps"),
            Workload::FanOut(n) => format!("1 → {n} → 1 no-op shell steps, concurrency 2"),
        }
    }

    fn concurrency(self) -> usize {
        match self {
            Workload::Chain(_) => 1,
            Workload::FanOut(_) => 2,
        }
    }

    fn pipeline(self) -> String {
        let mut yaml = String::from("name: bench\nsteps:\n");
        match self {
            Workload::Chain(n) => {
                for i in 0..n {
                    yaml.push_str(&format!("  s{i}:\n    shell: \"true\"\n"));
                    if i > 0 {
                        yaml.push_str(&format!("    needs: [s{}]\n", i - 1));
                    }
                }
            }
            Workload::FanOut(n) => {
                yaml.push_str("  root:\n    shell: \"true\"\n");
                let mut all = Vec::new();
                for i in 0..n {
                    yaml.push_str(&format!(
                        "  s{i}:\n    shell: \"true\"\n    needs: [root]\n"
                    ));
                    all.push(format!("s{i}"));
                }
                yaml.push_str(&format!(
                    "  sink:\n    shell: \"true\"\n    needs: [{}]\n",
                    all.join(", ")
                ));
            }
        }
        yaml
    }
}

struct Sample {
    overhead_ms: f64,
    /// CPU weir itself used per step (its whole process, start-up included).
    engine_cpu_ms: f64,
    run_wall_s: f64,
    child_wall_s: f64,
    process_wall_s: f64,
}

fn measure(weir: &Path, workload: Workload, postgres_admin: Option<&str>) -> Result<Sample> {
    let dir = tempfile::tempdir()?;
    fs_err::write(dir.path().join("weir.yaml"), "name: bench\n")?;
    fs_err::create_dir_all(dir.path().join("pipelines"))?;
    fs_err::write(dir.path().join("pipelines/bench.yaml"), workload.pipeline())?;
    let database = match postgres_admin {
        Some(admin) => Some(fresh_postgres(admin)?),
        None => None,
    };
    let weir_cmd = |args: &[&str]| {
        let mut cmd = Command::new(weir);
        cmd.args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("WEIR_DATABASE_URL");
        if let Some(db) = &database {
            cmd.env("WEIR_DATABASE_URL", db);
        }
        cmd
    };
    let concurrency = workload.concurrency().to_string();
    let cpu_before = children_cpu_s()?;
    let started = Instant::now();
    let out = weir_cmd(&["run", "bench", "--concurrency", &concurrency]).output()?;
    let process_wall_s = started.elapsed().as_secs_f64();
    // weir and every process it waited for (its tasks).
    let tree_cpu_s = children_cpu_s()? - cpu_before;
    ensure!(
        out.status.success(),
        "weir run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .context("no run id in `weir run` output")?
        .to_owned();
    let show = weir_cmd(&["show", &id, "--json"]).output()?;
    ensure!(show.status.success(), "weir show failed");
    let show: Value = serde_json::from_slice(&show.stdout)?;
    let run_wall_s = seconds_between(&show["run"]["started_at"], &show["run"]["finished_at"])?;
    let tasks = show["tasks"].as_array().context("tasks")?;
    let child_wall_s: f64 = tasks
        .iter()
        .map(|t| t["metering"]["wall_s"].as_f64().unwrap_or(0.0))
        .sum();
    let task_cpu_s: f64 = tasks
        .iter()
        .map(|t| {
            t["metering"]["cpu_user_s"].as_f64().unwrap_or(0.0)
                + t["metering"]["cpu_sys_s"].as_f64().unwrap_or(0.0)
        })
        .sum();
    let steps = tasks.len() as f64;
    let slots = workload.concurrency() as f64;
    if let (Some(admin), Some(db)) = (postgres_admin, &database) {
        drop_postgres(admin, db)?;
    }
    Ok(Sample {
        overhead_ms: (slots * run_wall_s - child_wall_s) / steps * 1000.0,
        engine_cpu_ms: (tree_cpu_s - task_cpu_s) / steps * 1000.0,
        run_wall_s,
        child_wall_s,
        process_wall_s,
    })
}

/// User + system CPU of this process's waited-for children, in seconds.
fn children_cpu_s() -> Result<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(seconds(usage.user_time()) + seconds(usage.system_time()))
}

fn seconds_between(start: &Value, end: &Value) -> Result<f64> {
    let parse = |v: &Value| -> Result<chrono::DateTime<chrono::FixedOffset>> {
        Ok(chrono::DateTime::parse_from_rfc3339(
            v.as_str().context("timestamp")?,
        )?)
    };
    Ok((parse(end)? - parse(start)?).as_seconds_f64())
}

fn psql(admin: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args([admin, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .context("psql is needed for the PostgreSQL figures (or pass --no-postgres)")?;
    ensure!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn fresh_postgres(admin: &str) -> Result<String> {
    let name = format!("weir_bench_{}", std::process::id());
    psql(admin, &format!("DROP DATABASE IF EXISTS {name}"))?;
    psql(admin, &format!("CREATE DATABASE {name}"))?;
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

fn drop_postgres(admin: &str, url: &str) -> Result<()> {
    let name = url.rsplit('/').next().context("database name")?;
    psql(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
}

#[expect(clippy::print_stdout, reason = "the harness's output is its table")]
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!("{}", line(header.to_vec()));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}
