//! The `load` step kind: CSV, JSON and Parquet files, local or over
//! `http(s)://`, into a dataset.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::prelude::{
    DataFrame, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weir_exec::{Action, ActionError, LogStream, TaskContext, TaskOutput};
use weir_types::{Diagnostic, Metering};

use crate::csv::{CsvError, CsvOptions, INFER_ROWS, read_csv_files};
use crate::dataset::canonical_type;
use crate::fetch;
use crate::output::finish_output;
use crate::task::{conform, failed, guarded, project_dir, remote_scheme, task_runtime};

/// Loads local files, or one file over HTTP(S), into the step's dataset.
///
/// ```yaml
/// load: { path: data/orders.csv }
/// load: { path: "landing/2026-*/orders_*.csv.gz", delimiter: ";", null_values: ["", "NA"] }
/// load: { path: "https://example.com/exports/orders_{{ params.day }}.csv.gz" }
/// ```
///
/// Every file a glob matches becomes part of one dataset: they must have the
/// same columns (CSV: same header names in the same order; Parquet: same
/// names and types). CSV column types are inferred from the data (up to
/// 10,000 rows per file) and widened across files (`Int64` and `Float64` give
/// `Float64`, anything else that differs gives `Utf8`); NDJSON files are
/// merged by key, a key missing from a line is null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// A file or a glob (`data/*.csv`, `landing/**/*.parquet`; `*` does not
    /// cross `/`, `**` does). Relative paths are relative to the project
    /// directory.
    ///
    /// Or an `http://` or `https://` URL of one file (no globs): it is
    /// downloaded into the task's working directory under the URL's file
    /// name, from which the format is read as for a local file (a query
    /// string is ignored there; set `format:` when the name has no
    /// extension). Credentials go in the URL (`https://user:password@host/...`,
    /// sent as HTTP basic authentication) or its query string, e.g. from
    /// `{{ secrets.name }}`; messages and logs never show them. Connecting
    /// may take 10 s; the download as a whole is bounded by the step's
    /// `timeout:`, a server silent for 5 minutes fails it, and a failed
    /// download is tried again only by the step's `retries:`.
    ///
    /// Other remote stores (`s3://`, `gs://`, ...) are not supported yet.
    pub path: String,
    /// The files' format. Default: from the extension (`.csv`, `.tsv`,
    /// `.json`, `.jsonl`, `.ndjson`, `.parquet`), after an optional
    /// compression suffix (`.gz`, `.bz2`, `.xz`, `.zst`). `json` reads a
    /// file that starts with `[` as one JSON array of objects and anything
    /// else as NDJSON (one object per line; compressed `.json` files are
    /// always read as NDJSON); `ndjson` is always one object per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LoadFormat>,
    /// CSV only: the field separator, one ASCII character. Default `,`
    /// (a tab for `.tsv` files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// CSV only: whether the first line names the columns. Without a header
    /// the columns are named `column_1`, `column_2`, ...
    #[serde(default = "default_header")]
    pub header: bool,
    /// CSV only: the field values that mean null, e.g. `["", "NA", "N/A"]`.
    /// Default: an empty field is null. When set, only these values are
    /// null (list `""` too to keep empty fields null).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub null_values: Vec<String>,
    /// CSV only: the quote character, one ASCII character. Default `"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<char>,
    /// New names for columns: `{ cust_id: customer_id }`. Applied before
    /// `cast`, `anonymize`, the contract and checks, which use the new names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
    /// Column types to convert to, e.g. `{ zip: string, amount: decimal(12, 2) }`.
    /// A value that does not convert fails the load, naming it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cast: BTreeMap<String, weir_spec::ColumnType>,
}

fn default_header() -> bool {
    true
}

/// A file format `load` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadFormat {
    /// Comma-separated values (see `delimiter`, `header`, `quote`, `null_values`).
    Csv,
    /// A JSON array of objects, or NDJSON (decided by the first character).
    Json,
    /// Newline-delimited JSON: one object per line.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

