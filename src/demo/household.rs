//! The demo's household check (核对): a province check officer (民政, with
//! the check duty) runs one check for a household the generator planted,
//! and the report's flags are held to the ground truth member by member.

use std::collections::BTreeSet;
use std::path::Path;

use civlink_catalog::model::Department;
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, OutcomeKind, Principal, Role};
use civlink_standards::division::DivisionCode;
use civlink_synth::{Applicant, GroundTruth};
use civlink_verify::household::{CheckRequest, CheckSources, run_check};

use super::DEMO_PROVINCE;
use crate::ingest_cmd::OpenCatalog;
use crate::verify_cmd::{VerifyError, factory};
use crate::{Error, Result};

/// The demo's check officer.
pub const CHECK_OFFICER: &str = "demo-check-officer";

/// The consent reference the demo's check carries.
pub const DEMO_CONSENT: &str = "SQ-DEMO-0001";

/// Create the check officer (once), give it the duty, and issue a token.
pub async fn issue_check_officer(catalog: &OpenCatalog) -> Result<String> {
    if catalog.store.principal(CHECK_OFFICER).await.map_err(Error::Policy)?.is_none() {
        let division = DivisionCode::parse(DEMO_PROVINCE)
            .map_err(|e| Error::Demo { message: format!("demo division {DEMO_PROVINCE}: {e}") })?;
        let principal = Principal {
            name: CHECK_OFFICER.into(),
            department: Some(Department::Minzheng),
            role: Role::Analyst,
            division,
        };
        catalog.store.create_principal(&principal).await.map_err(Error::Policy)?;
    }
    catalog.store.allow_checks(CHECK_OFFICER, &crate::token_cmd::operator()).await.map_err(Error::Store)?;
    let expires_at = chrono::Utc::now() + chrono::Duration::days(7);
    let token = catalog.store.create_token(CHECK_OFFICER, Some(expires_at)).await.map_err(Error::Policy)?;
    let audit = AuditEntry::new(
        crate::token_cmd::operator(),
        AuditAction::TokenCreate,
        AuditOutcome::new(
            OutcomeKind::Ok,
            format!("token {} for {CHECK_OFFICER} (demo check officer, may run household checks)", token.id),
        ),
    );
    catalog.store.append_audit(&audit).await.map_err(Error::Policy)?;
    Ok(token.secret)
}

/// What the step did.
pub struct Checked {
    /// The printed report.
    pub report: String,
    /// Differences from the ground truth.
    pub mismatches: Vec<String>,
    /// The command line that repeats the check.
    pub command: String,
}

/// Run one check for the planted household with the most flags, write its
/// printable page next to the exports, and compare its flags with `truth`.
pub async fn check_one(catalog: &OpenCatalog, token: &str, truth: &GroundTruth, out: &Path) -> Result<Checked> {
    let applicant = truth
        .applicants
        .iter()
        .max_by_key(|a| a.members.iter().map(|m| m.flags.len()).sum::<usize>())
        .ok_or_else(|| Error::Demo { message: "the generator planted no applicant household".into() })?;
    let factory = factory(catalog).await?;
    let principal = crate::verify_cmd::authenticate(&factory, token).await?;
    let snapshot = factory.policy().current().await.map_err(VerifyError::Query)?;
    let sources = CheckSources::load(None, &snapshot).await.map_err(VerifyError::Check)?;
    let request = CheckRequest {
        members: applicant.members.iter().map(|m| m.id_number.clone()).collect(),
        consent_reference: Some(DEMO_CONSENT.into()),
        purpose: Some("低保申请审核（演示）".into()),
        household_division: applicant.household_division.clone(),
        as_of: Some(truth.as_of),
    };
    let report = run_check(&factory, &sources, &principal, &request).await.map_err(VerifyError::Check)?;
    let page = out.join(format!("{}.html", report.check_id));
    crate::check_cmd::write_private(&page, &report.to_html(&sources))?;
    let mut text = crate::check_cmd::summary(&report);
    text.push_str(&format!("printable report: {}\n", page.display()));
    let command = format!(
        "civlink check household {} --consent {DEMO_CONSENT} --purpose 低保申请审核 --division {} --as-of {} --token {token}",
        request.members.iter().map(|m| format!("--member {m}")).collect::<Vec<_>>().join(" "),
        applicant.household_division,
        truth.as_of
    );
    Ok(Checked { report: text, mismatches: mismatches(applicant, &report), command })
}

fn mismatches(applicant: &Applicant, report: &civlink_verify::household::CheckReport) -> Vec<String> {
    let mut found = Vec::new();
    for (planted, member) in applicant.members.iter().zip(&report.members) {
        let want: BTreeSet<&str> = planted.flags.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = member.flags.iter().map(String::as_str).collect();
        if want != got {
            found.push(format!("member {}: flags {got:?}, the generator planted {want:?}", member.member));
        }
    }
    if report.sources.iter().any(|s| !s.consulted) {
        found.push("some sources were not consulted".into());
    }
    found
}
