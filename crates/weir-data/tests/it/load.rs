//! The `load` action on real files.

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::json;
use weir_data::{Format, LoadAction, LoadSpec, format_batches, read_dataset, schema_from_json};
use weir_exec::{Action, ActionError, TaskOutput};

use crate::{Fixture, assert_contains, dataset_rows};

fn spec(value: serde_json::Value) -> LoadSpec {
    serde_json::from_value(value).unwrap()
}

async fn load(fx: &Fixture, value: serde_json::Value) -> Result<TaskOutput, ActionError> {
    LoadAction.run(spec(value), fx.context("orders")).await
}

fn message(err: ActionError) -> String {
    match err {
        ActionError::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn csv_with_header_types_and_nulls() {
    let fx = Fixture::on_disk();
    fx.file(
        "data/orders.csv",
        "id,customer,amount,note\n1,ann,10.5,\"first, with comma\"\n2,bob,,\n3,ann,7.25,\"two\nlines\"\n",
    );
    let out = load(&fx, json!({"path": "data/orders.csv"})).await.unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 3);
    assert_eq!(out.value, Some(json!({"rows": 3})));
    let schema = schema_from_json(&dataset.schema).unwrap();
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", DataType::Int64),
            ("customer", DataType::Utf8),
            ("amount", DataType::Float64),
            ("note", DataType::Utf8),
        ]
    );
    // One file keeps its row order.
    let (schema, batches) = read_dataset(&fx.blobs, &dataset.files).await.unwrap();
    assert_eq!(
        format_batches(&schema, &batches, Format::Csv).unwrap(),
        "id,customer,amount,note\n1,ann,10.5,\"first, with comma\"\n2,bob,,\n3,ann,7.25,\"two\nlines\"\n"
    );
    // Stored on disk at its content address.
    assert!(fx.blob_path(&dataset.files[0]).is_file());
    let logged = fx.log.0.lock().unwrap().join("\n");
    assert_contains(&logged, "read 3 rows from 1 file");
}

#[tokio::test]
async fn csv_delimiter_null_values_quote_and_no_header() {
    let fx = Fixture::on_disk();
    fx.file("in/a.txt", "1;'x;y';NA\n2;N/A;4.5\n3;'';-\n");
    let out = load(
        &fx,
        json!({
            "path": "in/a.txt", "format": "csv", "delimiter": ";", "header": false,
            "quote": "'", "null_values": ["NA", "N/A", "-"],
        }),
    )
    .await
    .unwrap();
    let dataset = out.dataset.unwrap();
    let schema = schema_from_json(&dataset.schema).unwrap();
    assert_eq!(schema.field(0).name(), "column_1");
    assert_eq!(schema.field(2).data_type(), &DataType::Float64);
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        ["column_1,column_2,column_3", "1,x;y,", "2,,4.5", "3,,"]
    );
    // `''` is an empty string, not null: only the listed values are null.
    let (_, batches) = read_dataset(&fx.blobs, &dataset.files).await.unwrap();
    let names = batches[0].column(1);
    assert_eq!(
        (0..3).map(|i| names.is_null(i)).collect::<Vec<_>>(),
        [false, true, false]
    );
}

#[tokio::test]
async fn tsv_defaults_to_tabs() {
    let fx = Fixture::on_disk();
    fx.file("a.tsv", "a\tb\n1\thello, world\n");
    let out = load(&fx, json!({"path": "a.tsv"})).await.unwrap();
    assert_eq!(
        dataset_rows(&fx.blobs, &out.dataset.unwrap()).await,
        ["a,b", "1,\"hello, world\""]
    );
}

