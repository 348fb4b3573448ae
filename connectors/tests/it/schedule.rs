//! The scheduler in one process, over a real catalog: scheduled jobs run,
//! followers run after each commit (never after a skipped or held
//! delivery), the directory is read again while running, missed schedules
//! follow each job's policy, and a run in progress at shutdown either
//! finishes within the grace period or is stopped with the dataset
//! untouched. A run whose lease is taken from it stops before committing.
//! (Two processes and a SIGKILLed holder: the binary's tests.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{DatasetId, RunStatus};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_connectors::schedule::{Ran, RunReport, Scheduler, SchedulerCatalog, SchedulerConfig, Trigger};
use civlink_testkit::http::{RawHttp, json_answer};
use tokio::sync::mpsc::UnboundedReceiver;

const STANDARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/person_v1.json");
const HEADER: &str = "id_number,name";
const PEOPLE: [&str; 3] = ["11010519491231002X,张三", "630102198001010019,王五", "630102199001010013,赵六"];

struct Hub {
    dir: tempfile::TempDir,
    jobs: PathBuf,
    catalog: Arc<SchedulerCatalog>,
}

impl Hub {
    async fn new() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        let config = CatalogConfig::local(&dir.path().join("data")).unwrap();
        let store = MetadataStore::connect(&config.metadata_url).await.unwrap();
        let tables = TableStore::new(&config).unwrap();
        Hub { dir, jobs, catalog: Arc::new(SchedulerCatalog { store, tables, s3: None }) }
    }

    fn export(&self, file: &str, rows: &[&str]) -> PathBuf {
        let path = self.dir.path().join(file);
        let mut text = format!("{HEADER}\n");
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A job over a CSV export or an HTTP location, with extra top-level keys.
    fn job(&self, name: &str, extra: &str, location: &str, source_extra: &str) {
        let text = format!(
            "name = \"{name}\"\ndataset = \"minzheng.sched_{table}\"\nstandard = \"{STANDARD}\"\nmode = \"overwrite\"\n{extra}\n\
             [dataset_info]\nsharing = \"conditional\"\nupdate_cycle = \"daily\"\n\
             [source]\nlocation = \"{location}\"\n{source_extra}",
            table = name.replace('-', "_")
        );
        std::fs::write(self.jobs.join(format!("{name}.toml")), text).unwrap();
    }

    fn csv_job(&self, name: &str, extra: &str, rows: &[&str]) {
        let export = self.export(&format!("{name}.csv"), rows);
        self.job(name, extra, &export.display().to_string(), "");
    }

    fn config(&self) -> SchedulerConfig {
        SchedulerConfig {
            lease: Duration::from_secs(5),
            rescan: Duration::from_millis(500),
            grace: Duration::from_secs(20),
            ..SchedulerConfig::new(self.jobs.clone())
        }
    }

    fn start(
        &self,
        config: SchedulerConfig,
    ) -> (tokio::task::JoinHandle<()>, UnboundedReceiver<RunReport>, tokio::sync::oneshot::Sender<()>) {
        let (reports, received) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let scheduler = Scheduler::new(config, Arc::clone(&self.catalog)).reports(reports);
        let task = tokio::spawn(async move {
            scheduler
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        (task, received, stop)
    }

    async fn runs(&self, job: &str) -> Vec<civlink_catalog::model::RunRecord> {
        let dataset: DatasetId = format!("minzheng.sched_{}", job.replace('-', "_")).parse().unwrap();
        let mut runs = self.catalog.store.runs(&dataset).await.unwrap();
        runs.retain(|r| r.job == job);
        runs
    }
}

/// The next report matching `wanted`, within 30 s; every report seen on the way is kept in `seen`.
async fn wait_for(
    reports: &mut UnboundedReceiver<RunReport>,
    seen: &mut Vec<RunReport>,
    what: &str,
    wanted: impl Fn(&RunReport) -> bool,
) -> RunReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let report = tokio::time::timeout_at(deadline, reports.recv())
            .await
            .unwrap_or_else(|_| panic!("no report of {what} within 30 s; seen: {seen:#?}"))
            .expect("scheduler stopped");
        seen.push(report.clone());
        if wanted(&report) {
            return report;
        }
    }
}

fn is(job: &'static str, ran: fn(&Ran) -> bool) -> impl Fn(&RunReport) -> bool {
    move |r| r.job == job && ran(&r.ran)
}

