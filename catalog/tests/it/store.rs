//! The metadata store against both backends: every test body runs on SQLite
//! (a file in a temporary directory) and on PostgreSQL (a database created for
//! the test and dropped afterwards).
//!
//! PostgreSQL is found at `CIVLINK_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`. When it is not reachable the
//! tests FAIL: CI starts it.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use civlink_catalog::model::{
    ColumnCompleteness, ColumnNormalisation, DatasetId, DatasetSpec, Department, LineageEdge, QualityReport,
    RuleValidity, RunCounts, RunRecord, RunStatus, SharingType, UpdateCycle, VersionRecord, WriteMode,
};
use civlink_catalog::store::{Backend, Error, MetadataStore};
use civlink_standards::standard::Sensitivity;
use civlink_testkit::postgres::postgres_url;
use sqlx::Executor;

pub(crate) use civlink_testkit::postgres::on_both_backends;

/// A raw connection to the store's database, to look underneath or break things.
pub(crate) async fn raw(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap()
}

fn id(department: Department, name: &str) -> DatasetId {
    DatasetId { department, name: name.into() }
}

fn spec(id: DatasetId) -> DatasetSpec {
    DatasetSpec {
        id,
        title: "人口基本信息".into(),
        owner: "省公安厅户籍管理处".into(),
        description: "常住人口基本信息，含身份证号、姓名、户籍地址".into(),
        standard_id: "gongan.population".into(),
        standard_version: "1.0.0".into(),
        classification: Sensitivity::Sensitive,
        sharing: SharingType::Conditional,
        update_cycle: UpdateCycle::Daily,
        division_column: Some("division_code".into()),
        primary_key: vec!["id_number".into(), "出生日期".into()],
    }
}

fn uris(id: &DatasetId) -> (String, String) {
    (
        format!("file:///data/tables/{}/{}", id.department, id.name),
        format!("file:///data/tables/{}/{}", id.department, id.quarantine_name()),
    )
}

async fn register(store: &MetadataStore, id: &DatasetId) {
    let (table, quarantine) = uris(id);
    store.upsert_dataset(&spec(id.clone()), &table, &quarantine).await.unwrap();
}

/// A timestamp with nanoseconds, from a +08:00 clock, as UTC.
fn beijing(h: u32, m: u32, s: u32, nanos: i64) -> DateTime<Utc> {
    let offset = FixedOffset::east_opt(8 * 3600).unwrap();
    offset.with_ymd_and_hms(2025, 3, 14, h, m, s).unwrap().with_timezone(&Utc) + chrono::Duration::nanoseconds(nanos)
}

fn new_run(dataset: &DatasetId, run_id: &str, started_at: DateTime<Utc>, fingerprint: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        dataset: dataset.clone(),
        job: "population_daily".into(),
        mode: WriteMode::Upsert,
        status: RunStatus::Running,
        started_at,
        finished_at: None,
        counts: RunCounts::default(),
        data_version: None,
        quarantine_version: None,
        fingerprint: fingerprint.into(),
        error: None,
    }
}

/// `run` as committed: finished, with counts and versions.
fn committed(run: &RunRecord, finished_at: DateTime<Utc>, data: Option<i64>, quarantine: Option<i64>) -> RunRecord {
    RunRecord {
        status: RunStatus::Committed,
        finished_at: Some(finished_at),
        counts: RunCounts { read: 10, written: 7, quarantined: 2, duplicate: 1 },
        data_version: data,
        quarantine_version: quarantine,
        ..run.clone()
    }
}

