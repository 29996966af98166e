//! Datasets in the blob store: Parquet files (ZSTD) at content-addressed keys.
//!
//! A file's key is `datasets/<blake3 of its bytes>.parquet`, so writing the
//! same data twice (a retried task) yields the same key and the same bytes,
//! and a version can never be overwritten by different data. A dataset of
//! more than [`ROWS_PER_FILE`] rows is several files, listed in row order.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{cast, concat, concat_batches};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::task::JoinSet;
use weir_exec::DatasetOutput;

use crate::error::{Error, Result};
use crate::schema::schema_to_json;

/// Where dataset files live in the blob store.
pub const DATASET_PREFIX: &str = "datasets/";

/// Written into every file's footer instead of the Parquet library's default
/// (which carries its version): the same rows give the same bytes whatever
/// weir was built with.
const CREATED_BY: &str = "weir";

/// Rows per dataset file: a dataset of more rows is split into files of
/// exactly this many rows (the last one smaller), encoded in parallel.
///
/// A constant, never derived from the machine (cores, memory): the split
/// decides the bytes, and so the keys, and the same rows must give the same
/// keys everywhere. It is also parquet's default row-group size, so every
/// file is one row group, as the first row group of a single file was.
const ROWS_PER_FILE: usize = 1024 * 1024;

/// Values of a column (its first ones in a file) looked at to decide whether
/// the column is dictionary encoded.
const DICTIONARY_SAMPLE: usize = 64 * 1024;

/// A column whose sample has more distinct values than this fraction of its
/// (non-null) values is not dictionary encoded: its values hardly repeat,
/// so the writer would hash them into a dictionary that overflows the
/// dictionary page (1 MiB) and is dropped. 0.75 is about where the sample
/// of a column of 8-byte values with as many distinct values as fill that
/// page (131,072) lands.
///
/// On the 2M orders of the ETL benchmark it leaves out `id` and `ts`
/// (0.999-1.0) and keeps `customer_id` (0.56) and `amount` (0.73), whose
/// dictionaries pay: both files are 20.2 MB, against 21.3 MB with every
/// dictionary, 21.7 MB at 0.5 (which drops those two) and 24.0 MB with
/// none. Time hardly moves (0.297 s against 0.309 s on one core): the
/// writer already gives up on a dictionary once its page is full.
const DICTIONARY_MAX_DISTINCT: f64 = 0.75;

/// Rows per batch handed to the Parquet writer (all but a file's last).
///
/// Where the writer ends a page depends on where the batches it is given
/// start (it checks the page's size after runs counted from each batch's
/// start, 1,024 or 20,000 rows depending on the column's nulls), so the
/// same rows in other batches give other bytes and another key; and a
/// query's batches vary with the number of cores. 8,192 is what CSV loads
/// and DataFusion produce: their batches pass through without a copy.
const WRITER_BATCH_ROWS: usize = 8192;

/// ZSTD level 1: parquet's default for ZSTD, written out so that a change
/// of default cannot change the bytes. Level 3 (zstd's own default) took
/// 12% longer on the 2M orders (0.332 s against 0.297 s on one core) for
/// files 2% larger.
const ZSTD_LEVEL: i32 = 1;

