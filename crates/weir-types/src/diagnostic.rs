use std::fmt;

use serde::{Deserialize, Serialize};

/// A byte range in one source file, with the 1-based line and column of its
/// start (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
    pub line: u32,
    pub column: u32,
}

impl Span {
    pub fn new(offset: usize, len: usize, line: u32, column: u32) -> Self {
        Span {
            offset,
            len,
            line,
            column,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// A span with a short message drawn under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub span: Span,
    pub message: Option<String>,
}

/// A problem in something a user wrote (YAML, SQL, a template), independent
/// of how it is rendered: the CLI renders it with miette, the API as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Stable kebab-case code, e.g. `unknown-key`; golden tests cover each.
    pub code: String,
    pub severity: Severity,
    /// What is wrong, with names and values in backticks.
    pub message: String,
    /// Project-relative path of the file the spans point into.
    pub file: Option<String>,
    /// The first label is the primary location.
    pub labels: Vec<Label>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            code: code.into(),
            severity: Severity::Error,
            message: message.into(),
            file: None,
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: Some(message.into()),
        });
        self
    }

    pub fn with_span(mut self, span: Span) -> Self {
        self.labels.push(Label {
            span,
            message: None,
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary location, when there is one.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }
}

/// One line, `file:line:column: code: message`, for logs and plain output.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some(span) = self.primary_span() {
                write!(f, ":{}:{}", span.line, span.column)?;
            }
            write!(f, ": ")?;
        }
        write!(
            f,
            "{}[{}]: {}",
            match self.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            self.code,
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_form_names_file_line_and_column() {
        let d = Diagnostic::error("unknown-key", "unknown key `retrys`")
            .in_file("pipelines/a.yaml")
            .with_label(Span::new(40, 6, 3, 5), "did you mean `retries`?");
        assert_eq!(
            d.to_string(),
            "pipelines/a.yaml:3:5: error[unknown-key]: unknown key `retrys`"
        );
    }
}
