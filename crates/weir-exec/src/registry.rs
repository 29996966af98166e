//! The explicit list of step kinds, type-erased so the engine can run any of
//! them from a kind name and a JSON spec.

use async_trait::async_trait;
use weir_spec::{ActionCatalog, ActionCheck, Node, from_node};
use weir_types::Diagnostic;

use crate::action::{Action, ActionError, TaskContext, TaskOutput};
use crate::shell::ShellAction;

/// Every diagnostic code this crate emits, with its one-line meaning (each
/// needs a failing golden case, like weir-spec's).
pub const CODES: &[(&str, &str)] = &[
    (
        "unknown-kind",
        "a step kind that no registered action provides",
    ),
    ("empty-command", "a `shell` step whose command is empty"),
];

/// The step kinds weir can run, in registration order.
#[derive(Default)]
pub struct Registry {
    actions: Vec<Box<dyn ErasedAction>>,
}

impl Registry {
    /// A registry with no kinds.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Every kind built into this crate; one line per kind. Kinds from other
    /// crates (`sql`, `load`, ...) are added with [`Registry::register`] by
    /// the binary that wires them.
    pub fn builtin() -> Self {
        let mut registry = Registry::new();
        registry.register(ShellAction);
        registry
    }

    /// Adds a kind. Registering a kind twice is a bug in the caller's list.
    pub fn register<A: Action>(&mut self, action: A) -> &mut Self {
        debug_assert!(
            !self.contains(A::KIND),
            "step kind `{}` is registered twice",
            A::KIND
        );
        self.actions.push(Box::new(action));
        self
    }

    /// Every kind's YAML key, in registration order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.actions.iter().map(|a| a.kind()).collect()
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.find(kind).is_some()
    }

    /// JSON Schema of the value under the kind's key.
    pub fn spec_schema(&self, kind: &str) -> Option<schemars::Schema> {
        self.find(kind).map(|a| a.spec_schema())
    }

    /// Runs one attempt of a step whose (rendered) spec is `spec`.
    pub async fn run(
        &self,
        kind: &str,
        spec: serde_json::Value,
        cx: TaskContext,
    ) -> Result<TaskOutput, ActionError> {
        let Some(action) = self.find(kind) else {
            return Err(ActionError::InvalidSpec {
                kind: kind.to_owned(),
                message: format!(
                    "unknown step kind `{kind}`; known kinds: {}",
                    self.kinds().join(", ")
                ),
            });
        };
        action.run(spec, cx).await
    }

    fn find(&self, kind: &str) -> Option<&dyn ErasedAction> {
        self.actions.iter().find(|a| a.kind() == kind).map(|a| &**a)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds())
            .finish()
    }
}

impl ActionCatalog for Registry {
    fn kinds(&self) -> Vec<&'static str> {
        Registry::kinds(self)
    }

    fn spec_schema(&self, kind: &str) -> Option<schemars::Schema> {
        Registry::spec_schema(self, kind)
    }

    fn produces_dataset(&self, kind: &str) -> bool {
        self.find(kind).is_some_and(|a| a.produces_dataset())
    }

    fn deferrable(&self, kind: &str) -> bool {
        self.find(kind).is_some_and(|a| a.deferrable())
    }

    fn check(&self, kind: &str, spec: &Node) -> Result<ActionCheck, Vec<Diagnostic>> {
        match self.find(kind) {
            Some(action) => action.check(spec),
            None => Err(vec![
                Diagnostic::error("unknown-kind", format!("unknown step kind `{kind}`"))
                    .with_span(spec.span())
                    .with_help(format!("known kinds: {}", self.kinds().join(", "))),
            ]),
        }
    }
}

/// [`Action`] without its associated types, so kinds can share one list.
#[async_trait]
trait ErasedAction: Send + Sync {
    fn kind(&self) -> &'static str;
    fn produces_dataset(&self) -> bool;
    fn deferrable(&self) -> bool;
    fn spec_schema(&self) -> schemars::Schema;
    fn check(&self, spec: &Node) -> Result<ActionCheck, Vec<Diagnostic>>;
    async fn run(
        &self,
        spec: serde_json::Value,
        cx: TaskContext,
    ) -> Result<TaskOutput, ActionError>;
}