impl LoadFormat {
    fn name(self) -> &'static str {
        match self {
            LoadFormat::Csv => "csv",
            LoadFormat::Json => "json",
            LoadFormat::Ndjson => "ndjson",
            LoadFormat::Parquet => "parquet",
        }
    }
}

const FORMATS_HELP: &str = "set `format:` to one of `csv`, `json`, `ndjson`, `parquet`, or use a \
    file extension `.csv`, `.tsv`, `.json`, `.jsonl`, `.ndjson` or `.parquet` (optionally followed \
    by `.gz`, `.bz2`, `.xz` or `.zst`)";

/// `load: { path: ... }`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadAction;

#[async_trait]
impl Action for LoadAction {
    const KIND: &'static str = "load";
    const PRODUCES_DATASET: bool = true;
    type Spec = LoadSpec;

    fn check(&self, spec: &LoadSpec) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if spec.path.trim().is_empty() {
            out.push(
                Diagnostic::error("empty-path", "the `load` path is empty")
                    .with_help("write the file to load, e.g. `load: { path: data/orders.csv }`"),
            );
            return out;
        }
        let is_url = fetch::is_http(&spec.path);
        if is_url {
            if fetch::has_glob(&spec.path) {
                out.push(url_glob(&spec.path));
                return out;
            }
        } else if let Some(scheme) = remote_scheme(&spec.path) {
            out.push(unsupported_path(&spec.path, scheme));
            return out;
        }
        // A URL's file name is the end of its path, before any `?query`.
        let named = if is_url {
            fetch::url_path(&spec.path)
        } else {
            &spec.path
        };
        // A templated file name (`orders_{{ run.logical_date }}.csv`) is only
        // known when the step runs.
        let templated_name = file_name(named).contains("{{");
        let format = match spec.format {
            Some(format) => Some(format),
            None => match detect(named) {
                Some(detected) => Some(detected.format),
                None if templated_name => None,
                None => {
                    out.push(
                        Diagnostic::error(
                            "unknown-format",
                            format!(
                                "cannot tell the format of `{}` from its extension",
                                if is_url {
                                    fetch::redact(&spec.path)
                                } else {
                                    spec.path.clone()
                                }
                            ),
                        )
                        .with_help(FORMATS_HELP),
                    );
                    None
                }
            },
        };
        out.extend(check_csv_options(spec, format));
        out
    }

    async fn run(&self, spec: LoadSpec, cx: TaskContext) -> Result<TaskOutput, ActionError> {
        guarded(&cx, load(spec, &cx)).await
    }
}

fn check_csv_options(spec: &LoadSpec, format: Option<LoadFormat>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let invalid = |message: String, help: &str| {
        Diagnostic::error("invalid-csv-option", message).with_help(help.to_owned())
    };
    let mut given = Vec::new();
    for (name, value) in [("delimiter", spec.delimiter), ("quote", spec.quote)] {
        if let Some(c) = value {
            given.push(name);
            if !c.is_ascii() {
                out.push(invalid(
                    format!("`{name}` is `{c}`, which is not an ASCII character"),
                    "CSV delimiters and quotes are single ASCII characters such as `,`, `;`, `|`, `\"`",
                ));
            }
        }
    }
    if spec.delimiter.is_some() && spec.delimiter == spec.quote {
        out.push(invalid(
            "`delimiter` and `quote` are the same character".to_owned(),
            "use different characters, e.g. `delimiter: \";\"` and `quote: \"'\"`",
        ));
    }
    if !spec.header {
        given.push("header");
    }
    if !spec.null_values.is_empty() {
        given.push("null_values");
    }
    if let Some(format) = format
        && format != LoadFormat::Csv
        && !given.is_empty()
    {
        out.push(invalid(
            format!(
                "{} only apply to CSV files, and this step loads {}",
                given
                    .iter()
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                format.name()
            ),
            "remove them, or set `format: csv` if the files are CSV",
        ));
    }
    out
}

