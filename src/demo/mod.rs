//! `civlink demo`: the one command that shows civlink working on embedded defaults.
//!
//! Today it generates a household-registration export for Qinghai residents
//! (GBK CSV, with planted malformed rows), validates it against the shipped
//! `gongan.population` standard and checks that exactly the planted rows are
//! rejected, for exactly the planted reasons.

pub mod generate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use civlink_connectors::file::{CsvOptions, Encoding};
use civlink_standards::shipped;
use civlink_standards::validate::Validator;
use clap::Args;

use crate::standards_cmd::validate_file;
use crate::{Error, Outcome, Result};

/// `civlink demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where generated exports go.
    #[arg(long, default_value = "civlink-data/demo")]
    out: PathBuf,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many residents to generate.
    #[arg(long, default_value_t = 20_000)]
    people: u64,
}

/// Run the demo.
pub fn run(args: DemoArgs) -> Result<Outcome> {
    let standard = shipped::standard("gongan.population")
        .ok_or_else(|| Error::Output { message: "the gongan.population standard is not shipped".into() })?
        .map_err(|source| Error::Standard { path: "gongan.population.json".into(), source })?;
    let validator = Validator::compile(standard)
        .map_err(|source| Error::Compile { path: "gongan.population.json".into(), source })?;

    println!("1. generating {} Qinghai residents (seed {}) ...", args.people, args.seed);
    let generated = generate::population(&args.out, args.people, args.seed)
        .map_err(|source| Error::Read { path: args.out.clone(), source })?;
    println!(
        "   {} ({} rows, GBK-encoded CSV, {} planted malformed rows)",
        generated.path.display(),
        generated.rows,
        generated.planted.len()
    );

    println!("2. validating against {} {} ...", validator.standard().id, validator.standard().version);
    let csv = CsvOptions { encoding: Encoding::Gbk, ..CsvOptions::default() };
    let checked = validate_file(&validator, &generated.path, csv)?;
    print!("{}", checked.summary(&validator, &generated.path, 10));

    // Ground truth: each planted row is invalid, with its planted rule among its violations,
    // and no other row is.
    let mut found: BTreeMap<u64, Vec<(String, String)>> = BTreeMap::new();
    for row in &checked.report.invalid_rows {
        found.insert(row.row, row.violations.iter().map(|v| (v.column.clone(), v.keyword.clone())).collect());
    }
    let mut mismatches = Vec::new();
    for planted in &generated.planted {
        let hit = found
            .remove(&planted.row)
            .is_some_and(|v| v.iter().any(|(c, k)| c == planted.column && k == planted.keyword));
        if !hit {
            mismatches.push(format!(
                "planted row {} ({} {}) was not rejected for it",
                planted.row, planted.column, planted.keyword
            ));
        }
    }
    mismatches.extend(found.keys().map(|row| format!("row {row} was rejected but nothing was planted there")));
    if mismatches.is_empty() {
        println!(
            "3. ground truth: all {} planted rows rejected for the planted reason, no other row rejected",
            generated.planted.len()
        );
        Ok(Outcome::Clean)
    } else {
        println!("3. ground truth MISMATCH:");
        for m in &mismatches {
            println!("   {m}");
        }
        Ok(Outcome::Findings)
    }
}
