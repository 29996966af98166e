//! A serde `Deserializer` over [`Node`], so typed `*Spec` structs report
//! errors at the node that caused them.
//!
//! serde builds `unknown_field`, `invalid_type` and `missing_field` errors
//! without knowing where they happened; the innermost node deserializer that
//! sees a span-less error stamps its own span on it, and each map or sequence
//! it passes through prepends its key or index to the error's path.
//!
//! An unknown key does not end the check of its map: the remaining keys are
//! compared with the same list of valid ones, so a
//! step with three misspelt keys gets three diagnostics at once.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use weir_types::{Diagnostic, Span};

use crate::node::{Node, NodeValue};
use crate::suggest::{did_you_mean, list_names};

/// Deserializes a node into a typed value; errors point at the offending node.
/// Returns the first problem; [`from_node_in`] returns all of them.
#[expect(
    clippy::result_large_err,
    reason = "Diagnostic is the contract type of user errors; they are rare and off the hot path"
)]
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, Diagnostic> {
    from_node_in(node, None).map_err(|mut all| {
        if all.is_empty() {
            Diagnostic::error("invalid-value", "invalid value").with_span(node.span)
        } else {
            all.swap_remove(0)
        }
    })
}

/// Like [`from_node`], returning every problem found; `what` names the node
/// in messages (e.g. ``step `clean` `` gives "unknown key `retrys` in step
/// `clean`").
pub fn from_node_in<T: DeserializeOwned>(
    node: &Node,
    what: Option<&str>,
) -> Result<T, Vec<Diagnostic>> {
    T::deserialize(NodeDeserializer { node }).map_err(|e| {
        e.flatten()
            .into_iter()
            .map(|e| e.into_diagnostic(node.span, what))
            .collect()
    })
}