/// A file's format and compression as read from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Detected {
    format: LoadFormat,
    compression: FileCompressionType,
    tab_separated: bool,
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The format and compression of a file (or glob) from its extension.
fn detect(path: &str) -> Option<Detected> {
    let name = file_name(path).to_ascii_lowercase();
    let (stem, compression) = split_compression(&name);
    let (_, extension) = stem.rsplit_once('.')?;
    let (format, tab_separated) = match extension {
        "csv" => (LoadFormat::Csv, false),
        "tsv" | "tab" => (LoadFormat::Csv, true),
        "json" => (LoadFormat::Json, false),
        "jsonl" | "ndjson" => (LoadFormat::Ndjson, false),
        // Parquet compresses inside the file.
        "parquet" | "pq" if compression == FileCompressionType::UNCOMPRESSED => {
            (LoadFormat::Parquet, false)
        }
        _ => return None,
    };
    Some(Detected {
        format,
        compression,
        tab_separated,
    })
}

fn split_compression(name: &str) -> (&str, FileCompressionType) {
    for (suffix, compression) in [
        (".gz", FileCompressionType::GZIP),
        (".bz2", FileCompressionType::BZIP2),
        (".xz", FileCompressionType::XZ),
        (".zst", FileCompressionType::ZSTD),
    ] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return (stem, compression);
        }
    }
    (name, FileCompressionType::UNCOMPRESSED)
}

fn unsupported_path(path: &str, scheme: &str) -> Diagnostic {
    Diagnostic::error(
        "unsupported-path",
        format!(
            "loading from `{scheme}://` paths (`{}`) is not supported yet",
            fetch::redact(path)
        ),
    )
    .with_help(
        "`http://` and `https://` URLs load directly; for other stores, download the file into the project first (e.g. with a `shell` step) and load it by its local path",
    )
}

fn url_glob(path: &str) -> Diagnostic {
    Diagnostic::error(
        "unsupported-path",
        format!(
            "`{}` is a glob, and globs are only for local paths",
            fetch::redact(path)
        ),
    )
    .with_help(
        "a URL names one file: load each file in its own step (write a `*` that is part of the URL as `%2A`)",
    )
}

/// A check diagnostic found only when the step runs (the path was templated).
fn diagnostic_failure(d: Diagnostic) -> ActionError {
    failed(format!(
        "{}\nhint: {}",
        d.message,
        d.help.unwrap_or_default()
    ))
}

/// Where the files come from, to name them in messages.
#[derive(Debug, Clone)]
enum Origin {
    /// Local files, named relative to this project directory.
    Local(PathBuf),
    /// One downloaded file, named by its URL (redacted).
    Url(String),
}

impl Origin {
    fn show(&self, file: &Path) -> String {
        match self {
            Origin::Local(base) => shown(base, file),
            Origin::Url(url) => url.clone(),
        }
    }
}

