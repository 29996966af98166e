//! A YAML document as a tree of nodes that each know their source span.
//!
//! weir reads YAML through granit-parser's event stream (re-exported by
//! serde-saphyr) rather than straight into typed structs: every key and value
//! keeps its exact byte range, duplicate keys survive to be reported, and one
//! bad step does not hide the errors of the next.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{ErrorKind, Event, Marker, Parser, ScalarStyle, ScanError, Tag};
use weir_types::{Diagnostic, Span};

/// One YAML value with the span of its source text.
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

    /// The value as JSON. Map keys that are not strings are rendered as
    /// their JSON text; with duplicate keys the last one wins, as in YAML
    /// loaders that accept them (validation reports them anyway).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The text of a map key: the string itself, or the JSON text of any
    /// other scalar (`1`, `true`).
    pub fn key_text(&self) -> String {
        match &self.value {
            NodeValue::String(s) => s.clone(),
            _ => self.to_json().to_string(),
        }
    }

    /// The string, when this node is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, when this node is a map.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The first entry of a map whose key is the string `key`.
    pub fn get_entry(&self, key: &str) -> Option<&(Node, Node)> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key))
    }

    /// The value of the first entry of a map whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// What kind of value this is, for messages ("a string", "a map").
    pub fn describe(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a map",
        }
    }
}

// A billion-laughs document expands a few aliases into an exponential tree;
// nothing a person writes comes near this many nodes.
const MAX_NODES: usize = 1_000_000;

/// Parses one YAML document into a [`Node`] tree.
///
/// Syntax errors, tabs used as indentation, an empty file and a file with
/// several documents become diagnostics in `file` (a project-relative path).
pub fn parse_yaml(file: &str, text: &str) -> Result<Node, Vec<Diagnostic>> {
    let mut builder = TreeBuilder {
        text,
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
        last_end: 0,
    };
    builder.document().map_err(|d| vec![d.in_file(file)])
}

struct TreeBuilder<'a> {
    text: &'a str,
    events: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    /// Anchored nodes by anchor id, with their node count.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    /// Byte offset where the last finished node ends.
    last_end: usize,
}

type Ev<'a> = (Event<'a>, serde_saphyr::granit_parser::Span);

