//! Datasets and the data actions: Arrow tables stored as Parquet (ZSTD) at
//! content-addressed keys in the blob store, DataFusion sessions that query
//! them where they lie (catalog = namespace, schema = pipeline, table =
//! step), the `load`, `sql` and `export` step kinds, and the lake queries behind
//! `weir query` and `weir datasets --head`.
//!
//! This is the only crate besides the `weir` binary that depends on
//! DataFusion (it compiles slowly; see DESIGN.md §4): the engine, the stores
//! and `weir-exec` see datasets only as blob keys plus a schema in the JSON
//! form of [`schema_to_json`]. Arrow and Parquet are used through
//! `datafusion::arrow` / `datafusion::parquet` so that one copy is compiled.

mod anonymize;
mod check;
mod csv;
mod dataset;
mod error;
mod export;
mod fetch;
mod lake;
mod load;
mod output;
mod quality;
mod schema;
mod session;
mod sql;
mod task;
mod typecheck;

pub use anonymize::{AnonymizeError, HashSalt, anonymize};
pub use check::{CheckAction, CheckStepSpec};
pub use dataset::{DATASET_PREFIX, head, read_dataset, write_dataset};
pub use error::{Error, Result};
pub use export::{ExportAction, ExportFormat, ExportMode, ExportPostgresSpec, ExportSpec};
pub use lake::{Format, LakeTable, format_batches, query, query_diagnostic};
pub use load::{LoadAction, LoadFormat, LoadSpec};
pub use quality::{
    CheckFailure, CheckedTable, ContractOutcome, arrow_type, castable, check_contract,
    contract_schema, statically_compatible,
};
pub use schema::{schema_from_json, schema_to_json};
pub use session::{BLOBS_URL, register_dataset, session, session_with_runtime};
pub use sql::{SqlAction, SqlSpec};
pub use task::TASK_MEMORY_LIMIT;
pub use typecheck::{TypeCheck, typecheck};

/// Every diagnostic code this crate emits, with its one-line meaning.
pub const CODES: &[(&str, &str)] = &[
    (
        "empty-path",
        "a `load` or `export` step whose path is empty",
    ),
    (
        "unknown-format",
        "a `load` or `export` path whose extension names no known format, and no `format:`",
    ),
    (
        "invalid-csv-option",
        "a `load` or `export` CSV option that is not one ASCII character, or given for a non-CSV format",
    ),
    (
        "unsupported-path",
        "a `load` path on a remote store other than `http(s)://` (`s3://`, `gs://`, ...) or a glob in a URL, or an `export` path on any remote store: not supported yet",
    ),
    (
        "export-target",
        "an `export` step with neither or both of `path` and `postgres`, or file options with `postgres`",
    ),
    (
        "invalid-postgres",
        "an `export` `postgres.url` that is not a PostgreSQL URL, or a `postgres.table` that is not `name` or `schema.name`",
    ),
    ("sql-syntax", "a `sql` query that does not parse"),
    ("no-checks", "a `check` step with an empty `checks:` list"),
    (
        "sql-unknown-column",
        "a `sql` step names a column its inputs do not have",
    ),
    (
        "sql-type",
        "a `sql` step that does not type-check (e.g. an operator on the wrong types)",
    ),
    (
        "contract-mismatch",
        "a step's inferred output does not match its declared contract",
    ),
    (
        "check-unknown-column",
        "a check names a column the step's output does not have",
    ),
    (
        "sql-not-a-query",
        "a `sql` step that is empty, holds several statements, or a statement other than a query",
    ),
];

/// Adds this crate's step kinds; the binary calls it after
/// [`weir_exec::Registry::builtin`].
pub fn register_actions(registry: &mut weir_exec::Registry) {
    registry.register(LoadAction);
    registry.register(SqlAction);
    registry.register(CheckAction);
    registry.register(ExportAction);
}