async fn load(spec: LoadSpec, cx: &TaskContext) -> Result<TaskOutput, ActionError> {
    if spec.path.trim().is_empty() {
        return Err(failed(
            "the `load` path is empty\nhint: write the file to load, e.g. `load: { path: data/orders.csv }`",
        ));
    }
    let (files, origin) = if fetch::is_http(&spec.path) {
        if fetch::has_glob(&spec.path) {
            return Err(diagnostic_failure(url_glob(&spec.path)));
        }
        // Known before downloading: the name comes from the URL.
        if spec.format.is_none() && detect(fetch::url_path(&spec.path)).is_none() {
            return Err(failed(format!(
                "cannot tell the format of `{}` from its extension\nhint: {FORMATS_HELP}",
                fetch::redact(&spec.path)
            )));
        }
        let file = fetch::download(&spec.path, &cx.work_dir, cx).await?;
        (vec![file], Origin::Url(fetch::redact(&spec.path)))
    } else if let Some(scheme) = remote_scheme(&spec.path) {
        return Err(diagnostic_failure(unsupported_path(&spec.path, scheme)));
    } else {
        let base = project_dir(cx)?;
        let files = matching_files(&spec.path, &base)?;
        (files, Origin::Local(base))
    };
    let shown = |file: &Path| origin.show(file);

    // One format for all files.
    let mut detected: Option<(Detected, &PathBuf)> = None;
    for file in &files {
        let this = match (spec.format, detect(&file.to_string_lossy())) {
            (Some(format), found) => Detected {
                format,
                compression: found.map_or(FileCompressionType::UNCOMPRESSED, |d| d.compression),
                tab_separated: found.is_some_and(|d| d.tab_separated),
            },
            (None, Some(found)) => found,
            (None, None) => {
                return Err(failed(format!(
                    "cannot tell the format of `{}` from its extension\nhint: {FORMATS_HELP}",
                    shown(file)
                )));
            }
        };
        match &detected {
            None => detected = Some((this, file)),
            Some((first, first_file)) if *first != this => {
                return Err(failed(format!(
                    "`{}` and `{}` are different kinds of file ({} and {})\nhint: load each kind in its own step, or narrow the glob",
                    shown(first_file),
                    shown(file),
                    describe(first),
                    describe(&this),
                )));
            }
            Some(_) => {}
        }
    }
    let Some((detected, _)) = detected else {
        return Err(crate::Error::Internal("no files after matching".to_owned()).into());
    };

    let (schema, batches) = match detected.format {
        LoadFormat::Csv => read_csv(&spec, detected, files.clone(), origin.clone(), cx).await?,
        LoadFormat::Json | LoadFormat::Ndjson | LoadFormat::Parquet => {
            read_with_datafusion(&spec, detected, &files, &origin, cx).await?
        }
    };
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    cx.log.line(
        LogStream::System,
        &format!(
            "read {rows} rows from {} file{}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
        ),
    );
    let (schema, batches) = sample(schema, batches, cx);
    let (schema, batches) = reshape(&spec, schema, batches)?;
    finish_output(cx, schema, batches).await
}

/// Types CSV columns are read as instead of inferred, by header name: text
/// for the columns of `cast:` and of the step's contract (inference would
/// turn `00123` into 123 before either could say `string`); their types are
/// applied after reading.
fn read_types(spec: &LoadSpec, cx: &TaskContext) -> HashMap<String, DataType> {
    let header_name = |name: &str| {
        spec.rename
            .iter()
            .find(|(_, new)| *new == name)
            .map_or_else(|| name.to_owned(), |(old, _)| old.clone())
    };
    let mut types = HashMap::new();
    if let Some(contract) = &cx.data.contract {
        for column in &contract.columns {
            types.insert(header_name(&column.name), DataType::Utf8);
        }
    }
    // Converted after reading, so a value that does not convert is
    // reported with its column's name.
    for column in spec.cast.keys() {
        types.insert(header_name(column), DataType::Utf8);
    }
    types
}

/// The first `sample` rows when the environment samples (deterministic:
/// the same files give the same sample).
fn sample(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    cx: &TaskContext,
) -> (SchemaRef, Vec<RecordBatch>) {
    let Some(limit) = cx.environment.sample else {
        return (schema, batches);
    };
    let mut left = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        left -= take;
        out.push(batch.slice(0, take));
    }
    let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
    cx.log.line(
        LogStream::System,
        &format!(
            "sampling: kept the first {rows} rows (`sample: {limit}` in environment `{}`)",
            cx.environment.name
        ),
    );
    (schema, out)
}

