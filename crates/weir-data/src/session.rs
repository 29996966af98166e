//! DataFusion sessions that read datasets straight from the blob store.
//!
//! Dataset tables are named like the lake: catalog = namespace, schema =
//! pipeline, table = step. A step's session defaults to its own namespace
//! and pipeline, so `orders` is a step of the same pipeline, `crm.customers`
//! a step of pipeline `crm` in the same namespace, and `acme.crm.customers`
//! one of another namespace.

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;

use crate::error::{Error, Result};

/// The URL under which a session sees the blob store: a dataset file with
/// key `datasets/<hash>.parquet` is `weir-blobs://store/datasets/<hash>.parquet`.
pub const BLOBS_URL: &str = "weir-blobs://store/";

/// A session over `blobs` whose bare table names resolve in
/// `default_catalog`.`default_schema` (namespace and pipeline).
pub fn session(
    blobs: Arc<dyn ObjectStore>,
    default_catalog: &str,
    default_schema: &str,
) -> SessionContext {
    session_with_runtime(
        blobs,
        default_catalog,
        default_schema,
        Arc::new(RuntimeEnv::default()),
    )
}

/// [`session`] with its own runtime (memory pool, spill directory).
pub fn session_with_runtime(
    blobs: Arc<dyn ObjectStore>,
    default_catalog: &str,
    default_schema: &str,
    runtime: Arc<RuntimeEnv>,
) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(default_catalog, default_schema)
        .with_create_default_catalog_and_schema(true)
        .with_information_schema(true);
    // Errors then say where in the query they are.
    config.options_mut().sql_parser.collect_spans = true;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    ctx.register_object_store(blobs_url().as_ref(), blobs);
    ctx
}

fn blobs_url() -> ObjectStoreUrl {
    #[expect(
        clippy::expect_used,
        reason = "a constant URL, checked by the `blobs_url_parses` test"
    )]
    ObjectStoreUrl::parse(BLOBS_URL).expect("BLOBS_URL is a valid URL")
}

/// Registers the Parquet files `files` (blob keys) as the table
/// `catalog`.`schema`.`table`, creating the catalog and schema as needed.
/// Names are used exactly as given (no case folding).
pub async fn register_dataset(
    ctx: &SessionContext,
    catalog: &str,
    schema: &str,
    table: &str,
    files: &[String],
) -> Result<()> {
    if files.is_empty() {
        return Err(Error::NoFiles {
            table: format!("{catalog}.{schema}.{table}"),
        });
    }
    let catalog_provider: Arc<dyn CatalogProvider> = match ctx.catalog(catalog) {
        Some(c) => c,
        None => {
            let c = Arc::new(MemoryCatalogProvider::new());
            ctx.register_catalog(catalog, c.clone());
            c
        }
    };
    let schema_provider = match catalog_provider.schema(schema) {
        Some(s) => s,
        None => {
            let s = Arc::new(MemorySchemaProvider::new());
            catalog_provider.register_schema(schema, s.clone())?;
            s
        }
    };
    let urls = files
        .iter()
        .map(|key| ListingTableUrl::parse(format!("{BLOBS_URL}{key}")))
        .collect::<Result<Vec<_>, _>>()?;
    let state = ctx.state();
    let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&state)
        .await?;
    let provider = ListingTable::try_new(config)?;
    schema_provider.register_table(table.to_owned(), Arc::new(provider))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use object_store::memory::InMemory;

    use super::*;
    use crate::dataset::write_dataset;

    #[test]
    fn blobs_url_parses() {
        assert_eq!(blobs_url().as_str(), BLOBS_URL);
    }

    async fn dataset(blobs: &Arc<dyn ObjectStore>, values: Vec<i64>) -> Vec<String> {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]).unwrap();
        write_dataset(blobs, schema, &[batch]).await.unwrap().files
    }

    async fn sum(ctx: &SessionContext, sql: &str) -> i64 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column = batches[0].column(0);
        column
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    #[tokio::test]
    async fn one_two_and_three_part_names_resolve() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ctx = session(blobs.clone(), "acme", "sales");
        let a = dataset(&blobs, vec![1, 2]).await;
        let b = dataset(&blobs, vec![10]).await;
        let c = dataset(&blobs, vec![100, 200]).await;
        register_dataset(&ctx, "acme", "sales", "orders", &a)
            .await
            .unwrap();
        register_dataset(&ctx, "acme", "crm", "customers", &b)
            .await
            .unwrap();
        register_dataset(&ctx, "other", "crm", "customers", &c)
            .await
            .unwrap();

        assert_eq!(sum(&ctx, "SELECT sum(n) FROM orders").await, 3);
        assert_eq!(sum(&ctx, "SELECT sum(n) FROM crm.customers").await, 10);
        assert_eq!(
            sum(&ctx, "SELECT sum(n) FROM other.crm.customers").await,
            300
        );
        // Several files are one table.
        let both = [a[0].clone(), c[0].clone()];
        register_dataset(&ctx, "acme", "sales", "both", &both)
            .await
            .unwrap();
        assert_eq!(sum(&ctx, "SELECT sum(n) FROM both").await, 303);

        let err = ctx.sql("SELECT * FROM nope").await.unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[tokio::test]
    async fn no_files_is_an_error() {
        let blobs: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ctx = session(blobs, "a", "b");
        let err = register_dataset(&ctx, "a", "b", "c", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NoFiles { .. }), "{err}");
    }
}
