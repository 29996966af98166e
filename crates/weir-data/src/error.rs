//! The crate's one error type.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::parquet::errors::ParquetError;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reading, writing or querying datasets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Planning or executing a query failed; the message is DataFusion's own
    /// (it names the unknown column, the bad type, ...).
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("Arrow error: {0}")]
    Arrow(#[from] ArrowError),
    /// Encoding or decoding a Parquet file failed.
    #[error("Parquet file `{key}`: {source}")]
    Parquet {
        /// The blob key, or `<memory>` while encoding.
        key: String,
        #[source]
        source: ParquetError,
    },
    /// Reading or writing a blob failed.
    #[error("blob `{key}`: {source}")]
    Blob {
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// A schema in weir's JSON form that does not describe an Arrow schema.
    #[error("invalid dataset schema: {message}")]
    InvalidSchema { message: String },
    /// A dataset version with no files: there is nothing to read a schema from.
    #[error("dataset `{table}` has no files")]
    NoFiles { table: String },
    /// Something this crate assumed about its own data does not hold.
    #[error("internal error (this is a bug in weir): {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn blob(key: impl Into<String>, source: object_store::Error) -> Self {
        Error::Blob {
            key: key.into(),
            source,
        }
    }

    pub(crate) fn parquet(key: impl Into<String>, source: ParquetError) -> Self {
        Error::Parquet {
            key: key.into(),
            source,
        }
    }
}
