//! The `sql` step kind: one DataFusion query over the pipeline's datasets.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, Query, Statement, TableFactor, Visit, Visitor,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use weir_exec::{Action, ActionError, DatasetInput, LogStream, TaskContext, TaskOutput, VIEW_KEY};
use weir_types::Diagnostic;

use crate::output::finish_output;
use crate::session::{register_dataset, session_with_runtime};
use crate::task::{conform, failed, guarded, task_runtime};

/// A SQL query (DataFusion's dialect, close to PostgreSQL) whose result is
/// the step's dataset.
///
/// Tables are steps: a bare name (`orders`) is a step of the same pipeline
/// and makes this step depend on it. Unquoted names are lower-cased like
/// every identifier; quote a name to keep its case (`"Orders"`). Templates
/// (`{{ params.min_amount }}`, `{{ run.logical_date }}`) are rendered
/// before the query runs. One `SELECT` (or `WITH ... SELECT`, `VALUES`,
/// set operations) per step; no DDL or DML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SqlSpec(
    /// The query, e.g. `SELECT * FROM orders WHERE amount >= {{ params.min_amount }}`.
    pub String,
);

/// `sql: <query>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlAction;

#[async_trait]
impl Action for SqlAction {
    const KIND: &'static str = "sql";
    const PRODUCES_DATASET: bool = true;
    const DEFERRABLE: bool = true;
    type Spec = SqlSpec;

    fn check(&self, spec: &SqlSpec) -> Vec<Diagnostic> {
        let (sql, has_statements) = neutralize_templates(&spec.0);
        match parse_query(&sql) {
            Ok(_) => Vec::new(),
            // `{% if %}` / `{% for %}` blocks were dropped, not evaluated: the
            // text checked is not the text that will run, so an error in it
            // proves nothing. The query is checked when it runs.
            Err(_) if has_statements => Vec::new(),
            Err(d) => vec![*d],
        }
    }

    fn inputs(&self, spec: &SqlSpec) -> Vec<String> {
        let (sql, _) = neutralize_templates(&spec.0);
        match parse_query(&sql) {
            Ok(query) => query_tables(&query).0,
            Err(_) => Vec::new(),
        }
    }

    fn reads(&self, spec: &SqlSpec) -> Vec<String> {
        let (sql, _) = neutralize_templates(&spec.0);
        match parse_query(&sql) {
            Ok(query) => query_tables(&query).1,
            Err(_) => Vec::new(),
        }
    }

    async fn run(&self, spec: SqlSpec, cx: TaskContext) -> Result<TaskOutput, ActionError> {
        guarded(&cx, execute(spec.0, &cx)).await
    }
}

async fn execute(sql: String, cx: &TaskContext) -> Result<TaskOutput, ActionError> {
    let runtime = task_runtime(&cx.work_dir)?;
    let ctx = session_with_runtime(cx.blobs.clone(), &cx.namespace, &cx.pipeline, runtime);
    let mut registered = BTreeSet::new();
    for (name, input) in &cx.inputs {
        register_input(&ctx, cx, name, input, &mut registered).await?;
    }
    let df = ctx
        .sql_with_options(&sql, query_options())
        .await
        .map_err(crate::Error::from)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    check_unique_columns(&schema)?;
    if !cx.data.persist {
        // Not stored: downstream steps run this query inside their own.
        // Planning it fully here reports its errors at this step.
        df.into_optimized_plan().map_err(crate::Error::from)?;
        cx.log.line(
            LogStream::System,
            "not stored (`persist: false`): steps reading it run this query as part of theirs",
        );
        return Ok(TaskOutput {
            value: Some(json!({ VIEW_KEY: sql })),
            ..TaskOutput::default()
        });
    }
    let batches = df.collect().await.map_err(crate::Error::from)?;
    let batches = conform(&schema, batches)?;
    finish_output(cx, schema, batches).await
}

