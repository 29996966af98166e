//! Run behaviour end to end through the real binary: parallel branches,
//! retries, timeouts, upstream failures, Ctrl-C, SIGKILL + resume.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{project, run_id};

fn tasks(show: &Value) -> Vec<Value> {
    show["tasks"].as_array().cloned().unwrap_or_default()
}

/// step → states of its attempts in order.
fn attempts(show: &Value) -> HashMap<String, Vec<String>> {
    let mut by_step: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for t in tasks(show) {
        by_step
            .entry(t["step"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push((
                t["attempt"].as_i64().unwrap_or_default(),
                t["state"].as_str().unwrap_or_default().to_owned(),
            ));
    }
    by_step
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v.into_iter().map(|(_, s)| s).collect())
        })
        .collect()
}

fn ts(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("timestamp")).expect("RFC 3339")
}

#[test]
fn mixed_pipeline_retries_times_out_and_blocks_only_downstream() {
    let p = project();
    p.write(
        "pipelines/mixed.yaml",
        r#"name: mixed
steps:
  start:
    shell: echo start
  left:
    needs: [start]
    shell: sleep 0.4 && echo left
  right:
    needs: [start]
    shell: sleep 0.4 && echo right
  flaky:
    retries: { max: 2, backoff: 100ms }
    shell: |
      n=$(cat "$WEIR_PROJECT_DIR/flaky.count" 2>/dev/null || echo 0)
      n=$((n + 1)); echo $n > "$WEIR_PROJECT_DIR/flaky.count"
      echo "attempt $n"; [ "$n" -ge 2 ]
  slow:
    timeout: 1s
    shell: sleep 30
  broken:
    shell: echo "about to fail" >&2; exit 3
  after_broken:
    needs: [broken]
    shell: echo never
  join:
    needs: [left, right, flaky]
    shell: echo joined
"#,
    )
    .unwrap();
    let started = Instant::now();
    let out = p.weir(&["run", "mixed", "--concurrency", "4"]).unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed run exits 1:\n{stdout}"
    );
    assert!(
        took < Duration::from_secs(20),
        "timeout did not kill `sleep 30`"
    );

    let show = p.show_json(run_id(&out.stdout)).unwrap();
    assert_eq!(show["run"]["state"], "failed");
    let states = attempts(&show);
    let s = |step: &str| states[step].clone();
    assert_eq!(s("start"), ["succeeded"]);
    assert_eq!(s("left"), ["succeeded"]);
    assert_eq!(s("right"), ["succeeded"]);
    assert_eq!(
        s("flaky"),
        ["failed", "succeeded"],
        "flaky succeeds on attempt 2"
    );
    assert_eq!(
        s("join"),
        ["succeeded"],
        "an independent branch keeps running"
    );
    assert_eq!(s("slow"), ["failed"]);
    assert_eq!(s("broken"), ["failed"]);
    assert_eq!(s("after_broken"), ["upstream_failed"]);
    assert_eq!(p.read("flaky.count").unwrap().trim(), "2");

    let by_step: HashMap<String, Value> = tasks(&show)
        .into_iter()
        .map(|t| {
            (
                format!("{}#{}", t["step"].as_str().unwrap(), t["attempt"]),
                t,
            )
        })
        .collect();
    assert!(
        by_step["slow#1"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{:?}",
        by_step["slow#1"]["error"]
    );
    assert_eq!(by_step["broken#1"]["exit_code"], 3);
    // left and right ran at the same time (concurrency 4).
    assert!(ts(&by_step["left#1"]["started_at"]) < ts(&by_step["right#1"]["finished_at"]));
    assert!(ts(&by_step["right#1"]["started_at"]) < ts(&by_step["left#1"]["finished_at"]));
    // The retry waited for its backoff.
    assert!(ts(&by_step["flaky#2"]["started_at"]) > ts(&by_step["flaky#1"]["finished_at"]));
    // Metering is recorded for every task that ran a process.
    let m = &by_step["left#1"]["metering"];
    assert!(m["wall_s"].as_f64().unwrap() >= 0.35, "{m}");
    assert!(m["max_rss_kib"].as_u64().unwrap() > 0, "{m}");

    // The summary shows the failure with its last log lines.
    assert!(
        stdout.contains("step `broken` failed (attempt 1): exit code 3"),
        "{stdout}"
    );
    assert!(stdout.contains("  | about to fail"), "{stdout}");
    assert!(stdout.contains("weir run --resume"), "{stdout}");

    // Logs are stored per attempt.
    let logs = p
        .weir(&["logs", &show["run"]["id"].to_string(), "flaky"])
        .unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.contains("[flaky#1] attempt 1"), "{logs}");
    assert!(logs.contains("[flaky#2] attempt 2"), "{logs}");
}

