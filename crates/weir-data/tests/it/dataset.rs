//! Datasets larger than one file: written as several files (1,048,576 rows
//! each) and read back in row order by everything that reads datasets.

use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;
use weir_data::{ExportAction, ExportSpec, SqlAction, SqlSpec, head, read_dataset, write_dataset};
use weir_exec::Action;

use crate::{Fixture, input};

const ROWS: usize = 2_500_000;

/// `ROWS` rows: `id` counts from 0, `kind` repeats four values; in batches
/// of 8,192 rows, as a CSV load gives them.
fn orders() -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
    ]));
    let kinds = ["paid", "shipped", "cancelled", "refunded"];
    let batches = (0..ROWS)
        .step_by(8192)
        .map(|start| {
            let end = (start + 8192).min(ROWS);
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from_iter_values((start..end).map(|i| i as i64))),
                    Arc::new(StringArray::from_iter_values(
                        (start..end).map(|i| kinds[i % 4]),
                    )),
                ],
            )
            .unwrap()
        })
        .collect();
    (schema, batches)
}

/// Every `id` of `batches`, in order.
fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            ids.values().to_vec()
        })
        .collect()
}

#[tokio::test]
async fn a_large_dataset_is_several_files_read_in_row_order() {
    let fx = Fixture::on_disk();
    let (schema, batches) = orders();
    let out = write_dataset(&fx.blobs, schema.clone(), &batches)
        .await
        .unwrap();
    assert_eq!(out.rows, ROWS as u64);
    assert_eq!(out.files.len(), 3, "{:?}", out.files);
    let sizes: u64 = out
        .files
        .iter()
        .map(|key| std::fs::metadata(fx.blob_path(key)).unwrap().len())
        .sum();
    assert_eq!(out.bytes, sizes);
    // Written again, the same files.
    let again = write_dataset(&fx.blobs, schema.clone(), &batches)
        .await
        .unwrap();
    assert_eq!(again, out);

    let (read, back) = read_dataset(&fx.blobs, &out.files).await.unwrap();
    assert_eq!(read.fields(), schema.fields());
    let expected: Vec<i64> = (0..ROWS as i64).collect();
    assert!(ids(&back) == expected, "rows read back out of order");
    // Files hold consecutive rows: file 1 starts at row 1,048,576.
    let (_, second) = read_dataset(&fx.blobs, &out.files[1..2]).await.unwrap();
    assert_eq!(ids(&second).first(), Some(&1_048_576));
    assert_eq!(ids(&second).len(), 1_048_576);
    let first = head(&fx.blobs, &out.files, 1_048_580).await.unwrap();
    assert!(ids(&first) == expected[..1_048_580], "head out of order");

    // A query sees every row once.
    let mut cx = fx.context("totals");
    cx.inputs.insert("orders".to_owned(), input("orders", &out));
    let totals = SqlAction
        .run(
            SqlSpec(
                "SELECT count(*) AS n, sum(id) AS s, count(DISTINCT id) AS d FROM orders"
                    .to_owned(),
            ),
            cx,
        )
        .await
        .unwrap()
        .dataset
        .unwrap();
    let (_, totals) = read_dataset(&fx.blobs, &totals.files).await.unwrap();
    let n = ROWS as i64;
    for (column, expected) in [(0, n), (1, n * (n - 1) / 2), (2, n)] {
        let value = totals[0]
            .column(column)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(value.value(0), expected, "column {column}");
    }

    // `export` writes the rows in the dataset's order.
    let mut cx = fx.context("report");
    cx.inputs.insert("orders".to_owned(), input("orders", &out));
    let spec: ExportSpec =
        serde_json::from_value(json!({"input": "orders", "path": "out/orders.csv"})).unwrap();
    ExportAction.run(spec, cx).await.unwrap();
    let text = std::fs::read_to_string(fx.project.path().join("out/orders.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,kind"));
    let exported: Vec<i64> = lines
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(exported == expected, "rows exported out of order");
}
