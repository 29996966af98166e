//! The `export` action: datasets made by `sql` and `load` written to real
//! files in the project and to tables of the real PostgreSQL test server.

use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use serde_json::{Value, json};
use weir_data::{
    ExportAction, ExportSpec, LoadAction, LoadSpec, SqlAction, SqlSpec, read_dataset,
    register_actions, write_dataset,
};
use weir_exec::{Action, ActionError, DatasetOutput, Registry, TaskOutput};
use weir_test::TestDatabase;

use crate::{Fixture, assert_contains, input};

/// The rows every file test exports: a null and an empty string in `name`,
/// a null `amount`, and a value that needs CSV quoting.
const SAMPLE: &str = "SELECT * FROM (VALUES \
    (1, 'ann', 10.5), (2, '', NULL), (3, NULL, 7.25), (4, 'say \"hi\", bob', -1.0)\
    ) AS t(id, name, amount) ORDER BY id";

async fn dataset(fx: &Fixture, query: &str) -> DatasetOutput {
    SqlAction
        .run(SqlSpec(query.to_owned()), fx.context("revenue"))
        .await
        .unwrap()
        .dataset
        .unwrap()
}

fn spec(mut value: Value) -> ExportSpec {
    value["input"] = json!("revenue");
    serde_json::from_value(value).unwrap()
}

/// Runs `export` (with `input: revenue`) in step `report`, reading `data`.
async fn export(
    fx: &Fixture,
    data: &DatasetOutput,
    value: Value,
) -> Result<TaskOutput, ActionError> {
    let mut cx = fx.context("report");
    cx.inputs
        .insert("revenue".to_owned(), input("revenue", data));
    ExportAction.run(spec(value), cx).await
}

