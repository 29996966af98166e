//! SQL semantics of `weir query`, as sqllogictest files: `tests/slt/*.slt`,
//! one test each, run against a lake built by the real binary.
//!
//! # The lake
//!
//! `tests/slt/project/` is copied to a temp folder and run four times:
//! 1. `weir run crm` with `namespace: acme` in `weir.yaml` and
//!    `data/customers.acme.csv` as `data/customers.csv`, so the store also
//!    holds `acme.crm.customers` (version 1), as a store shared by two
//!    namespaces does; both files are then put back;
//! 2. `weir run crm` → `default.crm.customers` version 1;
//! 3. `weir run sales` → `sales.orders` and `sales.paid` version 1;
//! 4. `data/orders.v2.csv` (one more row) becomes `data/orders.csv`, then
//!    `weir run sales` → version 2 of both.
//!
//! `tests/slt/README.md` lists what each dataset holds.
//!
//! # Records
//!
//! Every `statement` and `query` runs `weir --project DIR query SQL --format
//! csv`. Its CSV output becomes the rows: the header gives the number of
//! columns (every column is `DefaultColumnType::Any`; the letters after
//! `query` are checked for their count only, as CSV carries no types), an
//! empty field is `NULL`. weir's CSV writes NULL and `''` alike (an empty
//! field, or `""` when it is the row's only field), so `''` reads as `NULL`
//! here too.
//!
//! Exit code 1 or 2 is an error whose text is weir's whole stderr (the
//! miette rendering, no colours), which `statement error <regex>`,
//! `query error <regex>` and a multi-line `----` error match. Any other
//! exit code (101 = a bug in weir, a signal) fails the test at once.
//!
//! # Directive: `# weir:`
//!
//! A comment line `# weir: --version DATASET=N` pins a dataset for the
//! record right after the comment block (no blank line in between); more
//! `--version` pairs may follow on the same or further `# weir:` lines. The
//! pins are passed to `weir query` as they are, for that one record.
//! A directive with anything but `--version` pairs, or not followed by a
//! statement or query, fails the test.
//!
//! A failing record does not stop its file: the test reports every failing
//! record with sqllogictest's diff, then fails.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use sqllogictest::{DB, DBOutput, DefaultColumnType, Record, Runner};
use weir_test::{TestProject, repo_root};

#[test]
fn slt_naming() {
    run_slt("naming.slt");
}

#[test]
fn slt_versions() {
    run_slt("versions.slt");
}

#[test]
fn slt_semantics() {
    run_slt("semantics.slt");
}

/// The `tests/slt` folder.
fn slt_dir() -> std::path::PathBuf {
    repo_root().join("tests/slt")
}

/// Builds the lake described in the module docs.
fn lake() -> TestProject {
    let fixture = slt_dir().join("project");
    let project =
        TestProject::copy_of(env!("CARGO_BIN_EXE_weir"), &fixture).expect("copy the slt project");

    let weir_yaml = project.read("weir.yaml").expect("weir.yaml");
    let customers = project
        .read("data/customers.csv")
        .expect("data/customers.csv");
    project
        .write("weir.yaml", &format!("{weir_yaml}namespace: acme\n"))
        .expect("write weir.yaml");
    project
        .write(
            "data/customers.csv",
            &project
                .read("data/customers.acme.csv")
                .expect("data/customers.acme.csv"),
        )
        .expect("write data/customers.csv");
    run_pipeline(&project, "crm");
    project
        .write("weir.yaml", &weir_yaml)
        .expect("write weir.yaml");
    project
        .write("data/customers.csv", &customers)
        .expect("write data/customers.csv");

    run_pipeline(&project, "crm");
    run_pipeline(&project, "sales");
    project
        .write(
            "data/orders.csv",
            &project
                .read("data/orders.v2.csv")
                .expect("data/orders.v2.csv"),
        )
        .expect("write data/orders.csv");
    run_pipeline(&project, "sales");
    project
}

