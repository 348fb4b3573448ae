//! The policy snapshot under change: a token revoked or a grant withdrawn,
//! through another connection to the catalog (as another process or the
//! CLI would), applies to the next request after its commit, on SQLite and
//! on PostgreSQL, also while clients are querying; and a plan kept from a
//! describe is reused only by the run it was made for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use civlink_catalog::model::Department;
use civlink_catalog::policy::{AuditAction, Grant, GrantSubject, IssuedToken, Principal, Role};
use civlink_catalog::store::MetadataStore;
use civlink_query::auth::Credentials;
use civlink_query::{Error, ErrorKind, QueryRequest, SessionFactory, Statement};
use civlink_standards::division::DivisionCode;
use civlink_testkit::corpus::{self, BENEFITS};
use civlink_testkit::postgres::on_both_backends;
use futures::TryStreamExt;

const COUNT: &str = "SELECT count(*) FROM minzheng.benefits";

/// A 人社 analyst for the whole province: `minzheng.benefits` is shared on
/// condition, so it reads it only through a grant.
fn analyst(name: &str) -> Principal {
    Principal {
        name: name.into(),
        department: Some(Department::Renshe),
        role: Role::Analyst,
        division: DivisionCode::parse("630000000000").unwrap(),
    }
}

fn grant_for(principal: &Principal, id: &str) -> Grant {
    Grant {
        id: id.into(),
        subject: GrantSubject::Principal(principal.name.clone()),
        dataset: BENEFITS.parse().unwrap(),
        columns: Some(vec!["benefit_id".into(), "amount".into(), "division_code".into()]),
        unmasked: false,
        purpose: None,
        purpose_required: false,
        expires_at: None,
    }
}

/// The principal with its token and grant, made through `admin`.
async fn enrol(admin: &MetadataStore, name: &str) -> (Principal, IssuedToken, Grant) {
    let principal = analyst(name);
    admin.create_principal(&principal).await.unwrap();
    let token = admin.create_token(&principal.name, None).await.unwrap();
    let grant = grant_for(&principal, &format!("g-{name}"));
    admin.grant(&grant).await.unwrap();
    (principal, token, grant)
}

fn request(principal: &Principal, sql: &str, query_id: Option<&str>) -> QueryRequest {
    QueryRequest {
        principal: principal.clone(),
        purpose: None,
        action: AuditAction::Query,
        text: sql.into(),
        query_id: query_id.map(str::to_owned),
    }
}

/// Authenticate with `token`, then run `sql` as whoever it names.
async fn authenticated_run(factory: &SessionFactory, token: &str, sql: &str) -> Result<Vec<RecordBatch>, Error> {
    let principal = factory.authenticate(&Credentials::Bearer { token: token.into() }).await?;
    run(factory, &principal, sql, None).await
}

async fn run(
    factory: &SessionFactory,
    principal: &Principal,
    sql: &str,
    query_id: Option<&str>,
) -> Result<Vec<RecordBatch>, Error> {
    let stream =
        factory.run(request(principal, sql, query_id), Statement::Sql { sql: sql.into(), params: None }).await?;
    stream.try_collect().await
}

fn single_i64(batches: &[RecordBatch]) -> i64 {
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    batch.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0)
}

/// The refusal of a dataset the principal does not (or no longer) read.
fn assert_unreadable(result: Result<Vec<RecordBatch>, Error>) {
    let error = result.expect_err("no grant");
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
}

