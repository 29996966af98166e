//! The CLI's printer: the only place that writes to stdout/stderr directly.

use std::io::{IsTerminal, Write};

/// Writes a line to stdout; a closed pipe (`weir runs | head`) is not an error.
pub fn line(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
}

/// Writes text to stdout as is.
pub fn text(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_ref().as_bytes());
    let _ = out.flush();
}

pub fn error(message: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {message}");
}

/// Reports an error with its causes and any `hint:`.
pub fn report_error(e: &anyhow::Error) {
    let mut err = std::io::stderr().lock();
    let mut shown = e.to_string();
    let _ = writeln!(err, "error: {shown}");
    for cause in e.chain().skip(1) {
        // Many errors embed their source's message; print each text once.
        let text = cause.to_string();
        if shown.contains(&text) {
            continue;
        }
        let _ = writeln!(err, "  caused by: {text}");
        shown.push_str(&text);
    }
}

/// Colours and live redrawing only for a terminal without `NO_COLOR`.
pub fn is_rich() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `1.234s`, `2m03s`, `1h02m`.
pub fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.2}s")
    } else if seconds < 3600.0 {
        let s = seconds as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let s = seconds as u64;
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// `12.3 MiB` from KiB.
pub fn memory(kib: u64) -> String {
    if kib < 1024 {
        format!("{kib} KiB")
    } else if kib < 1024 * 1024 {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    } else {
        format!("{:.2} GiB", kib as f64 / (1024.0 * 1024.0))
    }
}

/// A left-aligned text table with a header row.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    push_row(header.to_vec());
    for row in rows {
        push_row(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let t = table(
            &["ID", "STATE"],
            &[
                vec!["1".into(), "succeeded".into()],
                vec!["42".into(), "failed".into()],
            ],
        );
        assert_eq!(t, "ID  STATE\n1   succeeded\n42  failed\n");
    }

    #[test]
    fn durations_and_memory_are_human_sized() {
        assert_eq!(duration(1.234), "1.23s");
        assert_eq!(duration(123.0), "2m03s");
        assert_eq!(memory(2048), "2.0 MiB");
    }
}
