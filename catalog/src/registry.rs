//! The standards registry: the one way a standard version is published,
//! whoever publishes it (REST, `civlink ingest` registering a job's
//! standard, the CLI).
//!
//! [`StandardsRegistry::publish`] takes a document and, before anything is
//! stored:
//!
//! 1. parses it (a civlink standard: JSON Schema 2020-12 with `x-civlink-*`);
//! 2. answers an identical re-publication as [`Published::Unchanged`], and
//!    refuses the same id and version with another document;
//! 3. checks compatibility with the registered versions in the requested
//!    [`Mode`] (the full report on failure);
//! 4. refuses a version that **weakens protection** against the latest
//!    registered one — a mask dropped or weakened, a sensitivity lowered, an
//!    `x-civlink-pii` removed — naming every such column, unless the publisher
//!    passes [`Publish::allow_weaker_protection`]; even then only an admin
//!    may, and the change is audited with the columns and the reason given.
//!
//! Every publication is recorded in the audit chain
//! ([`AuditAction::StandardPublish`]).

use serde_json::Value;

use civlink_standards::compat::{self, Mode};
use civlink_standards::mask::MaskStrategy;
use civlink_standards::standard::Standard;

use crate::policy::{AuditAction, AuditEntry, AuditOutcome, OutcomeKind, Role};
use crate::store::{self, MetadataStore};

/// Why a standard was not published.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document is not a valid civlink standard.
    #[error("invalid standard: {message}")]
    Invalid {
        /// JSON pointer into the document ("" = the whole document).
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// The id and version are registered with a different document.
    #[error("standard {id} version {version} is already registered with a different document; publish a new version")]
    Conflict {
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
    },
    /// The new version breaks compatibility with registered versions.
    #[error("standard {id} version {version} is not {} compatible with the registered versions", report.mode)]
    Incompatible {
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
        /// The registered versions, in the order the report's indices refer to.
        versions: Vec<String>,
        /// The full report.
        report: compat::Report,
    },
    /// The new version protects some columns less than the latest one.
    #[error(
        "standard {id} version {version} weakens the protection of {}; publish with allow_weaker_protection (admin only) if that is intended",
        columns.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", ")
    )]
    WeakensProtection {
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
        /// Every weakened column, and how.
        columns: Vec<Weakening>,
    },
    /// Weakening was asked for by someone who is not an admin.
    #[error("only an admin may publish a standard that weakens protection ({who} is {role})")]
    NotAllowed {
        /// Who asked.
        who: String,
        /// Their role.
        role: Role,
    },
    /// Weakening was asked for without saying why.
    #[error("publishing a standard that weakens protection needs a reason")]
    ReasonRequired,
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How one column is protected less than before.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Weakening {
    /// The column.
    pub column: String,
    /// What changed, e.g. `mask pseudonym → none`.
    pub change: String,
}

/// A publication request.
#[derive(Debug, Clone)]
pub struct Publish<'a> {
    /// The standard document (JSON text, stored as given).
    pub document: &'a str,
    /// The compatibility mode to check.
    pub mode: Mode,
    /// Who publishes (a principal's name, or the CLI operator).
    pub publisher: &'a str,
    /// Their role.
    pub role: Role,
    /// Publish even though it weakens protection (admin only, with a reason).
    pub allow_weaker_protection: bool,
    /// Why (required with `allow_weaker_protection`).
    pub reason: Option<&'a str>,
    /// The purpose stated with the request, for the audit entry.
    pub purpose: Option<&'a str>,
}

/// What a publication did.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    /// A new version was registered.
    Created {
        /// The parsed standard.
        standard: Box<Standard>,
        /// The mode checked and the number of versions compared.
        checked: (Mode, usize),
        /// Columns whose protection was weakened (allowed explicitly).
        weakened: Vec<Weakening>,
    },
    /// The same document was already registered under this id and version.
    Unchanged {
        /// The parsed standard.
        standard: Box<Standard>,
    },
}

impl Published {
    /// The standard published.
    pub fn standard(&self) -> &Standard {
        match self {
            Published::Created { standard, .. } | Published::Unchanged { standard } => standard,
        }
    }
}

/// The standards registry over a metadata store.
#[derive(Debug, Clone)]
pub struct StandardsRegistry {
    store: MetadataStore,
}

impl StandardsRegistry {
    /// The registry of `store`.
    pub fn new(store: MetadataStore) -> StandardsRegistry {
        StandardsRegistry { store }
    }

