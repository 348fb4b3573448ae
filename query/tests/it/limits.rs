//! Resource bounds that hold for the whole server, and the audit's fail
//! closed rule, through the governed run ([`SessionFactory::run`]).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use civlink_catalog::model::Department;
use civlink_catalog::policy::{AuditAction, OutcomeKind, Principal, Role};
use civlink_query::{Error, ErrorKind, Limits, QueryRequest, SessionFactory, Statement};
use civlink_testkit::corpus::{self, POPULATION};
use futures::TryStreamExt;

fn principal(name: &str, division: civlink_standards::division::DivisionCode) -> Principal {
    Principal { name: name.into(), department: Some(Department::Minzheng), role: Role::Analyst, division }
}

fn request(principal: &Principal, sql: &str) -> QueryRequest {
    QueryRequest {
        principal: principal.clone(),
        purpose: None,
        action: AuditAction::Query,
        text: sql.to_owned(),
        query_id: None,
    }
}

async fn run(factory: &SessionFactory, principal: &Principal, sql: &str) -> Result<Vec<RecordBatch>, Error> {
    let statement = Statement::Sql { sql: sql.to_owned(), params: None };
    factory.run(request(principal, sql), statement).await?.try_collect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_principal_cannot_take_the_server_down() {
    let catalog = corpus::catalog().await;
    let limits = Limits {
        query_timeout: Duration::from_secs(4),
        memory_per_query: 64 << 20,
        memory_total: 128 << 20,
        ..Limits::default()
    };
    let factory =
        SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).limits(limits).build().await.unwrap();
    let village = catalog.data.villages[0];
    let heavy = principal("heavy", village);
    let other = principal("other", village);
    let attacks = [
        ("SELECT length(repeat('x', 2000000000))", ErrorKind::ResourceExhausted),
        ("SELECT cardinality(range(0, 3000000000))", ErrorKind::ResourceExhausted),
        ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t", ErrorKind::Timeout),
        // Grows until the query's memory is used up, then stops there.
        ("SELECT array_agg(value) FROM generate_series(1, 100000000)", ErrorKind::ResourceExhausted),
    ];
    let factory = Arc::new(factory);
    let mut handles = Vec::new();
    for (sql, _) in attacks {
        let (factory, heavy) = (Arc::clone(&factory), heavy.clone());
        handles.push(tokio::spawn(async move { run(&factory, &heavy, sql).await }));
    }
    // Meanwhile another principal is answered, more than once.
    let count = format!("SELECT count(*) FROM {POPULATION}");
    for _ in 0..3 {
        let batches = run(&factory, &other, &count).await.unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    }
    for ((sql, kind), handle) in attacks.iter().zip(handles) {
        match handle.await.unwrap() {
            Err(e) => assert_eq!(e.kind(), *kind, "{sql}: {e}"),
            Ok(batches) => panic!("{sql} ran: {batches:?}"),
        }
    }
    // Everything is given back (background tasks of a stopped query wind down just after it).
    for _ in 0..100 {
        if factory.memory_in_use() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(factory.memory_in_use(), 0);
    assert!(factory.running().is_empty());
}

#[tokio::test]
async fn spilling_has_a_disk_budget() {
    let catalog = corpus::catalog().await;
    let limits = Limits { memory_per_query: 2 << 20, max_spill_bytes: 1 << 20, ..Limits::default() };
    let factory =
        SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).limits(limits).build().await.unwrap();
    let who = principal("sorter", catalog.data.villages[0]);
    let err =
        run(&factory, &who, "SELECT value FROM generate_series(1, 2000000) ORDER BY value DESC").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted, "{err}");
    // Within the budget, the same kind of sort spills and completes.
    let roomy = Limits { memory_per_query: 2 << 20, ..Limits::default() };
    let factory =
        SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).limits(roomy).build().await.unwrap();
    let sorted = run(&factory, &who, "SELECT value FROM generate_series(1, 400000) ORDER BY value DESC").await.unwrap();
    assert_eq!(sorted.iter().map(RecordBatch::num_rows).sum::<usize>(), 400_000);
}