/// `rename:` then `cast:`.
fn reshape(
    spec: &LoadSpec,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>), ActionError> {
    if spec.rename.is_empty() && spec.cast.is_empty() {
        return Ok((schema, batches));
    }
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for old in spec.rename.keys() {
        if !names.contains(old) {
            return Err(failed(format!(
                "`rename` names column `{old}`, which the files do not have\nhint: columns are {}",
                list(&names)
            )));
        }
    }
    let renamed: Vec<String> = names
        .iter()
        .map(|n| spec.rename.get(n).cloned().unwrap_or_else(|| n.clone()))
        .collect();
    for (i, name) in renamed.iter().enumerate() {
        if renamed[..i].contains(name) {
            return Err(failed(format!(
                "after `rename`, two columns are named `{name}`\nhint: rename one of them to another name"
            )));
        }
    }
    for column in spec.cast.keys() {
        if !renamed.contains(column) {
            return Err(failed(format!(
                "`cast` names column `{column}`, which the data does not have (after `rename`)\nhint: columns are {}",
                list(&renamed)
            )));
        }
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut fields = Vec::with_capacity(renamed.len());
    for (field, name) in schema.fields().iter().zip(&renamed) {
        let ty = match spec.cast.get(name) {
            Some(ty) => crate::quality::arrow_type(*ty),
            None => field.data_type().clone(),
        };
        fields.push(Field::new(name, ty, true));
    }
    let out_schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut out = Vec::with_capacity(batches.len());
    for batch in &batches {
        let mut columns = Vec::with_capacity(renamed.len());
        for (i, field) in out_schema.fields().iter().enumerate() {
            let array = batch.column(i);
            if array.data_type() == field.data_type() {
                columns.push(array.clone());
                continue;
            }
            let cast = cast_with_options(array, field.data_type(), &options).map_err(|e| {
                failed(format!(
                    "cannot cast column `{}` from {} to {}: {e}\nhint: fix the value in the file, or leave the column out of `cast:`",
                    field.name(),
                    array.data_type(),
                    field.data_type()
                ))
            })?;
            columns.push(cast);
        }
        out.push(RecordBatch::try_new(out_schema.clone(), columns).map_err(crate::Error::from)?);
    }
    Ok((out_schema, out))
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn read_csv(
    spec: &LoadSpec,
    detected: Detected,
    files: Vec<PathBuf>,
    origin: Origin,
    cx: &TaskContext,
) -> Result<(SchemaRef, Vec<RecordBatch>), ActionError> {
    let default_delimiter = if detected.tab_separated { '\t' } else { ',' };
    let options = CsvOptions {
        header: spec.header,
        delimiter: ascii(spec.delimiter.unwrap_or(default_delimiter), "delimiter")?,
        quote: ascii(spec.quote.unwrap_or('"'), "quote")?,
        null_regex: CsvOptions::null_regex(&spec.null_values)
            .map_err(|e| failed(format!("`null_values` cannot be matched: {e}")))?,
        compression: detected.compression,
        types: read_types(spec, cx),
    };
    // Parsing is CPU work: keep it off the async workers. The reader stops
    // at its next batch when the run is cancelled or this future is dropped
    // (the task's timeout), through the guard.
    let cancel = cx.cancel.child_token();
    let _stop_reader = cancel.clone().drop_guard();
    let result = tokio::task::spawn_blocking(move || {
        read_csv_files(&files, &|file| origin.show(file), &options, &cancel)
    })
    .await
    .map_err(|e| crate::Error::Internal(format!("the CSV reader stopped: {e}")))?;
    match result {
        Ok(read) => Ok(read),
        Err(CsvError::Read { file, message }) => {
            // Arrow appends the whole raw row, which may hold values that
            // `anonymize:` exists to keep out of logs.
            let message = match message.find(". Row data:") {
                Some(at) => message[..at].to_owned(),
                None => message,
            };
            let hint = if message.contains("Error while parsing value") {
                format!(
                    "\nhint: column types are inferred from the first {INFER_ROWS} rows of each file; a later value of another type fails the load"
                )
            } else {
                String::new()
            };
            Err(failed(format!("could not read `{file}`: {message}{hint}")))
        }
        Err(CsvError::Columns {
            file,
            first,
            difference,
        }) => Err(failed(format!(
            "`{file}` does not have the columns of `{first}`: {difference}\nhint: every file a glob matches must have the same columns in the same order; fix the file, or load it in its own step"
        ))),
        Err(CsvError::Cancelled) => Err(ActionError::Cancelled {
            metering: Metering::default(),
        }),
    }
}

async fn read_with_datafusion(
    spec: &LoadSpec,
    detected: Detected,
    files: &[PathBuf],
    origin: &Origin,
    cx: &TaskContext,
) -> Result<(SchemaRef, Vec<RecordBatch>), ActionError> {
    let runtime = task_runtime(&cx.work_dir)?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    let reader = Reader {
        ctx: &ctx,
        detected,
    };
    if files.len() > 1 && detected.format == LoadFormat::Parquet {
        reader.check_same_columns(files, origin).await?;
    }
    let what = match files {
        [one] => format!("`{}`", origin.show(one)),
        _ => format!("the {} files matching `{}`", files.len(), spec.path),
    };
    let df = reader
        .read(files)
        .await
        .map_err(|e| failed(format!("could not read {what}: {}", e.strip_backtrace())))?;
    let schema = plain_schema(df.schema().as_arrow());
    let batches = df
        .collect()
        .await
        .map_err(|e| failed(format!("could not read {what}: {}", e.strip_backtrace())))?;
    Ok((schema.clone(), conform(&schema, batches)?))
}

fn describe(d: &Detected) -> String {
    let compression = match d.compression {
        FileCompressionType::GZIP => " (gzip)",
        FileCompressionType::BZIP2 => " (bzip2)",
        FileCompressionType::XZ => " (xz)",
        FileCompressionType::ZSTD => " (zstd)",
        _ => "",
    };
    format!("{}{compression}", d.format.name())
}

/// The schema without metadata (a Parquet file's key-value metadata is not
/// part of the dataset).
fn plain_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>(),
    ))
}

