//! `civlink token create | list | revoke`: API tokens for principals.
//!
//! `create` creates (or updates) the principal and prints its new token once:
//! the catalog keeps only the token's SHA-256, so it can never be shown
//! again. Every issue and revocation is written to the audit log; a token
//! whose issue could not be audited is revoked on the spot.

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};
use civlink_catalog::model::Department;
use civlink_catalog::policy::{self, AuditAction, AuditEntry, AuditOutcome, OutcomeKind, Principal, Role};
use civlink_standards::division::{DivisionCode, DivisionTable};
use clap::Subcommand;

use crate::ingest_cmd::OpenCatalog;
use crate::{Error, Outcome, Result};

/// `civlink token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create (or update) a principal and issue it a token, printed once.
    Create {
        /// The principal's name.
        #[arg(long)]
        user: String,
        /// analyst, department_service, standards_admin or admin.
        #[arg(long)]
        role: Role,
        /// The division it works for: a 12-digit statistical division code (or a
        /// 6-digit GB/T 2260 code) in the built-in division table.
        #[arg(long)]
        division: String,
        /// The source department it belongs to (minzheng, gongan, renshe, weijian, canlian, xiangcun).
        #[arg(long)]
        department: Option<Department>,
        /// Lifetime: Nd (days), Nh (hours) or Nm (minutes), e.g. 30d. Default: no expiry.
        #[arg(long, value_parser = parse_lifetime)]
        expires: Option<Duration>,
        /// Also give the principal the duty of running household checks (核对);
        /// without it, a principal keeps the duty it has.
        #[arg(long)]
        checks: bool,
    },
    /// Every token: id, principal, role, division, expiry and status (never a secret).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id (as `token list` shows it).
        id: String,
    },
}

/// Why `token create` refused its arguments.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The division code is malformed or not in the built-in division table.
    #[error("--division {code}: {message}")]
    Division {
        /// The code given.
        code: String,
        /// Why it was refused.
        message: String,
    },
}

/// Longest lifetime accepted: ten years.
const MAX_LIFETIME_DAYS: i64 = 3650;

