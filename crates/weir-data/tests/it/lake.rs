//! Lake queries across namespaces, and rendering results.

use std::sync::Arc;

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use weir_data::{Format, LakeTable, format_batches, head, query, write_dataset};

use crate::{Fixture, assert_contains, csv_rows};

fn people() -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![
                Some("ann"),
                None,
                Some("chloé, \"c\""),
            ])),
            Arc::new(Float64Array::from(vec![Some(1.5), Some(2.0), None])),
        ],
    )
    .unwrap();
    (schema, batch)
}

async fn lake(fx: &Fixture) -> Vec<LakeTable> {
    let (schema, batch) = people();
    let all = write_dataset(&fx.blobs, schema.clone(), std::slice::from_ref(&batch))
        .await
        .unwrap();
    let two = write_dataset(&fx.blobs, schema, &[batch.slice(0, 2)])
        .await
        .unwrap();
    let table = |ns: &str, pipeline: &str, step: &str, files: &[String]| LakeTable {
        namespace: ns.to_owned(),
        pipeline: pipeline.to_owned(),
        step: step.to_owned(),
        files: files.to_vec(),
    };
    vec![
        table("default", "crm", "people", &all.files),
        table("acme", "crm", "people", &two.files),
        table(
            "acme",
            "sales",
            "broken",
            &["datasets/missing.parquet".to_owned()],
        ),
    ]
}

#[tokio::test]
async fn three_part_names_across_namespaces() {
    let fx = Fixture::on_disk();
    let tables = lake(&fx).await;
    let (schema, batches) = query(
        &fx.blobs,
        &tables,
        "default",
        "SELECT d.id, d.name, a.id IS NOT NULL AS in_acme \
         FROM default.crm.people d LEFT JOIN acme.crm.people a ON a.id = d.id",
    )
    .await
    .unwrap();
    assert_eq!(
        csv_rows(&schema, &batches),
        [
            "id,name,in_acme",
            "1,ann,true",
            "2,,true",
            "3,\"chloé, \"\"c\"\"\",false"
        ]
    );

    // Two-part names read the default namespace.
    let (schema, batches) = query(
        &fx.blobs,
        &tables,
        "acme",
        "SELECT count(*) AS n FROM crm.people",
    )
    .await
    .unwrap();
    assert_eq!(csv_rows(&schema, &batches), ["n", "2"]);

    // The broken table is never opened unless named.
    let err = query(&fx.blobs, &tables, "acme", "SELECT * FROM sales.broken")
        .await
        .unwrap_err();
    assert_contains(&err.to_string(), "missing.parquet");

    let err = query(&fx.blobs, &tables, "default", "SELECT nope FROM crm.people")
        .await
        .unwrap_err();
    assert_contains(&err.to_string(), "nope");

    let err = query(&fx.blobs, &tables, "default", "DROP TABLE crm.people")
        .await
        .unwrap_err();
    assert!(matches!(err, weir_data::Error::DataFusion(_)), "{err}");
}

#[tokio::test]
async fn head_reads_the_first_rows() {
    let fx = Fixture::in_memory();
    let tables = lake(&fx).await;
    let batches = head(&fx.blobs, &tables[0].files, 2).await.unwrap();
    let (schema, _) = people();
    assert_eq!(
        csv_rows(&schema, &batches),
        ["id,name,score", "1,ann,1.5", "2,,2.0"]
    );
}

#[test]
fn format_batches_in_every_format() {
    let (schema, batch) = people();
    let batches = [batch];

    let table = format_batches(&schema, &batches, Format::Table).unwrap();
    assert_eq!(
        table,
        "+----+------------+-------+\n\
         | id | name       | score |\n\
         +----+------------+-------+\n\
         | 1  | ann        | 1.5   |\n\
         | 2  |            | 2.0   |\n\
         | 3  | chloé, \"c\" |       |\n\
         +----+------------+-------+"
    );

    let csv = format_batches(&schema, &batches, Format::Csv).unwrap();
    assert_eq!(
        csv,
        "id,name,score\n1,ann,1.5\n2,,2.0\n3,\"chloé, \"\"c\"\"\",\n"
    );

    let json = format_batches(&schema, &batches, Format::Json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value,
        serde_json::json!([
            {"id": 1, "name": "ann", "score": 1.5},
            {"id": 2, "name": null, "score": 2.0},
            {"id": 3, "name": "chloé, \"c\"", "score": null},
        ])
    );
}

#[test]
fn format_batches_without_rows_keeps_the_columns() {
    let (schema, _) = people();
    assert_eq!(
        format_batches(&schema, &[], Format::Csv).unwrap(),
        "id,name,score\n"
    );
    assert_eq!(format_batches(&schema, &[], Format::Json).unwrap(), "[]");
    let table = format_batches(&schema, &[], Format::Table).unwrap();
    assert_contains(&table, "| id | name | score |");
}
