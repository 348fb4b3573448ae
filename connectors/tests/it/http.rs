//! HTTP API sources against a local axum server on port 0: page, offset and
//! next-link pagination, records under a path, bearer and API-key auth, 429
//! with Retry-After and 5xx retried, an incremental cursor sent as a
//! parameter and its largest value kept, and a refused token reported
//! without the token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use civlink_connectors::file::ReadOptions;
use civlink_connectors::source::database::CursorCell;
use civlink_connectors::source::http::{self, Auth, HttpSpec, Pagination};
use civlink_testkit::http::{RawHttp, json_answer};
use serde_json::{Value, json};

use crate::Collected;

const TOKEN: &str = "t0ken-never-shown";

#[derive(Default)]
struct Calls {
    throttled: AtomicUsize,
    failed: AtomicUsize,
    requests: AtomicUsize,
}

fn records() -> Vec<Value> {
    (1..=5)
        .map(|i| json!({"id": i, "name": format!("人{i}"), "updated_at": format!("2026-06-0{i}T10:00:00Z")}))
        .collect()
}

fn authorized(headers: &HeaderMap) -> bool {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(TOKEN);
    bearer || key
}

fn since_filter(params: &HashMap<String, String>) -> Vec<Value> {
    let since = params.get("updated_since").cloned().unwrap_or_default();
    records().into_iter().filter(|r| r["updated_at"].as_str().unwrap_or_default() >= since.as_str()).collect()
}

async fn pages(
    State(calls): State<Arc<Calls>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    calls.requests.fetch_add(1, Ordering::SeqCst);
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let page: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size: usize = params.get("size").and_then(|p| p.parse().ok()).unwrap_or(100);
    if page == 2 && calls.throttled.fetch_add(1, Ordering::SeqCst) == 0 {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response();
    }
    if page == 3 && calls.failed.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let all = since_filter(&params);
    let items: Vec<Value> = all.into_iter().skip((page - 1) * size).take(size).collect();
    Json(json!({"data": {"items": items}})).into_response()
}

async fn offsets(headers: HeaderMap, Query(params): Query<HashMap<String, String>>) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let offset: usize = params.get("offset").and_then(|p| p.parse().ok()).unwrap_or(0);
    let size: usize = params.get("size").and_then(|p| p.parse().ok()).unwrap_or(100);
    Json(Value::Array(records().into_iter().skip(offset).take(size).collect())).into_response()
}

async fn links(Query(params): Query<HashMap<String, String>>) -> Response {
    let at: usize = params.get("at").and_then(|p| p.parse().ok()).unwrap_or(0);
    let all = since_filter(&params);
    let items: Vec<Value> = all.iter().skip(at).take(2).cloned().collect();
    let since = params.get("updated_since").cloned().unwrap_or_default();
    let next = (at + 2 < all.len()).then(|| format!("links?at={}&updated_since={since}", at + 2));
    Json(json!({"items": items, "links": {"next": next}})).into_response()
}