#[test]
fn params_and_environment_reach_templates_and_processes() {
    let p = project();
    p.write("weir.yaml", "name: test\nenvironment: dev\n")
        .unwrap();
    p.write("environments/dev.yaml", "vars:\n  REGION: eu-west\n")
        .unwrap();
    p.write(
        "pipelines/p.yaml",
        r#"name: p
params:
  n: { type: int, default: 3 }
  who: { type: string }
steps:
  show:
    shell: |
      echo "templ n={{ params.n }} who={{ params.who }} region={{ env.vars.REGION }} run={{ run.id }}"
      echo "env n=$WEIR_PARAM_N who=$WEIR_PARAM_WHO region=$REGION"
      echo "home-secret=${LEAKED_SECRET:-unset}"
"#,
    )
    .unwrap();
    let missing = p.weir(&["run", "p"]).unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("who"),
        "a missing required param is named: {}",
        String::from_utf8_lossy(&missing.stderr)
    );

    let out = p
        .command(&["run", "p", "--param", "who=ana", "--param", "n=7"])
        .env("LEAKED_SECRET", "s3cr3t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let id = run_id(&out.stdout).to_string();
    let logs = String::from_utf8_lossy(&p.weir(&["logs", &id]).unwrap().stdout).to_string();
    assert!(
        logs.contains(&format!("templ n=7 who=ana region=eu-west run={id}")),
        "{logs}"
    );
    assert!(logs.contains("env n=7 who=ana region=eu-west"), "{logs}");
    assert!(
        logs.contains("home-secret=unset"),
        "the task environment is clean: {logs}"
    );

    let bad = p
        .weir(&["run", "p", "--param", "who=x", "--param", "n=seven"])
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("seven"));
}

