//! Type-checking the data steps of projects written to disk, as `weir
//! check` does: `weir_spec::check_project` with the real registry, then
//! `weir_data::typecheck`.

use weir_data::TypeCheck;
use weir_exec::Registry;
use weir_spec::CheckOutput;
use weir_types::{Diagnostic, Span};

/// A project with `weir.yaml` (`name: t`) and `files` (relative path,
/// contents); removed when dropped.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("weir.yaml"), "name: t\n").unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// Validates and type-checks `files`. The project itself must be valid: a
/// diagnostic from validation would make the type-check prove nothing.
async fn typecheck(files: &[(&str, &str)]) -> (CheckOutput, TypeCheck) {
    let dir = project(files);
    let mut registry = Registry::builtin();
    weir_data::register_actions(&mut registry);
    let checked = weir_spec::check_project(dir.path(), &registry, &[]);
    assert!(
        checked.diagnostics.is_empty(),
        "the project does not validate: {:#?}",
        checked.diagnostics
    );
    let types = weir_data::typecheck(&checked).await;
    (checked, types)
}

/// The only diagnostic, which must have `code`.
fn only(types: &TypeCheck, code: &str) -> Diagnostic {
    assert_eq!(
        types.diagnostics.len(),
        1,
        "expected one diagnostic: {:#?}",
        types.diagnostics
    );
    let d = types.diagnostics[0].clone();
    assert_eq!(d.code, code, "{d:#?}");
    d
}

/// The primary label's span.
fn label(d: &Diagnostic) -> Span {
    d.labels
        .first()
        .unwrap_or_else(|| panic!("no label: {d:#?}"))
        .span
}

/// The 1-based line and column of the only occurrence of `needle` in `text`.
fn position(text: &str, needle: &str) -> (u32, u32) {
    let at = text.find(needle).unwrap();
    assert_eq!(text.matches(needle).count(), 1, "`{needle}` is not unique");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (u32::try_from(line).unwrap(), u32::try_from(column).unwrap())
}

/// The text a label underlines.
fn underlined(text: &str, span: Span) -> &str {
    &text[span.offset..span.offset + span.len]
}

const ORDERS_SCHEMA: &str = "\
columns:
  id: { type: int64, nullable: false, unique: true }
  customer_id: { type: int64, nullable: false }
  amount: { type: \"decimal(10, 2)\", min: 0 }
  status: { type: string, values: [paid, shipped, cancelled] }
";

const CUSTOMERS_SCHEMA: &str = "\
columns:
  customer_id: { type: int64, nullable: false, unique: true }
  country: { type: string }
";

const PIPELINE: &str = "pipelines/p.yaml";

#[tokio::test]
async fn a_valid_project_has_no_diagnostic_and_every_step_is_checked() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  customers:
    load: { path: data/customers.csv }
    schema: customers
  revenue:
    sql: |
      SELECT c.country, sum(o.amount) AS revenue, count(*) AS orders
      FROM orders o JOIN customers c ON o.customer_id = c.customer_id
      WHERE o.status = 'paid'
      GROUP BY c.country
    checks:
      - not_null: country
      - unique: [country]
      - range: { column: revenue, min: 0 }
  ranked:
    sql: SELECT country, revenue FROM revenue ORDER BY revenue DESC
  gate:
    check:
      input: ranked
      checks:
        - not_null: [country, revenue]
";
    let (_, types) = typecheck(&[
        (PIPELINE, pipeline),
        ("schemas/orders.yaml", ORDERS_SCHEMA),
        ("schemas/customers.yaml", CUSTOMERS_SCHEMA),
    ])
    .await;
    assert!(types.diagnostics.is_empty(), "{:#?}", types.diagnostics);
    assert!(types.unchecked.is_empty(), "{:?}", types.unchecked);
    let mut checked = types.checked.clone();
    checked.sort();
    assert_eq!(
        checked,
        ["p.customers", "p.orders", "p.ranked", "p.revenue"]
    );
}

#[tokio::test]
async fn an_unknown_column_is_labelled_where_it_is_written_in_the_sql_block() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  revenue:
    sql: |
      SELECT customer_id,
             ammount AS revenue
      FROM orders
";
    let (_, types) =
        typecheck(&[(PIPELINE, pipeline), ("schemas/orders.yaml", ORDERS_SCHEMA)]).await;
    let d = only(&types, "sql-unknown-column");
    assert_eq!(d.file.as_deref(), Some(PIPELINE));
    let span = label(&d);
    // The block's second line, at the typo's column in the YAML file.
    assert_eq!((span.line, span.column), position(pipeline, "ammount"));
    assert_eq!((span.line, span.column), (9, 14));
    assert_eq!(underlined(pipeline, span), "ammount");
    assert_eq!(d.labels[0].message.as_deref(), Some("unknown column"));
    assert_eq!(d.message, "step `revenue`: column `ammount` not found");
    assert_contains_help(&d, "amount");
    assert!(
        !types.checked.contains(&"p.revenue".to_owned()),
        "{:?}",
        types.checked
    );
}