#[expect(
    clippy::result_large_err,
    reason = "Diagnostic is the contract type of user errors; they are rare and off the hot path"
)]
impl<'a> TreeBuilder<'a> {
    fn next(&mut self) -> Result<Ev<'a>, Diagnostic> {
        match self.events.next() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(self.scan_error(&e)),
            None => Err(self.eof_error()),
        }
    }

    fn eof_error(&self) -> Diagnostic {
        Diagnostic::error("yaml-syntax", "invalid YAML: unexpected end of file")
            .with_span(self.span_at(self.text.len(), 0))
    }

    fn document(&mut self) -> Result<Node, Diagnostic> {
        let mut root: Option<Node> = None;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::DocumentStart(..) => {
                    if root.is_some() {
                        let at = self.offset(&span.start);
                        return Err(Diagnostic::error(
                            "multiple-documents",
                            "this file holds more than one YAML document",
                        )
                        .with_label(self.span_at(at, 3.min(self.text.len() - at)), "a second document starts here")
                        .with_help("put each pipeline, environment or project file in a file of its own, without `---` separators"));
                    }
                    let (event, span) = self.next()?;
                    if matches!(event, Event::DocumentEnd) {
                        continue;
                    }
                    root = Some(self.node(event, span)?);
                }
                _ => {}
            }
        }
        match root {
            Some(root) if !is_blank_null(&root) => Ok(root),
            _ => Err(Diagnostic::error("empty-file", "this file is empty")
                .with_span(self.span_at(0, 0))
                .with_help("write a YAML map here; `weir schema` prints the expected format")),
        }
    }

    /// Where a sequence or mapping ends, given its closing event: a flow
    /// `]` or `}` has a width and ends there; a block collection ends with
    /// its last item.
    fn collection_end(&self, close: &serde_saphyr::granit_parser::Span, end: usize) -> usize {
        let close_end = self.offset(&close.end);
        if close_end > self.offset(&close.start) {
            close_end
        } else {
            self.last_end.max(end)
        }
    }

    fn node(
        &mut self,
        event: Event<'a>,
        span: serde_saphyr::granit_parser::Span,
    ) -> Result<Node, Diagnostic> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.too_big(&span.start));
        }
        let start = self.offset(&span.start);
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let end = self.offset(&span.end);
                let end = if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                    // A block scalar's event runs to the next token; the text
                    // a person would point at ends with its last non-blank.
                    start + self.text[start..end.max(start)].trim_end().len()
                } else {
                    end
                };
                self.last_end = end;
                let value = resolve_scalar(&value, style, tag.as_deref());
                (
                    Node {
                        span: self.span_between(start, end),
                        value,
                    },
                    anchor,
                )
            }
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                let mut end = self.offset(&span.end);
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        end = self.collection_end(&span, end);
                        break;
                    }
                    items.push(self.node(event, span)?);
                }
                self.last_end = end;
                (
                    Node {
                        span: self.span_between(start, end),
                        value: NodeValue::Seq(items),
                    },
                    anchor,
                )
            }
            Event::MappingStart(_, anchor, _) => {
                let mut entries = Vec::new();
                let mut end = self.offset(&span.end);
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::MappingEnd) {
                        end = self.collection_end(&span, end);
                        break;
                    }
                    let key = self.node(event, span)?;
                    let (event, span) = self.next()?;
                    let value = self.node(event, span)?;
                    entries.push((key, value));
                }
                self.last_end = end;
                (
                    Node {
                        span: self.span_between(start, end),
                        value: NodeValue::Map(entries),
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let end = self.offset(&span.end);
                self.last_end = end;
                let Some((target, count)) = self.anchors.get(&id) else {
                    return Err(Diagnostic::error(
                        "yaml-syntax",
                        "invalid YAML: alias to an unknown anchor",
                    )
                    .with_span(self.span_between(start, end)));
                };
                self.nodes += count;
                if self.nodes > MAX_NODES {
                    return Err(self.too_big(&span.start));
                }
                let value = target.value.clone();
                (
                    Node {
                        span: self.span_between(start, end),
                        value,
                    },
                    0,
                )
            }
            _ => {
                return Err(
                    Diagnostic::error("yaml-syntax", "invalid YAML: unexpected token")
                        .with_span(self.span_at(start, 0)),
                );
            }
        };
        if anchor != 0 {
            let count = count_nodes(&node);
            self.anchors.insert(anchor, (node.clone(), count));
        }
        Ok(node)
    }

    fn too_big(&self, at: &Marker) -> Diagnostic {
        Diagnostic::error(
            "yaml-syntax",
            format!("invalid YAML: the document expands to more than {MAX_NODES} values"),
        )
        .with_span(self.span_at(self.offset(at), 0))
        .with_help("aliases (`*name`) multiply their anchor's content; use fewer of them")
    }

    fn scan_error(&self, e: &ScanError) -> Diagnostic {
        let at = self.offset(e.marker());
        if is_tab_error(e.kind()) || self.indentation_tab_on_line_of(at).is_some() {
            let tab = self.indentation_tab_from(at).unwrap_or(at);
            return Diagnostic::error("yaml-tab", "a tab character is used for indentation")
                .with_label(self.span_at(tab, 1.min(self.text.len() - tab)), "tab here")
                .with_help("YAML indentation must be spaces; replace the tab with spaces");
        }
        let len = self.text[at..].chars().next().map_or(0, char::len_utf8);
        Diagnostic::error("yaml-syntax", format!("invalid YAML: {}", e.info()))
            .with_label(self.span_at(at, len), e.info())
            .with_help(syntax_help(e.kind()))
    }

    /// The first tab in the leading whitespace of the line holding `at`.
    fn indentation_tab_on_line_of(&self, at: usize) -> Option<usize> {
        let line_start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let indent_len = self.text[line_start..]
            .find(|c: char| c != ' ' && c != '\t')
            .unwrap_or(self.text.len() - line_start);
        self.text[line_start..line_start + indent_len]
            .find('\t')
            .map(|i| line_start + i)
    }

    /// The first tab in leading whitespace on the line of `at` or after it:
    /// the scanner often notices a tab only at the end of the previous token.
    fn indentation_tab_from(&self, at: usize) -> Option<usize> {
        let mut line_start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        loop {
            if let Some(tab) = self.indentation_tab_on_line_of(line_start) {
                return Some(tab);
            }
            line_start += self.text[line_start..].find('\n')? + 1;
        }
    }

    fn offset(&self, m: &Marker) -> usize {
        let offset = match m.byte_offset() {
            Some(b) => b,
            None => self
                .text
                .char_indices()
                .nth(m.index())
                .map_or(self.text.len(), |(i, _)| i),
        };
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    fn span_between(&self, start: usize, end: usize) -> Span {
        self.span_at(start, end.saturating_sub(start))
    }

    fn span_at(&self, offset: usize, len: usize) -> Span {
        span_in(self.text, offset, len)
    }
}

