//! `civlink demo`: from a clean clone to a running, queryable hub in one command.
//!
//! `civlink demo` (on embedded defaults, no configuration):
//!
//! 1. generates the six departments' exports at small scale ([`civlink_synth`]),
//!    with a ground-truth file of every planted anomaly and malformed row;
//! 2. registers the shipped standards in the catalog;
//! 3. runs every ingestion job the generator wrote, with progress;
//! 4. prints a per-dataset summary (rows, quarantined, top violations,
//!    validity) and checks it against the ground truth;
//! 5. grants the 民政 department masked read access to every dataset it
//!    verifies against, and creates tokens for a province, a county and a
//!    township analyst;
//! 6. runs every shipped verification rule (比对) as the province's 民政
//!    analyst, prints the findings by rule and by county, holds them to the
//!    ground truth, and shows a township officer's commands;
//! 7. runs one household check (核对) as a province check officer for a
//!    household the generator planted, writes its printable page next to the
//!    exports and holds its flags to the ground truth;
//! 8. starts Flight SQL and the REST API;
//! 9. prints paste-ready snippets (Python ADBC, curl, DBeaver/JDBC) and serves
//!    until Ctrl-C or SIGTERM.
//!
//! `--no-serve` stops after step 7. `civlink demo generate` only writes the
//! exports, the jobs and the ground truth (also at province scale, for the
//! benchmarks).
//!
//! Re-running the demo on the same data directory is safe: identical exports
//! are recognised by fingerprint and not ingested twice, existing grants and
//! principals are kept, and each run issues fresh tokens.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use civlink_catalog::model::{DatasetId, Department, QualityReport, RunStatus};
use civlink_catalog::policy::{
    AuditAction, AuditEntry, AuditOutcome, Grant, GrantSubject, OutcomeKind, Principal, Role,
};
use civlink_connectors::job::Job;
use civlink_standards::division::{DivisionCode, DivisionTable};
use civlink_standards::shipped;
use civlink_synth::{GroundTruth, Options, Scale};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::ingest_cmd::{OpenCatalog, run_job};

mod household;
mod postgres;
mod verification;
use crate::{Error, Outcome, Result};

/// `civlink demo` options.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    /// `generate`: only write the exports, jobs and ground truth.
    #[command(subcommand)]
    pub command: Option<DemoCommand>,
    /// Options of the whole demo.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `civlink demo` subcommands.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Generate the six departments' exports, ingestion jobs and ground truth.
    Generate(GenerateArgs),
}

/// `civlink demo generate` options.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// `small` (about 20,000 people) or `province` (about 6,000,000).
    #[arg(long, default_value = "small")]
    pub scale: Scale,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory: exports/, jobs/ and ground_truth.json go here.
    #[arg(long, default_value = "civlink-data/demo")]
    pub out: PathBuf,
    /// Number of people, overriding the scale's.
    #[arg(long)]
    pub people: Option<u64>,
}

/// Options of the whole demo.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the generated exports and jobs go.
    #[arg(long, default_value = "civlink-data/demo")]
    pub out: PathBuf,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of people (default: small scale, about 20,000).
    #[arg(long)]
    pub people: Option<u64>,
    /// Stop after ingesting and issuing tokens; do not serve.
    #[arg(long)]
    pub no_serve: bool,
    /// Flight SQL listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub flight_addr: SocketAddr,
    /// REST API listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api_addr: SocketAddr,
    /// Load 人社 (social security) from this PostgreSQL database instead of
    /// from its files: the exports are copied into `civlink_demo_renshe_*`
    /// tables there and ingested through `[source.database]` jobs. The URL
    /// carries no password (use trust authentication, as on a test server).
    #[arg(long, value_name = "URL")]
    pub with_postgres: Option<String>,
}

/// The county the demo's county analyst works for: 湟中区, Xining.
pub const DEMO_COUNTY: &str = "630106000000";
/// The township the demo's township analyst works for: 田家寨镇, 湟中区.
pub const DEMO_TOWNSHIP: &str = "630106100000";
/// The province: 青海省.
pub const DEMO_PROVINCE: &str = "630000000000";

/// The demo's analysts: (principal name, division, what to call them).
pub const DEMO_ANALYSTS: [(&str, &str, &str); 3] = [
    ("demo-province-analyst", DEMO_PROVINCE, "province analyst"),
    ("demo-county-analyst", DEMO_COUNTY, "county analyst"),
    ("demo-township-analyst", DEMO_TOWNSHIP, "township analyst"),
];

