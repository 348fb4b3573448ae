//! A temporary catalog with one small person table, principals with tokens,
//! and a Flight SQL server on a free port.

use std::net::SocketAddr;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{FlightInfo, Ticket};
use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{DatasetSpec, Department, SharingType, UpdateCycle};
use civlink_catalog::policy::{Principal, Role};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_flight::{FlightConfig, PreEncoded, TlsConfig};
use civlink_query::{Limits, SessionFactory};
use civlink_standards::division::DivisionCode;
use civlink_standards::standard::{Sensitivity, Standard};
use futures::TryStreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The shipped household-registration standard.
pub const STANDARD: &str = "gongan.population";
/// The people dataset.
pub const PEOPLE: &str = "gongan.population";
/// A registered dataset nobody outside 公安 may read (not shared).
pub const CLOSED: &str = "gongan.population_archive";

/// A valid citizen ID number from its first 17 digits.
pub fn id(first17: &str) -> String {
    let check = civlink_standards::idcard::check_character(first17).unwrap();
    format!("{first17}{check}")
}

/// `(id_number, name, division_code)` of every row written.
pub fn people() -> Vec<(String, &'static str, Option<&'static str>)> {
    vec![
        (id("63010219900307123"), "张三", Some("630102001001")), // township 630102001
        (id("63010219910405234"), "李四", Some("630102001002")), // township 630102001
        (id("63010219850101345"), "王五", Some("630102002001")), // another township, same county
        (id("63010219800101456"), "赵六", Some("630102002002")),
        (id("63010319700101567"), "钱七", Some("630103001001")), // another county
        (id("63010220000229678"), "孙八", None),                 // no division: never scoped in
    ]
}

