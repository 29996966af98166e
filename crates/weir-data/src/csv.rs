//! Reading CSV files for `load`, with arrow's CSV reader.
//!
//! DataFusion's `read_csv` is not used here, measured against its 55.2
//! source: its reader ignores `null_regex` (only schema inference applies
//! it, so `NA` in a number column fails the read), and it does not widen a
//! column that is `Int64` in one file and `Float64` in another. Both matter
//! for landing folders of CSV exports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::Format;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use regex::Regex;
use tokio_util::sync::CancellationToken;

/// Rows per file read to infer column types. A later value that does not
/// fit the inferred type fails the load with the value and line named.
pub(crate) const INFER_ROWS: usize = 10_000;

/// Rows per Arrow batch (DataFusion's default batch size).
const BATCH_ROWS: usize = 8192;

/// How to read every file of one `load` step.
#[derive(Debug, Clone)]
pub(crate) struct CsvOptions {
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
    /// The values that are null; `None`: empty fields are.
    pub null_regex: Option<Regex>,
    pub compression: FileCompressionType,
    /// Column types to read with instead of inferring them, by header name.
    pub types: HashMap<String, DataType>,
}

impl CsvOptions {
    /// A regex matching exactly one of `values`, or `None` for none.
    pub(crate) fn null_regex(values: &[String]) -> Result<Option<Regex>, regex::Error> {
        if values.is_empty() {
            return Ok(None);
        }
        let alternatives: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
        Regex::new(&format!("^(?:{})$", alternatives.join("|"))).map(Some)
    }

    fn format(&self) -> Format {
        let format = Format::default()
            .with_header(self.header)
            .with_delimiter(self.delimiter)
            .with_quote(self.quote);
        match &self.null_regex {
            Some(regex) => format.with_null_regex(regex.clone()),
            None => format,
        }
    }
}

/// Why reading CSV files failed; the message names the file.
#[derive(Debug)]
pub(crate) enum CsvError {
    /// `file` (as shown to the user) could not be read or parsed.
    Read {
        file: String,
        message: String,
    },
    /// `file` does not have the first file's columns.
    Columns {
        file: String,
        first: String,
        difference: String,
    },
    Cancelled,
}

/// Reads `files` (all with the same header) into one schema and its batches.
/// Blocking: call it from `spawn_blocking`.
pub(crate) fn read_csv_files(
    files: &[PathBuf],
    shown: &dyn Fn(&Path) -> String,
    options: &CsvOptions,
    cancel: &CancellationToken,
) -> Result<(SchemaRef, Vec<RecordBatch>), CsvError> {
    let read_error = |file: &Path, message: String| CsvError::Read {
        file: shown(file),
        message,
    };
    // 1. Infer each file's columns; the names must agree, types widen.
    let mut merged: Option<(Schema, &PathBuf)> = None;
    for file in files {
        let reader = open(file, options.compression).map_err(|m| read_error(file, m))?;
        let (schema, _) = options
            .format()
            .infer_schema(reader, Some(INFER_ROWS))
            .map_err(|e| read_error(file, e.to_string()))?;
        merged = Some(match merged {
            None => (schema, file),
            Some((first, first_file)) => match widen(&first, &schema) {
                Ok(schema) => (schema, first_file),
                Err(difference) => {
                    return Err(CsvError::Columns {
                        file: shown(file),
                        first: shown(first_file),
                        difference,
                    });
                }
            },
        });
        if cancel.is_cancelled() {
            return Err(CsvError::Cancelled);
        }
    }
    let Some((schema, _)) = merged else {
        return Ok((Arc::new(Schema::empty()), Vec::new()));
    };
    // A column with no value in any file has no type; text is the least
    // surprising one downstream.
    let schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match (options.types.get(f.name()), f.data_type()) {
                (Some(ty), _) => Field::new(f.name(), ty.clone(), true),
                (None, DataType::Null) => Field::new(f.name(), DataType::Utf8, true),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ));

    // 2. Read every file with the merged schema; a large uncompressed file
    // is parsed in pieces on several threads.
    let mut batches = Vec::new();
    for file in files {
        let pieces = match options.compression {
            FileCompressionType::UNCOMPRESSED => {
                split_points(file, options.quote).map_err(|m| read_error(file, m))?
            }
            _ => Vec::new(),
        };
        if pieces.len() < 2 {
            let input = open(file, options.compression).map_err(|m| read_error(file, m))?;
            read_piece(
                input,
                &schema,
                options,
                options.header,
                cancel,
                &mut batches,
            )
            .map_err(|e| e.shift_lines(1).map_message(|m| read_error(file, m)))?;
            continue;
        }
        let results: Vec<Result<Vec<RecordBatch>, PieceError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .iter()
                .enumerate()
                .map(|(i, piece)| {
                    let schema = &schema;
                    scope.spawn(move || {
                        let input =
                            open_range(file, piece.start, piece.end).map_err(PieceError::Read)?;
                        let mut out = Vec::new();
                        read_piece(
                            input,
                            schema,
                            options,
                            options.header && i == 0,
                            cancel,
                            &mut out,
                        )
                        .map_err(|e| e.shift_lines(piece.lines_before + 1))?;
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(PieceError::Read("a CSV reader thread panicked".to_owned()))
                    })
                })
                .collect()
        });
        for result in results {
            batches.extend(result.map_err(|e| e.map_message(|m| read_error(file, m)))?);
        }
    }
    Ok((schema, batches))
}

