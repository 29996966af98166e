//! The `export` step kind: a dataset written to a local file (CSV, Parquet,
//! JSON, NDJSON) or to a PostgreSQL table.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::json::writer::{JsonArray, LineDelimited};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use object_store::{ObjectStore, ObjectStoreExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use weir_exec::{Action, ActionError, LogStream, TaskContext, TaskOutput};
use weir_types::Diagnostic;

use crate::error::Error;
use crate::task::{failed, guarded, project_dir, remote_scheme};

/// Writes another step's dataset to a local file or a PostgreSQL table.
///
/// ```yaml
/// export: { input: revenue, path: out/revenue.csv }
/// export:
///   input: revenue
///   postgres: { url: "{{ secrets.WAREHOUSE_URL }}", table: analytics.revenue }
/// ```
///
/// Give exactly one of `path` and `postgres`. A file is written to a
/// temporary file next to it and renamed into place, so readers see the old
/// file or the new one, never half of one. A table is written in one
/// transaction. The step's value is `{"rows": N, "path": ...}` or
/// `{"rows": N, "table": ...}`; it produces no dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportSpec {
    /// The step whose dataset is written, by its bare name (`revenue`). The
    /// export runs after it.
    pub input: String,
    /// A local file to write, relative to the project directory (or
    /// absolute); parent folders are created and an existing file is
    /// replaced. Remote paths (`s3://`, `https://`) are not supported yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The file's format. Default: from the extension (`.csv`, `.parquet`,
    /// `.json`, `.ndjson`, `.jsonl`). `json` writes one JSON array of
    /// objects, `ndjson` one object per line; both write nulls as `null`.
    /// Parquet files are compressed with ZSTD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ExportFormat>,
    /// CSV only: whether the first line names the columns.
    #[serde(default = "default_header")]
    pub header: bool,
    /// CSV only: the text written for a null. Default: an empty field, the
    /// same as an empty string; set e.g. `null_value: NA` to tell them apart
    /// (and `load` the file back with `null_values: [NA]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_value: Option<String>,
    /// A PostgreSQL table to write instead of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<ExportPostgresSpec>,
}

fn default_header() -> bool {
    true
}

/// Where in PostgreSQL an `export` writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportPostgresSpec {
    /// The server and database, `postgres://user:password@host:5432/db`.
    /// Keep passwords out of the pipeline: write `"{{ secrets.WAREHOUSE_URL }}"`.
    /// weir never logs the password.
    pub url: String,
    /// The table, `name` or `schema.name` (letters, digits and `_`, read
    /// like unquoted SQL names: lower-cased). A missing schema is created.
    /// Columns are named and typed after the dataset's: integers, `real`,
    /// `double precision`, `numeric(p,s)`, `text`, `boolean`, `date`,
    /// `timestamp`, `timestamptz`, `bytea`; other types are written as
    /// their text.
    pub table: String,
    /// `replace` (default): drop the table and create it with the
    /// dataset's rows; `append`: create the table if missing, else add the
    /// rows to it (its columns must be the dataset's). Either way in one
    /// transaction: readers see the old rows or the new, never a part.
    #[serde(default)]
    pub mode: ExportMode,
}

/// How an `export` writes into an existing table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportMode {
    /// Drop the table and create it anew with the dataset's rows.
    #[default]
    Replace,
    /// Add the dataset's rows to the table (created when missing).
    Append,
}

/// A file format `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Comma-separated values (see `header`, `null_value`).
    Csv,
    /// Apache Parquet, ZSTD-compressed.
    Parquet,
    /// One JSON array of objects.
    Json,
    /// Newline-delimited JSON: one object per line.
    Ndjson,
}

impl ExportFormat {
    fn name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Parquet => "parquet",
            ExportFormat::Json => "json",
            ExportFormat::Ndjson => "ndjson",
        }
    }
}

const FORMATS_HELP: &str = "set `format:` to one of `csv`, `parquet`, `json`, `ndjson`, or use a \
    file extension `.csv`, `.parquet`, `.json`, `.ndjson` or `.jsonl`";

const URL_HELP: &str = "write a PostgreSQL URL, usually from a secret: \
    `url: \"{{ secrets.WAREHOUSE_URL }}\"` holding `postgres://user:password@host:5432/db`";

/// PostgreSQL truncates longer names (`NAMEDATALEN` - 1).
const MAX_NAME_BYTES: usize = 63;

/// Rows per batch read from the input's Parquet files.
const BATCH_ROWS: usize = 8192;