fn query_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Makes input `name` a table of the session: a stored dataset's files, or
/// for a step that is not stored its query, as a view over its own inputs
/// (registered first), so a chain of unstored steps runs as one plan.
async fn register_input(
    ctx: &SessionContext,
    cx: &TaskContext,
    name: &str,
    input: &DatasetInput,
    registered: &mut BTreeSet<String>,
) -> Result<(), ActionError> {
    if !registered.insert(name.to_owned()) {
        return Ok(());
    }
    // Inputs are keyed by the name the query uses: `step`, `pipeline.step`
    // or `ns.pipeline.step`.
    let parts: Vec<&str> = name.split('.').collect();
    let (catalog, schema, table) = match parts.as_slice() {
        [table] => (cx.namespace.as_str(), cx.pipeline.as_str(), *table),
        [schema, table] => (cx.namespace.as_str(), *schema, *table),
        [catalog, schema, table] => (*catalog, *schema, *table),
        _ => return Err(failed(format!("input `{name}` is not a table name"))),
    };
    match &input.view {
        None => register_dataset(ctx, catalog, schema, table, &input.files)
            .await
            .map_err(|e| failed(format!("input `{name}` ({}): {e}", input.version)))?,
        Some(view) => {
            for (inner, input) in &view.inputs {
                Box::pin(register_input(ctx, cx, inner, input, registered)).await?;
            }
            let df = ctx
                .sql_with_options(&view.sql, query_options())
                .await
                .map_err(|e| {
                    failed(format!(
                        "input `{name}` (not stored, run as part of this query): {}",
                        e.strip_backtrace()
                    ))
                })?;
            ctx.register_table(TableReference::full(catalog, schema, table), df.into_view())
                .map_err(crate::Error::from)?;
        }
    }
    Ok(())
}

/// A dataset's columns are addressed by name downstream, so two result
/// columns with one name (`SELECT a.id, b.id`) are an error here rather than
/// an ambiguity later.
fn check_unique_columns(schema: &SchemaRef) -> Result<(), ActionError> {
    let mut seen = BTreeSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(failed(format!(
                "the query returns more than one column named `{}`\nhint: give each column its own name with `AS`, e.g. `b.{0} AS b_{0}`",
                field.name()
            )));
        }
    }
    Ok(())
}

/// What stands in for `{{ expression }}` while a templated query is parsed:
/// an identifier is valid where templates usually are (values, names, inside
/// strings), and is never reported as an input.
const TEMPLATE_PLACEHOLDER: &str = "__weir_template__";

/// The query with `{{ ... }}` replaced by [`TEMPLATE_PLACEHOLDER`] and
/// `{# ... #}` / `{% ... %}` removed, and whether it had `{% ... %}` tags.
/// An unclosed tag is left as written (weir-spec reports it).
fn neutralize_templates(sql: &str) -> (String, bool) {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let mut has_statements = false;
    while let Some(start) = rest.find('{') {
        let (open, close) = match rest[start..].chars().nth(1) {
            Some('{') => ("{{", "}}"),
            Some('%') => ("{%", "%}"),
            Some('#') => ("{#", "#}"),
            _ => {
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
                continue;
            }
        };
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(close) else { break };
        out.push_str(&rest[..start]);
        match open {
            "{{" => out.push_str(TEMPLATE_PLACEHOLDER),
            "{%" => has_statements = true,
            _ => {}
        }
        rest = &body[end + close.len()..];
    }
    out.push_str(rest);
    (out, has_statements)
}

/// Parses `sql` as exactly one query, the way DataFusion will.
fn parse_query(sql: &str) -> Result<Box<Query>, Box<Diagnostic>> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| {
        let message = match &e {
            DataFusionError::SQL(parser, _) => parser.to_string(),
            e => e.strip_backtrace(),
        };
        Box::new(
            Diagnostic::error("sql-syntax", format!("the query does not parse: {message}"))
                .with_help("`sql` steps use DataFusion's SQL dialect (close to PostgreSQL)"),
        )
    })?;
    let not_a_query = |what: &str| -> Box<Diagnostic> {
        Diagnostic::error(
            "sql-not-a-query",
            format!("a `sql` step holds one query, found {what}"),
        )
        .with_help("write one `SELECT` (or `WITH ... SELECT`); the step's output is its result")
        .into()
    };
    if statements.len() > 1 {
        return Err(not_a_query(&format!("{} statements", statements.len())));
    }
    match statements.pop_front() {
        None => Err(not_a_query("none (the query is empty)")),
        Some(DFStatement::Statement(statement)) => match *statement {
            Statement::Query(query) => Ok(query),
            other => Err(not_a_query(&format!(
                "`{}`",
                first_words(&other.to_string())
            ))),
        },
        Some(other) => Err(not_a_query(&format!(
            "`{}`",
            first_words(&other.to_string())
        ))),
    }
}

