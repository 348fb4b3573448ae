//! A temporary catalog with a small person table, principals at every level
//! with tokens, a REST server on a free port, and a tiny HTTP/1.1 client
//! (no HTTP client crate is pinned in the workspace).

use std::net::SocketAddr;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::Utc;
use civlink_api::ApiConfig;
use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{
    DatasetSpec, Department, QualityReport, RunCounts, RunRecord, RunStatus, SharingType, UpdateCycle, WriteMode,
};
use civlink_catalog::policy::{Grant, GrantSubject, Principal, Role};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_query::{Limits, SessionFactory};
use civlink_standards::division::DivisionCode;
use civlink_standards::standard::{Sensitivity, Standard};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The people dataset (unconditional).
pub const PEOPLE: &str = "gongan.population";
/// A conditional dataset: the province analyst holds an unmasked grant on some columns.
pub const INSURED: &str = "renshe.insured_people";
/// A not-shared dataset of 公安, registered and never ingested.
pub const ARCHIVE: &str = "gongan.population_archive";

/// The standard every test dataset follows (self-contained, so that changes
/// to the shipped standards do not move these tests).
pub const STANDARD_DOC: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "x-civlink-id": "test.people",
  "x-civlink-version": "1.0.0",
  "title": "测试人口",
  "type": "object",
  "x-civlink-primary-key": ["id_number"],
  "x-civlink-division-column": "division_code",
  "required": ["id_number", "name", "division_code"],
  "properties": {
    "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643",
      "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true,
      "x-civlink-mask": {"strategy": "keep_ends", "first": 6, "last": 4}},
    "name": {"type": "string", "title": "姓名", "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true,
      "x-civlink-mask": {"strategy": "name"}},
    "household_number": {"type": "string", "title": "户号", "x-civlink-sensitivity": "sensitive",
      "x-civlink-mask": {"strategy": "pseudonym"}},
    "sex": {"type": "string", "title": "性别", "x-civlink-sensitivity": "internal"},
    "birth_date": {"type": "string", "format": "date", "title": "出生日期", "x-civlink-sensitivity": "internal"},
    "division_code": {"type": "string", "format": "division-code", "title": "行政区划代码",
      "x-civlink-sensitivity": "internal"},
    "phone": {"type": "string", "title": "联系电话", "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true},
    "household_size": {"type": "integer", "title": "家庭人口数", "x-civlink-sensitivity": "internal"},
    "status": {"type": "string", "title": "状态", "x-civlink-sensitivity": "internal"}
  }
}"#;

/// One person row, in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id_number: String,
    pub name: String,
    pub household_number: String,
    pub sex: String,
    pub birth_date: String,
    pub division_code: Option<String>,
    pub phone: String,
    pub household_size: Option<i64>,
    pub status: String,
}

/// A valid citizen ID number from its first 17 digits.
pub fn id(first17: &str) -> String {
    let check = civlink_standards::idcard::check_character(first17).unwrap();
    format!("{first17}{check}")
}

/// Every row written: 9 in township 630102001, 7 in township 630102002 (same
/// county), 6 in county 630103, 4 in another prefecture, 2 without a division.
pub fn people() -> Vec<Person> {
    let divisions: Vec<Option<&str>> = std::iter::repeat_n(Some("630102001001"), 9)
        .chain(std::iter::repeat_n(Some("630102002001"), 7))
        .chain(std::iter::repeat_n(Some("630103001001"), 6))
        .chain(std::iter::repeat_n(Some("632221100200"), 4))
        .chain(std::iter::repeat_n(None, 2))
        .collect();
    let surnames = ["张", "李", "王", "赵", "钱", "孙", "周", "吴", "郑", "陈"];
    let given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋"];
    divisions
        .into_iter()
        .enumerate()
        .map(|(i, division)| {
            let birth = format!("19{:02}{:02}{:02}", 50 + i % 40, 1 + i % 12, 1 + i % 28);
            let region = division.map(|d| &d[..6]).unwrap_or("630102");
            let id_number = id(&format!("{region}{birth}{:03}", 100 + i));
            let sex = if id_number.as_bytes()[16] % 2 == 1 { "1" } else { "2" };
            Person {
                name: format!("{}{}{}", surnames[i % 10], given[(i * 3) % 10], given[(i * 7 + 1) % 10]),
                household_number: format!("6301{:08}", i / 3),
                sex: sex.to_owned(),
                birth_date: format!("{}-{}-{}", &birth[..4], &birth[4..6], &birth[6..8]),
                division_code: division.map(str::to_owned),
                phone: format!("1380000{i:04}"),
                household_size: (i % 7 != 3).then_some(1 + (i % 5) as i64),
                status: if i % 5 == 0 { "moved_out" } else { "normal" }.to_owned(),
                id_number,
            }
        })
        .collect()
}

