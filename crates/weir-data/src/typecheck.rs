//! Type-checking data steps before anything runs (`weir check`, and `weir
//! run` before it starts): every SQL step's output schema is inferred from
//! its inputs' contracts by planning the query over empty tables of the
//! declared schemas, without reading any data.
//!
//! What is known flows down the DAG: a `load` with a contract outputs the
//! contract's schema; a `sql` step whose inputs are all known is planned,
//! and outputs its contract's schema if it has one (after comparing), else
//! the inferred one. A step with an input of unknown schema (a `load`
//! without a contract, a shell step) is not checked, and the result says so
//! rather than guessing.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::datasource::empty::EmptyTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use weir_spec::{
    AnonymizeSpec, CheckOutput, Node, Plan, RunInfo, Step, StepData, TemplateContext, did_you_mean,
    parse_yaml, span_in,
};
use weir_types::{Diagnostic, Span};

use crate::quality::{arrow_type, contract_schema, statically_compatible};

/// What type-checking a project found.
#[derive(Debug, Default)]
pub struct TypeCheck {
    pub diagnostics: Vec<Diagnostic>,
    /// `pipeline.step` of data steps whose output schema is known.
    pub checked: Vec<String>,
    /// `pipeline.step` of SQL steps that could not be checked, and why.
    pub unchecked: Vec<(String, String)>,
}

/// Type-checks every plan of `project`.
pub async fn typecheck(project: &CheckOutput) -> TypeCheck {
    let namespace = project.config.namespace.as_str();
    let mut out = TypeCheck::default();
    // `pipeline` → `step` → schema, for steps whose schema is known.
    let mut known: BTreeMap<String, BTreeMap<String, SchemaRef>> = BTreeMap::new();
    for plan in reading_order(project) {
        let Some(text) = project.sources.get(&plan.file) else {
            continue;
        };
        let Ok(root) = parse_yaml(&plan.file, text) else {
            continue;
        };
        let checker = PlanChecker {
            namespace,
            plan,
            text,
            root: &root,
        };
        let schemas = checker.check(&known, &mut out).await;
        known.insert(plan.pipeline.clone(), schemas);
    }
    out
}

/// Plans ordered so that a pipeline comes after those whose datasets it
/// reads (`crm.customers`), where the reads allow it (a cycle across
/// pipelines is left in name order: its reads are then not known).
fn reading_order(project: &CheckOutput) -> Vec<&Plan> {
    let reads_of = |plan: &Plan| -> Vec<String> {
        plan.steps
            .iter()
            .flat_map(|s| &s.reads)
            .filter_map(|r| {
                let parts: Vec<&str> = r.split('.').collect();
                (parts.len() == 2).then(|| parts[0].to_owned())
            })
            .filter(|p| *p != plan.pipeline && project.plans.contains_key(p))
            .collect()
    };
    let mut done: Vec<&Plan> = Vec::new();
    let mut pending: Vec<&Plan> = project.plans.values().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|plan| {
            let ready = reads_of(plan)
                .iter()
                .all(|p| done.iter().any(|d| d.pipeline == *p));
            if ready {
                done.push(plan);
            }
            !ready
        });
        if pending.len() == before {
            done.append(&mut pending);
        }
    }
    done
}

struct PlanChecker<'a> {
    namespace: &'a str,
    plan: &'a Plan,
    text: &'a str,
    root: &'a Node,
}

