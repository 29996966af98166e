//! The shared vocabulary of weir: identifiers, run and task states, source
//! spans, user-facing diagnostics and resource metering.
//!
//! Every other weir crate depends on this one, so it depends on nothing but
//! `serde`: no IO, no async runtime, no parsing.

mod dataset;
mod diagnostic;
mod ids;
mod metering;
mod state;

pub use dataset::{DatasetVersionRef, dataset_name};
pub use diagnostic::{Diagnostic, Label, Severity, Span};
pub use ids::{DEFAULT_NAMESPACE, RunId, TaskId};
pub use metering::Metering;
pub use state::{ParseStateError, RunState, TaskState};
