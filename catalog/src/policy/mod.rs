//! Access policy: principals, API tokens, grants, the access decision, and
//! the tamper-evident audit log.
//!
//! [`decide`] is the single source of truth for what a principal may read of
//! a dataset; Flight SQL and REST both ask it (through
//! [`MetadataStore::access`](crate::store::MetadataStore::access)) and apply
//! the [`Access`] it returns: the readable columns with their masks, and the
//! division prefix rows must start with.
//!
//! # The rules
//!
//! **Who may read a dataset** follows its GB/T 21063 sharing type:
//!
//! | sharing | who reads | which columns |
//! |---|---|---|
//! | `unconditional` (无条件共享) | every authenticated principal | all |
//! | `conditional` (有条件共享) | principals with a live grant (to themselves or to their department) | the union of the live grants' columns (`None` = all) |
//! | `not_shared` (不予共享) | principals of the owning department | all |
//!
//! On top of the table:
//!
//! * **Admin** reads every dataset, every column and every row.
//! * **The owning department** (`dataset.spec.id.department`) reads all
//!   columns of its own datasets whatever their sharing type: it is the
//!   source of the data, so a grant to read its own conditional dataset
//!   would be a formality. (Rows are still scoped, see below.)
//! * **Grants never open a `not_shared` dataset** to anyone outside the
//!   owning department: 不予共享 means not shared. On such a dataset a grant
//!   can only unmask columns for the owner's principals.
//! * A grant is **live** while `expires_at` is `None` or later than `now`
//!   (a grant expiring exactly at `now` is expired). Its `purpose` is the
//!   recorded legal basis, shown and audited; it is not matched against
//!   anything here.
//! * The roles other than Admin (`analyst`, `department_service`,
//!   `standards_admin`) read under the same rules: the role gates
//!   administrative operations (registering standards, issuing tokens),
//!   not data.
//!
//! **Masking**: every column whose property's
//! [`effective_mask`](civlink_standards::standard::Property::effective_mask)
//! is not `None` (sensitive and secret columns, and any column with an
//! explicit `x-civlink-mask`) is masked, unless a live grant that applies to
//! the principal, covers the column and has `unmasked = true`. This holds
//! for Admin and the owning department too: seeing personal information in
//! clear always takes an explicit, expiring, audited grant.
//!
//! **Row scope**: every principal except Admin is confined to the rows
//! whose division code starts with its division's
//! [`scope_prefix`](civlink_standards::division::DivisionCode::scope_prefix)
//! (a county analyst at `630102000000` sees rows `630102…`). A dataset
//! without a division column cannot be scoped, so it is readable only by
//! province-level principals (and Admin): a county analyst must not see
//! province-wide data it has no way to be confined in. Admin's `row_prefix`
//! is `None`.
//!
//! Anything inconsistent fails closed: a standard that is not the one the
//! dataset is bound to, or a grant whose columns name nothing readable,
//! yields no access.
//!
//! # Tokens
//!
//! A token is `clk_<id>_<secret>`: a 16-hex-digit id (what `token list` and
//! `token revoke` name) and 64 hex digits of secret. The store keeps only the
//! SHA-256 of the whole token, compares hashes in constant time, and never
//! writes the token anywhere; [`IssuedToken`]'s `Debug` hides it.
//!
//! # The audit log
//!
//! Every entry carries `hash = SHA-256(prev_hash ‖ canonical JSON of the
//! entry)`, the JSON including the entry's `seq` and `at`, and the first
//! entry chaining from [`GENESIS_HASH`]. Appends are serialised (one writer
//! at a time) so the chain never forks, and `seq` runs 1, 2, 3, … without
//! gaps. [`MetadataStore::verify_audit`](crate::store::MetadataStore::verify_audit)
//! recomputes the chain and names every edited, inserted, deleted or
//! reordered entry. What a hash chain without a secret key cannot show is a
//! truncated tail, or a rewrite of the chain from some entry onwards with
//! recomputed hashes: [`AuditReport::head`] is printed so that operators can
//! anchor the head outside the database and compare.

//!
//! # Layout
//!
//! | module | what lives there |
//! |---|---|
//! | this one | [`Error`], [`Role`], [`Principal`] |
//! | [`access`] | grants ([`Grant`], [`GrantSubject`]), [`Access`] and [`decide`] |
//! | [`token`] | API tokens: their shape, issuing, hashing ([`IssuedToken`], [`TokenInfo`]) |
//! | [`audit`] | the hash-chained audit log: [`AuditEntry`] with its [`AuditAction`] and [`AuditOutcome`], chain checking |