/// The column's name is the whole token, not what follows it: `sum(ammount)`
/// must not report `ammount)`.
#[tokio::test]
async fn an_unknown_column_inside_a_call_is_named_without_the_parenthesis() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  revenue:
    sql: |
      SELECT customer_id,
             sum(ammount) AS revenue
      FROM orders
      GROUP BY customer_id
";
    let (_, types) =
        typecheck(&[(PIPELINE, pipeline), ("schemas/orders.yaml", ORDERS_SCHEMA)]).await;
    let d = only(&types, "sql-unknown-column");
    let span = label(&d);
    assert_eq!((span.line, span.column), position(pipeline, "ammount"));
    assert_eq!(d.message, "step `revenue`: column `ammount` not found");
    assert_eq!(underlined(pipeline, span), "ammount");
}

#[tokio::test]
async fn a_qualified_unknown_column_is_found_and_labelled() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  paid:
    sql: |
      SELECT o.id
      FROM orders o
      WHERE o.stauts = 'paid'
";
    let (_, types) =
        typecheck(&[(PIPELINE, pipeline), ("schemas/orders.yaml", ORDERS_SCHEMA)]).await;
    let d = only(&types, "sql-unknown-column");
    let span = label(&d);
    assert_eq!((span.line, span.column), position(pipeline, "o.stauts"));
    assert_eq!(underlined(pipeline, span), "o.stauts");
    assert_eq!(d.message, "step `paid`: column `o.stauts` not found");
    assert_eq!(d.help.as_deref(), Some("did you mean `o.status`?"));
}

#[tokio::test]
async fn a_type_error_is_reported_on_its_expression() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  labels:
    sql: |
      SELECT id,
             status - 1 AS n
      FROM orders
";
    let (_, types) =
        typecheck(&[(PIPELINE, pipeline), ("schemas/orders.yaml", ORDERS_SCHEMA)]).await;
    let d = only(&types, "sql-type");
    assert!(d.message.starts_with("step `labels`: "), "{}", d.message);
    let span = label(&d);
    assert_eq!(d.labels[0].message.as_deref(), Some("does not type-check"));
    // On the expression's line, inside the block.
    assert_eq!((span.line, span.column), position(pipeline, "status - 1"));
    let help = d.help.clone().unwrap_or_default();
    assert!(help.contains("Utf8"), "{d:#?}");
    assert!(!types.checked.contains(&"p.labels".to_owned()));
}

#[tokio::test]
async fn a_contract_mismatch_names_missing_and_mistyped_columns_at_the_schema_key() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  revenue:
    sql: |
      SELECT customer_id, status, sum(amount) AS total
      FROM orders
      GROUP BY customer_id, status
    schema: revenue
";
    let revenue = "\
columns:
  customer_id: { type: int64 }
  status: { type: int64 }
  revenue: { type: \"decimal(20, 2)\" }
";
    let (_, types) = typecheck(&[
        (PIPELINE, pipeline),
        ("schemas/orders.yaml", ORDERS_SCHEMA),
        ("schemas/revenue.yaml", revenue),
    ])
    .await;
    let d = only(&types, "contract-mismatch");
    assert_eq!(
        d.message,
        "the output of step `revenue` does not match contract `schemas/revenue.yaml`: \
         column `status` is Utf8, the contract says int64; \
         column `revenue` is missing; \
         column `total` is not in the contract"
    );
    let span = label(&d);
    assert_eq!((span.line, span.column), position(pipeline, "revenue\n"));
    assert_eq!(d.labels[0].message.as_deref(), Some("declared here"));
    let help = d.help.clone().unwrap();
    assert!(help.contains("`total` Decimal128"), "{help}");
    // Downstream steps see the contract's schema.
    assert!(types.checked.contains(&"p.revenue".to_owned()));
}

#[tokio::test]
async fn a_contract_of_the_same_type_family_is_not_a_mismatch() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  revenue:
    sql: |
      SELECT customer_id, CAST(sum(amount) AS DOUBLE) AS revenue
      FROM orders
      GROUP BY customer_id
    schema: revenue
";
    let revenue = "\
columns:
  customer_id: { type: int32 }
  revenue: { type: \"decimal(20, 2)\" }
";
    let (_, types) = typecheck(&[
        (PIPELINE, pipeline),
        ("schemas/orders.yaml", ORDERS_SCHEMA),
        ("schemas/revenue.yaml", revenue),
    ])
    .await;
    assert!(types.diagnostics.is_empty(), "{:#?}", types.diagnostics);
}