/// The purpose recorded on the demo's grants.
const GRANT_PURPOSE: &str = "社会救助对象动态核查 (demo)";

/// `civlink demo generate`.
pub fn generate(args: GenerateArgs) -> Result<Outcome> {
    let options = Options { out: args.out.clone(), scale: args.scale, seed: args.seed, people: args.people };
    let truth = generate_with_progress(&options)?;
    print!("{}", describe_generated(&truth, &args.out));
    Ok(Outcome::Clean)
}

fn generate_with_progress(options: &Options) -> Result<GroundTruth> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("  generating {bar:30} {human_pos}/{human_len} people ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let truth = civlink_synth::generate(options, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    truth.map_err(|e| Error::Demo { message: format!("generating into {}: {e}", options.out.display()) })
}

fn describe_generated(truth: &GroundTruth, out: &Path) -> String {
    let mut text = String::new();
    let rows: u64 = truth.datasets.iter().map(|d| d.rows).sum();
    let _ = writeln!(
        text,
        "  {} people, {} datasets, {} rows, {} planted anomalies → {}",
        truth.people,
        truth.datasets.len(),
        rows,
        truth.anomalies.len(),
        out.display()
    );
    let _ = writeln!(text, "  ground truth: {}", out.join("ground_truth.json").display());
    text
}

/// `civlink demo`: generate, register, ingest, grant, issue tokens, serve.
pub async fn run(args: RunArgs, catalog: OpenCatalog) -> Result<Outcome> {
    let started = Instant::now();
    let people = args.people.unwrap_or(Scale::Small.people());
    println!("civlink demo: six departments' data for {people} Qinghai residents, end to end\n");

    println!("1. Generating department exports (seed {}) ...", args.seed);
    let options = Options { out: args.out.clone(), scale: Scale::Small, seed: args.seed, people: args.people };
    let generate_options = options;
    let truth = tokio::task::spawn_blocking(move || generate_with_progress(&generate_options))
        .await
        .map_err(|e| Error::Demo { message: format!("the generator stopped: {e}") })??;
    print!("{}", describe_generated(&truth, &args.out));

    println!("\n2. Registering the shipped standards ...");
    let registered = register_standards(&catalog).await?;
    println!(
        "  {registered} standards registered (six departments, GB 11643 / GB/T 2260 / GB/T 2261.1 / GB 3304 codes)"
    );

    let database_jobs = match &args.with_postgres {
        Some(url) => {
            println!("\n   人社 from PostgreSQL (--with-postgres): its exports copied into tables ...");
            postgres::load_renshe(url, &args.out, &truth).await?
        }
        None => Default::default(),
    };

    println!("\n3. Ingesting every department's export ...");
    let mut summaries = Vec::new();
    for dataset in &truth.datasets {
        let job_path = database_jobs.get(&dataset.id).cloned().unwrap_or_else(|| args.out.join(&dataset.job));
        let job = Job::load(&job_path).map_err(|e| Error::Job { path: job_path.clone(), message: e.to_string() })?;
        let outcome = run_job(&job, &job_path, &catalog).await?;
        let quality = match outcome.quality {
            Some(quality) => Some(quality),
            None => catalog.store.latest_quality(&job.spec.dataset).await.map_err(Error::Store)?,
        };
        summaries.push(DatasetSummary {
            id: dataset.id.clone(),
            skipped: outcome.run.status == RunStatus::Skipped,
            quality,
        });
    }

    println!("\n4. Per-dataset summary");
    print!("{}", summary_table(&summaries));
    let mismatches = check_against_truth(&summaries, &truth);
    if mismatches.is_empty() {
        println!(
            "  ground truth: every planted malformed row is in quarantine for the planted reason \
             ({} datasets match exactly)",
            truth.datasets.len()
        );
    } else {
        println!("  ground truth MISMATCH:");
        for m in &mismatches {
            println!("    {m}");
        }
    }

    println!("\n5. Sharing set-up: 民政 (minzheng) verifies against the other departments' data");
    let granted = grant_minzheng(&catalog, &truth).await?;
    println!("  {granted} dataset(s) granted to department minzheng, read-only, sensitive columns masked");
    let tokens = issue_tokens(&catalog).await?;
    for token in &tokens {
        println!("  {:<17} {:<24} {}", token.label, token.principal, token.division);
        println!("  {:<17} token: {}", "", token.secret);
    }
    println!("  (tokens are shown once; the catalog keeps only their hashes)");

    println!("\n6. Verification (比对): every shipped rule, as the province's 民政 analyst (personal data masked)");
    let analyst = catalog
        .store
        .principal(DEMO_ANALYSTS[0].0)
        .await
        .map_err(Error::Policy)?
        .ok_or_else(|| Error::Demo { message: "the province analyst was not created".into() })?;
    let verified = verification::verify(&catalog, &analyst, &truth).await?;
    for line in verified.report.lines() {
        println!("  {line}");
    }
    if verified.mismatches.is_empty() {
        println!(
            "  ground truth: every planted case is a finding for the office that must act, and nothing else is \
             (precision = recall = 1.0 for every rule)"
        );
    } else {
        println!("  ground truth MISMATCH:");
        for m in &verified.mismatches {
            println!("    {m}");
        }
    }
    if let Some(township) = tokens.iter().find(|t| t.principal == DEMO_ANALYSTS[2].0) {
        println!("  a township officer works through their own findings:");
        println!("    civlink findings list --token {}", township.secret);
        println!("    civlink findings decide f_… --outcome confirmed --note \"入户核实\" --token {}", township.secret);
        println!("    civlink findings summary --token {}", township.secret);
    }

    println!("\n7. Household check (核对): a province check officer, under the applicant's consent");
    let officer = household::issue_check_officer(&catalog).await?;
    let checked = household::check_one(&catalog, &officer, &truth, &args.out).await?;
    for line in checked.report.lines() {
        println!("  {line}");
    }
    if checked.mismatches.is_empty() {
        println!("  ground truth: the report raises exactly the planted facts for every member");
    } else {
        println!("  ground truth MISMATCH:");
        for m in &checked.mismatches {
            println!("    {m}");
        }
    }
    println!("  {:<17} {:<24} token: {officer}", "check officer", household::CHECK_OFFICER);
    println!("  run it again:\n    {}", checked.command);
    println!("\n  finished in {:.1}s", started.elapsed().as_secs_f64());

    let clean = mismatches.is_empty() && verified.mismatches.is_empty() && checked.mismatches.is_empty();
    let outcome = if clean { Outcome::Clean } else { Outcome::Findings };
    if args.no_serve {
        println!("\n--no-serve: not serving. `civlink serve` serves this catalog.");
        return Ok(outcome);
    }

    println!("\n8. Serving ...");
    serve(&args, catalog, &tokens).await?;
    Ok(outcome)
}

