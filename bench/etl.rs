//! `weir-bench etl`: the 2M-row ETL workload, weir against DuckDB
//! (DESIGN.md §9: "SQL/ETL steps: within 1.3x of DuckDB on the same data and
//! query").
//!
//! Usage: `weir-bench etl [--rows N] [--repeat N] [--weir PATH] [--python PATH]
//! [--dir DIR] [--generate-only] [--without-export]`
//!
//! - `--rows N`: orders to generate (default 2,000,000); customers are
//!   always 50,000.
//! - `--dir DIR`: build the project in DIR and keep it (default: a temporary
//!   folder); data already generated there with the same `--rows` is reused.
//! - `--generate-only`: write the project and its data, print its folder,
//!   measure nothing (to run `weir` on it by hand).
//! - `--without-export`: leave out the final `export` step; the outputs are
//!   then not compared.
//!
//! Each sample runs `weir run etl` on a fresh state folder (`.weir` and
//! `out` removed: no cached dataset), then the DuckDB script
//! (`etl_duckdb.py`) on the same files, each as a child of this process
//! reaped with wait4(2): wall time from spawn to exit, CPU, peak RSS.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::etl_data;

const DUCKDB_SCRIPT: &str = include_str!("etl_duckdb.py");

/// Figures in DESIGN.md §9.
const WALL_BUDGET: f64 = 1.3;
const RSS_BUDGET: f64 = 1.0;

struct Options {
    weir: PathBuf,
    python: String,
    repeat: usize,
    rows: u64,
    dir: Option<PathBuf>,
    generate_only: bool,
    export: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>, weir: PathBuf) -> Result<Options> {
    let mut options = Options {
        weir,
        python: "python3".to_owned(),
        repeat: 3,
        rows: 2_000_000,
        dir: None,
        generate_only: false,
        export: true,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--weir" => options.weir = args.next().context("--weir PATH")?.into(),
            "--python" => options.python = args.next().context("--python PATH")?,
            "--repeat" => options.repeat = args.next().context("--repeat N")?.parse()?,
            "--rows" => options.rows = args.next().context("--rows N")?.parse()?,
            "--dir" => options.dir = Some(args.next().context("--dir DIR")?.into()),
            "--generate-only" => options.generate_only = true,
            "--without-export" => options.export = false,
            other => bail!("unknown argument `{other}` for `etl`; see the header of bench/etl.rs"),
        }
    }
    ensure!(options.repeat > 0, "--repeat must be at least 1");
    ensure!(options.rows > 0, "--rows must be at least 1");
    Ok(options)
}

/// The weir pipeline (issue 3's ETL example).
fn pipeline(export: bool) -> String {
    let mut yaml = String::from(
        "name: etl
description: Drop cancelled orders, join customers, revenue by country, segment and month.
steps:
  orders:
    load: { path: data/orders.csv }
  customers:
    load: { path: data/customers.csv }
  clean:
    sql: SELECT * FROM orders WHERE status <> 'cancelled'
    persist: false   # an intermediate step: runs inside revenue's plan
  revenue:
    sql: |
      SELECT o.country, c.segment, date_trunc('month', o.ts) AS month,
             sum(o.amount) AS revenue, count(*) AS orders
      FROM clean o JOIN customers c USING (customer_id)
      GROUP BY 1, 2, 3
",
    );
    if export {
        yaml.push_str("  report:\n    export: { input: revenue, path: out/revenue.csv }\n");
    }
    yaml
}

