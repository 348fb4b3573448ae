//! `civlink verify rules | run` and `civlink findings list | show | decide | summary`.
//!
//! Rules run, and findings are read and decided, as the principal behind
//! `--token` (or `CIVLINK_TOKEN`): a rule sees only what that principal may
//! read, a principal sees a finding iff its responsible division lies in its
//! own, and every run and decision is in the audit chain.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;

use civlink_catalog::findings::{
    DismissReason, Finding, FindingCount, FindingFilter, FindingStatus, Outcome as Decision, summarize,
};
use civlink_catalog::policy::{AuditAction, AuditEntry, AuditOutcome, Principal, may_decide};
use civlink_query::SessionFactory;
use civlink_standards::division::{DivisionCode, DivisionTable, Level};
use civlink_verify::check::Shapes;
use civlink_verify::evaluate::{RuleOutcome, run_rule};
use civlink_verify::load::RuleSet;
use clap::{Args, Subcommand};

use crate::ingest_cmd::OpenCatalog;
use crate::token_cmd::table;
use crate::{Error, Outcome, Result};

/// `civlink verify` subcommands.
#[derive(Debug, Subcommand)]
pub enum VerifyCommand {
    /// The loaded rules (shipped and configured), each with its last run.
    Rules(RulesArgs),
    /// Run rules now (all enabled rules when none is named) and record their findings.
    Run(RunArgs),
}

/// Where rules come from, besides the shipped ones.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// A directory of rule files (`<id>.toml`) loaded after the shipped rules;
    /// a rule there replaces a shipped rule of the same id.
    #[arg(long = "rules-dir", env = "CIVLINK_RULES_DIR")]
    pub rules_dirs: Vec<PathBuf>,
}

/// `civlink verify run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Rules to run, by id (default: every enabled rule).
    pub rules: Vec<String>,
    /// Where rules come from.
    #[command(flatten)]
    pub from: RulesArgs,
    /// The token of the principal the rules run as (they see what it may read).
    #[arg(long, env = "CIVLINK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `civlink findings` subcommands.
