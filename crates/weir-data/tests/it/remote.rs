//! `load` from `http://` URLs, served by a real HTTP/1.1 server on a
//! loopback port that each test starts (raw sockets: no mock library).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use weir_data::{LoadAction, LoadSpec};
use weir_exec::{Action, ActionError, TaskContext, TaskOutput};

use crate::{Fixture, assert_contains, dataset_rows};

/// What the server answers on a path.
#[derive(Clone)]
enum Reply {
    /// 200 with a `Content-Length`.
    Body(Vec<u8>),
    /// 200 with `Transfer-Encoding: chunked` (no length known up front).
    Chunked(Vec<u8>),
    /// 200 with the body when the request's `Authorization` header is this
    /// value, else 401.
    Auth {
        authorization: String,
        body: Vec<u8>,
    },
    /// Headers announcing 100 MB and a first line, then nothing until the
    /// client goes away.
    Stall,
}

/// A server on `127.0.0.1`, answering 404 on paths it does not know. It
/// stops with the test's runtime.
struct Server {
    addr: SocketAddr,
    /// Each request's head (request line and headers).
    requests: Arc<Mutex<Vec<String>>>,
    /// Notified when a `Stall` reply has sent its headers.
    stalled: Arc<Notify>,
    /// Notified when the client of a `Stall` reply closed the connection.
    closed: Arc<Notify>,
}

impl Server {
    async fn start(routes: &[(&str, Reply)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            stalled: Arc::default(),
            closed: Arc::default(),
        };
        let routes: Arc<HashMap<String, Reply>> = Arc::new(
            routes
                .iter()
                .map(|(path, reply)| ((*path).to_owned(), reply.clone()))
                .collect(),
        );
        let (requests, stalled, closed) = (
            server.requests.clone(),
            server.stalled.clone(),
            server.closed.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (routes, requests) = (routes.clone(), requests.clone());
                let (stalled, closed) = (stalled.clone(), closed.clone());
                tokio::spawn(async move {
                    answer(stream, &routes, &requests, &stalled, &closed).await;
                });
            }
        });
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn answer(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    requests: &Mutex<Vec<String>>,
    stalled: &Notify,
    closed: &Notify,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    requests.lock().unwrap().push(head.clone());
    let target = head.split(' ').nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or(target);
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let reply = |status: &str, extra: &str, body: &[u8]| {
        let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n{extra}\r\n").into_bytes();
        out.extend_from_slice(body);
        out
    };
    let with_length = |status: &str, body: &[u8]| {
        reply(status, &format!("Content-Length: {}\r\n", body.len()), body)
    };
    let bytes = match routes.get(path) {
        None => with_length("404 Not Found", b"no such file"),
        Some(Reply::Body(body)) => with_length("200 OK", body),
        Some(Reply::Chunked(body)) => {
            let mut chunked = Vec::new();
            for chunk in body.chunks(7) {
                write!(chunked, "{:x}\r\n", chunk.len()).unwrap();
                chunked.extend_from_slice(chunk);
                chunked.extend_from_slice(b"\r\n");
            }
            chunked.extend_from_slice(b"0\r\n\r\n");
            reply("200 OK", "Transfer-Encoding: chunked\r\n", &chunked)
        }
        Some(Reply::Auth {
            authorization,
            body,
        }) => {
            if header("authorization").as_deref() == Some(authorization) {
                with_length("200 OK", body)
            } else {
                with_length("401 Unauthorized", b"who are you?")
            }
        }
        Some(Reply::Stall) => {
            let start = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\na,b\n1,2\n";
            if stream.write_all(start).await.is_err() {
                return;
            }
            stalled.notify_one();
            // Nothing more is sent; wait for the client to hang up.
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            closed.notify_one();
            return;
        }
    };
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

fn spec(value: serde_json::Value) -> LoadSpec {
    serde_json::from_value(value).unwrap()
}

async fn load(fx: &Fixture, value: serde_json::Value) -> Result<TaskOutput, ActionError> {
    LoadAction.run(spec(value), fx.context("orders")).await
}

fn message(err: ActionError) -> String {
    match err {
        ActionError::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn logged(fx: &Fixture) -> String {
    fx.log.0.lock().unwrap().join("\n")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

const ORDERS: &str = "id,customer,amount\n1,ann,10.5\n2,bob,\n3,cy,7\n";

#[tokio::test]
async fn csv_over_http_loads_the_rows() {
    let server = Server::start(&[("/exports/orders.csv", Reply::Body(ORDERS.into()))]).await;
    let fx = Fixture::on_disk();
    let url = server.url("/exports/orders.csv?day=2026-01-02");
    let out = load(&fx, json!({"path": url, "cast": {"amount": "string"}}))
        .await
        .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 3);
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        ["id,customer,amount", "1,ann,10.5", "2,bob,", "3,cy,7"]
    );
    // Streamed into the task's working directory under the URL's file name,
    // with the query string sent as written.
    assert_eq!(
        std::fs::read_to_string(fx.work.path().join("orders.csv")).unwrap(),
        ORDERS
    );
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "no hidden retries: {requests:?}");
    assert!(
        requests[0].starts_with("GET /exports/orders.csv?day=2026-01-02 HTTP/1.1"),
        "{}",
        requests[0]
    );
    let log = logged(&fx);
    assert_contains(
        &log,
        &format!(
            "downloaded {} bytes from `{}` in ",
            ORDERS.len(),
            server.url("/exports/orders.csv?day=***")
        ),
    );
    assert_contains(&log, "read 3 rows from 1 file");
}

#[tokio::test]
async fn csv_gz_over_http_with_csv_options() {
    let body = gzip(b"id;name\n1;NA\n2;bo\n");
    let server = Server::start(&[("/landing/people.csv.gz", Reply::Body(body.clone()))]).await;
    let fx = Fixture::on_disk();
    let out = load(
        &fx,
        json!({
            "path": server.url("/landing/people.csv.gz"),
            "delimiter": ";",
            "null_values": ["NA"],
        }),
    )
    .await
    .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        ["id,name", "1,", "2,bo"]
    );
    // Kept compressed on disk: the reader decompresses, as for a local file.
    assert_eq!(
        std::fs::read(fx.work.path().join("people.csv.gz")).unwrap(),
        body
    );
}