/// The rows a principal with this row prefix sees (`None` = admin: all).
pub fn in_scope(prefix: Option<&str>) -> Vec<Person> {
    people()
        .into_iter()
        .filter(|p| match prefix {
            None => true,
            Some(prefix) => p.division_code.as_deref().is_some_and(|d| d.starts_with(prefix)),
        })
        .collect()
}

/// The people as one record batch (strings, and Int64 for the integer column).
pub fn batch() -> RecordBatch {
    let rows = people();
    let strings = |f: &dyn Fn(&Person) -> Option<String>| {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as Arc<dyn Array>
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("household_number", DataType::Utf8, true),
        Field::new("sex", DataType::Utf8, true),
        Field::new("birth_date", DataType::Utf8, true),
        Field::new("division_code", DataType::Utf8, true),
        Field::new("phone", DataType::Utf8, true),
        Field::new("household_size", DataType::Int64, true),
        Field::new("status", DataType::Utf8, true),
    ]));
    let columns = vec![
        strings(&|p| Some(p.id_number.clone())),
        strings(&|p| Some(p.name.clone())),
        strings(&|p| Some(p.household_number.clone())),
        strings(&|p| Some(p.sex.clone())),
        strings(&|p| Some(p.birth_date.clone())),
        strings(&|p| p.division_code.clone()),
        strings(&|p| Some(p.phone.clone())),
        Arc::new(Int64Array::from(rows.iter().map(|p| p.household_size).collect::<Vec<_>>())) as Arc<dyn Array>,
        strings(&|p| Some(p.status.clone())),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Tokens of the fixture's principals.
pub struct Tokens {
    /// 民政 analyst at the province (630000000000); holds an unmasked grant on [`INSURED`].
    pub province: String,
    /// 民政 analyst at county 630102.
    pub county: String,
    /// 民政 analyst at township 630102001.
    pub township: String,
    /// 公安 analyst at county 630102 (owner of [`ARCHIVE`]).
    pub gongan: String,
    /// Admin.
    pub admin: String,
    /// Standards admin (province).
    pub standards: String,
    /// The county analyst's second token, revoked.
    pub revoked: String,
}

/// A running server over a temporary catalog.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: MetadataStore,
    pub tables: TableStore,
    pub factory: Arc<SessionFactory>,
    pub addr: SocketAddr,
    pub tokens: Tokens,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<civlink_api::Result<()>>>,
}

impl Fixture {
    pub async fn start() -> Fixture {
        Fixture::with_limits(Limits::default()).await
    }

    /// A server on a free loopback port with these query limits.
    pub async fn with_limits(limits: Limits) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = CatalogConfig::local(dir.path()).unwrap();
        let store = MetadataStore::connect(&config.metadata_url).await.unwrap();
        let tables = TableStore::new(&config).unwrap();

