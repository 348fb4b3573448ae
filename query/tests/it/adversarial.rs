//! The adversarial scoping corpus ([`civlink_testkit::corpus`]) against the
//! query layer: for principals at every division level, every corpus query
//! run in the principal's scoped session must give exactly what the same
//! query gives over the pre-filtered, pre-masked copy, and fail whenever it
//! fails there; the rows marked `Refused` must be refused.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray};
use civlink_catalog::model::Department;
use civlink_catalog::policy::{Principal, Role};
use civlink_query::{CATALOG, ScopedSession, SessionFactory};
use civlink_standards::mask::MaskStrategy;
use civlink_testkit::corpus::{
    self, ARCHIVE, BENEFITS, CORPUS, Check, POPULATION, Rows, catalog, expand, out_of_scope_values, principals,
    run_reference,
};

use Check::{Ordered, Refused, RowCount, Set};

/// A corpus query in a scoped session: through the plan gate, then run.
pub async fn run_scoped(session: &ScopedSession, sql: &str) -> Result<Rows, String> {
    let planned = session.plan_sql(sql).await.map_err(|e| e.to_string())?;
    let frame = session.ctx.execute_logical_plan(planned.plan).await.map_err(|e| e.to_string())?;
    corpus::collect(frame).await
}

/// The reference copy for `session`'s principal and datasets.
fn reference(
    session: &ScopedSession,
    data: &corpus::Data,
    key: &civlink_standards::mask::MaskKey,
) -> datafusion::prelude::SessionContext {
    corpus::reference(&session.principal, &session.datasets, data, key, |ctx| {
        civlink_query::udf::register_all(ctx);
        // Every session lists its findings table: so does the reference.
        let findings = session.findings_schema().expect("verification.findings");
        let catalog = ctx.catalog(civlink_query::CATALOG).expect("the civlink catalog");
        catalog.register_schema(civlink_query::findings::SCHEMA, findings).expect("register");
    })
}