#[tokio::test]
async fn json_via_format_from_a_chunked_response() {
    let server = Server::start(&[(
        "/api/export",
        Reply::Chunked(br#"[{"id": 1, "tag": "a"}, {"id": 2}]"#.to_vec()),
    )])
    .await;
    let fx = Fixture::on_disk();
    let url = server.url("/api/export?format=json");
    // Without an extension the format cannot be told (before downloading)...
    let err = message(load(&fx, json!({"path": url})).await.unwrap_err());
    assert_contains(
        &err,
        &format!(
            "cannot tell the format of `{}`",
            server.url("/api/export?format=***")
        ),
    );
    assert!(server.requests.lock().unwrap().is_empty());
    // ...and `format:` says it.
    let out = load(&fx, json!({"path": url, "format": "json"}))
        .await
        .unwrap();
    let dataset = out.dataset.unwrap();
    assert_eq!(dataset.rows, 2);
    assert_eq!(
        dataset_rows(&fx.blobs, &dataset).await,
        ["id,tag", "1,a", "2,"]
    );
}

#[tokio::test]
async fn a_404_names_the_status_and_the_url() {
    let server = Server::start(&[]).await;
    let fx = Fixture::on_disk();
    let url = server.url("/missing.csv");
    let err = message(load(&fx, json!({"path": url})).await.unwrap_err());
    assert_contains(&err, &format!("`{url}`"));
    assert_contains(&err, "404 Not Found");
    assert_contains(&err, "hint: ");
    assert!(
        !fx.work.path().join("missing.csv").exists(),
        "nothing is kept from an error page"
    );
}

#[tokio::test]
async fn an_unreachable_server_names_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let fx = Fixture::on_disk();
    let url = format!("http://{addr}/a.csv");
    let err = message(load(&fx, json!({"path": url})).await.unwrap_err());
    assert_contains(&err, &format!("could not download `{url}`"));
    assert_contains(&err, "hint: check the host name and port");
}