        let standard = Standard::from_json_str(STANDARD_DOC).unwrap();
        store.register_standard(&standard.id, &standard.version, STANDARD_DOC).await.unwrap();
        let spec = |id: &str, title: &str, sharing| DatasetSpec {
            id: id.parse().unwrap(),
            title: title.into(),
            owner: "测试处".into(),
            description: "test people".into(),
            standard_id: standard.id.clone(),
            standard_version: standard.version.clone(),
            classification: Sensitivity::Sensitive,
            sharing,
            update_cycle: UpdateCycle::Daily,
            division_column: Some("division_code".into()),
            primary_key: vec!["id_number".into()],
        };
        let batch = batch();
        commit_dataset(&store, &tables, &spec(PEOPLE, "户籍人口信息", SharingType::Unconditional), &batch).await;
        commit_dataset(&store, &tables, &spec(INSURED, "参保人员", SharingType::Conditional), &batch).await;
        let archive = spec(ARCHIVE, "户籍档案", SharingType::NotShared);
        store
            .upsert_dataset(&archive, &tables.table_uri(&archive.id), &tables.quarantine_uri(&archive.id))
            .await
            .unwrap();

        let principal = async |name: &str, department, role, division: &str| {
            store
                .create_principal(&Principal {
                    name: name.to_owned(),
                    department,
                    role,
                    division: DivisionCode::parse(division).unwrap(),
                })
                .await
                .unwrap();
            store.create_token(name, None).await.unwrap()
        };
        let minzheng = Some(Department::Minzheng);
        let province = principal("province", minzheng, Role::Analyst, "630000000000").await.secret;
        let county_token = principal("county", minzheng, Role::Analyst, "630102000000").await;
        let township = principal("township", minzheng, Role::Analyst, "630102001000").await.secret;
        let gongan = principal("gongan_county", Some(Department::Gongan), Role::Analyst, "630102000000").await.secret;
        let admin = principal("admin", None, Role::Admin, "630000000000").await.secret;
        let standards = principal("std_admin", minzheng, Role::StandardsAdmin, "630000000000").await.secret;
        let revoked = store.create_token("county", None).await.unwrap();
        store.revoke_token(&revoked.id).await.unwrap();
        store
            .grant(&Grant {
                id: "province-insured".into(),
                subject: GrantSubject::Principal("province".into()),
                dataset: INSURED.parse().unwrap(),
                columns: Some(vec!["id_number".into(), "name".into(), "division_code".into(), "sex".into()]),
                unmasked: true,
                purpose: Some("参保核查".into()),
                purpose_required: false,
                expires_at: None,
            })
            .await
            .unwrap();
        let tokens = Tokens {
            province,
            county: county_token.secret,
            township,
            gongan,
            admin,
            standards,
            revoked: revoked.secret,
        };

