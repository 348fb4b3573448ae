//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they answer with ([`ApiDoc`]), and the offline
//! API page that renders it.
//!
//! The router registers each route together with its documentation
//! (utoipa-axum), so the document cannot list a route the server lacks or
//! miss one it has. [`document`] adds what every operation shares: the
//! bearer scheme, and the problem documents of the statuses any operation
//! may answer with (401, 403, 404, 400, 406, 413, 429, 500, 503), whose
//! `type` is one of [`crate::error::PROBLEM_TYPES`].
//!
//! Served at `/api/openapi.json`, checked in as `docs/openapi.json` (a test
//! fails when the two differ), and shown at `/api/docs`: one HTML page with
//! its script inline, embedded in the binary (no CDN, no build step).

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::datasets::DatasetList;
use crate::error::{PROBLEM_TYPES, ProblemDoc};

/// The document's fixed parts; paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "civlink REST API",
        description = "Shared data of the provincial civil-affairs big-data centre (民政大数据中心): datasets, rows under the same row scope and masks as Flight SQL, SQL, household checks (核对), verification findings (比对) and data standards. Every request but health carries `Authorization: Bearer <token>`; `x-civlink-purpose` states the purpose and is audited. Errors are RFC 9457 problem documents.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ProblemDoc, Status, AnyObject, DatasetList, RowsPage, SqlResult)),
    tags(
        (name = "catalog", description = "Datasets the principal may read"),
        (name = "rows", description = "Rows and SQL, scoped, masked, audited"),
        (name = "checks", description = "Household economic-status checks (核对)"),
        (name = "findings", description = "Verification findings (比对) and their outcomes"),
        (name = "standards", description = "Data standards"),
        (name = "jobs", description = "Ingestion jobs and their runs"),
        (name = "admin", description = "Tokens, grants and the audit (admins)"),
        (name = "ops", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok`.
    pub status: String,
}

/// A JSON object whose members the operation's description names.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct AnyObject(Value);

/// One page of rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowsPage {
    /// `department.name`.
    pub dataset: String,
    /// The version the page was read from (`null` before the first run).
    pub version: Option<i64>,
    /// The columns of each row, in order.
    pub columns: Vec<String>,
    /// The page size asked for.
    pub limit: u64,
    /// Rows in this page.
    pub returned: u64,
    /// Where the next page starts; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The rows: objects keyed by column (masked values are strings).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

/// A SQL result as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct SqlResult {
    /// The result's columns.
    pub columns: Vec<String>,
    /// The rows: objects keyed by column.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

/// The fixed query parameters of a rows request (filters are named by column).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// Rows per page (JSON pages default to 100; other formats stream every row without it).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the page before; the other parameters must be the same.
    pub cursor: Option<String>,
    /// Columns returned, comma-separated, in order.
    pub columns: Option<String>,
    /// Order: comma-separated columns, `-` before one for descending.
    pub sort: Option<String>,
    /// Time travel: a committed version.
    #[param(minimum = 0)]
    pub version: Option<i64>,
    /// Time travel: the newest version committed at or before this RFC 3339 time.
    #[param(format = DateTime)]
    pub as_of: Option<String>,
    /// CSV: a UTF-8 byte order mark first (Excel then reads Chinese text correctly).
    pub bom: Option<bool>,
}

/// The statuses any authenticated operation may answer with, besides its own.
const SHARED_PROBLEMS: [(&str, &str); 11] = [
    ("400", "A malformed request (the problem says which part)"),
    ("401", "Missing, malformed, invalid, expired or revoked credentials"),
    ("403", "The principal may not do this"),
    ("404", "Nothing here, or nothing the principal may see (the same answer)"),
    ("406", "None of the formats asked for is offered"),
    ("409", "Conflicts with the current state"),
    ("413", "The request body is too large"),
    ("422", "A well-formed request naming what does not exist (a principal, a dataset), or an invalid document"),
    ("429", "Too many concurrent queries for this principal"),
    ("500", "An internal failure (the problem carries a reference id, nothing else)"),
    ("503", "A time or memory limit, or the audit log is unavailable"),
];

/// Operations that need no credentials.
const OPEN_PATHS: [&str; 4] = ["/api/v1/health", "/healthz", "/readyz", "/metrics"];

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content =
        ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ProblemDoc")))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/problem+json", content).build())
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head]
        .into_iter()
        .filter_map(Option::as_mut)
}

/// The whole document: `paths` (from the router) completed with what every
/// operation shares (module docs).
pub fn document(mut paths: Document) -> Document {
    let mut doc = ApiDoc::openapi();
    doc.paths = std::mem::take(&mut paths.paths);
    if let Some(components) = paths.components.take() {
        let into = doc.components.get_or_insert_with(Default::default);
        into.schemas.extend(components.schemas);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("civlink token").build()),
    );
    // The problem `type`s, listed.
    if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(problem))) = components.schemas.get_mut("ProblemDoc")
        && let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(kind))) = problem.properties.get_mut("type")
    {
        kind.enum_values =
            Some(PROBLEM_TYPES.iter().map(|t| Value::String(format!("urn:civlink:problem:{t}"))).collect());
    }
    let bearer = utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new());
    for (path, item) in doc.paths.paths.iter_mut() {
        let open = OPEN_PATHS.contains(&path.as_str());
        for operation in operations(item) {
            if open {
                operation.security = Some(Vec::new());
                continue;
            }
            operation.security = Some(vec![bearer.clone()]);
            for (status, description) in SHARED_PROBLEMS {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| problem_response(description));
            }
        }
    }
    doc
}

/// The document as served and checked in: pretty JSON with a final newline.
pub fn to_json(doc: &Document) -> String {
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The API page: the document rendered in the browser by an inline script.
pub const API_PAGE: &str = include_str!("api_page.html");
