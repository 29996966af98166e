//! Step execution: the [`Action`] trait every step kind implements, the
//! explicit [`Registry`] of built-in kinds, and the `shell` action.
//!
//! This is the only crate that spawns processes (see [`process`]): timeouts,
//! process-group kills, clean environments and per-child metering (wait4) live
//! here once. It must not depend on DataFusion, the stores or the engine.

mod action;
pub mod process;
mod registry;
mod shell;

pub use action::{
    Action, ActionError, DatasetInput, DatasetOutput, LogSink, LogStream, TaskContext, TaskOutput,
    VIEW_KEY, View,
};
pub use registry::{CODES, Registry};
pub use shell::{ShellAction, ShellSpec};