async fn serve() -> (String, Arc<Calls>, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let calls = Arc::new(Calls::default());
    let app = axum::Router::new()
        .route("/pages", get(pages))
        .route("/offsets", get(offsets))
        .route("/links", get(links))
        .with_state(Arc::clone(&calls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    (base, calls, stop, handle)
}

fn spec(pagination: Pagination) -> HttpSpec {
    HttpSpec {
        records: None,
        pagination: Some(pagination),
        page_param: None,
        first_page: None,
        page_size_param: None,
        page_size: Some(2),
        offset_param: None,
        next_link: None,
        auth: None,
        token_env: None,
        token_file: None,
        api_key_header: None,
        max_retries: Some(3),
        timeout_secs: Some(5),
        cursor_field: None,
        cursor_param: None,
    }
}

async fn read(location: &str, spec: &HttpSpec, since: Option<&str>, cell: &CursorCell) -> Result<Collected, String> {
    let mut source = http::open(location, spec, Path::new("."), since, &ReadOptions::default(), cell)
        .await
        .map_err(|e| e.to_string())?;
    let mut batches = Vec::new();
    loop {
        match source.next_batch().await {
            Ok(Some(batch)) => batches.push(batch),
            Ok(None) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(Collected::from_batches(batches))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_followed_through_throttling_and_failures_and_the_cursor_kept() {
    let (base, calls, stop, handle) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut pages = spec(Pagination::Page);
    pages.records = Some("data.items".into());
    pages.auth = Some(Auth::Bearer);
    pages.token_file = Some(token_file.clone());
    pages.cursor_field = Some("updated_at".into());
    pages.cursor_param = Some("updated_since".into());
    let cell = CursorCell::default();
    let all = read(&format!("{base}/pages"), &pages, None, &cell).await.unwrap();
    assert_eq!(all.rows.len(), 5, "every record once: {:?}", all.rows);
    let ids: Vec<&str> = (0..5).map(|i| all.row(i)[0]).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    assert_eq!(calls.throttled.load(Ordering::SeqCst), 2, "429 once, then served");
    assert_eq!(calls.failed.load(Ordering::SeqCst), 2, "503 once, then served");
    assert_eq!(cell.get().as_deref(), Some("2026-06-05T10:00:00Z"));

    // Incremental: the last value goes out as the cursor parameter.
    let cell = CursorCell::default();
    let later = read(&format!("{base}/pages"), &pages, Some("2026-06-04T10:00:00Z"), &cell).await.unwrap();
    assert_eq!(later.rows.len(), 2, "from the boundary on");

    // A refused token is reported with the status, never with the token.
    let mut wrong = pages.clone();
    wrong.token_file = None;
    let err = read(&format!("{base}/pages"), &wrong, None, &CursorCell::default()).await.unwrap_err();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    let _ = stop.send(());
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_with_an_api_key_and_next_links_read_every_record() {
    let (base, _calls, stop, handle) = serve().await;
    // A variable nothing sets: the token's absence is named.
    let variable = "CIVLINK_TEST_HTTP_TOKEN_OFFSETS";
    let mut offsets = spec(Pagination::Offset);
    offsets.auth = Some(Auth::ApiKey);
    offsets.token_env = Some(variable.into());
    let err = read(&format!("{base}/offsets"), &offsets, None, &CursorCell::default()).await.unwrap_err();
    assert!(err.contains(&format!("environment variable {variable} is not set")), "{err}");
    let mut with_file = offsets.clone();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("key");
    std::fs::write(&token_file, TOKEN).unwrap();
    with_file.token_env = None;
    with_file.token_file = Some(token_file);
    let all = read(&format!("{base}/offsets"), &with_file, None, &CursorCell::default()).await.unwrap();
    assert_eq!(all.rows.len(), 5);

    let mut links = spec(Pagination::NextLink);
    links.records = Some("items".into());
    links.next_link = Some("links.next".into());
    links.cursor_field = Some("updated_at".into());
    links.cursor_param = Some("updated_since".into());
    let all = read(&format!("{base}/links"), &links, None, &CursorCell::default()).await.unwrap();
    assert_eq!(all.rows.len(), 5, "{:?}", all.rows);
    let later = read(&format!("{base}/links"), &links, Some("2026-06-03T10:00:00Z"), &CursorCell::default()).await;
    assert_eq!(later.unwrap().rows.len(), 3);
    let _ = stop.send(());
    handle.await.unwrap();
}

/// An API whose first answer breaks off mid-body, whose second stalls past
/// the client's timeout, and whose later answers are whole.
fn flaky_api() -> RawHttp {
    RawHttp::start(|n, _, stream| {
        use std::io::Write;
        let body = r#"[{"id": 1, "name": "张三"}, {"id": 2, "name": "王五"}]"#;
        let whole = json_answer("200 OK", body);
        let head = &whole[..whole.len() - body.len()];
        match n {
            0 => {
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body.as_bytes()[..body.len() / 2]);
            }
            1 => {
                let _ = stream.write_all(head.as_bytes());
                std::thread::sleep(std::time::Duration::from_secs(3));
            }
            _ => {
                let _ = stream.write_all(whole.as_bytes());
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_breaks_off_and_one_that_times_out_are_asked_again() {
    let api = flaky_api();
    let location = api.url("/people");
    let spec = HttpSpec {
        pagination: Some(Pagination::None),
        timeout_secs: Some(1),
        max_retries: Some(3),
        ..spec(Pagination::Page)
    };
    let cell = CursorCell::default();
    let collected = read(&location, &spec, None, &cell).await.expect("read after the retries");
    assert_eq!(collected.rows.len(), 2);
    assert_eq!(api.requests(), 3, "one broken body, one timeout, one whole answer");

    // With fewer retries than failures, the read fails and says why and how often it tried.
    let location = flaky_api().url("/people");
    let spec = HttpSpec { max_retries: Some(1), ..spec };
    let error = read(&location, &spec, None, &cell).await.expect_err("two failures, one retry");
    assert!(error.contains("after 2 attempt(s)"), "{error}");
}