fn committed(ran: &Ran) -> bool {
    matches!(ran, Ran::Committed { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_jobs_run_and_followers_run_after_each_commit_only() {
    let hub = Hub::new().await;
    hub.csv_job("alpha", "schedule = \"* * * * * *\"", &PEOPLE[..2]);
    hub.csv_job("beta", "after = [\"alpha\"]", &PEOPLE);
    std::fs::write(hub.jobs.join("broken.toml"), "name = \"broken\"\nafter = [\"nobody\"]\n").unwrap();
    let (task, mut reports, stop) = hub.start(hub.config());
    let mut seen = Vec::new();

    let first = wait_for(&mut reports, &mut seen, "alpha committed", is("alpha", committed)).await;
    assert!(matches!(first.trigger, Trigger::Schedule(_)), "{first:?}");
    let follower = wait_for(&mut reports, &mut seen, "beta committed", is("beta", committed)).await;
    assert_eq!(follower.trigger, Trigger::After("alpha".into()));

    // The same export again: alpha's runs are skipped, which is no commit, so beta does not run again.
    for _ in 0..3 {
        wait_for(&mut reports, &mut seen, "alpha skipped", is("alpha", |r| matches!(r, Ran::Skipped { .. }))).await;
    }
    assert_eq!(hub.runs("beta").await.len(), 1, "beta ran after a skipped delivery: {seen:#?}");

    // A new delivery commits, and beta follows it (with a new export of its own, so it commits too).
    hub.export("beta.csv", &PEOPLE[1..]);
    hub.export("alpha.csv", &PEOPLE[1..]);
    wait_for(&mut reports, &mut seen, "alpha's new delivery", is("alpha", committed)).await;
    wait_for(&mut reports, &mut seen, "beta after it", is("beta", committed)).await;

    // A job added while running is read at the next rescan; it has never run, and beta has committed.
    hub.csv_job("gamma", "after = [\"beta\"]", &PEOPLE[..1]);
    let added = wait_for(&mut reports, &mut seen, "gamma, added while running", is("gamma", committed)).await;
    assert_eq!(added.trigger, Trigger::After("beta".into()));

    // An empty delivery is held by the gates: nothing follows it.
    hub.export("alpha.csv", &[]);
    for _ in 0..2 {
        wait_for(&mut reports, &mut seen, "alpha held", is("alpha", |r| matches!(r, Ran::Held { .. }))).await;
    }
    assert_eq!(hub.runs("beta").await.len(), 2, "beta ran after a held delivery: {seen:#?}");
    assert_eq!(hub.runs("gamma").await.len(), 1);

    let _ = stop.send(());
    task.await.unwrap();
    assert!(!seen.iter().any(|r| r.job == "broken"), "a broken job file was run");
    assert!(hub.catalog.store.job_leases().await.unwrap().is_empty(), "leases left behind");
    // One run at a time: no two runs of alpha overlap.
    let mut runs = hub.runs("alpha").await;
    runs.sort_by_key(|r| r.started_at);
    for pair in runs.windows(2) {
        assert!(pair[0].finished_at.unwrap() <= pair[1].started_at, "overlapping runs: {pair:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_schedules_follow_each_jobs_policy() {
    let hub = Hub::new().await;
    let nightly = "schedule = \"0 0 2 * * *\"";
    hub.csv_job("catch-up", &format!("{nightly}\nmissed = \"run_once\""), &PEOPLE);
    hub.csv_job("skipper", &format!("{nightly}\nmissed = \"skip\""), &PEOPLE);
    hub.csv_job("newcomer", &format!("{nightly}\nmissed = \"run_once\""), &PEOPLE);
    let cron: croner::Cron = "0 0 2 * * *".parse().unwrap();
    let latest = cron.find_previous_occurrence(&Utc::now(), true).unwrap();
    // A scheduler last saw the occurrence a day before the latest: the latest was missed.
    let day_before = latest - chrono::Duration::days(1);
    for job in ["catch-up", "skipper"] {
        assert!(hub.catalog.store.claim_job_occurrence(job, day_before, "earlier").await.unwrap());
    }

    // Stopped at once: the missed runs start before the loop, and shutdown waits for them.
    let (task, mut reports, stop) = hub.start(hub.config());
    let _ = stop.send(());
    task.await.unwrap();
    let mut seen = Vec::new();
    while let Ok(report) = reports.try_recv() {
        seen.push(report);
    }
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].job, "catch-up");
    assert_eq!(seen[0].trigger, Trigger::Missed(latest));
    assert!(committed(&seen[0].ran), "{seen:#?}");
    // The run and the newcomer claimed the latest occurrence (a never-scheduled job has missed nothing);
    // a skipped miss is left unclaimed, for a process that may be about to run it.
    for job in ["catch-up", "newcomer"] {
        assert_eq!(hub.catalog.store.job_occurrence(job).await.unwrap(), Some(latest), "{job}");
    }
    assert_eq!(hub.catalog.store.job_occurrence("skipper").await.unwrap(), Some(day_before));

    // Started again: nothing was missed since.
    let (task, mut reports, stop) = hub.start(hub.config());
    let _ = stop.send(());
    task.await.unwrap();
    assert!(reports.try_recv().is_err(), "a missed schedule ran twice");
    assert_eq!(hub.runs("catch-up").await.len(), 1);
    assert!(hub.runs("skipper").await.is_empty());
}

/// An HTTP API that answers after `delay`.
fn slow_api(delay: Duration) -> (String, RawHttp) {
    let api = RawHttp::start(move |_, _, stream| {
        use std::io::Write;
        std::thread::sleep(delay);
        let _ = stream
            .write_all(json_answer("200 OK", r#"[{"id_number": "11010519491231002X", "name": "张三"}]"#).as_bytes());
    });
    (api.url("/people"), api)
}

async fn until_requested(api: &RawHttp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while api.requests() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the scheduled run never called the API");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn api_job(hub: &Hub, name: &str, location: &str) {
    hub.job(name, "schedule = \"* * * * * *\"", location, "[source.http]\ntimeout_secs = 120\n");
}

async fn dataset_version(hub: &Hub, job: &str) -> Option<i64> {
    let dataset: DatasetId = format!("minzheng.sched_{}", job.replace('-', "_")).parse().unwrap();
    hub.catalog.store.dataset(&dataset).await.unwrap().and_then(|d| d.current_version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_at_shutdown_finishes_within_the_grace_period_or_stops_untouched() {
    // Past the grace period: stopped, recorded failed, dataset untouched, lease released.
    let hub = Hub::new().await;
    let (location, api) = slow_api(Duration::from_secs(5));
    api_job(&hub, "slow", &location);
    let (task, mut reports, stop) = hub.start(SchedulerConfig { grace: Duration::from_millis(300), ..hub.config() });
    until_requested(&api).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("shutdown waited past its grace").unwrap();
    assert!(reports.try_recv().is_err(), "the stopped run reported an outcome");
    let runs = hub.runs("slow").await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(runs[0].error.as_deref().unwrap_or_default().contains("shut down"), "{runs:#?}");
    assert_eq!(dataset_version(&hub, "slow").await, None, "the stopped run wrote");
    assert!(hub.catalog.store.job_leases().await.unwrap().is_empty(), "the lease was not released");

    // Within it: the run finishes and commits.
    let hub = Hub::new().await;
    let (location, api) = slow_api(Duration::from_millis(800));
    api_job(&hub, "patient", &location);
    let (task, mut reports, stop) = hub.start(hub.config());
    until_requested(&api).await;
    let _ = stop.send(());
    task.await.unwrap();
    let report = reports.try_recv().expect("the run's report");
    assert!(committed(&report.ran), "{report:?}");
    assert!(dataset_version(&hub, "patient").await.is_some());
    assert!(hub.catalog.store.job_leases().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_is_taken_stops_before_committing() {
    let hub = Hub::new().await;
    let (location, api) = slow_api(Duration::from_secs(3));
    api_job(&hub, "taken", &location);
    let (task, mut reports, stop) = hub.start(SchedulerConfig { lease: Duration::from_millis(600), ..hub.config() });
    until_requested(&api).await;
    // Another holder, whose clock says the lease has lapsed, takes the job over.
    let later = Utc::now() + chrono::Duration::hours(1);
    let taken = hub
        .catalog
        .store
        .acquire_job_lease("taken", "intruder", "run-x", Duration::from_secs(3600), later)
        .await
        .unwrap();
    assert!(matches!(taken, civlink_catalog::store::LeaseOutcome::Acquired { replaced: Some(_) }), "{taken:?}");
    let mut seen = Vec::new();
    let lost = wait_for(&mut reports, &mut seen, "the lease lost", |r| matches!(r.ran, Ran::LeaseLost { .. })).await;
    let Ran::LeaseLost { run_id } = &lost.ran else { unreachable!() };
    let _ = stop.send(());
    task.await.unwrap();
    let run = hub.catalog.store.run(run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(dataset_version(&hub, "taken").await, None, "a run without its lease committed");
    // The intruder's lease stays theirs; the scheduler's own next attempts found it busy.
    let lease = hub.catalog.store.job_lease("taken").await.unwrap().unwrap();
    assert_eq!(lease.holder, "intruder");
    assert!(
        seen.iter()
            .chain(std::iter::from_fn(|| reports.try_recv().ok()).collect::<Vec<_>>().iter())
            .all(|r| !committed(&r.ran))
    );
}
