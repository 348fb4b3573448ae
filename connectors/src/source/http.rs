//! HTTP API sources: a JSON API read page by page, its records streamed
//! into the NDJSON reader (so they keep their JSON types for validation).
//!
//! ```toml
//! [source]
//! location = "https://api.renshe.example/v1/pensions"
//!
//! [source.http]
//! records = "data.items"         # where each page's array of records is (default: the page itself)
//! pagination = "page"            # none | page | offset | next_link
//! page_param = "page"            # page: the page number's parameter (first_page, default 1)
//! page_size_param = "size"       # page and offset: the page size's parameter, page_size records each (default 100)
//! offset_param = "offset"        # offset: the offset's parameter
//! next_link = "links.next"       # next_link: where the next page's URL is (absent or null: the last page)
//! auth = "bearer"                # or api_key (header api_key_header, default X-API-Key)
//! token_env = "RENSHE_API_TOKEN" # or token_file
//! max_retries = 5                # per request: timeouts, 5xx and 429 (which waits Retry-After)
//! timeout_secs = 30
//! cursor_field = "updated_at"    # incremental: the records' cursor field …
//! cursor_param = "updated_since" # … sent as this parameter with the last committed run's largest value
//! ```
//!
//! Page and offset pagination end at the first page with fewer than
//! `page_size` records. A response that is not JSON, a records path that
//! is not an array, or a status that is neither success nor retried (401,
//! 404, …) fails the run with the URL and the status; the token is never
//! part of a message.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::database::CursorCell;
use super::{CHANNEL_CAPACITY, Error as SourceError, Source, open_stream, shown_location, spawn_source};
use crate::file::{FileFormat, ReadOptions};

/// `[source.http]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// Dot path to each page's array of records (default: the page is the array).
    #[serde(default)]
    pub records: Option<String>,
    /// How pages follow each other (default `none`: one request).
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// Page pagination: the page number's parameter (default `page`).
    #[serde(default)]
    pub page_param: Option<String>,
    /// Page pagination: the first page's number (default 1).
    #[serde(default)]
    pub first_page: Option<u64>,
    /// Page and offset pagination: the page size's parameter (default `size`).
    #[serde(default)]
    pub page_size_param: Option<String>,
    /// Records per page (default 100).
    #[serde(default)]
    pub page_size: Option<u64>,
    /// Offset pagination: the offset's parameter (default `offset`).
    #[serde(default)]
    pub offset_param: Option<String>,
    /// Next-link pagination: dot path to the next page's URL.
    #[serde(default)]
    pub next_link: Option<String>,
    /// How to authenticate, with the token from `token_env` or `token_file`.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Or a file whose first line is the token (relative to the job file).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The API-key header (default `X-API-Key`).
    #[serde(default)]
    pub api_key_header: Option<String>,
    /// Retries per request (default 5).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Seconds before a request times out (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The records' cursor field of an incremental job.
    #[serde(default)]
    pub cursor_field: Option<String>,
    /// The query parameter the last committed run's largest cursor value is sent as.
    #[serde(default)]
    pub cursor_param: Option<String>,
}

/// Pagination styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pagination {
    /// One request.
    None,
    /// `?page=1&size=100`, `?page=2&size=100`, …
    Page,
    /// `?offset=0&size=100`, `?offset=100&size=100`, …
    Offset,
    /// Each page names the next one's URL.
    NextLink,
}

/// Authentication schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `<api_key_header>: <token>`.
    ApiKey,
}

/// The value at a dot path (`data.items`); the whole value for `None`.
fn at_path<'v>(value: &'v Value, path: Option<&str>) -> Option<&'v Value> {
    match path {
        None => Some(value),
        Some(path) => path.split('.').filter(|p| !p.is_empty()).try_fold(value, |v, key| v.get(key)),
    }
}

/// Whether cursor value `a` lies past `b`: as numbers when both are, else as text.
fn later(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

/// Open the API as a [`Source`] of NDJSON batches (see the module docs);
/// `cell` gets the largest cursor value of the records read.
pub async fn open(
    location: &str,
    spec: &HttpSpec,
    base_dir: &Path,
    since: Option<&str>,
    options: &ReadOptions,
    cell: &CursorCell,
) -> Result<Box<dyn Source>, SourceError> {
    // Messages name the location without its parameters (an API key may be one).
    let invalid = |message: String| SourceError::InvalidLocation { location: shown_location(location), message };
    let url = url::Url::parse(location).map_err(|e| invalid(e.to_string()))?;
    let token = super::secret(spec.token_env.as_deref(), spec.token_file.as_deref(), base_dir, "token")
        .map_err(|message| invalid(format!("credentials: {message}")))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(spec.timeout_secs.unwrap_or(30)))
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CAPACITY);
    let pager = Pager { client, spec: spec.clone(), token, since: since.map(str::to_owned), cell: cell.clone(), tx };
    tokio::spawn(pager.run(url));
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| SourceError::Task { uri: location.to_owned(), message: e.to_string() })?;
    let stream = tokio_stream_of(rx);
    let body = tokio_util::io::StreamReader::new(stream);
    let body: Box<dyn io::Read + Send> = Box::new(tokio_util::io::SyncIoBridge::new_with_handle(body, handle));
    let options = options.clone();
    let name = location.to_owned();
    let reader = tokio::task::spawn_blocking(move || open_stream(&name, body, Some(FileFormat::Ndjson), &options))
        .await
        .map_err(|e| SourceError::Task { uri: location.to_owned(), message: e.to_string() })??;
    Ok(spawn_source(location.to_owned(), reader))
}

