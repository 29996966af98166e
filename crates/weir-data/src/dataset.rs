//! Datasets in the blob store: Parquet files (ZSTD) at content-addressed keys.
//!
//! A file's key is `datasets/<blake3 of its bytes>.parquet`, so writing the
//! same data twice (a retried task) yields the same key and the same bytes,
//! and a version can never be overwritten by different data.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use weir_exec::DatasetOutput;

use crate::error::{Error, Result};
use crate::schema::schema_to_json;

/// Where dataset files live in the blob store.
pub const DATASET_PREFIX: &str = "datasets/";

/// Written into every file's footer instead of the Parquet library's default
/// (which carries its version): the same rows give the same bytes whatever
/// weir was built with.
const CREATED_BY: &str = "weir";

/// Encodes `batches` as one Parquet file (ZSTD) and stores it at its content
/// address, unless a file with that address is already there.
///
/// Zero batches (or zero rows) still write a valid file carrying `schema`.
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
    let (schema, batches) = canonical_types(schema, batches)?;
    let bytes = encode_parquet(&schema, &batches)?;
    let key = format!(
        "{DATASET_PREFIX}{}.parquet",
        blake3::hash(&bytes).to_hex().as_str()
    );
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
    Ok(DatasetOutput {
        files: vec![key],
        schema: schema_to_json(&schema),
        rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
        bytes: len,
    })
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

/// The Parquet bytes for `batches`; deterministic for the same input.
pub(crate) fn encode_parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(CREATED_BY.to_owned())
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(props))
        .map_err(|e| Error::parquet("<memory>", e))?;
    for batch in batches {
        if batch.schema().fields() != schema.fields() {
            return Err(Error::Internal(format!(
                "a batch's schema {:?} differs from the dataset's {:?}",
                batch.schema().fields(),
                schema.fields()
            )));
        }
        writer
            .write(batch)
            .map_err(|e| Error::parquet("<memory>", e))?;
    }
    writer.close().map_err(|e| Error::parquet("<memory>", e))?;
    Ok(Bytes::from(out))
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
