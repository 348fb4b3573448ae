//! The adversarial scoping corpus: two datasets with real Qinghai division
//! codes at all five levels, principals at every level, the queries, and a
//! *pre-filtered, pre-masked* reference (plain DataFusion `MemTable`s holding
//! only the rows and columns a principal may read, masked with
//! `civlink_standards::mask`), computed without the code under test.
//!
//! * `gongan.population`: unconditional, masked `id_number`/`name`/`address`;
//! * `minzheng.benefits`: conditional (only 民政 reads it), masked
//!   `id_number`/`bank_account`, joinable with population on the `id_number`
//!   pseudonyms;
//! * `gongan.population_archive`: not shared (only 公安 reads it).
//!
//! The query layer's tests run every corpus query in scoped sessions; the
//! transports' tests run a part of it over the wire.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use civlink_catalog::config::CatalogConfig;
use civlink_catalog::model::{DatasetRecord, DatasetSpec, Department, SharingType, UpdateCycle};
use civlink_catalog::policy::{Access, Principal, Role};
use civlink_catalog::store::MetadataStore;
use civlink_catalog::table::TableStore;
use civlink_standards::division::{DivisionCode, DivisionTable, Level};
use civlink_standards::mask::MaskKey;
use civlink_standards::standard::{Sensitivity, Standard};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

/// The one catalog civlink sessions have.
pub const CATALOG: &str = "civlink";

/// A valid citizen ID number from its first 17 digits.
pub fn id(first17: &str) -> String {
    let check = civlink_standards::idcard::check_character(first17).expect("17 digits");
    format!("{first17}{check}")
}

pub const POPULATION: &str = "gongan.population";
pub const ARCHIVE: &str = "gongan.population_archive";
pub const BENEFITS: &str = "minzheng.benefits";

/// The benefits standard (民政 救助发放), registered next to the shipped one.
pub const BENEFITS_STANDARD: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "x-civlink-id": "minzheng.benefits",
  "x-civlink-version": "1.0.0",
  "title": "救助发放",
  "description": "Assistance payments, one row per payment.",
  "type": "object",
  "x-civlink-primary-key": ["benefit_id"],
  "x-civlink-division-column": "division_code",
  "required": ["benefit_id", "id_number", "division_code"],
  "properties": {
    "benefit_id": {"type": "string", "title": "发放编号", "x-civlink-sensitivity": "internal"},
    "id_number": {"type": "string", "title": "公民身份号码", "format": "gb11643",
      "x-civlink-sensitivity": "sensitive", "x-civlink-pii": true,
      "x-civlink-mask": {"strategy": "pseudonym"}},
    "bank_account": {"type": "string", "title": "银行账号", "x-civlink-sensitivity": "sensitive",
      "x-civlink-pii": true, "x-civlink-mask": {"strategy": "full"}},
    "category": {"type": "string", "title": "救助类别", "x-civlink-sensitivity": "internal"},
    "amount": {"type": "integer", "title": "金额", "x-civlink-sensitivity": "internal"},
    "division_code": {"type": "string", "format": "division-code", "title": "发放地行政区划代码",
      "x-civlink-sensitivity": "internal"}
  }
}"#;

/// The rows written, per dataset (all in the dataset's standard columns).
pub struct Data {
    /// `gongan.population` (and its not-shared archive copy).
    pub population: RecordBatch,
    /// `minzheng.benefits`.
    pub benefits: RecordBatch,
    /// The village codes used (every scope's in-scope rows come from these).
    pub villages: Vec<DivisionCode>,
}

/// Villages spread over three cities, two counties each, two townships each, two villages each.
pub fn villages() -> Vec<DivisionCode> {
    let table = DivisionTable::builtin();
    let mut out = Vec::new();
    let cities = table.at_level(Level::City);
    // The builtin table also lists the other provinces' cities and counties (without
    // townships); the corpus lives in Qinghai.
    for city in cities.iter().filter(|c| c.code.as_str().starts_with("63")).take(3) {
        for county in table.children(&city.code).iter().filter(|c| !table.children(&c.code).is_empty()).take(2) {
            for township in table.children(&county.code).iter().filter(|t| !table.children(&t.code).is_empty()).take(2)
            {
                for village in table.children(&township.code).iter().take(2) {
                    out.push(village.code);
                }
            }
        }
    }
    assert!(out.len() >= 12, "the builtin table should have villages under several cities: {out:?}");
    out
}

