//! The one renderer of user diagnostics: rustc-style, via miette.

use std::fmt;
use std::io::Write;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};
use weir_spec::SourceMap;
use weir_types::{Diagnostic, Severity};

use crate::output;

/// Renders diagnostics to stderr; returns how many are errors.
pub fn diagnostics(diagnostics: &[Diagnostic], sources: &SourceMap) -> usize {
    let mut err = std::io::stderr().lock();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(err);
        }
        let _ = write!(err, "{}", to_string(d, sources));
    }
    diagnostics.iter().filter(|d| d.is_error()).count()
}

/// One diagnostic, rendered; colours only on a rich terminal.
pub fn to_string(d: &Diagnostic, sources: &SourceMap) -> String {
    let theme = if output::is_rich() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let source = d.file.as_ref().map(|file| {
        NamedSource::new(
            file.clone(),
            sources.get(file).unwrap_or_default().to_owned(),
        )
    });
    let shown = Shown { d, source };
    let mut out = String::new();
    if handler.render_report(&mut out, &shown).is_err() {
        out = format!("{d}\n");
    }
    out
}

struct Shown<'a> {
    d: &'a Diagnostic,
    source: Option<NamedSource<String>>,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.d, f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.d.file, self.d.primary_span()) {
            // The file is named in the snippet's header; without a snippet
            // (no span), name it in the message.
            (Some(file), None) => write!(f, "{}: {}", file, self.d.message),
            _ => f.write_str(&self.d.message),
        }
    }
}

impl std::error::Error for Shown<'_> {}

impl miette::Diagnostic for Shown<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("weir::{}", self.d.code)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.d
            .help
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.d.labels.is_empty() {
            return None;
        }
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.d.labels.is_empty() || self.source.is_none() {
            return None;
        }
        Some(Box::new(self.d.labels.iter().enumerate().map(|(i, l)| {
            let span = (l.span.offset, l.span.len.max(1));
            if i == 0 {
                LabeledSpan::new_primary_with_span(l.message.clone(), span)
            } else {
                LabeledSpan::new_with_span(l.message.clone(), span)
            }
        })))
    }
}