/// One dataset's line in the summary.
struct DatasetSummary {
    id: String,
    skipped: bool,
    quality: Option<QualityReport>,
}

/// The per-dataset summary, readable at a glance.
fn summary_table(summaries: &[DatasetSummary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<34} {:>8} {:>8} {:>6} {:>5} {:>8}  top violation",
        "dataset", "read", "written", "quar.", "dup.", "valid"
    );
    for s in summaries {
        let Some(q) = &s.quality else {
            let _ = writeln!(out, "  {:<34} (no run recorded)", s.id);
            continue;
        };
        let c = q.counts;
        let top = q
            .rules
            .first()
            .map(|r| {
                let column = if r.column.is_empty() { "(row)" } else { r.column.as_str() };
                format!("{} × {column} {}", r.failed, r.keyword)
            })
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "  {:<34} {:>8} {:>8} {:>6} {:>5} {:>7.2}%  {top}{}",
            s.id,
            c.read,
            c.written,
            c.quarantined,
            c.duplicate,
            q.validity() * 100.0,
            if s.skipped { "  (unchanged since the last run)" } else { "" }
        );
    }
    out
}

/// Every difference between what was ingested and what the generator planted.
fn check_against_truth(summaries: &[DatasetSummary], truth: &GroundTruth) -> Vec<String> {
    let mut mismatches = Vec::new();
    for expected in &truth.datasets {
        let Some(q) = summaries.iter().find(|s| s.id == expected.id).and_then(|s| s.quality.as_ref()) else {
            mismatches.push(format!("{}: not ingested", expected.id));
            continue;
        };
        let c = q.counts;
        let pairs = [
            ("read", c.read, expected.rows),
            ("written", c.written, expected.written),
            ("quarantined", c.quarantined, expected.quarantined),
            ("duplicate", c.duplicate, expected.duplicates),
        ];
        for (what, got, want) in pairs {
            if got != want {
                mismatches.push(format!("{}: {what} {got}, the generator planted {want}", expected.id));
            }
        }
        // Rule by rule: each planted row was quarantined for the reason planted.
        let found: std::collections::BTreeMap<(String, String), u64> =
            q.rules.iter().map(|r| ((r.column.clone(), r.keyword.clone()), r.failed)).collect();
        let planted = expected.quarantine_rules();
        for (rule, want) in &planted {
            let got = found.get(rule).copied().unwrap_or(0);
            if got != *want {
                mismatches
                    .push(format!("{}: {} {}: {got} rows, the generator planted {want}", expected.id, rule.0, rule.1));
            }
        }
        for (rule, got) in found.iter().filter(|(rule, _)| !planted.contains_key(*rule)) {
            mismatches.push(format!("{}: {} {}: {got} rows, none planted", expected.id, rule.0, rule.1));
        }
    }
    mismatches
}