#[async_trait]
impl<T: Action> ErasedAction for T {
    fn kind(&self) -> &'static str {
        T::KIND
    }

    fn produces_dataset(&self) -> bool {
        T::PRODUCES_DATASET
    }

    fn deferrable(&self) -> bool {
        T::DEFERRABLE
    }

    fn spec_schema(&self) -> schemars::Schema {
        schemars::schema_for!(T::Spec)
    }

    fn check(&self, node: &Node) -> Result<ActionCheck, Vec<Diagnostic>> {
        let spec: T::Spec = from_node(node).map_err(|d| vec![d])?;
        // `Action::check` is IO-free and span-free: point what it found at
        // the value under the kind's key.
        let diagnostics: Vec<Diagnostic> = Action::check(self, &spec)
            .into_iter()
            .map(|d| {
                if d.labels.is_empty() {
                    d.with_span(node.span())
                } else {
                    d
                }
            })
            .collect();
        // `ActionCheck` has no room for warnings, so they travel with the
        // errors and are dropped when there are none: every warning a kind
        // emits today is also an error.
        // TODO(weir-spec): carry warnings in `ActionCheck`.
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(diagnostics);
        }
        Ok(ActionCheck {
            depends_on: self
                .inputs(&spec)
                .into_iter()
                .map(|input| (input, node.span()))
                .collect(),
            reads: self
                .reads(&spec)
                .into_iter()
                .map(|dataset| (dataset, node.span()))
                .collect(),
        })
    }

    async fn run(
        &self,
        spec: serde_json::Value,
        cx: TaskContext,
    ) -> Result<TaskOutput, ActionError> {
        let spec: T::Spec = serde_json::from_value(spec).map_err(|e| ActionError::InvalidSpec {
            kind: T::KIND.to_owned(),
            message: e.to_string(),
        })?;
        Action::run(self, spec, cx).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use weir_spec::NodeValue;
    use weir_types::Span;

    use super::*;

    #[test]
    fn diagnostic_codes_are_listed() {
        let registry = Registry::builtin();
        let empty = node(NodeValue::String(String::new()));
        let mut emitted = ActionCatalog::check(&registry, "shell", &empty).unwrap_err();
        emitted.extend(ActionCatalog::check(&registry, "nope", &empty).unwrap_err());
        for d in emitted {
            assert!(
                CODES.iter().any(|(c, _)| *c == d.code),
                "`{}` is not in CODES",
                d.code
            );
        }
    }

    #[test]
    fn builtin_kind_names_are_unique_and_non_empty() {
        let kinds = Registry::builtin().kinds();
        assert!(!kinds.is_empty());
        assert!(kinds.iter().all(|k| !k.is_empty()), "{kinds:?}");
        let unique: BTreeSet<_> = kinds.iter().collect();
        assert_eq!(unique.len(), kinds.len(), "duplicate kinds in {kinds:?}");
    }

    #[test]
    fn every_builtin_kind_has_a_schema() {
        let registry = Registry::builtin();
        for kind in registry.kinds() {
            assert!(registry.spec_schema(kind).is_some(), "{kind}");
        }
        assert!(registry.spec_schema("nope").is_none());
    }

    fn node(value: NodeValue) -> Node {
        Node {
            span: Span::new(10, 4, 2, 10),
            value,
        }
    }

    #[test]
    fn check_points_span_free_diagnostics_at_the_spec() {
        let registry = Registry::builtin();
        let errors = ActionCatalog::check(&registry, "shell", &node(NodeValue::String("".into())))
            .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "empty-command");
        assert_eq!(errors[0].primary_span(), Some(Span::new(10, 4, 2, 10)));

        let check =
            ActionCatalog::check(&registry, "shell", &node(NodeValue::String("true".into())))
                .unwrap();
        assert!(check.depends_on.is_empty());
    }

    #[test]
    fn check_reports_a_spec_of_the_wrong_type_and_unknown_kinds() {
        let registry = Registry::builtin();
        // The code (`invalid-type`) is weir-spec's business; the span is ours.
        let errors =
            ActionCatalog::check(&registry, "shell", &node(NodeValue::Int(3))).unwrap_err();
        assert!(errors[0].is_error());
        assert_eq!(errors[0].primary_span(), Some(Span::new(10, 4, 2, 10)));

        let errors = ActionCatalog::check(&registry, "shel", &node(NodeValue::Null)).unwrap_err();
        assert_eq!(errors[0].code, "unknown-kind");
    }
}
