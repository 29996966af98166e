use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a task (one attempt of a step). See `weir-engine` for the
/// state machine drawn out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for upstream steps.
    Pending,
    /// Ready to run; waiting for a worker slot (or for its retry backoff).
    Queued,
    /// Claimed by a worker and executing.
    Running,
    Succeeded,
    Failed,
    /// Its output was reused from an earlier identical task.
    Cached,
    Skipped,
    /// Not run because a step it depends on failed.
    UpstreamFailed,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 9] = [
        TaskState::Pending,
        TaskState::Queued,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cached,
        TaskState::Skipped,
        TaskState::UpstreamFailed,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cached => "cached",
            TaskState::Skipped => "skipped",
            TaskState::UpstreamFailed => "upstream_failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// A terminal state never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            TaskState::Pending | TaskState::Queued | TaskState::Running
        )
    }

    /// Downstream steps may start once every upstream is in one of these.
    pub fn satisfies_dependents(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Cached | TaskState::Skipped
        )
    }
}

/// The state of a run as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 5] = [
        RunState::Queued,
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

/// A state name that is not one of the known states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseStateError(pub String);

impl fmt::Display for ParseStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown state `{}`", self.0)
    }
}

impl std::error::Error for ParseStateError {}

macro_rules! state_text {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = ParseStateError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|state| state.as_str() == s)
                    .ok_or_else(|| ParseStateError(s.to_owned()))
            }
        }
    };
}

state_text!(TaskState);
state_text!(RunState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_round_trip_through_text_and_serde() {
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert!("done".parse::<TaskState>().is_err());
    }

    #[test]
    fn run_states_round_trip_through_text() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
        }
    }

    #[test]
    fn only_finished_states_are_terminal() {
        let live: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect();
        assert_eq!(
            live,
            [TaskState::Pending, TaskState::Queued, TaskState::Running]
        );
        assert!(!TaskState::Failed.satisfies_dependents());
        assert!(TaskState::Cached.satisfies_dependents());
    }
}