/// The span of `len` bytes at `offset` of `text`, with its line and column.
pub fn span_in(text: &str, offset: usize, len: usize) -> Span {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let len = len.min(text.len() - offset);
    Span::new(
        offset,
        len,
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

fn is_blank_null(node: &Node) -> bool {
    node.value == NodeValue::Null && node.span.len == 0
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        NodeValue::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeValue::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn is_tab_error(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::TabNotAllowed
            | ErrorKind::TabInBlockIndentation
            | ErrorKind::TabAtBlockScalarStart
            | ErrorKind::TabInIndentation
            | ErrorKind::TabInPlainScalar
    )
}

fn syntax_help(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::MappingValueNotAllowed => {
            "a value containing `: ` must be quoted; otherwise check the indentation of this line"
        }
        ErrorKind::UnclosedQuotedScalar => "close the quote, or escape a quote inside the value",
        _ => "check the indentation and quoting around this position",
    }
}

/// YAML 1.2 core schema: only plain scalars are typed; quoted ones are strings.
fn resolve_scalar(value: &str, style: ScalarStyle, tag: Option<&Tag>) -> NodeValue {
    if let Some(tag) = tag
        && tag.is_yaml_core_schema()
    {
        match tag.suffix() {
            "str" => return NodeValue::String(value.to_string()),
            "null" => return NodeValue::Null,
            _ => return resolve_plain(value),
        }
    }
    if style != ScalarStyle::Plain {
        return NodeValue::String(value.to_string());
    }
    resolve_plain(value)
}

fn resolve_plain(v: &str) -> NodeValue {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "true" | "True" | "TRUE" => return NodeValue::Bool(true),
        "false" | "False" | "FALSE" => return NodeValue::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return NodeValue::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return NodeValue::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeValue::Float(f64::NAN),
        _ => {}
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = v.parse::<i64>() {
            return NodeValue::Int(i);
        }
        if let Ok(f) = v.parse::<f64>() {
            return NodeValue::Float(f);
        }
    }
    if let Some(hex) = v.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return NodeValue::Int(i);
    }
    if let Some(oct) = v.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return NodeValue::Int(i);
    }
    if looks_like_float(v)
        && let Ok(f) = v.parse::<f64>()
    {
        return NodeValue::Float(f);
    }
    NodeValue::String(v.to_string())
}

