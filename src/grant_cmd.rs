//! `civlink grant create | list | revoke`: grants on datasets, the same
//! catalog calls as `POST|GET|DELETE /api/v1/admin/grants`
//! ([`MetadataStore::grant`](civlink_catalog::store::MetadataStore::grant),
//! [`MetadataStore::grants`](civlink_catalog::store::MetadataStore::grants),
//! [`MetadataStore::revoke_grant`](civlink_catalog::store::MetadataStore::revoke_grant)),
//! each written to the audit log. A grant whose making could not be audited
//! is withdrawn on the spot.

use chrono::{DateTime, Duration, Utc};
use civlink_catalog::model::{DatasetId, Department};
use civlink_catalog::policy::{self, AuditAction, AuditEntry, AuditOutcome, Grant, GrantSubject, OutcomeKind};
use clap::Subcommand;

use crate::ingest_cmd::OpenCatalog;
use crate::token_cmd::{operator, parse_lifetime, show_time, table};
use crate::{Error, Outcome, Result};

/// `civlink grant` subcommands.
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Grant a principal, or every principal of a department, (some columns of) a dataset.
    Create {
        /// To this principal.
        #[arg(long, conflicts_with = "department", required_unless_present = "department")]
        principal: Option<String>,
        /// To every principal of this department (minzheng, gongan, renshe, weijian, canlian, xiangcun).
        #[arg(long)]
        department: Option<Department>,
        /// The dataset, department.name.
        #[arg(long)]
        dataset: DatasetId,
        /// Only these columns (comma-separated; default: every column).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Show the covered columns in clear.
        #[arg(long)]
        unmasked: bool,
        /// The legal basis, recorded and audited.
        #[arg(long)]
        purpose: Option<String>,
        /// Grantees must state a purpose (x-civlink-purpose) to read the dataset.
        #[arg(long, requires = "purpose")]
        purpose_required: bool,
        /// Lifetime: Nd, Nh or Nm (e.g. 90d). Default: no expiry.
        #[arg(long, value_parser = parse_lifetime, conflicts_with = "expires_at")]
        expires: Option<Duration>,
        /// Expiry as an RFC 3339 time (2026-12-31T00:00:00Z).
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
        /// The grant's id (default: g- and a fresh UUID); an existing id is refused.
        #[arg(long)]
        id: Option<String>,
    },
    /// Grants, oldest first: on a dataset, or applying to a principal.
    List {
        /// Only grants on this dataset.
        #[arg(long)]
        dataset: Option<DatasetId>,
        /// Only grants that apply to this principal (to it, or to its department).
        #[arg(long)]
        principal: Option<String>,
    },
    /// Withdraw a grant by id.
    Revoke {
        /// The grant's id (as `grant list` shows it).
        id: String,
    },
}

fn invalid(what: &'static str, message: impl Into<String>) -> Error {
    Error::Policy(policy::Error::Invalid { what, message: message.into() })
}

/// What a grant gives, in a few words.
fn describe(g: &Grant) -> String {
    let columns = g.columns.as_ref().map(|c| c.join(",")).unwrap_or_else(|| "every column".into());
    let shown = if g.unmasked { "in clear" } else { "masked" };
    let purpose = match (&g.purpose, g.purpose_required) {
        (Some(p), true) => format!(", purpose {p} (must be stated)"),
        (Some(p), false) => format!(", purpose {p}"),
        (None, _) => String::new(),
    };
    format!("{}: {} reads {} ({columns}) {shown}{purpose}", g.id, g.subject, g.dataset)
}