    /// Publish a standard version (see the module docs).
    pub async fn publish(&self, request: Publish<'_>) -> Result<Published> {
        let standard = Standard::from_json_str(request.document).map_err(|e| Error::Invalid {
            pointer: match &e {
                civlink_standards::standard::Error::Json { .. } => String::new(),
                civlink_standards::standard::Error::MetaSchema { pointer, .. }
                | civlink_standards::standard::Error::Invalid { pointer, .. }
                | civlink_standards::standard::Error::UnknownFormat { pointer, .. }
                | civlink_standards::standard::Error::UnknownCodeTable { pointer, .. } => pointer.clone(),
            },
            message: e.to_string(),
        })?;
        let (id, version) = (standard.id.clone(), standard.version.clone());
        match self.store.standard(&id, &version).await? {
            Some(existing) if existing == request.document => {
                return Ok(Published::Unchanged { standard: Box::new(standard) });
            }
            Some(_) => return Err(Error::Conflict { id, version }),
            None => {}
        }
        let versions = self.store.standard_versions(&id).await?;
        let mut previous = Vec::with_capacity(versions.len());
        for v in &versions {
            let document = self.store.standard(&id, v).await?.ok_or_else(|| store::Error::Corrupt {
                what: format!("standard {id} version {v}"),
                message: "listed but has no document".into(),
            })?;
            previous.push(document);
        }
        let values = previous
            .iter()
            .zip(&versions)
            .map(|(d, v)| {
                serde_json::from_str::<Value>(d).map_err(|e| {
                    Error::Store(store::Error::Corrupt {
                        what: format!("standard {id} version {v}"),
                        message: e.to_string(),
                    })
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let report = compat::check(&standard.document, &values, request.mode).map_err(|e| match &e {
            compat::Error::NotAnObject { document: compat::Document::New, pointer }
            | compat::Error::InvalidKeyword { document: compat::Document::New, pointer, .. } => {
                Error::Invalid { pointer: pointer.clone(), message: e.to_string() }
            }
            _ => Error::Store(store::Error::Corrupt {
                what: format!("registered versions of standard {id}"),
                message: e.to_string(),
            }),
        })?;
        if !report.is_compatible() {
            return Err(Error::Incompatible { id, version, versions, report });
        }
        let weakened = match previous.last() {
            // The latest registered version: what datasets rebinding to this one move from.
            Some(latest) => match Standard::from_json_str(latest) {
                Ok(latest) => weakenings(&latest, &standard),
                Err(e) => {
                    return Err(Error::Store(store::Error::Corrupt {
                        what: format!("standard {id} version {}", versions.last().map(String::as_str).unwrap_or("?")),
                        message: e.to_string(),
                    }));
                }
            },
            None => Vec::new(),
        };
        if !weakened.is_empty() {
            if !request.allow_weaker_protection {
                return Err(Error::WeakensProtection { id, version, columns: weakened });
            }
            if request.role != Role::Admin {
                return Err(Error::NotAllowed { who: request.publisher.to_owned(), role: request.role });
            }
            if request.reason.is_none_or(|r| r.trim().is_empty()) {
                return Err(Error::ReasonRequired);
            }
        }
        self.store.register_standard(&id, &version, request.document).await.map_err(|e| match e {
            store::Error::StandardConflict { id, version } => Error::Conflict { id, version },
            other => Error::Store(other),
        })?;
        let mut detail =
            format!("standard {id} {version} ({} checked against {})", request.mode, report.checked_against);
        if !weakened.is_empty() {
            let columns: Vec<String> = weakened.iter().map(|w| format!("{}: {}", w.column, w.change)).collect();
            detail.push_str(&format!(
                "; protection weakened, allowed by {}: {}; reason: {}",
                request.publisher,
                columns.join("; "),
                request.reason.unwrap_or_default()
            ));
        }
        let mut entry = AuditEntry::new(
            request.publisher,
            AuditAction::StandardPublish,
            AuditOutcome::new(OutcomeKind::Ok, detail),
        );
        entry.datasets = vec![format!("standard {id} {version}")];
        entry.purpose = request.purpose.map(str::to_owned);
        // Registered and then not audited: a weakening without its record is
        // not acceptable, so the error reaches the publisher (the version
        // stays registered; publishing it again is idempotent and audits it).
        self.store.append_audit(&entry).await.map_err(|e| match e {
            crate::policy::Error::Store(store) => Error::Store(store),
            other => Error::Store(store::Error::Invalid { what: "audit entry", message: other.to_string() }),
        })?;
        Ok(Published::Created {
            standard: Box::new(standard),
            checked: (request.mode, report.checked_against),
            weakened,
        })
    }
}

/// How much a mask hides, for comparing two: a higher rank hides more.
/// `keep_ends` hides less the more characters it keeps.
fn mask_strength(mask: &MaskStrategy) -> (u8, std::cmp::Reverse<usize>) {
    match mask {
        MaskStrategy::None => (0, std::cmp::Reverse(0)),
        MaskStrategy::KeepEnds { first, last } => (1, std::cmp::Reverse(first.saturating_add(*last))),
        MaskStrategy::Name => (2, std::cmp::Reverse(0)),
        MaskStrategy::Pseudonym => (3, std::cmp::Reverse(0)),
        MaskStrategy::Full => (4, std::cmp::Reverse(0)),
        MaskStrategy::Redact => (5, std::cmp::Reverse(0)),
    }
}

/// The columns `new` protects less than `old`: a mask that hides less
/// (including one dropped), a lower sensitivity, `x-civlink-pii` removed.
/// Columns `new` drops are not weakened (they are gone).
pub fn weakenings(old: &Standard, new: &Standard) -> Vec<Weakening> {
    let mut out = Vec::new();
    for before in &old.properties {
        let Some(after) = new.property(&before.name) else { continue };
        let mut changes = Vec::new();
        let (was, now) = (before.effective_mask(), after.effective_mask());
        if weaker_mask(&was, &now) {
            changes.push(format!("mask {} → {}", was.describe(), now.describe()));
        }
        if after.sensitivity < before.sensitivity {
            changes.push(format!("sensitivity {:?} → {:?}", before.sensitivity, after.sensitivity).to_lowercase());
        }
        if before.pii && !after.pii {
            changes.push("x-civlink-pii removed".to_owned());
        }
        if !changes.is_empty() {
            out.push(Weakening { column: before.name.clone(), change: changes.join(", ") });
        }
    }
    out
}

fn weaker_mask(was: &MaskStrategy, now: &MaskStrategy) -> bool {
    mask_strength(now) < mask_strength(was)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard(version: &str, id_column: &str) -> Standard {
        Standard::from_json_str(&format!(
            r#"{{
              "$schema": "https://json-schema.org/draft/2020-12/schema",
              "x-civlink-id": "test.people", "x-civlink-version": "{version}",
              "title": "人", "type": "object",
              "properties": {{
                "id_number": {id_column},
                "phone": {{"type": "string", "title": "电话", "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true,
                           "x-civlink-mask": {{"strategy": "keep_ends", "first": 3, "last": 4}}}},
                "note": {{"type": "string", "title": "备注"}}
              }}
            }}"#
        ))
        .unwrap()
    }

    const PSEUDONYM: &str = r#"{"type": "string", "title": "身份证号", "x-civlink-sensitivity": "sensitive",
        "x-civlink-pii": true, "x-civlink-mask": {"strategy": "pseudonym"}}"#;

    #[test]
    fn weakened_columns_are_named_and_strengthened_ones_are_not() {
        let old = standard("1", PSEUDONYM);
        assert!(weakenings(&old, &old).is_empty());
        let unmasked = standard("2", r#"{"type": "string", "title": "身份证号", "x-civlink-sensitivity": "internal"}"#);
        let w = weakenings(&old, &unmasked);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].column, "id_number");
        assert!(w[0].change.contains("mask") && w[0].change.contains("sensitivity") && w[0].change.contains("pii"));
        let full = standard(
            "2",
            r#"{"type": "string", "title": "身份证号", "x-civlink-sensitivity": "secret", "x-civlink-pii": true,
                "x-civlink-mask": {"strategy": "full"}}"#,
        );
        assert!(weakenings(&old, &full).is_empty(), "a stronger mask and a higher sensitivity weaken nothing");
        let keep_more = standard(
            "2",
            r#"{"type": "string", "title": "身份证号", "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true,
                "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}}"#,
        );
        assert_eq!(weakenings(&old, &keep_more).len(), 1);
        assert!(weaker_mask(
            &MaskStrategy::KeepEnds { first: 3, last: 4 },
            &MaskStrategy::KeepEnds { first: 6, last: 4 }
        ));
        assert!(!weaker_mask(&MaskStrategy::KeepEnds { first: 6, last: 4 }, &MaskStrategy::Name));
    }
}