/// `export: { input: ..., path: ... }` or `export: { input: ..., postgres: ... }`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportAction;

#[async_trait]
impl Action for ExportAction {
    const KIND: &'static str = "export";
    type Spec = ExportSpec;

    fn check(&self, spec: &ExportSpec) -> Vec<Diagnostic> {
        match (&spec.path, &spec.postgres) {
            (None, None) => vec![
                Diagnostic::error(
                    "export-target",
                    "an `export` step needs a target: `path` or `postgres`",
                )
                .with_help(
                    "write a file with `path: out/revenue.csv`, or a table with \
                     `postgres: { url: \"{{ secrets.WAREHOUSE_URL }}\", table: revenue }`",
                ),
            ],
            (Some(_), Some(_)) => vec![
                Diagnostic::error(
                    "export-target",
                    "an `export` step has both `path` and `postgres`; it writes one target",
                )
                .with_help("keep one, and export to the other in a second step"),
            ],
            (Some(path), None) => check_path(spec, path),
            (None, Some(postgres)) => {
                let mut out = check_postgres(postgres);
                let file_options: Vec<&str> = [
                    ("format", spec.format.is_some()),
                    ("header", !spec.header),
                    ("null_value", spec.null_value.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, given)| given.then_some(name))
                .collect();
                if !file_options.is_empty() {
                    out.push(
                        Diagnostic::error(
                            "export-target",
                            format!(
                                "{} only apply to a file `path`, and this step exports to `postgres`",
                                backticked(&file_options)
                            ),
                        )
                        .with_help("remove them"),
                    );
                }
                out
            }
        }
    }

    fn inputs(&self, spec: &ExportSpec) -> Vec<String> {
        vec![spec.input.clone()]
    }

    async fn run(&self, spec: ExportSpec, cx: TaskContext) -> Result<TaskOutput, ActionError> {
        guarded(&cx, export(spec, &cx)).await
    }
}

fn check_path(spec: &ExportSpec, path: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if path.trim().is_empty() {
        out.push(
            Diagnostic::error("empty-path", "the `export` path is empty")
                .with_help("write the file to create, e.g. `path: out/revenue.csv`"),
        );
        return out;
    }
    if let Some(scheme) = remote_scheme(path) {
        out.push(
            Diagnostic::error(
                "unsupported-path",
                format!("exporting to `{scheme}://` paths (`{path}`) is not supported yet"),
            )
            .with_help(
                "export to a local file and upload it (e.g. with a `shell` step that needs this one)",
            ),
        );
        return out;
    }
    // A templated file name (`revenue_{{ run.logical_date }}.csv`) is only
    // known when the step runs.
    let templated_name = file_name(path).contains("{{");
    let format = match spec.format.or_else(|| detect(path)) {
        Some(format) => Some(format),
        None if templated_name => None,
        None => {
            out.push(
                Diagnostic::error(
                    "unknown-format",
                    format!("cannot tell the format of `{path}` from its extension"),
                )
                .with_help(FORMATS_HELP),
            );
            None
        }
    };
    if let Some(format) = format
        && format != ExportFormat::Csv
    {
        let given: Vec<&str> = [
            ("header", !spec.header),
            ("null_value", spec.null_value.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect();
        if !given.is_empty() {
            out.push(
                Diagnostic::error(
                    "invalid-csv-option",
                    format!(
                        "{} only apply to CSV files, and this step writes {}",
                        backticked(&given),
                        format.name()
                    ),
                )
                .with_help("remove them, or set `format: csv` to write CSV"),
            );
        }
    }
    out
}

fn check_postgres(spec: &ExportPostgresSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let url = spec.url.trim();
    if url.is_empty() {
        out.push(
            Diagnostic::error("invalid-postgres", "`postgres.url` is empty").with_help(URL_HELP),
        );
    } else if !url.contains("{{") && !is_postgres_url(url) {
        out.push(
            Diagnostic::error(
                "invalid-postgres",
                format!(
                    "`postgres.url` (`{}`) is not a PostgreSQL URL",
                    redacted_url(url)
                ),
            )
            .with_help(URL_HELP),
        );
    }
    if !spec.table.contains("{{")
        && let Err(problem) = TableName::parse(&spec.table)
    {
        out.push(
            Diagnostic::error(
                "invalid-postgres",
                format!("`postgres.table` `{}` {problem}", spec.table),
            )
            .with_help(
                "write `name` or `schema.name` with letters, digits and `_`, not starting with a digit, e.g. `analytics.revenue`",
            ),
        );
    }
    out
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_postgres_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The format a file name's extension names.
fn detect(path: &str) -> Option<ExportFormat> {
    let name = file_name(path).to_ascii_lowercase();
    let (_, extension) = name.rsplit_once('.')?;
    match extension {
        "csv" => Some(ExportFormat::Csv),
        "parquet" | "pq" => Some(ExportFormat::Parquet),
        "json" => Some(ExportFormat::Json),
        "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
        _ => None,
    }
}

/// `url` without its password and query string (which may hold one), for
/// messages and logs: `postgres://user:***@host:5432/db`.
fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    // The last `@` ends the user info even when an unescaped password holds
    // `/`, `?` or `#`; user info that looks like more than a user name is
    // hidden whole.
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((userinfo, rest)) => (Some(userinfo), rest),
        None => (None, rest),
    };
    let user = match userinfo {
        None => String::new(),
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, _password)) if !user.contains(['/', '?', '#']) => format!("{user}:***@"),
            None if !userinfo.contains(['/', '?', '#']) => format!("{userinfo}@"),
            _ => "***@".to_owned(),
        },
    };
    let rest = match rest.find(['?', '#']) {
        Some(i) => format!("{}?…", &rest[..i]),
        None => rest.to_owned(),
    };
    format!("{scheme}://{user}{rest}")
}

