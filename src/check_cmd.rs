//! `civlink check household`: a household economic-status check (核对)
//! as the principal behind `--token`, which must hold the check duty.
//!
//! The report goes to stdout as a summary table (or as JSON with `--json`),
//! and to a printable Chinese HTML page with `--html FILE`. The exit code is
//! 0 with no summary flag raised, 1 when there is one (like `ingest`'s 1:
//! something to look at), and an error's otherwise.

use std::path::PathBuf;

use civlink_verify::household::{CheckReport, CheckRequest, CheckSources, run_check};
use clap::Args;

use crate::ingest_cmd::OpenCatalog;
use crate::token_cmd::columns;
use crate::verify_cmd::{VerifyError, authenticate, factory};
use crate::{Error, Outcome, Result};

/// `civlink check household`.
#[derive(Debug, Args)]
pub struct HouseholdArgs {
    /// A member's ID number (GB 11643); once per member, the applicant first.
    /// On a shared machine prefer --members-file: a command line is visible
    /// to other users and kept in shell history.
    #[arg(long = "member", required_unless_present = "members_file")]
    pub members: Vec<String>,
    /// A file with the members' ID numbers, one per line (`-` reads them from standard input).
    #[arg(long)]
    pub members_file: Option<PathBuf>,
    /// The applicant's signed-consent reference (授权书编号): required.
    #[arg(long)]
    pub consent: Option<String>,
    /// Why the check is made, e.g. 低保申请审核.
    #[arg(long)]
    pub purpose: Option<String>,
    /// The county, township or village the household applies in (12 digits, or a 6-digit county code).
    #[arg(long)]
    pub division: String,
    /// The date 12-month windows count back from (YYYY-MM-DD; default: today).
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Which datasets the check consults (default: the shipped `checks/household.toml`).
    #[arg(long, env = "CIVLINK_CHECK_SOURCES")]
    pub sources: Option<PathBuf>,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the printable Chinese report to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Your token (a principal with the check duty).
    #[arg(long, env = "CIVLINK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Run `civlink check household`.
pub async fn household(args: HouseholdArgs, catalog: &OpenCatalog) -> Result<Outcome> {
    let token = args.token.as_deref().ok_or(VerifyError::MissingToken { what: "check household" })?;
    let factory = factory(catalog).await?;
    let principal = authenticate(&factory, token).await?;
    let snapshot = factory.policy().current().await.map_err(VerifyError::Query)?;
    let sources = CheckSources::load(args.sources.as_deref(), &snapshot).await.map_err(VerifyError::Check)?;
    let mut members = args.members;
    if let Some(path) = &args.members_file {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|source| Error::Read { path: path.clone(), source })?
        } else {
            std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.clone(), source })?
        };
        members.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
    }
    let request = CheckRequest {
        members,
        consent_reference: args.consent,
        purpose: args.purpose,
        household_division: args.division,
        as_of: args.as_of,
    };
    let report = run_check(&factory, &sources, &principal, &request).await.map_err(VerifyError::Check)?;
    if let Some(path) = &args.html {
        write_private(path, &report.to_html(&sources))?;
    }
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Output { message: e.to_string() })?;
        println!("{text}");
    } else {
        print!("{}", summary(&report));
        if let Some(path) = &args.html {
            println!("printable report: {}", path.display());
        }
    }
    Ok(if report.flags.is_empty() { Outcome::Clean } else { Outcome::Findings })
}

/// Write `text` to `path`, readable by its owner only: a report is personal data.
pub fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    let failed = |e: std::io::Error| Error::Output { message: format!("{}: {e}", path.display()) };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(failed)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)
}

/// The report at a glance: flags first, then per member and source how many rows.
pub fn summary(report: &CheckReport) -> String {
    let mut out = format!(
        "household check {} by {} (consent {}, {}), household in {}{}\n",
        report.check_id,
        report.principal,
        report.consent_reference,
        report.purpose,
        report.household_division,
        report.household_division_name.as_deref().map(|n| format!(" {n}")).unwrap_or_default()
    );
    if report.flags.is_empty() {
        out.push_str("\n  no flag raised\n");
    } else {
        out.push_str("\n  flags:\n");
        for flag in &report.flags {
            let members: Vec<String> = flag.members.iter().map(|m| format!("member {m}")).collect();
            out.push_str(&format!(
                "  ! {} {}: {} ({})\n",
                flag.id,
                flag.title,
                members.join(", "),
                flag.datasets.join(", ")
            ));
        }
    }
    out.push('\n');
    let mut headers = vec!["SOURCE".to_owned(), "VERSION".to_owned()];
    headers.extend(report.members.iter().map(|m| format!("#{} {}", m.member, m.id_number)));
    let rows: Vec<Vec<String>> = report
        .sources
        .iter()
        .map(|source| {
            let mut row = vec![
                format!("{} {}", source.dataset, source.section),
                source.version.map(|v| format!("v{v}")).unwrap_or_else(|| "-".into()),
            ];
            for member in &report.members {
                let cell = match (source.consulted, member.items.iter().find(|it| it.dataset == source.dataset)) {
                    (false, _) => "not consulted".to_owned(),
                    (true, Some(item)) if item.rows.is_empty() => "-".to_owned(),
                    (true, Some(item)) => match item.latest {
                        Some(latest) => format!("{} rows, latest {latest:.2}", item.rows.len()),
                        None => format!("{} rows", item.rows.len()),
                    },
                    (true, None) => "-".to_owned(),
                };
                row.push(cell);
            }
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    out.push_str(&columns(&headers, &rows));
    for source in report.sources.iter().filter(|s| s.note.is_some()) {
        out.push_str(&format!("  note {}: {}\n", source.dataset, source.note.as_deref().unwrap_or("")));
    }
    out
}
