//! Part of the adversarial scoping corpus ([`civlink_testkit::corpus`]) over
//! the wire: a real Flight SQL server, the same rows as the pre-filtered
//! reference. The whole corpus runs against the query layer in its own tests.

use civlink_catalog::model::Department;
use civlink_catalog::policy::{Principal, Role};
use civlink_flight::FlightConfig;
use civlink_query::SessionFactory;
use civlink_standards::division::Level;
use civlink_testkit::corpus::{self, ARCHIVE, Rows, catalog, expand, run_reference};
use tokio::sync::oneshot;

use crate::fixture::fetch;

/// The same scoping on the wire: a real Flight SQL server, three corpus queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_queries_over_flight_sql_match_the_reference() {
    let cat = catalog().await;
    let county = cat.data.villages[4].parent(Level::County).unwrap();
    let principal = Principal {
        name: "wire-county".into(),
        department: Some(Department::Minzheng),
        role: Role::Analyst,
        division: county,
    };
    cat.store.create_principal(&principal).await.unwrap();
    let token = cat.store.create_token(&principal.name, None).await.unwrap().secret;

    // The server's factory reads the store's key; the copies are masked with it.
    let key = cat.store.mask_key().await.unwrap();
    let factory = SessionFactory::builder(cat.store.clone(), cat.tables.clone()).build().await.unwrap();
    let session = factory.session_for(&principal).await.unwrap();
    let reference = corpus::reference(&session.principal, &session.datasets, &cat.data, &key, |ctx| {
        civlink_query::udf::register_all(ctx);
        // Every session lists its findings table: so does the reference.
        let findings = session.findings_schema().expect("verification.findings");
        let catalog = ctx.catalog(civlink_query::CATALOG).expect("the civlink catalog");
        catalog.register_schema(civlink_query::findings::SCHEMA, findings).expect("register");
    });

    let config = FlightConfig { addr: "127.0.0.1:0".parse().unwrap(), tls: None };
    let server = civlink_flight::bind(config, factory, civlink_flight::PreEncoded::default()).await.unwrap();
    let addr = server.local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve(async {
        let _ = rx.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(channel);
    client.set_token(token);

    let wire = [
        "SELECT * FROM {P}",
        "SELECT division_parent(division_code, 'county') AS county, count(*) AS n FROM {P} GROUP BY 1",
        "SELECT p.name, b.amount, b.division_code FROM {P} p JOIN {B} b ON p.id_number = b.id_number",
        "SELECT count(*) FROM {P} WHERE division_code LIKE '%' OR 1=1",
        "SELECT table_schema, table_name FROM information_schema.tables",
    ];
    for sql in wire {
        let sql = expand(sql, &cat.data, "");
        let info = client.execute(sql.clone(), None).await.unwrap();
        let got = Rows::of(&fetch(&mut client, info).await).sorted();
        let want = run_reference(&reference, &sql).await.unwrap().sorted();
        assert!(!want.rows.is_empty(), "{sql}");
        assert_eq!(got, want, "{sql}");
    }
    // A table it may not read is refused on the wire too.
    let err = client.execute(format!("SELECT count(*) FROM {ARCHIVE}"), None).await.unwrap_err();
    assert_eq!(crate::fixture::status_of(&err), tonic::Code::PermissionDenied);

    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}