/// A validated `postgres.table`: lower-cased like unquoted SQL names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    fn parse(table: &str) -> Result<TableName, String> {
        let parts: Vec<&str> = table.split('.').collect();
        let (schema, name) = match parts.as_slice() {
            [name] => (None, *name),
            [schema, name] => (Some(*schema), *name),
            _ => return Err("has more than two parts (`schema.name`)".to_owned()),
        };
        for part in schema.iter().chain([&name]) {
            if part.is_empty() {
                return Err("has an empty name".to_owned());
            }
            if part.len() > MAX_NAME_BYTES {
                return Err(format!(
                    "has a name longer than PostgreSQL's {MAX_NAME_BYTES} bytes"
                ));
            }
            let mut chars = part.chars();
            let starts_well = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "is not a plain name: `{part}` has characters other than letters, digits and `_`, or starts with a digit"
                ));
            }
        }
        Ok(TableName {
            schema: schema.map(str::to_ascii_lowercase),
            name: name.to_ascii_lowercase(),
        })
    }

    /// The name as SQL, every part quoted.
    fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A PostgreSQL identifier, quoted (so any column name, keyword or case
/// survives as written).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn export(spec: ExportSpec, cx: &TaskContext) -> Result<TaskOutput, ActionError> {
    // The spec now has its templates rendered: check what could not be
    // checked before.
    if let Some(d) = ExportAction
        .check(&spec)
        .into_iter()
        .find(Diagnostic::is_error)
    {
        let hint = d.help.map(|h| format!("\nhint: {h}")).unwrap_or_default();
        return Err(failed(format!("{}{hint}", d.message)));
    }
    let Some(input) = cx.inputs.get(&spec.input) else {
        return Err(Error::Internal(format!(
            "the engine gave the `export` step no dataset for its input `{}`",
            spec.input
        ))
        .into());
    };
    let reader = DatasetReader::open(cx.blobs.clone(), input.files.clone())
        .await
        .map_err(|e| failed(format!("input `{}` ({}): {e}", spec.input, input.version)))?;
    match (&spec.path, &spec.postgres) {
        (Some(path), None) => export_file(&spec, path, reader, cx).await,
        (None, Some(postgres)) => export_postgres(postgres, reader, cx).await,
        _ => Err(
            Error::Internal("an `export` spec passed check without one target".to_owned()).into(),
        ),
    }
}

/// A dataset's Parquet files read batch by batch, in order (a dataset's row
/// order is its files' order; a DataFusion scan could split a file and
/// interleave its parts). One file's bytes are held at a time: a dataset
/// file was a single buffer when it was written, so it fits again.
struct DatasetReader {
    blobs: Arc<dyn ObjectStore>,
    files: Vec<String>,
    /// Index in `files` of the next file to open.
    next_file: usize,
    current: Option<(String, ParquetRecordBatchReader)>,
    schema: SchemaRef,
}

