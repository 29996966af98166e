//! Snapshots of real `weir` runs (insta): what a user sees, with filters for
//! what changes between runs (temp paths, times, durations, memory, the OS
//! user). Run ids need no filter: each test has a fresh project, so its
//! first run is run 1.
//!
//! Update with `INSTA_UPDATE=always cargo nextest run -p weir-cli -E
//! 'test(snapshots::)'`, then read every changed `.snap` file.

use std::process::Output;

use weir_test::TestProject;

use crate::{project, run_id};

/// A deterministic chain: with `--concurrency 1` its events, logs and
/// tables come out in one order only. Each step writes to one stream only:
/// stdout and stderr are separate pipes, so the order of lines a step writes
/// to both is not defined.
const ETL: &str = r#"name: etl
steps:
  extract:
    shell: echo "extracted 3 rows"
  transform:
    needs: [extract]
    shell: echo "a warning" >&2
  load:
    needs: [transform]
    shell: echo "loaded"
"#;

/// `text` made safe to use as a literal in a filter's regex.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Filters for `p`'s output; `user` is the OS user recorded on runs.
fn settings(p: &TestProject, user: Option<&str>) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_literal(&p.path().display().to_string()), "[PROJECT]");
    s.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[DATETIME]");
    // The elapsed time prefix of a progress line is right-aligned.
    s.add_filter(r"\[ *\d+\.\d+s\]", "[[T]]");
    // A table pads a cell to its column's widest value: replacing the value
    // and its padding keeps the following columns stable whatever the
    // machine measured.
    s.add_filter(r"\b(\d+\.\d+s|\d+m\d\ds) {2,}", "[T]  ");
    s.add_filter(r"\b(\d+\.\d+s|\d+m\d\ds)\b", "[T]");
    s.add_filter(r"\b\d+(\.\d+)? (KiB|MiB|GiB) {2,}", "[MEM]  ");
    s.add_filter(r"\b\d+(\.\d+)? (KiB|MiB|GiB)\b", "[MEM]");
    if let Some(user) = user {
        let user = regex_literal(user);
        s.add_filter(&format!(r"by {user},"), "by [USER],");
        s.add_filter(&format!(r"(?m)  {user}$"), "  [USER]");
    }
    s
}

/// Exit code, stdout and stderr of a command, as one text.
fn render(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn weir(p: &TestProject, args: &[&str]) -> Output {
    // Help is wrapped to the terminal's width; there is no terminal here,
    // and a COLUMNS inherited from the caller must not change the text.
    p.command(args)
        .env("COLUMNS", "100")
        .output()
        .unwrap_or_else(|e| panic!("cannot run weir {args:?}: {e}"))
}

#[test]
fn run_runs_show_and_logs_of_a_small_pipeline() {
    let p = project();
    p.write("pipelines/etl.yaml", ETL).unwrap();
    let run = weir(&p, &["run", "etl", "--concurrency", "1"]);
    assert!(run.status.success(), "{}", render(&run));
    let id = run_id(&run.stdout);
    assert_eq!(id, 1, "the first run of a fresh project");
    let user = p.show_json(id).unwrap()["run"]["created_by"]
        .as_str()
        .expect("created_by")
        .to_owned();
    let id = id.to_string();

    settings(&p, Some(&user)).bind(|| {
        insta::assert_snapshot!("run_plain", render(&run));
        insta::assert_snapshot!("runs", render(&weir(&p, &["runs"])));
        insta::assert_snapshot!("show", render(&weir(&p, &["show", &id])));
        insta::assert_snapshot!("logs", render(&weir(&p, &["logs", &id])));
    });
}

#[test]
fn check_success_line() {
    let p = project();
    p.write("pipelines/etl.yaml", ETL).unwrap();
    settings(&p, None).bind(|| {
        insta::assert_snapshot!("check_ok", render(&weir(&p, &["check"])));
    });
}

#[test]
fn init_output() {
    let p = project();
    let dir = p.path().join("fresh");
    let out = weir(&p, &["init", dir.to_str().expect("utf-8 path")]);
    settings(&p, None).bind(|| {
        insta::assert_snapshot!("init", render(&out));
    });
}

#[test]
fn help_of_weir_and_weir_run() {
    let p = project();
    settings(&p, None).bind(|| {
        insta::assert_snapshot!("help", render(&weir(&p, &["--help"])));
        insta::assert_snapshot!("run_help", render(&weir(&p, &["run", "--help"])));
    });
}

#[test]
fn show_of_a_run_that_does_not_exist() {
    let p = project();
    settings(&p, None).bind(|| {
        insta::assert_snapshot!("show_missing_run", render(&weir(&p, &["show", "999"])));
    });
}

/// `weir --help` opens with what weir is (the doc comment of the CLI's
/// arguments), not with the binary crate's internal description from
/// Cargo.toml.
#[test]
fn help_describes_weir_to_its_users() {
    let p = project();
    let out = weir(&p, &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.starts_with("weir: a data processing engine and pipeline orchestrator"),
        "{help}"
    );
}
