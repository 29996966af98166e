//! Datasets and the data actions: Arrow tables stored as Parquet (ZSTD) at
//! content-addressed keys in the blob store, DataFusion sessions that query
//! them where they lie (catalog = namespace, schema = pipeline, table =
//! step), the `load` and `sql` step kinds, and the lake queries behind
//! `weir query` and `weir datasets --head`.
//!
//! This is the only crate besides the `weir` binary that depends on
//! DataFusion (it compiles slowly; see DESIGN.md §4): the engine, the stores
//! and `weir-exec` see datasets only as blob keys plus a schema in the JSON
//! form of [`schema_to_json`]. Arrow and Parquet are used through
//! `datafusion::arrow` / `datafusion::parquet` so that one copy is compiled.

mod csv;
mod dataset;
mod error;
mod lake;
mod load;
mod schema;
mod session;
mod sql;
mod task;

pub use dataset::{DATASET_PREFIX, head, read_dataset, write_dataset};
pub use error::{Error, Result};
pub use lake::{Format, LakeTable, format_batches, query};
pub use load::{LoadAction, LoadFormat, LoadSpec};
pub use schema::{schema_from_json, schema_to_json};
pub use session::{BLOBS_URL, register_dataset, session, session_with_runtime};
pub use sql::{SqlAction, SqlSpec};
pub use task::TASK_MEMORY_LIMIT;

/// Every diagnostic code this crate emits, with its one-line meaning.
pub const CODES: &[(&str, &str)] = &[
    ("empty-path", "a `load` step whose path is empty"),
    (
        "unknown-format",
        "a `load` path whose extension names no known format, and no `format:`",
    ),
    (
        "invalid-csv-option",
        "a `load` CSV option that is not one ASCII character, or given for a non-CSV format",
    ),
    (
        "unsupported-path",
        "a `load` path on a remote store (`s3://`, `https://`), not supported yet",
    ),
    ("sql-syntax", "a `sql` query that does not parse"),
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
}