#[tokio::test]
async fn ndjson_and_json_arrays() {
    let fx = Fixture::on_disk();
    fx.file("e.jsonl", "{\"id\": 1, \"tag\": \"a\"}\n{\"id\": 2}\n");
    fx.file("lines.json", "{\"id\": 1, \"tag\": \"a\"}\n{\"id\": 2}\n");
    fx.file(
        "array.json",
        "\n [{\"id\": 1, \"tag\": \"a\"},\n {\"id\": 2}]\n",
    );
    for path in ["e.jsonl", "lines.json", "array.json"] {
        let out = load(&fx, json!({"path": path})).await.unwrap();
        let dataset = out.dataset.unwrap();
        assert_eq!(dataset.rows, 2, "{path}");
        assert_eq!(
            dataset_rows(&fx.blobs, &dataset).await,
            ["id,tag", "1,a", "2,"],
            "{path}"
        );
    }
    // The same rows give the same dataset whatever the file looked like.
    let a = load(&fx, json!({"path": "lines.json"}))
        .await
        .unwrap()
        .dataset
        .unwrap();
    let b = load(&fx, json!({"path": "array.json"}))
        .await
        .unwrap()
        .dataset
        .unwrap();
    assert_eq!(a.files, b.files);
}

fn write_parquet(path: &std::path::Path, amount: Arc<dyn datafusion::arrow::array::Array>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", amount.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2])), amount],
    )
    .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test]
async fn parquet_is_rewritten_with_zstd() {
    let fx = Fixture::on_disk();
    let path = fx.project.path().join("p/part-0.parquet");
    write_parquet(&path, Arc::new(Float64Array::from(vec![Some(1.5), None])));
    let out = load(&fx, json!({"path": "p/part-0.parquet"}))
        .await
        .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        ["id,amount", "1,1.5", "2,"]
    );
    let schema = schema_from_json(&dataset.schema).unwrap();
    assert!(
        !schema.field(0).is_nullable(),
        "Parquet keeps non-null columns"
    );

    let bytes = std::fs::read(fx.blob_path(&dataset.files[0])).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
    assert_eq!(bytes.len() as u64, dataset.bytes);
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    let column = reader.metadata().row_group(0).column(0).compression();
    assert!(matches!(column, Compression::ZSTD(_)), "{column:?}");
}

#[tokio::test]
async fn a_glob_of_three_csvs_is_one_dataset() {
    let fx = Fixture::on_disk();
    fx.file("landing/2026-01.csv", "id,amount\n1,10\n2,20\n");
    fx.file("landing/2026-02.csv", "id,amount\n3,30.5\n");
    fx.file("landing/2026-03.csv", "id,amount\n4,40\n5,50\n6,60\n");
    fx.file("landing/notes.txt", "not data");
    fx.file("landing/old/2025-12.csv", "id,amount\n0,0\n");
    let out = load(&fx, json!({"path": "landing/*.csv"})).await.unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 6);
    // Int64 in two files, Float64 in one: widened to Float64.
    let schema = schema_from_json(&dataset.schema).unwrap();
    assert_eq!(schema.field(1).data_type(), &DataType::Float64);
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        [
            "id,amount",
            "1,10.0",
            "2,20.0",
            "3,30.5",
            "4,40.0",
            "5,50.0",
            "6,60.0"
        ]
    );
    let logged = fx.log.0.lock().unwrap().join("\n");
    assert_contains(&logged, "from 3 files");

    // `**` crosses folders.
    let all = load(&fx, json!({"path": "landing/**/*.csv"}))
        .await
        .unwrap();
    assert_eq!(all.dataset.unwrap().rows, 7);

    // Loading the same files again is the same dataset (a retry).
    let again = load(&fx, json!({"path": "landing/*.csv"})).await.unwrap();
    assert_eq!(again.dataset.unwrap().files, dataset.files);
}

#[tokio::test]
async fn files_with_other_columns_are_named() {
    let fx = Fixture::on_disk();
    fx.file("d/a.csv", "id,amount\n1,10\n");
    fx.file("d/b.csv", "id,total\n2,20\n");
    let msg = message(load(&fx, json!({"path": "d/*.csv"})).await.unwrap_err());
    assert_contains(&msg, "`d/b.csv` does not have the columns of `d/a.csv`");
    assert_contains(&msg, "column 2 is `total` instead of `amount`");
    assert_contains(&msg, "hint:");

    fx.file("e/a.csv", "id,amount\n1,10\n");
    fx.file("e/b.csv", "id\n2\n");
    let msg = message(load(&fx, json!({"path": "e/*.csv"})).await.unwrap_err());
    assert_contains(&msg, "`e/b.csv`");
    assert_contains(
        &msg,
        "it has 1 columns (`id`) instead of 2 (`id`, `amount`)",
    );
}

