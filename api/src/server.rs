//! Running the REST server.
//!
//! [`bind`] opens the listening socket (port 0 picks a free port, which
//! [`ApiServer::local_addr`] reports: what tests use) and builds the router
//! over a [`SessionFactory`] (the same policy, scoped tables and limits as
//! Flight SQL); [`ApiServer::serve`] runs until the `shutdown` future
//! completes, then stops accepting connections and lets the requests in
//! flight finish (graceful shutdown). HTTP/1.1 in clear: bind to loopback,
//! or terminate TLS in front.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::routing::get;
use civlink_catalog::policy::AuditAction;
use civlink_query::SessionFactory;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Error, Result};
use crate::standards::MAX_BODY_BYTES;
use crate::state::AppState;
use crate::{admin, checks, datasets, findings, jobs, ops, quarantine, query, rows, standard_views, standards};

/// The default listening address: loopback only.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// How to run the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Where to listen (default `127.0.0.1:8080`; port 0 picks a free port).
    pub addr: SocketAddr,
    /// The household-check sources file, checked against the catalog when
    /// the server starts (default: the shipped `checks/household.toml`).
    pub check_sources: Option<std::path::PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { addr: DEFAULT_ADDR, check_sources: None }
    }
}

/// A server bound to its address, not yet serving.
#[derive(Debug)]
pub struct ApiServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    connections: civlink_query::connections::ConnectionLimiter,
}

/// Bind the listening socket and build the router over `factory`: the
/// process's one, shared with Flight SQL (one cache, one slot table, one
/// mask key, so both show the same pseudonym for the same value).
pub async fn bind(config: ApiConfig, factory: Arc<SessionFactory>) -> Result<ApiServer> {
    bind_with_jobs(config, factory, None).await
}

/// [`bind`], operating the jobs of `jobs` at `/api/v1/jobs` ([`crate::jobs`]).
pub async fn bind_with_jobs(
    config: ApiConfig,
    factory: Arc<SessionFactory>,
    jobs: Option<Arc<dyn crate::job_control::JobControl>>,
) -> Result<ApiServer> {
    let connections = factory.connections().clone();
    let mut state = AppState::new(Arc::clone(&factory));
    if let Some(jobs) = jobs {
        state = state.with_jobs(jobs);
    }
    if let Some(path) = &config.check_sources {
        let snapshot = factory.policy().current().await?;
        let sources = civlink_verify::household::CheckSources::load(Some(path), &snapshot)
            .await
            .map_err(|e| Error::Config { message: e.to_string() })?;
        state = state.with_check_sources(sources);
    }
    let router = router(Arc::new(state));
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::Config { message: format!("cannot listen on {}: {e}", config.addr) })?;
    let local_addr =
        listener.local_addr().map_err(|e| Error::Config { message: format!("cannot read the bound address: {e}") })?;
    Ok(ApiServer { listener, local_addr, router, connections })
}

/// Every documented route of the API: each registered with its OpenAPI
/// operation, so the document and the router cannot drift apart.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(datasets::list))
        .routes(routes!(datasets::describe))
        .routes(routes!(rows::rows))
        .routes(routes!(quarantine::list))
        .routes(routes!(query::run))
        .routes(routes!(checks::create))
        .routes(routes!(findings::list))
        .routes(routes!(findings::summary))
        .routes(routes!(findings::show))
        .routes(routes!(findings::outcome))
        .routes(routes!(standards::publish))
        .routes(routes!(standards::versions))
        .routes(routes!(standards::document))
        .routes(routes!(standard_views::list))
        .routes(routes!(standard_views::arrow_schema))
        .routes(routes!(standard_views::diff))
        .routes(routes!(standard_views::deprecate))
        .routes(routes!(standard_views::code_tables))
        .routes(routes!(standard_views::code_table))
        .routes(routes!(admin::tokens::create, admin::tokens::list))
        .routes(routes!(admin::tokens::revoke))
        .routes(routes!(admin::grants::create, admin::grants::list))
        .routes(routes!(admin::grants::revoke))
        .routes(routes!(admin::audit::list))
        .routes(routes!(admin::audit::verify))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::history, jobs::trigger))
}

/// The OpenAPI document of [`routes`], complete ([`crate::openapi::document`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::openapi::document(routes().split_for_parts().1)
}

/// Every route of the API over `state`, with the document at
/// `/api/openapi.json` and the API page at `/api/docs` (no authentication:
/// the contract is not secret).
pub fn router(state: Arc<AppState>) -> Router {
    let (router, paths) = routes().split_for_parts();
    let document: Arc<str> = crate::openapi::to_json(&crate::openapi::document(paths)).into();
    router
        .route(
            "/api/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document.to_string()) }
            }),
        )
        .route("/api/docs", get(|| async { axum::response::Html(crate::openapi::API_PAGE) }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), authenticate_before_the_body))
        .layer(axum::middleware::from_fn(ops::track))
        .with_state(state)
}

/// A request that carries a body is authenticated before a byte of the body
/// is read: an anonymous client cannot make the server read (up to
/// [`MAX_BODY_BYTES`] of) anything. Handlers authenticate again, as every
/// request does, and audit under their own action.
async fn authenticate_before_the_body(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    if !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && let Err(e) = state.principal(request.headers(), AuditAction::RestRequest).await
    {
        return e.into_response();
    }
    next.run(request).await
}

#[utoipa::path(get, path = "/api/v1/health", tag = "ops", security(()),
    responses((status = 200, description = "The process is up", body = crate::openapi::Status)))]
/// `GET /api/v1/health`: no authentication, no audit.
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Any path the API does not have.
async fn not_found() -> Error {
    Error::NotFound { what: "no such resource".into() }
}

/// A path the API has, with another method.
async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

impl ApiServer {
    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` completes, then let the requests in flight finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        tracing::info!(addr = %self.local_addr, "REST API listening");
        let listener = crate::listener::AdmittingListener::new(self.listener, self.connections);
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::Transport { message: e.to_string() })?;
        tracing::info!(addr = %self.local_addr, "REST API stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback() {
        assert_eq!(ApiConfig::default().addr.to_string(), "127.0.0.1:8080");
    }
}
