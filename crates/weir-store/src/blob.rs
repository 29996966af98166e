//! Blobs (datasets, artifacts, finished logs) over `object_store`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{Error, Result};

/// A key-value store of immutable-ish blobs, keyed by `/`-separated paths
/// (`logs/42/clean/1.log`). Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore").field("url", &self.url).finish()
    }
}

impl BlobStore {
    /// Opens the store a URL names: a local directory as a plain path or a
    /// `file://` URL (created if missing). `s3://`, `gs://` and `az://` come
    /// with the cloud features.
    pub fn open(url: &str) -> Result<BlobStore> {
        let dir = match url.split_once("://") {
            None => url,
            Some(("file", path)) => path,
            Some(_) => {
                return Err(Error::InvalidUrl {
                    url: url.to_owned(),
                    reason: "this build stores blobs only on local disk (`file://DIR` or a path)",
                });
            }
        };
        if dir.is_empty() {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "expected a directory path",
            });
        }
        let dir = Path::new(dir);
        fs_err::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|source| Error::Blob {
                key: String::new(),
                source,
            })?
            // Deleting the last blob of a directory removes the directory.
            .with_automatic_cleanup(true);
        Ok(BlobStore {
            store: Arc::new(store),
            url: url.to_owned(),
        })
    }

    /// Wraps any `object_store` (an in-memory one in tests, a configured
    /// cloud store).
    pub fn new(store: Arc<dyn ObjectStore>, url: impl Into<String>) -> BlobStore {
        BlobStore {
            store,
            url: url.into(),
        }
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying store, to hand to DataFusion.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Writes `bytes` at `key`, replacing any previous blob atomically.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = parse_key(key)?;
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(blob_error(key))?;
        Ok(())
    }

    /// The blob at `key`, or `None` if there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let path = parse_key(key)?;
        match self.store.get(&path).await {
            Ok(found) => Ok(Some(found.bytes().await.map_err(blob_error(key))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(blob_error(key)(source)),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        let path = parse_key(key)?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(blob_error(key)(source)),
        }
    }

    /// Deletes the blob at `key`; deleting a missing blob is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = parse_key(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(blob_error(key)(source)),
        }
    }

    /// Every key under `prefix` (whole path segments: `logs/1` does not match
    /// `logs/10/...`), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.trim_end_matches('/');
        let path = if prefix.is_empty() {
            None
        } else {
            Some(parse_key(prefix)?)
        };
        let mut keys: Vec<String> = self
            .store
            .list(path.as_ref())
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(blob_error(prefix))?;
        keys.sort();
        Ok(keys)
    }
}

fn parse_key(key: &str) -> Result<ObjectPath> {
    ObjectPath::parse(key).map_err(|e| Error::Blob {
        key: key.to_owned(),
        source: e.into(),
    })
}

fn blob_error(key: &str) -> impl FnOnce(object_store::Error) -> Error + '_ {
    move |source| Error::Blob {
        key: key.to_owned(),
        source,
    }
}
