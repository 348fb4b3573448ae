//! The scheduler of `civlink serve`, as deployed: two real processes on one
//! PostgreSQL catalog and one table store. A scheduled job runs in one of
//! them at a time; when its holder is SIGKILLed mid-run, the other takes
//! the job over once the lease lapses, the dead run is recorded failed, and
//! the dataset holds every row once. SIGTERM lets a run in progress finish
//! within the grace period and releases the lease. `jobs list` names the
//! lease holder, and `jobs run` refuses a job that is running.

use std::io::Write;
use std::time::{Duration, Instant};

use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{DatasetId, RunStatus};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::{TableStore, TimeTravel};
use civlink_testkit::http::{RawHttp, json_answer};

use crate::common::{Server, civlink_env, repo, text};

const ROWS: &str = r#"[
  {"id_number": "11010519491231002X", "name": "张三"},
  {"id_number": "630102198001010019", "name": "王五"},
  {"id_number": "630102199001010013", "name": "赵六"}
]"#;

/// An HTTP API whose first answer takes `first`, and every later one `later`.
fn api(first: Duration, later: Duration) -> (String, RawHttp) {
    let api = RawHttp::start(move |n, _, stream| {
        std::thread::sleep(if n == 0 { first } else { later });
        let _ = stream.write_all(json_answer("200 OK", ROWS).as_bytes());
    });
    (api.url("/people"), api)
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_servers_run_a_job_once_at_a_time_and_the_survivor_takes_over_from_a_killed_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(civlink_testkit::postgres::PgDatabase::create());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    // The first run hangs long enough to be killed mid-run; later ones take a moment.
    let (location, upstream) = api(Duration::from_secs(60), Duration::from_millis(1500));
    std::fs::write(
        jobs.join("api.toml"),
        format!(
            "name = \"api-people\"\ndataset = \"renshe.api_people\"\nstandard = \"{standard}\"\nmode = \"upsert\"\n\
             schedule = \"*/2 * * * * *\"\n\
             [dataset_info]\nsharing = \"conditional\"\nupdate_cycle = \"daily\"\n\
             [source]\nlocation = \"{location}\"\n[source.http]\ntimeout_secs = 120\n",
            standard = repo().join("tests/data/person_v1.json").display()
        ),
    )
    .unwrap();
    let env: Vec<(String, String)> = [
        ("CIVLINK_CATALOG_URL", database.url.as_str()),
        ("CIVLINK_JOBS_DIR", jobs.to_str().unwrap()),
        ("CIVLINK_SCHEDULER_LEASE_SECS", "2"),
        ("CIVLINK_SCHEDULER_RESCAN_SECS", "1"),
        ("CIVLINK_SCHEDULER_GRACE_SECS", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config =
        CatalogConfig::resolve(Some(&data), &Default::default(), &Default::default(), &env.iter().cloned().collect())
            .unwrap();
    let store = runtime.block_on(MetadataStore::connect(&config.metadata_url)).unwrap();
    let dataset: DatasetId = "renshe.api_people".parse().unwrap();
    let runs = || {
        let mut runs = runtime.block_on(store.runs(&dataset)).unwrap();
        runs.sort_by_key(|r| r.started_at);
        runs
    };

    let first = Server::start(&data, &env);
    let second = Server::start(&data, &env);
    wait_until("the first scheduled run calls the API", Duration::from_secs(30), || upstream.requests() > 0);
    let lease = runtime.block_on(store.job_lease("api-people")).unwrap().expect("the running job's lease");
    // One process holds it; `jobs list` says which, and `jobs run` will not start the job a second time.
    let listed = text(&civlink_env(&data, &["jobs", "list"], &env));
    assert!(listed.contains(&lease.holder), "{listed}");
    let refused = civlink_env(&data, &["jobs", "run", "api-people"], &env);
    assert_ne!(refused.status.code(), Some(0));
    assert!(text(&refused).contains("is running now"), "{}", text(&refused));
    let pid_of = |holder: &str| holder.split(':').nth(1).and_then(|p| p.parse::<u32>().ok());
    let (victim, survivor) = if pid_of(&lease.holder) == Some(first.pid()) {
        (first, second)
    } else {
        assert_eq!(pid_of(&lease.holder), Some(second.pid()), "holder {}", lease.holder);
        (second, first)
    };
    victim.kill();

    // After the lease lapses, the survivor runs the job and commits.
    wait_until("the survivor commits after the takeover", Duration::from_secs(60), || {
        runs().iter().any(|r| r.status == RunStatus::Committed)
    });
    let killed = runtime.block_on(store.run(&lease.run_id)).unwrap().expect("the killed run's record");
    assert_eq!(killed.status, RunStatus::Failed, "{killed:#?}");
    assert!(killed.error.as_deref().unwrap_or_default().contains("interrupted"), "{killed:#?}");

    // SIGTERM while a run is in progress: it finishes within the grace period, and the lease is released.
    let before = upstream.requests();
    wait_until("another scheduled run starts", Duration::from_secs(30), || upstream.requests() > before);
    let logged = survivor.stop();
    assert!(runtime.block_on(store.job_leases()).unwrap().is_empty(), "a lease survived shutdown: {logged}");
    let all = runs();
    let last = all.last().unwrap();
    assert_eq!(last.status, RunStatus::Committed, "the run at shutdown: {all:#?}\n{logged}");
    // Never two runs at once, and every row once.
    for pair in all.windows(2) {
        assert!(pair[0].finished_at.unwrap() <= pair[1].started_at, "overlapping runs: {pair:#?}");
    }
    assert!(all.iter().all(|r| r.status != RunStatus::Running), "{all:#?}");
    let tables = TableStore::new(&config).unwrap();
    let record = runtime.block_on(store.dataset(&dataset)).unwrap().unwrap();
    let version = record.current_version.expect("a committed version");
    let rows = runtime.block_on(tables.count(&record.table_uri, TimeTravel::Version(version))).unwrap();
    assert_eq!(rows, 3, "rows lost or doubled");
    runtime.block_on(store.close());
    runtime.block_on(database.drop());
}