/// Encodes `batches` as Parquet files (ZSTD) of [`ROWS_PER_FILE`] rows and
/// stores each at its content address, unless a file with that address is
/// already there.
///
/// File `i` holds rows `[i * ROWS_PER_FILE, (i + 1) * ROWS_PER_FILE)` and
/// the output lists the files in that order: a dataset's row order is its
/// files' order. Each file's bytes depend only on its own rows, so the same
/// rows give the same keys however they arrived in batches.
///
/// Zero batches (or zero rows) still write one valid file carrying `schema`.
/// Every batch must have `schema` (field names, types and nullability).
///
/// Columns of Arrow's view types (`Utf8View`, `BinaryView`, which DataFusion
/// produces when it reads Parquet) are stored as `Utf8` / `Binary`: a
/// dataset's schema says what the data is, not how one engine held it, so
/// the same strings have the same schema (and contract) whichever action
/// produced them.
pub async fn write_dataset(
    blobs: &Arc<dyn ObjectStore>,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<DatasetOutput> {
    write_files(blobs, schema, batches, ROWS_PER_FILE).await
}

/// [`write_dataset`] with files of `rows_per_file` rows.
async fn write_files(
    blobs: &Arc<dyn ObjectStore>,
    schema: SchemaRef,
    batches: &[RecordBatch],
    rows_per_file: usize,
) -> Result<DatasetOutput> {
    let (canonical, _) = canonical_types(schema.clone(), &[])?;
    let parts = split_rows(batches, rows_per_file);
    // Encoding is CPU-bound: one file per core at a time, off the async
    // workers. Each file is stored as soon as it is encoded, so at most
    // `parallel` encoded files are held at once.
    let parallel = std::thread::available_parallelism().map_or(1, usize::from);
    let mut stored: Vec<Option<(String, u64)>> = vec![None; parts.len()];
    let mut parts = parts.into_iter().enumerate();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < parallel {
            let Some((index, part)) = parts.next() else {
                break;
            };
            let blobs = blobs.clone();
            let schema = schema.clone();
            tasks.spawn(async move {
                let file = store_file(&blobs, schema, part).await;
                (index, file)
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (index, file) =
            done.map_err(|e| Error::Internal(format!("writing a dataset file stopped: {e}")))?;
        stored[index] = Some(file?);
    }
    let mut files = Vec::with_capacity(stored.len());
    let mut bytes = 0;
    for file in stored {
        let Some((key, len)) = file else {
            return Err(Error::Internal(
                "a dataset file was neither written nor failed".to_owned(),
            ));
        };
        files.push(key);
        bytes += len;
    }
    Ok(DatasetOutput {
        files,
        schema: schema_to_json(&canonical),
        rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
        bytes,
    })
}

/// `batches` cut into runs of `rows_per_file` rows (the last one shorter;
/// one empty run when there are no rows), slicing batches at the
/// boundaries. Empty batches are left out: they add nothing to a file.
fn split_rows(batches: &[RecordBatch], rows_per_file: usize) -> Vec<Vec<RecordBatch>> {
    let rows_per_file = rows_per_file.max(1);
    let mut parts = Vec::new();
    let mut part = Vec::new();
    let mut rows = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let n = (batch.num_rows() - offset).min(rows_per_file - rows);
            part.push(batch.slice(offset, n));
            offset += n;
            rows += n;
            if rows == rows_per_file {
                parts.push(std::mem::take(&mut part));
                rows = 0;
            }
        }
    }
    if !part.is_empty() || parts.is_empty() {
        parts.push(part);
    }
    parts
}

#[cfg(test)]
/// The rows of `batches` in batches of exactly [`WRITER_BATCH_ROWS`] rows
/// (the last one shorter): the slices of one batch as they are, the rows
/// around a boundary between batches copied into one.
fn rebatch(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    split_rows(batches, WRITER_BATCH_ROWS)
        .into_iter()
        .map(|mut parts| match parts.len() {
            1 => Ok(parts.remove(0)),
            _ => Ok(concat_batches(schema, &parts)?),
        })
        .collect()
}

/// Encodes one file's rows (on a blocking thread) and stores them at their
/// content address; returns the key and the file's size.
async fn store_file(
    blobs: &Arc<dyn ObjectStore>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(String, u64)> {
    let (key, bytes) = tokio::task::spawn_blocking(move || {
        let (schema, batches) = canonical_types(schema, &batches)?;
        // Before regrouping, which would merge batches of other schemas.
        check_schemas(&schema, &batches)?;
        let bytes = encode_regrouped(&schema, &batches)?;
        let key = format!(
            "{DATASET_PREFIX}{}.parquet",
            blake3::hash(&bytes).to_hex().as_str()
        );
        Ok::<_, Error>((key, bytes))
    })
    .await
    .map_err(|e| Error::Internal(format!("encoding a dataset file stopped: {e}")))??;
    let path = Path::from(key.as_str());
    let exists = match blobs.head(&path).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => return Err(Error::blob(key, e)),
    };
    let len = bytes.len() as u64;
    if !exists {
        blobs
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| Error::blob(key.clone(), e))?;
    }
    Ok((key, len))
}

