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

    // 2. Read every file with the merged schema.
    let mut batches = Vec::new();
    for file in files {
        let input = open(file, options.compression).map_err(|m| read_error(file, m))?;
        let mut builder = ReaderBuilder::new(schema.clone())
            .with_header(options.header)
            .with_delimiter(options.delimiter)
            .with_quote(options.quote)
            .with_batch_size(BATCH_ROWS);
        if let Some(regex) = &options.null_regex {
            builder = builder.with_null_regex(regex.clone());
        }
        let reader = builder
            .build(input)
            .map_err(|e| read_error(file, e.to_string()))?;
        for batch in reader {
            if cancel.is_cancelled() {
                return Err(CsvError::Cancelled);
            }
            batches.push(batch.map_err(|e| read_error(file, e.to_string()))?);
        }
    }
    Ok((schema, batches))
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
