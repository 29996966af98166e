//! The `sql` action over datasets written by `load`.

use serde_json::json;
use weir_data::{CODES, LoadAction, LoadSpec, SqlAction, SqlSpec, register_actions};
use weir_exec::{Action, ActionError, DatasetOutput, Registry};

use crate::{Fixture, assert_contains, dataset_rows, input};

async fn load(fx: &Fixture, step: &str, path: &str, csv: &str) -> DatasetOutput {
    fx.file(path, csv);
    let spec: LoadSpec = serde_json::from_value(json!({ "path": path })).unwrap();
    LoadAction
        .run(spec, fx.context(step))
        .await
        .unwrap()
        .dataset
        .unwrap()
}

async fn orders_and_customers(fx: &Fixture) -> (DatasetOutput, DatasetOutput) {
    let orders = load(
        fx,
        "orders",
        "data/orders.csv",
        "order_id,customer_id,amount,status\n\
         1,10,100.0,paid\n2,10,50.0,paid\n3,20,70.0,cancelled\n4,20,30.0,paid\n5,30,5.0,paid\n",
    )
    .await;
    let customers = load(
        fx,
        "customers",
        "data/customers.csv",
        "customer_id,country\n10,FR\n20,DE\n30,FR\n",
    )
    .await;
    (orders, customers)
}

#[tokio::test]
async fn join_and_group_by_over_two_inputs() {
    let fx = Fixture::on_disk();
    let (orders, customers) = orders_and_customers(&fx).await;
    let mut cx = fx.context("revenue");
    cx.inputs
        .insert("orders".to_owned(), input("orders", &orders));
    cx.inputs
        .insert("customers".to_owned(), input("customers", &customers));
    let query = "SELECT c.country, sum(o.amount) AS revenue, count(*) AS n \
                 FROM orders o JOIN customers c USING (customer_id) \
                 WHERE o.status <> 'cancelled' GROUP BY c.country";
    let out = SqlAction
        .run(SqlSpec(query.to_owned()), cx.clone())
        .await
        .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 2);
    assert_eq!(out.value, Some(json!({"rows": 2})));
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        ["country,revenue,n", "DE,30.0,1", "FR,155.0,3"]
    );
    assert_eq!(
        dataset.schema,
        json!({"fields": [
            {"name": "country", "type": "Utf8", "nullable": true},
            {"name": "revenue", "type": "Float64", "nullable": true},
            {"name": "n", "type": "Int64", "nullable": false},
        ]})
    );
    // The dependency the engine would have found.
    assert_eq!(
        SqlAction.inputs(&SqlSpec(query.to_owned())),
        ["orders", "customers"]
    );

    // A retry writes the same file.
    let again = SqlAction.run(SqlSpec(query.to_owned()), cx).await.unwrap();
    assert_eq!(again.dataset.unwrap().files, dataset.files);
}

#[tokio::test]
async fn a_sql_output_feeds_the_next_sql_step() {
    let fx = Fixture::in_memory();
    let (orders, _) = orders_and_customers(&fx).await;
    let mut cx = fx.context("clean");
    cx.inputs
        .insert("orders".to_owned(), input("orders", &orders));
    let clean = SqlAction
        .run(
            SqlSpec("SELECT * FROM orders WHERE status = 'paid'".to_owned()),
            cx,
        )
        .await
        .unwrap()
        .dataset
        .unwrap();
    let mut cx = fx.context("big");
    cx.inputs.insert("clean".to_owned(), input("clean", &clean));
    let big = SqlAction
        .run(
            SqlSpec("WITH b AS (SELECT * FROM clean WHERE amount >= 50) SELECT order_id FROM b ORDER BY order_id".to_owned()),
            cx,
        )
        .await
        .unwrap()
        .dataset
        .unwrap();
    assert_eq!(dataset_rows(&fx.blobs, &big).await, ["order_id", "1", "2"]);
}

fn message(err: ActionError) -> String {
    match err {
        ActionError::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_columns_and_tables_fail_with_their_names() {
    let fx = Fixture::on_disk();
    let (orders, _) = orders_and_customers(&fx).await;
    let mut cx = fx.context("bad");
    cx.inputs
        .insert("orders".to_owned(), input("orders", &orders));

    let msg = message(
        SqlAction
            .run(
                SqlSpec("SELECT amount, totl FROM orders".to_owned()),
                cx.clone(),
            )
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "totl");

    let msg = message(
        SqlAction
            .run(SqlSpec("SELECT * FROM ordres".to_owned()), cx.clone())
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "ordres");

    let msg = message(
        SqlAction
            .run(
                SqlSpec("SELECT o.order_id, p.order_id FROM orders o, orders p".to_owned()),
                cx.clone(),
            )
            .await
            .unwrap_err(),
    );
    assert_contains(&msg, "more than one column named `order_id`");

    for statement in [
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO orders VALUES (1, 1, 1.0, 'x')",
    ] {
        let err = SqlAction
            .run(SqlSpec(statement.to_owned()), cx.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ActionError::Failed { .. }),
            "{statement}: {err:?}"
        );
    }
}

#[tokio::test]
async fn queries_without_inputs_and_empty_results() {
    let fx = Fixture::in_memory();
    let out = SqlAction
        .run(
            SqlSpec(
                "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(id, name) WHERE id > 5".to_owned(),
            ),
            fx.context("none"),
        )
        .await
        .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 0);
    assert_eq!(dataset_rows(&fx.blobs, &dataset).await, ["id,name"]);
}