impl DatasetReader {
    async fn open(blobs: Arc<dyn ObjectStore>, files: Vec<String>) -> crate::Result<Self> {
        let Some(first) = files.first().cloned() else {
            return Err(Error::NoFiles {
                table: "<input>".to_owned(),
            });
        };
        let reader = open_parquet(&blobs, &first).await?;
        Ok(DatasetReader {
            blobs,
            files,
            next_file: 1,
            schema: reader.schema(),
            current: Some((first, reader)),
        })
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn next(&mut self) -> crate::Result<Option<RecordBatch>> {
        loop {
            if let Some((key, reader)) = &mut self.current {
                match reader.next() {
                    Some(batch) => {
                        let batch = batch.map_err(|e| Error::parquet(key.as_str(), e.into()))?;
                        return Ok(Some(batch));
                    }
                    None => self.current = None,
                }
            }
            let Some(key) = self.files.get(self.next_file).cloned() else {
                return Ok(None);
            };
            self.next_file += 1;
            let reader = open_parquet(&self.blobs, &key).await?;
            if reader.schema().fields() != self.schema.fields() {
                return Err(Error::InvalidSchema {
                    message: format!(
                        "file `{key}` has a different schema than `{}`, the dataset's first file",
                        self.files[0]
                    ),
                });
            }
            self.current = Some((key, reader));
        }
    }
}

async fn open_parquet(
    blobs: &Arc<dyn ObjectStore>,
    key: &str,
) -> crate::Result<ParquetRecordBatchReader> {
    let path = object_store::path::Path::parse(key).map_err(|e| Error::blob(key, e.into()))?;
    let found = blobs.get(&path).await.map_err(|e| Error::blob(key, e))?;
    let bytes = found.bytes().await.map_err(|e| Error::blob(key, e))?;
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
        .map_err(|e| Error::parquet(key, e))
}

// ---------------------------------------------------------------- files

async fn export_file(
    spec: &ExportSpec,
    path: &str,
    mut reader: DatasetReader,
    cx: &TaskContext,
) -> Result<TaskOutput, ActionError> {
    let Some(format) = spec.format.or_else(|| detect(path)) else {
        return Err(failed(format!(
            "cannot tell the format of `{path}` from its extension\nhint: {FORMATS_HELP}"
        )));
    };
    let local = path.strip_prefix("file://").unwrap_or(path);
    let target = if Path::new(local).is_absolute() {
        PathBuf::from(local)
    } else {
        project_dir(cx)?.join(local)
    };
    let options = FileOptions {
        format,
        header: spec.header,
        null_value: spec.null_value.clone(),
    };
    let schema = reader.schema().clone();
    let shown = path.to_owned();
    // File IO and encoding are blocking work: each step runs off the async
    // workers. When the task is cancelled or times out this future is
    // dropped, and with it the sink: its temporary file is deleted and the
    // target is left as it was.
    let mut sink = blocking(move || FileSink::create(target, shown, &options, schema)).await?;
    let mut rows = 0u64;
    while let Some(batch) = reader.next().await? {
        rows += batch.num_rows() as u64;
        sink = blocking(move || sink.write(&batch).map(|()| sink)).await?;
    }
    blocking(move || sink.finish()).await?;
    cx.log.line(
        LogStream::System,
        &format!("exported {rows} rows to `{path}` ({})", format.name()),
    );
    Ok(TaskOutput {
        value: Some(json!({ "rows": rows, "path": path })),
        ..TaskOutput::default()
    })
}

async fn blocking<T, F>(work: F) -> Result<T, ActionError>
where
    F: FnOnce() -> Result<T, ActionError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ActionError::from(Error::Internal(format!("the file writer stopped: {e}"))))?
}

struct FileOptions {
    format: ExportFormat,
    header: bool,
    null_value: Option<String>,
}

enum FileWriter {
    // The big ones boxed (clippy::large_enum_variant).
    Csv(Box<datafusion::arrow::csv::Writer<BufWriter<File>>>),
    /// The Parquet writer buffers on its own.
    Parquet(Box<ArrowWriter<File>>),
    Json(datafusion::arrow::json::Writer<BufWriter<File>, JsonArray>),
    Ndjson(datafusion::arrow::json::Writer<BufWriter<File>, LineDelimited>),
}

/// A file being written: a temporary file in the target's folder, renamed
/// over the target by [`FileSink::finish`], deleted if dropped before.
struct FileSink {
    writer: FileWriter,
    temp: tempfile::TempPath,
    target: PathBuf,
    /// The path as the user wrote it.
    shown: String,
    schema: SchemaRef,
    wrote_rows: bool,
}