pub fn strings_col(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

pub fn data() -> Data {
    const SURNAMES: [&str; 8] = ["张", "李", "王", "赵", "钱", "孙", "周", "吴"];
    const GIVEN: [&str; 6] = ["三", "四", "五", "梅", "卓玛", "才让"];
    let villages = villages();
    // Division codes of people: villages, plus a township, a county, a city, the
    // province itself, another province, NULL and garbage: every level of code.
    let mut codes: Vec<Option<String>> = Vec::new();
    for village in &villages {
        for _ in 0..3 {
            codes.push(Some(village.as_str().to_owned()));
        }
    }
    let v0 = villages[0];
    for level in [Level::Township, Level::County, Level::City, Level::Province] {
        codes.push(v0.parent(level).map(|c| c.as_str().to_owned()));
    }
    codes.push(Some("110101001001".into()));
    codes.push(None);
    codes.push(Some("not-a-code".into()));
    codes.push(Some(String::new()));

    let mut ids = Vec::new();
    let mut population: Vec<[Option<String>; 11]> = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let county = code.as_deref().filter(|c| c.len() >= 6 && c.is_ascii()).map_or("630102", |c| &c[..6]);
        let county = if county.bytes().all(|b| b.is_ascii_digit()) { county } else { "630102" };
        // A unique three-digit sequence: the ID, hence its pseudonym, is unique, so
        // ORDER BY id_number is a total order.
        let birth = format!("{}{:02}{:02}", 1950 + i % 60, 1 + i % 12, 1 + i % 28);
        let person = id(&format!("{county}{birth}{:03}", 100 + i));
        ids.push(person.clone());
        let name = format!("{}{}", SURNAMES[i % SURNAMES.len()], GIVEN[i % GIVEN.len()]);
        let sex = if person.as_bytes()[16] % 2 == 1 { "1" } else { "2" };
        population.push([
            Some(person.clone()),
            Some(name),
            Some(sex.into()),
            Some(format!("{:02}", 1 + i % 5)),
            Some(format!("{}-{}-{}", &person[6..10], &person[10..12], &person[12..14])),
            Some(format!("{:012}", 630_000_000 + i / 2)),
            Some(if i % 2 == 0 { "02" } else { "10" }.into()),
            code.clone(),
            Some(format!("青海省某地{i}号")),
            Some(["normal", "deceased", "moved_out"][i % 3].into()),
            if i % 3 == 0 { None } else { Some("2020-01-01".into()) },
        ]);
    }
    let population_names = [
        "id_number",
        "name",
        "sex",
        "ethnic_group",
        "birth_date",
        "household_number",
        "relationship",
        "division_code",
        "address",
        "status",
        "status_date",
    ];
    let schema = Arc::new(Schema::new(
        population_names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>(),
    ));
    let columns = (0..population_names.len())
        .map(|c| strings_col(population.iter().map(|row| row[c].clone()).collect()))
        .collect();
    let population = RecordBatch::try_new(schema, columns).unwrap();

    // Benefits: most people get one, some two, some paid in another division than
    // they live in (joins cross scope boundaries), one for an unknown person.
    let mut b_id = Vec::new();
    let mut b_person = Vec::new();
    let mut b_account = Vec::new();
    let mut b_category = Vec::new();
    let mut b_amount = Vec::new();
    let mut b_code = Vec::new();
    let mut push = |person: &str, code: Option<String>, k: usize| {
        b_id.push(Some(format!("B{k:05}")));
        b_person.push(Some(person.to_owned()));
        b_account.push(Some(format!("62220{:014}", k * 7919)));
        b_category.push(Some(["dibao", "tekun", "linshi"][k % 3].to_owned()));
        b_amount.push(Some(300 + ((k * 37) % 900) as i64));
        b_code.push(code);
    };
    let mut k = 0;
    for (i, person) in ids.iter().enumerate() {
        if i % 3 == 0 {
            continue;
        }
        let code =
            if i % 7 == 0 { Some(villages[(i / 7) % villages.len()].as_str().to_owned()) } else { codes[i].clone() };
        push(person, code, k);
        k += 1;
        if i % 5 == 0 {
            push(person, codes[i].clone(), k);
            k += 1;
        }
    }
    push(&id("63010219990101999"), Some(villages[1].as_str().to_owned()), k);
    let schema = Arc::new(Schema::new(vec![
        Field::new("benefit_id", DataType::Utf8, true),
        Field::new("id_number", DataType::Utf8, true),
        Field::new("bank_account", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("amount", DataType::Int64, true),
        Field::new("division_code", DataType::Utf8, true),
    ]));
    let benefits = RecordBatch::try_new(
        schema,
        vec![
            strings_col(b_id),
            strings_col(b_person),
            strings_col(b_account),
            strings_col(b_category),
            Arc::new(Int64Array::from(b_amount)),
            strings_col(b_code),
        ],
    )
    .unwrap();
    Data { population, benefits, villages }
}

/// A catalog holding the corpus data.
pub struct Catalog {
    /// The directory it lives in.
    pub dir: tempfile::TempDir,
    /// Its metadata store.
    pub store: MetadataStore,
    /// Its tables.
    pub tables: TableStore,
    /// What was written.
    pub data: Data,
}

/// A catalog holding the corpus data.
pub async fn catalog() -> Catalog {
    catalog_with_outsiders(0).await
}

/// `batch` repeated to `n` rows, each with a new key (`key_column`, made of
/// `key_prefix` and a serial) and a division code under 海西州 (632800…),
/// where no corpus principal below the province is scoped.
fn outsiders(batch: &RecordBatch, n: usize, key_column: &str, key_prefix: &str) -> RecordBatch {
    let indices = arrow::array::UInt32Array::from_iter_values((0..n).map(|i| (i % batch.num_rows()) as u32));
    let mut columns: Vec<ArrayRef> =
        batch.columns().iter().map(|c| arrow::compute::take(c, &indices, None).unwrap()).collect();
    let schema = batch.schema();
    let key = schema.index_of(key_column).unwrap();
    columns[key] = strings_col((0..n).map(|i| Some(format!("{key_prefix}{i:08}"))).collect());
    let division = schema.index_of("division_code").unwrap();
    columns[division] = strings_col(
        (0..n).map(|i| Some(format!("6328{:02}{:03}{:03}", 21 + i % 3, 100 + i % 7, 200 + i % 5))).collect(),
    );
    RecordBatch::try_new(schema, columns).unwrap()
}

/// [`catalog`], plus `n` more rows in each dataset outside every corpus
/// scope below the province, committed as a second version: the in-scope
/// rows are the same, what lies outside differs (and so do the tables'
/// sizes and files).
pub async fn catalog_with_outsiders(n: usize) -> Catalog {
    build(n, None).await
}

/// [`catalog`] with its metadata in the store at `metadata_url` (a
/// PostgreSQL database, say) and its tables in a temporary directory.
pub async fn catalog_at(metadata_url: &str) -> Catalog {
    build(0, Some(metadata_url)).await
}

async fn build(n: usize, metadata_url: Option<&str>) -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CatalogConfig::local(dir.path()).unwrap();
    if let Some(url) = metadata_url {
        config.metadata_url = url.to_owned();
    }
    let store = MetadataStore::connect(&config.metadata_url).await.unwrap();
    let tables = TableStore::new(&config).unwrap();
    let (_, people_doc) = civlink_standards::shipped::SHIPPED.iter().find(|(id, _)| *id == POPULATION).unwrap();
    let people_standard = Standard::from_json_str(people_doc).unwrap();
    store.register_standard(&people_standard.id, &people_standard.version, people_doc).await.unwrap();
    let benefits_standard = Standard::from_json_str(BENEFITS_STANDARD).unwrap();
    store.register_standard(&benefits_standard.id, &benefits_standard.version, BENEFITS_STANDARD).await.unwrap();

    let spec = |id: &str, standard: &Standard, sharing, pk: &str| DatasetSpec {
        id: id.parse().unwrap(),
        title: id.into(),
        owner: "test".into(),
        description: "adversarial corpus".into(),
        standard_id: standard.id.clone(),
        standard_version: standard.version.clone(),
        classification: Sensitivity::Sensitive,
        sharing,
        update_cycle: UpdateCycle::Daily,
        division_column: Some("division_code".into()),
        primary_key: vec![pk.into()],
    };
    let data = data();
    crate::catalog::commit_dataset(
        &store,
        &tables,
        &spec(POPULATION, &people_standard, SharingType::Unconditional, "id_number"),
        &data.population,
    )
    .await;
    crate::catalog::commit_dataset(
        &store,
        &tables,
        &spec(ARCHIVE, &people_standard, SharingType::NotShared, "id_number"),
        &data.population,
    )
    .await;
    crate::catalog::commit_dataset(
        &store,
        &tables,
        &spec(BENEFITS, &benefits_standard, SharingType::Conditional, "benefit_id"),
        &data.benefits,
    )
    .await;
    if n > 0 {
        for (id, standard, sharing, pk, batch, key, prefix) in [
            (
                POPULATION,
                &people_standard,
                SharingType::Unconditional,
                "id_number",
                &data.population,
                "id_number",
                "6328211990",
            ),
            (
                ARCHIVE,
                &people_standard,
                SharingType::NotShared,
                "id_number",
                &data.population,
                "id_number",
                "6328211990",
            ),
            (BENEFITS, &benefits_standard, SharingType::Conditional, "benefit_id", &data.benefits, "benefit_id", "X"),
        ] {
            let extra = outsiders(batch, n, key, prefix);
            crate::catalog::commit_dataset(&store, &tables, &spec(id, standard, sharing, pk), &extra).await;
        }
    }
    Catalog { dir, store, tables, data }
}