/// Run a `grant` subcommand.
pub async fn run(command: GrantCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    let store = &catalog.store;
    let text = match command {
        GrantCommand::Create {
            principal,
            department,
            dataset,
            columns,
            unmasked,
            purpose,
            purpose_required,
            expires,
            expires_at,
            id,
        } => {
            let subject = match (principal, department) {
                (Some(name), None) => GrantSubject::Principal(name),
                (None, Some(department)) => GrantSubject::Department(department),
                _ => return Err(invalid("grant subject", "give exactly one of --principal and --department")),
            };
            let expires_at = expires.map(|lifetime| Utc::now() + lifetime).or(expires_at);
            if expires_at.is_some_and(|t| t <= Utc::now()) {
                return Err(invalid("grant expiry", "--expires-at must lie in the future"));
            }
            let grant = Grant {
                id: id.unwrap_or_else(|| format!("g-{}", uuid::Uuid::new_v4().simple())),
                subject,
                dataset,
                columns,
                unmasked,
                purpose: purpose.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
                purpose_required,
                expires_at,
            };
            if store.grants().await.map_err(Error::Policy)?.iter().any(|g| g.id == grant.id) {
                return Err(invalid("grant id", format!("{} exists: revoke it first, or choose another id", grant.id)));
            }
            store.grant(&grant).await.map_err(Error::Policy)?;
            let mut audit = AuditEntry::new(
                operator(),
                AuditAction::Grant,
                AuditOutcome::new(OutcomeKind::Ok, civlink_query::redact::quoted_values(&describe(&grant))),
            );
            audit.datasets = vec![grant.dataset.to_string()];
            if let Err(e) = store.append_audit(&audit).await {
                // An unaudited grant must not stay in force.
                store.revoke_grant(&grant.id).await.map_err(Error::Policy)?;
                return Err(Error::Policy(e));
            }
            let expiry =
                grant.expires_at.map(|t| format!("expires {}", show_time(t))).unwrap_or("never expires".into());
            format!("grant {}; {expiry}\n", describe(&grant))
        }
        GrantCommand::List { dataset, principal } => {
            let principal = match principal {
                Some(name) => Some(
                    store
                        .principal(&name)
                        .await
                        .map_err(Error::Policy)?
                        .ok_or(Error::Policy(policy::Error::UnknownPrincipal { name }))?,
                ),
                None => None,
            };
            let grants: Vec<Grant> = store
                .grants()
                .await
                .map_err(Error::Policy)?
                .into_iter()
                .filter(|g| dataset.as_ref().is_none_or(|d| g.dataset == *d))
                .filter(|g| principal.as_ref().is_none_or(|p| g.subject.includes(p)))
                .collect();
            let audit = AuditEntry::new(
                operator(),
                AuditAction::GrantList,
                AuditOutcome::new(OutcomeKind::Ok, format!("{} grant(s) listed", grants.len())),
            );
            store.append_audit(&audit).await.map_err(Error::Policy)?;
            list(&grants)
        }
        GrantCommand::Revoke { id } => {
            let grant = store
                .grants()
                .await
                .map_err(Error::Policy)?
                .into_iter()
                .find(|g| g.id == id)
                .ok_or_else(|| Error::Policy(policy::Error::UnknownGrant { id: id.clone() }))?;
            store.revoke_grant(&id).await.map_err(Error::Policy)?;
            let mut audit = AuditEntry::new(
                operator(),
                AuditAction::GrantRevoke,
                AuditOutcome::new(OutcomeKind::Ok, format!("grant {id} ({}) revoked", grant.subject)),
            );
            audit.datasets = vec![grant.dataset.to_string()];
            store.append_audit(&audit).await.map_err(Error::Policy)?;
            format!("grant {id} revoked: {} no longer reads {} under it\n", grant.subject, grant.dataset)
        }
    };
    print!("{text}");
    Ok(Outcome::Clean)
}

/// The grant table.
fn list(grants: &[Grant]) -> String {
    if grants.is_empty() {
        return "no grants\n".into();
    }
    let now = Utc::now();
    let rows: Vec<[String; 8]> = grants
        .iter()
        .map(|g| {
            [
                g.id.clone(),
                g.subject.to_string(),
                g.dataset.to_string(),
                g.columns.as_ref().map(|c| c.join(",")).unwrap_or_else(|| "*".into()),
                if g.unmasked { "clear" } else { "masked" }.into(),
                match (&g.purpose, g.purpose_required) {
                    (Some(p), true) => format!("{p} (required)"),
                    (Some(p), false) => p.clone(),
                    (None, _) => "-".into(),
                },
                g.expires_at.map(show_time).unwrap_or_else(|| "never".into()),
                if g.is_live(now) { "live" } else { "expired" }.into(),
            ]
        })
        .collect();
    table(&["ID", "SUBJECT", "DATASET", "COLUMNS", "SHOWN", "PURPOSE", "EXPIRES", "STATUS"], &rows)
}