/// A running server over a temporary catalog.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: MetadataStore,
    pub factory: Arc<SessionFactory>,
    pub addr: SocketAddr,
    /// Tokens: county analyst (630102), township analyst (630102001), admin, 民政 analyst at province.
    pub county: String,
    pub township: String,
    pub admin: String,
    pub province: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<civlink_flight::Result<()>>>,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Fixture::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> Fixture {
        Fixture::build(limits, None).await
    }

    /// A server speaking only TLS with this certificate and key.
    pub async fn with_tls(tls: TlsConfig) -> Fixture {
        Fixture::build(Limits::default(), Some(tls)).await
    }

    async fn build(limits: Limits, tls: Option<TlsConfig>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = CatalogConfig::local(dir.path()).unwrap();
        let store = MetadataStore::connect(&config.metadata_url).await.unwrap();
        let tables = TableStore::new(&config).unwrap();

        let (_, document) = civlink_standards::shipped::SHIPPED.iter().find(|(id, _)| *id == STANDARD).unwrap();
        let standard: Standard = civlink_standards::shipped::standard(STANDARD).unwrap().unwrap();
        store.register_standard(&standard.id, &standard.version, document).await.unwrap();

        let spec = |id: &str, sharing| DatasetSpec {
            id: id.parse().unwrap(),
            title: "户籍人口信息".into(),
            owner: "公安厅人口管理处".into(),
            description: "test people".into(),
            standard_id: standard.id.clone(),
            standard_version: standard.version.clone(),
            classification: Sensitivity::Sensitive,
            sharing,
            update_cycle: UpdateCycle::Daily,
            division_column: Some("division_code".into()),
            primary_key: vec!["id_number".into()],
        };
        let people_spec = spec(PEOPLE, SharingType::Unconditional);
        let closed = spec(CLOSED, SharingType::NotShared);
        store.upsert_dataset(&closed, &tables.table_uri(&closed.id), &tables.quarantine_uri(&closed.id)).await.unwrap();

        // The table, in the standard's columns (all strings), written and committed like a run does.
        let fields: Vec<Field> =
            standard.properties.iter().map(|p| Field::new(p.name.clone(), DataType::Utf8, true)).collect();
        let schema = Arc::new(Schema::new(fields));
        let rows = people();
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let values: Vec<Option<String>> = rows
                    .iter()
                    .map(|(id, name, division)| match f.name().as_str() {
                        "id_number" => Some(id.clone()),
                        "name" => Some((*name).to_owned()),
                        "division_code" => division.map(str::to_owned),
                        "sex" => Some(if id.as_bytes()[16] % 2 == 1 { "1" } else { "2" }.to_owned()),
                        "birth_date" => Some(format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14])),
                        "address" => Some("青海省西宁市城东区八一路1号".to_owned()),
                        "status" => Some("normal".to_owned()),
                        _ => None,
                    })
                    .collect();
                Arc::new(StringArray::from(values)) as Arc<dyn Array>
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        commit_dataset(&store, &tables, &people_spec, &batch).await;

        let token = async |name: &str, department, role, division: &str| {
            store
                .create_principal(&Principal {
                    name: name.to_owned(),
                    department,
                    role,
                    division: DivisionCode::parse(division).unwrap(),
                })
                .await
                .unwrap();
            store.create_token(name, None).await.unwrap().secret
        };
        let county = token("county", Some(Department::Minzheng), Role::Analyst, "630102000000").await;
        let township = token("township", Some(Department::Minzheng), Role::Analyst, "630102001000").await;
        let admin = token("admin", None, Role::Admin, "630000000000").await;
        let province = token("province", Some(Department::Minzheng), Role::Analyst, "630000000000").await;

        let pre_encoded = PreEncoded::default();
        let factory = SessionFactory::builder(store.clone(), tables)
            .limits(limits)
            .keeper(Arc::new(pre_encoded.clone()))
            .build()
            .await
            .unwrap();
        let config = FlightConfig { addr: "127.0.0.1:0".parse().unwrap(), tls };
        let server = civlink_flight::bind(config, Arc::clone(&factory), pre_encoded).await.unwrap();
        let addr = server.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.serve(async {
            let _ = rx.await;
        }));
        Fixture {
            _dir: dir,
            store,
            factory,
            addr,
            county,
            township,
            admin,
            province,
            shutdown: Some(tx),
            server: Some(handle),
        }
    }

    /// A client without credentials.
    pub async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap();
        FlightSqlServiceClient::new(channel)
    }

    /// A client holding `token` as its bearer token.
    pub async fn client_with(&self, token: &str) -> FlightSqlServiceClient<Channel> {
        let mut client = self.client().await;
        client.set_token(token.to_owned());
        client
    }

    /// Stop the server and wait for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// Every batch behind a FlightInfo's endpoints.
pub async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    try_fetch(client, info).await.unwrap()
}

/// [`fetch`], keeping the error.
pub async fn try_fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<Vec<RecordBatch>, arrow_flight::error::FlightError> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket: Ticket = endpoint.ticket.unwrap();
        let stream = client.do_get(ticket).await?;
        batches.extend(stream.try_collect::<Vec<_>>().await?);
    }
    Ok(batches)
}

/// Run `sql` and return its batches.
pub async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_owned(), None).await.unwrap();
    fetch(client, info).await
}

/// The single Int64 value of a one-row result.
pub fn scalar_i64(batches: &[RecordBatch]) -> i64 {
    let batch = batches.iter().find(|b| b.num_rows() > 0).unwrap();
    batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

/// Column `i` of every batch as optional strings.
pub fn strings(batches: &[RecordBatch], i: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            assert_eq!(b.column(i).data_type(), &DataType::Utf8, "strings travel as Utf8");
            b.column(i).as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>()
        })
        .collect()
}

/// The gRPC status inside a client error.
pub fn status_of(error: &arrow_flight::error::FlightError) -> tonic::Code {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => status.code(),
        other => panic!("not a gRPC status: {other:?}"),
    }
}

pub use civlink_testkit::catalog::commit_dataset;