impl FileSink {
    fn create(
        target: PathBuf,
        shown: String,
        options: &FileOptions,
        schema: SchemaRef,
    ) -> Result<Self, ActionError> {
        if target.is_dir() {
            return Err(failed(format!(
                "`{shown}` is a directory\nhint: name the file to write, e.g. `{}/data.{}`",
                shown.trim_end_matches('/'),
                options.format.name()
            )));
        }
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs_err::create_dir_all(&dir)
            .map_err(|e| failed(format!("cannot export to `{shown}`: {e}")))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // Like any new file (the umask applies), not tempfile's 0600: the
        // export is meant to be read.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let (file, temp) = builder
            .tempfile_in(&dir)
            .map_err(|e| {
                failed(format!(
                    "cannot create a temporary file in `{}` to export `{shown}`: {e}",
                    dir.display()
                ))
            })?
            .into_parts();
        let writer = match options.format {
            ExportFormat::Csv => {
                let mut builder =
                    datafusion::arrow::csv::WriterBuilder::new().with_header(options.header);
                if let Some(null) = &options.null_value {
                    builder = builder.with_null(null.clone());
                }
                FileWriter::Csv(Box::new(builder.build(BufWriter::new(file))))
            }
            ExportFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| failed(format!("cannot write `{shown}`: {e}")))?;
                FileWriter::Parquet(Box::new(writer))
            }
            ExportFormat::Json => FileWriter::Json(
                datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, JsonArray>(BufWriter::new(file)),
            ),
            ExportFormat::Ndjson => FileWriter::Ndjson(
                datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, LineDelimited>(BufWriter::new(file)),
            ),
        };
        Ok(FileSink {
            writer,
            temp,
            target,
            shown,
            schema,
            wrote_rows: false,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ActionError> {
        self.wrote_rows |= batch.num_rows() > 0;
        let result = match &mut self.writer {
            FileWriter::Csv(w) => w.write(batch),
            FileWriter::Parquet(w) => w.write(batch).map_err(Into::into),
            FileWriter::Json(w) => w.write(batch),
            FileWriter::Ndjson(w) => w.write(batch),
        };
        result.map_err(|e| failed(format!("cannot write `{}`: {e}", self.shown)))
    }

    fn finish(mut self) -> Result<(), ActionError> {
        if !self.wrote_rows && matches!(self.writer, FileWriter::Csv(_)) {
            // The header is written with the first batch.
            self.write(&RecordBatch::new_empty(self.schema.clone()))?;
        }
        let shown = &self.shown;
        let error = |e: &dyn std::fmt::Display| failed(format!("cannot write `{shown}`: {e}"));
        let file = match self.writer {
            FileWriter::Csv(w) => w.into_inner().into_inner().map_err(|e| error(e.error()))?,
            FileWriter::Parquet(w) => w.into_inner().map_err(|e| error(&e))?,
            FileWriter::Json(mut w) => {
                w.finish().map_err(|e| error(&e))?;
                w.into_inner().into_inner().map_err(|e| error(e.error()))?
            }
            FileWriter::Ndjson(mut w) => {
                w.finish().map_err(|e| error(&e))?;
                w.into_inner().into_inner().map_err(|e| error(e.error()))?
            }
        };
        // On disk before it is visible under its name.
        file.sync_all().map_err(|e| error(&e))?;
        drop(file);
        self.temp.persist(&self.target).map_err(|e| {
            failed(format!(
                "cannot move the exported file into place at `{}`: {}",
                self.target.display(),
                e.error
            ))
        })?;
        Ok(())
    }
}

// ----------------------------------------------------------- PostgreSQL

/// One column as written to PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PgColumn {
    name: String,
    /// The column type in `CREATE TABLE`.
    sql_type: String,
    /// Cast the Arrow column to this before formatting its values.
    cast_to: Option<DataType>,
    /// `bytea`: hex with the `\x` prefix.
    binary: bool,
}

