//! `weir logs --follow` while the run is in progress.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::project;

/// How long to wait for something that should happen almost at once before
/// calling it a hang. Not a performance bound: only keeps a broken build
/// from blocking the test run.
const HANG: Duration = Duration::from_secs(30);

fn wait_with_deadline(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit by itself");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The step prints a line, then waits for the test to open a gate (instead
/// of sleeping a fixed time, so `--follow` provably runs while the step
/// does), then prints another. `--follow` prints both and exits 0 by itself
/// once the run has ended.
#[test]
fn logs_follow_prints_lines_as_they_come_and_exits_when_the_run_ends() {
    let p = project();
    p.write(
        "pipelines/talk.yaml",
        r#"name: talk
steps:
  talk:
    shell: |
      echo "first line"
      for i in $(seq 600); do [ -e "$WEIR_PROJECT_DIR/gate" ] && break; sleep 0.05; done
      echo "second line"
"#,
    )
    .unwrap();
    let mut run = p
        .command(&["run", "talk"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut run_out = BufReader::new(run.stdout.take().expect("stdout"));
    let mut first = String::new();
    run_out.read_line(&mut first).unwrap();
    let id = crate::run_id(first.as_bytes()).to_string();

    // The run exists (its id was printed after it was committed): follow it.
    let mut follow = p
        .command(&["logs", &id, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let follow_out = follow.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(follow_out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(HANG)
            .unwrap_or_else(|_| panic!("`weir logs --follow` printed no first line: {seen:?}"));
        let done = line.contains("first line");
        seen.push(line);
        if done {
            break;
        }
    }
    // The step is held at the gate: the run is still going, and so is
    // `--follow`.
    assert_eq!(
        p.show_json(id.parse().unwrap()).unwrap()["run"]["state"],
        "running"
    );
    assert!(
        follow.try_wait().unwrap().is_none(),
        "`--follow` exited while the run was running"
    );

    p.write("gate", "").unwrap();
    let status = wait_with_deadline(&mut follow, "`weir logs --follow`");
    reader.join().expect("reader thread");
    seen.extend(lines.try_iter());
    let mut stderr = String::new();
    follow
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(
        seen,
        ["[talk#1] first line", "[talk#1] second line"],
        "each line once, in order"
    );

    let run_status = wait_with_deadline(&mut run, "`weir run`");
    let mut rest = String::new();
    run_out.read_to_string(&mut rest).unwrap();
    assert!(run_status.success(), "{first}{rest}");
}