#[tokio::test]
async fn the_audit_entry_is_durable_before_the_first_batch_and_a_query_without_one_is_refused() {
    let catalog = corpus::catalog().await;
    let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
    let who = principal("auditee", catalog.data.villages[0]);
    let sql = format!("SELECT name FROM {POPULATION}");
    let stream = factory.run(request(&who, &sql), Statement::Sql { sql: sql.clone(), params: None }).await.unwrap();
    // Not one batch has been read yet: the entry is there already.
    let entries = catalog.store.audit_entries(None).await.unwrap();
    let started = entries.iter().find(|e| e.entry.principal == "auditee").expect("an entry before any row");
    assert_eq!(started.entry.outcome.kind, OutcomeKind::Started);
    assert_eq!(started.entry.datasets, [POPULATION]);
    let rows: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    let entries = catalog.store.audit_entries(None).await.unwrap();
    let ended = entries.iter().rev().find(|e| e.entry.principal == "auditee").unwrap();
    assert!(ended.entry.outcome.is_ok());
    assert_eq!(ended.entry.rows, Some(rows.iter().map(|b| b.num_rows() as u64).sum()));

    // The log stops accepting entries (a full disk, a lost lock): queries are refused, and counted.
    let url = format!("sqlite://{}", catalog.dir.path().join("catalog.db").display());
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::Executor::execute(
        &mut raw,
        "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'no space left'); END",
    )
    .await
    .unwrap();
    let refused = factory.run(request(&who, &sql), Statement::Sql { sql: sql.clone(), params: None }).await;
    assert!(matches!(refused, Err(Error::AuditUnavailable { .. })), "{refused:?}");
    assert_eq!(factory.auditor().failures(), 1);
    assert!(factory.running().is_empty());
}

#[tokio::test]
async fn a_dataset_with_an_unreadable_standard_is_unreadable_and_the_others_are_not() {
    let catalog = corpus::catalog().await;
    let url = format!("sqlite://{}", catalog.dir.path().join("catalog.db").display());
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut raw, "UPDATE standards SET document = 'not json' WHERE id = 'minzheng.benefits'")
        .await
        .unwrap();
    let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
    let who = principal("minzheng-analyst", catalog.data.villages[0]);
    let session = factory.session_for(&who).await.unwrap();
    let readable: Vec<String> = session.datasets.iter().map(|(r, _)| r.spec.id.to_string()).collect();
    assert_eq!(readable, [POPULATION], "{readable:?}");
    let rows = run(&factory, &who, &format!("SELECT count(*) FROM {POPULATION}")).await.unwrap();
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    let refused = run(&factory, &who, &format!("SELECT count(*) FROM {}", corpus::BENEFITS)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
}

/// A kept session serves one statement many times, also at once: every run
/// gives the same rows (kept scans are fresh copies, kept plans are the
/// same plan), and a time-dependent statement is planned at each run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_session_runs_a_statement_again_and_at_once_with_the_same_rows() {
    let catalog = corpus::catalog().await;
    let factory =
        Arc::new(SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap());
    let county = catalog.data.villages[0].parent(civlink_standards::division::Level::County).unwrap();
    let analyst = principal("county", county);
    let sqls = [
        format!("SELECT count(*) FROM {POPULATION}"),
        format!("SELECT division_code, count(*) AS n FROM {POPULATION} GROUP BY division_code ORDER BY division_code"),
        format!(
            "SELECT p.division_code, count(*) FROM {POPULATION} p JOIN {POPULATION} q ON p.id_number = q.id_number GROUP BY 1 ORDER BY 1"
        ),
    ];
    let show = |batches: &[RecordBatch]| corpus::Rows::of(batches);
    for sql in &sqls {
        let first = show(&run(&factory, &analyst, sql).await.unwrap());
        for _ in 0..3 {
            assert_eq!(show(&run(&factory, &analyst, sql).await.unwrap()), first, "{sql}");
        }
        // As many at once as the principal's slots allow.
        let mut handles = Vec::new();
        for _ in 0..Limits::default().max_concurrent_per_principal {
            let (factory, analyst, sql) = (Arc::clone(&factory), analyst.clone(), sql.clone());
            handles.push(tokio::spawn(async move { run(&factory, &analyst, &sql).await }));
        }
        for handle in handles {
            assert_eq!(show(&handle.await.unwrap().unwrap()), first, "{sql}, at once");
        }
    }
    assert_eq!(factory.sessions().len(), 1, "one principal, one kept session");

    let now = "SELECT CAST(now() AS VARCHAR)";
    let before = show(&run(&factory, &analyst, now).await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_ne!(show(&run(&factory, &analyst, now).await.unwrap()), before, "now() is the run's, not the plan's");
}