#[tokio::test]
async fn credentials_are_sent_but_never_shown() {
    let server = Server::start(&[(
        "/private/orders.csv",
        Reply::Auth {
            // `ann:s3cr3tpw` in base64.
            authorization: "Basic YW5uOnMzY3IzdHB3".to_owned(),
            body: ORDERS.into(),
        },
    )])
    .await;
    let addr = server.addr;
    let fx = Fixture::on_disk();

    let wrong = format!("http://ann:wr0ngpw@{addr}/private/orders.csv?token=t0ps3cret");
    let err = message(load(&fx, json!({"path": wrong})).await.unwrap_err());
    assert_contains(&err, "401 Unauthorized");
    assert_contains(
        &err,
        &format!("`http://{addr}/private/orders.csv?token=***`"),
    );

    let right = format!("http://ann:s3cr3tpw@{addr}/private/orders.csv?token=t0ps3cret");
    let out = load(&fx, json!({"path": right})).await.unwrap();
    assert_eq!(out.dataset.unwrap().rows, 3);

    let log = logged(&fx);
    assert_contains(&log, "downloaded ");
    for secret in ["wr0ngpw", "s3cr3tpw", "t0ps3cret", "ann:"] {
        assert!(!err.contains(secret), "`{secret}` in the error:\n{err}");
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}

/// Starts a load of the stalling URL and waits until the server has sent
/// the first bytes.
async fn stalled_load(server: &Server, cx: TaskContext) -> tokio::task::JoinHandle<ActionError> {
    let path = server.url("/big.csv");
    let task = tokio::spawn(async move {
        LoadAction
            .run(spec(json!({"path": path})), cx)
            .await
            .unwrap_err()
    });
    tokio::time::timeout(Duration::from_secs(30), server.stalled.notified())
        .await
        .expect("the load never reached the server");
    task
}

#[tokio::test]
async fn cancellation_mid_download_stops_it() {
    let server = Server::start(&[("/big.csv", Reply::Stall)]).await;
    let fx = Fixture::on_disk();
    let cx = fx.context("orders");
    let cancel = cx.cancel.clone();
    let task = stalled_load(&server, cx).await;
    cancel.cancel();
    // Bounds that only catch a hang: the idle timeout is minutes.
    let err = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the load did not stop when cancelled")
        .unwrap();
    assert!(matches!(err, ActionError::Cancelled { .. }), "{err:?}");
    tokio::time::timeout(Duration::from_secs(30), server.closed.notified())
        .await
        .expect("the connection stayed open after cancelling");
}

#[tokio::test]
async fn the_step_timeout_bounds_the_download() {
    let server = Server::start(&[("/big.csv", Reply::Stall)]).await;
    let fx = Fixture::on_disk();
    let mut cx = fx.context("orders");
    cx.timeout = Some(Duration::from_millis(300));
    let task = stalled_load(&server, cx).await;
    let err = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the load outlived its timeout")
        .unwrap();
    assert!(matches!(err, ActionError::TimedOut { .. }), "{err:?}");
    tokio::time::timeout(Duration::from_secs(30), server.closed.notified())
        .await
        .expect("the connection stayed open after the timeout");
}

#[test]
fn check_accepts_urls_and_rejects_other_remote_stores() {
    let check = |value: serde_json::Value| LoadAction.check(&spec(value));
    let codes = |value: serde_json::Value| -> Vec<String> {
        check(value).into_iter().map(|d| d.code).collect()
    };
    assert!(codes(json!({"path": "https://x/a.csv"})).is_empty());
    assert!(codes(json!({"path": "http://x/a.csv.gz?sig=abc"})).is_empty());
    assert!(codes(json!({"path": "https://x/{{ params.f }}.csv"})).is_empty());
    assert!(codes(json!({"path": "https://x/exports/{{ params.f }}"})).is_empty());
    assert!(codes(json!({"path": "https://x/api?f=1", "format": "ndjson"})).is_empty());
    // CSV options still have to fit the format read from the URL.
    assert_eq!(
        codes(json!({"path": "https://x/a.parquet", "delimiter": ";"})),
        ["invalid-csv-option"]
    );
    let d = check(json!({"path": "https://user:pw@x/api?key=k3y"}));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "unknown-format");
    assert_contains(&d[0].message, "`https://x/api?key=***`");

    let d = check(json!({"path": "s3://b/a.csv"}));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "unsupported-path");
    assert_contains(
        &d[0].message,
        "`s3://` paths (`s3://b/a.csv`) is not supported yet",
    );
    assert_eq!(codes(json!({"path": "gs://b/a.csv"})), ["unsupported-path"]);

    let d = check(json!({"path": "https://x/data/*.csv"}));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "unsupported-path");
    assert_contains(&d[0].message, "globs are only for local paths");
}

#[tokio::test]
async fn globs_and_other_stores_fail_when_the_step_runs() {
    let fx = Fixture::on_disk();
    let err = message(
        load(&fx, json!({"path": "http://127.0.0.1:9/data/*.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&err, "globs are only for local paths");
    let err = message(
        load(&fx, json!({"path": "s3://b/a.csv"}))
            .await
            .unwrap_err(),
    );
    assert_contains(&err, "not supported yet");
}
