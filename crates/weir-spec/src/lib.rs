//! Pipeline YAML → validated `Plan`. INTERIM lib.rs: the spec helper owns it.

mod catalog;
mod node;
mod plan;

pub use catalog::{ActionCatalog, ActionCheck};
pub use node::{Node, NodeValue, from_node};
pub use plan::{Environment, ParamDecl, ParamType, Plan, RetryPolicy, Step};
