//! EXPLAIN shows nothing below the scope boundary: at every level and in
//! every format, a principal's EXPLAIN output is the same whether or not
//! the tables hold more rows outside its scope (and so more bytes, more
//! files, more cached batches), whether a table is served from the cache or
//! from storage, and it names no storage path.

use civlink_catalog::model::Department;
use civlink_catalog::policy::{Principal, Role};
use civlink_query::{Limits, SessionFactory};
use civlink_standards::division::Level;
use civlink_testkit::corpus::{self, BENEFITS, POPULATION};

const STATEMENTS: &[&str] = &[
    "SELECT * FROM {P}",
    "SELECT id_number, division_code FROM {P} WHERE name = '张三'",
    "SELECT p.name, b.amount FROM {P} p JOIN {B} b ON p.id_number = b.id_number",
    "SELECT division_code, count(*) FROM {P} GROUP BY division_code ORDER BY 2 DESC LIMIT 3",
    "SELECT count(*) FROM {B} WHERE amount > 500",
];

const FORMATS: &[&str] =
    &["EXPLAIN", "EXPLAIN FORMAT indent", "EXPLAIN FORMAT tree", "EXPLAIN FORMAT graphviz", "EXPLAIN FORMAT pgjson"];

/// Every EXPLAIN output, in order, for `principal` over `catalog` with `limits`.
async fn explain_all(catalog: &corpus::Catalog, limits: Limits, principal: &Principal) -> Vec<String> {
    let factory =
        SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).limits(limits).build().await.unwrap();
    let session = factory.session_for(principal).await.unwrap();
    let mut out = Vec::new();
    for format in FORMATS {
        for statement in STATEMENTS {
            let sql = format!("{format} {}", statement.replace("{P}", POPULATION).replace("{B}", BENEFITS));
            let planned = session.plan_sql(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let frame = session.ctx.execute_logical_plan(planned.plan).await.unwrap();
            let rows = corpus::collect(frame).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            let text: Vec<String> =
                rows.rows.iter().map(|r| r.iter().flatten().cloned().collect::<Vec<_>>().join(" | ")).collect();
            out.push(format!("{sql}\n{}", text.join("\n")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_does_not_depend_on_rows_outside_the_scope_in_any_format() {
    let small = corpus::catalog().await;
    let large = corpus::catalog_with_outsiders(5000).await;
    let village = small.data.villages[0];
    let cached = Limits::default();
    let storage = Limits { table_cache_bytes: 0, ..Limits::default() };
    for level in [Level::City, Level::County, Level::Township, Level::Village] {
        let principal = Principal {
            name: format!("{level:?}"),
            department: Some(Department::Minzheng),
            role: Role::Analyst,
            division: village.parent(level).unwrap_or(village),
        };
        let reference = explain_all(&small, cached.clone(), &principal).await;
        for (catalog, limits, what) in [
            (&large, cached.clone(), "more rows outside, cached"),
            (&small, storage.clone(), "from storage"),
            (&large, storage.clone(), "more rows outside, from storage"),
        ] {
            let outputs = explain_all(catalog, limits, &principal).await;
            for (want, got) in reference.iter().zip(&outputs) {
                assert_eq!(got, want, "{level:?}, {what}");
            }
        }
        let dirs = [small.dir.path().display().to_string(), large.dir.path().display().to_string()];
        for text in &reference {
            for hidden in ["file://", ".parquet", "partition_sizes", "bytes:", dirs[0].as_str(), dirs[1].as_str()] {
                assert!(!text.contains(hidden), "{level:?}: {hidden} shows in\n{text}");
            }
            if text.starts_with("EXPLAIN SELECT") {
                assert!(text.contains("CivlinkScopeExec"), "the boundary itself is shown:\n{text}");
            }
        }
    }
}