fn first_words(statement: &str) -> String {
    statement
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The steps of the same pipeline a query reads: every one-part table name
/// in FROM and JOIN clauses, subqueries (also in WHERE, SELECT, ...), set
/// operations and CTE bodies, except the names of the query's own CTEs, in
/// order of first appearance, normalized as DataFusion does (unquoted names
/// lower-cased, quoted names as written).
///
/// Qualified names (`pipeline.step`, `ns.pipeline.step`) are other
/// pipelines' datasets: they are not returned because dependencies across
/// pipelines come with a later change (they need the engine to resolve the
/// latest version of another pipeline's dataset). Table functions
/// (`generate_series(1, 3)`) are not datasets either.
fn query_tables(query: &Query) -> (Vec<String>, Vec<String>) {
    let mut collector = TableCollector::default();
    // The collector never breaks.
    let _ = query.visit(&mut collector);
    (collector.found, collector.qualified)
}

#[derive(Default)]
struct TableCollector {
    /// CTE names in scope, one entry per enclosing query.
    scopes: Vec<Vec<String>>,
    found: Vec<String>,
    /// `pipeline.step` and `ns.pipeline.step` names, normalized and joined
    /// with `.`; `information_schema` tables are not datasets.
    qualified: Vec<String>,
}

impl Visitor for TableCollector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        // CTEs are visible in the query's body and in later (and, with
        // RECURSIVE, their own) CTE bodies, all visited inside this query.
        let names = query
            .with
            .iter()
            .flat_map(|with| &with.cte_tables)
            .map(|cte| normalize(&cte.alias.name))
            .collect();
        self.scopes.push(names);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
            && let Some(table) = one_part(name)
            && !table.contains(TEMPLATE_PLACEHOLDER)
            && !self.scopes.iter().any(|names| names.contains(&table))
            && !self.found.contains(&table)
        {
            self.found.push(table);
        }
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
            && let Some(parts) = qualified(name)
            && !parts.iter().any(|p| p.contains(TEMPLATE_PLACEHOLDER))
            && parts
                .iter()
                .rev()
                .nth(1)
                .is_none_or(|schema| schema != "information_schema")
        {
            let joined = parts.join(".");
            if !self.qualified.contains(&joined) {
                self.qualified.push(joined);
            }
        }
        ControlFlow::Continue(())
    }
}

/// The parts of a two- or three-part table name, normalized.
fn qualified(name: &ObjectName) -> Option<Vec<String>> {
    if !(2..=3).contains(&name.0.len()) {
        return None;
    }
    name.0
        .iter()
        .map(|part| part.as_ident().map(normalize))
        .collect()
}

fn one_part(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [part] => part.as_ident().map(normalize),
        _ => None,
    }
}