fn report(run: &RunRecord) -> QualityReport {
    QualityReport {
        run_id: run.run_id.clone(),
        counts: run.counts,
        completeness: vec![
            ColumnCompleteness { column: "id_number".into(), present: 9, rows: 10 },
            ColumnCompleteness { column: "姓名".into(), present: 10, rows: 10 },
        ],
        rules: vec![RuleValidity {
            column: "id_number".into(),
            keyword: "x-civlink-id-number".into(),
            failed: 2,
            rows: 10,
            example: "校验码错误: \"11010519491231002Y\"".into(),
        }],
        primary_key_uniqueness: 0.9,
        normalised: vec![ColumnNormalisation { column: "id_number".into(), as_delivered: 7, normalised: 2 }],
        unused_source_columns: Vec::new(),
        source_drift: Vec::new(),
        source_deletions: None,
        sheets: Vec::new(),
        source_modified: Some(beijing(1, 2, 3, 4)),
        ingested_at: run.finished_at.unwrap_or_else(Utc::now),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_again_and_departments_are_seeded() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let expected_backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        assert_eq!(store.backend(), expected_backend);
        register(&store, &id(Department::Minzheng, "low_income")).await;
        store.close().await;

        // Reconnecting applies nothing new and keeps the data.
        let store = MetadataStore::connect(&url).await.unwrap();
        let again = MetadataStore::connect(&url).await.unwrap();
        assert!(store.dataset(&id(Department::Minzheng, "low_income")).await.unwrap().is_some());
        let departments = again.departments().await.unwrap();
        let expected: Vec<(Department, String)> =
            Department::ALL.iter().map(|d| (*d, d.name_zh().to_owned())).collect();
        assert_eq!(departments, expected);
        assert_eq!(departments[5].1, "乡村振兴/扶贫");
        again.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standards_register_idempotently_and_conflict() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let v1 =
            r#"{"$id":"gongan.population","version":"1.0.0","title":"人口基本信息","x":"'; DROP TABLE standards; --"}"#;
        assert_eq!(store.standard("gongan.population", "1.0.0").await.unwrap(), None);
        store.register_standard("gongan.population", "1.0.0", v1).await.unwrap();
        store.register_standard("gongan.population", "1.0.0", v1).await.unwrap();
        assert_eq!(store.standard("gongan.population", "1.0.0").await.unwrap().as_deref(), Some(v1));

        let err = store.register_standard("gongan.population", "1.0.0", "{}").await.unwrap_err();
        assert_eq!(err, Error::StandardConflict { id: "gongan.population".into(), version: "1.0.0".into() });
        assert_eq!(store.standard("gongan.population", "1.0.0").await.unwrap().as_deref(), Some(v1));

        // Registration order, not text order ("10.0.0" < "2.0.0" as text).
        store.register_standard("gongan.population", "10.0.0", "{\"v\":10}").await.unwrap();
        store.register_standard("gongan.population", "2.0.0", "{\"v\":2}").await.unwrap();
        store.register_standard("minzheng.low_income", "1.0.0", "{}").await.unwrap();
        assert_eq!(store.standard_versions("gongan.population").await.unwrap(), ["1.0.0", "10.0.0", "2.0.0"]);
        assert_eq!(store.standard_versions("minzheng.low_income").await.unwrap(), ["1.0.0"]);
        assert!(store.standard_versions("nope").await.unwrap().is_empty());
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_upsert_read_and_list() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let population = id(Department::Gongan, "population");
        assert_eq!(store.dataset(&population).await.unwrap(), None);
        assert_eq!(
            store.require_dataset(&population).await.unwrap_err(),
            Error::UnknownDataset { dataset: "gongan.population".into() }
        );

        let before = Utc::now();
        let (table, quarantine) = uris(&population);
        let record = store.upsert_dataset(&spec(population.clone()), &table, &quarantine).await.unwrap();
        assert_eq!(record.spec, spec(population.clone()));
        assert_eq!((record.table_uri.as_str(), record.quarantine_uri.as_str()), (table.as_str(), quarantine.as_str()));
        assert_eq!((record.current_version, record.quarantine_version, record.updated_at), (None, None, None));
        assert!(record.created_at >= before && record.created_at <= Utc::now(), "{}", record.created_at);
        assert_eq!(store.require_dataset(&population).await.unwrap(), record);

        // Re-registering updates the governance attributes and keeps location, versions and creation time.
        let changed = DatasetSpec {
            title: "人口信息(更新)".into(),
            owner: "户籍处".into(),
            description: String::new(),
            standard_version: "2.0.0".into(),
            classification: Sensitivity::Secret,
            sharing: SharingType::NotShared,
            update_cycle: UpdateCycle::Irregular,
            division_column: None,
            primary_key: vec![],
            ..spec(population.clone())
        };
        let updated = store.upsert_dataset(&changed, "file:///elsewhere", "file:///elsewhere_q").await.unwrap();
        assert_eq!(updated.spec, changed);
        assert_eq!(updated.table_uri, table);
        assert_eq!(updated.quarantine_uri, quarantine);
        assert_eq!(updated.created_at, record.created_at);

        for (department, name) in
            [(Department::Minzheng, "zz"), (Department::Canlian, "disabled"), (Department::Gongan, "pop_2")]
        {
            register(&store, &id(department, name)).await;
        }
        let listed: Vec<String> = store.datasets().await.unwrap().iter().map(|d| d.spec.id.to_string()).collect();
        assert_eq!(listed, ["canlian.disabled", "gongan.pop_2", "gongan.population", "minzheng.zz"]);
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_start_fail_skip_and_list_newest_first() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let dataset = id(Department::Renshe, "pension");
        register(&store, &dataset).await;

        let first = new_run(&dataset, "run-1", beijing(9, 0, 0, 1), "fp-a");
        store.start_run(&first).await.unwrap();
        assert_eq!(store.run("run-1").await.unwrap(), Some(first.clone()));
        let err = store.start_run(&first).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "run", .. }), "{err}");
        let stray = new_run(&id(Department::Renshe, "unregistered"), "run-x", beijing(9, 0, 0, 0), "fp");
        assert_eq!(
            store.start_run(&stray).await.unwrap_err(),
            Error::UnknownDataset { dataset: "renshe.unregistered".into() }
        );

        let counts = RunCounts { read: 5, written: 0, quarantined: 5, duplicate: 0 };
        let before = Utc::now();
        store.finish_run("run-1", RunStatus::Failed, Some("读取失败: 文件编码不是 GB18030"), &counts).await.unwrap();
        let failed = store.run("run-1").await.unwrap().unwrap();
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(failed.error.as_deref(), Some("读取失败: 文件编码不是 GB18030"));
        assert_eq!(failed.counts, counts);
        assert!(failed.finished_at.is_some_and(|t| t >= before), "{failed:?}");
        assert_eq!(failed.started_at, first.started_at);

        // A finished run stays finished.
        let again = store.finish_run("run-1", RunStatus::Skipped, None, &counts).await.unwrap_err();
        assert_eq!(again, Error::RunNotRunning { run_id: "run-1".into(), status: RunStatus::Failed });
        let commit = committed(&first, beijing(9, 5, 0, 0), Some(0), None);
        let err = store.commit_run(&commit, &report(&commit), &[]).await.unwrap_err();
        assert_eq!(err, Error::RunNotRunning { run_id: "run-1".into(), status: RunStatus::Failed });
        assert_eq!(store.run("run-1").await.unwrap().unwrap(), failed);
        let err = store.finish_run("run-1", RunStatus::Running, None, &counts).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "run status", .. }), "{err}");
        assert_eq!(
            store.finish_run("run-404", RunStatus::Failed, None, &counts).await.unwrap_err(),
            Error::UnknownRun { run_id: "run-404".into() }
        );

        let second = new_run(&dataset, "run-2", beijing(11, 0, 0, 0), "fp-a");
        let third = new_run(&dataset, "run-3", beijing(10, 0, 0, 0), "fp-a");
        store.start_run(&second).await.unwrap();
        store.start_run(&third).await.unwrap();
        store.finish_run("run-3", RunStatus::Skipped, None, &RunCounts::default()).await.unwrap();
        let skipped = store.run("run-3").await.unwrap().unwrap();
        assert_eq!((skipped.status, skipped.error), (RunStatus::Skipped, None));

        let order: Vec<String> = store.runs(&dataset).await.unwrap().into_iter().map(|r| r.run_id).collect();
        assert_eq!(order, ["run-2", "run-3", "run-1"]);
        assert!(store.runs(&id(Department::Renshe, "other")).await.unwrap().is_empty());
        // Neither failed nor skipped runs count as having ingested the sources.
        assert_eq!(store.committed_run_with_fingerprint(&dataset, "fp-a").await.unwrap(), None);
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_run_records_versions_quality_and_lineage() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let dataset = id(Department::Weijian, "vaccinations");
        register(&store, &dataset).await;

        let started = new_run(&dataset, "run-a", beijing(8, 0, 0, 123_456_789), "fp-1");
        store.start_run(&started).await.unwrap();
        let done = committed(&started, beijing(8, 1, 2, 987_654_321), Some(0), Some(0));
        let quality = report(&done);
        let sources = ["file:///in/a.csv".to_owned(), "s3://bucket/b.xlsx".to_owned(), "file:///in/a.csv".to_owned()];
        store.commit_run(&done, &quality, &sources).await.unwrap();

        assert_eq!(store.run("run-a").await.unwrap(), Some(done.clone()));
        let record = store.require_dataset(&dataset).await.unwrap();
        assert_eq!((record.current_version, record.quarantine_version), (Some(0), Some(0)));
        assert_eq!(record.updated_at, done.finished_at);
        assert_eq!(
            store.versions(&dataset).await.unwrap(),
            [VersionRecord {
                version: 0,
                run_id: "run-a".into(),
                mode: WriteMode::Upsert,
                rows_written: 7,
                committed_at: beijing(8, 1, 2, 987_654_321)
            }]
        );
        assert_eq!(store.quality("run-a").await.unwrap(), Some(quality.clone()));
        assert_eq!(store.latest_quality(&dataset).await.unwrap(), Some(quality.clone()));
        let edge = |source: &str, run_id: &str, version| LineageEdge {
            source_uri: source.into(),
            run_id: run_id.into(),
            dataset: dataset.clone(),
            version,
        };
        assert_eq!(
            store.lineage(&dataset).await.unwrap(),
            [edge("file:///in/a.csv", "run-a", 0), edge("s3://bucket/b.xlsx", "run-a", 0)]
        );
        assert_eq!(store.committed_run_with_fingerprint(&dataset, "fp-1").await.unwrap(), Some(done.clone()));
        assert_eq!(store.committed_run_with_fingerprint(&dataset, "fp-2").await.unwrap(), None);
        assert_eq!(store.committed_run_with_fingerprint(&id(Department::Weijian, "x"), "fp-1").await.unwrap(), None);

        // A second version.
        let started_b = new_run(&dataset, "run-b", beijing(9, 0, 0, 0), "fp-2");
        store.start_run(&started_b).await.unwrap();
        let done_b = committed(&started_b, beijing(9, 0, 30, 0), Some(1), Some(1));
        let quality_b = QualityReport { primary_key_uniqueness: 1.0, source_modified: None, ..report(&done_b) };
        store.commit_run(&done_b, &quality_b, &["file:///in/c.csv".to_owned()]).await.unwrap();
        assert_eq!(store.latest_quality(&dataset).await.unwrap(), Some(quality_b.clone()));
        assert_eq!(store.quality("run-a").await.unwrap(), Some(quality));
        assert_eq!(store.versions(&dataset).await.unwrap().iter().map(|v| v.version).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(store.lineage(&dataset).await.unwrap().last(), Some(&edge("file:///in/c.csv", "run-b", 1)));

        // A run that only quarantined rows: no data version, no lineage, the quarantine moves.
        let started_c = new_run(&dataset, "run-c", beijing(10, 0, 0, 0), "fp-3");
        store.start_run(&started_c).await.unwrap();
        let done_c = RunRecord {
            counts: RunCounts { read: 3, written: 0, quarantined: 3, duplicate: 0 },
            ..committed(&started_c, beijing(10, 0, 1, 0), None, Some(2))
        };
        store.commit_run(&done_c, &report(&done_c), &["file:///in/d.csv".to_owned()]).await.unwrap();
        let record = store.require_dataset(&dataset).await.unwrap();
        assert_eq!((record.current_version, record.quarantine_version), (Some(1), Some(2)));
        assert_eq!(record.updated_at, done_c.finished_at);
        assert_eq!(store.versions(&dataset).await.unwrap().len(), 2);
        assert_eq!(store.lineage(&dataset).await.unwrap().len(), 3);
        assert_eq!(store.latest_quality(&dataset).await.unwrap().map(|q| q.run_id), Some("run-c".to_owned()));
        assert_eq!(store.quality("run-404").await.unwrap(), None);
        assert_eq!(store.latest_quality(&id(Department::Weijian, "none")).await.unwrap(), None);
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_leaves_nothing_behind() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let dataset = id(Department::Xiangcun, "households");
        register(&store, &dataset).await;
        let first = new_run(&dataset, "run-1", beijing(8, 0, 0, 0), "fp-1");
        store.start_run(&first).await.unwrap();
        let first_done = committed(&first, beijing(8, 0, 5, 0), Some(0), Some(0));
        store.commit_run(&first_done, &report(&first_done), &["file:///a.csv".to_owned()]).await.unwrap();
        let dataset_before = store.require_dataset(&dataset).await.unwrap();
        let lineage_before = store.lineage(&dataset).await.unwrap();

        // The second run claims version 0 again: the run and dataset updates succeed inside the
        // transaction, then the version insert fails — and all of it must roll back.
        let second = new_run(&dataset, "run-2", beijing(9, 0, 0, 0), "fp-2");
        store.start_run(&second).await.unwrap();
        let clash = committed(&second, beijing(9, 0, 5, 0), Some(0), Some(1));
        let err = store.commit_run(&clash, &report(&clash), &["file:///b.csv".to_owned()]).await.unwrap_err();
        assert!(matches!(err, Error::Query { .. }), "{err}");
        assert_eq!(store.run("run-2").await.unwrap(), Some(second.clone()));
        assert_eq!(store.require_dataset(&dataset).await.unwrap(), dataset_before);
        assert_eq!(store.versions(&dataset).await.unwrap().len(), 1);
        assert_eq!(store.quality("run-2").await.unwrap(), None);
        assert_eq!(store.lineage(&dataset).await.unwrap(), lineage_before);
        assert_eq!(store.committed_run_with_fingerprint(&dataset, "fp-2").await.unwrap(), None);

        // Committing the same run twice fails up front and changes nothing.
        let twice = committed(&first, beijing(8, 30, 0, 0), Some(5), Some(5));
        let err = store.commit_run(&twice, &report(&twice), &["file:///z.csv".to_owned()]).await.unwrap_err();
        assert_eq!(err, Error::RunNotRunning { run_id: "run-1".into(), status: RunStatus::Committed });
        assert_eq!(store.run("run-1").await.unwrap(), Some(first_done.clone()));
        assert_eq!(store.require_dataset(&dataset).await.unwrap(), dataset_before);

        // Arguments that cannot be recorded are refused before anything is written.
        let good = committed(&second, beijing(9, 0, 5, 0), Some(1), Some(1));
        let other_report = QualityReport { run_id: "run-1".into(), ..report(&good) };
        let err = store.commit_run(&good, &other_report, &[]).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "quality report", .. }), "{err}");
        let nan = QualityReport { primary_key_uniqueness: f64::NAN, ..report(&good) };
        let err = store.commit_run(&good, &nan, &[]).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "quality report", .. }), "{err}");
        let huge = RunRecord { counts: RunCounts { read: u64::MAX, ..good.counts }, ..good.clone() };
        let err = store.commit_run(&huge, &report(&huge), &[]).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "rows read", .. }), "{err}");
        let elsewhere = RunRecord { dataset: id(Department::Xiangcun, "other"), ..good.clone() };
        let err = store.commit_run(&elsewhere, &report(&elsewhere), &[]).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "run", .. }), "{err}");
        let unknown = RunRecord { run_id: "run-404".into(), ..good.clone() };
        let err = store.commit_run(&unknown, &report(&unknown), &[]).await.unwrap_err();
        assert_eq!(err, Error::UnknownRun { run_id: "run-404".into() });
        assert_eq!(store.run("run-2").await.unwrap(), Some(second.clone()));

        // The rolled-back transaction left no lock behind: the run still commits.
        store.commit_run(&good, &report(&good), &["file:///b.csv".to_owned()]).await.unwrap();
        let after = store.require_dataset(&dataset).await.unwrap();
        assert_eq!((after.current_version, after.quarantine_version), (Some(1), Some(1)));
        assert_eq!(store.committed_run_with_fingerprint(&dataset, "fp-2").await.unwrap(), Some(good));
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_and_counts_round_trip_exactly() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let dataset = id(Department::Canlian, "certificates");
        register(&store, &dataset).await;
        // Nanoseconds, a +08:00 source clock, a leap day, the largest storable counts.
        let started_at = FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2024, 2, 29, 7, 59, 59)
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::nanoseconds(999_999_999);
        let run = new_run(&dataset, "run-t", started_at, "fp");
        store.start_run(&run).await.unwrap();
        let stored = store.run("run-t").await.unwrap().unwrap();
        assert_eq!(stored.started_at, started_at);
        assert_eq!(stored.started_at.to_rfc3339(), "2024-02-28T23:59:59.999999999+00:00");

        let max = i64::MAX as u64;
        let done = RunRecord {
            counts: RunCounts { read: max, written: max - 2, quarantined: 1, duplicate: 1 },
            ..committed(&run, Utc::now(), Some(i64::MAX), Some(0))
        };
        let quality = QualityReport {
            completeness: vec![],
            rules: vec![],
            primary_key_uniqueness: 0.333_333_333_333_333_3,
            normalised: Vec::new(),
            unused_source_columns: Vec::new(),
            source_drift: Vec::new(),
            source_deletions: None,
            sheets: Vec::new(),
            ..report(&done)
        };
        store.commit_run(&done, &quality, &["file:///证书/2024年.xlsx".to_owned()]).await.unwrap();
        assert_eq!(store.run("run-t").await.unwrap(), Some(done.clone()));
        let read_back = store.quality("run-t").await.unwrap().unwrap();
        assert_eq!(read_back.counts, done.counts);
        assert_eq!(read_back.ingested_at, quality.ingested_at);
        assert_eq!(read_back.source_modified, quality.source_modified);
        assert!((read_back.primary_key_uniqueness - quality.primary_key_uniqueness).abs() < 1e-15);
        assert_eq!(store.versions(&dataset).await.unwrap()[0].committed_at, done.finished_at.unwrap());
        assert_eq!(store.lineage(&dataset).await.unwrap()[0].source_uri, "file:///证书/2024年.xlsx");
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_are_reported_not_panicked_on() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let dataset = id(Department::Minzheng, "subsidies");
        register(&store, &dataset).await;
        store.start_run(&new_run(&dataset, "run-c", beijing(8, 0, 0, 0), "fp")).await.unwrap();

        let raw = raw(&url).await;
        raw.execute("UPDATE datasets SET classification = 'top_secret' WHERE id = 'minzheng.subsidies'").await.unwrap();
        raw.execute("UPDATE runs SET started_at = 'yesterday' WHERE run_id = 'run-c'").await.unwrap();
        raw.close().await;

        let err = store.dataset(&dataset).await.unwrap_err();
        assert!(matches!(&err, Error::Corrupt { what, .. } if what.contains("classification")), "{err}");
        assert!(store.datasets().await.is_err());
        let err = store.run("run-c").await.unwrap_err();
        assert!(matches!(&err, Error::Corrupt { what, .. } if what.contains("started_at")), "{err}");
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_all_land() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let dataset = id(Department::Gongan, &format!("part_{i}"));
                    register(&store, &dataset).await;
                    for v in 0..3 {
                        let run = new_run(&dataset, &format!("run-{i}-{v}"), Utc::now(), &format!("fp-{v}"));
                        store.start_run(&run).await.unwrap();
                        let done = committed(&run, Utc::now(), Some(v), Some(v));
                        store.commit_run(&done, &report(&done), &[format!("file:///in/{i}/{v}.csv")]).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let datasets = store.datasets().await.unwrap();
        assert_eq!(datasets.len(), 8);
        assert!(datasets.iter().all(|d| d.current_version == Some(2)));
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_never_show_passwords() {
    let mut url = url::Url::parse(&postgres_url()).unwrap();
    url.set_password(Some("hunter2-secret")).unwrap();
    url.set_path("civlink_no_such_database");
    let err = MetadataStore::connect(url.as_str()).await.unwrap_err();
    let Error::Connect { url_redacted, .. } = &err else { panic!("{err:?}") };
    assert!(url_redacted.contains("civlink_no_such_database"), "{url_redacted}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");

    let err = MetadataStore::connect("sqlite:///proc/no/such/place/catalog.db").await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
}