/// The receiver as a stream of byte chunks.
fn tokio_stream_of(
    rx: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}

/// The task that fetches pages and hands their records on as NDJSON lines.
struct Pager {
    client: reqwest::Client,
    spec: HttpSpec,
    token: Option<String>,
    since: Option<String>,
    cell: CursorCell,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Pager {
    async fn run(self, first: url::Url) {
        if let Err(e) = self.pages(first).await {
            let _ = self.tx.send(Err(e)).await;
        }
    }

    async fn pages(&self, first: url::Url) -> io::Result<()> {
        let pagination = self.spec.pagination.unwrap_or(Pagination::None);
        let size = self.spec.page_size.unwrap_or(100).max(1);
        let mut number = self.spec.first_page.unwrap_or(1);
        let mut offset = 0u64;
        let mut next = Some(first.clone());
        let mut largest: Option<String> = None;
        let mut link_given = false;
        while let Some(mut url) = next.take() {
            if !link_given {
                let mut pairs = url.query_pairs_mut();
                if let (Some(param), Some(since)) = (&self.spec.cursor_param, &self.since) {
                    pairs.append_pair(param, since);
                }
                match pagination {
                    Pagination::Page => {
                        pairs.append_pair(self.spec.page_param.as_deref().unwrap_or("page"), &number.to_string());
                        pairs.append_pair(self.spec.page_size_param.as_deref().unwrap_or("size"), &size.to_string());
                    }
                    Pagination::Offset => {
                        pairs.append_pair(self.spec.offset_param.as_deref().unwrap_or("offset"), &offset.to_string());
                        pairs.append_pair(self.spec.page_size_param.as_deref().unwrap_or("size"), &size.to_string());
                    }
                    Pagination::None | Pagination::NextLink => {}
                }
            }
            let page = self.fetch(&url).await?;
            let records = at_path(&page, self.spec.records.as_deref()).and_then(Value::as_array).ok_or_else(|| {
                io::Error::other(format!("{}: no array of records at {:?}", redact(&url), self.spec.records))
            })?;
            let mut lines = Vec::new();
            for record in records {
                if let Some(field) = &self.spec.cursor_field
                    && let Some(value) = record.get(field).filter(|v| !v.is_null())
                {
                    let text = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
                    if largest.as_deref().is_none_or(|l| later(&text, l)) {
                        largest = Some(text);
                    }
                }
                serde_json::to_writer(&mut lines, record).map_err(io::Error::other)?;
                lines.push(b'\n');
            }
            if self.tx.send(Ok(Bytes::from(lines))).await.is_err() {
                return Ok(());
            }
            let full = records.len() as u64 >= size;
            next = match pagination {
                Pagination::None => None,
                Pagination::Page if full && !records.is_empty() => {
                    number += 1;
                    Some(first.clone())
                }
                Pagination::Offset if full && !records.is_empty() => {
                    offset += records.len() as u64;
                    Some(first.clone())
                }
                Pagination::Page | Pagination::Offset => None,
                Pagination::NextLink => match at_path(&page, self.spec.next_link.as_deref()).and_then(Value::as_str) {
                    Some(link) if !link.is_empty() && !records.is_empty() => {
                        // The link carries the parameters the API wants: it is followed as given.
                        link_given = true;
                        Some(url.join(link).map_err(io::Error::other)?)
                    }
                    _ => None,
                },
            };
        }
        if let Some(largest) = largest {
            self.cell.set_cursor(largest);
        }
        Ok(())
    }

    /// One page, with retries on timeouts, 5xx and 429 (after Retry-After).
    async fn fetch(&self, url: &url::Url) -> io::Result<Value> {
        let retries = self.spec.max_retries.unwrap_or(5);
        let mut attempt = 0;
        loop {
            let mut request = self.client.get(url.clone());
            if let Some(token) = &self.token {
                request = match self.spec.auth.unwrap_or(Auth::Bearer) {
                    Auth::Bearer => request.bearer_auth(token),
                    Auth::ApiKey => request.header(self.spec.api_key_header.as_deref().unwrap_or("X-API-Key"), token),
                };
            }
            let outcome = request.send().await;
            let wait = match outcome {
                // A body that breaks off (the connection dropped, the timeout struck mid-body) is asked again.
                Ok(response) if response.status().is_success() => match response.bytes().await {
                    Ok(body) => {
                        return serde_json::from_slice(&body)
                            .map_err(|e| io::Error::other(format!("{}: the response is not JSON: {e}", redact(url))));
                    }
                    Err(e) => Some((backoff(attempt), format!("the response broke off: {}", e.without_url()))),
                },
                Ok(response) if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                    let seconds = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1)
                        .min(60);
                    Some((Duration::from_secs(seconds), format!("status {}", response.status())))
                }
                Ok(response) if response.status().is_server_error() => {
                    Some((backoff(attempt), format!("status {}", response.status())))
                }
                Ok(response) => {
                    return Err(io::Error::other(format!("{}: status {}", redact(url), response.status())));
                }
                Err(e) => Some((backoff(attempt), e.without_url().to_string())),
            };
            let Some((wait, why)) = wait else { continue };
            if attempt >= retries {
                return Err(io::Error::other(format!("{}: {why} after {} attempt(s)", redact(url), attempt + 1)));
            }
            tracing::warn!(url = %redact(url), attempt = attempt + 1, why, "API request failed; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64 << attempt.min(6))
}

/// The URL without its query (parameters may carry a key) for messages.
fn redact(url: &url::Url) -> String {
    shown_location(url.as_str())
}