#[test]
fn register_actions_adds_load_and_sql_with_schemas() {
    let mut registry = Registry::builtin();
    register_actions(&mut registry);
    let kinds = registry.kinds();
    assert!(
        kinds.contains(&"load") && kinds.contains(&"sql"),
        "{kinds:?}"
    );
    for kind in ["load", "sql"] {
        assert!(registry.spec_schema(kind).is_some(), "{kind}");
    }
}

#[test]
fn every_emitted_code_is_listed() {
    let mut emitted = Vec::new();
    for path in ["", "a.txt", "s3://b/a.csv"] {
        let spec: LoadSpec = serde_json::from_value(json!({ "path": path })).unwrap();
        emitted.extend(LoadAction.check(&spec));
    }
    let spec: LoadSpec =
        serde_json::from_value(json!({"path": "a.csv", "delimiter": "é"})).unwrap();
    emitted.extend(LoadAction.check(&spec));
    for sql in ["SELEC", "", "DROP TABLE x"] {
        emitted.extend(SqlAction.check(&SqlSpec(sql.to_owned())));
    }
    for export in [
        json!({"input": "r"}),
        json!({"input": "r", "postgres": {"url": "", "table": "t"}}),
    ] {
        let spec: weir_data::ExportSpec = serde_json::from_value(export).unwrap();
        emitted.extend(weir_data::ExportAction.check(&spec));
    }
    let spec: weir_data::CheckStepSpec =
        serde_json::from_value(json!({"input": "r", "checks": []})).unwrap();
    emitted.extend(weir_data::CheckAction.check(&spec));
    let codes: Vec<&str> = emitted.iter().map(|d| d.code.as_str()).collect();
    // The type checker's codes need a whole project: tests/it/typecheck.rs
    // and the golden cases emit them.
    let typecheck = [
        "sql-unknown-column",
        "sql-type",
        "contract-mismatch",
        "check-unknown-column",
    ];
    for (code, _) in CODES {
        if typecheck.contains(code) {
            continue;
        }
        assert!(codes.contains(code), "`{code}` is never emitted: {codes:?}");
    }
    for code in &codes {
        assert!(
            CODES.iter().any(|(c, _)| c == code),
            "`{code}` is not in CODES"
        );
    }
}

/// `persist: false`: the step returns its query instead of a dataset, and a
/// chain of such steps runs inside the reading step's own plan.
#[tokio::test]
async fn unstored_steps_run_as_views_inside_the_reading_query() {
    let fx = Fixture::on_disk();
    let (orders, customers) = orders_and_customers(&fx).await;
    let stored = |name: &str, out: &DatasetOutput| input(name, out);

    // `paid` is not stored: its task plans the query and returns it.
    let mut cx = fx.context("paid");
    cx.data.persist = false;
    cx.inputs.insert("orders".into(), stored("orders", &orders));
    let paid_sql = "SELECT * FROM orders WHERE status = 'paid'";
    let out = SqlAction
        .run(SqlSpec(paid_sql.to_owned()), cx.clone())
        .await
        .unwrap();
    assert!(out.dataset.is_none(), "nothing is stored");
    assert_eq!(out.value, Some(json!({ weir_exec::VIEW_KEY: paid_sql })));
    let blobs_before = std::fs::read_dir(fx.blob_dir.path().join("datasets"))
        .unwrap()
        .count();
    // An error in an unstored query is reported by its own step.
    let broken = SqlAction
        .run(SqlSpec("SELECT nope FROM orders".to_owned()), cx)
        .await
        .unwrap_err();
    assert_contains(&broken.to_string(), "nope");

    // `big` (not stored either) reads `paid`; `report` reads `big` and
    // `customers`: one plan over the stored orders and customers.
    let view = |sql: &str, inputs: Vec<(&str, weir_exec::DatasetInput)>| weir_exec::DatasetInput {
        version: weir_types::DatasetVersionRef {
            namespace: "default".into(),
            name: "sales.view".into(),
            version: 0,
        },
        files: Vec::new(),
        schema: serde_json::Value::Null,
        rows: 0,
        view: Some(Box::new(weir_exec::View {
            sql: sql.to_owned(),
            inputs: inputs.into_iter().map(|(n, i)| (n.to_owned(), i)).collect(),
        })),
    };
    let paid = view(paid_sql, vec![("orders", stored("orders", &orders))]);
    let big = view(
        "SELECT * FROM paid WHERE amount >= 30",
        vec![("paid", paid)],
    );
    let mut cx = fx.context("report");
    cx.inputs.insert("big".into(), big.clone());
    cx.inputs
        .insert("customers".into(), stored("customers", &customers));
    let out = SqlAction
        .run(
            SqlSpec(
                "SELECT c.country, sum(b.amount) AS revenue FROM big b JOIN customers c USING (customer_id) GROUP BY 1"
                    .to_owned(),
            ),
            cx,
        )
        .await
        .unwrap();
    assert_eq!(
        dataset_rows(&fx.blobs, &out.dataset.unwrap()).await,
        ["country,revenue", "DE,30.0", "FR,150.0"]
    );
    assert_eq!(
        std::fs::read_dir(fx.blob_dir.path().join("datasets"))
            .unwrap()
            .count(),
        blobs_before + 1,
        "only the reading step's output was written"
    );
    // Lineage skips what is not stored.
    assert_eq!(big.stored_versions(), [stored("orders", &orders).version]);
}
