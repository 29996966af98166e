use std::fmt;

use serde::{Deserialize, Serialize};

/// One version of one dataset: `<namespace>.<pipeline>.<step>` at `version`.
///
/// Dataset names are `<pipeline>.<step>` within a namespace; versions count
/// from 1 and are never reused or overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatasetVersionRef {
    pub namespace: String,
    /// `<pipeline>.<step>`.
    pub name: String,
    pub version: u32,
}

impl fmt::Display for DatasetVersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@{}", self.namespace, self.name, self.version)
    }
}

/// The name of the dataset a step produces: `<pipeline>.<step>`.
pub fn dataset_name(pipeline: &str, step: &str) -> String {
    format!("{pipeline}.{step}")
}