/// Files smaller than this are parsed on one thread: splitting costs a scan.
const SPLIT_BYTES: u64 = 16 << 20;

/// A byte range of a CSV file that starts at a record boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    start: u64,
    end: u64,
    /// Lines of the file before `start`, to report errors at file lines.
    lines_before: u64,
}

/// Where to cut `file` into one piece per core, each cut just after a line
/// end that is outside quotes (a quoted field may hold line breaks; with
/// quotes doubled inside fields, a line end is outside quotes exactly when
/// the number of quote characters before it is even). One scan of the file
/// with memchr; empty when the file is too small to be worth it.
fn split_points(file: &Path, quote: u8) -> Result<Vec<Piece>, String> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    split_points_at(file, quote, SPLIT_BYTES, threads)
}

fn split_points_at(
    file: &Path,
    quote: u8,
    min_bytes: u64,
    threads: u64,
) -> Result<Vec<Piece>, String> {
    use std::io::Read as _;

    let len = fs_err::metadata(file).map_err(|e| e.to_string())?.len();
    if len < min_bytes || threads < 2 {
        return Ok(Vec::new());
    }
    let targets: Vec<u64> = (1..threads).map(|i| len * i / threads).collect();
    let mut cuts: Vec<(u64, u64)> = Vec::new(); // (offset, lines before it)
    let mut reader = std::io::BufReader::with_capacity(
        1 << 20,
        fs_err::File::open(file).map_err(|e| e.to_string())?,
    );
    let mut buf = vec![0u8; 1 << 20];
    let (mut offset, mut quotes, mut lines) = (0u64, 0u64, 0u64);
    let mut next = 0;
    loop {
        let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 || next == targets.len() {
            break;
        }
        for pos in memchr::memchr2_iter(b'\n', quote, &buf[..n]) {
            if buf[pos] == quote {
                quotes += 1;
                continue;
            }
            lines += 1;
            let at = offset + pos as u64 + 1;
            if next < targets.len() && at >= targets[next] && quotes % 2 == 0 {
                cuts.push((at, lines));
                next += 1;
            }
        }
        offset += n as u64;
    }
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = (0u64, 0u64);
    for cut in cuts.into_iter().chain(std::iter::once((len, 0))) {
        if cut.0 > start.0 {
            pieces.push(Piece {
                start: start.0,
                end: cut.0,
                lines_before: start.1,
            });
        }
        start = cut;
    }
    Ok(pieces)
}

fn open_range(file: &Path, start: u64, end: u64) -> Result<Box<dyn std::io::Read + Send>, String> {
    use std::io::{Read as _, Seek as _};

    let mut f = fs_err::File::open(file).map_err(|e| e.to_string())?;
    f.seek(std::io::SeekFrom::Start(start))
        .map_err(|e| e.to_string())?;
    Ok(Box::new(std::io::BufReader::with_capacity(
        1 << 20,
        f.take(end - start),
    )))
}

/// Why reading one piece failed.
enum PieceError {
    Read(String),
    Cancelled,
}

