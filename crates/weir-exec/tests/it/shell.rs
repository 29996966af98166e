use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use weir_exec::{ActionError, LogStream, Registry};

use crate::{Lines, context};

#[tokio::test]
async fn the_shell_kind_runs_through_the_registry() {
    let lines = Arc::new(Lines::default());
    let (cx, dir) = context(Arc::clone(&lines));
    let output = Registry::builtin()
        .run(
            "shell",
            json!("echo \"$WEIR_STEP $WEIR_PARAM_REGION\" > out.txt; echo done; echo warn >&2"),
            cx,
        )
        .await
        .unwrap();
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(output.value, None);
    assert!(output.metering.wall_s > 0.0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "notify eu west\n"
    );
    assert_eq!(lines.of(LogStream::Stdout), ["done"]);
    assert_eq!(lines.of(LogStream::Stderr), ["warn"]);
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_task() {
    let (cx, _dir) = context(Arc::default());
    let error = Registry::builtin()
        .run("shell", json!("exit 3"), cx)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ActionError::Failed { message, exit_code: Some(3), .. } if message == "exit code 3"),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), Some(3));
}

#[tokio::test]
async fn a_signal_fails_the_task() {
    let (cx, _dir) = context(Arc::default());
    let error = Registry::builtin()
        .run("shell", json!("kill -KILL $$"), cx)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "killed by signal SIGKILL (9)");
    assert_eq!(error.exit_code(), None);
}

#[tokio::test]
async fn the_task_timeout_applies() {
    let (mut cx, _dir) = context(Arc::default());
    cx.timeout = Some(Duration::from_millis(200));
    let error = Registry::builtin()
        .run("shell", json!("sleep 30"), cx)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "timed out after 0.200s");
}

#[tokio::test]
async fn cancelling_the_run_cancels_the_task() {
    let (cx, _dir) = context(Arc::default());
    let cancel = cx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let error = Registry::builtin()
        .run("shell", json!("sleep 30"), cx)
        .await
        .unwrap_err();
    assert!(matches!(error, ActionError::Cancelled { .. }), "{error:?}");
}

#[tokio::test]
async fn unknown_kinds_and_bad_specs_are_invalid_specs() {
    let registry = Registry::builtin();
    let (cx, _dir) = context(Arc::default());
    let error = registry
        .run("shel", json!("true"), cx.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ActionError::InvalidSpec { kind, message }
            if kind == "shel" && message == "unknown step kind `shel`; known kinds: shell"),
        "{error:?}"
    );
    let error = registry
        .run("shell", json!({"cmd": "true"}), cx)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ActionError::InvalidSpec { kind, .. } if kind == "shell"),
        "{error:?}"
    );
}
