//! The validated, typed form of a pipeline: what the engine runs.
//!
//! A `Plan` is serialized into the run record when a run is created, so a
//! resumed run executes exactly the definition it started with.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A validated pipeline: steps in topological order, every reference resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub pipeline: String,
    pub description: Option<String>,
    /// Project-relative path of the pipeline file.
    pub file: String,
    pub params: Vec<ParamDecl>,
    /// Topological order: every step comes after all of its `depends_on`.
    pub steps: Vec<Step>,
}

/// A declared pipeline parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamDecl {
    pub name: String,
    pub ty: ParamType,
    /// Already checked against `ty`. `None` means the parameter is required.
    pub default: Option<serde_json::Value>,
    pub description: Option<String>,
}

/// The type of a param: how `--param` text is parsed and what a default must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    String,
    Int,
    Float,
    Bool,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
        }
    }
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// The action kind: the YAML key that named it (`shell`, later `sql`, ...).
    pub kind: String,
    /// The action's spec exactly as written (templates not yet rendered).
    pub spec: serde_json::Value,
    /// Every step this one waits for: explicit `needs:` plus dependencies
    /// derived from the data (`inputs:`, tables named in SQL), deduplicated,
    /// in a stable order.
    pub depends_on: Vec<String>,
    pub retries: RetryPolicy,
    /// Step timeout, falling back to the pipeline's `timeout:`.
    #[serde(with = "opt_millis")]
    pub timeout: Option<Duration>,
    /// Environment name, falling back to the run's environment.
    pub environment: Option<String>,
    /// Contract, checks, anonymization and persistence of a data step.
    #[serde(default)]
    pub data: crate::data::StepData,
    /// Datasets of other pipelines the step reads (`crm.customers`), read
    /// at their latest version when the run starts.
    #[serde(default)]
    pub reads: Vec<String>,
}

/// How often and how late a failed step is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max: 2` means up to 3 attempts).
    pub max: u32,
    /// Delay before the first retry; doubled for each further one.
    #[serde(with = "millis")]
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max: 0,
            backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `next_attempt` (2 is the first retry).
    pub fn delay_before(&self, next_attempt: u32) -> Duration {
        let doublings = next_attempt.saturating_sub(2).min(16);
        self.backoff.saturating_mul(1 << doublings)
    }
}

/// An environment file (`environments/<name>.yaml`), validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    /// Variables exposed to templates (`{{ env.vars.x }}`) and as process
    /// environment variables of shell steps.
    pub vars: BTreeMap<String, String>,
    /// Names of secrets steps of this environment may read.
    pub secrets: Vec<String>,
    #[serde(default)]
    pub contracts: crate::data::ContractsMode,
    /// Rows every `load` reads at most.
    #[serde(default)]
    pub sample: Option<u64>,
    /// The secret that salts `anonymize: hash`.
    #[serde(default)]
    pub hash_salt: Option<String>,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_retry() {
        let p = RetryPolicy {
            max: 3,
            backoff: Duration::from_millis(100),
        };
        assert_eq!(p.delay_before(2), Duration::from_millis(100));
        assert_eq!(p.delay_before(3), Duration::from_millis(200));
        assert_eq!(p.delay_before(4), Duration::from_millis(400));
    }
}
