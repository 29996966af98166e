//! The blob store on a real directory.

use bytes::Bytes;
use tempfile::TempDir;
use weir_store::{BlobStore, Error};

fn open() -> (TempDir, BlobStore) {
    let dir = TempDir::new().expect("temp dir");
    // A directory that does not exist yet: `open` creates it.
    let store = BlobStore::open(&dir.path().join("blobs").display().to_string()).expect("open");
    (dir, store)
}

#[tokio::test]
async fn put_get_exists_delete() {
    let (dir, blobs) = open();
    assert_eq!(blobs.get("a/b.txt").await.expect("get"), None);
    assert!(!blobs.exists("a/b.txt").await.expect("exists"));

    blobs
        .put("a/b.txt", Bytes::from_static(b"one"))
        .await
        .expect("put");
    assert_eq!(
        blobs.get("a/b.txt").await.expect("get"),
        Some(Bytes::from_static(b"one"))
    );
    assert!(blobs.exists("a/b.txt").await.expect("exists"));
    assert!(
        dir.path().join("blobs/a/b.txt").is_file(),
        "a plain file on disk"
    );

    blobs
        .put("a/b.txt", Bytes::from_static(b"two"))
        .await
        .expect("overwrite");
    assert_eq!(
        blobs.get("a/b.txt").await.expect("get"),
        Some(Bytes::from_static(b"two"))
    );

    blobs.delete("a/b.txt").await.expect("delete");
    assert_eq!(blobs.get("a/b.txt").await.expect("get"), None);
    blobs
        .delete("a/b.txt")
        .await
        .expect("deleting a missing blob is fine");

    blobs.put("empty", Bytes::new()).await.expect("put empty");
    assert_eq!(blobs.get("empty").await.expect("get"), Some(Bytes::new()));
}

#[tokio::test]
async fn list_matches_whole_segments_sorted() {
    let (_dir, blobs) = open();
    for key in [
        "logs/10/a/1.log",
        "logs/1/b/1.log",
        "logs/1/a/2.log",
        "logs/1/a/1.log",
        "data/x",
    ] {
        blobs.put(key, Bytes::from_static(b"x")).await.expect("put");
    }
    assert_eq!(
        blobs.list("logs/1").await.expect("list"),
        ["logs/1/a/1.log", "logs/1/a/2.log", "logs/1/b/1.log"]
    );
    assert_eq!(blobs.list("logs/1/").await.expect("list").len(), 3);
    assert_eq!(blobs.list("").await.expect("list").len(), 5);
    assert!(blobs.list("nothing/here").await.expect("list").is_empty());
}

#[tokio::test]
async fn bad_keys_and_urls_are_errors() {
    let (_dir, blobs) = open();
    for key in ["../escape", "a/../b", "a//b"] {
        let err = blobs
            .put(key, Bytes::from_static(b"x"))
            .await
            .expect_err(key);
        assert!(
            matches!(&err, Error::Blob { key: k, .. } if k == key),
            "{err:?}"
        );
    }
    let err = BlobStore::open("s3://bucket/prefix").expect_err("no s3 yet");
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
}

#[tokio::test]
async fn file_urls_open_the_directory() {
    let dir = TempDir::new().expect("temp dir");
    let url = format!("file://{}", dir.path().join("store").display());
    let blobs = BlobStore::open(&url).expect("open file url");
    blobs.put("k", Bytes::from_static(b"v")).await.expect("put");
    assert!(dir.path().join("store/k").is_file());
    assert_eq!(blobs.url(), url);
}