/// The rows of the corpus's benefits inside Qinghai: what a province analyst counts.
fn in_province(catalog: &corpus::Catalog) -> i64 {
    let codes = catalog.data.benefits.column_by_name("division_code").unwrap().as_string::<i32>();
    codes.iter().flatten().filter(|code| code.starts_with("63")).count() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_apply_to_the_next_request_on_both_backends() {
    on_both_backends(|url| async move {
        let catalog = corpus::catalog_at(&url).await;
        let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
        // Changes come through a connection of their own, as from another process.
        let admin = MetadataStore::connect(&url).await.unwrap();
        let (principal, token, grant) = enrol(&admin, "renshe-analyst").await;

        let rows = authenticated_run(&factory, &token.secret, COUNT).await.expect("granted");
        assert_eq!(single_i64(&rows), in_province(&catalog));

        admin.revoke_grant(&grant.id).await.unwrap();
        assert_unreadable(authenticated_run(&factory, &token.secret, COUNT).await);

        admin.grant(&grant).await.unwrap();
        authenticated_run(&factory, &token.secret, COUNT).await.expect("granted again");

        admin.revoke_token(&token.id).await.unwrap();
        let refused = factory.authenticate(&Credentials::Bearer { token: token.secret.clone() }).await;
        assert!(matches!(refused, Err(Error::TokenRevoked)), "{refused:?}");
        // The principal's other tokens still work.
        let second = admin.create_token(&principal.name, None).await.unwrap();
        authenticated_run(&factory, &second.secret, COUNT).await.expect("a second token");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_requires_a_purpose_refuses_queries_without_one_on_both_backends() {
    on_both_backends(|url| async move {
        let catalog = corpus::catalog_at(&url).await;
        let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
        let principal = analyst("renshe-purpose");
        catalog.store.create_principal(&principal).await.unwrap();
        let grant = Grant {
            purpose: Some("低保复核".into()),
            purpose_required: true,
            ..grant_for(&principal, "g-purpose")
        };
        catalog.store.grant(&grant).await.unwrap();

        // Without a purpose: refused, typed, saying why (Flight maps the kind to PERMISSION_DENIED).
        let refused = run(&factory, &principal, COUNT, None).await.expect_err("no purpose stated");
        assert_eq!(refused.kind(), ErrorKind::PermissionDenied, "{refused}");
        assert!(
            matches!(&refused, Error::PurposeRequired { dataset, grant } if dataset == BENEFITS && grant == "g-purpose"),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("x-civlink-purpose"), "{refused}");
        // Planning alone (Flight's GetFlightInfo, prepare) is refused the same way.
        let described = factory.describe(&request(&principal, COUNT, None), COUNT, None).await;
        assert!(matches!(described, Err(Error::PurposeRequired { .. })), "{described:?}");

        // With one, the grant applies.
        let mut stated = request(&principal, COUNT, None);
        stated.purpose = Some("低保复核 2026".into());
        let stream = factory.run(stated, Statement::Sql { sql: COUNT.into(), params: None }).await.unwrap();
        let rows: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        assert_eq!(single_i64(&rows), in_province(&catalog));

        let entries = catalog.store.audit_entries(None).await.unwrap();
        let denied = entries.iter().filter(|r| {
            r.entry.principal == "renshe-purpose"
                && r.entry.outcome.kind == civlink_catalog::policy::OutcomeKind::Denied
                && r.entry.outcome.to_string().contains("requires a stated purpose")
        });
        assert_eq!(denied.count(), 2, "{entries:#?}");
    })
    .await;
}

/// What one client saw: when its request started, and whether it was served.
struct Observation {
    started: Instant,
    served: bool,
}

/// `clients` tasks, each authenticating with its token and counting, until `stop`.
fn query_until(
    factory: &Arc<SessionFactory>,
    tokens: &[String],
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Observation>>> {
    tokens
        .iter()
        .map(|token| {
            let factory = Arc::clone(factory);
            let token = token.clone();
            let stop = Arc::clone(stop);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let outcome = authenticated_run(&factory, &token, COUNT).await;
                    if let Err(e) = &outcome {
                        // Only the policy may refuse: nothing else is allowed to go wrong.
                        assert!(
                            matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::Unauthenticated),
                            "unexpected failure: {e}"
                        );
                    }
                    seen.push(Observation { started, served: outcome.is_ok() });
                }
                seen
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_after_a_commit_sees_the_old_policy_on_both_backends() {
    on_both_backends(|url| async move {
        let catalog = corpus::catalog_at(&url).await;
        let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
        let admin = MetadataStore::connect(&url).await.unwrap();
        let (_, losing_grant, grant) = enrol(&admin, "loses-grant").await;
        let (_, losing_token, _) = enrol(&admin, "loses-token").await;
        let (_, keeps, _) = enrol(&admin, "keeps-both").await;

        let stop = Arc::new(AtomicBool::new(false));
        let grant_clients = query_until(&factory, &[losing_grant.secret.clone(), losing_grant.secret.clone()], &stop);
        let token_clients = query_until(&factory, std::slice::from_ref(&losing_token.secret), &stop);
        let steady_clients = query_until(&factory, std::slice::from_ref(&keeps.secret), &stop);

        tokio::time::sleep(Duration::from_millis(300)).await;
        admin.revoke_grant(&grant.id).await.unwrap();
        let grant_gone = Instant::now();
        admin.revoke_token(&losing_token.id).await.unwrap();
        let token_gone = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);

        let check = |seen: Vec<Observation>, committed: Instant, what: &str| {
            let before = seen.iter().filter(|o| o.started < committed).count();
            let after: Vec<_> = seen.iter().filter(|o| o.started >= committed).collect();
            assert!(before > 0 && !after.is_empty(), "{what}: {before} requests before, {} after", after.len());
            assert!(seen.iter().take(1).all(|o| o.served), "{what}: the first request was refused");
            let stale = after.iter().filter(|o| o.served).count();
            assert_eq!(stale, 0, "{what}: {stale} of {} requests after the commit saw the old policy", after.len());
        };
        for client in grant_clients {
            check(client.await.unwrap(), grant_gone, "grant withdrawn");
        }
        for client in token_clients {
            check(client.await.unwrap(), token_gone, "token revoked");
        }
        for client in steady_clients {
            let seen = client.await.unwrap();
            assert!(seen.len() > 2 && seen.iter().all(|o| o.served), "an unchanged principal was refused");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_described_plan_serves_only_the_run_it_was_made_for() {
    let catalog = corpus::catalog().await;
    let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
    let (owner, _, grant) = enrol(&catalog.store, "describer").await;
    let (other, _, _) = enrol(&catalog.store, "replayer").await;
    let plans = factory.kept_plans();
    let no_params = RecordBatch::new_empty(Arc::new(arrow::datatypes::Schema::empty()));
    let describe = |principal: &Principal, sql: &str, id: &str| {
        let request = request(principal, sql, Some(id));
        let factory = Arc::clone(&factory);
        let sql = sql.to_owned();
        let no_params = no_params.clone();
        async move { factory.describe(&request, &sql, Some(&no_params)).await }
    };

    // Described, then run by the same principal with the same SQL: one plan.
    describe(&owner, COUNT, "q-same").await.unwrap();
    assert_eq!(plans.len(), 1);
    let rows = run(&factory, &owner, COUNT, Some("q-same")).await.unwrap();
    assert_eq!(single_i64(&rows), in_province(&catalog));
    assert_eq!((plans.reused(), plans.len()), (1, 0));

    // A second run of the same ticket plans again (the plan was handed out once).
    run(&factory, &owner, COUNT, Some("q-same")).await.unwrap();
    assert_eq!(plans.reused(), 1);

    // Another principal's run of the ticket plans under its own caller and leaves the plan be.
    let scoped = "SELECT count(*) FROM minzheng.benefits WHERE amount >= 0";
    let stranger = analyst("no-grant");
    catalog.store.create_principal(&stranger).await.unwrap();
    describe(&owner, scoped, "q-foreign").await.unwrap();
    assert_unreadable(run(&factory, &stranger, scoped, Some("q-foreign")).await);
    run(&factory, &other, scoped, Some("q-foreign")).await.expect("its own grant");
    assert_eq!(plans.reused(), 1);
    run(&factory, &owner, scoped, Some("q-foreign")).await.unwrap();
    assert_eq!(plans.reused(), 2);

    // An edited statement runs as written.
    describe(&owner, "SELECT 1", "q-edited").await.unwrap();
    let rows = run(&factory, &owner, "SELECT 2", Some("q-edited")).await.unwrap();
    assert_eq!(single_i64(&rows), 2);
    assert_eq!(plans.reused(), 2);

    // A plan made before the policy changed is not used after it.
    describe(&owner, COUNT, "q-stale").await.unwrap();
    catalog.store.revoke_grant(&grant.id).await.unwrap();
    assert_unreadable(run(&factory, &owner, COUNT, Some("q-stale")).await);
    assert_eq!(plans.reused(), 2);
}