#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
pub(crate) enum ErrorKind {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    InvalidType {
        found: String,
        expected: String,
    },
    InvalidValue {
        found: String,
        expected: String,
    },
    MissingField(&'static str),
    Custom(String),
    /// Several unknown keys of one map, each with its span.
    Many(Vec<Error>),
}

/// A deserialization problem, before it becomes a [`Diagnostic`].
#[derive(Debug, Clone)]
pub(crate) struct Error {
    pub(crate) kind: ErrorKind,
    pub(crate) span: Option<Span>,
    /// Innermost segment last.
    pub(crate) path: Vec<Segment>,
}

impl Error {
    fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            span: None,
            path: Vec::new(),
        }
    }

    fn flatten(self) -> Vec<Error> {
        match self.kind {
            ErrorKind::Many(all) => all.into_iter().flat_map(Error::flatten).collect(),
            _ => vec![self],
        }
    }

    /// Prepends a key or index to the path of this error (of each, for `Many`).
    fn under(mut self, segment: Segment) -> Self {
        match &mut self.kind {
            ErrorKind::Many(all) => {
                for e in all.iter_mut() {
                    e.path.insert(0, segment.clone());
                }
            }
            _ => self.path.insert(0, segment),
        }
        self
    }

    fn path_text(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// " in `retries` of step `x`", " in step `x`", " in `a.b`" or "".
    fn location(&self, what: Option<&str>) -> String {
        let path = self.path_text();
        match (path.is_empty(), what) {
            (true, Some(w)) => format!(" in {w}"),
            (false, Some(w)) => format!(" in `{path}` of {w}"),
            (false, None) => format!(" in `{path}`"),
            (true, None) => String::new(),
        }
    }

    pub(crate) fn into_diagnostic(self, fallback: Span, what: Option<&str>) -> Diagnostic {
        let span = self.span.unwrap_or(fallback);
        let location = self.location(what);
        match &self.kind {
            ErrorKind::UnknownField { field, expected } => {
                let d =
                    Diagnostic::error("unknown-key", format!("unknown key `{field}`{location}"))
                        .with_label(span, "unknown key");
                match did_you_mean(field, expected.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None if expected.is_empty() => d.with_help("this map takes no keys"),
                    None => d.with_help(format!("valid keys are {}", list_names(expected.iter()))),
                }
            }
            ErrorKind::UnknownVariant { variant, expected } => {
                let d = Diagnostic::error(
                    "invalid-value",
                    format!("unknown value `{variant}`{location}"),
                )
                .with_label(
                    span,
                    format!("expected one of {}", list_names(expected.iter())),
                );
                match did_you_mean(variant, expected.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("use one of {}", list_names(expected.iter()))),
                }
            }
            ErrorKind::InvalidType { found, expected } => {
                let at = if location.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", location.trim_start().trim_start_matches("in "))
                };
                Diagnostic::error(
                    "invalid-type",
                    format!("{at}expected {expected}, found {found}"),
                )
                .with_label(span, format!("expected {expected}"))
            }
            ErrorKind::InvalidValue { found, expected } => {
                let at = if location.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", location.trim_start().trim_start_matches("in "))
                };
                Diagnostic::error(
                    "invalid-value",
                    format!("{at}expected {expected}, found {found}"),
                )
                .with_label(span, format!("expected {expected}"))
            }
            ErrorKind::MissingField(field) => {
                Diagnostic::error("missing-key", format!("missing key `{field}`{location}"))
                    .with_label(span, format!("`{field}` is required in this map"))
            }
            ErrorKind::Custom(message) => {
                let at = if location.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", location.trim_start().trim_start_matches("in "))
                };
                Diagnostic::error("invalid-value", format!("{at}{message}")).with_span(span)
            }
            ErrorKind::Many(_) => {
                Diagnostic::error("invalid-value", "invalid value").with_span(span)
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::UnknownField { field, .. } => write!(f, "unknown key `{field}`"),
            ErrorKind::UnknownVariant { variant, .. } => write!(f, "unknown value `{variant}`"),
            ErrorKind::InvalidType { found, expected }
            | ErrorKind::InvalidValue { found, expected } => {
                write!(f, "expected {expected}, found {found}")
            }
            ErrorKind::MissingField(field) => write!(f, "missing key `{field}`"),
            ErrorKind::Custom(m) => f.write_str(m),
            ErrorKind::Many(all) => write!(f, "{} problems", all.len()),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(ErrorKind::Custom(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::new(ErrorKind::InvalidType {
            found: describe_unexpected(&unexp),
            expected: describe_expected(&exp.to_string()),
        })
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Error::new(ErrorKind::InvalidValue {
            found: describe_unexpected(&unexp),
            expected: describe_expected(&exp.to_string()),
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::new(ErrorKind::UnknownField {
            field: field.to_string(),
            expected,
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::new(ErrorKind::UnknownVariant {
            variant: variant.to_string(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        Error::new(ErrorKind::MissingField(field))
    }
}

fn describe_unexpected(u: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match u {
        U::Bool(b) => format!("a boolean `{b}`"),
        U::Unsigned(i) => format!("an integer `{i}`"),
        U::Signed(i) => format!("an integer `{i}`"),
        U::Float(f) => format!("a number `{f}`"),
        U::Char(c) => format!("a string `{c}`"),
        U::Str(s) => format!("a string `{}`", shorten(s)),
        U::Bytes(_) => "bytes".to_string(),
        U::Unit | U::Option => "null".to_string(),
        U::NewtypeStruct | U::NewtypeVariant | U::TupleVariant | U::StructVariant => {
            "a value".to_string()
        }
        U::UnitVariant | U::Enum => "a name".to_string(),
        U::Seq => "a list".to_string(),
        U::Map => "a map".to_string(),
        U::Other(o) => (*o).to_string(),
    }
}

fn shorten(s: &str) -> String {
    let first_line = s.lines().next().unwrap_or("");
    let mut out: String = first_line.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// serde's "u32" or "struct StepSpec" in words a YAML author knows.
fn describe_expected(exp: &str) -> String {
    match exp {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" | "a string" => exp.to_string(),
        "a borrowed string" | "a char" => "a string".to_string(),
        "a sequence" => "a list".to_string(),
        "unit" => "null".to_string(),
        _ if exp.starts_with("struct ") || exp.starts_with("a map") => "a map".to_string(),
        _ if exp.starts_with("enum ") => "a name or a map with one key".to_string(),
        _ => exp.to_string(),
    }
}

/// Deserializes one node; see the module docs for how errors get their span.
pub(crate) struct NodeDeserializer<'a> {
    pub(crate) node: &'a Node,
}

impl<'a> NodeDeserializer<'a> {
    fn child(&self, node: &'a Node) -> NodeDeserializer<'a> {
        NodeDeserializer { node }
    }

    fn stamp<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        r.map_err(|mut e| {
            if e.span.is_none() {
                e.span = Some(match (&e.kind, &self.node.value) {
                    // Pointing at the whole map would underline every line of
                    // a step; its first key says "this map" well enough.
                    (ErrorKind::MissingField(_), NodeValue::Map(entries)) => {
                        entries.first().map_or(self.node.span, |(k, _)| k.span)
                    }
                    _ => self.node.span,
                });
            }
            e
        })
    }
}

impl<'de, 'a: 'de> de::Deserializer<'de> for NodeDeserializer<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Bool(b) => visitor.visit_bool(*b),
            NodeValue::Int(i) => visitor.visit_i64(*i),
            NodeValue::Float(f) => visitor.visit_f64(*f),
            NodeValue::String(s) => visitor.visit_borrowed_str(s),
            NodeValue::Seq(items) => visitor.visit_seq(NodeSeq {
                items: items.iter(),
                index: 0,
            }),
            NodeValue::Map(entries) => visitor.visit_map(NodeMap::new(entries)),
        };
        self.stamp(r)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value {
            NodeValue::Null => self.stamp(visitor.visit_none()),
            _ => {
                let span = self.node.span;
                let r = visitor.visit_some(self.child(self.node));
                r.map_err(|mut e| {
                    e.span.get_or_insert(span);
                    e
                })
            }
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let node = self.node;
        let r = visitor.visit_newtype_struct(self.child(node));
        self.stamp(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            NodeValue::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            // YAML reads a bare `null` as null, not as the name `null`.
            NodeValue::Null if variants.contains(&"null") => {
                visitor.visit_enum("null".into_deserializer())
            }
            NodeValue::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(NodeEnum { key, value }).map_err(|e| {
                    // An error inside the variant's value belongs under its key.
                    if matches!(e.kind, ErrorKind::UnknownVariant { .. }) {
                        e
                    } else {
                        e.under(Segment::Key(key.key_text()))
                    }
                })
            }
            _ => Err(Error::new(ErrorKind::InvalidType {
                found: self.node.describe().to_string(),
                expected: "a name or a map with exactly one key".to_string(),
            })),
        };
        self.stamp(r)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct NodeSeq<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
}

impl<'de, 'a: 'de> SeqAccess<'de> for NodeSeq<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(NodeDeserializer { node: item })
            .map(Some)
            .map_err(|e| e.under(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct NodeMap<'a> {
    /// Entries without later duplicates of a key: those are reported as
    /// `duplicate-key` by validation, and serde would only repeat it.
    entries: Vec<&'a (Node, Node)>,
    next: usize,
}

impl<'a> NodeMap<'a> {
    fn new(entries: &'a [(Node, Node)]) -> Self {
        let mut seen = std::collections::HashSet::new();
        let entries = entries
            .iter()
            .filter(|(k, _)| seen.insert(k.key_text()))
            .collect();
        NodeMap { entries, next: 0 }
    }
}

impl<'de, 'a: 'de> MapAccess<'de> for NodeMap<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        match seed.deserialize(NodeDeserializer { node: key }) {
            Ok(k) => Ok(Some(k)),
            Err(mut e) if matches!(e.kind, ErrorKind::UnknownField { .. }) => {
                e.span.get_or_insert(key.span);
                self.next += 1;
                let mut all = vec![e];
                self.unknown_rest(&mut all);
                Err(Error::new(ErrorKind::Many(all)))
            }
            Err(e) => Err(e),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.entries.get(self.next) else {
            return Err(Error::new(ErrorKind::Custom("value without a key".into())));
        };
        self.next += 1;
        seed.deserialize(NodeDeserializer { node: value })
            .map_err(|e| e.under(Segment::Key(key.key_text())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len().saturating_sub(self.next))
    }
}

impl NodeMap<'_> {
    /// After the first unknown key the struct cannot continue (serde seeds
    /// are single-use), so the remaining keys are checked against the list
    /// the first error carried.
    fn unknown_rest(&mut self, all: &mut Vec<Error>) {
        let expected = match all.last() {
            Some(Error {
                kind: ErrorKind::UnknownField { expected, .. },
                ..
            }) => *expected,
            _ => return,
        };
        for (key, _) in &self.entries[self.next..] {
            let text = key.key_text();
            if !expected.contains(&text.as_str()) {
                all.push(Error {
                    kind: ErrorKind::UnknownField {
                        field: text,
                        expected,
                    },
                    span: Some(key.span),
                    path: Vec::new(),
                });
            }
        }
        self.next = self.entries.len();
    }
}

struct NodeEnum<'a> {
    key: &'a Node,
    value: &'a Node,
}

impl<'de, 'a: 'de> EnumAccess<'de> for NodeEnum<'a> {
    type Error = Error;
    type Variant = NodeVariant<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let key = NodeDeserializer { node: self.key };
        let span = self.key.span;
        let v = seed.deserialize(key).map_err(|mut e| {
            e.span.get_or_insert(span);
            e
        })?;
        Ok((v, NodeVariant { value: self.value }))
    }
}

struct NodeVariant<'a> {
    value: &'a Node,
}

impl<'de, 'a: 'de> VariantAccess<'de> for NodeVariant<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value.value {
            NodeValue::Null => Ok(()),
            _ => Err(Error {
                kind: ErrorKind::InvalidType {
                    found: self.value.describe().to_string(),
                    expected: "nothing (null)".to_string(),
                },
                span: Some(self.value.span),
                path: Vec::new(),
            }),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(NodeDeserializer { node: self.value })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(NodeDeserializer { node: self.value }, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(NodeDeserializer { node: self.value }, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::parse_yaml;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        max: u32,
        #[serde(default)]
        backoff: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default)]
        retries: Option<Inner>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        vars: BTreeMap<String, i64>,
        #[serde(default)]
        kind: Option<Kind>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Kind {
        Plain,
        Cron(String),
        File { path: String },
    }

    fn run(text: &str) -> Result<Outer, Vec<Diagnostic>> {
        let node = parse_yaml("t.yaml", text).expect("yaml");
        from_node_in(&node, Some("step `x`"))
    }

    fn line_col(d: &Diagnostic) -> (u32, u32) {
        let s = d.primary_span().expect("span");
        (s.line, s.column)
    }

    #[test]
    fn deserializes_nested_values() {
        let v = run(
            "name: a\nretries: {max: 2}\ntags: [x, y]\nvars: {a: 1}\nkind: {file: {path: p}}\n",
        )
        .expect("valid");
        assert_eq!(
            v.retries,
            Some(Inner {
                max: 2,
                backoff: None
            })
        );
        assert_eq!(v.tags, ["x", "y"]);
        assert_eq!(v.kind, Some(Kind::File { path: "p".into() }));
        let v = run("name: a\nkind: plain\n").expect("valid");
        assert_eq!(v.kind, Some(Kind::Plain));
        let v = run("name: a\nkind: {cron: '* * * * *'}\n").expect("valid");
        assert_eq!(v.kind, Some(Kind::Cron("* * * * *".into())));
    }

    #[test]
    fn unknown_key_points_at_the_key_and_suggests() {
        let errs = run("name: a\nretrys: 1\n").expect_err("invalid");
        assert_eq!(errs.len(), 1);
        let d = &errs[0];
        assert_eq!(d.code, "unknown-key");
        assert_eq!(d.message, "unknown key `retrys` in step `x`");
        assert_eq!(d.help.as_deref(), Some("did you mean `retries`?"));
        assert_eq!(line_col(d), (2, 1));
    }

    #[test]
    fn every_unknown_key_is_reported() {
        let errs = run("zzz: 1\nname: a\nretrys: 1\nqqq: 2\n").expect_err("invalid");
        let codes: Vec<_> = errs
            .iter()
            .map(|d| (d.code.as_str(), line_col(d)))
            .collect();
        assert_eq!(
            codes,
            [
                ("unknown-key", (1, 1)),
                ("unknown-key", (3, 1)),
                ("unknown-key", (4, 1))
            ]
        );
        assert!(
            errs[0]
                .help
                .as_deref()
                .expect("help")
                .starts_with("valid keys are")
        );
    }

    #[test]
    fn nested_unknown_key_names_its_path() {
        let errs = run("name: a\nretries: {max: 1, backof: 2s}\n").expect_err("invalid");
        assert_eq!(
            errs[0].message,
            "unknown key `backof` in `retries` of step `x`"
        );
        assert_eq!(line_col(&errs[0]), (2, 19));
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let errs = run("name: a\nretries:\n  max: abc\n").expect_err("invalid");
        let d = &errs[0];
        assert_eq!(d.code, "invalid-type");
        assert_eq!(
            d.message,
            "`retries.max` of step `x`: expected a non-negative integer, found a string `abc`"
        );
        assert_eq!(line_col(d), (3, 8));

        let errs = run("name: [1]\n").expect_err("invalid");
        assert_eq!(
            errs[0].message,
            "`name` of step `x`: expected a string, found a list"
        );
        assert_eq!(line_col(&errs[0]), (1, 7));

        let errs = run("name: a\ntags: [x, 3]\n").expect_err("invalid");
        assert_eq!(
            errs[0].message,
            "`tags[1]` of step `x`: expected a string, found an integer `3`"
        );
        assert_eq!(line_col(&errs[0]), (2, 11));
    }

    #[test]
    fn missing_key_points_at_the_map() {
        let errs = run("tags: []\n").expect_err("invalid");
        assert_eq!(errs[0].code, "missing-key");
        assert_eq!(errs[0].message, "missing key `name` in step `x`");
        assert_eq!(line_col(&errs[0]), (1, 1));

        let errs = run("name: a\nretries:\n  backoff: 1s\n").expect_err("invalid");
        assert_eq!(
            errs[0].message,
            "missing key `max` in `retries` of step `x`"
        );
        assert_eq!(line_col(&errs[0]), (3, 3));
    }

    #[test]
    fn unknown_variant_suggests() {
        let errs = run("name: a\nkind: plian\n").expect_err("invalid");
        assert_eq!(errs[0].code, "invalid-value");
        assert_eq!(errs[0].help.as_deref(), Some("did you mean `plain`?"));
        assert_eq!(line_col(&errs[0]), (2, 7));
    }

    #[test]
    fn unknown_key_and_missing_key_are_both_reported() {
        let errs = run("nme: a\n").expect_err("invalid");
        let codes: Vec<_> = errs.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["unknown-key"]);
    }

    #[test]
    fn from_node_returns_the_first_problem() {
        let node = parse_yaml("t.yaml", "5").expect("yaml");
        let d = from_node::<Outer>(&node).expect_err("invalid");
        assert_eq!(d.code, "invalid-type");
        assert_eq!(d.message, "expected a map, found an integer `5`");
    }
}