impl PlanChecker<'_> {
    async fn check(
        &self,
        others: &BTreeMap<String, BTreeMap<String, SchemaRef>>,
        out: &mut TypeCheck,
    ) -> BTreeMap<String, SchemaRef> {
        let mut schemas: BTreeMap<String, SchemaRef> = BTreeMap::new();
        for step in &self.plan.steps {
            let qualified = format!("{}.{}", self.plan.pipeline, step.name);
            let inferred = match step.kind.as_str() {
                "load" => None,
                "sql" => match self.check_sql(step, &schemas, others, out).await {
                    Ok(schema) => Some(schema),
                    Err(None) => None,
                    Err(Some(reason)) => {
                        out.unchecked.push((qualified.clone(), reason));
                        None
                    }
                },
                "check" => {
                    let input = step.spec.get("input").and_then(|v| v.as_str());
                    if let Some(schema) = input.and_then(|i| schemas.get(i)) {
                        let checks = step.spec.get("checks").cloned().unwrap_or_default();
                        let checks: Vec<weir_spec::CheckSpec> =
                            serde_json::from_value(checks).unwrap_or_default();
                        self.check_columns(step, schema, &checks, &["check", "checks"], out);
                    }
                    continue;
                }
                _ => continue,
            };
            let output = self.output_schema(step, inferred, out);
            if let Some(schema) = output {
                self.check_columns(step, &schema, &step.data.checks, &["checks"], out);
                out.checked.push(qualified);
                schemas.insert(step.name.clone(), schema);
            }
        }
        schemas
    }

    /// The step's stored schema: its contract's if it has one (reporting
    /// where the inferred schema disagrees), else the inferred one after
    /// anonymization.
    fn output_schema(
        &self,
        step: &Step,
        inferred: Option<SchemaRef>,
        out: &mut TypeCheck,
    ) -> Option<SchemaRef> {
        let inferred = inferred.map(|s| anonymized(&s, &step.data));
        let Some(contract) = &step.data.contract else {
            return inferred;
        };
        if let Some(inferred) = &inferred {
            let mut problems = Vec::new();
            for column in &contract.columns {
                match inferred.field_with_name(&column.name) {
                    Err(_) => problems.push(format!("column `{}` is missing", column.name)),
                    Ok(field) => {
                        let declared = arrow_type(column.ty);
                        if !statically_compatible(field.data_type(), &declared) {
                            problems.push(format!(
                                "column `{}` is {}, the contract says {}",
                                column.name,
                                field.data_type(),
                                column.ty
                            ));
                        }
                    }
                }
            }
            for field in inferred.fields() {
                if contract.column(field.name()).is_none() {
                    problems.push(format!("column `{}` is not in the contract", field.name()));
                }
            }
            if !problems.is_empty() {
                let span = self
                    .step_node(step)
                    .and_then(|n| n.get("schema"))
                    .map(|n| n.span);
                let mut d = Diagnostic::error(
                    "contract-mismatch",
                    format!(
                        "the output of step `{}` does not match contract `{}`: {}",
                        step.name,
                        contract.file,
                        problems.join("; ")
                    ),
                )
                .in_file(&self.plan.file)
                .with_help(format!(
                    "change the query, or `{}` to describe what the step produces; the query's columns are {}",
                    contract.file,
                    describe_columns(inferred)
                ));
                if let Some(span) = span {
                    d = d.with_label(span, "declared here");
                }
                out.diagnostics.push(d);
            }
        }
        Some(contract_schema(contract))
    }

    /// Checks that name columns (`not_null: [x]`) against `schema`.
    fn check_columns(
        &self,
        step: &Step,
        schema: &SchemaRef,
        checks: &[weir_spec::CheckSpec],
        path: &[&str],
        out: &mut TypeCheck,
    ) {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut node = self.step_node(step);
        for key in path {
            node = node.and_then(|n| n.get(key));
        }
        for (i, check) in checks.iter().enumerate() {
            for column in check.columns() {
                if names.contains(&column) {
                    continue;
                }
                let check_node = node.and_then(|n| match &n.value {
                    weir_spec::NodeValue::Seq(items) => items.get(i),
                    _ => None,
                });
                let span = check_node.and_then(|n| self.find(n.span, column));
                let help = match did_you_mean(column, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the output's columns are {}", describe_columns(schema)),
                };
                let mut d = Diagnostic::error(
                    "check-unknown-column",
                    format!(
                        "check `{}` of step `{}` names column `{column}`, which the step's output does not have",
                        check.describe(),
                        step.name
                    ),
                )
                .in_file(&self.plan.file)
                .with_help(help);
                if let Some(span) = span.or(check_node.map(|n| n.span)) {
                    d = d.with_label(span, "no such column");
                }
                out.diagnostics.push(d);
            }
        }
    }

    /// Plans the step's query over empty tables of its inputs' schemas.
    /// `Err(Some(reason))`: not checked, and why; `Err(None)`: reported.
    async fn check_sql(
        &self,
        step: &Step,
        schemas: &BTreeMap<String, SchemaRef>,
        others: &BTreeMap<String, BTreeMap<String, SchemaRef>>,
        out: &mut TypeCheck,
    ) -> Result<SchemaRef, Option<String>> {
        for dep in &step.depends_on {
            if !schemas.contains_key(dep) {
                let kind = self
                    .plan
                    .steps
                    .iter()
                    .find(|s| &s.name == dep)
                    .map_or("", |s| s.kind.as_str());
                let why = if kind == "load" {
                    format!("input `{dep}` has no contract (`schema:`)")
                } else {
                    format!("the schema of input `{dep}` is not known")
                };
                return Err(Some(why));
            }
        }
        for read in &step.reads {
            let parts: Vec<&str> = read.split('.').collect();
            let known = match parts.as_slice() {
                [p, s] => others.get(*p).is_some_and(|t| t.contains_key(*s)),
                _ => false,
            };
            if !known {
                return Err(Some(format!("the schema of `{read}` is not known")));
            }
        }
        let Some(written) = step.spec.as_str() else {
            return Err(Some("the query is not a string".to_owned()));
        };
        if written.contains("{%") {
            return Err(Some("the query has `{% %}` blocks".to_owned()));
        }
        let sql = match weir_spec::render_str(written, &self.template_context()) {
            Ok(sql) => sql,
            Err(_) => {
                return Err(Some(
                    "its templates need values only known when it runs".to_owned(),
                ));
            }
        };
        let ctx = self
            .session(schemas, others)
            .map_err(|e| Some(e.to_string()))?;
        let planned = match ctx.sql(&sql).await {
            Ok(df) => df.into_optimized_plan(),
            Err(e) => Err(e),
        };
        match planned {
            Ok(plan) => Ok(Arc::new(plan.schema().as_arrow().clone())),
            Err(e) => {
                out.diagnostics
                    .push(self.sql_diagnostic(step, &sql, &e, schemas));
                Err(None)
            }
        }
    }

    /// Param defaults and placeholders for the run: enough to plan a query
    /// whose templates only fill in values.
    fn template_context(&self) -> TemplateContext {
        let params = self
            .plan
            .params
            .iter()
            .filter_map(|p| p.default.clone().map(|d| (p.name.clone(), d)))
            .collect();
        TemplateContext {
            params,
            env_vars: BTreeMap::new(),
            secrets: BTreeMap::new(),
            run: RunInfo {
                id: 0,
                pipeline: self.plan.pipeline.clone(),
                namespace: self.namespace.to_owned(),
                logical_date: "2000-01-01T00:00:00Z".to_owned(),
                attempt: 1,
                started_by: "weir check".to_owned(),
            },
            trigger_payload: serde_json::Value::Null,
            steps: BTreeMap::new(),
        }
    }

    fn session(
        &self,
        schemas: &BTreeMap<String, SchemaRef>,
        others: &BTreeMap<String, BTreeMap<String, SchemaRef>>,
    ) -> datafusion::error::Result<SessionContext> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(self.namespace, &self.plan.pipeline)
            .with_create_default_catalog_and_schema(true);
        let mut config = config;
        config.options_mut().sql_parser.collect_spans = true;
        let ctx = SessionContext::new_with_config(config);
        let catalog = Arc::new(MemoryCatalogProvider::new());
        ctx.register_catalog(self.namespace, catalog.clone());
        let mut all: Vec<(&str, &BTreeMap<String, SchemaRef>)> = others
            .iter()
            .filter(|(p, _)| **p != self.plan.pipeline)
            .map(|(p, s)| (p.as_str(), s))
            .collect();
        all.push((self.plan.pipeline.as_str(), schemas));
        for (pipeline, tables) in all {
            let schema = Arc::new(MemorySchemaProvider::new());
            catalog.register_schema(pipeline, schema.clone())?;
            for (name, table_schema) in tables {
                datafusion::catalog::SchemaProvider::register_table(
                    schema.as_ref(),
                    name.clone(),
                    Arc::new(EmptyTable::new(table_schema.clone())),
                )?;
            }
        }
        Ok(ctx)
    }

    fn sql_diagnostic(
        &self,
        step: &Step,
        sql: &str,
        e: &DataFusionError,
        schemas: &BTreeMap<String, SchemaRef>,
    ) -> Diagnostic {
        let df_diag = e.diagnostic();
        let root = e.find_root();
        let message = match root {
            DataFusionError::SchemaError(inner, _) => inner.to_string(),
            other => other.strip_backtrace(),
        };
        let (code, what) = if message.contains("No field named") {
            ("sql-unknown-column", "unknown column")
        } else if message.contains("not found") && message.contains("table") {
            ("sql-unknown-table", "unknown table")
        } else {
            ("sql-type", "does not type-check")
        };
        let token = df_diag
            .and_then(|d| d.span)
            .and_then(|span| {
                token_at(
                    sql,
                    span.start.line,
                    span.start.column,
                    span.end.line,
                    span.end.column,
                )
            })
            .or_else(|| {
                // Qualified columns (`o.status`) come without a span.
                let rest = message.split("No field named ").nth(1)?;
                let name = rest.split(". ").next()?.trim_end_matches('.');
                Some(name.to_owned())
            });
        let sql_node = self.step_node(step).and_then(|n| n.get("sql"));
        let span = match (&token, sql_node) {
            (Some(token), Some(node)) => self.find(node.span, token).or(Some(node.span)),
            (None, Some(node)) => Some(node.span),
            _ => None,
        };
        let headline = match (code, &token) {
            ("sql-unknown-column", Some(t)) => format!("column `{t}` not found"),
            _ => df_diag.map_or_else(|| first_line(&message), |d| d.message.clone()),
        };
        let mut d = Diagnostic::error(code, format!("step `{}`: {}", step.name, headline))
            .in_file(&self.plan.file);
        if let Some(span) = span {
            d = d.with_label(span, what);
        }
        let help = match code {
            "sql-unknown-column" if message.contains("Did you mean '") => message
                .split("Did you mean '")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .map_or_else(
                    || first_line(&message),
                    |s| {
                        // DataFusion qualifies its suggestion; keep the
                        // user's own style.
                        let unqualified = token.as_deref().is_some_and(|t| !t.contains('.'));
                        let s = if unqualified {
                            s.rsplit('.').next().unwrap_or(s)
                        } else {
                            s
                        };
                        format!("did you mean `{s}`?")
                    },
                ),
            "sql-unknown-column" => token
                .as_deref()
                .map(|t| {
                    t.trim_matches('"')
                        .rsplit('.')
                        .next()
                        .unwrap_or(t)
                        .to_owned()
                })
                .and_then(|name| {
                    let columns: Vec<String> = schemas
                        .iter()
                        .filter(|(name, _)| step.depends_on.contains(name))
                        .map(|(_, schema)| schema)
                        .flat_map(|s| {
                            s.fields()
                                .iter()
                                .map(|f| f.name().clone())
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    did_you_mean(&name, columns.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                })
                .unwrap_or_else(|| first_line(&message)),
            "sql-unknown-table" => {
                let tables: Vec<&str> = schemas.keys().map(String::as_str).collect();
                match token.as_deref().and_then(|t| did_you_mean(t, tables.iter().copied())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "a table is a step of this pipeline (`orders`) or of another (`crm.customers`)".to_owned(),
                }
            }
            _ => first_line(&message),
        };
        if !d.message.contains(&help) {
            d = d.with_help(help);
        }
        d
    }

    fn step_node(&self, step: &Step) -> Option<&Node> {
        self.root.get("steps").and_then(|s| s.get(&step.name))
    }

    /// Where `needle` is written inside the source of a node: the first
    /// occurrence as a whole word.
    fn find(&self, span: Span, needle: &str) -> Option<Span> {
        let end = (span.offset + span.len).min(self.text.len());
        let hay = self.text.get(span.offset..end)?;
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut from = 0;
        while let Some(pos) = hay.get(from..)?.find(needle) {
            let at = from + pos;
            let before = hay[..at].chars().next_back();
            let after = hay[at + needle.len()..].chars().next();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                return Some(span_in(self.text, span.offset + at, needle.len()));
            }
            from = at + needle.len().max(1);
        }
        None
    }
}

/// The text of `sql` from a 1-based (line, column) position to the one
/// before an end position.
fn token_at(sql: &str, line: u64, column: u64, end_line: u64, end_column: u64) -> Option<String> {
    if line == 0 || line != end_line {
        return None;
    }
    let text = sql.lines().nth(usize::try_from(line - 1).ok()?)?;
    let chars: Vec<char> = text.chars().collect();
    let start = usize::try_from(column.checked_sub(1)?).ok()?;
    // DataFusion's end column is the one after the token.
    let end = usize::try_from(end_column.checked_sub(1)?)
        .ok()?
        .min(chars.len());
    (start < end)
        .then(|| chars[start..end].iter().collect::<String>())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

fn describe_columns(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}` {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `schema` after the step's anonymization: dropped columns gone, hashed
/// and masked ones text.
fn anonymized(schema: &SchemaRef, data: &StepData) -> SchemaRef {
    if data.anonymize.is_empty() {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter_map(|f| {
            match data
                .anonymize
                .iter()
                .find(|(c, _)| c == f.name())
                .map(|(_, m)| m)
            {
                Some(AnonymizeSpec::Drop) => None,
                Some(AnonymizeSpec::Hash | AnonymizeSpec::Mask(_)) => {
                    Some(Field::new(f.name(), DataType::Utf8, true))
                }
                _ => Some(f.as_ref().clone()),
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}
