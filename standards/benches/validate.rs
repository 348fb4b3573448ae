//! Validator benchmark: 1,000,000 realistic 14-column person rows.
//!
//! Compares, in one run on one core:
//! - the columnar validator ([`Validator::validate`] over 8192-row batches), and
//! - the obvious path: each row → `serde_json::Value` → the `jsonschema` crate
//!   (the same validator the fallback and the oracle tests use).
//!
//! Run: `cargo bench -p civlink-standards --bench validate` (add `-- --rows N` to change the size).
//! The result lines are what BENCHMARKS.md records.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use civlink_standards::division::{DivisionTable, Level};
use civlink_standards::idcard;
use civlink_standards::rng::Rng;
use civlink_standards::standard::Standard;
use civlink_standards::validate::{Validator, json};

const BATCH: usize = 8192;

const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "马", "才让", "卓玛", "韩", "赵", "杨", "索南"];
const GIVEN: [&str; 10] = ["秀英", "建国", "德吉", "明", "海", "玉兰", "措", "强", "芳", "永福"];

fn person_batch(rng: &mut Rng, villages: &[String], start: usize, rows: usize) -> RecordBatch {
    let mut ids = Vec::with_capacity(rows);
    let mut names = Vec::with_capacity(rows);
    let mut sexes = Vec::with_capacity(rows);
    let mut ethnic = Vec::with_capacity(rows);
    let mut births = Vec::with_capacity(rows);
    let mut divisions = Vec::with_capacity(rows);
    let mut phones = Vec::with_capacity(rows);
    let mut relationships = Vec::with_capacity(rows);
    let mut sizes = Vec::with_capacity(rows);
    let mut amounts = Vec::with_capacity(rows);
    let mut categories = Vec::with_capacity(rows);
    let mut starts = Vec::with_capacity(rows);
    let mut statuses = Vec::with_capacity(rows);
    let mut accounts = Vec::with_capacity(rows);
    for i in 0..rows {
        let village = &villages[rng.below(villages.len() as u64) as usize];
        // Birth date and order code both come from the serial, so every ID (the primary key) is unique.
        let serial = start + i;
        let order = serial % 1000;
        let birth_days = -10_000 + (serial / 1000) as i32 * 20;
        let birth = json::date32_to_date(birth_days).map(|d| d.format("%Y%m%d").to_string()).unwrap_or_default();
        let body = format!("{}{}{:03}", &village[..6], birth, order);
        let check = idcard::check_character(&body).unwrap_or('0');
        ids.push(format!("{body}{check}"));
        sexes.push(if order % 2 == 1 { "1" } else { "2" }.to_owned());
        names.push(format!(
            "{}{}",
            SURNAMES[rng.below(SURNAMES.len() as u64) as usize],
            GIVEN[rng.below(GIVEN.len() as u64) as usize]
        ));
        ethnic.push(format!("{:02}", 1 + rng.below(56)));
        births.push(birth_days);
        divisions.push(village.clone());
        phones.push(format!("1{}{:09}", 3 + rng.below(7), rng.below(1_000_000_000)));
        relationships.push(["01", "02", "10", "20", "30", "50"][rng.below(6) as usize].to_owned());
        sizes.push(1 + rng.below(8) as i64);
        amounts.push((rng.below(200_000) as f64) / 100.0);
        categories.push(["A", "B", "DB1", "DB2"][rng.below(4) as usize].to_owned());
        starts.push(15_000 + rng.below(5_000) as i32);
        statuses.push(["normal", "suspended", "terminated"][rng.below(3) as usize].to_owned());
        accounts.push(if rng.below(4) == 0 {
            None
        } else {
            Some(format!("62{:017}", rng.below(u64::MAX / 2) % 100_000_000_000_000_000))
        });
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id_number", Arc::new(StringArray::from(ids))),
        ("name", Arc::new(StringArray::from(names))),
        ("sex", Arc::new(StringArray::from(sexes))),
        ("ethnic_group", Arc::new(StringArray::from(ethnic))),
        ("birth_date", Arc::new(Date32Array::from(births))),
        ("division_code", Arc::new(StringArray::from(divisions))),
        ("phone", Arc::new(StringArray::from(phones))),
        ("relationship", Arc::new(StringArray::from(relationships))),
        ("household_size", Arc::new(Int64Array::from(sizes))),
        ("monthly_amount", Arc::new(Float64Array::from(amounts))),
        ("assistance_category", Arc::new(StringArray::from(categories))),
        ("start_date", Arc::new(Date32Array::from(starts))),
        ("status", Arc::new(StringArray::from(statuses))),
        ("bank_account", Arc::new(StringArray::from(accounts))),
    ];
    RecordBatch::try_from_iter(columns).expect("bench batch")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let text = include_str!("../tests/data/person.standard.json");
    let standard = Standard::from_json_str(text).expect("bench standard");
    let document = standard.document.clone();
    let validator = Validator::compile(standard).expect("compile");
    assert!(!validator.has_fallback(), "the benchmark standard must be fully columnar");

    let villages: Vec<String> =
        DivisionTable::builtin().at_level(Level::Village).iter().map(|e| e.code.as_str().to_owned()).collect();
    let mut rng = Rng::new(1);
    let mut batches = Vec::new();
    let mut made = 0;
    while made < rows {
        let n = BATCH.min(rows - made);
        batches.push(person_batch(&mut rng, &villages, made, n));
        made += n;
    }

    // Columnar: every batch, best of N passes (3 by default).
    let passes: usize = args
        .iter()
        .position(|a| a == "--passes")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let mut columnar_secs = f64::MAX;
    let mut invalid = 0;
    for _ in 0..passes {
        let started = Instant::now();
        invalid = 0;
        for batch in &batches {
            let verdict = validator.validate(black_box(batch)).expect("validate");
            invalid += verdict.invalid_count();
        }
        columnar_secs = columnar_secs.min(started.elapsed().as_secs_f64());
    }
    assert_eq!(invalid, 0, "benchmark data must be valid: {invalid} invalid rows");

    if args.iter().any(|a| a == "--columnar-only") {
        println!(
            "validate/columnar  rows={rows} secs={columnar_secs:.3} rows_per_sec={:.0}",
            rows as f64 / columnar_secs
        );
        return;
    }

    // Obvious path: row → serde_json::Value → jsonschema, collecting every error like the columnar path does.
    let oracle = json::json_schema_validator(&document).expect("jsonschema");
    let sample = rows.min(200_000);
    // Best of 2 passes, like the columnar path's best of N: neither side pays its warm-up.
    let mut obvious_secs = f64::MAX;
    let mut obvious_invalid = 0;
    for _ in 0..2 {
        let started = Instant::now();
        let mut seen = 0;
        obvious_invalid = 0;
        'outer: for batch in &batches {
            for row in 0..batch.num_rows() {
                if seen == sample {
                    break 'outer;
                }
                let value = json::row_to_json(validator.standard(), batch, row);
                if oracle.iter_errors(&value).next().is_some() {
                    obvious_invalid += 1;
                }
                seen += 1;
            }
        }
        obvious_secs = obvious_secs.min(started.elapsed().as_secs_f64());
    }
    assert_eq!(obvious_invalid, 0);

    let columnar_rate = rows as f64 / columnar_secs;
    let obvious_rate = sample as f64 / obvious_secs;
    println!("validate/columnar  rows={rows} secs={columnar_secs:.3} rows_per_sec={columnar_rate:.0}");
    println!("validate/obvious   rows={sample} secs={obvious_secs:.3} rows_per_sec={obvious_rate:.0}");
    println!("validate/ratio     columnar/obvious = {:.1}x", columnar_rate / obvious_rate);
}
