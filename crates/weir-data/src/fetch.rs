//! `http://` and `https://` paths for `load`: the file is streamed into the
//! task's working directory under its own name, then read like a local file.
//!
//! URLs are shown in messages and logs only through [`redact`]: a password in
//! `user:pass@` or a token in the query string must not reach a task log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufWriter};
use weir_exec::{ActionError, LogStream, TaskContext};

use crate::task::failed;

/// How long connecting (DNS, TCP, TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server may send nothing at all. The download as a whole is
/// bounded only by the step's `timeout:` and cancellation (`guarded`); this
/// keeps a step without a `timeout:` from holding its worker slot forever on
/// a server that stopped answering.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Writes are batched: a `tokio::fs` write is one blocking-pool hop, and
/// response chunks are a few KiB.
const WRITE_BUFFER: usize = 1 << 20;

/// The name a URL's file gets when its path has no last segment.
const FALLBACK_NAME: &str = "download";

/// Whether `path` is an `http://` or `https://` URL (in any case).
pub(crate) fn is_http(path: &str) -> bool {
    path.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    })
}

/// A URL cut at `://`, the end of the authority, `?` and `#`, without parsing
/// it (the URL may still hold `{{ templates }}`).
struct Parts<'a> {
    /// `https`, or the whole text when it has no `://`.
    scheme: Option<&'a str>,
    /// `user:pass@host:port`.
    authority: &'a str,
    /// From the first `/` after the authority, without query and fragment.
    path: &'a str,
    query: Option<&'a str>,
}

fn parts(url: &str) -> Parts<'_> {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let (before_query, query) = match url.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (url, None),
    };
    let Some((scheme, rest)) = before_query.split_once("://") else {
        return Parts {
            scheme: None,
            authority: "",
            path: before_query,
            query,
        };
    };
    let (authority, path) = rest.split_at(rest.find(['/', '\\']).unwrap_or(rest.len()));
    Parts {
        scheme: Some(scheme),
        authority,
        path,
        query,
    }
}

/// The path part of a URL (no host, query or fragment), where its file name
/// and so its format are read from.
pub(crate) fn url_path(url: &str) -> &str {
    parts(url).path
}

/// Whether the URL's path holds a `*`, which would be a glob in a local path.
pub(crate) fn has_glob(url: &str) -> bool {
    url_path(url).contains('*')
}

/// `url` fit for messages and logs: no `user:password@`, no query values, no
/// fragment. Works on any text (a URL that does not parse, a template) and
/// errs towards hiding too much.
pub(crate) fn redact(url: &str) -> String {
    let p = parts(url);
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = p.scheme {
        out.push_str(scheme);
        out.push_str("://");
        // The parser takes userinfo up to the last `@` before the path; a
        // password holding an unencoded `/` would move that boundary, so
        // look for `@` up to the query.
        let rest = &url[scheme.len() + 3..];
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        match rest.rfind('@') {
            Some(at) => out.push_str(&rest[at + 1..]),
            None if looks_like_userinfo(p.authority) => {
                out.push_str("***");
                out.push_str(p.path);
            }
            None => out.push_str(rest),
        }
    } else {
        out.push_str(p.path);
    }
    if let Some(query) = p.query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                None if pair.is_empty() => String::new(),
                None => "***".to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// `user:secret` without an `@` (cut short by a `?` or `#` in the password):
/// a `:` followed by something that is not a port number.
fn looks_like_userinfo(authority: &str) -> bool {
    if authority.starts_with('[') {
        // An IPv6 literal, `[::1]:8080`.
        return authority
            .rsplit_once("]:")
            .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit()));
    }
    authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit()))
}