/// `schema` in the types a dataset stores (for comparing files).
fn canonical_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), canonical_type(f.data_type()), f.is_nullable()))
            .collect::<Vec<_>>(),
    ))
}

/// `file` as the user wrote it: relative to the project when it is inside.
fn shown(base: &Path, file: &Path) -> String {
    file.strip_prefix(base)
        .unwrap_or(file)
        .display()
        .to_string()
}

/// The files `path` names: one file, or every file a glob matches, sorted.
fn matching_files(path: &str, base: &Path) -> Result<Vec<PathBuf>, ActionError> {
    let path = path.strip_prefix("file://").unwrap_or(path);
    let absolute = Path::new(path).is_absolute();
    let none = || {
        let place = if absolute {
            String::new()
        } else {
            format!(" in `{}`", base.display())
        };
        failed(format!(
            "no file matches `{path}`{place}\nhint: relative paths start at the project directory; check the name and, for a glob, that `*` does not cross `/` (use `**` for subfolders)"
        ))
    };
    let is_glob = path.contains(['*', '?', '[']);
    if !is_glob {
        let file = if absolute {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        if file.is_dir() {
            return Err(failed(format!(
                "`{path}` is a directory\nhint: load the files in it with a glob, e.g. `{}/*.csv`",
                path.trim_end_matches('/')
            )));
        }
        if !file.is_file() {
            return Err(none());
        }
        return Ok(vec![file]);
    }
    let pattern = if absolute {
        path.to_owned()
    } else {
        // The project directory is a literal prefix, even if it contains `[`.
        format!(
            "{}/{path}",
            glob::Pattern::escape(&base.to_string_lossy()).trim_end_matches('/')
        )
    };
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = glob::glob_with(&pattern, options)
        .map_err(|e| failed(format!("`{path}` is not a valid glob: {e}")))?;
    let mut files = Vec::new();
    for entry in paths {
        let entry = entry.map_err(|e| failed(format!("while matching `{path}`: {e}")))?;
        if entry.is_file() {
            files.push(entry);
        }
    }
    if files.is_empty() {
        return Err(none());
    }
    files.sort();
    Ok(files)
}

/// Reads JSON and Parquet files with DataFusion.
struct Reader<'a> {
    ctx: &'a SessionContext,
    detected: Detected,
}

