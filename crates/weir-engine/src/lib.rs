//! Runs and tasks: turning a validated `Plan` into durable runs, executing
//! their tasks with bounded concurrency, retries, timeouts, cancellation and
//! resume after a crash.
//!
//! Must not depend on DataFusion: data actions arrive through weir-exec's
//! `Action` registry.
//!
//! # Task state machine
//!
//! One task is one attempt of one step. Every arrow is committed to the
//! `MetaStore` before anything acts on it (a process is spawned only after its
//! `running` row is durable; downstream steps start only after the upstream
//! `succeeded` row is durable).
//!
//! ```text
//!             deps done, slot free (merged: one commit)
//!   pending ───────────────────────────────────────────────┐
//!     │ deps done, no slot                                 ▼
//!     └──────────────▶ queued ───── slot free ──────▶ running ──▶ succeeded
//!     │                  ▲                              │  │
//!     │ an upstream      │ retry left: a NEW task       │  └────▶ cancelled
//!     │ failed           │ (attempt+1), not_before =    ▼           (Ctrl-C, API)
//!     ▼                  └─ now + backoff ────────── failed
//!   upstream_failed                                  (no retry left: final)
//! ```
//!
//! # Commit protocol
//!
//! The executor loop gathers everything that happened since its last commit
//! (tasks that finished, steps that became ready or blocked, retries, the
//! run's final state) into one `Transition` and commits it in one
//! transaction, then spawns the tasks it just marked `running`. A chain of
//! steps therefore costs one commit per step: "finish A" and "start B" share
//! it. Each guarded update names the state it expects, so a second executor
//! racing on the same run makes its transaction fail instead of recording a
//! success twice.
//!
//! A run is owned by one process at a time (`claim_run`, heartbeats). When the
//! owner dies (`SIGKILL`, power loss), `weir run --resume` claims the run,
//! marks the attempts that were `running` as failed ("interrupted") and
//! queues a new attempt of every step that has not succeeded.

mod engine;
mod error;
mod executor;

pub use engine::{Engine, EngineConfig, NewRunRequest, RunSummary, process_owner_id};
pub use error::{Error, Result};
pub use executor::{ExecuteOptions, RunEvent};
