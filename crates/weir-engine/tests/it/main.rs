//! One integration-test binary for weir-engine (link time): `Engine` driven
//! as a library on real projects, real `bash` steps and both metadata
//! backends (every scenario runs as `sqlite::NAME` and `postgres::NAME`).

mod dag;
mod datasets;
mod ownership;
mod resume;
mod retries;
mod support;
mod templates;
