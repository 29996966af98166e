use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The namespace runs and datasets belong to when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A run's id: a number allocated by the metadata store, unique per store.
///
/// Numbers rather than UUIDs because people type them (`weir show 42`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

/// A task's id: one execution attempt of one step of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub i64);

macro_rules! numeric_id {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $ty {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map($ty)
            }
        }
    };
}

numeric_id!(RunId);
numeric_id!(TaskId);