use std::fmt;
use std::str::FromStr;

use civlink_standards::division::{DivisionCode, Level};
use serde::{Deserialize, Serialize};

use crate::model::Department;
use crate::store;

pub mod access;
pub mod audit;
pub mod token;

pub(crate) use access::check_grant_columns;
pub use access::{Access, ColumnAccess, Grant, GrantSubject, decide};
pub use audit::*;
pub use token::{IssuedToken, TOKEN_PREFIX, TokenInfo};
pub(crate) use token::{constant_time_eq, new_token, token_hash, token_id};

/// Why a policy operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The metadata store failed (including an unknown dataset).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// No principal with this name.
    #[error("unknown principal {name}")]
    UnknownPrincipal {
        /// The name given.
        name: String,
    },
    /// Not a civlink token, or not the secret of the token it names. The
    /// message never repeats what was presented.
    #[error("invalid token")]
    BadToken,
    /// The token is past its expiry.
    #[error("token {id} has expired")]
    TokenExpired {
        /// The token's id.
        id: String,
    },
    /// The token was revoked.
    #[error("token {id} has been revoked")]
    TokenRevoked {
        /// The token's id.
        id: String,
    },
    /// No token with this id.
    #[error("unknown token {id}")]
    UnknownToken {
        /// The id given.
        id: String,
    },
    /// An argument that cannot be recorded or used as given.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// Which argument, e.g. "role".
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The dataset is bound to a standard version that is not registered.
    #[error("dataset {dataset} follows standard {id} version {version}, which is not registered")]
    MissingStandard {
        /// The dataset.
        dataset: String,
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
    },
    /// The registered standard document does not parse.
    #[error("standard {id} version {version} (of dataset {dataset}) does not parse: {message}")]
    BadStandard {
        /// The dataset.
        dataset: String,
        /// Standard id.
        id: String,
        /// Standard version.
        version: String,
        /// The parser's message.
        message: String,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a principal is, for administration (data access is decided by
/// department, division and grants; only [`Role::Admin`] changes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads data under the sharing rules, grants and row scope.
    Analyst,
    /// A department's service account (ingestion, exchange).
    DepartmentService,
    /// Registers and evolves data standards.
    StandardsAdmin,
    /// Reads everything, every row; still masked without an unmasked grant.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Analyst, Role::DepartmentService, Role::StandardsAdmin, Role::Admin];

    /// The stable code, as stored and parsed.
    pub fn code(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::DepartmentService => "department_service",
            Role::StandardsAdmin => "standards_admin",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(value: &str) -> Result<Self> {
        let v = value.trim();
        Role::ALL.into_iter().find(|r| r.code().eq_ignore_ascii_case(v)).ok_or_else(|| Error::Invalid {
            what: "role",
            message: format!(
                "\"{value}\" is not a role; expected analyst, department_service, standards_admin or admin"
            ),
        })
    }
}

/// Someone (or a service) that authenticates with a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Unique name (a user name or a service account's name).
    pub name: String,
    /// The source department it belongs to, if any.
    pub department: Option<Department>,
    /// Its role.
    pub role: Role,
    /// The division it works for: its rows are those within this division.
    pub division: DivisionCode,
}

impl Principal {
    /// The level of government it works at (省/市/县/乡/村).
    pub fn level(&self) -> Level {
        self.division.level()
    }
}

/// Check a principal's or token's name: 1 to 128 characters, no control
/// characters, no surrounding whitespace.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.chars().count() > 128 {
        Some("it is longer than 128 characters".to_owned())
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters".to_owned())
    } else if name.trim() != name {
        Some("it starts or ends with whitespace".to_owned())
    } else {
        None
    };
    match problem {
        Some(message) => Err(Error::Invalid { what, message: format!("\"{}\": {message}", name.escape_debug()) }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.code().parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), serde_json::Value::from(role.code()));
        }
        assert_eq!(" Admin ".parse::<Role>().unwrap(), Role::Admin);
        for bad in ["", "root", "管理员", "admin\u{0}"] {
            assert!(matches!(bad.parse::<Role>(), Err(Error::Invalid { what: "role", .. })), "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("principal", "张三").is_ok());
        assert!(check_name("principal", "svc-gongan.ingest@63").is_ok());
        for bad in ["", " a", "a ", "a\nb", "\u{7}", &"x".repeat(129)] {
            assert!(matches!(check_name("principal", bad), Err(Error::Invalid { what: "principal", .. })), "{bad:?}");
        }
    }
}
