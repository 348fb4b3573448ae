//! No personal data in the server's logs, even from a principal allowed to
//! see it in clear: the engine's errors quote values, and the log (and the
//! audit outcome) keeps them redacted.

use std::io::Write;
use std::sync::{Arc, Mutex};

use civlink_catalog::model::Department;
use civlink_catalog::policy::{Grant, GrantSubject, OutcomeKind, Principal, Role};
use civlink_query::{QueryRequest, SessionFactory, Statement};
use civlink_testkit::corpus::{self, POPULATION};
use futures::TryStreamExt;

/// Everything logged, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_errors_are_logged_without_the_values_they_quote() {
    let captured = Captured::default();
    let writer = captured.clone();
    // nextest runs each test in its own process: a global subscriber is this test's alone.
    // As the binary installs it (src/main.rs), with everything asked for.
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::TRACE)
            .with(tracing_subscriber::filter::filter_fn(civlink_query::redact::may_log))
            .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone()))
            .init();
    }

    let catalog = corpus::catalog().await;
    let village = catalog.data.villages[0];
    let analyst = Principal {
        name: "clear-reader".into(),
        department: Some(Department::Minzheng),
        role: Role::Analyst,
        division: village.parent(civlink_standards::division::Level::Province).unwrap(),
    };
    catalog.store.create_principal(&analyst).await.unwrap();
    catalog
        .store
        .grant(&Grant {
            id: "g-clear".into(),
            subject: GrantSubject::Principal(analyst.name.clone()),
            dataset: POPULATION.parse().unwrap(),
            columns: Some(vec!["name".into(), "id_number".into(), "division_code".into()]),
            unmasked: true,
            purpose: Some("test".into()),
            purpose_required: false,
            expires_at: None,
        })
        .await
        .unwrap();
    let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
    let names: Vec<String> = {
        use arrow::array::AsArray;
        let column = catalog.data.population.column_by_name("name").unwrap().as_string::<i32>();
        column.iter().flatten().map(str::to_owned).collect()
    };
    for sql in [
        format!("SELECT CAST(name AS INT) FROM {POPULATION}"),
        format!("SELECT to_timestamp(name) FROM {POPULATION}"),
        format!("SELECT to_date(name) FROM {POPULATION}"),
        format!("SELECT arrow_cast(id_number, 'Int8') FROM {POPULATION}"),
    ] {
        let request = QueryRequest {
            principal: analyst.clone(),
            purpose: None,
            action: civlink_catalog::policy::AuditAction::Query,
            text: sql.clone(),
            query_id: None,
        };
        let result: Result<Vec<_>, _> =
            match factory.run(request, Statement::Sql { sql: sql.clone(), params: None }).await {
                Ok(stream) => stream.try_collect().await,
                Err(e) => Err(e),
            };
        result.expect_err(&sql);
    }
    factory.auditor().flush_all().await;
    assert!(!names.is_empty());

    // Every failure reached the audit, and its outcome quotes no value.
    let entries = catalog.store.audit_entries(None).await.unwrap();
    let failures: Vec<_> = entries
        .iter()
        .filter(|r| {
            r.entry.principal == analyst.name && !matches!(r.entry.outcome.kind, OutcomeKind::Ok | OutcomeKind::Started)
        })
        .collect();
    assert!(failures.len() >= 4, "{} failures audited", failures.len());
    for record in &failures {
        let outcome = record.entry.outcome.to_string();
        for name in &names {
            assert!(!outcome.contains(name.as_str()), "{name} in the audit outcome {outcome}");
        }
    }

    // The log saw the work (the table load at least), and no name.
    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("table cached in memory"), "nothing was logged: {logged}");
    for name in &names {
        let line = logged.lines().find(|line| line.contains(name.as_str()));
        assert!(line.is_none(), "{name} in the log: {line:?}");
    }
}
