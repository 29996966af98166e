//! How weir-spec learns about step kinds without depending on their code.
//!
//! weir-spec knows the keys every step has (`needs`, `retries`, ...); the
//! action keys (`shell`, `sql`, ...) come from an [`ActionCatalog`], which
//! weir-exec's `Registry` implements. A new kind therefore touches no code here.

use weir_types::{Diagnostic, Span};

use crate::Node;

/// What an action's IO-free check learned about a step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionCheck {
    /// Steps this action reads from (e.g. `inputs:`, tables named in SQL),
    /// with where each is named, so a missing one can be pointed at.
    pub depends_on: Vec<(String, Span)>,
    /// Datasets of other pipelines this action reads (`crm.customers`,
    /// `acme.crm.customers`), with where each is named.
    pub reads: Vec<(String, Span)>,
}

/// The step kinds a project may use.
pub trait ActionCatalog {
    /// Every kind's YAML key, e.g. `["shell"]`.
    fn kinds(&self) -> Vec<&'static str>;

    /// JSON Schema of the value under the kind's key.
    fn spec_schema(&self, kind: &str) -> Option<schemars::Schema>;

    /// Type-checks the value under the kind's key without any IO. Returned
    /// diagnostics carry spans but no file; the caller fills it in.
    fn check(&self, kind: &str, spec: &Node) -> Result<ActionCheck, Vec<Diagnostic>>;

    /// Whether steps of this kind output a dataset (and so may have a
    /// contract, checks and anonymization).
    fn produces_dataset(&self, _kind: &str) -> bool {
        false
    }

    /// Whether steps of this kind may be left unstored (`persist: false`),
    /// running inside the plans of the steps that read them.
    fn deferrable(&self, _kind: &str) -> bool {
        false
    }
}