/// The rows and columns `access` admits of `batch`, masked: what the principal
/// should see, computed without the code under test.
pub fn prefiltered(batch: &RecordBatch, access: &Access, key: &MaskKey) -> RecordBatch {
    let division = access.division_column.as_deref().and_then(|c| batch.column_by_name(c));
    let keep: Vec<usize> = (0..batch.num_rows())
        .filter(|&row| {
            let code = division.map(|col| {
                let col = arrow::compute::cast(col, &DataType::Utf8).unwrap();
                let col = col.as_string::<i32>();
                col.is_valid(row).then(|| col.value(row).to_owned())
            });
            access.admits_division(code.flatten().as_deref())
        })
        .collect();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for column in &access.columns {
        let source = batch.column_by_name(&column.name).unwrap();
        let field = batch.schema().field_with_name(&column.name).unwrap().clone();
        if column.mask.is_none() {
            let indices = arrow::array::UInt32Array::from(keep.iter().map(|&r| r as u32).collect::<Vec<_>>());
            columns.push(arrow::compute::take(source, &indices, None).unwrap());
            fields.push(field);
        } else {
            let source = arrow::compute::cast(source, &DataType::Utf8).unwrap();
            let source = source.as_string::<i32>();
            let masked: Vec<Option<String>> = keep
                .iter()
                .map(|&r| if source.is_valid(r) { column.mask.apply_keyed(source.value(r), key) } else { None })
                .collect();
            columns.push(strings_col(masked));
            fields.push(Field::new(&column.name, DataType::Utf8, true));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// A plain DataFusion session with the same catalog, schemas, table names
/// and functions as `session`, over pre-filtered, pre-masked copies.
pub fn reference(
    principal: &Principal,
    datasets: &[(DatasetRecord, Access)],
    data: &Data,
    key: &MaskKey,
    functions: impl Fn(&SessionContext),
) -> SessionContext {
    let default_schema = principal.department.unwrap_or(Department::Minzheng).code();
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema(CATALOG, default_schema);
    let ctx = SessionContext::new_with_config(config);
    let catalog = MemoryCatalogProvider::new();
    for (record, access) in datasets {
        let id = &record.spec.id;
        let batch = match id.to_string().as_str() {
            POPULATION | ARCHIVE => &data.population,
            BENEFITS => &data.benefits,
            other => panic!("unexpected dataset {other}"),
        };
        let copy = prefiltered(batch, access, key);
        let table = MemTable::try_new(copy.schema(), vec![vec![copy]]).unwrap();
        let schema = match catalog.schema(id.department.code()) {
            Some(schema) => schema,
            None => {
                let schema: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
                catalog.register_schema(id.department.code(), Arc::clone(&schema)).unwrap();
                schema
            }
        };
        schema.register_table(id.name.clone(), Arc::new(table)).unwrap();
    }
    ctx.register_catalog(CATALOG, Arc::new(catalog));
    functions(&ctx);
    ctx
}

/// A result as column names and rows of display strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    /// Column names.
    pub names: Vec<String>,
    /// Rows of display strings (`None` = NULL).
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The rows of `batches`.
    pub fn of(batches: &[RecordBatch]) -> Rows {
        let names =
            batches.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
        let mut rows = Vec::new();
        for batch in batches {
            let columns: Vec<ArrayRef> =
                batch.columns().iter().map(|c| arrow::compute::cast(c, &DataType::Utf8).unwrap()).collect();
            for r in 0..batch.num_rows() {
                rows.push(
                    columns
                        .iter()
                        .map(|c| {
                            let c = c.as_string::<i32>();
                            c.is_valid(r).then(|| c.value(r).to_owned())
                        })
                        .collect(),
                );
            }
        }
        Rows { names, rows }
    }

    /// Sorted, for comparing as sets.
    pub fn sorted(mut self) -> Rows {
        self.rows.sort();
        self
    }
}

pub async fn run_reference(ctx: &SessionContext, sql: &str) -> Result<Rows, String> {
    collect(ctx.sql(sql).await.map_err(|e| e.to_string())?).await
}

/// The rows of a frame, named by its schema (an empty result has no batches).
pub async fn collect(frame: datafusion::dataframe::DataFrame) -> Result<Rows, String> {
    let names = frame.schema().fields().iter().map(|f| f.name().clone()).collect();
    let rows = Rows::of(&frame.collect().await.map_err(|e| e.to_string())?);
    Ok(Rows { names, ..rows })
}

/// How a corpus query's results are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// As sorted row sets.
    Set,
    /// In order (the query's ORDER BY is a total order).
    Ordered,
    /// Only that both run and give as many rows (plans differ by design: EXPLAIN).
    RowCount,
    /// Must fail in the scoped session whatever the reference does (writes,
    /// settings, file access, unbounded allocations: the reference is a
    /// plain session that allows them, so it is not run for these).
    Refused,
}

use Check::{Ordered, Refused, RowCount, Set};

/// The corpus. `{P}` = population, `{B}` = benefits, `{A}` = the not-shared archive.
pub const CORPUS: &[(Check, &str)] = &[
    // Plain selects.
    (Set, "SELECT * FROM {P}"),
    (Set, "SELECT id_number, name, division_code, address FROM {P}"),
    (Set, "SELECT * FROM {B}"),
    (Set, "SELECT * FROM civlink.gongan.population"),
    (Set, "SELECT * FROM {A}"),
    // Aggregates.
    (Set, "SELECT count(*) FROM {P}"),
    (Set, "SELECT count(*), count(division_code), count(DISTINCT division_code) FROM {P}"),
    (Set, "SELECT sum(amount), min(amount), max(amount), count(*) FROM {B}"),
    (Set, "SELECT division_code, count(*) FROM {P} GROUP BY division_code"),
    (Set, "SELECT division_parent(division_code, 'county') AS county, count(*) AS n FROM {P} GROUP BY 1"),
    (
        Set,
        "SELECT division_parent(division_code, 'city'), division_level(division_code), count(*) FROM {P} GROUP BY 1, 2",
    ),
    (Set, "SELECT division_name(division_parent(division_code, 'township')), sum(amount) FROM {B} GROUP BY 1"),
    (Set, "SELECT category, sum(amount) FROM {B} GROUP BY category HAVING sum(amount) > 0"),
    (Set, "SELECT status, sex, count(*) FROM {P} GROUP BY ROLLUP(status, sex)"),
    // Self-joins and joins between the tables.
    (
        Set,
        "SELECT a.id_number, b.id_number FROM {P} a JOIN {P} b ON a.household_number = b.household_number AND a.id_number < b.id_number",
    ),
    (Set, "SELECT count(*) FROM {P} a CROSS JOIN {P} b"),
    (Set, "SELECT p.name, b.amount, b.division_code FROM {P} p JOIN {B} b ON p.id_number = b.id_number"),
    (Set, "SELECT p.id_number, b.benefit_id FROM {P} p LEFT JOIN {B} b ON p.id_number = b.id_number"),
    (Set, "SELECT p.id_number, b.benefit_id FROM {P} p FULL OUTER JOIN {B} b ON p.id_number = b.id_number"),
    (
        Set,
        "SELECT b.benefit_id FROM {B} b WHERE b.division_code <> (SELECT p.division_code FROM {P} p WHERE p.id_number = b.id_number)",
    ),
    // Subqueries.
    (Set, "SELECT name FROM {P} WHERE id_number IN (SELECT id_number FROM {B} WHERE amount > 600)"),
    (Set, "SELECT name FROM {P} p WHERE EXISTS (SELECT 1 FROM {B} b WHERE b.id_number = p.id_number)"),
    (Set, "SELECT name FROM {P} p WHERE NOT EXISTS (SELECT 1 FROM {B} b WHERE b.id_number = p.id_number)"),
    (Set, "SELECT (SELECT count(*) FROM {P}) AS people, (SELECT sum(amount) FROM {B}) AS paid"),
    (Set, "SELECT * FROM (SELECT division_code, count(*) AS n FROM {P} GROUP BY division_code) t WHERE n > 1"),
    // CTEs.
    (
        Set,
        "WITH c AS (SELECT division_parent(division_code, 'county') AS county, amount FROM {B}) SELECT county, sum(amount) FROM c GROUP BY county",
    ),
    (
        Set,
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3) SELECT x, (SELECT count(*) FROM {P}) FROM n",
    ),
    // UNION / UNION ALL / INTERSECT / EXCEPT.
    (Set, "SELECT division_code FROM {P} UNION SELECT division_code FROM {B}"),
    (Set, "SELECT id_number FROM {P} UNION ALL SELECT id_number FROM {B}"),
    (Set, "SELECT id_number FROM {B} EXCEPT SELECT id_number FROM {P}"),
    (Set, "SELECT id_number FROM {B} INTERSECT SELECT id_number FROM {P}"),
    // Window functions.
    (Set, "SELECT id_number, row_number() OVER (PARTITION BY division_code ORDER BY id_number) FROM {P}"),
    (Set, "SELECT benefit_id, sum(amount) OVER (ORDER BY benefit_id) AS running FROM {B}"),
    (
        Set,
        "SELECT id_number, count(*) OVER () AS total, rank() OVER (PARTITION BY status ORDER BY birth_date, id_number) FROM {P}",
    ),
    (
        Set,
        "SELECT benefit_id, lag(id_number) OVER (ORDER BY benefit_id), lead(amount) OVER (ORDER BY benefit_id) FROM {B}",
    ),
    // ORDER BY / LIMIT / OFFSET, with total orders.
    (Ordered, "SELECT id_number, name FROM {P} ORDER BY id_number LIMIT 5"),
    (Ordered, "SELECT benefit_id, amount FROM {B} ORDER BY amount DESC, benefit_id LIMIT 3 OFFSET 2"),
    (Ordered, "SELECT division_code, count(*) FROM {P} GROUP BY division_code ORDER BY 2 DESC, 1 NULLS LAST LIMIT 4"),
    // DISTINCT and CASE.
    (Set, "SELECT DISTINCT division_parent(division_code, 'township') FROM {P}"),
    (Set, "SELECT DISTINCT category FROM {B}"),
    (Set, "SELECT CASE WHEN amount > 600 THEN 'high' ELSE 'low' END AS band, count(*) FROM {B} GROUP BY 1"),
    (Set, "SELECT CASE WHEN division_code LIKE '6301%' THEN 'xining' ELSE 'other' END, count(*) FROM {P} GROUP BY 1"),
    // Filters on masked columns: no lookup oracle.
    (Set, "SELECT count(*) FROM {P} WHERE name = '张三'"),
    (Set, "SELECT count(*) FROM {P} WHERE name LIKE '张%'"),
    (Set, "SELECT count(*) FROM {P} WHERE id_number LIKE '630102195%'"),
    (Set, "SELECT count(*) FROM {P} WHERE substr(id_number, 7, 4) = '1950'"),
    (Set, "SELECT count(*) FROM {B} WHERE bank_account LIKE '62220%'"),
    (Set, "SELECT count(*) FROM {P} WHERE address LIKE '%1号'"),
    (Set, "SELECT id_birth_date(id_number), id_sex(id_number) FROM {P}"),
    // information_schema and metadata.
    (Set, "SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables"),
    (Set, "SELECT table_schema, table_name, column_name, ordinal_position FROM information_schema.columns"),
    (Set, "SELECT schema_name FROM information_schema.schemata"),
    (Set, "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%archive%'"),
    (RowCount, "SHOW TABLES"),
    // EXPLAIN.
    (RowCount, "EXPLAIN SELECT * FROM {P} WHERE name = '张三'"),
    (RowCount, "EXPLAIN FORMAT tree SELECT id_number, division_code FROM {P}"),
    (RowCount, "EXPLAIN FORMAT graphviz SELECT id_number, division_code FROM {P}"),
    (Refused, "EXPLAIN VERBOSE SELECT id_number, name, division_code FROM {P}"),
    (RowCount, "EXPLAIN SELECT p.name FROM {P} p JOIN {B} b ON p.id_number = b.id_number"),
    // Prepared-statement-like queries with literals.
    (Set, "SELECT count(*) FROM {P} WHERE division_code = '{V0}'"),
    (Set, "SELECT count(*) FROM {P} WHERE division_code LIKE '{V0}' || '%' OR division_code IN ('{V1}', '{V2}')"),
    (Set, "SELECT * FROM {B} WHERE division_code BETWEEN '630000000000' AND '639999999999' AND amount >= 500"),
    // Escape attempts.
    (Set, "SELECT count(*) FROM {P} WHERE division_code LIKE '%'"),
    (Set, "SELECT count(*) FROM {P} WHERE division_code LIKE '%' OR 1=1"),
    (Set, "SELECT count(*) FROM {P} WHERE 1=1 OR division_code IS NULL"),
    (Set, "SELECT count(*) FROM {P} WHERE division_code IS NULL OR division_code = '' OR division_code = 'not-a-code'"),
    (Set, "SELECT count(*) FROM {P} /* WHERE division_code LIKE '63%' */ -- OR 1=1"),
    (Set, "SELECT count(*) FROM \"gongan\".\"population\""),
    (Set, "SELECT count(*) FROM civlink.gongan.\"population\" WHERE CAST(division_code AS BIGINT) > 0"),
    (
        Set,
        "SELECT CAST(division_code AS BIGINT) + 0 FROM {P} WHERE division_code <> 'not-a-code' AND division_code <> ''",
    ),
    (Set, "SELECT count(*) FROM datafusion.public.population"),
    (Set, "SELECT * FROM gongan.population_history"),
    (
        Set,
        "SELECT * FROM (VALUES ('110101001001', 'x'), ('{V0}', 'y')) v(code, tag) LEFT JOIN {P} p ON p.division_code = v.code",
    ),
    (Set, "SELECT * FROM (VALUES (1)) v(x) UNION ALL SELECT count(*) FROM {P}"),
    (Set, "SELECT * FROM generate_series(1, 3)"),
    (Set, "SELECT count(*) FROM {P}, generate_series(1, 2)"),
    (Set, "SELECT civlink_mask(name, '{\"strategy\": \"none\"}') FROM {P}"),
    (Set, "SELECT civlink_mask(id_number, 'not json') FROM {P}"),
    (Refused, "SELECT * FROM '{TABLE_DIR}'"),
    (Refused, "CREATE EXTERNAL TABLE leak STORED AS DELTATABLE LOCATION '{TABLE_DIR}'"),
    (Refused, "CREATE VIEW v AS SELECT * FROM {P}"),
    (Refused, "INSERT INTO {P} (id_number) VALUES ('x')"),
    (Refused, "SET datafusion.execution.batch_size = 1"),
    (Refused, "COPY (SELECT * FROM {P}) TO '/tmp/civlink-adversarial-leak.csv'"),
    (Refused, "EXPLAIN ANALYZE SELECT count(*) FROM {P}"),
    // Resource bounds: refused before they allocate (the reference is not run for these).
    (Refused, "SELECT length(repeat('x', 2000000000))"),
    (Refused, "SELECT cardinality(range(0, 3000000000))"),
    (Refused, "SELECT length(lpad('x', 2000000000))"),
    (Refused, "SELECT cardinality(array_repeat(1, 2000000000))"),
];