fn normalize(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn inputs(sql: &str) -> Vec<String> {
        SqlAction.inputs(&SqlSpec(sql.to_owned()))
    }

    fn codes(sql: &str) -> Vec<String> {
        SqlAction
            .check(&SqlSpec(sql.to_owned()))
            .into_iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn joins_and_aliases() {
        assert_eq!(
            inputs(
                "SELECT c.country, sum(o.amount) FROM clean o JOIN customers c USING (customer_id) \
                 LEFT JOIN regions r ON r.id = c.region_id, rates GROUP BY 1"
            ),
            ["clean", "customers", "regions", "rates"]
        );
    }

    #[test]
    fn subqueries_everywhere() {
        assert_eq!(
            inputs(
                "SELECT (SELECT max(x) FROM a), * FROM (SELECT * FROM b) AS sub \
                 WHERE id IN (SELECT id FROM c) AND EXISTS (SELECT 1 FROM d WHERE d.k = sub.k)"
            ),
            ["a", "b", "c", "d"]
        );
    }

    #[test]
    fn set_operations() {
        assert_eq!(
            inputs(
                "SELECT id FROM a UNION ALL SELECT id FROM b EXCEPT SELECT id FROM a INTERSECT SELECT id FROM c"
            ),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn cte_names_are_not_inputs_but_their_bodies_are_read() {
        assert_eq!(
            inputs(
                "WITH recent AS (SELECT * FROM orders WHERE ts > now() - INTERVAL '1 day'), \
                 big AS (SELECT * FROM recent WHERE amount > 100) \
                 SELECT * FROM big JOIN customers USING (customer_id)"
            ),
            ["orders", "customers"]
        );
        // A CTE name only shadows inside its own query.
        assert_eq!(
            inputs("SELECT * FROM (WITH t AS (SELECT 1 AS x) SELECT * FROM t) s, t"),
            ["t"]
        );
        assert_eq!(
            inputs(
                "WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT * FROM n"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn identifiers_are_normalized_like_datafusion() {
        assert_eq!(
            inputs(
                r#"SELECT * FROM Orders JOIN "Customers" USING (id) JOIN "weird name" USING (id)"#
            ),
            ["orders", "Customers", "weird name"]
        );
        // Duplicates collapse, in order of first appearance.
        assert_eq!(inputs("SELECT * FROM b, a, B"), ["b", "a"]);
    }

    #[test]
    fn qualified_names_are_reads_not_inputs() {
        let sql = "SELECT * FROM crm.customers JOIN acme.crm.orders USING (id) JOIN local USING (id) \
                   JOIN \"CRM\".Customers USING (id) JOIN crm.customers c2 USING (id)";
        assert_eq!(inputs(sql), ["local"]);
        assert_eq!(
            SqlAction.reads(&SqlSpec(sql.to_owned())),
            ["crm.customers", "acme.crm.orders", "CRM.customers"]
        );
        assert!(inputs("SELECT * FROM information_schema.tables").is_empty());
        assert!(
            SqlAction
                .reads(&SqlSpec(
                    "SELECT * FROM information_schema.tables".to_owned()
                ))
                .is_empty()
        );
    }

    #[test]
    fn table_functions_and_values_are_not_inputs() {
        assert!(inputs("SELECT * FROM generate_series(1, 3)").is_empty());
        assert!(inputs("SELECT * FROM (VALUES (1), (2)) AS t(x)").is_empty());
        assert!(inputs("SELECT 1").is_empty());
    }

    #[test]
    fn templates_are_parsed_around() {
        let sql = "SELECT * FROM orders WHERE status <> 'cancelled' \
                   AND amount >= {{ params.min_amount }} AND day = '{{ run.logical_date }}' {# note #}";
        assert_eq!(inputs(sql), ["orders"]);
        assert!(codes(sql).is_empty());
        // A templated table name is not a step name.
        assert!(inputs("SELECT * FROM {{ params.table }}").is_empty());
        assert_eq!(
            neutralize_templates("a {{ x }} {% if y %}b{% endif %} {# c #} { d } {{ open"),
            (
                format!("a {TEMPLATE_PLACEHOLDER} b  {{ d }} {{{{ open"),
                true
            )
        );
        // With `{% %}` blocks the checked text is not what runs: no verdict.
        assert!(codes("SELECT * FROM t {% if x %} WHERE {% endif %}").is_empty());
    }

    #[test]
    fn syntax_errors_carry_the_parser_message() {
        let diagnostics = SqlAction.check(&SqlSpec("SELECT * FROM t WHERE".to_owned()));
        assert_eq!(diagnostics.len(), 1);
        assert_eq!(diagnostics[0].code, "sql-syntax");
        assert!(
            diagnostics[0]
                .message
                .contains("sql parser error: Expected"),
            "{}",
            diagnostics[0].message
        );
        assert!(inputs("SELECT * FROM t WHERE").is_empty());
        assert_eq!(codes("SELEC 1"), ["sql-syntax"]);
        assert!(codes("SELECT 1").is_empty());
    }

    #[test]
    fn only_one_query_is_allowed() {
        assert_eq!(codes(""), ["sql-not-a-query"]);
        assert_eq!(codes("  -- nothing\n"), ["sql-not-a-query"]);
        assert_eq!(codes("SELECT 1; SELECT 2"), ["sql-not-a-query"]);
        assert_eq!(codes("CREATE TABLE t (x INT)"), ["sql-not-a-query"]);
        assert_eq!(codes("INSERT INTO t VALUES (1)"), ["sql-not-a-query"]);
        assert_eq!(codes("COPY t TO 'x.csv'"), ["sql-not-a-query"]);
        assert!(codes("SELECT 1;").is_empty());
    }

    #[test]
    fn odd_input_never_panics() {
        for sql in [
            "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((SELECT 1",
            "SELECT '\u{0}' FROM \"\"",
            "{{{{{{",
            "}}}}{%%}{##}",
            "SELECT * FROM t WHERE x = 'unterminated",
            "é",
        ] {
            let _ = codes(sql);
            let _ = inputs(sql);
        }
    }

    #[test]
    fn the_spec_is_a_plain_string_with_a_description() {
        let spec: SqlSpec = serde_json::from_value(json!("SELECT 1")).unwrap();
        assert_eq!(spec, SqlSpec("SELECT 1".to_owned()));
        let schema = serde_json::to_value(schemars::schema_for!(SqlSpec)).unwrap();
        assert_eq!(schema["type"], "string");
        let description = schema["description"].as_str().unwrap();
        assert!(description.contains("DataFusion"), "{description}");
    }
}
