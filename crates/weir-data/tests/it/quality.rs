//! Contracts, checks, the `check` kind, `rename`/`cast`, sampling and
//! anonymization, through the real `load`, `sql` and `check` actions on
//! real files and a blob store on disk.

use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, SchemaRef};
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use weir_data::{
    CheckAction, CheckStepSpec, Format, LoadAction, LoadSpec, SqlAction, SqlSpec, format_batches,
    read_dataset, schema_from_json,
};
use weir_exec::{Action, ActionError, DatasetOutput, TaskContext, TaskOutput};
use weir_spec::{
    AnonymizeSpec, CheckSpec, ColumnContract, ColumnType, Contract, ContractsMode, StepData,
};

use crate::{Fixture, assert_contains, dataset_rows, input};

// ---------------------------------------------------------------- helpers

fn message(err: ActionError) -> String {
    match err {
        ActionError::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn load_spec(value: serde_json::Value) -> LoadSpec {
    serde_json::from_value(value).unwrap()
}

async fn run_load(cx: TaskContext, value: serde_json::Value) -> Result<TaskOutput, ActionError> {
    LoadAction.run(load_spec(value), cx).await
}

/// A contract `schemas/<name>.yaml` from `(column, rules)` pairs, rules as
/// written in YAML (`{"type": "int64", "nullable": false, ...}`).
fn contract(name: &str, columns: &[(&str, serde_json::Value)]) -> Contract {
    Contract {
        name: name.to_owned(),
        file: format!("schemas/{name}.yaml"),
        columns: columns
            .iter()
            .map(|(column, rules)| ColumnContract {
                name: (*column).to_owned(),
                ty: ColumnType::parse(rules["type"].as_str().unwrap()).unwrap(),
                nullable: rules.get("nullable").is_none_or(|v| v.as_bool().unwrap()),
                unique: rules.get("unique").is_some_and(|v| v.as_bool().unwrap()),
                min: rules.get("min").cloned(),
                max: rules.get("max").cloned(),
                values: rules.get("values").map(|v| v.as_array().unwrap().clone()),
                pii: false,
            })
            .collect(),
    }
}

fn checks(value: serde_json::Value) -> Vec<CheckSpec> {
    serde_json::from_value(value).unwrap()
}

fn data(contract: Option<Contract>, checks: Vec<CheckSpec>) -> StepData {
    StepData {
        contract,
        checks,
        ..StepData::default()
    }
}

/// The dataset's column names and types.
fn types(dataset: &DatasetOutput) -> Vec<(String, DataType)> {
    schema_from_json(&dataset.schema)
        .unwrap()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

fn ty(name: &str, data_type: DataType) -> (String, DataType) {
    (name.to_owned(), data_type)
}

/// The dataset as CSV, rows in stored order.
async fn stored_csv(fx: &Fixture, dataset: &DatasetOutput) -> String {
    let (schema, batches) = read_dataset(&fx.blobs, &dataset.files).await.unwrap();
    format_batches(&schema, &batches, Format::Csv).unwrap()
}

/// Every file under `datasets/` in the blob store on disk.
fn stored_files(fx: &Fixture) -> Vec<std::path::PathBuf> {
    let dir = fx.blob_path("datasets");
    if !dir.is_dir() {
        return Vec::new();
    }
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn logged(fx: &Fixture) -> String {
    fx.log.0.lock().unwrap().join("\n")
}

/// How many of `needles` occur in `haystack`.
fn count_present(haystack: &str, needles: impl IntoIterator<Item = String>) -> usize {
    needles
        .into_iter()
        .filter(|n| haystack.contains(n.as_str()))
        .count()
}

// -------------------------------------------------------------- contracts

/// Six rows breaking `orders_contract` once per rule (see the comments).
const BAD_ORDERS: &str = "\
id,email,amount,status,qty,note
1,a@x.io,10,paid,1,n1
2,,20,paid,2,n2
2,c@x.io,-5,shipped,3,n3
4,d@x.io,150,paid,x4,n4
5,e@x.io,30,lost,5,n5
6,f@x.io,40,paid,oops,n6
";
// id 2 twice (unique: 2 rows); email null once (nullable: false: 1 row);
// amount -5 and 150 (min 0, max 100: 2 rows); status `lost` (values: 1
// row); qty `x4` and `oops` (not int64: 2 values); `region` missing;
// `note` extra.

fn orders_contract() -> Contract {
    contract(
        "orders",
        &[
            (
                "id",
                json!({"type": "int64", "nullable": false, "unique": true}),
            ),
            ("email", json!({"type": "string", "nullable": false})),
            ("amount", json!({"type": "float64", "min": 0, "max": 100})),
            (
                "status",
                json!({"type": "string", "values": ["paid", "shipped"]}),
            ),
            ("qty", json!({"type": "int64"})),
            ("region", json!({"type": "string"})),
        ],
    )
}

/// The violations of [`BAD_ORDERS`], in the order they are reported.
const BAD_ORDERS_VIOLATIONS: [&str; 7] = [
    "column `region` (string) is missing",
    "column `note` is not in the contract (`schemas/orders.yaml`)",
    "column `qty`: 2 values are not valid int64 (stored as null)",
    "check `id: unique` failed: 2 of 6 rows violate it",
    "check `email: nullable: false` failed: 1 of 6 rows violate it",
    "check `amount: min: 0, max: 100` failed: 2 of 6 rows violate it",
    "check `status: values` failed: 1 of 6 rows violate it",
];

#[tokio::test]
async fn a_strict_contract_fails_the_load_naming_every_violation_with_its_count() {
    let fx = Fixture::on_disk();
    fx.file("data/orders.csv", BAD_ORDERS);
    let mut cx = fx.context("orders");
    cx.data = data(Some(orders_contract()), Vec::new());
    cx.environment.contracts = ContractsMode::Strict;
    let err = message(
        run_load(cx, json!({"path": "data/orders.csv"}))
            .await
            .unwrap_err(),
    );
    assert!(
        err.starts_with("the output breaks contract `schemas/orders.yaml` (7 problems):\n"),
        "{err}"
    );
    for violation in BAD_ORDERS_VIOLATIONS {
        assert_contains(&err, &format!("  - {violation}"));
    }
    // The offending rows are shown: both out-of-range amounts, the lost
    // status, the duplicated id's two notes.
    for shown in ["-5.0", "150.0", "lost", "n2", "n3"] {
        assert_contains(&err, shown);
    }
    assert_contains(&err, "hint: fix the data or the contract");
    assert!(
        stored_files(&fx).is_empty(),
        "a broken contract stores nothing"
    );
}

#[tokio::test]
async fn a_warn_contract_records_one_warning_per_violation_and_stores_the_contract_types() {
    let fx = Fixture::on_disk();
    fx.file("data/orders.csv", BAD_ORDERS);
    let mut cx = fx.context("orders");
    cx.data = data(Some(orders_contract()), Vec::new());
    cx.environment.contracts = ContractsMode::Warn;
    let out = run_load(cx, json!({"path": "data/orders.csv"}))
        .await
        .unwrap();
    let expected: Vec<String> = BAD_ORDERS_VIOLATIONS
        .iter()
        .map(|v| format!("contract `orders`: {v}"))
        .collect();
    assert_eq!(out.warnings, expected);
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 6);
    // The contract's order and types (cast from the text CSV columns are
    // read as), then the extra column; `region` stays missing.
    assert_eq!(
        types(&dataset),
        [
            ty("id", DataType::Int64),
            ty("email", DataType::Utf8),
            ty("amount", DataType::Float64),
            ty("status", DataType::Utf8),
            ty("qty", DataType::Int64),
            ty("note", DataType::Utf8),
        ]
    );
    // What does not cast is stored as null.
    assert_eq!(
        stored_csv(&fx, &dataset).await,
        "id,email,amount,status,qty,note\n\
         1,a@x.io,10.0,paid,1,n1\n\
         2,,20.0,paid,2,n2\n\
         2,c@x.io,-5.0,shipped,3,n3\n\
         4,d@x.io,150.0,paid,,n4\n\
         5,e@x.io,30.0,lost,5,n5\n\
         6,f@x.io,40.0,paid,,n6\n"
    );
    // The log has the details, offending rows included.
    let log = logged(&fx);
    assert_contains(
        &log,
        "warning: the output breaks contract `schemas/orders.yaml` (7 problems):",
    );
    assert_contains(&log, "lost");
}

#[tokio::test]
async fn clean_data_meets_its_contract_without_a_warning() {
    for mode in [ContractsMode::Strict, ContractsMode::Warn] {
        let fx = Fixture::on_disk();
        fx.file(
            "data/orders.csv",
            "id,email,amount,status,qty,region\n\
             1,a@x.io,0,paid,1,eu\n\
             2,b@x.io,100,shipped,2,\n\
             3,c@x.io,55.5,paid,,us\n",
        );
        let mut cx = fx.context("orders");
        cx.data = data(Some(orders_contract()), Vec::new());
        cx.environment.contracts = mode;
        let out = run_load(cx, json!({"path": "data/orders.csv"}))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e:?}"));
        assert!(out.warnings.is_empty(), "{mode:?}: {:?}", out.warnings);
        let dataset = out.dataset.unwrap();
        assert_eq!(
            types(&dataset),
            [
                ty("id", DataType::Int64),
                ty("email", DataType::Utf8),
                ty("amount", DataType::Float64),
                ty("status", DataType::Utf8),
                ty("qty", DataType::Int64),
                ty("region", DataType::Utf8),
            ]
        );
        assert_eq!(
            stored_csv(&fx, &dataset).await,
            "id,email,amount,status,qty,region\n\
             1,a@x.io,0.0,paid,1,eu\n\
             2,b@x.io,100.0,shipped,2,\n\
             3,c@x.io,55.5,paid,,us\n"
        );
        assert!(!logged(&fx).contains("warning"), "{}", logged(&fx));
    }
}

#[tokio::test]
async fn a_string_contract_column_keeps_the_leading_zeros_of_zip_codes() {
    let fx = Fixture::on_disk();
    fx.file("data/places.csv", "id,zip\n1,00123\n2,98765\n3,01000\n");
    let zip_contract = contract(
        "places",
        &[
            ("id", json!({"type": "int64"})),
            ("zip", json!({"type": "string"})),
        ],
    );

    // The control: inferred, the codes are numbers and the zeros are lost.
    let inferred = run_load(fx.context("places"), json!({"path": "data/places.csv"}))
        .await
        .unwrap()
        .dataset
        .unwrap();
    assert_eq!(types(&inferred)[1], ty("zip", DataType::Int64));
    assert_eq!(
        stored_csv(&fx, &inferred).await,
        "id,zip\n1,123\n2,98765\n3,1000\n"
    );

    let mut cx = fx.context("places");
    cx.data = data(Some(zip_contract.clone()), Vec::new());
    let out = run_load(cx, json!({"path": "data/places.csv"}))
        .await
        .unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let dataset = out.dataset.unwrap();
    assert_eq!(
        types(&dataset),
        [ty("id", DataType::Int64), ty("zip", DataType::Utf8)]
    );
    assert_eq!(
        stored_csv(&fx, &dataset).await,
        "id,zip\n1,00123\n2,98765\n3,01000\n"
    );

    // The contract names the column after `rename`: the file's `code`.
    fx.file("data/renamed.csv", "id,code\n1,00123\n");
    let mut cx = fx.context("places");
    cx.data = data(Some(zip_contract), Vec::new());
    let out = run_load(
        cx,
        json!({"path": "data/renamed.csv", "rename": {"code": "zip"}}),
    )
    .await
    .unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert_eq!(
        stored_csv(&fx, &out.dataset.unwrap()).await,
        "id,zip\n1,00123\n"
    );
}

// ------------------------------------------------------------------ checks

/// Five rows, each with a `tag` so a message shows which rows it lists.
const BAD_ROWS: &str = "\
tag,id,email,status,amount
r1,1,a@x.io,paid,10
r2,2,,paid,20
r3,2,c@x.io,lost,-3
r4,4,d@x.io,paid,500
r5,5,e@x.io,shipped,30
";

const CLEAN_ROWS: &str = "\
tag,id,email,status,amount
r1,1,a@x.io,paid,10
r2,2,b@x.io,paid,20
r3,3,c@x.io,shipped,0
r4,4,d@x.io,paid,100
r5,5,e@x.io,shipped,30
";

/// Each check kind with the text of its failure on [`BAD_ROWS`] and the
/// tags of the rows it shows.
fn every_check_kind() -> Vec<(serde_json::Value, &'static str, &'static [&'static str])> {
    vec![
        (
            json!({"not_null": ["email", "status"]}),
            "check `not_null(email, status)` failed: 1 of 5 rows violate it",
            &["r2"],
        ),
        (
            json!({"unique": "id"}),
            "check `unique(id)` failed: 2 of 5 rows violate it",
            &["r2", "r3"],
        ),
        (
            json!({"accepted_values": {"column": "status", "values": ["paid", "shipped"]}}),
            "check `accepted_values(status)` failed: 1 of 5 rows violate it",
            &["r3"],
        ),
        (
            json!({"range": {"column": "amount", "min": 0, "max": 100}}),
            "check `range(amount)` failed: 2 of 5 rows violate it",
            &["r3", "r4"],
        ),
        (
            json!({"row_count": {"min": 6}}),
            "check `row_count` failed: 5 rows, fewer than the minimum 6",
            &[],
        ),
        (
            json!({"row_count": {"max": 4}}),
            "check `row_count` failed: 5 rows, more than the maximum 4",
            &[],
        ),
        (
            json!({"expr": "amount < 400 AND status <> 'lost'"}),
            "check `expr: amount < 400 AND status <> 'lost'` failed: 2 of 5 rows violate it",
            &["r3", "r4"],
        ),
    ]
}

#[tokio::test]
async fn every_check_kind_passes_on_clean_data() {
    let fx = Fixture::on_disk();
    fx.file("data/rows.csv", CLEAN_ROWS);
    let mut all: Vec<serde_json::Value> = every_check_kind()
        .into_iter()
        .map(|(check, _, _)| check)
        .collect();
    // The row counts are set to fail on five rows: on the clean five they
    // must allow five (the bounds are inclusive).
    all[4] = json!({"row_count": {"min": 5}});
    all[5] = json!({"row_count": {"max": 5}});
    let mut cx = fx.context("rows");
    cx.data = data(None, checks(json!(all)));
    let out = run_load(cx, json!({"path": "data/rows.csv"}))
        .await
        .unwrap();
    assert_eq!(out.dataset.unwrap().rows, 5);
    let log = logged(&fx);
    for check in checks(json!(all)) {
        assert_contains(&log, &format!("check `{}` passed", check.describe()));
    }
}

#[tokio::test]
async fn every_check_kind_fails_on_bad_data_with_its_count_and_rows() {
    let fx = Fixture::on_disk();
    fx.file("data/rows.csv", BAD_ROWS);
    for (check, failure, tags) in every_check_kind() {
        let mut cx = fx.context("rows");
        cx.data = data(None, checks(json!([check])));
        let err = message(
            run_load(cx, json!({"path": "data/rows.csv"}))
                .await
                .unwrap_err(),
        );
        let expected = format!("checks failed: 1 of 1\n  - {failure}");
        assert!(err.starts_with(&expected), "{check}: {err}");
        if tags.is_empty() {
            assert!(!err.contains("offending rows"), "{check}: {err}");
        } else {
            assert_contains(&err, "\n    offending rows:\n");
            assert!(!err.contains("first"), "{check}: {err}");
        }
        for tag in ["r1", "r2", "r3", "r4", "r5"] {
            assert_eq!(
                err.contains(tag),
                tags.contains(&tag),
                "{check}: row {tag} in\n{err}"
            );
        }
    }
    assert!(
        stored_files(&fx).is_empty(),
        "a failed check stores nothing"
    );
}

#[tokio::test]
async fn several_failed_checks_are_all_reported() {
    let fx = Fixture::on_disk();
    fx.file("data/rows.csv", BAD_ROWS);
    let mut cx = fx.context("rows");
    cx.data = data(
        None,
        checks(json!([{"unique": "id"}, {"not_null": "tag"}, {"expr": "amount < 400"}])),
    );
    let err = message(
        run_load(cx, json!({"path": "data/rows.csv"}))
            .await
            .unwrap_err(),
    );
    assert!(err.starts_with("checks failed: 2 of 3\n"), "{err}");
    assert_contains(&err, "check `unique(id)` failed: 2 of 5 rows violate it");
    assert_contains(
        &err,
        "check `expr: amount < 400` failed: 1 of 5 rows violate it",
    );
    assert!(!err.contains("not_null(tag)"), "{err}");
}

#[tokio::test]
async fn a_check_on_a_sql_step_shows_the_first_10_of_25_offending_rows() {
    let fx = Fixture::on_disk();
    let mut csv = String::from("tag,n\n");
    for n in 1..=30 {
        csv.push_str(&format!("row-{n:02},{n}\n"));
    }
    fx.file("data/numbers.csv", csv);
    let numbers = run_load(fx.context("numbers"), json!({"path": "data/numbers.csv"}))
        .await
        .unwrap()
        .dataset
        .unwrap();
    let mut cx = fx.context("big");
    cx.inputs
        .insert("numbers".to_owned(), input("numbers", &numbers));
    cx.data = data(None, checks(json!([{"expr": "n > 25"}])));
    let err = message(
        SqlAction
            .run(
                SqlSpec("SELECT tag, n * 1 AS n FROM numbers".to_owned()),
                cx.clone(),
            )
            .await
            .unwrap_err(),
    );
    assert!(
        err.starts_with(
            "checks failed: 1 of 1\n  - check `expr: n > 25` failed: 25 of 30 rows violate it\n    first 10 offending rows:\n"
        ),
        "{err}"
    );
    let violating = count_present(&err, (1..=25).map(|n| format!("row-{n:02}")));
    assert_eq!(violating, 10, "{err}");
    let passing = count_present(&err, (26..=30).map(|n| format!("row-{n:02}")));
    assert_eq!(passing, 0, "{err}");

    // The same step with the check met.
    cx.data = data(None, checks(json!([{"expr": "n > 0"}])));
    let out = SqlAction
        .run(SqlSpec("SELECT tag, n FROM numbers".to_owned()), cx)
        .await
        .unwrap();
    assert_eq!(out.dataset.unwrap().rows, 30);
}

#[tokio::test]
async fn a_check_naming_an_unknown_column_fails_the_step_listing_the_columns() {
    let fx = Fixture::on_disk();
    fx.file("data/rows.csv", CLEAN_ROWS);
    let mut cx = fx.context("rows");
    cx.data = data(None, checks(json!([{"not_null": "emial"}])));
    let err = message(
        run_load(cx, json!({"path": "data/rows.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(
        &err,
        "check `not_null(emial)` names column `emial`, which the data does not have",
    );
    assert_contains(
        &err,
        "hint: columns are `tag`, `id`, `email`, `status`, `amount`",
    );
}

// ------------------------------------------------------- the `check` kind

#[tokio::test]
async fn the_check_kind_passes_and_fails_on_a_loaded_dataset() {
    let fx = Fixture::on_disk();
    fx.file("data/rows.csv", BAD_ROWS);
    let rows = run_load(fx.context("rows"), json!({"path": "data/rows.csv"}))
        .await
        .unwrap()
        .dataset
        .unwrap();
    let spec = |checks: serde_json::Value| -> CheckStepSpec {
        serde_json::from_value(json!({"input": "rows", "checks": checks})).unwrap()
    };
    let mut cx = fx.context("gate");
    cx.inputs.insert("rows".to_owned(), input("rows", &rows));

    let passing = spec(json!([{"not_null": "tag"}, {"row_count": {"min": 5, "max": 5}}]));
    assert_eq!(CheckAction.inputs(&passing), ["rows"]);
    let out = CheckAction.run(passing, cx.clone()).await.unwrap();
    assert_eq!(out.value, Some(json!({"checks": 2, "rows": 5})));
    assert!(out.dataset.is_none(), "a check step stores no dataset");
    assert_contains(&logged(&fx), "check `not_null(tag)` passed");

    let failing = spec(json!([
        {"not_null": "tag"},
        {"accepted_values": {"column": "status", "values": ["paid", "shipped"]}},
        {"range": {"column": "amount", "max": 100}},
    ]));
    let err = message(CheckAction.run(failing, cx.clone()).await.unwrap_err());
    assert!(
        err.starts_with("checks on `rows` (default.sales.rows@1) failed: 2 of 3\n"),
        "{err}"
    );
    assert_contains(
        &err,
        "  - check `accepted_values(status)` failed: 1 of 5 rows violate it\n    offending rows:\n",
    );
    assert_contains(
        &err,
        "  - check `range(amount)` failed: 1 of 5 rows violate it",
    );
    assert_contains(&err, "r3");
    assert_contains(&err, "r4");
    assert!(!err.contains("r1") && !err.contains("r5"), "{err}");

    // An input that is not there.
    let missing: CheckStepSpec =
        serde_json::from_value(json!({"input": "nope", "checks": [{"not_null": "tag"}]})).unwrap();
    let err = message(CheckAction.run(missing, cx).await.unwrap_err());
    assert_contains(&err, "step `nope` produced no dataset to check");
}

// ------------------------------------------------ rename, cast and sample

#[tokio::test]
async fn load_renames_then_casts() {
    let fx = Fixture::on_disk();
    fx.file(
        "data/customers.csv",
        "cust_id,amount,joined\n007,10.5,2024-01-31\n010,3,2024-02-01\n",
    );
    let out = run_load(
        fx.context("customers"),
        json!({
            "path": "data/customers.csv",
            "rename": {"cust_id": "customer_id"},
            "cast": {"customer_id": "string", "amount": "decimal(12, 2)", "joined": "timestamp"},
        }),
    )
    .await
    .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(
        types(&dataset),
        [
            ty("customer_id", DataType::Utf8),
            ty("amount", DataType::Decimal128(12, 2)),
            ty(
                "joined",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
            ),
        ]
    );
    // `007` is read as text (the cast applies to the file's `cust_id`), so
    // its zeros stay.
    assert_eq!(
        stored_csv(&fx, &dataset).await,
        "customer_id,amount,joined\n007,10.50,2024-01-31T00:00:00\n010,3.00,2024-02-01T00:00:00\n"
    );

    // The same from NDJSON, whose values are typed before `cast:`.
    fx.file(
        "data/customers.jsonl",
        "{\"cust_id\": 7, \"amount\": \"10.5\"}\n{\"cust_id\": 10, \"amount\": \"3\"}\n",
    );
    let out = run_load(
        fx.context("customers"),
        json!({
            "path": "data/customers.jsonl",
            "rename": {"cust_id": "customer_id"},
            "cast": {"customer_id": "string", "amount": "float64"},
        }),
    )
    .await
    .unwrap();
    let dataset = out.dataset.unwrap();
    // DataFusion reads JSON keys in name order.
    assert_eq!(
        types(&dataset),
        [
            ty("amount", DataType::Float64),
            ty("customer_id", DataType::Utf8),
        ]
    );
    assert_eq!(
        stored_csv(&fx, &dataset).await,
        "amount,customer_id\n10.5,7\n3.0,10\n"
    );
}

#[tokio::test]
async fn rename_and_cast_errors_name_the_column_and_the_value() {
    let fx = Fixture::on_disk();
    fx.file("data/c.csv", "cust_id,amount\n1,10\n2,ten\n");
    fx.file(
        "data/c.jsonl",
        "{\"cust_id\": 1, \"amount\": \"10\"}\n{\"cust_id\": 2, \"amount\": \"ten\"}\n",
    );

    let err = message(
        run_load(
            fx.context("c"),
            json!({"path": "data/c.csv", "rename": {"cust": "customer_id"}}),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err,
        "`rename` names column `cust`, which the files do not have\nhint: columns are `cust_id`, `amount`"
    );

    // `cast` uses the names after `rename`.
    let err = message(
        run_load(
            fx.context("c"),
            json!({"path": "data/c.csv", "rename": {"cust_id": "customer_id"}, "cast": {"cust_id": "string"}}),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err,
        "`cast` names column `cust_id`, which the data does not have (after `rename`)\nhint: columns are `customer_id`, `amount`"
    );

    // A value that does not convert fails the load, naming it.
    let err = message(
        run_load(
            fx.context("c"),
            json!({"path": "data/c.csv", "cast": {"amount": "int64"}}),
        )
        .await
        .unwrap_err(),
    );
    assert_contains(&err, "cannot cast column `amount` from Utf8 to Int64");
    assert_contains(&err, "'ten'");
    let err = message(
        run_load(
            fx.context("c"),
            json!({"path": "data/c.jsonl", "cast": {"amount": "int64"}}),
        )
        .await
        .unwrap_err(),
    );
    assert_contains(&err, "cannot cast column `amount` from Utf8 to Int64");
    assert_contains(&err, "'ten'");
    assert!(stored_files(&fx).is_empty());
}

/// `cast:` is how a user fixes a CSV column's type, so a value that does
/// not convert must be named with its column, and the hint must not blame
/// type inference.
#[tokio::test]
async fn a_csv_value_that_does_not_cast_names_its_column() {
    let fx = Fixture::on_disk();
    fx.file("data/c.csv", "cust_id,amount\n1,10\n2,ten\n");
    let err = message(
        run_load(
            fx.context("c"),
            json!({"path": "data/c.csv", "cast": {"amount": "int64"}}),
        )
        .await
        .unwrap_err(),
    );
    assert_contains(&err, "'ten'");
    assert_contains(&err, "`amount`");
    assert!(!err.contains("inferred"), "{err}");
}

#[tokio::test]
async fn a_contract_on_a_sql_step_casts_within_a_type_family_only() {
    let fx = Fixture::on_disk();
    fx.file(
        "data/rows.csv",
        "id,day,n\n1,2024-03-01,5\n2,2023-12-31,6\n",
    );
    let rows = run_load(fx.context("rows"), json!({"path": "data/rows.csv"}))
        .await
        .unwrap()
        .dataset
        .unwrap();
    let sql = "SELECT CAST(id AS INT) AS id, day, CAST(n AS DOUBLE) AS n FROM rows";
    let run = |contract: Contract, mode: ContractsMode| {
        let mut cx = fx.context("typed");
        cx.inputs.insert("rows".to_owned(), input("rows", &rows));
        cx.data = data(Some(contract), Vec::new());
        cx.environment.contracts = mode;
        SqlAction.run(SqlSpec(sql.to_owned()), cx)
    };

    // Int32 → int64, Float64 → decimal: same family, cast; the date range
    // compares dates.
    let widened = contract(
        "typed",
        &[
            ("id", json!({"type": "int64"})),
            ("day", json!({"type": "date", "min": "2024-01-01"})),
            ("n", json!({"type": "decimal(10, 2)"})),
        ],
    );
    let out = run(widened, ContractsMode::Warn).await.unwrap();
    assert_eq!(
        out.warnings,
        ["contract `typed`: check `day: min: \"2024-01-01\"` failed: 1 of 2 rows violate it"]
    );
    let dataset = out.dataset.unwrap();
    assert_eq!(
        types(&dataset),
        [
            ty("id", DataType::Int64),
            ty("day", DataType::Date32),
            ty("n", DataType::Decimal128(10, 2)),
        ]
    );
    assert_eq!(
        stored_csv(&fx, &dataset).await,
        "id,day,n\n1,2024-03-01,5.00\n2,2023-12-31,6.00\n"
    );

    // A number is not a date, nor a date text.
    let wrong = contract(
        "typed",
        &[
            ("id", json!({"type": "date"})),
            ("day", json!({"type": "string"})),
            ("n", json!({"type": "float64"})),
        ],
    );
    let err = message(run(wrong, ContractsMode::Strict).await.unwrap_err());
    assert!(
        err.starts_with("the output breaks contract `schemas/typed.yaml` (2 problems):\n"),
        "{err}"
    );
    assert_contains(&err, "  - column `id` is Int32, the contract says date");
    assert_contains(&err, "  - column `day` is Date32, the contract says string");
}

#[tokio::test]
async fn an_environment_sample_keeps_the_first_rows_of_a_glob() {
    let fx = Fixture::on_disk();
    fx.file("landing/part-1.csv", "id,file\n1,a\n2,a\n");
    fx.file("landing/part-2.csv", "id,file\n3,b\n4,b\n");
    fx.file("landing/part-3.csv", "id,file\n5,c\n6,c\n");
    let mut cx = fx.context("parts");
    cx.environment.name = "dev".to_owned();
    cx.environment.sample = Some(3);
    let out = run_load(cx, json!({"path": "landing/part-*.csv"}))
        .await
        .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 3);
    assert_eq!(out.value, Some(json!({"rows": 3})));
    // The first rows in file order, not any three.
    assert_eq!(stored_csv(&fx, &dataset).await, "id,file\n1,a\n2,a\n3,b\n");
    assert_contains(
        &logged(&fx),
        "sampling: kept the first 3 rows (`sample: 3` in environment `dev`)",
    );

    // Without a sample, all six.
    let out = run_load(fx.context("parts"), json!({"path": "landing/part-*.csv"}))
        .await
        .unwrap();
    assert_eq!(out.dataset.unwrap().rows, 6);
}

// ------------------------------------------------------------- anonymize

const SALT_SECRET: &str = "PII_SALT";
const SALT_VALUE: &str = "s3cret-salt-value-for-tests";

const PEOPLE: &str = "\
id,email,name,card,born,city,ref_card,joined
1,ann.smith@example.com,Ann Smithson,4111111111111111,1985-03-14,Springfield,4222222222222222,2020-05-17
2,bob.jones@example.org,Bob Jonesworth,5500005555555559,1990-11-02,Springfield,4222222222222222,2020-05-17
3,ann.smith@example.com,Ann Smithson,4012888888881881,1979-07-30,Springfield,4222222222222222,2020-05-17
";

fn people_rules() -> Vec<(String, AnonymizeSpec)> {
    serde_json::from_value(json!([
        ["email", "hash"],
        ["name", "drop"],
        ["card", {"mask": 4}],
        ["born", {"generalize": "year"}],
    ]))
    .unwrap()
}

/// The token `anonymize: hash` should store: HMAC-SHA256 keyed with the
/// salt, as 32 hex characters.
fn token(value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SALT_VALUE.as_bytes()).unwrap();
    mac.update(value.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, as Date32 stores it.
fn days(date: &str) -> i32 {
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    i32::try_from((date - epoch).num_days()).unwrap()
}

/// Everything a Parquet file holds, as bytes to search: the file as stored
/// (footer, page headers and statistics are not compressed) and every page
/// of every column chunk *decompressed*. Dataset files are ZSTD-compressed
/// (`write_dataset`), so a value inside a data or dictionary page does not
/// appear as such in the file's bytes: grepping the file alone would pass
/// whether or not the value were stored. The page reader undoes the
/// compression, so the search sees the values as encoded (plain or
/// dictionary), and the controls below prove that it finds them.
fn searchable_bytes(file: &Path) -> Vec<Vec<u8>> {
    let mut out = vec![std::fs::read(file).unwrap()];
    let reader = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap();
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).unwrap();
        for c in 0..group.num_columns() {
            for page in group.get_column_page_reader(c).unwrap() {
                out.push(page.unwrap().buffer().to_vec());
            }
        }
    }
    out
}

fn occurs(blobs: &[Vec<u8>], needle: &[u8]) -> bool {
    blobs
        .iter()
        .any(|blob| blob.windows(needle.len()).any(|w| w == needle))
}

fn anonymizing_context(fx: &Fixture) -> TaskContext {
    let mut cx = fx.context("people");
    cx.data.anonymize = people_rules();
    cx.environment.hash_salt = Some(SALT_SECRET.to_owned());
    cx.environment.secrets = vec![SALT_SECRET.to_owned()];
    cx.secrets
        .insert(SALT_SECRET.to_owned(), SALT_VALUE.to_owned());
    cx
}

#[tokio::test]
async fn anonymized_values_never_reach_the_blob_store() {
    let fx = Fixture::on_disk();
    fx.file("data/people.csv", PEOPLE);
    let out = run_load(anonymizing_context(&fx), json!({"path": "data/people.csv"}))
        .await
        .unwrap();
    let dataset = out.dataset.unwrap();

    // What is stored: tokens, masks and years; `name` is gone.
    let (schema, batches): (SchemaRef, Vec<RecordBatch>) =
        read_dataset(&fx.blobs, &dataset.files).await.unwrap();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["id", "email", "card", "born", "city", "ref_card", "joined"]
    );
    assert_eq!(schema.field(3).data_type(), &DataType::Date32);
    let ann = token("ann.smith@example.com");
    let bob = token("bob.jones@example.org");
    assert_eq!(ann.len(), 32);
    assert_ne!(ann, bob);
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        [
            "id,email,card,born,city,ref_card,joined".to_owned(),
            format!("1,{ann},************1111,1985-01-01,Springfield,4222222222222222,2020-05-17"),
            format!("2,{bob},************5559,1990-01-01,Springfield,4222222222222222,2020-05-17"),
            format!("3,{ann},************1881,1979-01-01,Springfield,4222222222222222,2020-05-17"),
        ]
    );
    // The birth dates were read as dates, so their raw form in a page is
    // a little-endian day count, not text.
    let born = batches[0].column(3).as_primitive::<Date32Type>();
    assert_eq!(born.value(0), days("1985-01-01"));

    // Not one raw value in any byte of any stored file, compressed or not.
    let files = stored_files(&fx);
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = searchable_bytes(&files[0]);
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for text in [
        "ann.smith@example.com",
        "bob.jones@example.org",
        "ann.smith",
        "bob.jones",
        "Ann Smithson",
        "Bob Jonesworth",
        "Smithson",
        "Jonesworth",
        // The card numbers, and the digits the mask hides.
        "4111111111111111",
        "5500005555555559",
        "4012888888881881",
        "411111111111",
        "550000555555",
        "401288888888",
        "1985-03-14",
        "1990-11-02",
        "1979-07-30",
        SALT_VALUE,
    ] {
        secrets.push(text.as_bytes().to_vec());
    }
    for card in [
        4_111_111_111_111_111_i64,
        5_500_005_555_555_559,
        4_012_888_888_881_881,
    ] {
        secrets.push(card.to_le_bytes().to_vec());
    }
    for date in ["1985-03-14", "1990-11-02", "1979-07-30"] {
        secrets.push(days(date).to_le_bytes().to_vec());
    }
    for secret in &secrets {
        assert!(
            !occurs(&bytes, secret),
            "raw value {:?} ({}) is stored",
            secret,
            String::from_utf8_lossy(secret)
        );
    }

    // The controls: the same search finds values that were not anonymized,
    // in each form the raw values would have had (text, int64, date32), and
    // the stored tokens and masks. Without these the assertions above
    // could pass on a search that sees nothing.
    assert!(occurs(&bytes, b"Springfield"));
    assert!(occurs(&bytes, &4_222_222_222_222_222_i64.to_le_bytes()));
    assert!(occurs(&bytes, &days("2020-05-17").to_le_bytes()));
    assert!(occurs(&bytes, ann.as_bytes()));
    assert!(occurs(&bytes, b"************1881"));
    // That mask is neither the column's smallest nor its largest value, so
    // no statistic repeats it: it is only in a ZSTD-compressed page, and the
    // file's bytes alone do not show it. This is why the pages are searched
    // decompressed (if dataset files stop being compressed, drop this line).
    let file_only = vec![std::fs::read(&files[0]).unwrap()];
    assert!(!occurs(&file_only, b"************1881"));

    // Nor in the log.
    let log = logged(&fx);
    for text in [
        "ann.smith@example.com",
        "Ann Smithson",
        "4111111111111111",
        SALT_VALUE,
    ] {
        assert!(!log.contains(text), "`{text}` logged:\n{log}");
    }
}

#[tokio::test]
async fn a_failing_check_after_anonymize_shows_only_anonymized_rows() {
    let fx = Fixture::on_disk();
    fx.file("data/people.csv", PEOPLE);
    let mut cx = anonymizing_context(&fx);
    cx.data.checks = checks(json!([{"unique": "email"}]));
    let err = message(
        run_load(cx, json!({"path": "data/people.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&err, "check `unique(email)` failed: 2 of 3 rows violate it");
    assert_contains(&err, &token("ann.smith@example.com"));
    for raw in [
        "ann.smith@example.com",
        "Ann Smithson",
        "4111111111111111",
        "1985-03-14",
    ] {
        assert!(!err.contains(raw), "`{raw}` in:\n{err}");
    }
}

#[tokio::test]
async fn anonymize_applies_to_contract_columns_read_as_text() {
    // A contract makes CSV columns read as text, then cast to the contract's
    // types; `generalize` needs a date, so it must see the cast column.
    let fx = Fixture::on_disk();
    fx.file("data/people.csv", PEOPLE);
    let mut cx = anonymizing_context(&fx);
    cx.data.contract = Some(contract(
        "people",
        &[
            ("id", json!({"type": "int64"})),
            ("email", json!({"type": "string"})),
            ("card", json!({"type": "string"})),
            ("born", json!({"type": "date"})),
            ("city", json!({"type": "string"})),
            ("ref_card", json!({"type": "int64"})),
            ("joined", json!({"type": "date"})),
        ],
    ));
    let out = run_load(cx, json!({"path": "data/people.csv"}))
        .await
        .unwrap_or_else(|e| panic!("{}", message(e)));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let dataset = out.dataset.unwrap();
    let rows = dataset_rows(&fx.blobs, &dataset).await;
    assert_eq!(
        rows[1],
        format!(
            "1,{},************1111,1985-01-01,Springfield,4222222222222222,2020-05-17",
            token("ann.smith@example.com")
        )
    );
}

#[tokio::test]
async fn hashing_without_the_salt_fails_naming_what_to_set() {
    let fx = Fixture::on_disk();
    fx.file("data/people.csv", PEOPLE);

    // The environment names a salt whose value is not set.
    let mut cx = anonymizing_context(&fx);
    cx.secrets.clear();
    let err = message(
        run_load(cx, json!({"path": "data/people.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(
        &err,
        "cannot hash column `email`: the environment's `hash_salt` secret `PII_SALT` is not set",
    );
    assert_contains(&err, "set `WEIR_SECRET_PII_SALT` on the worker");

    // An empty value counts as not set.
    let mut cx = anonymizing_context(&fx);
    cx.secrets.insert(SALT_SECRET.to_owned(), String::new());
    let err = message(
        run_load(cx, json!({"path": "data/people.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&err, "`WEIR_SECRET_PII_SALT`");

    // No `hash_salt` at all.
    let mut cx = anonymizing_context(&fx);
    cx.environment.hash_salt = None;
    let err = message(
        run_load(cx, json!({"path": "data/people.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(
        &err,
        "cannot hash column `email`: the step's environment sets no `hash_salt`",
    );

    assert!(stored_files(&fx).is_empty(), "nothing stored unhashed");
}