/// The PostgreSQL column for a dataset column of type `data_type`.
fn pg_column(name: &str, data_type: &DataType) -> PgColumn {
    let column = |sql_type: &str| PgColumn {
        name: name.to_owned(),
        sql_type: sql_type.to_owned(),
        cast_to: None,
        binary: false,
    };
    let numeric = |precision: u8, scale: i8| {
        // PostgreSQL allows a precision up to 1000; a negative scale only
        // from version 15.
        if scale >= 0 && precision >= 1 {
            column(&format!("numeric({precision},{scale})"))
        } else {
            column("numeric")
        }
    };
    match data_type {
        DataType::Int8 | DataType::Int16 => column("smallint"),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => column("integer"),
        DataType::Int64 | DataType::UInt32 => column("bigint"),
        // A bigint cannot hold the top half of the range.
        DataType::UInt64 => column("numeric(20,0)"),
        DataType::Float16 | DataType::Float32 => column("real"),
        DataType::Float64 => column("double precision"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => column("text"),
        DataType::Boolean => column("boolean"),
        DataType::Date32 => column("date"),
        // Date64 counts milliseconds and formats with a time of day.
        DataType::Date64 => PgColumn {
            cast_to: Some(DataType::Date32),
            ..column("date")
        },
        DataType::Timestamp(_, None) => column("timestamp"),
        // Formatted with an explicit offset, so a zone name needs no
        // time-zone database on either side.
        DataType::Timestamp(unit, Some(_)) => PgColumn {
            cast_to: Some(DataType::Timestamp(*unit, Some("+00:00".into()))),
            ..column("timestamptz")
        },
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => numeric(*p, *s),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => numeric(*p, *s),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => PgColumn {
            binary: true,
            ..column("bytea")
        },
        // Everything else (times, intervals, lists, structs, ...) is
        // written as Arrow's text for it.
        _ => column("text"),
    }
}

fn pg_columns(schema: &SchemaRef) -> Result<Vec<PgColumn>, ActionError> {
    schema
        .fields()
        .iter()
        .map(|field| {
            if field.name().len() > MAX_NAME_BYTES {
                return Err(failed(format!(
                    "column `{}` has a name longer than PostgreSQL's {MAX_NAME_BYTES} bytes\nhint: rename it with `AS` in a `sql` step before the export",
                    field.name()
                )));
            }
            Ok(pg_column(field.name(), field.data_type()))
        })
        .collect()
}

/// Appends `batch` to `out` as the rows of `COPY ... (FORMAT csv)`.
///
/// Every value is quoted and a null is an unquoted empty field, the one
/// form PostgreSQL reads as NULL: so nulls and empty strings (`""`) stay
/// apart and no string can pass for a null. Arrow's CSV writer cannot do
/// this (it quotes its null marker like any value, so some string always
/// looks like it).
fn encode_copy_csv(
    columns: &[PgColumn],
    batch: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), ActionError> {
    let arrays = columns
        .iter()
        .zip(batch.columns())
        .map(|(column, array)| match &column.cast_to {
            Some(to) => cast(array, to),
            None => Ok(array.clone()),
        })
        .collect::<Result<Vec<ArrayRef>, _>>()
        .map_err(|e| failed(format!("cannot convert a column for PostgreSQL: {e}")))?;
    let options = FormatOptions::default();
    let formatters = arrays
        .iter()
        .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(format!("cannot format a column for PostgreSQL: {e}")))?;
    // `logical_nulls`: a `Null`-typed column has no null buffer.
    let nulls: Vec<_> = arrays.iter().map(|a| a.logical_nulls()).collect();
    let mut value = String::new();
    for row in 0..batch.num_rows() {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if nulls[i].as_ref().is_some_and(|n| n.is_null(row)) {
                continue;
            }
            value.clear();
            if column.binary {
                value.push_str("\\x");
            }
            formatters[i].value(row).write(&mut value).map_err(|e| {
                failed(format!(
                    "cannot format column `{}` of row {}: {e}",
                    column.name,
                    row + 1
                ))
            })?;
            out.push(b'"');
            for byte in value.bytes() {
                if byte == b'"' {
                    out.push(b'"');
                }
                out.push(byte);
            }
            out.push(b'"');
        }
        out.push(b'\n');
    }
    Ok(())
}

