//! Data quality: `checks:` (and `check` steps) and contracts
//! (`schemas/*.yaml`) evaluated on a table.
//!
//! Every check is a query for the rows that violate it, run by DataFusion
//! over the table in memory: the count is what is reported, the first 10
//! rows are shown. A contract is its column list (names and types, cast
//! where the data allows it) plus rules that are checks (`nullable: false`
//! is `not_null`, `unique` is `unique`, ...), so both share one engine.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use weir_spec::{
    AcceptedValuesSpec, CheckSpec, ColumnType, Columns, Contract, RangeSpec, RowCountSpec,
};

use crate::error::{Error, Result};
use crate::lake::{Format, format_batches};
use crate::task::conform;

/// Offending rows shown per failed check.
pub const SAMPLE_ROWS: usize = 10;

/// A check that did not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFailure {
    /// `not_null(email)`, `contract orders: column amount min 0`, ...
    pub check: String,
    /// Rows that violate it (for `row_count`: the row count).
    pub violations: u64,
    pub rows: u64,
    /// Up to [`SAMPLE_ROWS`] offending rows as a text table; empty when the
    /// check is about the table, not rows.
    pub sample: String,
    /// Overrides the default "N of M rows violate it" text.
    pub detail: Option<String>,
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "check `{}` failed: {detail}", self.check)?,
            None => write!(
                f,
                "check `{}` failed: {} of {} rows violate it",
                self.check, self.violations, self.rows
            )?,
        }
        if !self.sample.is_empty() {
            let shown = self.violations.min(SAMPLE_ROWS as u64);
            write!(
                f,
                "\n{}{}",
                if self.violations > shown {
                    format!("first {shown} offending rows:\n")
                } else {
                    "offending rows:\n".to_owned()
                },
                self.sample.trim_end()
            )?;
        }
        Ok(())
    }
}

/// A table checks run against: `t` in a session of its own.
pub struct CheckedTable {
    ctx: SessionContext,
    schema: SchemaRef,
    rows: u64,
}

impl CheckedTable {
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema.clone(), vec![batches])?;
        ctx.register_table("t", Arc::new(table))?;
        Ok(CheckedTable { ctx, schema, rows })
    }

    /// Runs `check`; `Ok(None)` when it holds. A check that names a column
    /// the table does not have, or whose expression does not plan, is an
    /// error (the check itself is wrong, not the data).
    pub async fn run(&self, check: &CheckSpec) -> Result<Option<CheckFailure>, String> {
        self.run_named(check, &check.describe()).await
    }

    async fn run_named(
        &self,
        check: &CheckSpec,
        name: &str,
    ) -> Result<Option<CheckFailure>, String> {
        for column in check.columns() {
            if self.schema.field_with_name(column).is_err() {
                return Err(format!(
                    "check `{name}` names column `{column}`, which the data does not have\nhint: columns are {}",
                    self.column_list()
                ));
            }
        }
        let failure = |violations: u64, sample: String, detail: Option<String>| CheckFailure {
            check: name.to_owned(),
            violations,
            rows: self.rows,
            sample,
            detail,
        };
        if let CheckSpec::RowCount(RowCountSpec { min, max }) = check {
            let n = self.rows;
            let detail = match (min, max) {
                (Some(min), _) if n < *min => format!("{n} rows, fewer than the minimum {min}"),
                (_, Some(max)) if n > *max => format!("{n} rows, more than the maximum {max}"),
                _ => return Ok(None),
            };
            return Ok(Some(failure(n, String::new(), Some(detail))));
        }
        let columns: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let query = violations_query(check, &columns);
        let count = self
            .count(&format!("SELECT count(*) FROM ({query}) AS v"))
            .await
            .map_err(|e| plan_error(name, &e))?;
        if count == 0 {
            return Ok(None);
        }
        let sample = self
            .sample(&format!("{query} LIMIT {SAMPLE_ROWS}"))
            .await
            .map_err(|e| plan_error(name, &e))?;
        Ok(Some(failure(count, sample, None)))
    }

    fn column_list(&self) -> String {
        self.schema
            .fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn count(&self, sql: &str) -> Result<u64> {
        let batches = self.ctx.sql(sql).await?.collect().await?;
        let value = batches
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>())
            .filter(|a| !a.is_empty())
            .map(|a| a.value(0));
        value
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| Error::Internal(format!("`{sql}` returned no count")))
    }

    async fn sample(&self, sql: &str) -> Result<String> {
        let df = self.ctx.sql(sql).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = conform(&schema, df.collect().await?)?;
        format_batches(&schema, &batches, Format::Table)
    }
}

fn plan_error(check: &str, e: &Error) -> String {
    format!("check `{check}` cannot be evaluated: {e}")
}