/// SIGKILL `weir run` mid-run, then `--resume`: the run finishes and no step
/// that had succeeded runs again (checked by side-effect counters).
#[test]
fn resume_after_sigkill_never_reruns_a_succeeded_step() {
    let p = project();
    let mut steps = String::from("name: chain\nsteps:\n");
    for i in 1..=6 {
        steps.push_str(&format!("  s{i}:\n"));
        if i > 1 {
            steps.push_str(&format!("    needs: [s{}]\n", i - 1));
        }
        steps.push_str(&format!(
            "    shell: sleep 0.3; echo s{i} >> \"$WEIR_PROJECT_DIR/effects\"\n"
        ));
    }
    p.write("pipelines/chain.yaml", &steps).unwrap();
    let mut child = p
        .command(&["run", "chain", "--concurrency", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = p.read("effects").map(|e| e.lines().count()).unwrap_or(0);
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the run made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let killed = child.wait_with_output().unwrap();
    let id = run_id(&killed.stdout);
    let before = p.show_json(id).unwrap();
    assert_eq!(
        before["run"]["state"], "running",
        "a killed run stays resumable"
    );
    let succeeded_before: Vec<String> = tasks(&before)
        .iter()
        .filter(|t| t["state"] == "succeeded")
        .map(|t| t["step"].as_str().unwrap().to_owned())
        .collect();
    assert!(succeeded_before.len() >= 2, "{before}");

    let resumed = p.weir(&["run", "--resume", &id.to_string()]).unwrap();
    assert!(
        resumed.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&resumed.stdout),
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = p.show_json(id).unwrap();
    assert_eq!(after["run"]["state"], "succeeded");
    let effects = p.read("effects").unwrap();
    for i in 1..=6 {
        let step = format!("s{i}");
        let runs = effects.lines().filter(|l| *l == step).count();
        assert!(runs >= 1, "{step} never ran: {effects}");
        if succeeded_before.contains(&step) {
            assert_eq!(runs, 1, "{step} had succeeded but ran again: {effects}");
        }
    }
    // Succeeded steps kept their single attempt.
    let states = attempts(&after);
    for step in &succeeded_before {
        assert_eq!(states[step], ["succeeded"], "{step}");
    }
}

/// SIGINT (Ctrl-C) cancels: children killed, steps and run `cancelled`.
#[test]
fn ctrl_c_cancels_the_run_and_kills_its_processes() {
    let p = project();
    p.write(
        "pipelines/long.yaml",
        r#"name: long
steps:
  sleeper:
    shell: sleep 300 & echo $! > "$WEIR_PROJECT_DIR/child.pid"; wait
  later:
    needs: [sleeper]
    shell: echo never
"#,
    )
    .unwrap();
    let child = p
        .command(&["run", "long"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while p
        .read("child.pid")
        .map(|s| s.trim().is_empty())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = p.read("child.pid").unwrap().trim().to_owned();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let id = run_id(&out.stdout);
    let show = p.show_json(id).unwrap();
    assert_eq!(show["run"]["state"], "cancelled");
    let states = attempts(&show);
    assert_eq!(states["sleeper"], ["cancelled"]);
    assert_eq!(states["later"], ["cancelled"]);
    assert!(
        process_ends(&pid, Duration::from_secs(5)),
        "the step's background child {pid} survived"
    );
}

#[test]
fn check_reports_every_problem_and_run_refuses_an_invalid_pipeline() {
    let p = project();
    p.write(
        "pipelines/bad.yaml",
        "name: bad\nsteps:\n  a:\n    shell: echo {{ params.nope }}\n  b:\n    needs: [zz]\n    shell: echo\n",
    )
    .unwrap();
    let check = p.weir(&["check"]).unwrap();
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("weir::undefined-variable"), "{stderr}");
    assert!(stderr.contains("weir::unknown-step"), "{stderr}");
    assert!(stderr.contains("pipelines/bad.yaml:4:"), "{stderr}");

    let run = p.weir(&["run", "bad"]).unwrap();
    assert_eq!(run.status.code(), Some(1));
    let runs = p.weir(&["runs"]).unwrap();
    assert!(String::from_utf8_lossy(&runs.stdout).contains("no runs yet"));
}

#[test]
fn init_creates_a_project_that_runs() {
    let p = project();
    let dir = p.path().join("fresh");
    let out = p.weir(&["init", dir.to_str().unwrap()]).unwrap();
    assert!(out.status.success());
    let run = p
        .command(&["run", "sales"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = run_id(&run.stdout);
    let report = fs_err::read_to_string(dir.join(format!("out/run-{id}/report.txt"))).unwrap();
    assert!(report.starts_with("Top 5 countries by revenue"), "{report}");
    assert_eq!(report.lines().count(), 6, "{report}");
    // The data pipeline: CSVs become datasets, SQL aggregates them, the
    // lake answers queries over the result.
    let data = p
        .command(&["run", "revenue"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        data.status.success(),
        "{}",
        String::from_utf8_lossy(&data.stdout)
    );
    let query = p
        .command(&[
            "query",
            "SELECT count(*) AS countries, sum(orders) AS orders FROM revenue.ranking",
            "--format",
            "csv",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    // 8 countries; 1,762 paid or shipped orders of at least 5 in data/orders.csv.
    assert_eq!(
        String::from_utf8_lossy(&query.stdout),
        "countries,orders\n8,1762\n"
    );
    // A second init into the same folder is refused.
    let again = p.weir(&["init", dir.to_str().unwrap()]).unwrap();
    assert_eq!(again.status.code(), Some(1));
}

/// Whether the process is gone (or a zombie: killed, waiting to be reaped by
/// whoever inherited it) within `within`.
fn process_ends(pid: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // `pid (comm) STATE ...`; comm may contain spaces, STATE follows the last `)`.
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        if stat.is_empty() || state == Some(Some('Z')) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes of a task whose `weir run` was SIGKILLed live on in their
/// own process group; `--resume` kills them before starting the new attempt,
/// so two attempts of a step never overlap.
#[test]
fn resume_kills_the_orphaned_processes_of_an_interrupted_attempt() {
    let p = project();
    p.write(
        "pipelines/orphan.yaml",
        r#"name: orphan
steps:
  long:
    shell: |
      if [ "$WEIR_ATTEMPT" = 1 ]; then
        sleep 300 & echo $! > "$WEIR_PROJECT_DIR/orphan.pid"; wait
      fi
      echo "attempt $WEIR_ATTEMPT done"
"#,
    )
    .unwrap();
    let mut child = p
        .command(&["run", "orphan"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while p
        .read("orphan.pid")
        .map(|s| s.trim().is_empty())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = p.read("orphan.pid").unwrap().trim().to_owned();
    // A user's process that merely sits in the task's directory (no
    // WEIR_RUN_ID of this run in its environment) must survive the resume.
    let mut bystander = std::process::Command::new("/bin/sleep")
        .arg("300")
        .current_dir(p.path().join(".weir/work/1/long.1"))
        .env_clear()
        .spawn()
        .unwrap();
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    let id = run_id(&killed.stdout);
    assert!(
        !process_ends(&pid, Duration::from_millis(300)),
        "the task's process should outlive a SIGKILLed weir (its own process group)"
    );

    let resumed = p.weir(&["run", "--resume", &id.to_string()]).unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    assert!(
        process_ends(&pid, Duration::from_secs(5)),
        "orphan {pid} survived the resume"
    );
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "a process that is not one of the run's tasks was killed"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    let show = p.show_json(id).unwrap();
    assert_eq!(attempts(&show)["long"], ["failed", "succeeded"]);
    let first = tasks(&show)
        .into_iter()
        .find(|t| t["attempt"] == 1)
        .unwrap();
    let error = first["error"].as_str().unwrap();
    assert!(
        error.contains("interrupted") && error.contains("killed"),
        "{error}"
    );
}
