//! A catalog with one `shell` kind for unit tests (the real registry lives in
//! weir-exec, which depends on this crate). Its spec is a command string, or
//! `{ run, inputs }` where `inputs` names steps it reads from.

use weir_types::Diagnostic;

use crate::{ActionCatalog, ActionCheck, Node, NodeValue};

pub(crate) struct ShellCatalog;

impl ActionCatalog for ShellCatalog {
    fn kinds(&self) -> Vec<&'static str> {
        vec!["shell"]
    }

    fn spec_schema(&self, kind: &str) -> Option<schemars::Schema> {
        (kind == "shell").then(|| schemars::schema_for!(String))
    }

    fn check(&self, _kind: &str, spec: &Node) -> Result<ActionCheck, Vec<Diagnostic>> {
        if spec.as_str().is_some() {
            return Ok(ActionCheck::default());
        }
        if let (Some(_), Some(inputs)) = (spec.get("run"), spec.get("inputs"))
            && let NodeValue::Seq(items) = &inputs.value
        {
            let depends_on = items
                .iter()
                .filter_map(|i| Some((i.as_str()?.to_string(), i.span)))
                .collect();
            return Ok(ActionCheck {
                depends_on,
                reads: Vec::new(),
            });
        }
        Err(vec![
            Diagnostic::error(
                "invalid-type",
                format!(
                    "a `shell` step is a command string, found {}",
                    spec.describe()
                ),
            )
            .with_span(spec.span),
        ])
    }
}