/// The rows of `t` that violate `check` (not for `row_count`).
fn violations_query(check: &CheckSpec, all_columns: &[String]) -> String {
    let quoted = |cols: &Columns| cols.0.iter().map(|c| ident(c)).collect::<Vec<_>>();
    let predicate = match check {
        CheckSpec::NotNull(cols) => quoted(cols)
            .iter()
            .map(|c| format!("{c} IS NULL"))
            .collect::<Vec<_>>()
            .join(" OR "),
        CheckSpec::Unique(cols) => {
            // Rows whose key appears more than once, duplicates side by side.
            let cols = quoted(cols);
            let list = cols.join(", ");
            let not_null = cols
                .iter()
                .map(|c| format!("{c} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let on = cols
                .iter()
                .map(|c| format!("t.{c} = d.{c}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            // Ordered by the key, then every other column, so the sample
            // is the same on every machine.
            let order: Vec<String> = cols
                .iter()
                .cloned()
                .chain(
                    all_columns
                        .iter()
                        .map(|c| ident(c))
                        .filter(|c| !cols.contains(c)),
                )
                .map(|c| format!("t.{c}"))
                .collect();
            return format!(
                "SELECT t.* FROM t JOIN (SELECT {list} FROM t WHERE {not_null} GROUP BY {list} HAVING count(*) > 1) AS d ON {on} ORDER BY {}",
                order.join(", ")
            );
        }
        CheckSpec::AcceptedValues(AcceptedValuesSpec { column, values }) => {
            let c = ident(column);
            if values.is_empty() {
                format!("{c} IS NOT NULL")
            } else {
                let list: Vec<String> = values.iter().map(literal).collect();
                format!("{c} IS NOT NULL AND {c} NOT IN ({})", list.join(", "))
            }
        }
        CheckSpec::Range(RangeSpec { column, min, max }) => {
            let c = ident(column);
            let mut parts = Vec::new();
            if let Some(min) = min {
                parts.push(format!("{c} < {}", literal(min)));
            }
            if let Some(max) = max {
                parts.push(format!("{c} > {}", literal(max)));
            }
            if parts.is_empty() {
                "false".to_owned()
            } else {
                parts.join(" OR ")
            }
        }
        CheckSpec::Expr(expr) => format!("({expr}) IS NOT TRUE"),
        CheckSpec::RowCount(_) => "false".to_owned(),
    };
    format!("SELECT * FROM t WHERE {predicate}")
}

/// A column name as a quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A YAML value as a SQL literal; strings (also dates and timestamps written
/// as text) are coerced by DataFusion to the column's type.
fn literal(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "NULL".to_owned(),
        serde_json::Value::Bool(b) => b.to_string().to_uppercase(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => format!("'{}'", other.to_string().replace('\'', "''")),
    }
}

/// The Arrow type a contract type is stored as.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int8 => DataType::Int8,
        ColumnType::Int16 => DataType::Int16,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::UInt8 => DataType::UInt8,
        ColumnType::UInt16 => DataType::UInt16,
        ColumnType::UInt32 => DataType::UInt32,
        ColumnType::UInt64 => DataType::UInt64,
        ColumnType::Float32 => DataType::Float32,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::String => DataType::Utf8,
        ColumnType::Binary => DataType::Binary,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Decimal(p, s) => DataType::Decimal128(p, s),
    }
}

/// The Arrow schema a contract describes.
pub fn contract_schema(contract: &Contract) -> SchemaRef {
    Arc::new(Schema::new(
        contract
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.ty), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether data of type `from` may be stored as `to` by casting: text is
/// parsed (values that do not parse are counted as violations), numbers
/// convert among themselves (out of range values are counted), dates and
/// timestamps among themselves. Anything else is a type mismatch.
pub fn castable(from: &DataType, to: &DataType) -> bool {
    if from == to || *from == DataType::Null {
        return true;
    }
    let family = |t: &DataType| {
        if t.is_numeric() {
            Some(0)
        } else if matches!(
            t,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
        ) {
            Some(1)
        } else if is_text(t) {
            Some(2)
        } else {
            None
        }
    };
    let same_family = family(from).is_some() && family(from) == family(to);
    (same_family || is_text(from)) && can_cast_types(from, to)
}

/// Whether a query whose output column has type `from` can be declared `to`
/// in a contract, seen before running: as [`castable`], except that text
/// does not count as any type (the query should produce the type).
pub fn statically_compatible(from: &DataType, to: &DataType) -> bool {
    if is_text(from) && !is_text(to) {
        return false;
    }
    castable(from, to)
}

/// What checking a table against its contract found.
pub struct ContractOutcome {
    /// The table with the contract's column order and types (where they
    /// could be cast); extra columns follow.
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// One line per violation, each starting with the column.
    pub violations: Vec<String>,
}

/// Gives the columns `batches` shares with `contract` the contract's types
/// where [`castable`], leaving every other column as it is, and reports how
/// many values did not convert (they become null). Done before
/// anonymization, so `generalize` and `bucket` see typed values.
pub fn cast_to_contract(
    contract: &Contract,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>, Vec<String>)> {
    let targets: Vec<Option<DataType>> = schema
        .fields()
        .iter()
        .map(|f| {
            let declared = arrow_type(contract.column(f.name())?.ty);
            (*f.data_type() != declared && castable(f.data_type(), &declared)).then_some(declared)
        })
        .collect();
    if targets.iter().all(Option::is_none) {
        return Ok((schema, batches, Vec::new()));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&targets)
        .map(|(f, t)| match t {
            Some(t) => Field::new(f.name(), t.clone(), true),
            None => f.as_ref().clone(),
        })
        .collect();
    let out_schema = Arc::new(Schema::new(fields));
    let options = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    let mut failures = vec![0u64; targets.len()];
    let mut out = Vec::with_capacity(batches.len());
    for batch in &batches {
        let mut columns = Vec::with_capacity(targets.len());
        for (i, target) in targets.iter().enumerate() {
            let array = batch.column(i);
            match target {
                None => columns.push(array.clone()),
                Some(to) => {
                    let cast = cast_with_options(array, to, &options)?;
                    failures[i] += (cast.null_count() - array.null_count()) as u64;
                    columns.push(cast);
                }
            }
        }
        out.push(RecordBatch::try_new(out_schema.clone(), columns)?);
    }
    let violations = failures
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| {
            let name = out_schema.field(i).name();
            let ty = contract
                .column(name)
                .map(|c| c.ty.to_string())
                .unwrap_or_default();
            format!(
                "column `{name}`: {} not valid {ty} (stored as null)",
                values_are(*n)
            )
        })
        .collect();
    Ok((out_schema, out, violations))
}

/// Checks `batches` against `contract`: columns present and no others,
/// types (casting where [`castable`]), then the column rules.
pub async fn check_contract(
    contract: &Contract,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    cast_failures_before: Vec<String>,
) -> Result<ContractOutcome> {
    let (schema, batches, cast_failures) = cast_to_contract(contract, schema, batches)?;
    let mut violations = Vec::new();
    let mut fields = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    for column in &contract.columns {
        let Ok(index) = schema.index_of(&column.name) else {
            violations.push(format!(
                "column `{}` ({}) is missing",
                column.name, column.ty
            ));
            continue;
        };
        let actual = schema.field(index).data_type();
        // What could be cast was; anything else of another type is not the
        // contract's.
        if *actual != arrow_type(column.ty) {
            violations.push(format!(
                "column `{}` is {actual}, the contract says {}",
                column.name, column.ty
            ));
        }
        fields.push(schema.field(index).as_ref().clone().with_nullable(true));
        order.push(index);
    }
    for (i, field) in schema.fields().iter().enumerate() {
        if contract.column(field.name()).is_none() {
            violations.push(format!(
                "column `{}` is not in the contract (`{}`)",
                field.name(),
                contract.file
            ));
            fields.push(field.as_ref().clone().with_nullable(true));
            order.push(i);
        }
    }
    let out_schema = Arc::new(Schema::new(fields));
    let out = batches
        .iter()
        .map(|batch| {
            let columns: Vec<ArrayRef> = order.iter().map(|i| batch.column(*i).clone()).collect();
            RecordBatch::try_new(out_schema.clone(), columns)
        })
        .collect::<Result<Vec<_>, _>>()?;
    violations.extend(cast_failures_before);
    violations.extend(cast_failures);

    let table = CheckedTable::new(out_schema.clone(), out.clone())?;
    for (name, check) in contract_rules(contract) {
        if out_schema.field_with_name(check.columns()[0]).is_err() {
            continue; // reported as missing
        }
        match table.run_named(&check, &name).await {
            Ok(None) => {}
            Ok(Some(failure)) => violations.push(failure.to_string()),
            Err(message) => violations.push(message),
        }
    }
    Ok(ContractOutcome {
        schema: out_schema,
        batches: out,
        violations,
    })
}

fn values_are(n: u64) -> String {
    if n == 1 {
        "1 value is".to_owned()
    } else {
        format!("{n} values are")
    }
}

/// A contract's column rules as checks, each with a name for messages.
fn contract_rules(contract: &Contract) -> Vec<(String, CheckSpec)> {
    let mut out = Vec::new();
    for c in &contract.columns {
        let one = || Columns(vec![c.name.clone()]);
        if !c.nullable {
            out.push((
                format!("{}: nullable: false", c.name),
                CheckSpec::NotNull(one()),
            ));
        }
        if c.unique {
            out.push((format!("{}: unique", c.name), CheckSpec::Unique(one())));
        }
        if c.min.is_some() || c.max.is_some() {
            let bounds = [("min", &c.min), ("max", &c.max)]
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
                .collect::<Vec<_>>()
                .join(", ");
            out.push((
                format!("{}: {bounds}", c.name),
                CheckSpec::Range(RangeSpec {
                    column: c.name.clone(),
                    min: c.min.clone(),
                    max: c.max.clone(),
                }),
            ));
        }
        if let Some(values) = &c.values {
            out.push((
                format!("{}: values", c.name),
                CheckSpec::AcceptedValues(AcceptedValuesSpec {
                    column: c.name.clone(),
                    values: values.clone(),
                }),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, StringArray};

    use super::*;

    fn table() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("status", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]));
        let batch = |ids: Vec<Option<i64>>, st: Vec<Option<&str>>, am: Vec<Option<f64>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(st)),
                    Arc::new(Float64Array::from(am)),
                ],
            )
            .expect("batch")
        };
        let batches = vec![
            batch(
                vec![Some(1), Some(2), Some(2)],
                vec![Some("paid"), Some("lost"), None],
                vec![Some(10.0), Some(-1.0), Some(3.5)],
            ),
            batch(vec![None], vec![Some("paid")], vec![None]),
        ];
        (schema, batches)
    }

    fn checks(yaml: &str) -> Vec<CheckSpec> {
        weir_spec::from_node(&weir_spec::parse_yaml("t.yaml", yaml).expect("yaml")).expect("checks")
    }

    #[tokio::test]
    async fn each_check_counts_its_violations() {
        let (schema, batches) = table();
        let t = CheckedTable::new(schema, batches).expect("table");
        let found = |c: &CheckSpec| {
            let t = &t;
            let c = c.clone();
            async move { t.run(&c).await.expect("runs").map(|f| f.violations) }
        };
        let all = checks(
            "- not_null: id\n- not_null: [status, amount]\n- unique: id\n- accepted_values: {column: status, values: [paid, shipped]}\n- range: {column: amount, min: 0}\n- range: {column: amount, max: 100}\n- row_count: {min: 5}\n- row_count: {max: 4}\n- expr: amount >= 0\n",
        );
        let mut got = Vec::new();
        for c in &all {
            got.push(found(c).await);
        }
        assert_eq!(
            got,
            [
                Some(1),
                Some(2),
                Some(2),
                Some(1),
                Some(1),
                None,
                Some(4),
                None,
                Some(2)
            ]
        );
    }

    #[tokio::test]
    async fn a_failure_shows_the_offending_rows() {
        let (schema, batches) = table();
        let t = CheckedTable::new(schema, batches).expect("table");
        let failure = t
            .run(&CheckSpec::Unique(Columns(vec!["id".into()])))
            .await
            .expect("runs")
            .expect("fails");
        let text = failure.to_string();
        assert!(
            text.starts_with("check `unique(id)` failed: 2 of 4 rows violate it"),
            "{text}"
        );
        assert!(text.contains("offending rows:"), "{text}");
        assert!(text.contains("lost"), "{text}");
        assert!(!text.contains("paid"), "only offending rows: {text}");
    }

    #[tokio::test]
    async fn a_check_on_a_missing_column_or_a_bad_expression_is_an_error() {
        let (schema, batches) = table();
        let t = CheckedTable::new(schema, batches).expect("table");
        let e = t
            .run(&CheckSpec::NotNull(Columns(vec!["stauts".into()])))
            .await
            .expect_err("unknown column");
        assert!(e.contains("`stauts`") && e.contains("`status`"), "{e}");
        let e = t
            .run(&CheckSpec::Expr("nope > 1".into()))
            .await
            .expect_err("bad expr");
        assert!(e.contains("cannot be evaluated"), "{e}");
    }

    #[test]
    fn casts_stay_within_a_family() {
        use DataType::*;
        assert!(castable(&Int64, &Int32));
        assert!(castable(&Utf8, &Int64));
        assert!(castable(&Utf8, &Date32));
        assert!(castable(&Timestamp(TimeUnit::Nanosecond, None), &Date32));
        assert!(!castable(&Int64, &Utf8));
        assert!(!castable(&Boolean, &Int64));
        assert!(!castable(&Date32, &Int64));
        assert!(!statically_compatible(&Utf8, &Int64));
        assert!(statically_compatible(&Int32, &Int64));
    }
}
