//! Pipeline YAML to a validated, typed [`Plan`]: what a user wrote becomes
//! what the engine runs.
//!
//! YAML is parsed into a [`Node`] tree where every key and value keeps its
//! span; typed `*Spec` structs (whose doc comments are the user reference and
//! the JSON Schema, see [`pipeline_schema`]) are read from nodes with
//! [`from_node`], so each error points at what caused it. [`check_project`]
//! validates a whole project (`weir.yaml`, `environments/`, `pipelines/`)
//! and reports every problem of every file at once, each as a
//! [`Diagnostic`](weir_types::Diagnostic) with a stable code (see [`CODES`]).
//! Templates (`{{ params.x }}`) are checked statically here and rendered at
//! run time with [`render_str`] / [`render_value`], strictly.
//!
//! Action kinds are not known here: they come from an [`ActionCatalog`]
//! (weir-exec's registry). This crate does pure computation plus reading
//! project files; it must not depend on tokio, sqlx or DataFusion.

mod catalog;
mod check;
mod codes;
mod data;
mod de;
mod graph;
mod node;
mod params;
mod plan;
mod schema;
mod spec;
mod suggest;
mod template;
#[cfg(test)]
mod test_catalog;

pub use catalog::{ActionCatalog, ActionCheck};
pub use check::{
    CheckOutput, Error, ProjectConfig, SourceMap, check_project, find_project_root,
    load_environment, load_project_config, sort_diagnostics,
};
pub use codes::{CODES, is_known_code};
pub use data::{
    AcceptedValuesSpec, AnonymizeSpec, CheckSpec, ColumnContract, ColumnSpec, ColumnType, Columns,
    Contract, ContractSpec, ContractsMode, DatePart, RangeSpec, RowCountSpec, StepData,
};
pub use de::{from_node, from_node_in};
pub use node::{Node, NodeValue, parse_yaml, span_in};
pub use plan::{Environment, ParamDecl, ParamType, Plan, RetryPolicy, Step};
pub use schema::pipeline_schema;
pub use spec::{
    ActionSpec, Catchup, CronDetailSpec, CronSpec, DurationSpec, EnvironmentSpec, FileTriggerSpec,
    OrderedMap, ParamSpec, PipelineSpec, ProjectSpec, RetriesSpec, RetryPolicySpec, ScalarText,
    StepSpec, StepsSpec, TriggerSpec, WebhookTriggerSpec,
};
pub use suggest::{did_you_mean, list_names};
pub use template::{RunInfo, TemplateContext, TemplateError, render_str, render_value};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