/// `30d`, `12h`, `90m` as a duration (positive, at most ten years).
pub(crate) fn parse_lifetime(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a lifetime: use Nd, Nh or Nm (days, hours, minutes), e.g. 30d");
    let unit = text.chars().last().ok_or_else(bad)?;
    let number = &text[..text.len() - unit.len_utf8()];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = number.parse().map_err(|_| bad())?;
    let lifetime = match unit {
        'd' => Duration::try_days(n),
        'h' => Duration::try_hours(n),
        'm' => Duration::try_minutes(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    if lifetime <= Duration::zero() {
        return Err(format!("{text:?}: a lifetime must be positive"));
    }
    if lifetime > Duration::days(MAX_LIFETIME_DAYS) {
        return Err(format!("{text:?}: a lifetime is at most {MAX_LIFETIME_DAYS} days"));
    }
    Ok(lifetime)
}

/// A division code in the built-in table (12 digits, or a 6-digit county code).
fn known_division(code: &str) -> std::result::Result<DivisionCode, TokenError> {
    let refuse = |message: String| TokenError::Division { code: code.to_owned(), message };
    let parsed =
        if code.trim().chars().count() == 6 { DivisionCode::from_county_code(code) } else { DivisionCode::parse(code) }
            .map_err(|e| refuse(e.to_string()))?;
    if !DivisionTable::builtin().contains(&parsed) {
        return Err(refuse(format!("{parsed} is not in the division table")));
    }
    Ok(parsed)
}

/// `county 630102 城东区`: level, scope prefix and name.
pub fn describe_division(code: &DivisionCode) -> String {
    let name = DivisionTable::builtin().name(code).unwrap_or("?");
    format!("{} {} {name}", code.level(), code.scope_prefix())
}

/// Who runs the command, for the audit log (informational: the local
/// operator already has the catalog's files or credentials).
pub fn operator() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

/// A time for tables: `2026-03-01 08:00:00Z`.
pub fn show_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Run a `token` subcommand.
pub async fn run(command: TokenCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    let store = &catalog.store;
    let text = match command {
        TokenCommand::Create { user, role, division: code, department, expires, checks } => {
            let division = known_division(&code)?;
            let principal = Principal { name: user, department, role, division };
            store.create_principal(&principal).await.map_err(Error::Policy)?;
            if checks {
                store.allow_checks(&principal.name, &operator()).await.map_err(Error::Store)?;
            }
            let duty = if checks { ", may run household checks" } else { "" };
            let expires_at = expires.map(|lifetime| Utc::now() + lifetime);
            let token = store.create_token(&principal.name, expires_at).await.map_err(Error::Policy)?;
            let audit = AuditEntry::new(
                operator(),
                AuditAction::TokenCreate,
                AuditOutcome::new(
                    OutcomeKind::Ok,
                    format!("token {} for {} ({role}, {division}{duty})", token.id, principal.name),
                ),
            );
            if let Err(e) = store.append_audit(&audit).await {
                // An unaudited token must not stay usable.
                store.revoke_token(&token.id).await.map_err(Error::Policy)?;
                return Err(Error::Policy(e));
            }
            let mut out = String::new();
            let department = match principal.department {
                Some(d) => format!("{} ({})", d.code(), d.name_zh()),
                None => "none".into(),
            };
            let _ = writeln!(
                out,
                "principal {}: {role}, department {department}, division {}{duty}",
                principal.name,
                describe_division(&division)
            );
            let expiry = match token.expires_at {
                Some(t) => format!("expires {}", show_time(t)),
                None => "never expires".into(),
            };
            let _ = writeln!(out, "token {} ({expiry}):", token.id);
            let _ = writeln!(out);
            let _ = writeln!(out, "  {}", token.secret);
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "This token is shown only once and cannot be shown again: the catalog keeps only its hash. \
                 Store it now; revoke it with `civlink token revoke {}`.",
                token.id
            );
            out
        }
        TokenCommand::List => list(catalog).await?,
        TokenCommand::Revoke { id } => {
            let info = store
                .token(&id)
                .await
                .map_err(Error::Policy)?
                .ok_or_else(|| Error::Policy(policy::Error::UnknownToken { id: id.clone() }))?;
            let already = info.revoked_at.is_some();
            store.revoke_token(&id).await.map_err(Error::Policy)?;
            if already {
                format!("token {id} ({}) was already revoked\n", info.principal)
            } else {
                let audit = AuditEntry::new(
                    operator(),
                    AuditAction::TokenRevoke,
                    AuditOutcome::new(OutcomeKind::Ok, format!("token {id} of {} revoked", info.principal)),
                );
                store.append_audit(&audit).await.map_err(Error::Policy)?;
                format!("token {id} ({}) revoked\n", info.principal)
            }
        }
    };
    print!("{text}");
    Ok(Outcome::Clean)
}

/// The token table.
async fn list(catalog: &OpenCatalog) -> Result<String> {
    let tokens = catalog.store.tokens().await.map_err(Error::Policy)?;
    if tokens.is_empty() {
        return Ok("no tokens\n".into());
    }
    let principals = catalog.store.principals().await.map_err(Error::Policy)?;
    let now = Utc::now();
    let rows: Vec<[String; 7]> = tokens
        .iter()
        .map(|t| {
            let principal = principals.iter().find(|p| p.name == t.principal);
            [
                t.id.clone(),
                t.principal.clone(),
                principal.map(|p| p.role.to_string()).unwrap_or_else(|| "?".into()),
                principal.map(|p| p.division.to_string()).unwrap_or_else(|| "?".into()),
                show_time(t.created_at),
                t.expires_at.map(show_time).unwrap_or_else(|| "never".into()),
                t.status(now).into(),
            ]
        })
        .collect();
    Ok(table(&["ID", "PRINCIPAL", "ROLE", "DIVISION", "CREATED", "EXPIRES", "STATUS"], &rows))
}

/// Columns padded to the widest cell (by characters).
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let rows: Vec<&[String]> = rows.iter().map(|r| r.as_slice()).collect();
    columns(header, &rows)
}

/// [`table`] for a number of columns known only at run time.
pub fn columns<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.as_ref().iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_lifetime(" 12h ").unwrap(), Duration::hours(12));
        assert_eq!(parse_lifetime("90m").unwrap(), Duration::minutes(90));
        for bad in ["", "d", "30", "30s", "-1d", "0d", "+1d", "1.5d", "３０d", "30天", "99999999999999999999d", "3651d"]
        {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn divisions_must_exist() {
        let county = known_division("630102000000").unwrap();
        assert_eq!(describe_division(&county), "county 630102 城东区");
        assert_eq!(known_division("630102").unwrap(), county);
        assert_eq!(describe_division(&known_division("630000000000").unwrap()), "province 63 青海省");
        for bad in ["", "630199000000", "63010200000x", "999999999999", "６３０１０２"] {
            assert!(known_division(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tables_pad_by_characters() {
        let t = table(&["A", "B"], &[["城东区".into(), "x".into()], ["1".into(), "".into()]]);
        assert_eq!(t, "A    B\n城东区  x\n1\n");
    }
}
