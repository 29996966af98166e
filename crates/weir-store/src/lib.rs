//! weir's persistence: the [`MetaStore`] (runs, tasks, and later datasets,
//! lineage, audit) with two backends, SQLite (embedded default, WAL) and
//! PostgreSQL, which pass one shared conformance suite; and the [`BlobStore`]
//! over `object_store` for logs, datasets and artifacts, with the
//! [`LogStore`] on top of it.
//!
//! Must not depend on DataFusion or on the engine: the engine decides what a
//! transition means, this crate only makes it durable, atomically.

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
    MetaStore, NewRun, NewTask, RunFilter, RunRow, RunUpdate, TaskRow, TaskUpdate, Transition,
    open_meta_store,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