/// The type a dataset stores for a column of type `data_type`.
pub(crate) fn canonical_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    }
}

/// `schema` and `batches` with every column of [`canonical_type`].
fn canonical_types(
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let changes = |f: &FieldRef| canonical_type(f.data_type()) != *f.data_type();
    if !schema.fields().iter().any(changes) {
        return Ok((schema, batches.to_vec()));
    }
    let canonical: SchemaRef = Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_data_type(canonical_type(f.data_type()))
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ));
    let batches = batches
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(canonical.fields())
                .map(|(column, field)| cast(column, field.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new(canonical.clone(), columns)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((canonical, batches))
}

/// The Parquet bytes of `batches`, fed to the writer in batches of exactly
/// [`WRITER_BATCH_ROWS`] rows (Parquet's page boundaries follow the input
/// batches, so this is what makes the bytes depend on the rows only). The
/// rows around a boundary between input batches are copied one writer batch
/// at a time, as they are written: regrouping a whole file first held a
/// second copy of most of it (input batches rarely line up, e.g. after a CSV
/// is parsed in pieces).
fn encode_regrouped(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes> {
    let props = writer_properties(schema, batches)?;
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(props))
        .map_err(|e| Error::parquet("<memory>", e))?;
    if !batches.iter().all(|b| b.num_rows() == 0) {
        for mut parts in split_rows(batches, WRITER_BATCH_ROWS) {
            let batch = match parts.len() {
                1 => parts.remove(0),
                _ => concat_batches(schema, &parts)?,
            };
            writer
                .write(&batch)
                .map_err(|e| Error::parquet("<memory>", e))?;
        }
    }
    writer.close().map_err(|e| Error::parquet("<memory>", e))?;
    Ok(Bytes::from(out))
}

/// An internal error unless every batch has `schema`'s fields.
fn check_schemas(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    match batches
        .iter()
        .find(|b| b.schema().fields() != schema.fields())
    {
        Some(batch) => Err(Error::Internal(format!(
            "a batch's schema {:?} differs from the dataset's {:?}",
            batch.schema().fields(),
            schema.fields()
        ))),
        None => Ok(()),
    }
}

/// How a file of `batches` is written: ZSTD, and dictionary encoding only
/// for the columns where it pays (decided from the rows themselves, so the
/// same rows give the same bytes).
fn writer_properties(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| Error::parquet("<memory>", e))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_created_by(CREATED_BY.to_owned());
    for (index, field) in schema.fields().iter().enumerate() {
        if distinct_fraction(field.data_type(), batches, index)
            .is_some_and(|f| f > DICTIONARY_MAX_DISTINCT)
        {
            props =
                props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    Ok(props.build())
}

/// Distinct values over non-null values among the first
/// [`DICTIONARY_SAMPLE`] values of column `index`; `None` when there is
/// no decision to make (no values, or a type without one Parquet column or
/// without a dictionary).
fn distinct_fraction(data_type: &DataType, batches: &[RecordBatch], index: usize) -> Option<f64> {
    // Nested types are several Parquet columns (and paths): they keep the
    // writer's default. Booleans are never dictionary encoded.
    if data_type.is_nested() || matches!(data_type, DataType::Boolean | DataType::Null) {
        return None;
    }
    let mut slices = Vec::new();
    let mut left = DICTIONARY_SAMPLE;
    for batch in batches {
        if left == 0 {
            break;
        }
        let n = left.min(batch.num_rows());
        slices.push(batch.column(index).slice(0, n));
        left -= n;
    }
    let sample = match slices.as_slice() {
        [] => return None,
        [one] => one.clone(),
        _ => concat(&slices.iter().map(|a| a.as_ref()).collect::<Vec<_>>()).ok()?,
    };
    // The values' bytes, compared as bytes: strings and binaries as they
    // are, fixed-width values as their little-endian bytes, anything else
    // in Arrow's row format (equal rows are equal values). Arrow's row
    // format for every type took 0.045 s for the six columns of the 2M
    // orders (15% of encoding), this 0.013 s.
    let (distinct, values) = match data_type {
        DataType::Utf8 => count_distinct(
            sample
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
        ),
        DataType::LargeUtf8 => count_distinct(
            sample
                .as_string::<i64>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
        ),
        DataType::Binary => count_distinct(sample.as_binary::<i32>().iter()),
        DataType::LargeBinary => count_distinct(sample.as_binary::<i64>().iter()),
        _ => match data_type.primitive_width() {
            Some(width) if sample.to_data().buffers().len() == 1 => {
                let data = sample.to_data();
                let start = data.offset() * width;
                let bytes = &data.buffers()[0].as_slice()[start..start + data.len() * width];
                count_distinct(
                    bytes
                        .chunks_exact(width)
                        .enumerate()
                        .map(|(i, value)| data.is_valid(i).then_some(value)),
                )
            }
            _ => {
                let field = SortField::new(data_type.clone());
                if !RowConverter::supports_fields(std::slice::from_ref(&field)) {
                    return None;
                }
                let converter = RowConverter::new(vec![field]).ok()?;
                let rows = converter
                    .convert_columns(std::slice::from_ref(&sample))
                    .ok()?;
                count_distinct(
                    rows.iter()
                        .enumerate()
                        .map(|(i, row)| sample.is_valid(i).then(|| row.data())),
                )
            }
        },
    };
    (values > 0).then(|| distinct as f64 / values as f64)
}

/// The number of distinct values and of values (`None` is null, neither).
fn count_distinct<'a>(values: impl Iterator<Item = Option<&'a [u8]>>) -> (usize, usize) {
    // The count is exact whatever the hasher: a faster one than std's
    // changes no decision.
    let mut distinct: datafusion::common::HashSet<&[u8]> = Default::default();
    let mut count = 0;
    for value in values.flatten() {
        count += 1;
        distinct.insert(value);
    }
    (distinct.len(), count)
}

/// Reads every row of a dataset version (its files in order).
pub async fn read_dataset(
    blobs: &Arc<dyn ObjectStore>,
    files: &[String],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    read_files(blobs, files, None).await
}

/// The first `n` rows of a dataset version.
pub async fn head(
    blobs: &Arc<dyn ObjectStore>,
    files: &[String],
    n: usize,
) -> Result<Vec<RecordBatch>> {
    Ok(read_files(blobs, files, Some(n)).await?.1)
}

async fn read_files(
    blobs: &Arc<dyn ObjectStore>,
    files: &[String],
    limit: Option<usize>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let Some(first) = files.first() else {
        return Err(Error::NoFiles {
            table: "<dataset>".to_owned(),
        });
    };
    let mut schema: Option<SchemaRef> = None;
    let mut batches = Vec::new();
    let mut left = limit;
    for key in files {
        let bytes = get_blob(blobs, key).await?;
        let mut builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| Error::parquet(key, e))?;
        let file_schema = builder.schema().clone();
        match &schema {
            None => schema = Some(file_schema),
            Some(s) if s.fields() != file_schema.fields() => {
                return Err(Error::InvalidSchema {
                    message: format!(
                        "file `{key}` has a different schema than `{first}`, the dataset's first file"
                    ),
                });
            }
            Some(_) => {}
        }
        if left == Some(0) {
            continue;
        }
        if let Some(n) = left {
            builder = builder.with_limit(n);
        }
        let reader = builder.build().map_err(|e| Error::parquet(key, e))?;
        for batch in reader {
            let batch = batch?;
            if let Some(n) = left.as_mut() {
                *n = n.saturating_sub(batch.num_rows());
            }
            batches.push(batch);
        }
    }
    match schema {
        Some(schema) => Ok((schema, batches)),
        None => Err(Error::Internal(
            "a dataset with files but no schema".to_owned(),
        )),
    }
}

