//! Operations endpoints, outside `/api/v1` and without authentication, for
//! load balancers, orchestrators and Prometheus:
//!
//! * `GET /healthz`: the process answers (`{"status":"ok"}`);
//! * `GET /readyz`: the metadata store and the table storage answer within
//!   [`READY_TIMEOUT`] (`{"status":"ready", …}`), else a 503 `not-ready`
//!   problem naming the failed checks (the causes go to the log);
//! * `GET /metrics`: the Prometheus text format (0.0.4): requests by route
//!   template and status, latency, governed queries and rows per transport,
//!   ingested rows by outcome, table-cache lookups, audit write failures.
//!
//! `/metrics` is not authenticated: its labels are bounded by construction
//! (route templates, never raw paths; audit action and outcome codes), so
//! it carries no personal data, no principal names and no dataset contents,
//! only volumes. Like the whole API it listens on loopback by default; scrape
//! it there, or filter `/metrics` at the proxy when the API is exposed.
//!
//! [`track`] is the middleware that counts every request by its route
//! template (`MatchedPath`; `unmatched` for the fallback).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use civlink_catalog::metrics::{self, HTTP_DURATION, HTTP_REQUESTS, Metric};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::state::AppState;

/// How long a readiness check may take.
pub const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// The media type of the text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(get, path = "/healthz", tag = "ops", security(()),
    responses((status = 200, description = "The process is alive", body = crate::openapi::Status)))]
/// `GET /healthz`.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "ops", security(()),
    responses((status = 200, description = "The catalog and the table storage answer", body = crate::openapi::AnyObject),
        (status = 503, description = "Not ready: which part does not answer", body = crate::error::ProblemDoc, content_type = "application/problem+json")))]
/// `GET /readyz`.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>> {
    let store = async {
        let epoch = state.store().catalog_epoch().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(epoch)
    };
    let tables = async {
        // A table the catalog says has a version must be found in storage
        // (the storage root when none is committed yet).
        let snapshot = state.factory().policy().held();
        let tables = state.factory().cache().tables();
        let committed = snapshot.datasets().iter().find(|d| d.current_version.is_some());
        let uri = committed.map(|d| d.table_uri.clone()).unwrap_or_else(|| tables.root().to_string());
        match tables.head_version(&uri).await {
            Ok(None) if committed.is_some() => Err(format!("no Delta log at {uri}")),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    };
    let (store, tables) =
        tokio::join!(tokio::time::timeout(READY_TIMEOUT, store), tokio::time::timeout(READY_TIMEOUT, tables));
    let mut failed = Vec::new();
    let mut check = |name: &'static str, outcome: std::result::Result<std::result::Result<(), String>, _>| {
        let message = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(message)) => message,
            Err(_) => format!("no answer within {} s", READY_TIMEOUT.as_secs()),
        };
        tracing::warn!(check = name, error = %civlink_query::redact::quoted_values(&message), "not ready");
        failed.push(name);
    };
    check("metadata_store", store.map(|r| r.map(|_| ())));
    check("table_storage", tables);
    if !failed.is_empty() {
        return Err(Error::NotReady { failed });
    }
    Ok(Json(json!({ "status": "ready", "checks": { "metadata_store": "ok", "table_storage": "ok" } })))
}

/// Audit entries that could not be written (requests refused, or closing entries lost).
const AUDIT_FAILURES: Metric = Metric {
    name: "civlink_audit_write_failures_total",
    help: "audit entries that could not be written (their requests were refused)",
};
/// Bytes the table cache holds.
const CACHE_BYTES: Metric =
    Metric { name: "civlink_table_cache_bytes", help: "bytes of decoded tables the table cache holds" };

#[utoipa::path(get, path = "/metrics", tag = "ops", security(()),
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = metrics::global().render();
    metrics::header(&mut text, &AUDIT_FAILURES, "counter");
    text.push_str(&format!("{} {}\n", AUDIT_FAILURES.name, state.factory().auditor().failures()));
    metrics::header(&mut text, &CACHE_BYTES, "gauge");
    text.push_str(&format!("{} {}\n", CACHE_BYTES.name, state.factory().cache().bytes_held()));
    let mut response = text.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    response
}

/// Count the request by route template, method and status, and its latency.
pub async fn track(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let registry = metrics::global();
    registry.inc(HTTP_REQUESTS, &[("route", &route), ("method", method), ("status", &status)]);
    registry.observe(HTTP_DURATION, &[("route", &route)], started.elapsed().as_secs_f64());
    response
}