fn message(err: ActionError) -> String {
    match err {
        ActionError::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn read(fx: &Fixture, relative: &str) -> String {
    std::fs::read_to_string(fx.project.path().join(relative)).unwrap()
}

/// The names in a project folder, sorted.
fn names_in(fx: &Fixture, relative: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fx.project.path().join(relative))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn batches(blobs: &Arc<dyn ObjectStore>, files: &[String]) -> Vec<RecordBatch> {
    read_dataset(blobs, files).await.unwrap().1
}

// ------------------------------------------------------------------ files

#[tokio::test]
async fn csv_has_the_exact_rows_and_header() {
    let fx = Fixture::on_disk();
    let data = dataset(&fx, SAMPLE).await;
    let out = export(&fx, &data, json!({"path": "out/deep/revenue.csv"}))
        .await
        .unwrap();
    assert_eq!(
        out.value,
        Some(json!({"rows": 4, "path": "out/deep/revenue.csv"}))
    );
    assert_eq!(out.dataset, None);
    // By default a null and an empty string are both an empty field.
    assert_eq!(
        read(&fx, "out/deep/revenue.csv"),
        "id,name,amount\n1,ann,10.5\n2,,\n3,,7.25\n4,\"say \"\"hi\"\", bob\",-1.0\n"
    );
    let logged = fx.log.0.lock().unwrap().join("\n");
    assert_contains(&logged, "exported 4 rows to `out/deep/revenue.csv` (csv)");

    export(
        &fx,
        &data,
        json!({"path": "out/plain.txt", "format": "csv", "header": false, "null_value": "NA"}),
    )
    .await
    .unwrap();
    assert_eq!(
        read(&fx, "out/plain.txt"),
        "1,ann,10.5\n2,,NA\n3,NA,7.25\n4,\"say \"\"hi\"\", bob\",-1.0\n"
    );
}

#[tokio::test]
async fn csv_with_a_null_value_round_trips_through_load() {
    let fx = Fixture::on_disk();
    let data = dataset(&fx, SAMPLE).await;
    export(
        &fx,
        &data,
        json!({"path": "out/revenue.csv", "null_value": "\\N"}),
    )
    .await
    .unwrap();
    assert_eq!(
        read(&fx, "out/revenue.csv"),
        "id,name,amount\n1,ann,10.5\n2,,\\N\n3,\\N,7.25\n4,\"say \"\"hi\"\", bob\",-1.0\n"
    );
    let load: LoadSpec =
        serde_json::from_value(json!({"path": "out/revenue.csv", "null_values": ["\\N"]})).unwrap();
    let back = LoadAction
        .run(load, fx.context("back"))
        .await
        .unwrap()
        .dataset
        .unwrap();
    let original = batches(&fx.blobs, &data.files).await;
    let reloaded = batches(&fx.blobs, &back.files).await;
    assert_eq!(original.len(), 1);
    assert_eq!(reloaded.len(), 1);
    // Same values, nulls and empty strings included (nullability aside).
    assert_eq!(original[0].columns(), reloaded[0].columns());
    let names = reloaded[0]
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert!(names.is_valid(1) && names.value(1).is_empty());
    assert!(names.is_null(2));
}

#[tokio::test]
async fn parquet_round_trips_with_zstd() {
    let fx = Fixture::on_disk();
    let query = format!(
        "SELECT id, name, amount, \
         arrow_cast('2024-01-02T03:04:05', 'Timestamp(Microsecond, None)') AS ts, \
         CAST(amount AS DECIMAL(10, 2)) AS price FROM ({SAMPLE}) s ORDER BY id"
    );
    let data = dataset(&fx, &query).await;
    let out = export(&fx, &data, json!({"path": "out/revenue.parquet"}))
        .await
        .unwrap();
    assert_eq!(
        out.value,
        Some(json!({"rows": 4, "path": "out/revenue.parquet"}))
    );
    let project: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(fx.project.path()).unwrap());
    let (schema, exported) = read_dataset(&project, &["out/revenue.parquet".to_owned()])
        .await
        .unwrap();
    let (original_schema, original) = read_dataset(&fx.blobs, &data.files).await.unwrap();
    assert_eq!(schema.fields(), original_schema.fields());
    assert_eq!(exported, original);

    let bytes = std::fs::read(fx.project.path().join("out/revenue.parquet")).unwrap();
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    for column in reader.metadata().row_group(0).columns() {
        assert!(
            matches!(column.compression(), Compression::ZSTD(_)),
            "{:?}",
            column.compression()
        );
    }
}

#[tokio::test]
async fn json_is_one_array_and_ndjson_one_object_per_line() {
    let fx = Fixture::in_memory();
    let data = dataset(&fx, SAMPLE).await;
    export(&fx, &data, json!({"path": "out/revenue.json"}))
        .await
        .unwrap();
    let text = read(&fx, "out/revenue.json");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!([
            {"id": 1, "name": "ann", "amount": 10.5},
            {"id": 2, "name": "", "amount": null},
            {"id": 3, "name": null, "amount": 7.25},
            {"id": 4, "name": "say \"hi\", bob", "amount": -1.0},
        ])
    );
    for path in ["out/revenue.ndjson", "out/revenue.jsonl"] {
        export(&fx, &data, json!({ "path": path })).await.unwrap();
        assert_eq!(
            read(&fx, path),
            "{\"id\":1,\"name\":\"ann\",\"amount\":10.5}\n\
             {\"id\":2,\"name\":\"\",\"amount\":null}\n\
             {\"id\":3,\"name\":null,\"amount\":7.25}\n\
             {\"id\":4,\"name\":\"say \\\"hi\\\", bob\",\"amount\":-1.0}\n",
            "{path}"
        );
    }
    // A format named explicitly wins over the extension.
    export(
        &fx,
        &data,
        json!({"path": "out/lines.json", "format": "ndjson"}),
    )
    .await
    .unwrap();
    assert_eq!(read(&fx, "out/lines.json").lines().count(), 4);
}