impl PieceError {
    fn map_message(self, to_error: impl FnOnce(String) -> CsvError) -> CsvError {
        match self {
            PieceError::Read(m) => to_error(m),
            PieceError::Cancelled => CsvError::Cancelled,
        }
    }

    /// Arrow numbers lines from 0 at the start of what it read; a file's
    /// lines are numbered from 1, and a piece starts `lines - 1` lines in.
    /// (Arrow counts records: with quoted line breaks before the error, the
    /// number is a record's, not a line's.)
    fn shift_lines(self, lines: u64) -> PieceError {
        match self {
            PieceError::Read(m) if lines > 0 => PieceError::Read(shift_line_numbers(&m, lines)),
            other => other,
        }
    }
}

fn shift_line_numbers(message: &str, lines: u64) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        let (before, after) = rest.split_at(at + "line ".len());
        out.push_str(before);
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<u64>() {
            out.push_str(&(n + lines).to_string());
        }
        rest = &after[digits.len()..];
    }
    out.push_str(rest);
    out
}

/// Parses one stream of CSV records into `out`.
fn read_piece(
    input: Box<dyn std::io::Read + Send>,
    schema: &SchemaRef,
    options: &CsvOptions,
    header: bool,
    cancel: &CancellationToken,
    out: &mut Vec<RecordBatch>,
) -> Result<(), PieceError> {
    let mut builder = ReaderBuilder::new(schema.clone())
        .with_header(header)
        .with_delimiter(options.delimiter)
        .with_quote(options.quote)
        .with_batch_size(BATCH_ROWS);
    if let Some(regex) = &options.null_regex {
        builder = builder.with_null_regex(regex.clone());
    }
    let reader = builder
        .build(input)
        .map_err(|e| PieceError::Read(e.to_string()))?;
    for batch in reader {
        if cancel.is_cancelled() {
            return Err(PieceError::Cancelled);
        }
        out.push(batch.map_err(|e| PieceError::Read(e.to_string()))?);
    }
    Ok(())
}

fn open(
    file: &Path,
    compression: FileCompressionType,
) -> Result<Box<dyn std::io::Read + Send>, String> {
    let f = fs_err::File::open(file).map_err(|e| e.to_string())?;
    compression
        .convert_read(std::io::BufReader::new(f))
        .map_err(|e| e.strip_backtrace())
}

/// `first` with each column's type widened to also hold `next`'s, or how
/// their columns differ.
fn widen(first: &Schema, next: &Schema) -> Result<Schema, String> {
    if let Some(difference) = crate::schema::column_names_differ(first, next) {
        return Err(difference);
    }
    let fields: Vec<Field> = first
        .fields()
        .iter()
        .zip(next.fields())
        .map(|(a, b)| Field::new(a.name(), widen_type(a.data_type(), b.data_type()), true))
        .collect();
    Ok(Schema::new(fields))
}

