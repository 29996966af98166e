//! weir's persistence: the [`MetaStore`] (runs, tasks, dataset versions with
//! their lineage, and later audit) with two backends, SQLite (embedded default, WAL) and
//! PostgreSQL, which pass one shared conformance suite (`tests/it/meta.rs`);
//! and the [`BlobStore`] over `object_store` for logs, datasets and
//! artifacts, with the [`LogStore`] on top of it.
//!
//! Must not depend on DataFusion or on the engine: the engine decides what a
//! transition means, this crate only makes it durable, atomically.
//!
//! - Opening: [`open_meta_store`] takes `sqlite://PATH` / `sqlite:PATH`
//!   (file and directory created, schema migrated) or `postgres://...`;
//!   [`BlobStore::open`] a directory path or `file://DIR`.
//! - Durability: SQLite runs with WAL and `synchronous=FULL`, one writer
//!   connection (`BEGIN IMMEDIATE`) and a pool of readers; PostgreSQL with a
//!   pool of 8. Every `MetaStore` method is one transaction.
//! - Guards: a [`TaskUpdate`] applies only if the task is still in `from`;
//!   otherwise the whole [`Transition`] is rolled back and fails with
//!   [`Error::Conflict`]. Of two processes racing for one task, exactly one
//!   wins.
//! - Datasets: a [`TaskUpdate`] entering `succeeded` may carry its
//!   [`NewDatasetVersion`] (`output`); it is recorded in the same transaction
//!   as the update, under the next version number of its dataset (1, 2, ...,
//!   allocated by an upsert on `datasets`, so concurrent writers from
//!   several processes never share a number, and a rolled-back transition
//!   records nothing). [`MetaStore::apply`] returns what it created
//!   ([`Applied`]). Versions are immutable ([`DatasetVersionRow`]); read them
//!   with [`MetaStore::datasets`] (latest of each), `dataset_versions`,
//!   `dataset_version` and `run_datasets`.
//! - Times are stored with microsecond precision in both backends (SQLite:
//!   integer microseconds since the epoch; PostgreSQL: `TIMESTAMPTZ`);
//!   sub-microsecond digits are dropped.
//! - Measured cost of one commit: `cargo run --release -p weir-store
//!   --example commit_cost`.

mod blob;
mod error;
mod logs;
mod meta;
mod postgres;
mod sqlite;

pub use blob::BlobStore;
pub use error::{Error, Result};
pub use logs::{LogLine, LogStore, TaskLogWriter};
pub use meta::{
    Applied, DatasetVersionRow, MetaStore, NewDatasetVersion, NewRun, NewTask, RunFilter, RunRow,
    RunUpdate, TaskRow, TaskUpdate, Transition, open_meta_store,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