async fn register_standards(catalog: &OpenCatalog) -> Result<usize> {
    for (id, text) in shipped::SHIPPED {
        let standard = shipped::standard(id)
            .ok_or_else(|| Error::Demo { message: format!("standard {id} is not shipped") })?
            .map_err(|source| Error::Standard { path: PathBuf::from(format!("{id}.json")), source })?;
        catalog.store.register_standard(&standard.id, &standard.version, text).await.map_err(Error::Store)?;
    }
    Ok(shipped::SHIPPED.len())
}

/// Grant department minzheng masked read access to every other department's
/// dataset (its own it reads as owner). Idempotent: grant ids are stable.
async fn grant_minzheng(catalog: &OpenCatalog, truth: &GroundTruth) -> Result<usize> {
    let mut granted = 0;
    let existing_ids = |grants: &[Grant], id: &str| grants.iter().any(|g| g.id == id);
    for dataset in &truth.datasets {
        let id: DatasetId = dataset
            .id
            .parse()
            .map_err(|e| Error::Demo { message: format!("ground truth names dataset {}: {e}", dataset.id) })?;
        if id.department == Department::Minzheng {
            continue;
        }
        let grant_id = format!("demo-minzheng-{}", dataset.id);
        let grants = catalog.store.grants_for(&id).await.map_err(Error::Policy)?;
        if !existing_ids(&grants, &grant_id) {
            let grant = Grant {
                id: grant_id.clone(),
                subject: GrantSubject::Department(Department::Minzheng),
                dataset: id.clone(),
                columns: None,
                unmasked: false,
                purpose: Some(GRANT_PURPOSE.into()),
                purpose_required: false,
                expires_at: None,
            };
            catalog.store.grant(&grant).await.map_err(Error::Policy)?;
            let audit = AuditEntry::new(
                crate::token_cmd::operator(),
                AuditAction::Grant,
                AuditOutcome::new(
                    OutcomeKind::Ok,
                    format!("{grant_id}: department minzheng reads {} masked", dataset.id),
                ),
            );
            catalog.store.append_audit(&audit).await.map_err(Error::Policy)?;
        }
        granted += 1;
    }
    Ok(granted)
}

/// A token issued to one of the demo's analysts.
pub struct DemoToken {
    /// "province analyst", …
    pub label: &'static str,
    /// The principal's name.
    pub principal: &'static str,
    /// Its division, described.
    pub division: String,
    /// The token.
    pub secret: String,
}

async fn issue_tokens(catalog: &OpenCatalog) -> Result<Vec<DemoToken>> {
    let mut tokens = Vec::new();
    for (name, code, label) in DEMO_ANALYSTS {
        let division =
            DivisionCode::parse(code).map_err(|e| Error::Demo { message: format!("demo division {code}: {e}") })?;
        if catalog.store.principal(name).await.map_err(Error::Policy)?.is_none() {
            let principal = Principal {
                name: name.to_owned(),
                department: Some(Department::Minzheng),
                role: Role::Analyst,
                division,
            };
            catalog.store.create_principal(&principal).await.map_err(Error::Policy)?;
        }
        // Demo tokens lapse after a week: they are printed on a terminal.
        let expires_at = chrono::Utc::now() + chrono::Duration::days(7);
        let token = catalog.store.create_token(name, Some(expires_at)).await.map_err(Error::Policy)?;
        let audit = AuditEntry::new(
            crate::token_cmd::operator(),
            AuditAction::TokenCreate,
            AuditOutcome::new(OutcomeKind::Ok, format!("token {} for {name} (demo {label})", token.id)),
        );
        catalog.store.append_audit(&audit).await.map_err(Error::Policy)?;
        tokens.push(DemoToken { label, principal: name, division: describe(&division), secret: token.secret.clone() });
    }
    Ok(tokens)
}