#[derive(Debug, Subcommand)]
pub enum FindingsCommand {
    /// Findings in your scope, by id.
    List {
        /// Only this rule's.
        #[arg(long)]
        rule: Option<String>,
        /// Only in this status (open, under_review, confirmed, dismissed, resolved_at_source).
        #[arg(long, value_parser = parse_status)]
        status: Option<FindingStatus>,
        /// Only in this division (inside your own).
        #[arg(long)]
        division: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Your token.
        #[arg(long, env = "CIVLINK_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// One finding: its explanation, evidence, the rows it rests on and its history.
    Show {
        /// The finding's id (`f_…`).
        id: String,
        /// Your token.
        #[arg(long, env = "CIVLINK_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Record your outcome for a finding in your scope.
    Decide {
        /// The finding's id (`f_…`).
        id: String,
        /// under_review, confirmed or dismissed.
        #[arg(long, value_parser = parse_status)]
        outcome: FindingStatus,
        /// Why it is dismissed: source_data_error, legitimate or other (required to dismiss).
        #[arg(long, value_parser = parse_reason)]
        reason: Option<DismissReason>,
        /// Your note (kept with the finding; not copied into the audit chain).
        #[arg(long)]
        note: Option<String>,
        /// Your token.
        #[arg(long, env = "CIVLINK_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Counts by rule and status, rolled up one level below your division (or at --level).
    Summary {
        /// province, city, county, township or village.
        #[arg(long, value_parser = parse_level)]
        level: Option<Level>,
        /// Your token.
        #[arg(long, env = "CIVLINK_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

/// Why a verification command refused its arguments.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No token given.
    #[error("{what} needs --token (or CIVLINK_TOKEN): rules run, and findings are read, as a principal")]
    MissingToken {
        /// The command.
        what: &'static str,
    },
    /// Rules failed to load, or a rule failed to run.
    #[error(transparent)]
    Verify(#[from] civlink_verify::Error),
    /// The query layer could not start.
    #[error("query layer: {0}")]
    Query(#[from] civlink_query::Error),
    /// A household check was refused or failed.
    #[error("household check: {0}")]
    Check(#[source] civlink_verify::household::Error),
    /// `--division` is not a division inside the principal's.
    #[error("--division {code}: {message}")]
    Division {
        /// What was given.
        code: String,
        /// Why it is refused.
        message: String,
    },
    /// The finding is another department's office to decide.
    #[error("finding {id} is for the {department} office to decide")]
    NotYourOffice {
        /// The id given.
        id: String,
        /// The responsible department (Chinese name).
        department: &'static str,
    },
    /// No such finding in the principal's scope.
    #[error("no finding {id} in your scope ({division})")]
    NoFinding {
        /// The id given.
        id: String,
        /// The principal's division.
        division: String,
    },
}

fn parse_status(text: &str) -> std::result::Result<FindingStatus, String> {
    FindingStatus::parse(text.trim()).ok_or_else(|| {
        let all: Vec<&str> = FindingStatus::ALL.iter().map(|s| s.code()).collect();
        format!("{text:?} is not a status: {}", all.join(", "))
    })
}

fn parse_reason(text: &str) -> std::result::Result<DismissReason, String> {
    DismissReason::parse(text.trim())
        .ok_or_else(|| format!("{text:?} is not a reason: source_data_error, legitimate, other"))
}

fn parse_level(text: &str) -> std::result::Result<Level, String> {
    text.trim()
        .parse::<Level>()
        .map_err(|_| format!("{text:?} is not a level: province, city, county, township, village"))
}

/// Run a `civlink verify` command.
pub async fn run(command: VerifyCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    match command {
        VerifyCommand::Rules(args) => {
            let factory = factory(catalog).await?;
            let rules = load_rules(&factory, &args.rules_dirs).await?;
            print!("{}", rules_table(&rules, catalog).await?);
            Ok(Outcome::Clean)
        }
        VerifyCommand::Run(args) => {
            let token = args.token.as_deref().ok_or(VerifyError::MissingToken { what: "verify run" })?;
            let factory = factory(catalog).await?;
            let principal = authenticate(&factory, token).await?;
            let rules = load_rules(&factory, &args.from.rules_dirs).await?;
            let selected = rules.select(&args.rules).map_err(VerifyError::from)?;
            let outcomes = run_rules(&factory, &principal, &selected).await?;
            print!("{}", outcomes_table(&outcomes));
            Ok(Outcome::Clean)
        }
    }
}

/// A factory over the catalog for one command.
pub async fn factory(catalog: &OpenCatalog) -> Result<Arc<SessionFactory>> {
    SessionFactory::builder(catalog.store.clone(), catalog.tables.clone())
        .limits(batch_limits())
        .build()
        .await
        .map_err(|e| VerifyError::Query(e).into())
}

/// The limits of a verification run or a household check from the command
/// line: a batch job, not an interactive query. A rule joins whole datasets
/// (6 million people against 3.7 million pension payments at province
/// scale), which the interactive 1 GiB per query does not hold; so one query
/// may use the whole budget, and run for an hour.
fn batch_limits() -> civlink_query::Limits {
    let defaults = civlink_query::Limits::default();
    civlink_query::Limits {
        query_timeout: std::time::Duration::from_secs(3600),
        memory_per_query: 8 << 30,
        memory_total: 8 << 30,
        ..defaults
    }
}

pub async fn authenticate(factory: &SessionFactory, token: &str) -> Result<Principal> {
    let credentials = civlink_query::auth::Credentials::Bearer { token: token.to_owned() };
    Ok(factory.authenticate(&credentials).await.map_err(VerifyError::Query)?)
}

/// The rule set: the shipped rules and `dirs`, checked against the registered datasets.
pub async fn load_rules(factory: &SessionFactory, dirs: &[PathBuf]) -> Result<RuleSet> {
    let snapshot = factory.policy().current().await.map_err(VerifyError::Query)?;
    Ok(RuleSet::load(dirs, &Shapes::of_snapshot(&snapshot)).await.map_err(VerifyError::from)?)
}

/// After an ingestion of `dataset`: `Committed` runs the rules of `dirs`
/// scheduled after it (each as its `run_as` principal) and returns their
/// table; `Held` returns the note that they were not run; otherwise
/// nothing. A rule set that does not load is this command's error (the
/// ingestion itself has committed by then).
pub async fn after_ingest(
    catalog: &OpenCatalog,
    dataset: &civlink_catalog::model::DatasetId,
    status: civlink_catalog::model::RunStatus,
    dirs: &[PathBuf],
) -> Result<Option<String>> {
    use civlink_catalog::model::RunStatus;
    // Shipped rules carry no schedule: only configured rule files can be scheduled.
    if dirs.is_empty() || !matches!(status, RunStatus::Committed | RunStatus::Held) {
        return Ok(None);
    }
    let factory = factory(catalog).await?;
    let rules = load_rules(&factory, dirs).await?;
    let scheduled = rules.after_ingest_of(dataset);
    if scheduled.is_empty() {
        return Ok(None);
    }
    let ids: Vec<&str> = scheduled.iter().map(|r| r.rule.id.as_str()).collect();
    if status == RunStatus::Held {
        return Ok(Some(format!(
            "rules after ingest not run: the delivery is held, {dataset} keeps its version ({})\n",
            ids.join(", ")
        )));
    }
    let mut outcomes = Vec::new();
    let mut skipped = String::new();
    for rule in scheduled {
        let name = rule.rule.after_ingest.as_deref().unwrap_or_default();
        match catalog.store.principal(name).await.map_err(Error::Policy)? {
            Some(principal) => {
                eprintln!("[after ingest] {} v{} {} as {name} …", rule.rule.id, rule.rule.version, rule.rule.title_zh);
                let trigger = format!("civlink ingest of {dataset} by {}", crate::token_cmd::operator());
                let outcome = civlink_verify::evaluate::run_rule_triggered(&factory, &principal, rule, Some(&trigger))
                    .await
                    .map_err(VerifyError::from)?;
                outcomes.push(outcome);
            }
            None => {
                let _ = writeln!(skipped, "rule {}: run_as {name:?} is not a principal; not run", rule.rule.id);
            }
        }
    }
    Ok(Some(format!("rules after ingest of {dataset}:\n{}{skipped}", outcomes_table(&outcomes))))
}

/// Run `rules` one after another as `principal`, with a progress line each.
pub async fn run_rules(
    factory: &SessionFactory,
    principal: &Principal,
    rules: &[&civlink_verify::check::CheckedRule],
) -> Result<Vec<RuleOutcome>> {
    let mut outcomes = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        eprintln!("[{}/{}] {} v{} {} …", i + 1, rules.len(), rule.rule.id, rule.rule.version, rule.rule.title_zh);
        outcomes.push(run_rule(factory, principal, rule).await.map_err(VerifyError::from)?);
    }
    Ok(outcomes)
}

/// One line per rule run.
pub fn outcomes_table(outcomes: &[RuleOutcome]) -> String {
    let rows: Vec<[String; 8]> = outcomes
        .iter()
        .map(|o| {
            [
                o.rule.clone(),
                format!("v{}", o.version),
                o.summary.found.to_string(),
                o.summary.new.to_string(),
                o.summary.reopened.to_string(),
                o.summary.resolved.to_string(),
                o.unroutable.to_string(),
                format!("{:.2} s", o.elapsed.as_secs_f64()),
            ]
        })
        .collect();
    table(&["RULE", "VERSION", "FOUND", "NEW", "REOPENED", "RESOLVED", "UNROUTABLE", "TIME"], &rows)
}

async fn rules_table(rules: &RuleSet, catalog: &OpenCatalog) -> Result<String> {
    let last = catalog.store.last_rule_runs().await.map_err(Error::Store)?;
    let rows: Vec<[String; 7]> = rules
        .iter()
        .map(|(checked, origin)| {
            let rule = &checked.rule;
            let last_run = last.get(&rule.id).map_or_else(
                || "never".to_owned(),
                |r| format!("{} by {}: {} found", r.finished_at.format("%Y-%m-%d %H:%M"), r.principal, r.summary.found),
            );
            [
                rule.id.clone(),
                format!("v{}", rule.version),
                rule.severity.code().to_owned(),
                rule.title_zh.clone(),
                checked.datasets.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
                origin.to_string(),
                last_run,
            ]
        })
        .collect();
    Ok(table(&["RULE", "VERSION", "SEVERITY", "TITLE", "READS", "FROM", "LAST RUN"], &rows))
}

/// Run a `civlink findings` command.
pub async fn findings(command: FindingsCommand, catalog: &OpenCatalog) -> Result<Outcome> {
    let what = match &command {
        FindingsCommand::List { .. } => "findings list",
        FindingsCommand::Show { .. } => "findings show",
        FindingsCommand::Decide { .. } => "findings decide",
        FindingsCommand::Summary { .. } => "findings summary",
    };
    let token = match &command {
        FindingsCommand::List { token, .. }
        | FindingsCommand::Show { token, .. }
        | FindingsCommand::Decide { token, .. }
        | FindingsCommand::Summary { token, .. } => token.clone(),
    };
    let token = token.ok_or(VerifyError::MissingToken { what })?;
    let principal = catalog.store.authenticate(&token).await.map_err(Error::Policy)?;
    let mut out = String::new();
    match command {
        FindingsCommand::List { rule, status, division, limit, .. } => {
            let within = match division {
                None => principal.division,
                Some(code) => inside(&principal, &code)?,
            };
            let filter = FindingFilter { within: Some(within), rule, status, after: None, limit: Some(limit) };
            let found = catalog.store.findings(&filter).await.map_err(Error::Store)?;
            out.push_str(&findings_table(&found));
            let _ =
                writeln!(out, "{} finding(s) shown (at most {limit}); details: civlink findings show ID", found.len());
            audit(catalog, &principal, AuditAction::FindingRead, format!("findings list ({} shown)", found.len()))
                .await?;
        }
        FindingsCommand::Show { id, .. } => {
            let shown = catalog.store.finding(&id, Some(&principal.division)).await.map_err(Error::Store)?;
            let Some((finding, events)) = shown else {
                return Err(VerifyError::NoFinding { id, division: principal.division.to_string() }.into());
            };
            out.push_str(&describe(&finding, &events));
            // The subject as this reader's own access shows it (clear only under an unmasking grant).
            let factory = factory(catalog).await?;
            let seen = civlink_verify::reveal::subject_as_seen(&factory, &principal, &finding)
                .await
                .map_err(VerifyError::Query)?;
            match seen {
                Some(seen) => {
                    let name = seen.name.as_deref().unwrap_or("-");
                    let _ = writeln!(out, "subject as you see it: {} {name} (from {})", seen.id_number, seen.dataset);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "subject as you see it: {} (no row it rests on is readable to you)",
                        finding.subject
                    );
                }
            }
            audit(catalog, &principal, AuditAction::FindingRead, format!("findings show {id}")).await?;
        }
        FindingsCommand::Decide { id, outcome, reason, note, .. } => {
            let decision = Decision {
                status: outcome,
                reason,
                note: note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
                by: principal.name.clone(),
                at: chrono::Utc::now(),
            };
            let shown = catalog.store.finding(&id, Some(&principal.division)).await.map_err(Error::Store)?;
            let Some((finding, _)) = shown else {
                return Err(VerifyError::NoFinding { id, division: principal.division.to_string() }.into());
            };
            // The department is part of the finding's identity: this check cannot go stale.
            if !may_decide(&principal, &finding) {
                return Err(VerifyError::NotYourOffice { id, department: finding.department.name_zh() }.into());
            }
            let decided = catalog.store.decide_finding(&id, Some(&principal.division), &decision).await;
            let decided = match decided {
                Err(civlink_catalog::store::Error::UnknownFinding { .. }) => {
                    return Err(VerifyError::NoFinding { id, division: principal.division.to_string() }.into());
                }
                other => other.map_err(Error::Store)?,
            };
            let reason_text = reason.map(|r| format!(" ({r})")).unwrap_or_default();
            audit(
                catalog,
                &principal,
                AuditAction::FindingDecide,
                format!("findings decide {id}: {outcome}{reason_text}"),
            )
            .await?;
            let _ = writeln!(out, "{id}: {} ({})", decided.status, decided.status.label());
        }
        FindingsCommand::Summary { level, .. } => {
            let counts = catalog.store.finding_counts(Some(&principal.division)).await.map_err(Error::Store)?;
            out.push_str(&summary(&principal.division, level, &counts));
            audit(catalog, &principal, AuditAction::FindingRead, "findings summary".to_owned()).await?;
        }
    }
    print!("{out}");
    Ok(Outcome::Clean)
}

/// `code` as a division inside `principal`'s.
fn inside(principal: &Principal, code: &str) -> Result<DivisionCode> {
    let refused = |message: String| VerifyError::Division { code: code.to_owned(), message };
    let division = if code.len() == 6 { DivisionCode::from_county_code(code) } else { DivisionCode::parse(code) }
        .map_err(|e| refused(e.to_string()))?;
    if !principal.division.contains(&division) {
        return Err(refused(format!("it lies outside your division {}", principal.division)).into());
    }
    Ok(division)
}

async fn audit(catalog: &OpenCatalog, principal: &Principal, action: AuditAction, text: String) -> Result<()> {
    let mut entry = AuditEntry::new(principal.name.clone(), action, AuditOutcome::OK);
    entry.sql_text = Some(text);
    catalog.store.append_audit(&entry).await.map_err(Error::Policy)?;
    Ok(())
}

fn division_label(code: &DivisionCode) -> String {
    match DivisionTable::builtin().name(code) {
        Some(name) => format!("{code} {name}"),
        None => code.to_string(),
    }
}

fn findings_table(found: &[Finding]) -> String {
    let rows: Vec<[String; 6]> = found
        .iter()
        .map(|f| {
            [
                f.finding_id.clone(),
                f.rule_id.clone(),
                f.status.label().to_owned(),
                division_label(&f.division),
                f.explanation.clone(),
                f.last_seen.format("%Y-%m-%d").to_string(),
            ]
        })
        .collect();
    table(&["ID", "RULE", "STATUS", "DIVISION", "EXPLANATION", "LAST SEEN"], &rows)
}

fn describe(finding: &Finding, events: &[civlink_catalog::findings::FindingEvent]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {} v{}  [{}]",
        finding.finding_id,
        finding.rule_id,
        finding.rule_version,
        finding.severity.code()
    );
    let _ = writeln!(out, "  {}", finding.explanation);
    let _ = writeln!(out, "  status:      {} ({})", finding.status.label(), finding.status);
    let _ = writeln!(out, "  office:      {} {}", finding.department.name_zh(), division_label(&finding.division));
    let _ = writeln!(out, "  subject:     {} {}", finding.subject_kind.code(), finding.subject);
    let _ = writeln!(
        out,
        "  seen:        first {}, last {}",
        finding.first_seen.format("%Y-%m-%d %H:%M"),
        finding.last_seen.format("%Y-%m-%d %H:%M")
    );
    if let Some(outcome) = &finding.outcome {
        let reason = outcome.reason.map(|r| format!(", {r}")).unwrap_or_default();
        let note = outcome.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  outcome:     {}{reason} by {} on {}{note}",
            outcome.status,
            outcome.by,
            outcome.at.format("%Y-%m-%d")
        );
    }
    let _ = writeln!(out, "evidence:");
    for (column, value) in &finding.evidence {
        let _ = writeln!(out, "  {column}: {value}");
    }
    let _ = writeln!(out, "rests on:");
    for row in &finding.rests_on {
        let key: Vec<String> = row.key.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let version = finding.dataset_versions.get(&row.dataset).map(|v| format!(" (version {v})")).unwrap_or_default();
        let _ = writeln!(out, "  {}{version}: {}", row.dataset, key.join(", "));
    }
    let rows: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            [
                e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.actor.clone(),
                e.from.map_or_else(|| "—".to_owned(), |s| s.code().to_owned()),
                e.to.code().to_owned(),
                [e.reason.map(|r| r.code().to_owned()), e.note.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": "),
            ]
        })
        .collect();
    let _ = writeln!(out, "history:");
    out.push_str(&table(&["AT", "BY", "FROM", "TO", "WHY"], &rows));
    out
}

/// The summary as tables: per rule, counts by status and the measured
/// precision; then per division one level below the scope (or at `level`).
pub fn summary(scope: &DivisionCode, level: Option<Level>, counts: &[FindingCount]) -> String {
    let summary = summarize(scope, level, counts);
    let n = |by: &BTreeMap<FindingStatus, u64>, s: FindingStatus| by.get(&s).copied().unwrap_or(0).to_string();
    let mut out = String::new();
    let rows: Vec<[String; 8]> = summary
        .by_rule
        .iter()
        .map(|t| {
            let precision = t
                .precision()
                .map_or_else(|| "—".to_owned(), |p| format!("{:.0}% of {}", 100.0 * p, t.confirmed + t.dismissed));
            [
                t.rule_id.clone(),
                n(&t.by_status, FindingStatus::Open),
                n(&t.by_status, FindingStatus::UnderReview),
                n(&t.by_status, FindingStatus::Confirmed),
                n(&t.by_status, FindingStatus::Dismissed),
                n(&t.by_status, FindingStatus::ResolvedAtSource),
                t.total().to_string(),
                precision,
            ]
        })
        .collect();
    let _ = writeln!(out, "by rule, in {}:", division_label(scope));
    out.push_str(&table(
        &["RULE", "OPEN", "UNDER REVIEW", "CONFIRMED", "DISMISSED", "RESOLVED", "TOTAL", "PRECISION"],
        &rows,
    ));
    let rows: Vec<[String; 7]> = summary
        .by_division
        .iter()
        .map(|d| {
            [
                division_label(&d.division),
                n(&d.by_status, FindingStatus::Open),
                n(&d.by_status, FindingStatus::UnderReview),
                n(&d.by_status, FindingStatus::Confirmed),
                n(&d.by_status, FindingStatus::Dismissed),
                n(&d.by_status, FindingStatus::ResolvedAtSource),
                d.by_status.values().sum::<u64>().to_string(),
            ]
        })
        .collect();
    let _ = writeln!(out, "\nby {} ({}):", summary.level.as_str(), summary.level.label_zh());
    out.push_str(&table(&["DIVISION", "OPEN", "UNDER REVIEW", "CONFIRMED", "DISMISSED", "RESOLVED", "TOTAL"], &rows));
    out
}