fn run_pipeline(project: &TestProject, pipeline: &str) {
    let out = project.weir(&["run", pipeline]).expect("run weir");
    assert!(
        out.status.success(),
        "`weir run {pipeline}` failed while building the slt lake:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs every record of `tests/slt/<file>`, then fails with all the failures.
fn run_slt(file: &str) {
    let path = slt_dir().join(file);
    let records = sqllogictest::parse_file::<DefaultColumnType>(&path)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));

    let project = Arc::new(lake());
    let pins = Arc::new(Mutex::new(Vec::new()));
    let mut runner = Runner::new({
        let project = project.clone();
        let pins = pins.clone();
        move || {
            std::future::ready(Ok::<_, QueryFailed>(Weir {
                project: project.clone(),
                pins: pins.clone(),
            }))
        }
    });
    runner.with_column_validator(|actual, expected| actual.len() == expected.len());

    let mut failures = Vec::new();
    let mut executed = 0;
    let mut pending: Vec<String> = Vec::new();
    for record in records {
        match &record {
            Record::Comment(lines) => {
                pending.extend(directive_args(&path, lines));
                continue;
            }
            Record::Statement { .. } | Record::Query { .. } => {
                *pins.lock().unwrap_or_else(PoisonError::into_inner) = std::mem::take(&mut pending);
                executed += 1;
            }
            Record::Halt { .. } => break,
            _ => {}
        }
        if !pending.is_empty() {
            let found = match &record {
                Record::Newline => "a blank line".to_owned(),
                other => format!("`{other}`"),
            };
            panic!(
                "{}: a `# weir:` directive ({}) must directly precede a statement or query, \
                 found {found}",
                path.display(),
                pending.join(" ")
            );
        }
        if let Err(e) = runner.run(record) {
            failures.push(e.display(false).to_string());
        }
        // A skipped record (`skipif`) leaves its pins unused: drop them.
        pins.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
    assert!(
        pending.is_empty(),
        "{}: a `# weir:` directive ({}) at the end of the file applies to nothing",
        path.display(),
        pending.join(" ")
    );
    assert!(executed > 0, "{} has no statement or query", path.display());
    assert!(
        failures.is_empty(),
        "{} of {executed} records of {} failed:\n\n{}",
        failures.len(),
        path.display(),
        failures.join("\n")
    );
}

/// The `weir query` arguments of the `# weir:` lines of a comment block.
fn directive_args(path: &Path, lines: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    for line in lines {
        let Some(directive) = line.trim_start().strip_prefix("weir:") else {
            continue;
        };
        let words: Vec<&str> = directive.split_whitespace().collect();
        let pairs = words.chunks(2);
        for pair in pairs {
            match pair {
                ["--version", pin] if pin.contains('=') => {
                    args.extend(["--version".to_owned(), (*pin).to_owned()]);
                }
                _ => panic!(
                    "{}: `#{line}`: a `# weir:` directive takes `--version DATASET=N` pairs only",
                    path.display()
                ),
            }
        }
        assert!(
            !words.is_empty(),
            "{}: `#{line}`: an empty `# weir:` directive",
            path.display()
        );
    }
    args
}

/// The real `weir` binary as a sqllogictest database: one process per
/// record.
struct Weir {
    project: Arc<TestProject>,
    /// `--version` arguments for the next record, set by the driver loop.
    pins: Arc<Mutex<Vec<String>>>,
}

/// `weir query` exited with 1 or 2; the text is its stderr.
#[derive(Debug)]
struct QueryFailed {
    stderr: String,
}

impl fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.stderr.trim_end())
    }
}

impl std::error::Error for QueryFailed {}

impl DB for Weir {
    type Error = QueryFailed;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryFailed> {
        let pins = self
            .pins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let dir = self.project.path().display().to_string();
        let mut args = vec!["--project", &dir, "query", sql, "--format", "csv"];
        args.extend(pins.iter().map(String::as_str));
        let out = self.project.weir(&args).expect("run weir");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(1 | 2) => {
                return Err(QueryFailed {
                    stderr: stderr.into_owned(),
                });
            }
            code => panic!(
                "`weir query` ended with {code:?} (not 0, 1 or 2) on\n{sql}\nwith {pins:?}\n\
                 --- stdout\n{stdout}--- stderr\n{stderr}"
            ),
        }
        let mut records = parse_csv(&stdout).into_iter();
        let Some(header) = records.next() else {
            return Ok(DBOutput::Rows {
                types: Vec::new(),
                rows: Vec::new(),
            });
        };
        let rows: Vec<Vec<String>> = records
            .map(|record| {
                assert_eq!(
                    record.len(),
                    header.len(),
                    "a CSV row of `weir query` has {} fields, its header {}:\n{stdout}",
                    record.len(),
                    header.len()
                );
                record
                    .into_iter()
                    .map(|field| {
                        if field.is_empty() {
                            "NULL".to_owned()
                        } else {
                            field
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; header.len()],
            rows,
        })
    }

    fn engine_name(&self) -> &str {
        "weir"
    }
}

/// Splits CSV text (RFC 4180: `"` quotes, `""` inside quotes is a quote,
/// quoted fields may hold commas and newlines) into records of fields.
/// The final line break ends the last record; an empty line before it is a
/// record of one empty field.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => record.push(std::mem::take(&mut field)),
            '\n' if !quoted => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            c => field.push(c),
        }
    }
    record.push(field);
    records.push(record);
    records
}

#[test]
fn slt_csv_parsing() {
    assert_eq!(
        parse_csv("a,b\n1,\n\"x,\"\"y\"\"\nz\",2\n"),
        vec![
            vec!["a".to_owned(), "b".to_owned()],
            vec!["1".to_owned(), String::new()],
            vec!["x,\"y\"\nz".to_owned(), "2".to_owned()],
        ]
    );
    assert_eq!(
        parse_csv("a\n\"\"\n\n"),
        vec![
            vec!["a".to_owned()],
            vec![String::new()],
            vec![String::new()]
        ]
    );
    assert!(parse_csv("").is_empty());
}
