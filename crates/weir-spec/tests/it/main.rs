//! weir-spec against the golden projects in `tests/golden/check-*`: each
//! case must produce the code it is named after, `check-ok` none, and every
//! code in `CODES` must have a case.

use std::path::{Path, PathBuf};

use weir_spec::{ActionCatalog, ActionCheck, CODES, CheckOutput, Node, check_project};
use weir_types::Diagnostic;

/// `shell`, `sql` and `python`, each taking a string, and `load` taking a
/// map, like the real registry's. `sql` reports `FROM`/`JOIN` names with a
/// dot as reads of other pipelines (the real one parses the query).
struct TestCatalog;

impl ActionCatalog for TestCatalog {
    fn kinds(&self) -> Vec<&'static str> {
        vec!["shell", "sql", "python", "load"]
    }

    fn spec_schema(&self, _kind: &str) -> Option<schemars::Schema> {
        Some(schemars::schema_for!(String))
    }

    fn check(&self, kind: &str, spec: &Node) -> Result<ActionCheck, Vec<Diagnostic>> {
        if kind == "load" && spec.as_map().is_some() {
            return Ok(ActionCheck::default());
        }
        match spec.as_str() {
            Some(text) => {
                let words: Vec<&str> = text.split_whitespace().collect();
                let reads = words
                    .windows(2)
                    .filter(|w| {
                        kind == "sql"
                            && matches!(w[0].to_ascii_uppercase().as_str(), "FROM" | "JOIN")
                            && w[1].contains('.')
                    })
                    .map(|w| (w[1].to_owned(), spec.span))
                    .collect();
                Ok(ActionCheck {
                    depends_on: Vec::new(),
                    reads,
                })
            }
            None => Err(vec![
                Diagnostic::error("invalid-type", format!("`{kind}` takes a string"))
                    .with_span(spec.span),
            ]),
        }
    }

    fn produces_dataset(&self, kind: &str) -> bool {
        matches!(kind, "sql" | "python" | "load")
    }

    fn deferrable(&self, kind: &str) -> bool {
        kind == "sql"
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// Runs `weir check [pipelines...]` as the case's `command` file says
/// (default: `check`), the way the golden runner drives the binary.
fn check_case(dir: &Path) -> CheckOutput {
    let command = std::fs::read_to_string(dir.join("command")).unwrap_or_else(|_| "check".into());
    let args: Vec<String> = command
        .split_whitespace()
        .skip_while(|w| *w != "check")
        .skip(1)
        .map(String::from)
        .collect();
    check_project(dir, &TestCatalog, &args)
}

fn cases() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(golden_dir())
        .expect("tests/golden")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let code = name.strip_prefix("check-")?.to_string();
            Some((code, e.path()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_code_has_a_golden_case() {
    let cases = cases();
    let missing: Vec<&str> = CODES
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !cases.iter().any(|(code, _)| code == c))
        .collect();
    assert!(
        missing.is_empty(),
        "no tests/golden/check-<code> for {missing:?}"
    );
}

#[test]
fn each_case_fails_with_its_code_only() {
    let mut wrong = Vec::new();
    for (code, dir) in cases() {
        // Cases of codes owned by an action kind (e.g. weir-exec's
        // `empty-command`) need the real registry: weir-cli's golden runner
        // covers them.
        if code == "ok" || code == "many" || !weir_spec::is_known_code(&code) {
            continue;
        }
        let out = check_case(&dir);
        let codes: Vec<&str> = out.diagnostics.iter().map(|d| d.code.as_str()).collect();
        if codes.is_empty() || codes.iter().any(|c| *c != code) {
            wrong.push(format!("check-{code} produced {:#?}", out.diagnostics));
        }
        for d in &out.diagnostics {
            // Those point at files with no text to show (absent, not UTF-8, not read).
            let textless = ["missing-project", "unreadable-file", "duplicate-pipeline"];
            if let Some(file) = &d.file
                && out.sources.get(file).is_none()
                && !textless.contains(&code.as_str())
            {
                wrong.push(format!("check-{code}: `{file}` is not in the source map"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn ok_case_has_no_diagnostics_and_a_plan_per_pipeline() {
    let out = check_case(&golden_dir().join("check-ok"));
    assert_eq!(out.diagnostics, Vec::<Diagnostic>::new());
    assert_eq!(out.plans.keys().collect::<Vec<_>>(), ["hello", "tidy"]);
    let hello = &out.plans["hello"];
    let order: Vec<&str> = hello.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order, ["greet", "count", "report"]);
    assert_eq!(out.config.environment.as_deref(), Some("dev"));
}

#[test]
fn many_case_reports_everything_at_once() {
    let out = check_case(&golden_dir().join("check-many"));
    let mut codes: Vec<&str> = out.diagnostics.iter().map(|d| d.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert!(codes.len() >= 5, "{codes:?}");
    let files: std::collections::BTreeSet<_> = out
        .diagnostics
        .iter()
        .filter_map(|d| d.file.as_deref())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(out.plans.is_empty());
}