/// Writes the project (and its data, unless already there for `rows`).
fn write_project(dir: &Path, rows: u64, export: bool) -> Result<()> {
    let data = dir.join("data");
    let marker = data.join("generated");
    let stamp = format!("orders={rows} customers={} v1\n", etl_data::CUSTOMERS);
    if fs_err::read_to_string(&marker).ok().as_deref() != Some(stamp.as_str()) {
        let started = Instant::now();
        etl_data::generate(&data, rows)?;
        fs_err::write(&marker, &stamp)?;
        eprintln!(
            "generated {rows} orders and {} customers in {:.1} s",
            etl_data::CUSTOMERS,
            started.elapsed().as_secs_f64()
        );
    }
    fs_err::write(dir.join("weir.yaml"), "name: etl\n")?;
    fs_err::create_dir_all(dir.join("pipelines"))?;
    fs_err::write(dir.join("pipelines/etl.yaml"), pipeline(export))?;
    fs_err::write(dir.join("etl_duckdb.py"), DUCKDB_SCRIPT)?;
    Ok(())
}

pub fn main(args: impl Iterator<Item = String>, weir: PathBuf) -> Result<()> {
    let options = parse_args(args, weir)?;
    let temp;
    let dir = match &options.dir {
        Some(dir) => {
            fs_err::create_dir_all(dir)?;
            fs_err::canonicalize(dir)?
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    write_project(&dir, options.rows, options.export)?;
    if options.generate_only {
        print_line(&format!(
            "{}\n  weir --project {} run etl",
            dir.display(),
            dir.display()
        ));
        return Ok(());
    }
    ensure!(
        options.weir.is_file(),
        "no weir binary at `{}`; build it with `cargo build --release -p weir-cli` or pass --weir PATH",
        options.weir.display()
    );
    let duckdb_version = duckdb_version(&options.python)?;

    let mut samples = Vec::new();
    for i in 0..options.repeat {
        eprintln!("etl sample {}/{}", i + 1, options.repeat);
        samples.push(sample(&options, &dir)?);
    }
    report(&options, &duckdb_version, &samples);
    Ok(())
}

fn duckdb_version(python: &str) -> Result<String> {
    let out = Command::new(python)
        .args(["-c", "import duckdb; print(duckdb.__version__)"])
        .output()
        .with_context(|| format!("cannot run `{python}`"))?;
    ensure!(
        out.status.success(),
        "DuckDB's Python package is not installed for `{python}`: run bench/setup.sh\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One process: how long it ran, what it used, what it said.
struct Measured {
    status: ExitStatus,
    wall_s: f64,
    cpu_s: f64,
    max_rss_kib: u64,
    stdout: String,
    stderr: String,
}

/// One step of one weir run, from `weir show --json`.
struct StepTiming {
    step: String,
    /// Seconds from the run's start to the step's.
    start_s: f64,
    duration_s: f64,
    rows: Option<u64>,
}

struct Sample {
    weir: Measured,
    /// The run's own span, start to finish, as weir recorded it.
    run_wall_s: f64,
    steps: Vec<StepTiming>,
    duckdb: Measured,
    comparison: Comparison,
}

enum Comparison {
    NotCompared,
    Same { groups: usize },
    Mismatch { summary: String },
}

fn sample(options: &Options, dir: &Path) -> Result<Sample> {
    for stale in [".weir", "out"] {
        let path = dir.join(stale);
        if path.exists() {
            fs_err::remove_dir_all(&path)?;
        }
    }
    fs_err::create_dir_all(dir.join("out"))?;

    let weir_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&options.weir);
        cmd.arg("--project")
            .arg(dir)
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env_remove("WEIR_DATABASE_URL");
        cmd
    };
    let weir = measure(weir_cmd(&["run", "etl"]))?;
    ensure!(
        weir.status.success(),
        "`weir run etl` failed ({}):\n{}\n{}",
        weir.status,
        weir.stdout,
        weir.stderr
    );
    let id = weir
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .context("no run id in `weir run` output")?
        .to_owned();
    let show = weir_cmd(&["show", &id, "--json"]).output()?;
    ensure!(
        show.status.success(),
        "weir show failed: {}",
        String::from_utf8_lossy(&show.stderr)
    );
    let show: Value = serde_json::from_slice(&show.stdout)?;
    let run_wall_s =
        crate::seconds_between(&show["run"]["started_at"], &show["run"]["finished_at"])?;
    let mut steps = Vec::new();
    for task in show["tasks"].as_array().context("tasks")? {
        steps.push(StepTiming {
            step: task["step"].as_str().context("step")?.to_owned(),
            start_s: crate::seconds_between(&show["run"]["started_at"], &task["started_at"])?,
            duration_s: crate::seconds_between(&task["started_at"], &task["finished_at"])?,
            rows: task["value"]["rows"].as_u64(),
        });
    }

    let mut duckdb_cmd = Command::new(&options.python);
    duckdb_cmd
        .arg(dir.join("etl_duckdb.py"))
        .arg(dir.join("data/orders.csv"))
        .arg(dir.join("data/customers.csv"))
        .arg(dir.join("out/duckdb_revenue.csv"))
        .current_dir(dir);
    let duckdb = measure(duckdb_cmd)?;
    ensure!(
        duckdb.status.success(),
        "the DuckDB script failed ({}):\n{}",
        duckdb.status,
        duckdb.stderr
    );

    let comparison = if options.export {
        compare(
            &dir.join("out/revenue.csv"),
            &dir.join("out/duckdb_revenue.csv"),
        )?
    } else {
        Comparison::NotCompared
    };
    Ok(Sample {
        weir,
        run_wall_s,
        steps,
        duckdb,
        comparison,
    })
}

/// Runs `cmd` to completion, its output captured, reaping it with wait4 to
/// get its own CPU time and peak RSS (those of its waited-for descendants
/// included; the peak is the largest single process's, not a sum).
///
/// Caveat: Linux folds the spawning process's peak RSS into the child's at
/// exec after a vfork-style spawn, so a child lighter than this harness
/// (a few MiB) reports the harness's peak.
fn measure(mut cmd: Command) -> Result<Measured> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let pid = libc::pid_t::try_from(child.id())?;
    let (status, usage) = wait4(pid).context("wait4")?;
    let wall_s = started.elapsed().as_secs_f64();
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        status: ExitStatus::from_raw(status),
        wall_s,
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // KiB on Linux.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Reaps `pid`, returning its raw wait status and resource usage.
#[expect(
    unsafe_code,
    reason = "wait4(2) is the only way to get one child's CPU time and peak RSS; nix has no wrapper"
)]
fn wait4(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live for the
        // whole call; `rusage` is plain old data, so the zeroed value is
        // already initialised, and wait4 overwrites it on success. `pid` is
        // our own unreaped child (std's `Child` never waits for it: it is
        // dropped without `wait`), so no other process is affected.
        let (ret, rusage) = unsafe {
            let ret = libc::wait4(pid, &mut status, 0, usage.as_mut_ptr());
            (ret, usage.assume_init())
        };
        if ret == pid {
            return Ok((status, rusage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// The group key (country, segment, month) and its (revenue in cents,
/// orders), read from a CSV file with a header naming those columns.
type Groups = BTreeMap<(String, String, String), (i64, i64)>;

fn read_groups(path: &Path) -> Result<Groups> {
    let text = fs_err::read_to_string(path)?;
    let mut lines = text.lines();
    let split = |line: &str| -> Vec<String> {
        line.split(',')
            .map(|f| f.trim().trim_matches('"').to_owned())
            .collect()
    };
    let header = split(lines.next().unwrap_or_default());
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("`{}` has no `{name}` column", path.display()))
    };
    let [country, segment, month, revenue, orders] =
        ["country", "segment", "month", "revenue", "orders"].map(column);
    let (country, segment, month, revenue, orders) =
        (country?, segment?, month?, revenue?, orders?);
    let mut groups = Groups::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
        let fields = split(line);
        let field = |at: usize| {
            fields
                .get(at)
                .map(String::as_str)
                .with_context(|| format!("`{}` line {}: too few fields", path.display(), i + 2))
        };
        let cents = (field(revenue)?.parse::<f64>()? * 100.0).round() as i64;
        let count = field(orders)?.parse::<f64>()? as i64;
        let key = (
            field(country)?.to_owned(),
            field(segment)?.to_owned(),
            normalize_timestamp(field(month)?),
        );
        ensure!(
            groups.insert(key.clone(), (cents, count)).is_none(),
            "`{}`: group {key:?} appears twice",
            path.display()
        );
    }
    Ok(groups)
}

/// `2025-03-01T00:00:00`, `2025-03-01 00:00:00`, `2025-03-01T00:00:00Z`,
/// `2025-03-01` all as `2025-03-01 00:00:00`; anything else unchanged.
fn normalize_timestamp(value: &str) -> String {
    use chrono::{NaiveDate, NaiveDateTime};
    let bare = value
        .trim_end_matches('Z')
        .trim_end_matches("+00:00")
        .trim_end_matches("+00");
    let parsed = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(bare, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(bare, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        });
    parsed.map_or_else(
        || value.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn compare(weir_csv: &Path, duckdb_csv: &Path) -> Result<Comparison> {
    let weir = read_groups(weir_csv)?;
    let duckdb = read_groups(duckdb_csv)?;
    let mut differences = Vec::new();
    for (key, value) in &weir {
        match duckdb.get(key) {
            None => differences.push(format!("{key:?}: only in weir's output")),
            Some(other) if other != value => differences.push(format!(
                "{key:?}: weir has revenue {:.2} and {} orders, DuckDB {:.2} and {}",
                value.0 as f64 / 100.0,
                value.1,
                other.0 as f64 / 100.0,
                other.1
            )),
            Some(_) => {}
        }
    }
    for key in duckdb.keys().filter(|k| !weir.contains_key(*k)) {
        differences.push(format!("{key:?}: only in DuckDB's output"));
    }
    if differences.is_empty() {
        return Ok(Comparison::Same { groups: weir.len() });
    }
    eprintln!(
        "OUTPUT MISMATCH between `{}` and `{}` ({} of {} / {} groups):",
        weir_csv.display(),
        duckdb_csv.display(),
        differences.len(),
        weir.len(),
        duckdb.len()
    );
    for d in differences.iter().take(10) {
        eprintln!("  {d}");
    }
    Ok(Comparison::Mismatch {
        summary: format!(
            "MISMATCH: {} groups differ (weir {}, DuckDB {} groups)",
            differences.len(),
            weir.len(),
            duckdb.len()
        ),
    })
}

/// Median and minimum.
fn stat(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn report(options: &Options, duckdb_version: &str, samples: &[Sample]) {
    let label = if options.rows.is_multiple_of(1_000_000) {
        format!("etl {}M orders", options.rows / 1_000_000)
    } else {
        format!("etl {} orders", options.rows)
    };
    let mib = |kib: f64| kib / 1024.0;
    let (weir_wall, weir_wall_min) = stat(samples.iter().map(|s| s.weir.wall_s));
    let (duck_wall, duck_wall_min) = stat(samples.iter().map(|s| s.duckdb.wall_s));
    let (weir_rss, _) = stat(samples.iter().map(|s| s.weir.max_rss_kib as f64));
    let (duck_rss, _) = stat(samples.iter().map(|s| s.duckdb.max_rss_kib as f64));
    let (weir_cpu, _) = stat(samples.iter().map(|s| s.weir.cpu_s));
    let (duck_cpu, _) = stat(samples.iter().map(|s| s.duckdb.cpu_s));
    let (run_wall, _) = stat(samples.iter().map(|s| s.run_wall_s));
    let ratio = |a: f64, b: f64| a / b.max(1e-9);

    let mismatches: Vec<&str> = samples
        .iter()
        .filter_map(|s| match &s.comparison {
            Comparison::Mismatch { summary } => Some(summary.as_str()),
            _ => None,
        })
        .collect();
    let output = match (mismatches.first(), &samples[0].comparison) {
        (Some(summary), _) => vec![
            format!("{label}: output"),
            (*summary).to_owned(),
            "see stderr".to_owned(),
            "MISMATCH".to_owned(),
        ],
        (None, Comparison::Same { groups }) => vec![
            format!("{label}: output"),
            format!("{groups} groups"),
            format!("{groups} groups"),
            "same".to_owned(),
        ],
        (None, _) => vec![
            format!("{label}: output"),
            "not compared (--without-export)".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
        ],
    };
    let rows = vec![
        vec![
            format!("{label}: wall"),
            format!("{weir_wall:.3} s (min {weir_wall_min:.3})"),
            format!("{duck_wall:.3} s (min {duck_wall_min:.3})"),
            format!(
                "{:.2}x (budget {WALL_BUDGET:.2}x)",
                ratio(weir_wall, duck_wall)
            ),
        ],
        vec![
            format!("{label}: peak RSS"),
            format!("{:.0} MiB", mib(weir_rss)),
            format!("{:.0} MiB", mib(duck_rss)),
            format!(
                "{:.2}x (budget {RSS_BUDGET:.2}x)",
                ratio(weir_rss, duck_rss)
            ),
        ],
        vec![
            format!("{label}: CPU (user + sys)"),
            format!("{weir_cpu:.3} s"),
            format!("{duck_cpu:.3} s"),
            format!("{:.2}x", ratio(weir_cpu, duck_cpu)),
        ],
        vec![
            format!("{label}: weir run, start to finish"),
            format!("{run_wall:.3} s"),
            "-".to_owned(),
            "-".to_owned(),
        ],
        output,
    ];
    let reference = format!("reference (DuckDB {duckdb_version})");
    crate::print_table(&["workload", "weir", &reference, "ratio"], &rows);

    // Per step, in the order of the first sample's tasks.
    let mut step_rows = Vec::new();
    for step in &samples[0].steps {
        let timings = || {
            samples
                .iter()
                .filter_map(|s| s.steps.iter().find(|t| t.step == step.step))
        };
        let (start, _) = stat(timings().map(|t| t.start_s));
        let (duration, duration_min) = stat(timings().map(|t| t.duration_s));
        step_rows.push(vec![
            step.step.clone(),
            format!("{start:.3} s"),
            format!("{duration:.3} s (min {duration_min:.3})"),
            step.rows.map_or_else(|| "-".to_owned(), |r| r.to_string()),
        ]);
    }
    print_line("");
    crate::print_table(
        &["weir step", "starts at", "duration", "rows out"],
        &step_rows,
    );
}

#[expect(clippy::print_stdout, reason = "the harness's output is its table")]
fn print_line(line: &str) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_normalize_across_writers() {
        for value in [
            "2025-03-01T00:00:00",
            "2025-03-01 00:00:00",
            "2025-03-01T00:00:00Z",
            "2025-03-01T00:00:00.000",
            "2025-03-01 00:00:00+00",
            "2025-03-01",
        ] {
            assert_eq!(normalize_timestamp(value), "2025-03-01 00:00:00", "{value}");
        }
        assert_eq!(normalize_timestamp("March"), "March");
    }

    #[test]
    fn outputs_compare_by_group_whatever_the_column_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        fs_err::write(
            &a,
            "country,segment,month,revenue,orders\nUS,smb,2025-01-01T00:00:00,10.5,2\nDE,smb,2025-02-01T00:00:00,3.333,1\n",
        )
        .unwrap();
        fs_err::write(
            &b,
            "segment,country,month,orders,revenue\nsmb,DE,2025-02-01 00:00:00,1,3.33\nsmb,US,2025-01-01 00:00:00,2,10.500000001\n",
        )
        .unwrap();
        assert!(matches!(
            compare(&a, &b).unwrap(),
            Comparison::Same { groups: 2 }
        ));
        fs_err::write(
            &b,
            "segment,country,month,orders,revenue\nsmb,US,2025-01-01 00:00:00,2,10.51\n",
        )
        .unwrap();
        assert!(matches!(
            compare(&a, &b).unwrap(),
            Comparison::Mismatch { .. }
        ));
    }
}