async fn get_blob(blobs: &Arc<dyn ObjectStore>, key: &str) -> Result<Bytes> {
    let path = Path::parse(key).map_err(|e| Error::blob(key, e.into()))?;
    let found = blobs.get(&path).await.map_err(|e| Error::blob(key, e))?;
    found.bytes().await.map_err(|e| Error::blob(key, e))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::StringViewArray;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::parquet::basic::Encoding;
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    use object_store::memory::InMemory;

    use super::*;

    fn sample() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    #[tokio::test]
    async fn same_rows_same_key_and_bytes() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batch) = sample();
        let a = write_dataset(&blobs, schema.clone(), std::slice::from_ref(&batch))
            .await
            .unwrap();
        let b = write_dataset(&blobs, schema.clone(), &[batch])
            .await
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rows, 3);
        assert!(a.files[0].starts_with("datasets/") && a.files[0].ends_with(".parquet"));
        let bytes = get_blob(&blobs, &a.files[0]).await.unwrap();
        assert_eq!(bytes.len() as u64, a.bytes);
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(
            a.files[0],
            format!("datasets/{}.parquet", blake3::hash(&bytes).to_hex())
        );

        let reader = SerializedFileReader::new(bytes).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().created_by(), Some(CREATED_BY));
        for column in meta.row_group(0).columns() {
            assert!(
                matches!(column.compression(), Compression::ZSTD(_)),
                "{:?}",
                column.compression()
            );
        }
    }

    #[tokio::test]
    async fn different_rows_different_keys() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batch) = sample();
        let a = write_dataset(&blobs, schema.clone(), std::slice::from_ref(&batch))
            .await
            .unwrap();
        let b = write_dataset(&blobs, schema, &[batch.slice(0, 2)])
            .await
            .unwrap();
        assert_ne!(a.files, b.files);
    }

    #[tokio::test]
    async fn view_types_are_stored_as_plain_types() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batch) = sample();
        let view_schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, true),
        ]));
        let view_batch = RecordBatch::try_new(
            view_schema.clone(),
            vec![
                batch.column(0).clone(),
                Arc::new(StringViewArray::from(vec![Some("a"), None, Some("c")])),
            ],
        )
        .unwrap();
        let plain = write_dataset(&blobs, schema, &[batch]).await.unwrap();
        let view = write_dataset(&blobs, view_schema, &[view_batch])
            .await
            .unwrap();
        assert_eq!(plain, view);
        assert_eq!(view.schema["fields"][1]["type"], "Utf8");
    }

    #[tokio::test]
    async fn zero_rows_keep_the_schema() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, _) = sample();
        let out = write_dataset(&blobs, schema.clone(), &[]).await.unwrap();
        assert_eq!(out.rows, 0);
        let (read, batches) = read_dataset(&blobs, &out.files).await.unwrap();
        assert_eq!(read.fields(), schema.fields());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }

    #[tokio::test]
    async fn read_and_head() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batch) = sample();
        let out = write_dataset(&blobs, schema.clone(), std::slice::from_ref(&batch))
            .await
            .unwrap();
        let (read, batches) = read_dataset(&blobs, &out.files).await.unwrap();
        assert_eq!(read.fields(), schema.fields());
        assert_eq!(batches, vec![batch.clone()]);

        let two_files = [out.files[0].clone(), out.files[0].clone()];
        let rows = |b: &[RecordBatch]| b.iter().map(|b| b.num_rows()).sum::<usize>();
        assert_eq!(rows(&head(&blobs, &two_files, 2).await.unwrap()), 2);
        assert_eq!(rows(&head(&blobs, &two_files, 5).await.unwrap()), 5);
        assert_eq!(rows(&head(&blobs, &two_files, 0).await.unwrap()), 0);
        assert_eq!(rows(&head(&blobs, &two_files, 100).await.unwrap()), 6);
    }

    /// `rows` rows of (`id` unique, `kind` one of four strings), in batches
    /// of `batch_rows`.
    fn numbered(rows: usize, batch_rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, true),
        ]));
        let kinds = ["paid", "shipped", "cancelled", "refunded"];
        let batches = (0..rows)
            .step_by(batch_rows)
            .map(|start| {
                let end = (start + batch_rows).min(rows);
                let ids = (start..end).map(|i| i as i64);
                let kind = (start..end).map(|i| (i % 7 != 0).then_some(kinds[i % 4]));
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter_values(ids)),
                        Arc::new(kind.collect::<StringArray>()),
                    ],
                )
                .unwrap()
            })
            .collect();
        (schema, batches)
    }

    fn ids(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
        concat_batches(schema, batches).unwrap()
    }

    #[test]
    fn rows_are_split_at_fixed_boundaries() {
        let rows = |parts: &[Vec<RecordBatch>]| {
            parts
                .iter()
                .map(|p| p.iter().map(RecordBatch::num_rows).sum::<usize>())
                .collect::<Vec<_>>()
        };
        let (schema, batches) = numbered(2500, 700);
        let parts = split_rows(&batches, 1000);
        assert_eq!(rows(&parts), [1000, 1000, 500]);
        assert_eq!(ids(&parts.concat()), (0..2500).collect::<Vec<_>>());
        // The same rows in other batches (and empty ones) split the same.
        let (_, other) = numbered(2500, 1000);
        let mut other = other;
        other.insert(1, other[0].slice(0, 0));
        let other_parts = split_rows(&other, 1000);
        for (a, b) in parts.iter().zip(&other_parts) {
            assert_eq!(concat(&schema, a), concat(&schema, b));
        }
        assert!(other_parts.iter().flatten().all(|b| b.num_rows() > 0));

        assert_eq!(
            rows(&split_rows(&numbered(2000, 300).1, 1000)),
            [1000, 1000]
        );
        assert_eq!(rows(&split_rows(&numbered(999, 300).1, 1000)), [999]);
        assert_eq!(rows(&split_rows(&[], 1000)), [0]);
    }

    #[tokio::test]
    async fn large_datasets_are_several_files_in_row_order() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batches) = numbered(2500, 300);
        let out = write_files(&blobs, schema.clone(), &batches, 1000)
            .await
            .unwrap();
        assert_eq!(out.files.len(), 3);
        assert_eq!(out.rows, 2500);
        let mut bytes = 0;
        for key in &out.files {
            let file = get_blob(&blobs, key).await.unwrap();
            assert_eq!(
                *key,
                format!("datasets/{}.parquet", blake3::hash(&file).to_hex())
            );
            bytes += file.len() as u64;
        }
        assert_eq!(out.bytes, bytes);

        let (read, back) = read_dataset(&blobs, &out.files).await.unwrap();
        assert_eq!(read.fields(), schema.fields());
        assert_eq!(concat(&schema, &back), concat(&schema, &batches));
        let first = head(&blobs, &out.files, 1500).await.unwrap();
        assert_eq!(ids(&first), (0..1500).collect::<Vec<_>>());

        // The same rows, batched differently, give the same files.
        let (_, rebatched) = numbered(2500, 1000);
        let again = write_files(&blobs, schema.clone(), &rebatched, 1000)
            .await
            .unwrap();
        assert_eq!(again, out);

        // Each file is exactly the one-file dataset of its rows: the keys
        // differ from a one-file write only by the split.
        for (i, key) in out.files.iter().enumerate() {
            let rows = concat(&schema, &batches).slice(i * 1000, (1000).min(2500 - i * 1000));
            let alone = write_dataset(&blobs, schema.clone(), &[rows])
                .await
                .unwrap();
            assert_eq!(alone.files, std::slice::from_ref(key));
        }
        let whole = write_dataset(&blobs, schema.clone(), &batches)
            .await
            .unwrap();
        assert_eq!(whole.files.len(), 1);
        assert!(!out.files.contains(&whole.files[0]));
        let (_, whole_back) = read_dataset(&blobs, &whole.files).await.unwrap();
        assert_eq!(concat(&schema, &whole_back), concat(&schema, &back));
    }

    #[test]
    fn the_writer_gets_batches_of_fixed_length() {
        let lengths = |batches: &[RecordBatch]| {
            let (schema, _) = numbered(0, 1);
            rebatch(&schema, batches)
                .unwrap()
                .iter()
                .map(RecordBatch::num_rows)
                .collect::<Vec<_>>()
        };
        let (schema, batches) = numbered(20_000, 700);
        assert_eq!(lengths(&batches), [8192, 8192, 3616]);
        assert_eq!(
            concat(&schema, &rebatch(&schema, &batches).unwrap()),
            concat(&schema, &batches)
        );
        assert_eq!(lengths(&numbered(20_000, 20_000).1), [8192, 8192, 3616]);
        assert_eq!(lengths(&numbered(100, 30).1), [100]);
        assert!(lengths(&[]).is_empty());
        assert!(lengths(&[batches[0].slice(0, 0)]).is_empty());
    }

    #[tokio::test]
    async fn batching_does_not_change_the_bytes() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        // Enough rows for several data pages (a page has at most 20,000),
        // in batches with and without nulls (`kind`).
        let (schema, batches) = numbered(50_000, 300);
        let a = write_dataset(&blobs, schema.clone(), &batches)
            .await
            .unwrap();
        for batch_rows in [3, 1000, 7777, 8192, 50_000] {
            let (_, batches) = numbered(50_000, batch_rows);
            let b = write_dataset(&blobs, schema.clone(), &batches)
                .await
                .unwrap();
            assert_eq!(a, b, "batches of {batch_rows} rows");
        }
    }

    #[tokio::test]
    async fn small_datasets_are_one_file() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batches) = numbered(2500, 300);
        let out = write_dataset(&blobs, schema, &batches).await.unwrap();
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.rows, 2500);
        let (schema, batches) = numbered(1000, 300);
        let out = write_files(&blobs, schema, &batches, 1000).await.unwrap();
        assert_eq!(out.files.len(), 1);
    }

    #[tokio::test]
    async fn view_types_split_like_plain_types() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batches) = numbered(2500, 300);
        let view_schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("kind", DataType::Utf8View, true),
        ]));
        let view_batches = batches
            .iter()
            .map(|b| {
                let kind = cast(b.column(1), &DataType::Utf8View).unwrap();
                RecordBatch::try_new(view_schema.clone(), vec![b.column(0).clone(), kind]).unwrap()
            })
            .collect::<Vec<_>>();
        let plain = write_files(&blobs, schema, &batches, 1000).await.unwrap();
        let view = write_files(&blobs, view_schema, &view_batches, 1000)
            .await
            .unwrap();
        assert_eq!(plain, view);
    }

    #[test]
    fn distinct_fractions_of_every_kind_of_column() {
        use datafusion::arrow::array::{
            ArrayRef, BooleanArray, Decimal128Array, FixedSizeBinaryArray, Float64Array,
            LargeStringArray, ListArray, TimestampSecondArray,
        };
        use datafusion::arrow::datatypes::Int64Type;

        let fraction = |column: ArrayRef| {
            let schema = Arc::new(Schema::new(vec![Field::new(
                "c",
                column.data_type().clone(),
                true,
            )]));
            let batch = RecordBatch::try_new(schema, vec![column.clone()]).unwrap();
            // Split in two batches: the sample spans them.
            let halves = [batch.slice(0, 2), batch.slice(2, batch.num_rows() - 2)];
            distinct_fraction(column.data_type(), &halves, 0)
        };
        // Four values, two of them the same (and nulls, not counted).
        assert_eq!(
            fraction(Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("b"),
                Some("a"),
                Some("c")
            ]))),
            Some(0.75)
        );
        assert_eq!(
            fraction(Arc::new(LargeStringArray::from(vec!["a", "b", "a", "c"]))),
            Some(0.75)
        );
        assert_eq!(
            fraction(Arc::new(Int64Array::from(vec![
                Some(1),
                Some(2),
                None,
                Some(1),
                Some(3)
            ]))),
            Some(0.75)
        );
        assert_eq!(
            fraction(Arc::new(Float64Array::from(vec![0.5, 1.5, 0.5, 2.5]))),
            Some(0.75)
        );
        assert_eq!(
            fraction(Arc::new(TimestampSecondArray::from(vec![7, 8, 7, 9]))),
            Some(0.75)
        );
        assert_eq!(
            fraction(Arc::new(
                Decimal128Array::from(vec![100, 200, 100, 300])
                    .with_precision_and_scale(10, 2)
                    .unwrap()
            )),
            Some(0.75)
        );
        let fixed =
            FixedSizeBinaryArray::try_from_iter([b"ab", b"cd", b"ab", b"ef"].into_iter()).unwrap();
        assert_eq!(fraction(Arc::new(fixed)), Some(0.75));
        // A slice (here the only one) starts at its own first value and null.
        let sliced = Int64Array::from(vec![
            Some(9),
            None,
            Some(1),
            None,
            Some(2),
            Some(1),
            Some(3),
        ]);
        let sliced: ArrayRef = Arc::new(sliced.slice(2, 5));
        let schema = Arc::new(Schema::new(vec![Field::new("c", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(schema, vec![sliced]).unwrap();
        assert_eq!(distinct_fraction(&DataType::Int64, &[batch], 0), Some(0.75));
        let sliced = Int64Array::from(vec![9, 9, 9, 1, 2, 1, 3]).slice(3, 4);
        assert_eq!(fraction(Arc::new(sliced)), Some(0.75));
        // No decision: no values, booleans, nested columns.
        assert_eq!(
            fraction(Arc::new(Int64Array::from(vec![None, None, None]))),
            None
        );
        assert_eq!(
            fraction(Arc::new(BooleanArray::from(vec![true, false, true]))),
            None
        );
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>([
            Some(vec![Some(1)]),
            None,
            Some(vec![]),
        ]);
        assert_eq!(fraction(Arc::new(list)), None);
    }

    #[tokio::test]
    async fn dictionaries_only_where_values_repeat() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (schema, batches) = numbered(5000, 1000);
        let out = write_dataset(&blobs, schema, &batches).await.unwrap();
        let bytes = get_blob(&blobs, &out.files[0]).await.unwrap();
        let reader = SerializedFileReader::new(bytes).unwrap();
        let chunks = reader.metadata().row_group(0).columns().to_vec();
        let dictionary = |i: usize| {
            let encodings = chunks[i].encodings().collect::<Vec<_>>();
            let dictionary = encodings.contains(&Encoding::RLE_DICTIONARY);
            assert_eq!(dictionary, chunks[i].dictionary_page_offset().is_some());
            dictionary
        };
        assert_eq!(chunks[0].column_path().string(), "id");
        assert!(!dictionary(0), "unique ids have no dictionary");
        assert!(dictionary(1), "four kinds have a dictionary");
    }

    #[tokio::test]
    async fn missing_and_corrupt_files_are_errors() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let err = read_dataset(&blobs, &["datasets/nope.parquet".to_owned()])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Blob { .. }), "{err}");
        assert!(err.to_string().contains("datasets/nope.parquet"), "{err}");

        blobs
            .put(
                &Path::from("datasets/bad.parquet"),
                PutPayload::from("not parquet"),
            )
            .await
            .unwrap();
        let err = read_dataset(&blobs, &["datasets/bad.parquet".to_owned()])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Parquet { .. }), "{err}");
        assert!(matches!(
            read_dataset(&blobs, &[]).await.unwrap_err(),
            Error::NoFiles { .. }
        ));
    }
}
