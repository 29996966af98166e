//! weir-store's integration tests: the `MetaStore` conformance suite, run
//! against both backends (real SQLite files, a real PostgreSQL server), and
//! the blob and log stores on a real directory.

mod blob;
mod datasets;
mod logs;
mod meta;
mod support;