fn describe(code: &DivisionCode) -> String {
    let table = DivisionTable::builtin();
    let name = table.full_name(code).unwrap_or_default();
    format!("{code} {name}")
}

/// Start Flight SQL and REST, print the snippets, serve until a signal.
async fn serve(args: &RunArgs, catalog: OpenCatalog, tokens: &[DemoToken]) -> Result<()> {
    let serving = crate::serve_cmd::Serving {
        flight: civlink_flight::FlightConfig { addr: args.flight_addr, tls: None },
        api: civlink_api::ApiConfig { addr: args.api_addr, check_sources: None },
        limits: civlink_query::Limits::default(),
        checkpoint: None,
        scheduler: None,
        rules_dirs: Vec::new(),
    };
    let bound = crate::serve_cmd::bind(serving, &catalog).await?;
    let flight_addr = bound.flight.local_addr();
    let api_addr = bound.api.local_addr();
    println!("Flight SQL listening on {flight_addr}");
    println!("REST API listening on http://{api_addr}");
    print!("{}", snippets(flight_addr, api_addr, tokens));
    println!("\nServing until Ctrl-C (or SIGTERM).");

    crate::serve_cmd::serve_both(bound, None, crate::serve_cmd::shutdown_signal()).await?;
    println!("Flight SQL stopped");
    println!("REST API stopped");
    Ok(())
}

/// Paste-ready connection snippets.
fn snippets(flight: SocketAddr, api: SocketAddr, tokens: &[DemoToken]) -> String {
    let county = tokens.iter().find(|t| t.principal == "demo-county-analyst").or(tokens.first());
    let token = county.map(|t| t.secret.as_str()).unwrap_or("<token>");
    let who = county.map(|t| t.label).unwrap_or("analyst");
    let mut out = String::new();
    let _ = writeln!(out, "\n9. Connect (as the {who}; swap in another token to change scope)\n");
    let _ = writeln!(out, "  Python (pip install adbc-driver-flightsql pyarrow):");
    let _ = writeln!(out, "    import adbc_driver_flightsql.dbapi as flight_sql");
    let _ = writeln!(out, "    conn = flight_sql.connect(\"grpc://{flight}\",");
    let _ = writeln!(out, "        db_kwargs={{\"adbc.flight.sql.authorization_header\": \"Bearer {token}\"}})");
    let _ = writeln!(out, "    cur = conn.cursor()");
    let _ = writeln!(
        out,
        "    cur.execute(\"SELECT division_name(division_parent(division_code, 'township')) AS township, \
         count(*) AS recipients FROM minzheng.dibao_members WHERE end_date IS NULL GROUP BY 1 ORDER BY 2 DESC\")"
    );
    let _ = writeln!(out, "    print(cur.fetch_arrow_table())");
    let _ = writeln!(out, "    # 低保 recipients registered as deceased (masked IDs still join):");
    let _ = writeln!(
        out,
        "    cur.execute(\"SELECT m.name, m.division_code, p.status_date FROM minzheng.dibao_members m \
         JOIN gongan.population p ON m.id_number = p.id_number WHERE m.end_date IS NULL AND p.status = 'deceased'\")"
    );
    let _ = writeln!(out, "    print(cur.fetch_arrow_table())");
    let _ = writeln!(out, "\n  curl:");
    let _ = writeln!(out, "    curl -H 'Authorization: Bearer {token}' http://{api}/api/v1/datasets");
    let _ = writeln!(
        out,
        "    curl -H 'Authorization: Bearer {token}' 'http://{api}/api/v1/datasets/minzheng/dibao_members/rows?limit=5'"
    );
    let _ = writeln!(out, "\n  DBeaver / JDBC (Arrow Flight SQL JDBC driver):");
    let _ = writeln!(out, "    jdbc:arrow-flight-sql://{flight}/?useEncryption=false&token={token}");
    out
}