/// The local file name for a URL: its last path segment, percent-decoded,
/// so that `.../orders.csv.gz?sig=...` is read as gzip-compressed CSV.
fn local_name(url: &reqwest::Url) -> String {
    let segment = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    let decoded = String::from_utf8_lossy(&percent_decode(segment)).into_owned();
    let mut name: String = decoded
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        return FALLBACK_NAME.to_owned();
    }
    // File systems allow 255 bytes; keep the end, where the extension is,
    // and room for `.part`.
    while name.len() > 200 {
        name.remove(0);
    }
    name
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Streams `url` to a file in `dir` named after the URL's file, and returns
/// its path. Nothing retries here: a failed download fails the attempt, and
/// the step's own `retries:` decide whether there is another.
pub(crate) async fn download(
    url: &str,
    dir: &Path,
    cx: &TaskContext,
) -> Result<PathBuf, ActionError> {
    let shown = redact(url);
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        failed(format!(
            "`{shown}` is not a valid URL: {e}\nhint: write it as `https://host/path/file.csv`; percent-encode special characters in user names and passwords"
        ))
    })?;
    let name = local_name(&parsed);
    fs_err::tokio::create_dir_all(dir)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(IDLE_TIMEOUT)
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(format!("cannot set up the HTTP client: {}", cause(e))))?;

    let started = Instant::now();
    // reqwest turns `user:password@` into an `Authorization: Basic` header.
    let mut response = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| request_failed(&shown, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(status_failed(&shown, status));
    }
    let part = dir.join(format!("{name}.part"));
    let file = fs_err::tokio::File::create(&part)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut bytes: u64 = 0;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_failed(&shown, e))?
    {
        out.write_all(&chunk)
            .await
            .map_err(|e| failed(format!("while downloading `{shown}`: {e}")))?;
        bytes += chunk.len() as u64;
    }
    out.flush()
        .await
        .map_err(|e| failed(format!("while downloading `{shown}`: {e}")))?;
    drop(out);
    // Renamed only when complete: a partial file never has the real name.
    let file = dir.join(&name);
    fs_err::tokio::rename(&part, &file)
        .await
        .map_err(|e| failed(e.to_string()))?;
    cx.log.line(
        LogStream::System,
        &format!(
            "downloaded {bytes} bytes from `{shown}` in {:.2} s",
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(file)
}

/// The error and its causes, without the URL reqwest attaches (it would
/// carry the query string).
fn cause(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn request_failed(shown: &str, e: reqwest::Error) -> ActionError {
    let hint = if e.is_connect() {
        format!(
            "check the host name and port, and that the server is reachable from the worker (connecting may take at most {} s)",
            CONNECT_TIMEOUT.as_secs()
        )
    } else if e.is_timeout() {
        format!(
            "the server sent nothing for {} s; `retries:` on the step tries again",
            IDLE_TIMEOUT.as_secs()
        )
    } else {
        "`retries:` on the step tries again if the failure is passing".to_owned()
    };
    failed(format!(
        "could not download `{shown}`: {}\nhint: {hint}",
        cause(e)
    ))
}

fn status_failed(shown: &str, status: reqwest::StatusCode) -> ActionError {
    let hint = match status.as_u16() {
        401 | 403 => {
            "the server wants credentials or refused them: check the user and password in the URL (`https://user:password@host/...`) or the token in its query string"
        }
        404 | 410 => {
            "check the URL; a URL names one file (globs such as `*.csv` are for local paths)"
        }
        429 | 500..=599 => "the server may be busy or failing: `retries:` on the step tries again",
        _ => "check the URL and what the server expects",
    };
    failed(format!(
        "downloading `{shown}` failed: the server answered {status}\nhint: {hint}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_userinfo_and_query_values() {
        assert_eq!(
            redact("https://ann:s3cret@host:8443/a/b.csv?token=abc&day=1#frag"),
            "https://host:8443/a/b.csv?token=***&day=***"
        );
        assert_eq!(redact("http://host/a.csv"), "http://host/a.csv");
        assert_eq!(redact("http://host/a.csv?flag"), "http://host/a.csv?***");
        assert_eq!(redact("https://u:p/w@host/a.csv"), "https://host/a.csv");
        assert_eq!(redact("https://u:p?w@host/a.csv"), "https://***?***");
        assert_eq!(redact("https://[::1]:80/a.csv"), "https://[::1]:80/a.csv");
        assert_eq!(redact("s3://bucket/a.csv"), "s3://bucket/a.csv");
        assert_eq!(
            redact("https://x/{{ params.f }}.csv?k={{ secrets.k }}"),
            "https://x/{{ params.f }}.csv?k=***"
        );
    }

    #[test]
    fn url_paths_and_globs() {
        assert_eq!(url_path("https://h/a/b.csv.gz?x=1#y"), "/a/b.csv.gz");
        assert_eq!(url_path("https://h"), "");
        assert_eq!(url_path("https://h?x=/a.csv"), "");
        assert!(has_glob("https://h/data/*.csv"));
        assert!(!has_glob("https://h/data/a.csv?fields=*"));
        assert!(is_http("HTTPS://h/a.csv"));
        assert!(is_http("http://h/a.csv"));
        assert!(!is_http("s3://b/a.csv"));
        assert!(!is_http("data/http.csv"));
    }

    #[test]
    fn local_names_come_from_the_last_segment() {
        let name = |u: &str| local_name(&reqwest::Url::parse(u).unwrap());
        assert_eq!(name("https://h/x/orders.csv.gz?sig=1"), "orders.csv.gz");
        assert_eq!(name("https://h/x/my%20orders.csv"), "my orders.csv");
        assert_eq!(name("https://h/x/a%2Fb.csv"), "a_b.csv");
        assert_eq!(name("https://h/x/"), FALLBACK_NAME);
        assert_eq!(name("https://h"), FALLBACK_NAME);
        assert_eq!(name("https://h/%2E%2E"), FALLBACK_NAME);
        let long = format!("https://h/{}.csv", "a".repeat(300));
        assert!(name(&long).ends_with(".csv") && name(&long).len() == 200);
    }
}