impl Reader<'_> {
    /// One DataFrame over `files` (DataFusion infers and widens the schema
    /// across them).
    async fn read(&self, files: &[PathBuf]) -> datafusion::error::Result<DataFrame> {
        let paths: Vec<String> = files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        let compression = self.detected.compression;
        match self.detected.format {
            LoadFormat::Json | LoadFormat::Ndjson => {
                let array = self.detected.format == LoadFormat::Json
                    && compression == FileCompressionType::UNCOMPRESSED
                    && starts_with_bracket(files)?;
                let options = JsonReadOptions::default()
                    .file_extension("")
                    .file_compression_type(compression)
                    .newline_delimited(!array);
                self.ctx.read_json(paths, options).await
            }
            LoadFormat::Parquet => {
                let options = ParquetReadOptions::new().file_extension("");
                self.ctx.read_parquet(paths, options).await
            }
            LoadFormat::Csv => Err(datafusion::error::DataFusionError::Internal(
                "CSV files are read by `crate::csv`".to_owned(),
            )),
        }
    }

    /// Every file has the first one's columns (names and types), or the
    /// error names the one that differs.
    async fn check_same_columns(
        &self,
        files: &[PathBuf],
        origin: &Origin,
    ) -> Result<(), ActionError> {
        let shown = |file: &Path| origin.show(file);
        let mut first: Option<(SchemaRef, &PathBuf)> = None;
        for file in files {
            let df = self.read(std::slice::from_ref(file)).await.map_err(|e| {
                failed(format!(
                    "could not read `{}`: {}",
                    shown(file),
                    e.strip_backtrace()
                ))
            })?;
            let schema = canonical_schema(df.schema().as_arrow());
            let Some((expected, first_file)) = &first else {
                first = Some((schema, file));
                continue;
            };
            if let Some(difference) = difference(expected, &schema) {
                return Err(failed(format!(
                    "`{}` does not have the columns of `{}`: {difference}\nhint: every file a glob matches must have the same columns with the same types; fix the file, or load it in its own step",
                    shown(file),
                    shown(first_file),
                )));
            }
        }
        Ok(())
    }
}

/// How `actual` differs from `expected`, or `None`.
fn difference(expected: &Schema, actual: &Schema) -> Option<String> {
    if let Some(difference) = crate::schema::column_names_differ(expected, actual) {
        return Some(difference);
    }
    for (e, a) in expected.fields().iter().zip(actual.fields()) {
        if e.data_type() != a.data_type() {
            return Some(format!(
                "column `{}` is `{}` instead of `{}`",
                a.name(),
                a.data_type(),
                e.data_type()
            ));
        }
    }
    None
}

fn ascii(c: char, option: &str) -> Result<u8, ActionError> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| failed(format!("`{option}` must be one ASCII character, not `{c}`")))
}

/// Whether the (first) JSON file is an array: its first non-blank byte is `[`.
/// All files must agree, so the first decides and the others are checked.
fn starts_with_bracket(files: &[PathBuf]) -> datafusion::error::Result<bool> {
    let mut verdict = None;
    for file in files {
        let this = first_non_blank(file)? == Some(b'[');
        match verdict {
            None => verdict = Some(this),
            Some(v) if v != this => {
                return Err(datafusion::error::DataFusionError::Execution(format!(
                    "`{}` is {} but the first file is {}; load JSON arrays and NDJSON in separate steps",
                    file.display(),
                    if this { "a JSON array" } else { "NDJSON" },
                    if v { "a JSON array" } else { "NDJSON" },
                )));
            }
            Some(_) => {}
        }
    }
    Ok(verdict.unwrap_or(false))
}