async fn export_postgres(
    spec: &ExportPostgresSpec,
    mut reader: DatasetReader,
    cx: &TaskContext,
) -> Result<TaskOutput, ActionError> {
    let table = TableName::parse(&spec.table)
        .map_err(|problem| failed(format!("`postgres.table` `{}` {problem}", spec.table)))?;
    let shown_url = redacted_url(&spec.url);
    // Never shown: the URL may hold a password.
    let options: PgConnectOptions = spec.url.trim().parse().map_err(|e| {
        failed(format!(
            "`postgres.url` (`{shown_url}`) is not a valid PostgreSQL URL: {e}\nhint: {URL_HELP}"
        ))
    })?;
    let columns = pg_columns(reader.schema())?;
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| pg_failed(&format!("cannot connect to `{shown_url}`"), &e))?;
    let quoted = table.quoted();
    let column_list = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let create = |if_not_exists: &str| {
        format!(
            "CREATE TABLE {if_not_exists}{quoted} ({})",
            columns
                .iter()
                .map(|c| format!("{} {}", quote_ident(&c.name), c.sql_type))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };

    let mut tx = conn
        .begin()
        .await
        .map_err(|e| pg_failed("cannot start a transaction", &e))?;
    if let Some(schema) = &table.schema {
        // `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege on the
        // database even when the schema exists: only ask when it is missing.
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(schema)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| pg_failed(&format!("cannot look up schema `{schema}`"), &e))?;
        if !exists {
            execute(
                &mut tx,
                format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema)),
                &format!("cannot create schema `{schema}`"),
            )
            .await?;
        }
    }
    match spec.mode {
        ExportMode::Replace => {
            execute(
                &mut tx,
                format!("DROP TABLE IF EXISTS {quoted}"),
                &format!("cannot drop table `{table}`"),
            )
            .await?;
            execute(
                &mut tx,
                create(""),
                &format!("cannot create table `{table}`"),
            )
            .await?;
        }
        ExportMode::Append => {
            execute(
                &mut tx,
                create("IF NOT EXISTS "),
                &format!("cannot create table `{table}`"),
            )
            .await?;
            let existing: Vec<String> = sqlx::query_scalar(
                "SELECT attname::text FROM pg_attribute \
                 WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped \
                 ORDER BY attnum",
            )
            .bind(&quoted)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| pg_failed(&format!("cannot read the columns of table `{table}`"), &e))?;
            let wanted: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            check_same_columns(&table, &existing, &wanted)?;
        }
    }
    let copy_sql = format!("COPY {quoted} ({column_list}) FROM STDIN WITH (FORMAT csv)");
    let mut copy = tx
        .copy_in_raw(&copy_sql)
        .await
        .map_err(|e| pg_failed(&format!("cannot copy into table `{table}`"), &e))?;
    let mut rows = 0u64;
    let mut buffer = Vec::new();
    while let Some(batch) = reader.next().await? {
        rows += batch.num_rows() as u64;
        buffer.clear();
        encode_copy_csv(&columns, &batch, &mut buffer)?;
        copy.send(buffer.as_slice())
            .await
            .map_err(|e| pg_failed(&format!("cannot copy into table `{table}`"), &e))?;
    }
    copy.finish()
        .await
        .map_err(|e| pg_failed(&format!("cannot copy into table `{table}`"), &e))?;
    tx.commit()
        .await
        .map_err(|e| pg_failed(&format!("cannot commit the export to `{table}`"), &e))?;
    conn.close().await.ok();
    let verb = match spec.mode {
        ExportMode::Replace => "replaced",
        ExportMode::Append => "appended to",
    };
    cx.log.line(
        LogStream::System,
        &format!("{verb} table `{table}` with {rows} rows at `{shown_url}`"),
    );
    Ok(TaskOutput {
        value: Some(json!({ "rows": rows, "table": table.to_string() })),
        ..TaskOutput::default()
    })
}

async fn execute(conn: &mut PgConnection, sql: String, what: &str) -> Result<(), ActionError> {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map_err(|e| pg_failed(what, &e))?;
    Ok(())
}

/// The table's columns are the dataset's (in any order: `COPY` names them).
fn check_same_columns(
    table: &TableName,
    existing: &[String],
    wanted: &[String],
) -> Result<(), ActionError> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|c| !existing.contains(c))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = existing
        .iter()
        .filter(|c| !wanted.contains(c))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let mut differences = Vec::new();
    if !missing.is_empty() {
        differences.push(format!("the table has no {}", backticked(&missing)));
    }
    if !extra.is_empty() {
        differences.push(format!("the dataset has no {}", backticked(&extra)));
    }
    let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    Err(failed(format!(
        "cannot append to table `{table}`: its columns ({}) are not the dataset's ({}): {}\nhint: use `mode: replace` to recreate the table with the dataset's columns, or select the table's columns in a `sql` step before the export",
        backticked(&existing),
        backticked(&wanted),
        differences.join("; ")
    )))
}