/// The narrowest type holding values of both inferred types, following
/// arrow's own inference within one file.
fn widen_type(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    fn temporal_rank(t: &DataType) -> Option<u8> {
        match t {
            Date32 => Some(0),
            Timestamp(TimeUnit::Second, None) => Some(1),
            Timestamp(TimeUnit::Millisecond, None) => Some(2),
            Timestamp(TimeUnit::Microsecond, None) => Some(3),
            Timestamp(TimeUnit::Nanosecond, None) => Some(4),
            _ => None,
        }
    }
    match (a, b) {
        _ if a == b => a.clone(),
        (Null, other) | (other, Null) => other.clone(),
        (Int64, Float64) | (Float64, Int64) => Float64,
        _ => match (temporal_rank(a), temporal_rank(b)) {
            (Some(x), Some(y)) => {
                if x >= y {
                    a.clone()
                } else {
                    b.clone()
                }
            }
            _ => Utf8,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_widen_like_arrow_inference() {
        use DataType::*;
        let ts = |u| Timestamp(u, None);
        assert_eq!(widen_type(&Int64, &Float64), Float64);
        assert_eq!(widen_type(&Null, &Int64), Int64);
        assert_eq!(widen_type(&Boolean, &Null), Boolean);
        assert_eq!(widen_type(&Int64, &Boolean), Utf8);
        assert_eq!(
            widen_type(&Date32, &ts(TimeUnit::Second)),
            ts(TimeUnit::Second)
        );
        assert_eq!(
            widen_type(&ts(TimeUnit::Nanosecond), &ts(TimeUnit::Millisecond)),
            ts(TimeUnit::Nanosecond)
        );
        assert_eq!(widen_type(&Date32, &Int64), Utf8);
        assert_eq!(widen_type(&Utf8, &Utf8), Utf8);
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn options() -> CsvOptions {
        CsvOptions {
            header: true,
            delimiter: b',',
            quote: b'"',
            null_regex: None,
            compression: FileCompressionType::UNCOMPRESSED,
            types: HashMap::new(),
        }
    }

    #[test]
    fn cuts_fall_on_line_ends_outside_quotes() {
        let dir = tempfile::tempdir().unwrap();
        // Quoted fields with line breaks (and doubled quotes) all over.
        let mut text = String::from("id,note\n");
        for i in 0..2000 {
            text.push_str(&format!("{i},\"line one\nline \"\"two\"\"\n{i}\"\n"));
        }
        let path = write(dir.path(), "q.csv", &text);
        for threads in [2, 3, 7] {
            let pieces = split_points_at(&path, b'"', 0, threads).unwrap();
            assert_eq!(pieces.len() as u64, threads, "{pieces:?}");
            assert_eq!(pieces[0].start, 0);
            assert_eq!(pieces.last().unwrap().end, text.len() as u64);
            for pair in pieces.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "contiguous");
                let before = &text[..pair[1].start as usize];
                assert!(before.ends_with('\n'));
                assert_eq!(before.matches('"').count() % 2, 0, "cut inside quotes");
                assert_eq!(pair[1].lines_before, before.matches('\n').count() as u64);
            }
        }
        assert!(
            split_points_at(&path, b'"', u64::MAX, 2)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_split_file_reads_like_a_whole_one_and_errors_name_file_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("id,name,amount\n");
        for i in 0..(SPLIT_BYTES / 20 + 1000) {
            text.push_str(&format!("{i},\"n,{i}\",{}.5\n", i % 100));
        }
        assert!(text.len() as u64 > SPLIT_BYTES);
        let path = write(dir.path(), "big.csv", &text);
        let shown = |p: &Path| p.display().to_string();
        let cancel = CancellationToken::new();
        let (schema, batches) =
            read_csv_files(std::slice::from_ref(&path), &shown, &options(), &cancel).unwrap();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows as u64, SPLIT_BYTES / 20 + 1000);
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        // Rows come back in file order across the pieces.
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                    .unwrap();
                a.values().to_vec()
            })
            .collect();
        assert!(ids.iter().enumerate().all(|(i, id)| *id == i as i64));

        // A bad value far into the file: its line is the file's line.
        let bad_line = text.lines().count() - 10; // 1-based line number
        let mut lines: Vec<&str> = text.lines().collect();
        let replaced = lines[bad_line - 1].replacen(".5", "x", 1);
        lines[bad_line - 1] = &replaced;
        let path = write(dir.path(), "bad.csv", &(lines.join("\n") + "\n"));
        let err = match read_csv_files(&[path], &shown, &options(), &cancel) {
            Err(CsvError::Read { message, .. }) => message,
            other => panic!("expected a read error, got {:?}", other.map(|(s, _)| s)),
        };
        assert!(err.contains(&format!("line {bad_line}")), "{err}");
    }

    #[test]
    fn line_numbers_shift() {
        assert_eq!(
            shift_line_numbers("bad value at line 3. Row data: x", 10),
            "bad value at line 13. Row data: x"
        );
        assert_eq!(shift_line_numbers("no numbers", 10), "no numbers");
    }

    #[test]
    fn null_values_match_whole_fields_literally() {
        let regex = CsvOptions::null_regex(&["N/A".to_owned(), "".to_owned(), "(x)".to_owned()])
            .unwrap()
            .unwrap();
        for null in ["N/A", "", "(x)"] {
            assert!(regex.is_match(null), "{null}");
        }
        for value in ["N/A ", "NA", "x", "N"] {
            assert!(!regex.is_match(value), "{value}");
        }
        assert!(CsvOptions::null_regex(&[]).unwrap().is_none());
    }
}