/// The mask of `id_number` in `session`'s access to `dataset`.
fn access_mask(session: &ScopedSession, dataset: &str) -> MaskStrategy {
    let (_, access) = session.datasets.iter().find(|(r, _)| r.spec.id.to_string() == dataset).unwrap();
    access.column("id_number").unwrap().mask
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_query_equals_the_prefiltered_reference_at_every_level() {
    assert!(CORPUS.len() >= 30);
    let cat = catalog().await;
    let table_dir = cat.dir.path().display().to_string();
    // No key given: the factory reads the store's, the one the copies are masked with.
    let factory = SessionFactory::builder(cat.store.clone(), cat.tables.clone()).build().await.unwrap();
    let key = cat.store.mask_key().await.unwrap();
    let seed = std::env::var("CIVLINK_ADVERSARIAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_2024);
    let mut compared = 0;
    // Queries both sides answered (not just both refused): the corpus must mostly run.
    let mut answered = 0;
    let mut nonempty = 0;
    for principal in principals(seed, &cat.data) {
        let session = factory.session_for(&principal).await.unwrap();
        let who = format!("seed {seed:#x}, principal {principal:?}");
        // The policy's scope is the principal's division (Admin: none), and the
        // sensitive columns stay masked: what the reference copies are built from.
        for (record, access) in session.datasets.iter() {
            let expected = (principal.role != Role::Admin).then(|| principal.division.scope_prefix().to_owned());
            assert_eq!(access.row_prefix, expected, "{who}");
            assert!(!access.column("id_number").unwrap().mask.is_none(), "{who}: {}", record.spec.id);
        }
        let readable: BTreeSet<String> = session.datasets.iter().map(|(r, _)| r.spec.id.to_string()).collect();
        assert!(readable.contains(POPULATION), "{who}");
        let admin = principal.role == Role::Admin;
        assert_eq!(readable.contains(BENEFITS), admin || principal.department == Some(Department::Minzheng), "{who}");
        assert_eq!(readable.contains(ARCHIVE), admin || principal.department == Some(Department::Gongan), "{who}");
        let reference = reference(&session, &cat.data, &key);

        for (check, sql) in CORPUS {
            let sql = expand(sql, &cat.data, &table_dir);
            let scoped = run_scoped(&session, &sql).await;
            let expected = match check {
                // A plain session would run these: a write, or a 2 GB allocation.
                Refused => Err("not run".to_owned()),
                _ => run_reference(&reference, &sql).await,
            };
            match (check, scoped, expected) {
                (Refused, Err(_), _) => {}
                (Refused, Ok(rows), _) => panic!("{who}: {sql} must be refused, gave {rows:?}"),
                (_, Err(_), Err(_)) => {}
                (_, Ok(rows), Err(e)) => panic!("{who}: {sql} fails over the copy ({e}) but gave {rows:?}"),
                (_, Err(e), Ok(_)) => panic!("{who}: {sql} works over the copy but failed: {e}"),
                (Set, Ok(got), Ok(want)) => {
                    answered += 1;
                    nonempty += usize::from(!want.rows.is_empty());
                    assert_eq!(got.sorted(), want.sorted(), "{who}: {sql}");
                }
                (Ordered, Ok(got), Ok(want)) => assert_eq!(got, want, "{who}: {sql}"),
                (RowCount, Ok(got), Ok(want)) => {
                    assert_eq!(got.rows.len(), want.rows.len(), "{who}: {sql}");
                    // Plans name the scope and masks, never a value from outside them.
                    let text = format!("{got:?}");
                    let prefix = principal.division.scope_prefix();
                    if principal.role != Role::Admin {
                        for secret in out_of_scope_values(&cat.data, prefix) {
                            assert!(!text.contains(&secret), "{who}: {sql} shows {secret}");
                        }
                    }
                }
            }
            compared += 1;
        }
        // information_schema and SHOW TABLES list exactly the readable datasets.
        let listed = run_scoped(
            &session,
            "SELECT table_schema || '.' || table_name FROM information_schema.tables \
             WHERE table_schema <> 'information_schema'",
        )
        .await
        .unwrap();
        let listed: BTreeSet<String> = listed.rows.into_iter().filter_map(|r| r[0].clone()).collect();
        // …and the findings table every session has.
        let mut expected = readable.clone();
        expected.insert("verification.findings".to_owned());
        assert_eq!(listed, expected, "{who}");
        let catalogs =
            run_scoped(&session, "SELECT DISTINCT table_catalog FROM information_schema.tables").await.unwrap();
        assert_eq!(catalogs.rows, vec![vec![Some(CATALOG.to_owned())]], "{who}");
    }
    eprintln!("compared {compared}, answered {answered}, non-empty {nonempty}");
    assert!(compared >= 30 * 11);
    assert!(answered * 10 >= compared * 4, "{answered} of {compared} answered");
    assert!(nonempty * 2 >= answered, "{nonempty} of {answered} non-empty");
}

/// Masks in the copies are exactly what `civlink_standards::mask` does: a
/// check of the reference itself, so that equality above means something.
#[tokio::test]
async fn the_reference_is_really_filtered_and_masked() {
    let cat = catalog().await;
    let key = cat.store.mask_key().await.unwrap();
    let factory = SessionFactory::builder(cat.store.clone(), cat.tables.clone()).build().await.unwrap();
    let village = cat.data.villages[0];
    let principal =
        Principal { name: "v".into(), department: Some(Department::Minzheng), role: Role::Analyst, division: village };
    let session = factory.session_for(&principal).await.unwrap();
    let reference = reference(&session, &cat.data, &key);
    let rows =
        run_reference(&reference, &format!("SELECT division_code, name, id_number FROM {POPULATION}")).await.unwrap();
    assert_eq!(rows.rows.len(), 3, "three people live in each village");
    let ids = cat.data.population.column_by_name("id_number").unwrap().as_string::<i32>();
    let pseudonyms: BTreeSet<String> = ids.iter().flatten().map(|id| key.pseudonym(id)).collect();
    for row in &rows.rows {
        assert_eq!(row[0].as_deref(), Some(village.as_str()));
        assert!(row[1].as_deref().unwrap().ends_with('*'));
        let id = row[2].as_deref().unwrap();
        assert!(id.starts_with("ps_") && pseudonyms.contains(id), "{id}");
    }
    let scoped = run_scoped(&session, &format!("SELECT division_code, name, id_number FROM {POPULATION}")).await;
    assert_eq!(scoped.unwrap().sorted(), rows.sorted());

    // The pseudonyms join the two datasets: every benefit of a villager is found,
    // in the scoped session and in the copy alike.
    let join =
        format!("SELECT p.id_number, b.benefit_id FROM {POPULATION} p JOIN {BENEFITS} b ON p.id_number = b.id_number");
    let want = run_reference(&reference, &join).await.unwrap();
    let b_ids = cat.data.benefits.column_by_name("id_number").unwrap().as_string::<i32>();
    let b_codes = cat.data.benefits.column_by_name("division_code").unwrap().as_string::<i32>();
    let villagers: BTreeSet<String> = (0..cat.data.population.num_rows())
        .filter(|&r| {
            let codes = cat.data.population.column_by_name("division_code").unwrap().as_string::<i32>();
            codes.is_valid(r) && codes.value(r) == village.as_str()
        })
        .map(|r| ids.value(r).to_owned())
        .collect();
    let expected = (0..cat.data.benefits.num_rows())
        .filter(|&r| villagers.contains(b_ids.value(r)) && b_codes.is_valid(r) && b_codes.value(r) == village.as_str())
        .count();
    assert!(expected > 0, "the corpus pays some villagers in their own village");
    assert_eq!(want.rows.len(), expected);
    assert_eq!(run_scoped(&session, &join).await.unwrap().sorted(), want.sorted());
    // A clear ID number finds nothing, nor does the session's (keyless) civlink_mask.
    let clear = villagers.iter().next().unwrap();
    let probe = format!("SELECT count(*) FROM {POPULATION} WHERE id_number = '{clear}'");
    assert_eq!(run_scoped(&session, &probe).await.unwrap().rows, vec![vec![Some("0".to_owned())]]);
    let oracle = format!(
        r#"SELECT count(*) FROM {POPULATION} WHERE id_number = civlink_mask('{clear}', '{{"strategy":"pseudonym"}}')"#
    );
    assert_eq!(run_scoped(&session, &oracle).await.unwrap().rows, vec![vec![Some("0".to_owned())]]);
    let shown = format!("SELECT count(*) FROM {POPULATION} WHERE id_number = '{}'", key.pseudonym(clear));
    assert_eq!(run_scoped(&session, &shown).await.unwrap().rows, vec![vec![Some("1".to_owned())]]);
    assert!(matches!(access_mask(&session, POPULATION), MaskStrategy::Pseudonym));
}