#[tokio::test]
async fn a_check_naming_an_unknown_column_suggests_the_right_one() {
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
    checks:
      - not_null: [id, customer_id]
      - accepted_values: { column: stauts, values: [paid, shipped] }
  by_customer:
    sql: SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id
  gate:
    check:
      input: by_customer
      checks:
        - unique: custmer_id
";
    let (_, types) =
        typecheck(&[(PIPELINE, pipeline), ("schemas/orders.yaml", ORDERS_SCHEMA)]).await;
    assert_eq!(types.diagnostics.len(), 2, "{:#?}", types.diagnostics);
    for (d, step, check, typo, right) in [
        (
            &types.diagnostics[0],
            "orders",
            "accepted_values(stauts)",
            "stauts",
            "status",
        ),
        (
            &types.diagnostics[1],
            "gate",
            "unique(custmer_id)",
            "custmer_id",
            "customer_id",
        ),
    ] {
        assert_eq!(d.code, "check-unknown-column", "{d:#?}");
        assert_eq!(
            d.message,
            format!(
                "check `{check}` of step `{step}` names column `{typo}`, which the step's output does not have"
            )
        );
        assert_eq!(d.help, Some(format!("did you mean `{right}`?")));
        let span = label(d);
        assert_eq!((span.line, span.column), position(pipeline, typo));
        assert_eq!(underlined(pipeline, span), typo);
    }
}

#[tokio::test]
async fn a_step_reading_a_load_without_contract_is_unchecked_not_reported() {
    // The typo would be an error if the step were checked: unchecked, it is
    // left to the run.
    let pipeline = "\
name: p
steps:
  orders:
    load: { path: data/orders.csv }
  revenue:
    sql: SELECT customer_id, sum(ammount) AS revenue FROM orders GROUP BY 1
  top:
    sql: SELECT * FROM revenue
";
    let (_, types) = typecheck(&[(PIPELINE, pipeline)]).await;
    assert!(types.diagnostics.is_empty(), "{:#?}", types.diagnostics);
    assert_eq!(
        types.unchecked,
        [
            (
                "p.revenue".to_owned(),
                "input `orders` has no contract (`schema:`)".to_owned()
            ),
            (
                "p.top".to_owned(),
                "the schema of input `revenue` is not known".to_owned()
            ),
        ]
    );
    assert!(types.checked.is_empty(), "{:?}", types.checked);
}

#[tokio::test]
async fn templates_with_param_defaults_still_type_check() {
    let pipeline = "\
name: p
params:
  min_amount: { type: float, default: 5 }
  status: { type: string, default: paid }
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  big:
    sql: |
      SELECT id, amount
      FROM orders
      WHERE amount >= {{ params.min_amount }} AND status = '{{ params.status }}'
  typo:
    sql: |
      SELECT id
      FROM orders
      WHERE amont >= {{ params.min_amount }}
";
    let (_, types) =
        typecheck(&[(PIPELINE, pipeline), ("schemas/orders.yaml", ORDERS_SCHEMA)]).await;
    // `big` is checked (not skipped); `typo` is checked too, and its typo
    // found at its place in the file.
    assert!(types.checked.contains(&"p.big".to_owned()), "{types:?}");
    assert!(types.unchecked.is_empty(), "{:?}", types.unchecked);
    let d = only(&types, "sql-unknown-column");
    assert!(d.message.starts_with("step `typo`: "), "{}", d.message);
    let span = label(&d);
    assert_eq!((span.line, span.column), position(pipeline, "amont"));
}

#[tokio::test]
async fn a_template_without_a_value_leaves_the_step_unchecked() {
    let pipeline = "\
name: p
params:
  since: { type: string }
steps:
  orders:
    load: { path: data/orders.csv }
    schema: orders
  recent:
    sql: \"SELECT id FROM orders WHERE status = '{{ params.since }}'\"
";
    let (_, types) =
        typecheck(&[(PIPELINE, pipeline), ("schemas/orders.yaml", ORDERS_SCHEMA)]).await;
    assert!(types.diagnostics.is_empty(), "{:#?}", types.diagnostics);
    assert_eq!(
        types.unchecked,
        [(
            "p.recent".to_owned(),
            "its templates need values only known when it runs".to_owned()
        )]
    );
}

fn assert_contains_help(d: &Diagnostic, needle: &str) {
    let help = d.help.as_deref().unwrap_or_default();
    assert!(help.contains(needle), "expected `{needle}` in help: {d:#?}");
}
