use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_exec::process::{ProcessSpec, run_process, task_env};
use weir_exec::{ActionError, LogStream};

use crate::{Lines, bash, context, dies, read_pid};

#[tokio::test]
async fn stdout_and_stderr_are_streamed_line_by_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let lines = Lines::default();
    let script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf 'no newline'";
    let exit = run_process(&bash(script, dir.path()), &lines, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(exit.code, Some(0));
    assert_eq!(exit.signal, None);
    assert!(exit.success());
    assert_eq!(
        lines.of(LogStream::Stdout),
        ["out1", "out2", "out3", "no newline"]
    );
    assert_eq!(lines.of(LogStream::Stderr), ["err1", "err2", "err3"]);
    assert!(lines.of(LogStream::System).is_empty());
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let exit = run_process(&bash("exit 3", dir.path()), &Lines::default(), &cancel)
        .await
        .unwrap();
    assert_eq!((exit.code, exit.signal), (Some(3), None));
    assert_eq!(exit.to_string(), "exit code 3");

    let exit = run_process(
        &bash("kill -KILL $$", dir.path()),
        &Lines::default(),
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!((exit.code, exit.signal), (None, Some(9)));
    assert_eq!(exit.to_string(), "killed by signal SIGKILL (9)");
}

#[tokio::test]
async fn invalid_utf8_and_huge_lines_are_logged_lossily_and_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let lines = Lines::default();
    let script = r"printf 'a\377b\n'; head -c 200000 /dev/zero | tr '\0' x; echo; echo after";
    run_process(&bash(script, dir.path()), &lines, &CancellationToken::new())
        .await
        .unwrap();
    let out = lines.of(LogStream::Stdout);
    assert_eq!(out[0], "a\u{fffd}b");
    assert_eq!(out.last().unwrap(), "after");
    let chunks = &out[1..out.len() - 1];
    assert!(chunks.len() >= 4, "200000 bytes in {} chunks", chunks.len());
    assert!(
        chunks
            .iter()
            .all(|c| c.len() <= weir_exec::process::MAX_LINE_BYTES)
    );
    assert_eq!(chunks.concat(), "x".repeat(200_000));
}

#[tokio::test]
async fn metering_measures_the_childs_cpu_time() {
    let dir = tempfile::tempdir().unwrap();
    let script = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done";
    let exit = run_process(
        &bash(script, dir.path()),
        &Lines::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let m = exit.metering;
    assert!(m.cpu_user_s > 0.1, "{m:?}");
    assert!(m.wall_s >= m.cpu_user_s * 0.5, "{m:?}");
    assert!(m.max_rss_kib > 0, "{m:?}");
}

#[tokio::test]
async fn metering_measures_the_childs_peak_memory() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"python3 -c "b = bytearray(200 * 1024 * 1024)""#;
    let exit = run_process(
        &bash(script, dir.path()),
        &Lines::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(exit.code, Some(0));
    assert!(exit.metering.max_rss_kib > 150_000, "{:?}", exit.metering);
    assert!(exit.metering.rss_floor_kib > 0, "{:?}", exit.metering);
    assert!(exit.metering.rss_is_exact(), "{:?}", exit.metering);
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let spec = bash("sleep 300 & echo $! > grandchild.pid; wait", dir.path())
        .timeout(Some(Duration::from_millis(300)))
        .kill_grace(Duration::from_secs(2));
    let lines = Lines::default();
    let started = Instant::now();
    let error = run_process(&spec, &lines, &CancellationToken::new())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let ActionError::TimedOut { after, metering } = error else {
        panic!("expected a timeout, got {error:?}");
    };
    assert_eq!(after, Duration::from_millis(300));
    assert!(metering.wall_s >= 0.3, "{metering:?}");
    // bash dies of SIGTERM at once; the grace is an upper bound, not a wait.
    assert!(
        elapsed < Duration::from_millis(300) + Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert!(dies(read_pid(&pidfile).await), "the grandchild survived");
    let system = lines.of(LogStream::System);
    assert!(system[0].contains("timed out after 0.300s"), "{system:?}");
}

#[tokio::test]
async fn a_process_ignoring_sigterm_gets_sigkill_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let spec = bash(
        "trap '' TERM; sleep 30 & echo $! > child.pid; wait",
        dir.path(),
    )
    .timeout(Some(Duration::from_millis(200)))
    .kill_grace(Duration::from_millis(300));
    let lines = Lines::default();
    let error = run_process(&spec, &lines, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(error, ActionError::TimedOut { .. }), "{error:?}");
    assert!(error.metering().wall_s >= 0.5, "{:?}", error.metering());
    let system = lines.of(LogStream::System);
    assert_eq!(system.len(), 2, "{system:?}");
    assert!(system[1].contains("SIGKILL"), "{system:?}");
    assert!(dies(read_pid(&dir.path().join("child.pid")).await));
}

#[tokio::test]
async fn cancellation_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let spec = bash("sleep 300 & echo $! > grandchild.pid; wait", dir.path());
    let cancel = CancellationToken::new();
    let lines = Lines::default();
    let (result, ()) = tokio::join!(run_process(&spec, &lines, &cancel), async {
        read_pid(&pidfile).await;
        cancel.cancel();
    });
    let error = result.unwrap_err();
    assert!(matches!(error, ActionError::Cancelled { .. }), "{error:?}");
    assert!(error.metering().wall_s > 0.0);
    assert!(dies(read_pid(&pidfile).await), "the grandchild survived");
    assert!(lines.of(LogStream::System)[0].starts_with("cancelled"));

    // An already cancelled run does not start anything.
    let error = run_process(&bash("touch started", dir.path()), &lines, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(error, ActionError::Cancelled { .. }), "{error:?}");
    assert!(!dir.path().join("started").exists());
}

