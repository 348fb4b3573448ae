//! The standards endpoints: publishing a data standard, and reading them.
//!
//! * `POST /api/v1/standards[?compatibility=MODE]` (role `standards_admin`
//!   or `admin`): the body is a standard document (JSON Schema 2020-12 with
//!   `x-civlink-*` keywords). It is parsed
//!   ([`Standard::from_json_str`]), compiled ([`Validator::compile`]) and
//!   checked for compatibility with the registered versions of the same id
//!   ([`civlink_standards::compat::check`], mode `backward` unless the query
//!   says otherwise; `none` skips it), then registered
//!   ([`civlink_catalog::store::MetadataStore::register_standard`]).
//!   Answers: 201 with the id and version (and `Location`); 200 when the
//!   identical document is already registered under that id and version
//!   (publishing is idempotent); 409 when a different one is, and when the
//!   version is incompatible with the registered ones (with every
//!   incompatibility, as schema registries answer); 422 when it is not a
//!   valid standard (every meta-schema violation, or the civlink-level
//!   problem); problems are listed as `errors: [{pointer, message}]`.
//! * `GET /api/v1/standards/{id}`: the registered versions, in registration order.
//! * `GET /api/v1/standards/{id}/{version}`: the document, exactly as registered.
//!
//! Standards are not secret: any authenticated principal may read them.

use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use civlink_catalog::policy::Role;
use civlink_standards::compat::Mode;
use civlink_standards::standard::{self, Standard};
use civlink_standards::validate::{self, Validator};
use serde_json::{Value, json};

use crate::datasets::request_text;
use crate::error::{Error, Result, StandardProblem};
use crate::state::{AppState, Audit};
use civlink_catalog::policy::AuditAction;

/// The compatibility mode when the request names none.
pub const DEFAULT_MODE: Mode = Mode::Backward;

/// The largest request body accepted (a standard is a few kilobytes).
pub const MAX_BODY_BYTES: usize = 2 << 20;

#[utoipa::path(post, path = "/api/v1/standards", tag = "standards",
    params(("compatibility" = Option<String>, Query, description = "none, backward (default), forward, full, and the _transitive modes"),
        ("allow_weaker_protection" = Option<bool>, Query, description = "Publish although protection weakens (admin, with a reason)"),
        ("reason" = Option<String>, Query, description = "Why protection may weaken")),
    request_body(content = crate::openapi::AnyObject, content_type = "application/json", description = "A standard: JSON Schema 2020-12 with x-civlink-* keywords"),
    responses((status = 201, description = "Registered", body = crate::openapi::AnyObject),
        (status = 200, description = "Already registered, identical", body = crate::openapi::AnyObject),
        (status = 409, description = "Incompatible with the registered versions, weakens protection, or the version exists with another document", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid standard: every problem", body = crate::error::ProblemDoc, content_type = "application/problem+json")))]
/// `POST /api/v1/standards`.
pub async fn publish(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let request = request_text("POST", &uri);
    let principal = state.principal(&headers, AuditAction::RestPublishStandard).await?;
    let mut audit = Audit::start(&principal, AuditAction::RestPublishStandard, &headers, &request);
    let result = async {
        if !matches!(principal.role, Role::StandardsAdmin | Role::Admin) {
            return Err(Error::Forbidden {
                what: format!(
                    "publishing standards needs the standards_admin or admin role (you are {})",
                    principal.role
                ),
            });
        }
        let pairs = crate::extract::query_pairs(query)?;
        let options = PublishOptions::parse(&pairs)?;
        let body = crate::extract::body(body, MAX_BODY_BYTES)?;
        let text = std::str::from_utf8(&body).map_err(|_| Error::BadBody { message: "not UTF-8".into() })?;
        let validator = compile(text)?;
        let standard = validator.standard();
        audit.dataset(format!("standard {} {}", standard.id, standard.version));
        publish_through_registry(&state, &principal, text, &options, crate::auth::purpose(&headers)).await
    }
    .await;
    let (status, id, version, checked) = audit.finish(&state, result, None).await?;
    let location = format!("/api/v1/standards/{}/{}", encode_segment(&id), encode_segment(&version));
    let body = json!({
        "id": id,
        "version": version,
        "created": status == StatusCode::CREATED,
        "compatibility": { "mode": mode_of(checked), "checked_against": checked.map(|(_, n)| n).unwrap_or(0) },
        "url": location,
    });
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The mode of a compatibility check, for the response.
fn mode_of(checked: Option<(Mode, usize)>) -> Option<&'static str> {
    checked.map(|(mode, _)| mode.as_str())
}

/// The query parameters of a publication.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PublishOptions {
    /// `compatibility=MODE` (default [`DEFAULT_MODE`]).
    mode: Mode,
    /// `allow_weaker_protection=true`: publish even though masks, sensitivity or
    /// `x-civlink-pii` are weakened (admin only, with a `reason`).
    allow_weaker_protection: bool,
    /// `reason=…`.
    reason: Option<String>,
}

impl PublishOptions {
    fn parse(pairs: &[(String, String)]) -> Result<PublishOptions> {
        let bad = |message: String| Error::BadRequest { message };
        let (mut mode, mut allow, mut reason) = (None, None, None);
        for (key, value) in pairs {
            match key.as_str() {
                "compatibility" if mode.is_none() => {
                    mode = Some(Mode::from_str(value).map_err(|e| bad(e.to_string()))?);
                }
                "allow_weaker_protection" if allow.is_none() => {
                    allow = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("allow_weaker_protection is true or false".into())),
                    });
                }
                "reason" if reason.is_none() => reason = Some(value.clone()),
                "compatibility" | "allow_weaker_protection" | "reason" => {
                    return Err(bad(format!("{key} is given more than once")));
                }
                other => {
                    return Err(bad(format!(
                        "unknown query parameter \"{other}\" (compatibility=MODE, allow_weaker_protection=true|false, reason=TEXT)"
                    )));
                }
            }
        }
        Ok(PublishOptions {
            mode: mode.unwrap_or(DEFAULT_MODE),
            allow_weaker_protection: allow.unwrap_or(false),
            reason,
        })
    }
}