#[tokio::test]
async fn parquet_files_with_other_types_are_named() {
    let fx = Fixture::on_disk();
    write_parquet(
        &fx.project.path().join("p/a.parquet"),
        Arc::new(Float64Array::from(vec![1.0, 2.0])),
    );
    write_parquet(
        &fx.project.path().join("p/b.parquet"),
        Arc::new(StringArray::from(vec!["1", "2"])),
    );
    let msg = message(load(&fx, json!({"path": "p/*.parquet"})).await.unwrap_err());
    assert_contains(
        &msg,
        "`p/b.parquet` does not have the columns of `p/a.parquet`: column `amount` is `Utf8` instead of `Float64`",
    );
}

#[tokio::test]
async fn missing_files_name_the_path_and_hint() {
    let fx = Fixture::on_disk();
    let msg = message(
        load(&fx, json!({"path": "data/nope.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "no file matches `data/nope.csv`");
    assert_contains(&msg, &fx.project.path().display().to_string());
    assert_contains(&msg, "hint:");
    let msg = message(load(&fx, json!({"path": "data/*.csv"})).await.unwrap_err());
    assert_contains(&msg, "no file matches `data/*.csv`");

    fx.file("data/x/a.csv", "a\n1\n");
    let msg = message(load(&fx, json!({"path": "data/x"})).await.unwrap_err());
    assert_contains(&msg, "`data/x` is a directory");
}

#[tokio::test]
async fn absolute_paths_and_remote_paths() {
    let fx = Fixture::on_disk();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("abs.csv");
    std::fs::write(&file, "a\n1\n").unwrap();
    let out = load(&fx, json!({"path": file.to_string_lossy()}))
        .await
        .unwrap();
    assert_eq!(out.dataset.unwrap().rows, 1);

    // `http(s)://` URLs load: see `remote.rs`.
    for remote in ["s3://bucket/orders.csv", "gs://bucket/orders.csv"] {
        let msg = message(load(&fx, json!({"path": remote})).await.unwrap_err());
        assert_contains(&msg, "not supported yet");
        assert_contains(&msg, remote);
    }
}

#[tokio::test]
async fn bad_data_fails_with_the_file_named() {
    let fx = Fixture::on_disk();
    fx.file("bad.parquet", "this is not parquet");
    let msg = message(load(&fx, json!({"path": "bad.parquet"})).await.unwrap_err());
    assert_contains(&msg, "could not read `bad.parquet`");

    fx.file("bad.jsonl", "{\"a\": 1}\n{not json\n");
    let msg = message(load(&fx, json!({"path": "bad.jsonl"})).await.unwrap_err());
    assert_contains(&msg, "bad.jsonl");

    fx.file("empty.csv", "");
    // An empty file is an empty dataset or a clear error, never a panic.
    let _ = load(&fx, json!({"path": "empty.csv"})).await;
}

#[tokio::test]
async fn header_only_csv_is_an_empty_dataset_with_columns() {
    let fx = Fixture::in_memory();
    fx.file("h.csv", "id,name\n");
    let out = load(&fx, json!({"path": "h.csv"})).await.unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 0);
    let schema = schema_from_json(&dataset.schema).unwrap();
    assert_eq!(schema.fields().len(), 2);
    assert_eq!(dataset_rows(&fx.blobs, &dataset).await, ["id,name"]);
}

#[tokio::test]
async fn cancellation_stops_the_load() {
    let fx = Fixture::on_disk();
    fx.file("a.csv", "a\n1\n");
    let cx = fx.context("orders");
    cx.cancel.cancel();
    let err = LoadAction
        .run(spec(json!({"path": "a.csv"})), cx)
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Cancelled { .. }), "{err:?}");
}
