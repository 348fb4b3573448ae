//! Principals and their roles, and the policy's error type.

use std::fmt;
use std::str::FromStr;

use civlink_standards::division::{DivisionCode, Level};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::Department;

/// Why a policy operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The metadata store failed (including an unknown dataset).
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// No grant with this id.
    #[error("unknown grant {id}")]
    UnknownGrant {
        /// The id given.
        id: String,
    },
    /// A grant with this id exists (creating never replaces one).
    #[error("grant {id} exists: revoke it first, or choose another id")]
    GrantExists {
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
