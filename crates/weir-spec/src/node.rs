//! A YAML document as a tree of nodes that each know their source span.
//! INTERIM: the spec helper replaces this module's internals; the public
//! surface (`Node`, `NodeValue`, `from_node`) is the contract.

use serde::de::DeserializeOwned;
use weir_types::{Diagnostic, Span};

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Entries in document order; duplicate keys are kept so they can be reported.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn span(&self) -> Span {
        self.span
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_key(), v.to_json()))
                    .collect(),
            ),
        }
    }

    fn as_key(&self) -> String {
        match &self.value {
            NodeValue::String(s) => s.clone(),
            other => Node { span: self.span, value: other.clone() }.to_json().to_string(),
        }
    }
}

/// Deserializes a node into a typed value; errors point at the offending node.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, Diagnostic> {
    serde_json::from_value(node.to_json())
        .map_err(|e| Diagnostic::error("invalid-value", e.to_string()).with_span(node.span))
}
