//! Queries over the whole lake (`weir query`, `weir datasets --head`):
//! every dataset is `<namespace>.<pipeline>.<step>`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::writer::JsonArray;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;
use datafusion::execution::context::SQLOptions;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Ident, Statement, visit_relations};
use object_store::ObjectStore;

use crate::error::{Error, Result};
use crate::session::{register_dataset, session};
use crate::task::conform;

/// DataFusion's default schema name. Lake queries set only a default catalog
/// (namespace): `pipeline.step` is read in it, `ns.pipeline.step` anywhere.
const DEFAULT_SCHEMA: &str = "public";

/// The current version of one dataset, as the lake shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeTable {
    pub namespace: String,
    pub pipeline: String,
    pub step: String,
    /// Blob keys of the version's Parquet files.
    pub files: Vec<String>,
}

/// Runs a read-only query over `tables`, registered as
/// `namespace.pipeline.step`, with `default_namespace` as the default
/// catalog so `pipeline.step` reads that namespace's datasets.
///
/// Only the tables the query names are opened (each costs reading its
/// Parquet footer); a query that names `information_schema`, or is not a
/// plain query (`SHOW TABLES`), sees them all.
pub async fn query(
    blobs: &Arc<dyn ObjectStore>,
    tables: &[LakeTable],
    default_namespace: &str,
    sql: &str,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let ctx = session(blobs.clone(), default_namespace, DEFAULT_SCHEMA);
    let wanted = referenced_tables(sql);
    for table in tables {
        let needed = match &wanted {
            None => true,
            Some(names) => names
                .iter()
                .any(|name| refers_to(name, table, default_namespace)),
        };
        if needed {
            register_dataset(
                &ctx,
                &table.namespace,
                &table.pipeline,
                &table.step,
                &table.files,
            )
            .await?;
        }
    }
    // `SHOW TABLES` and `DESCRIBE` are statements too; DDL and DML are not
    // for the lake.
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx.sql_with_options(sql, options).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = conform(&schema, df.collect().await?)?;
    Ok((schema, batches))
}

fn refers_to(name: &[String], table: &LakeTable, default_namespace: &str) -> bool {
    match name {
        [ns, pipeline, step] => {
            *ns == table.namespace && *pipeline == table.pipeline && *step == table.step
        }
        [pipeline, step] => {
            table.namespace == default_namespace
                && *pipeline == table.pipeline
                && *step == table.step
        }
        _ => false,
    }
}

/// The (normalized) table names a query reads, or `None` when it needs
/// every table (or cannot be parsed: DataFusion then reports the error).
fn referenced_tables(sql: &str) -> Option<BTreeSet<Vec<String>>> {
    let statements = DFParser::parse_sql(sql).ok()?;
    let mut names = BTreeSet::new();
    for statement in &statements {
        let DFStatement::Statement(statement) = statement else {
            return None;
        };
        if !matches!(**statement, Statement::Query(_)) {
            return None;
        }
        let mut all = false;
        let _ = visit_relations(&**statement, |name| {
            let parts: Option<Vec<String>> = name
                .0
                .iter()
                .map(|part| part.as_ident().map(normalize))
                .collect();
            match parts {
                Some(parts) if !parts.iter().any(|p| p == "information_schema") => {
                    names.insert(parts);
                }
                _ => all = true,
            }
            ControlFlow::<()>::Continue(())
        });
        if all {
            return None;
        }
    }
    Some(names)
}

fn normalize(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

/// How [`format_batches`] renders rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A box-drawn table for a terminal.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects, nulls written out.
    Json,
}

/// Renders `batches` (with `schema`, so zero rows still show the columns).
pub fn format_batches(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: Format,
) -> Result<String> {
    match format {
        Format::Table => {
            Ok(pretty_format_batches_with_schema(schema.clone(), batches)?.to_string())
        }
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if batches.is_empty() {
                    writer.write(&RecordBatch::new_empty(schema.clone()))?;
                }
                for batch in batches {
                    writer.write(batch)?;
                }
            }
            utf8(out)
        }
        Format::Json => {
            let mut out = Vec::new();
            {
                let mut writer = datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, JsonArray>(&mut out);
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
            }
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            utf8(out)
        }
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| Error::Internal(format!("Arrow wrote invalid UTF-8: {e}")))
}

/// A failed lake query as a diagnostic on the query text (file `<query>`),
/// pointing at the part DataFusion names when it gives a position.
pub fn query_diagnostic(sql: &str, error: &Error) -> weir_types::Diagnostic {
    let (message, span) = match error {
        Error::DataFusion(e) => {
            let span = e.diagnostic().and_then(|d| d.span).and_then(|s| {
                let start = offset_of(sql, s.start.line, s.start.column)?;
                let end = offset_of(sql, s.end.line, s.end.column).unwrap_or(start);
                Some(weir_spec::span_in(
                    sql,
                    start,
                    end.saturating_sub(start).max(1),
                ))
            });
            let message = e
                .diagnostic()
                .map_or_else(|| e.find_root().strip_backtrace(), |d| d.message.clone());
            (message, span)
        }
        other => (other.to_string(), None),
    };
    let first = message.lines().next().unwrap_or_default();
    let read_only = first.contains("not supported") || first.contains("not allowed");
    let (first, help) = if read_only {
        (
            "`weir query` is read-only: only queries (`SELECT`, `WITH`, `VALUES`, ...) run"
                .to_owned(),
            Some("datasets change only through pipeline runs"),
        )
    } else if first.contains("not found") {
        (
            first.to_owned(),
            Some(
                "tables are `pipeline.step` (this project's namespace) or `namespace.pipeline.step`; `weir datasets` lists them",
            ),
        )
    } else {
        (first.to_owned(), None)
    };
    let mut d = weir_types::Diagnostic::error("query", first);
    if let Some(help) = help {
        d = d.with_help(help);
    }
    if let Some(span) = span {
        d = d.in_file("<query>").with_label(span, "here");
    }
    d
}

/// The byte offset of a 1-based line and column (in characters) of `text`.
fn offset_of(text: &str, line: u64, column: u64) -> Option<usize> {
    let line = usize::try_from(line).ok()?.checked_sub(1)?;
    let column = usize::try_from(column).ok()?.checked_sub(1)?;
    let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
    let rest = text.get(start..)?;
    let within = rest
        .char_indices()
        .nth(column)
        .map_or(rest.len(), |(i, _)| i);
    Some(start + within)
}