/// A failed PostgreSQL call: `what`, the server's message and, when it sent
/// them, its detail, context (for `COPY`: the line and column) and hint.
/// sqlx's messages never contain the connection URL.
fn pg_failed(what: &str, e: &sqlx::Error) -> ActionError {
    let mut message = format!("{what}: {e}");
    if let Some(pg) = e
        .as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
    {
        if let Some(detail) = pg.detail() {
            let _ = write!(message, "\ndetail: {detail}");
        }
        if let Some(context) = pg.r#where() {
            let _ = write!(message, "\ncontext: {context}");
        }
        if let Some(hint) = pg.hint() {
            let _ = write!(message, "\nhint: {hint}");
        }
    }
    failed(message)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{BinaryArray, Int64Array, NullArray, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};

    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redacted_url("postgres://user:s3cret@db.example.com:5432/warehouse"),
            "postgres://user:***@db.example.com:5432/warehouse"
        );
        assert_eq!(
            redacted_url("postgresql://u@h/db?password=s3cret&sslmode=require"),
            "postgresql://u@h/db?…"
        );
        assert_eq!(redacted_url("postgres://h"), "postgres://h");
        assert_eq!(
            redacted_url("postgres://a:b:c@d@h:1/x"),
            "postgres://a:***@h:1/x"
        );
        assert_eq!(redacted_url("user:s3cret"), "<not a URL>");
        for leaky in [
            "postgres://u:pa/ss@h/db",
            "postgres://u:p?ss@h/db",
            "postgres://h/db?password=s3cret&application_name=a@b",
        ] {
            let shown = redacted_url(leaky);
            assert!(
                !shown.contains("ss") && !shown.contains("s3cret"),
                "{shown}"
            );
        }
    }

    #[test]
    fn table_names() {
        let t = TableName::parse("Analytics.Revenue").unwrap();
        assert_eq!(t.to_string(), "analytics.revenue");
        assert_eq!(t.quoted(), "\"analytics\".\"revenue\"");
        assert_eq!(TableName::parse("_t1").unwrap().quoted(), "\"_t1\"");
        for bad in [
            "",
            "a.",
            ".a",
            "a.b.c",
            "1a",
            "a-b",
            "a b",
            "\"a\"",
            &"x".repeat(64),
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn types_map_to_postgres() {
        let t = |d: DataType| pg_column("c", &d).sql_type;
        assert_eq!(t(DataType::Int8), "smallint");
        assert_eq!(t(DataType::UInt16), "integer");
        assert_eq!(t(DataType::UInt32), "bigint");
        assert_eq!(t(DataType::UInt64), "numeric(20,0)");
        assert_eq!(t(DataType::Float32), "real");
        assert_eq!(t(DataType::Decimal128(12, 3)), "numeric(12,3)");
        assert_eq!(t(DataType::Decimal128(5, -2)), "numeric");
        assert_eq!(
            t(DataType::Timestamp(TimeUnit::Microsecond, None)),
            "timestamp"
        );
        assert_eq!(
            t(DataType::Timestamp(
                TimeUnit::Second,
                Some("Europe/Paris".into())
            )),
            "timestamptz"
        );
        assert_eq!(t(DataType::Time64(TimeUnit::Microsecond)), "text");
        assert_eq!(t(DataType::Null), "text");
    }

    #[test]
    fn copy_csv_quotes_values_and_leaves_nulls_bare() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("b", DataType::Binary, true),
            Field::new("z", DataType::Null, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some(""),
                    None,
                    Some("a \"q\", b\nc"),
                    Some("\\N"),
                ])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(-3), Some(4)])),
                Arc::new(BinaryArray::from(vec![
                    Some(&b"\x00\xff"[..]),
                    None,
                    Some(&b""[..]),
                    None,
                ])),
                Arc::new(NullArray::new(4)),
            ],
        )
        .unwrap();
        let columns = pg_columns(&schema).unwrap();
        let mut out = Vec::new();
        encode_copy_csv(&columns, &batch, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"\",\"1\",\"\\x00ff\",\n\
             ,,,\n\
             \"a \"\"q\"\", b\nc\",\"-3\",\"\\x\",\n\
             \"\\N\",\"4\",,\n"
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(detect("out/a.CSV"), Some(ExportFormat::Csv));
        assert_eq!(detect("a.pq"), Some(ExportFormat::Parquet));
        assert_eq!(detect("a.jsonl"), Some(ExportFormat::Ndjson));
        assert_eq!(detect("a.json"), Some(ExportFormat::Json));
        assert_eq!(detect("a.csv.gz"), None);
        assert_eq!(detect("dir.csv/a"), None);
        assert_eq!(detect("csv"), None);
    }
}