/// `[-+]? ( \.[0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn looks_like_float(v: &str) -> bool {
    let s = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(frac) => all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => !int.is_empty() && all_digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        parse_yaml("p.yaml", text).expect("valid yaml")
    }

    fn err(text: &str) -> Diagnostic {
        let mut d = parse_yaml("p.yaml", text).expect_err("invalid yaml");
        assert_eq!(d.len(), 1);
        d.remove(0)
    }

    fn slice(text: &str, span: Span) -> &str {
        &text[span.offset..span.offset + span.len]
    }

    #[test]
    fn every_key_and_value_has_its_exact_span() {
        let text = "name: \"x\"\nsteps:\n  a:\n    shell: |\n      echo hi\n    needs: [b, c]\n  é: {x: 1}\n";
        let root = parse(text);
        let steps = root.get("steps").expect("steps");
        let (key, a) = &steps.as_map().expect("map")[0];
        assert_eq!(slice(text, key.span), "a");
        assert_eq!((key.span.line, key.span.column), (3, 3));
        let shell = a.get("shell").expect("shell");
        assert_eq!(shell.as_str(), Some("echo hi\n"));
        assert_eq!(slice(text, shell.span), "echo hi");
        assert_eq!((shell.span.line, shell.span.column), (5, 7));
        let needs = a.get("needs").expect("needs");
        assert_eq!(slice(text, needs.span), "[b, c]");
        let (ekey, eval) = &steps.as_map().expect("map")[1];
        assert_eq!((ekey.span.line, ekey.span.column), (7, 3));
        assert_eq!(slice(text, eval.span), "{x: 1}");
        assert_eq!(eval.span.column, 6, "columns count characters, not bytes");
        assert_eq!(slice(text, root.get("name").expect("name").span), "\"x\"");
    }

    #[test]
    fn block_map_span_ends_with_its_last_value() {
        let text = "a:\n  b: 1\n  c: two\nd: 3\n";
        let root = parse(text);
        assert_eq!(
            slice(text, root.get("a").expect("a").span),
            "b: 1\n  c: two"
        );
    }

    #[test]
    fn scalars_resolve_like_yaml_1_2() {
        let root = parse(
            "a: 1\nb: -2.5\nc: true\nd: ~\ne: '1'\nf: 10s\ng: yes\nh: 0x1f\ni: 1e3\nj: 99999999999999999999\nk: !!str 5\n",
        );
        let v = |k: &str| root.get(k).expect("key").value.clone();
        assert_eq!(v("a"), NodeValue::Int(1));
        assert_eq!(v("b"), NodeValue::Float(-2.5));
        assert_eq!(v("c"), NodeValue::Bool(true));
        assert_eq!(v("d"), NodeValue::Null);
        assert_eq!(v("e"), NodeValue::String("1".into()));
        assert_eq!(v("f"), NodeValue::String("10s".into()));
        assert_eq!(v("g"), NodeValue::String("yes".into()));
        assert_eq!(v("h"), NodeValue::Int(31));
        assert_eq!(v("i"), NodeValue::Float(1000.0));
        assert_eq!(v("j"), NodeValue::Float(1e20));
        assert_eq!(v("k"), NodeValue::String("5".into()));
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let root = parse("a: 1\na: 2\n");
        assert_eq!(root.as_map().expect("map").len(), 2);
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let root = parse("a: &x {k: 1}\nb: *x\n");
        assert_eq!(
            root.get("b").expect("b").to_json(),
            serde_json::json!({"k": 1})
        );
    }

    #[test]
    fn syntax_error_points_at_line_and_column() {
        let d = err("name: x\n  bad: [1, 2\n");
        assert_eq!(d.code, "yaml-syntax");
        assert_eq!(d.file.as_deref(), Some("p.yaml"));
        let s = d.primary_span().expect("span");
        assert_eq!((s.line, s.column), (2, 6));
    }

    #[test]
    fn unclosed_quote_is_a_syntax_error() {
        let d = err("a: \"open\nb: 1\n");
        assert_eq!(d.code, "yaml-syntax");
    }

    #[test]
    fn tab_indentation_points_at_the_tab() {
        let d = err("name: x\nsteps:\n\ta: 1\n");
        assert_eq!(d.code, "yaml-tab");
        let s = d.primary_span().expect("span");
        assert_eq!((s.line, s.column, s.len), (3, 1, 1));

        let d = err("name: x\nsteps:\n  a:\n    shell: echo\n\tneeds: 1\n");
        assert_eq!(d.code, "yaml-tab");
        let s = d.primary_span().expect("span");
        assert_eq!((s.line, s.column), (5, 1));
    }

    #[test]
    fn empty_and_comment_only_files_are_reported() {
        assert_eq!(err("").code, "empty-file");
        assert_eq!(err("# nothing\n").code, "empty-file");
        assert_eq!(err("---\n").code, "empty-file");
    }

    #[test]
    fn several_documents_are_reported_at_the_second() {
        let d = err("a: 1\n---\nb: 2\n");
        assert_eq!(d.code, "multiple-documents");
        assert_eq!(d.primary_span().expect("span").line, 2);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert_eq!(err(&text).code, "yaml-syntax");
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "{",
            "[",
            "a: [",
            ": :",
            "- - -\n  -",
            "\"\\u",
            "&a",
            "*a",
            "a: *b",
            "? a\n? b",
            "\u{feff}a: 1",
            "a:\n\t- b",
            "|\n\t x",
            "%YAML 1.2\n---\na",
        ] {
            let _ = parse_yaml("p.yaml", text);
        }
    }
}