        let factory = SessionFactory::builder(store.clone(), tables.clone()).limits(limits).build().await.unwrap();
        let config = ApiConfig { addr: "127.0.0.1:0".parse().unwrap(), check_sources: None };
        let server = civlink_api::bind(config, Arc::clone(&factory)).await.unwrap();
        let addr = server.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.serve(async {
            let _ = rx.await;
        }));
        Fixture { _dir: dir, store, tables, factory, addr, tokens, shutdown: Some(tx), server: Some(handle) }
    }

    /// `GET path` with a bearer token.
    pub async fn get(&self, token: &str, path: &str) -> Reply {
        let auth = format!("Bearer {token}");
        request(self.addr, "GET", path, &[("Authorization", &auth)], None).await
    }

    /// `POST path` with a bearer token and a JSON body.
    pub async fn post(&self, token: &str, path: &str, body: &str) -> Reply {
        let auth = format!("Bearer {token}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        request(self.addr, "POST", path, &headers, Some(body.as_bytes())).await
    }

    /// Every row of a dataset as `token` sees it, paging with `page` rows by cursor.
    pub async fn all_rows(&self, token: &str, dataset: &str, page: usize, extra: &str) -> Vec<Value> {
        let path = dataset.replace('.', "/");
        let mut cursor: Option<String> = None;
        let mut rows = Vec::new();
        loop {
            let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let reply = self.get(token, &format!("/api/v1/datasets/{path}/rows?limit={page}{after}{extra}")).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            let body = reply.json();
            let got = body["rows"].as_array().unwrap().clone();
            assert!(got.len() <= page);
            rows.extend(got);
            match body["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(body["returned"].as_u64(), Some(page as u64), "only full pages have a next one");
                    cursor = Some(next.to_owned());
                }
                None => break,
            }
        }
        rows
    }

    /// Append `batch` to dataset `id` as a new committed version.
    pub async fn append(&self, id: &str, batch: &RecordBatch) {
        let record = self.store.dataset(&id.parse().unwrap()).await.unwrap().unwrap();
        commit_dataset(&self.store, &self.tables, &record.spec, batch).await;
    }

    /// `GET path` with a bearer token and an `Accept` header.
    pub async fn get_as(&self, token: &str, path: &str, accept: &str) -> Reply {
        let auth = format!("Bearer {token}");
        request(self.addr, "GET", path, &[("Authorization", &auth), ("Accept", accept)], None).await
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

/// Write `batch` as the committed version of the dataset `spec`, like a run does.
pub async fn commit_dataset(store: &MetadataStore, tables: &TableStore, spec: &DatasetSpec, batch: &RecordBatch) {
    commit_dataset_with(store, tables, spec, batch, None).await;
}

/// [`commit_dataset`], quarantining `quarantine` (rows of the quarantine
/// schema) in the same run; the run's id.
pub async fn commit_dataset_with(
    store: &MetadataStore,
    tables: &TableStore,
    spec: &DatasetSpec,
    batch: &RecordBatch,
    quarantine: Option<&RecordBatch>,
) -> String {
    let dataset =
        store.upsert_dataset(spec, &tables.table_uri(&spec.id), &tables.quarantine_uri(&spec.id)).await.unwrap();
    let mut writer = tables
        .begin_write(&dataset.table_uri, batch.schema(), WriteMode::Append, &spec.primary_key, dataset.current_version)
        .await
        .unwrap();
    writer.write(batch).await.unwrap();
    let run_id = uuid::Uuid::new_v4().to_string();
    let version = writer.commit(&run_id).await.unwrap();
    let quarantine_version = match quarantine {
        Some(rows) => {
            let mut q = tables
                .begin_write(&dataset.quarantine_uri, rows.schema(), WriteMode::Append, &[], dataset.quarantine_version)
                .await
                .unwrap();
            q.write(rows).await.unwrap();
            Some(q.commit(&run_id).await.unwrap())
        }
        None => dataset.quarantine_version,
    };
    let n = batch.num_rows() as u64;
    let q = quarantine.map_or(0, |b| b.num_rows() as u64);
    let counts = RunCounts { read: n + q, written: n, quarantined: q, duplicate: 0 };
    let mut run = RunRecord {
        run_id: run_id.clone(),
        dataset: spec.id.clone(),
        job: "test".into(),
        mode: WriteMode::Append,
        status: RunStatus::Running,
        started_at: Utc::now(),
        finished_at: None,
        counts: RunCounts::default(),
        data_version: None,
        quarantine_version: None,
        fingerprint: "test".into(),
        error: None,
    };
    store.start_run(&run).await.unwrap();
    run.status = RunStatus::Committed;
    run.finished_at = Some(Utc::now());
    run.counts = counts;
    run.data_version = Some(version);
    run.quarantine_version = quarantine_version;
    let quality = QualityReport {
        run_id: run_id.clone(),
        counts,
        completeness: vec![],
        rules: vec![],
        primary_key_uniqueness: 1.0,
        normalised: Vec::new(),
        unused_source_columns: Vec::new(),
        source_drift: Vec::new(),
        source_deletions: None,
        sheets: Vec::new(),
        source_modified: None,
        ingested_at: Utc::now(),
    };
    store.commit_run(&run, &quality, &[]).await.unwrap();
    run_id
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Assert an RFC 9457 problem document with this status; returns it.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{:?}", self.headers);
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(body["type"].as_str().is_some_and(|t| t.starts_with("urn:civlink:problem:")), "{body}");
        assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
        body
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    let mut bytes = head.into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked =
        headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = body.as_slice();
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16).unwrap();
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Reply { status, headers, body }
}

/// Percent-encode a query value (everything but unreserved characters).
pub fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
