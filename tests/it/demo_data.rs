//! The generator's exports through the real ingestion pipeline: every job
//! `civlink-synth` writes is loaded and run into a temporary local catalog,
//! and each run must report exactly what the ground truth says — rows read,
//! written, quarantined and duplicate, the quarantine per (column, keyword) —
//! and the written rows must lie in the divisions the ground truth counts.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use civlink_catalog::config::CatalogConfig;
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::{TableStore, TimeTravel};
use civlink_connectors::job::Job;
use civlink_connectors::pipeline::{self, Catalog, Silent};
use civlink_synth::truth::scope_prefix;
use civlink_synth::{GroundTruth, Options, Scale};

/// People generated: enough for every planted kind in several counties.
const PEOPLE: u64 = 4000;

/// The county with the most registered people, and its township with the most.
fn busiest_county_and_township(truth: &GroundTruth) -> (String, String) {
    let population = truth.dataset("gongan.population").expect("population");
    let busiest = |len: usize, within: &str| {
        population
            .valid_by_division
            .iter()
            .filter_map(|(code, n)| {
                scope_prefix(code).filter(|p| p.len() == len && p.starts_with(within)).map(|p| (p, *n))
            })
            .max_by_key(|(_, n)| *n)
            .map(|(prefix, _)| prefix)
            .expect("a division with people")
    };
    let county = busiest(6, "63");
    let township = busiest(9, &county);
    (county, township)
}

/// Rows of a Delta table whose `division_code` starts with each prefix.
fn rows_in(batches: &[arrow::record_batch::RecordBatch], prefixes: &[&str]) -> Vec<u64> {
    let mut counts = vec![0; prefixes.len()];
    for batch in batches {
        let column = batch.column_by_name("division_code").expect("division_code column");
        let text = arrow::compute::cast(column, &DataType::Utf8).expect("division codes as text");
        let codes = text.as_string::<i32>();
        for row in 0..codes.len() {
            if codes.is_null(row) {
                continue;
            }
            let code = codes.value(row);
            for (count, prefix) in counts.iter_mut().zip(prefixes) {
                if code.starts_with(prefix) {
                    *count += 1;
                }
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generated_job_ingests_exactly_as_the_ground_truth_says() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let options = Options { out: out.clone(), scale: Scale::Small, seed: 42, people: Some(PEOPLE) };
    let truth =
        tokio::task::spawn_blocking(move || civlink_synth::generate(&options, &mut |_, _| {})).await.unwrap().unwrap();
    assert_eq!(truth.datasets.len(), 14);

    let config = CatalogConfig::local(&dir.path().join("data")).unwrap();
    let store = MetadataStore::connect(&config.metadata_url).await.unwrap();
    let tables = TableStore::new(&config).unwrap();
    let catalog = Catalog { store: &store, tables: &tables, s3: None };

    let (county, township) = busiest_county_and_township(&truth);
    let prefixes = ["63", county.as_str(), township.as_str()];
    let mut scoped = [0u64; 3];
    for expected in &truth.datasets {
        let job = Job::load(&out.join(&expected.job)).unwrap_or_else(|e| panic!("{}: {e}", expected.job));
        assert_eq!(job.spec.dataset.to_string(), expected.id);
        let outcome = pipeline::run(&job, &catalog, &Silent).await.unwrap_or_else(|e| panic!("{}: {e}", expected.id));
        let c = outcome.run.counts;
        assert_eq!(
            (c.read, c.written, c.quarantined, c.duplicate),
            (expected.rows, expected.written, expected.quarantined, expected.duplicates),
            "{}: (read, written, quarantined, duplicate)",
            expected.id
        );
        let quality = outcome.quality.expect("a committed run has a quality report");
        let rules: BTreeMap<(String, String), u64> =
            quality.rules.iter().map(|r| ((r.column.clone(), r.keyword.clone()), r.failed)).collect();
        assert_eq!(rules, expected.quarantine_rules(), "{}: quarantine per (column, keyword)", expected.id);

        let batches = tables.read(&tables.table_uri(&job.spec.dataset), TimeTravel::Latest).await.unwrap();
        let found = rows_in(&batches, &prefixes);
        for (prefix, found) in prefixes.iter().zip(&found) {
            assert_eq!(*found, expected.valid_in(prefix), "{}: rows in {prefix}", expected.id);
        }
        for (total, found) in scoped.iter_mut().zip(&found) {
            *total += found;
        }
    }
    // The scopes are not empty: the comparison above means something.
    assert!(scoped[1] > 100 && scoped[2] > 10, "rows in {county}: {}, in {township}: {}", scoped[1], scoped[2]);
}