/// Expand the corpus placeholders.
pub fn expand(sql: &str, data: &Data, table_dir: &str) -> String {
    sql.replace("{P}", POPULATION)
        .replace("{B}", BENEFITS)
        .replace("{A}", ARCHIVE)
        .replace("{V0}", data.villages[0].as_str())
        .replace("{V1}", data.villages[5].as_str())
        .replace("{V2}", data.villages[9].as_str())
        .replace("{TABLE_DIR}", table_dir)
}

/// Random principals: at every level, codes drawn from the divisions holding
/// data (so scopes have rows in and out) and from the whole table.
pub fn principals(seed: u64, data: &Data) -> Vec<Principal> {
    let table = DivisionTable::builtin();
    let mut rng = civlink_standards::rng::Rng::new(seed);
    let mut below = |n: usize| usize::try_from(rng.below(n as u64)).unwrap_or(0);
    let departments = [Some(Department::Minzheng), Some(Department::Gongan), Some(Department::Renshe), None];
    let roles = [Role::Analyst, Role::DepartmentService, Role::StandardsAdmin];
    let mut out = Vec::new();
    for level in [Level::Province, Level::City, Level::County, Level::Township, Level::Village] {
        for k in 0..2 {
            let division = if k == 0 || level == Level::Province {
                let village = data.villages[below(data.villages.len())];
                village.parent(level).unwrap_or(village)
            } else {
                let all = table.at_level(level);
                all[below(all.len())].code
            };
            assert_eq!(division.level(), level);
            out.push(Principal {
                name: format!("p{}-{level:?}-{}", out.len(), division.as_str()),
                department: departments[below(departments.len())],
                role: roles[below(roles.len())],
                division,
            });
        }
    }
    out.push(Principal {
        name: "admin".into(),
        department: None,
        role: Role::Admin,
        division: DivisionCode::parse("630000000000").unwrap(),
    });
    out
}

/// The ID numbers (clear) and division codes of the people outside `prefix`:
/// what must never show in a plan.
pub fn out_of_scope_values(data: &Data, prefix: &str) -> Vec<String> {
    let ids = data.population.column_by_name("id_number").unwrap().as_string::<i32>();
    let codes = data.population.column_by_name("division_code").unwrap().as_string::<i32>();
    // A plan's pruning predicate bounds `LIKE 'prefix%'` by the prefix with its last
    // digit incremented: a literal derived from the scope, not a value of the data.
    let mut successor = prefix.as_bytes().to_vec();
    if let Some(last) = successor.last_mut() {
        *last += 1;
    }
    let successor = String::from_utf8(successor).unwrap();
    let mut out = Vec::new();
    for r in 0..data.population.num_rows() {
        if !(codes.is_valid(r) && codes.value(r).starts_with(prefix)) {
            out.push(ids.value(r).to_owned());
            if codes.is_valid(r) && codes.value(r).len() >= 8 && codes.value(r) != successor {
                out.push(codes.value(r).to_owned());
            }
        }
    }
    out
}