/// Compatibility mode of a bare parameter list (for tests).
#[cfg(test)]
fn mode(pairs: &[(String, String)]) -> Result<Mode> {
    PublishOptions::parse(pairs).map(|o| o.mode)
}

/// Parse and compile a submitted standard, or every problem with it.
pub fn compile(text: &str) -> Result<Validator> {
    let standard = match Standard::from_json_str(text) {
        Ok(standard) => standard,
        Err(standard::Error::MetaSchema { pointer, message }) => {
            // The parser stops at the first meta-schema violation; list them all.
            let mut problems: Vec<StandardProblem> = serde_json::from_str::<Value>(text)
                .map(|document| {
                    let meta = jsonschema::draft202012::meta::validator();
                    meta.iter_errors(&document)
                        .map(|e| StandardProblem {
                            pointer: e.instance_path().as_str().to_owned(),
                            message: e.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if problems.is_empty() {
                problems.push(StandardProblem { pointer, message: format!("not a valid JSON Schema: {message}") });
            }
            return Err(Error::InvalidStandard { problems });
        }
        Err(e) => return Err(Error::InvalidStandard { problems: vec![standard_problem(&e)] }),
    };
    Validator::compile(standard).map_err(|e| {
        let problem = match &e {
            validate::Error::Standard(inner) => standard_problem(inner),
            validate::Error::Fallback { pointer, .. } => {
                StandardProblem { pointer: pointer.clone(), message: e.to_string() }
            }
            validate::Error::Batch { .. } => StandardProblem { pointer: String::new(), message: e.to_string() },
        };
        Error::InvalidStandard { problems: vec![problem] }
    })
}

/// A parse error as a problem.
fn standard_problem(error: &standard::Error) -> StandardProblem {
    let pointer = match error {
        standard::Error::Json { .. } => String::new(),
        standard::Error::MetaSchema { pointer, .. }
        | standard::Error::Invalid { pointer, .. }
        | standard::Error::UnknownFormat { pointer, .. }
        | standard::Error::UnknownCodeTable { pointer, .. } => pointer.clone(),
    };
    StandardProblem { pointer, message: error.to_string() }
}

/// What was published: status (201 or 200), id, version, and the check made
/// (mode and the number of versions compared; `None` when the document was
/// already registered).
type Published = (StatusCode, String, String, Option<(Mode, usize)>);

/// Publish through the catalog's one standards registry (the compatibility
/// and protection gates, audited there).
async fn publish_through_registry(
    state: &AppState,
    principal: &civlink_catalog::policy::Principal,
    text: &str,
    options: &PublishOptions,
    purpose: Option<String>,
) -> Result<Published> {
    use civlink_catalog::registry::{self, Publish, StandardsRegistry};
    let request = Publish {
        document: text,
        mode: options.mode,
        publisher: &principal.name,
        role: principal.role,
        allow_weaker_protection: options.allow_weaker_protection,
        reason: options.reason.as_deref(),
        purpose: purpose.as_deref(),
    };
    match StandardsRegistry::new(state.store().clone()).publish(request).await {
        Ok(registry::Published::Created { standard, checked, .. }) => {
            Ok((StatusCode::CREATED, standard.id.clone(), standard.version.clone(), Some(checked)))
        }
        Ok(registry::Published::Unchanged { standard }) => {
            Ok((StatusCode::OK, standard.id.clone(), standard.version.clone(), None))
        }
        Err(registry::Error::Invalid { pointer, message }) => {
            Err(Error::InvalidStandard { problems: vec![StandardProblem { pointer, message }] })
        }
        Err(registry::Error::Conflict { id, version }) => Err(Error::StandardConflict { id, version }),
        Err(registry::Error::Incompatible { id, version, versions, report }) => {
            let problems = report
                .incompatibilities
                .iter()
                .map(|i| {
                    let against = versions.get(i.against_version).map(String::as_str).unwrap_or("?");
                    StandardProblem {
                        pointer: i.pointer.clone(),
                        message: format!("{} (breaks {} compatibility with version {against})", i.message, i.direction),
                    }
                })
                .collect();
            Err(Error::IncompatibleStandard { id, version, mode: report.mode, problems })
        }
        Err(registry::Error::WeakensProtection { id, version, columns }) => {
            Err(Error::WeakensProtection { id, version, columns })
        }
        Err(e @ registry::Error::NotAllowed { .. }) => Err(Error::Forbidden { what: e.to_string() }),
        Err(e @ registry::Error::ReasonRequired) => Err(Error::BadRequest { message: e.to_string() }),
        Err(registry::Error::Store(e)) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/standards/{id}", tag = "standards",
    params(("id" = String, Path, description = "Standard id")),
    responses((status = 200, description = "Its versions, in registration order", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/standards/{id}`.
pub async fn versions(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::RestReadStandard).await?;
    let audit = Audit::start(&principal, AuditAction::RestReadStandard, &headers, &request);
    let result = async {
        let Path(id) = path.map_err(|_| Error::NotFound { what: "no such standard".into() })?;
        let versions = state.store().standard_versions(&id).await?;
        if versions.is_empty() {
            return Err(Error::NotFound { what: format!("no standard {id}") });
        }
        Ok(json!({ "id": id, "latest": versions.last(), "versions": versions }))
    }
    .await;
    Ok(Json(audit.finish(&state, result, None).await?))
}

#[utoipa::path(get, path = "/api/v1/standards/{id}/{version}", tag = "standards",
    params(("id" = String, Path, description = "Standard id"), ("version" = String, Path, description = "Version")),
    responses((status = 200, description = "The document as registered", body = crate::openapi::AnyObject)))]
/// `GET /api/v1/standards/{id}/{version}`.
pub async fn document(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response> {
    let request = request_text("GET", &uri);
    let principal = state.principal(&headers, AuditAction::RestReadStandard).await?;
    let audit = Audit::start(&principal, AuditAction::RestReadStandard, &headers, &request);
    let result = async {
        let Path((id, version)) = path.map_err(|_| Error::NotFound { what: "no such standard".into() })?;
        state
            .store()
            .standard(&id, &version)
            .await?
            .ok_or_else(|| Error::NotFound { what: format!("no standard {id} version {version}") })
    }
    .await;
    let mut response = Body::from(audit.finish(&state, result, None).await?).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// Percent-encode a path segment (everything but RFC 3986 unreserved characters).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "x-civlink-id": "test.things", "x-civlink-version": "1.0.0", "title": "东西",
      "type": "object", "required": ["code"],
      "properties": {"code": {"type": "string", "title": "代码"}}
    }"#;

    #[test]
    fn a_valid_standard_compiles() {
        let validator = compile(GOOD).unwrap();
        assert_eq!(validator.standard().id, "test.things");
    }

    #[test]
    fn every_meta_schema_problem_is_listed() {
        let text = r#"{
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "x-civlink-id": "test.things", "x-civlink-version": "1.0.0", "title": "东西",
          "type": "object", "minProperties": "one",
          "properties": {"code": {"type": "strin", "title": "代码"}, "n": {"minimum": "zero"}}
        }"#;
        match compile(text) {
            Err(Error::InvalidStandard { problems }) => {
                assert!(problems.len() >= 3, "{problems:?}");
                assert!(problems.iter().any(|p| p.pointer.contains("/properties/code")), "{problems:?}");
                assert!(problems.iter().any(|p| p.pointer.contains("/properties/n")), "{problems:?}");
            }
            other => panic!("expected an invalid standard, got {other:?}"),
        }
    }

    #[test]
    fn json_and_civlink_problems_have_pointers() {
        match compile("{ not json") {
            Err(Error::InvalidStandard { problems }) => assert!(problems[0].message.contains("line 1")),
            other => panic!("{other:?}"),
        }
        let no_id = GOOD.replace("\"x-civlink-id\": \"test.things\",", "");
        match compile(&no_id) {
            Err(Error::InvalidStandard { problems }) => assert_eq!(problems[0].pointer, "/x-civlink-id"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn modes_and_segments() {
        assert_eq!(mode(&[]).unwrap(), Mode::Backward);
        assert_eq!(mode(&[("compatibility".into(), "full".into())]).unwrap(), Mode::Full);
        assert!(matches!(mode(&[("compatibility".into(), "sideways".into())]), Err(Error::BadRequest { .. })));
        assert!(matches!(mode(&[("x".into(), "y".into())]), Err(Error::BadRequest { .. })));
        assert_eq!(encode_segment("gongan.population"), "gongan.population");
        assert_eq!(encode_segment("1.0/x y"), "1.0%2Fx%20y");
    }
}