#[tokio::test]
async fn empty_datasets_write_valid_empty_files() {
    let fx = Fixture::in_memory();
    let data = dataset(&fx, &format!("SELECT * FROM ({SAMPLE}) s WHERE id > 100")).await;
    assert_eq!(data.rows, 0);
    for (path, expected) in [
        ("e.csv", "id,name,amount\n"),
        ("e.json", "[]"),
        ("e.ndjson", ""),
    ] {
        let out = export(&fx, &data, json!({ "path": path })).await.unwrap();
        assert_eq!(out.value, Some(json!({"rows": 0, "path": path})));
        assert_eq!(read(&fx, path), expected, "{path}");
    }
    export(&fx, &data, json!({"path": "e.parquet"}))
        .await
        .unwrap();
    let project: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(fx.project.path()).unwrap());
    let (schema, rows) = read_dataset(&project, &["e.parquet".to_owned()])
        .await
        .unwrap();
    assert_eq!(schema.fields().len(), 3);
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[tokio::test]
async fn an_existing_file_is_replaced_whole_or_not_at_all() {
    let fx = Fixture::on_disk();
    fx.file("out/revenue.csv", "old contents\n");
    fx.file("out/other.txt", "untouched\n");
    let data = dataset(&fx, SAMPLE).await;
    export(&fx, &data, json!({"path": "out/revenue.csv"}))
        .await
        .unwrap();
    assert!(read(&fx, "out/revenue.csv").starts_with("id,name,amount\n1,ann,10.5\n"));
    // No temporary file left beside it.
    assert_eq!(names_in(&fx, "out"), ["other.txt", "revenue.csv"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fx.project.path().join("out/revenue.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o044, 0o044, "readable like any new file: {mode:o}");
    }

    // CSV cannot hold a list: the write fails after the temporary file was
    // created, and the previous export stays as it was.
    let before = read(&fx, "out/revenue.csv");
    let lists = dataset(&fx, "SELECT 1 AS id, make_array(1, 2) AS xs").await;
    let msg = message(
        export(&fx, &lists, json!({"path": "out/revenue.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "cannot write `out/revenue.csv`");
    assert_eq!(read(&fx, "out/revenue.csv"), before);
    assert_eq!(names_in(&fx, "out"), ["other.txt", "revenue.csv"]);

    // A directory is not replaced by a file.
    std::fs::create_dir_all(fx.project.path().join("out/dir.csv")).unwrap();
    let msg = message(
        export(&fx, &data, json!({"path": "out/dir.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "`out/dir.csv` is a directory");
}

#[tokio::test]
async fn absolute_paths_and_cancellation() {
    let fx = Fixture::in_memory();
    let data = dataset(&fx, SAMPLE).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("r.ndjson");
    let path = target.to_string_lossy().into_owned();
    let out = export(&fx, &data, json!({ "path": path })).await.unwrap();
    assert_eq!(out.value, Some(json!({"rows": 4, "path": path})));
    assert_eq!(std::fs::read_to_string(&target).unwrap().lines().count(), 4);

    let mut cx = fx.context("report");
    cx.inputs
        .insert("revenue".to_owned(), input("revenue", &data));
    cx.cancel.cancel();
    let err = ExportAction
        .run(spec(json!({"path": "cancelled.csv"})), cx)
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Cancelled { .. }), "{err:?}");
    assert!(!fx.project.path().join("cancelled.csv").exists());
}

#[tokio::test]
async fn templated_values_are_checked_when_the_step_runs() {
    let fx = Fixture::in_memory();
    let data = dataset(&fx, SAMPLE).await;
    // What `{{ params.file }}` rendered to.
    let msg = message(
        export(&fx, &data, json!({"path": "out/revenue.txt"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "cannot tell the format of `out/revenue.txt`");
    assert_contains(&msg, "hint: set `format:`");
    let msg = message(
        export(
            &fx,
            &data,
            json!({"postgres": {"url": "postgres://h/db", "table": "a-b"}}),
        )
        .await
        .unwrap_err(),
    );
    assert_contains(&msg, "`postgres.table` `a-b`");
}

// ----------------------------------------------------------------- check

fn codes(value: Value) -> Vec<String> {
    ExportAction
        .check(&spec(value))
        .into_iter()
        .map(|d| d.code)
        .collect()
}

#[test]
fn check_reports_each_bad_spec() {
    let pg = json!({"url": "postgres://u@h/db", "table": "analytics.revenue"});
    for (value, code) in [
        (json!({}), "export-target"),
        (json!({"path": "a.csv", "postgres": pg}), "export-target"),
        (json!({"path": ""}), "empty-path"),
        (json!({"path": "  "}), "empty-path"),
        (json!({"path": "out/revenue.txt"}), "unknown-format"),
        (json!({"path": "out/revenue.csv.gz"}), "unknown-format"),
        (
            json!({"path": "s3://bucket/revenue.csv"}),
            "unsupported-path",
        ),
        (
            json!({"path": "gs://bucket/revenue.csv"}),
            "unsupported-path",
        ),
        (
            json!({"path": "https://example.com/r.csv"}),
            "unsupported-path",
        ),
        (
            json!({"path": "http://example.com/r.csv"}),
            "unsupported-path",
        ),
        (
            json!({"path": "a.parquet", "header": false}),
            "invalid-csv-option",
        ),
        (
            json!({"path": "a.json", "null_value": "NA"}),
            "invalid-csv-option",
        ),
        (
            json!({"postgres": {"url": "postgres://u@h/db", "table": "a.b.c"}}),
            "invalid-postgres",
        ),
        (
            json!({"postgres": {"url": "postgres://u@h/db", "table": "1abc"}}),
            "invalid-postgres",
        ),
        (
            json!({"postgres": {"url": "postgres://u@h/db", "table": "drop table x;"}}),
            "invalid-postgres",
        ),
        (
            json!({"postgres": {"url": "postgres://u@h/db", "table": ""}}),
            "invalid-postgres",
        ),
        (
            json!({"postgres": {"url": "mysql://u@h/db", "table": "t"}}),
            "invalid-postgres",
        ),
        (
            json!({"postgres": {"url": "", "table": "t"}}),
            "invalid-postgres",
        ),
        (json!({"postgres": pg, "format": "csv"}), "export-target"),
    ] {
        assert_eq!(codes(value.clone()), [code], "{value}");
    }
}

#[test]
fn check_accepts_good_and_templated_specs() {
    for value in [
        json!({"path": "out/revenue.csv"}),
        json!({"path": "out/revenue.CSV", "header": false, "null_value": ""}),
        json!({"path": "out/revenue.parquet"}),
        json!({"path": "out/revenue.jsonl"}),
        json!({"path": "out/revenue.txt", "format": "csv"}),
        json!({"path": "file:///tmp/revenue.ndjson"}),
        json!({"path": "out/revenue_{{ run.logical_date }}"}),
        json!({"postgres": {"url": "{{ secrets.WAREHOUSE_URL }}", "table": "revenue"}}),
        json!({"postgres": {"url": "postgresql://u:p@h:5432/db", "table": "Analytics.Revenue_2", "mode": "append"}}),
        json!({"postgres": {"url": "postgres://h/db", "table": "{{ params.table }}"}}),
    ] {
        assert!(
            codes(value.clone()).is_empty(),
            "{value}: {:?}",
            codes(value.clone())
        );
    }
}

#[test]
fn messages_never_show_a_literal_password() {
    let d = ExportAction.check(&spec(json!({
        "postgres": {"url": "mysql://admin:hunter2@h/db", "table": "t"}
    })));
    assert_eq!(d.len(), 1);
    assert!(!d[0].message.contains("hunter2"), "{}", d[0].message);
    assert_contains(&d[0].message, "mysql://admin:***@h/db");
}

#[test]
fn the_input_is_a_dependency_and_the_spec_is_strict() {
    assert_eq!(
        ExportAction.inputs(&spec(json!({"path": "a.csv"}))),
        ["revenue"]
    );
    let err = serde_json::from_value::<ExportSpec>(
        json!({"input": "r", "path": "a.csv", "delimiter": ";"}),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown field `delimiter`"),
        "{err}"
    );
    let err = serde_json::from_value::<ExportSpec>(json!({
        "input": "r", "postgres": {"url": "postgres://h/db", "table": "t", "mode": "upsert"}
    }))
    .unwrap_err();
    assert!(err.to_string().contains("upsert"), "{err}");
    let err = serde_json::from_value::<ExportSpec>(json!({"path": "a.csv"})).unwrap_err();
    assert!(err.to_string().contains("missing field `input`"), "{err}");
}

#[test]
fn register_actions_adds_export_with_a_documented_schema() {
    let mut registry = Registry::builtin();
    register_actions(&mut registry);
    assert!(registry.kinds().contains(&"export"));
    let schema = serde_json::to_value(registry.spec_schema("export").unwrap()).unwrap();
    assert_eq!(schema["required"], json!(["input"]));
    for field in [
        "input",
        "path",
        "format",
        "header",
        "null_value",
        "postgres",
    ] {
        assert!(
            schema["properties"][field]["description"].is_string(),
            "`{field}` is undocumented: {schema}"
        );
    }
}

// ------------------------------------------------------------ PostgreSQL

fn pg(db: &TestDatabase, table: &str, mode: &str) -> Value {
    json!({"postgres": {"url": db.url(), "table": table, "mode": mode}})
}

#[tokio::test]
async fn postgres_replace_twice_keeps_only_the_second_dataset() {
    let db = TestDatabase::create("data_export");
    let fx = Fixture::in_memory();
    let first = dataset(&fx, SAMPLE).await;
    let out = export(&fx, &first, pg(&db, "analytics.revenue", "replace"))
        .await
        .unwrap();
    assert_eq!(
        out.value,
        Some(json!({"rows": 4, "table": "analytics.revenue"}))
    );
    assert_eq!(out.dataset, None);
    assert_eq!(
        db.query_strings("SELECT count(*) FROM analytics.revenue"),
        ["4"]
    );

    // Other columns, fewer rows: the table is the new dataset, nothing of
    // the old one is left.
    let second = dataset(
        &fx,
        "SELECT * FROM (VALUES (10, 'x', true), (20, 'y', false)) AS t(id, code, ok)",
    )
    .await;
    let out = export(&fx, &second, pg(&db, "analytics.revenue", "replace"))
        .await
        .unwrap();
    assert_eq!(
        out.value,
        Some(json!({"rows": 2, "table": "analytics.revenue"}))
    );
    assert_eq!(
        db.query_strings(
            "SELECT id || ',' || code || ',' || ok FROM analytics.revenue ORDER BY id"
        ),
        ["10,x,true", "20,y,false"]
    );
    assert_eq!(
        db.query_strings(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'analytics' AND table_name = 'revenue' ORDER BY ordinal_position"
        ),
        ["id", "code", "ok"]
    );
    let logged = fx.log.0.lock().unwrap().join("\n");
    assert_contains(&logged, "replaced table `analytics.revenue` with 2 rows");
}

#[tokio::test]
async fn postgres_append_adds_rows_and_creates_the_table_once() {
    let db = TestDatabase::create("data_export");
    let fx = Fixture::in_memory();
    let data = dataset(&fx, SAMPLE).await;
    for expected in ["4", "8"] {
        let out = export(&fx, &data, pg(&db, "Revenue", "append"))
            .await
            .unwrap();
        assert_eq!(out.value, Some(json!({"rows": 4, "table": "revenue"})));
        assert_eq!(db.query_strings("SELECT count(*) FROM revenue"), [expected]);
    }
    // Columns in another order are still the same columns.
    let reordered = dataset(
        &fx,
        "SELECT amount, id, name FROM (VALUES (5, 'eve', 1.0)) AS t(id, name, amount)",
    )
    .await;
    export(&fx, &reordered, pg(&db, "revenue", "append"))
        .await
        .unwrap();
    assert_eq!(
        db.query_strings("SELECT id || ':' || name || ':' || amount FROM revenue WHERE id = 5"),
        ["5:eve:1"]
    );
}

#[tokio::test]
async fn postgres_append_with_other_columns_fails_and_changes_nothing() {
    let db = TestDatabase::create("data_export");
    let fx = Fixture::in_memory();
    let data = dataset(&fx, SAMPLE).await;
    export(&fx, &data, pg(&db, "revenue", "replace"))
        .await
        .unwrap();
    let other = dataset(
        &fx,
        "SELECT * FROM (VALUES (1, 'ann', 'FR')) AS t(id, name, country)",
    )
    .await;
    let msg = message(
        export(&fx, &other, pg(&db, "revenue", "append"))
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "cannot append to table `revenue`");
    assert_contains(&msg, "its columns (`id`, `name`, `amount`)");
    assert_contains(&msg, "the dataset's (`id`, `name`, `country`)");
    assert_contains(&msg, "the table has no `country`");
    assert_contains(&msg, "the dataset has no `amount`");
    assert_contains(&msg, "hint: use `mode: replace`");
    assert_eq!(db.query_strings("SELECT count(*) FROM revenue"), ["4"]);
}

#[tokio::test]
async fn postgres_types_nulls_and_empty_strings() {
    let db = TestDatabase::create("data_export");
    let fx = Fixture::in_memory();
    let data = dataset(
        &fx,
        "SELECT \
           arrow_cast(-1, 'Int8') AS i8, arrow_cast(-2, 'Int16') AS i16, \
           arrow_cast(-3, 'Int32') AS i32, arrow_cast(-4, 'Int64') AS i64, \
           arrow_cast(255, 'UInt8') AS u8, arrow_cast(65535, 'UInt16') AS u16, \
           arrow_cast(4294967295, 'UInt32') AS u32, \
           arrow_cast('18446744073709551615', 'UInt64') AS u64, \
           arrow_cast(1.5, 'Float32') AS f32, arrow_cast(0.1, 'Float64') AS f64, \
           CAST(-12345.678 AS DECIMAL(10, 3)) AS price, \
           'plain' AS s, arrow_cast('large', 'LargeUtf8') AS ls, \
           true AS b, \
           arrow_cast('2024-02-29', 'Date32') AS d32, \
           arrow_cast(arrow_cast('2024-03-01', 'Date32'), 'Date64') AS d64, \
           arrow_cast('2024-01-02T03:04:05.123456', 'Timestamp(Microsecond, None)') AS ts, \
           arrow_cast(arrow_cast('2024-06-01T12:00:00.5Z', 'Timestamp(Millisecond, Some(\"UTC\"))'), \
                      'Timestamp(Millisecond, Some(\"+02:00\"))') AS tstz, \
           arrow_cast('a\"b', 'Binary') AS bin, \
           arrow_cast('10:11:12', 'Time64(Microsecond)') AS t, \
           make_array(1, 2) AS xs, \
           'quoted' AS \"Customer Name\"",
    )
    .await;
    export(&fx, &data, pg(&db, "types", "replace"))
        .await
        .unwrap();
    assert_eq!(
        db.query_strings(
            "SELECT column_name || ' ' || data_type || CASE WHEN data_type = 'numeric' \
             THEN '(' || numeric_precision || ',' || numeric_scale || ')' ELSE '' END \
             FROM information_schema.columns WHERE table_name = 'types' ORDER BY ordinal_position"
        ),
        [
            "i8 smallint",
            "i16 smallint",
            "i32 integer",
            "i64 bigint",
            "u8 integer",
            "u16 integer",
            "u32 bigint",
            "u64 numeric(20,0)",
            "f32 real",
            "f64 double precision",
            "price numeric(10,3)",
            "s text",
            "ls text",
            "b boolean",
            "d32 date",
            "d64 date",
            "ts timestamp without time zone",
            "tstz timestamp with time zone",
            "bin bytea",
            "t text",
            "xs text",
            "Customer Name text",
        ]
    );
    assert_eq!(
        db.query_strings(
            "SELECT concat_ws('|', i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, price, s, ls, b, \
             d32, d64, ts, to_char(tstz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), \
             encode(bin, 'hex'), t, xs, \"Customer Name\") FROM types"
        ),
        ["-1|-2|-3|-4|255|65535|4294967295|18446744073709551615|1.5|0.1|-12345.678|plain|large|t|\
          2024-02-29|2024-03-01|2024-01-02 03:04:05.123456|2024-06-01 12:00:00.500|\
          612262|10:11:12|[1, 2]|quoted"]
    );

    // Nulls are NULL, empty strings are '', and no string passes for a
    // null (not even PostgreSQL's text-format marker).
    let strings = dataset(
        &fx,
        "SELECT * FROM (VALUES (1, 'a', 1.5), (2, '', NULL), (3, NULL, 2.5), \
         (4, '\\N', NULL), (5, concat('x,\"y\"', chr(10), 'z'), 0.0)) AS t(id, s, x)",
    )
    .await;
    export(&fx, &strings, pg(&db, "strings", "replace"))
        .await
        .unwrap();
    assert_eq!(
        db.query_strings(
            "SELECT id || ' ' || coalesce('[' || s || ']', 'NULL') || ' ' || coalesce(x::text, 'NULL') \
             FROM strings ORDER BY id"
        ),
        [
            "1 [a] 1.5",
            "2 [] NULL",
            "3 NULL 2.5",
            "4 [\\N] NULL",
            "5 [x,\"y\"\nz] 0",
        ]
    );

    // Nulls of every type.
    let nulls = dataset(
        &fx,
        "SELECT arrow_cast(NULL, 'Int32') AS i, arrow_cast(NULL, 'Utf8') AS s, \
         arrow_cast(NULL, 'Timestamp(Microsecond, None)') AS ts, \
         CAST(NULL AS DECIMAL(5, 2)) AS d, arrow_cast(NULL, 'Binary') AS bin, NULL AS n",
    )
    .await;
    export(&fx, &nulls, pg(&db, "nulls", "replace"))
        .await
        .unwrap();
    assert_eq!(
        db.query_strings(
            "SELECT concat_ws(',', i IS NULL, s IS NULL, ts IS NULL, d IS NULL, bin IS NULL, n IS NULL) FROM nulls"
        ),
        ["t,t,t,t,t,t"]
    );
}

#[tokio::test]
async fn postgres_replace_that_fails_keeps_the_old_table() {
    let db = TestDatabase::create("data_export");
    let fx = Fixture::in_memory();
    let good = dataset(&fx, SAMPLE).await;
    export(&fx, &good, pg(&db, "revenue", "replace"))
        .await
        .unwrap();

    // PostgreSQL text cannot hold a NUL character: the COPY fails after the
    // table was dropped and created again, inside the transaction.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![Some("fine"), Some("nul\0here")])),
        ],
    )
    .unwrap();
    let bad = write_dataset(&fx.blobs, schema, &[batch]).await.unwrap();
    let msg = message(
        export(&fx, &bad, pg(&db, "revenue", "replace"))
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "cannot copy into table `revenue`");
    assert_contains(&msg, "0x00");
    assert_eq!(db.query_strings("SELECT count(*) FROM revenue"), ["4"]);
    assert_eq!(
        db.query_strings(
            "SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_name = 'revenue'"
        ),
        ["id,name,amount"]
    );
}

#[tokio::test]
async fn postgres_errors_never_show_the_password() {
    let fx = Fixture::in_memory();
    let data = dataset(&fx, SAMPLE).await;
    // Nothing listens on port 1.
    let url = "postgres://postgres:s3cret-pw@127.0.0.1:1/nowhere?password=s3cret-pw";
    let msg = message(
        export(&fx, &data, json!({"postgres": {"url": url, "table": "t"}}))
            .await
            .unwrap_err(),
    );
    assert_contains(
        &msg,
        "cannot connect to `postgres://postgres:***@127.0.0.1:1/nowhere?…`",
    );
    assert!(!msg.contains("s3cret"), "{msg}");
    let logged = fx.log.0.lock().unwrap().join("\n");
    assert!(!logged.contains("s3cret"), "{logged}");
}