#[tokio::test]
async fn dropping_the_future_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let spec = bash(
        "echo $$ > main.pid; sleep 300 & echo $! > grandchild.pid; wait",
        dir.path(),
    );
    let (lines, cancel) = (Lines::default(), CancellationToken::new());
    let run = run_process(&spec, &lines, &cancel);
    let dropped = tokio::time::timeout(Duration::from_millis(500), run).await;
    assert!(
        dropped.is_err(),
        "the process should still have been running"
    );
    let main = read_pid(&dir.path().join("main.pid")).await;
    let grandchild = read_pid(&dir.path().join("grandchild.pid")).await;
    assert!(dies(main), "the main process survived");
    assert!(dies(grandchild), "the grandchild survived");
}

#[tokio::test]
async fn a_background_grandchild_holding_stdout_does_not_hang_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let spec = bash(
        "(sleep 300; echo never) & echo $! > bg.pid; echo main done",
        dir.path(),
    );
    let lines = Lines::default();
    // A hang guard, not a performance assertion: without the group kill this
    // would wait for `sleep 300`.
    let exit = tokio::time::timeout(
        Duration::from_secs(60),
        run_process(&spec, &lines, &CancellationToken::new()),
    )
    .await
    .expect("the task hung on its grandchild's pipe")
    .unwrap();
    assert_eq!(exit.code, Some(0));
    assert_eq!(lines.of(LogStream::Stdout), ["main done"]);
    assert!(dies(read_pid(&dir.path().join("bg.pid")).await));
}

#[tokio::test]
async fn the_environment_is_clean_and_carries_weir_variables() {
    // Set by cargo and nextest for the test binary; a task must not see it.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let lines = Arc::new(Lines::default());
    let (cx, _dir) = context(Arc::clone(&lines));
    let spec = ProcessSpec::new("bash", &cx.work_dir)
        .args(["-c", "env"])
        .env(task_env(&cx));
    let log = Lines::default();
    run_process(&spec, &log, &CancellationToken::new())
        .await
        .unwrap();
    let env: std::collections::BTreeMap<String, String> = log
        .of(LogStream::Stdout)
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let work_dir = cx.work_dir.to_str().unwrap();
    for (name, value) in [
        ("COLOR", "blue"),
        ("WEIR_RUN_ID", "42"),
        ("WEIR_TASK_ID", "7"),
        ("WEIR_PIPELINE", "sales"),
        ("WEIR_STEP", "notify"),
        ("WEIR_ATTEMPT", "1"),
        ("WEIR_NAMESPACE", "default"),
        ("WEIR_WORK_DIR", work_dir),
        ("WEIR_PARAM_MIN_AMOUNT", "2.5"),
        ("WEIR_PARAM_REGION", "eu west"),
        ("WEIR_PARAM_TAGS", r#"["a","b"]"#),
    ] {
        assert_eq!(
            env.get(name).map(String::as_str),
            Some(value),
            "{name} in {env:?}"
        );
    }
    assert_eq!(env.get("PATH"), std::env::var("PATH").ok().as_ref());
    // Only the allowlist, the environment's vars, weir's own and what bash
    // itself sets.
    let allowed = [
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
        "COLOR", "PWD", "SHLVL", "_",
    ];
    for name in env.keys() {
        assert!(
            allowed.contains(&name.as_str()) || name.starts_with("WEIR_"),
            "`{name}` leaked into the task's environment"
        );
    }
}

#[tokio::test]
async fn the_process_runs_in_its_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let lines = Lines::default();
    run_process(
        &bash("pwd -P", dir.path()),
        &lines,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let expected = dir.path().canonicalize().unwrap();
    assert_eq!(lines.of(LogStream::Stdout), [expected.to_str().unwrap()]);
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ProcessSpec::new("/nonexistent/weir-no-such-program", dir.path());
    let error = run_process(&spec, &Lines::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(error, ActionError::Spawn { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("`/nonexistent/weir-no-such-program`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_finished_process_leaves_no_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let lines = Lines::default();
    run_process(
        &bash("echo $$", dir.path()),
        &lines,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let pid: u32 = lines.of(LogStream::Stdout)[0].parse().unwrap();
    // Reaped by us, so there is not even a zombie left.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