fn first_non_blank(file: &Path) -> datafusion::error::Result<Option<u8>> {
    let mut f = fs_err::File::open(file)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        // A UTF-8 byte order mark is not content.
        if let Some(&b) = buf[..n]
            .iter()
            .find(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
        {
            return Ok(Some(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(path: &str) -> LoadSpec {
        serde_json::from_value(json!({ "path": path })).unwrap()
    }

    fn codes(spec: &LoadSpec) -> Vec<String> {
        LoadAction.check(spec).into_iter().map(|d| d.code).collect()
    }

    #[test]
    fn formats_come_from_extensions() {
        let format = |p: &str| detect(p).map(|d| (d.format, d.compression, d.tab_separated));
        use FileCompressionType as C;
        use LoadFormat as F;
        assert_eq!(
            format("data/orders.csv"),
            Some((F::Csv, C::UNCOMPRESSED, false))
        );
        assert_eq!(format("data/ORDERS.CSV.GZ"), Some((F::Csv, C::GZIP, false)));
        assert_eq!(format("x.tsv"), Some((F::Csv, C::UNCOMPRESSED, true)));
        assert_eq!(format("a/*.json"), Some((F::Json, C::UNCOMPRESSED, false)));
        assert_eq!(format("a.jsonl.zst"), Some((F::Ndjson, C::ZSTD, false)));
        assert_eq!(
            format("a.ndjson"),
            Some((F::Ndjson, C::UNCOMPRESSED, false))
        );
        assert_eq!(
            format("a.parquet"),
            Some((F::Parquet, C::UNCOMPRESSED, false))
        );
        assert_eq!(format("a.parquet.gz"), None);
        assert_eq!(format("a.txt"), None);
        assert_eq!(format("data/*"), None);
        assert_eq!(format("csv"), None);
        assert_eq!(format("dir.csv/file"), None);
    }

    #[test]
    fn check_reports_empty_paths_and_unknown_formats() {
        assert_eq!(codes(&spec("")), ["empty-path"]);
        assert_eq!(codes(&spec("  ")), ["empty-path"]);
        assert!(codes(&spec("data/orders.csv")).is_empty());
        let d = LoadAction.check(&spec("data/orders.txt"));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "unknown-format");
        assert!(
            d[0].message.contains("`data/orders.txt`"),
            "{}",
            d[0].message
        );
        let help = d[0].help.as_deref().unwrap();
        for format in ["csv", "json", "ndjson", "parquet"] {
            assert!(help.contains(&format!("`{format}`")), "{help}");
        }
        let mut with_format = spec("data/orders.txt");
        with_format.format = Some(LoadFormat::Csv);
        assert!(codes(&with_format).is_empty());
        // Decided when the template is rendered.
        assert!(codes(&spec("data/orders_{{ run.logical_date }}")).is_empty());
    }

    #[test]
    fn check_reports_bad_csv_options_and_remote_paths() {
        let mut s = spec("a.csv");
        s.delimiter = Some('→');
        assert_eq!(codes(&s), ["invalid-csv-option"]);
        s.delimiter = Some(';');
        s.quote = Some(';');
        assert_eq!(codes(&s), ["invalid-csv-option"]);
        let mut s = spec("a.parquet");
        s.null_values = vec!["NA".to_owned()];
        s.header = false;
        let d = LoadAction.check(&s);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].message.contains("`header`, `null_values`"),
            "{}",
            d[0].message
        );
        assert_eq!(codes(&spec("s3://bucket/a.csv")), ["unsupported-path"]);
        assert_eq!(codes(&spec("gs://bucket/a.csv")), ["unsupported-path"]);
        assert!(codes(&spec("https://example.com/a.csv")).is_empty());
        assert!(codes(&spec("file:///tmp/a.csv")).is_empty());
    }

    #[test]
    fn the_spec_denies_unknown_fields_and_documents_itself() {
        let err =
            serde_json::from_value::<LoadSpec>(json!({"path": "a.csv", "sep": ";"})).unwrap_err();
        assert!(err.to_string().contains("unknown field `sep`"), "{err}");
        let err = serde_json::from_value::<LoadSpec>(json!({"path": "a.csv", "delimiter": ";;"}))
            .unwrap_err();
        assert!(err.to_string().contains("character"), "{err}");
        let full: LoadSpec = serde_json::from_value(json!({
            "path": "a.csv", "format": "csv", "delimiter": ";", "header": false,
            "null_values": ["NA"], "quote": "'"
        }))
        .unwrap();
        assert!(!full.header);
        assert!(spec("a.csv").header, "header defaults to true");
        let schema = serde_json::to_value(schemars::schema_for!(LoadSpec)).unwrap();
        assert!(
            schema["properties"]["path"]["description"]
                .as_str()
                .unwrap()
                .contains("project")
        );
        assert_eq!(schema["required"], json!(["path"]));
    }

    #[test]
    fn remote_schemes() {
        assert_eq!(remote_scheme("s3://b/k"), Some("s3"));
        assert_eq!(remote_scheme("HTTPS://x"), Some("HTTPS"));
        assert_eq!(remote_scheme("file:///x"), None);
        assert_eq!(remote_scheme("data/a.csv"), None);
        assert_eq!(remote_scheme("weird dir://x"), None);
    }
}
