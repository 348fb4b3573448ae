//! A rule run end to end: as a masked principal it records pseudonymous
//! findings inside the principal's division only; as a principal with an
//! unmasking grant on what the rule reads it is refused before it runs.

use civlink_catalog::findings::FindingFilter;
use civlink_catalog::model::Department;
use civlink_catalog::policy::{Grant, GrantSubject, Principal, Role};
use civlink_query::SessionFactory;
use civlink_standards::division::Level;
use civlink_testkit::corpus::{self, POPULATION};
use civlink_verify::check::{Shapes, check_rule};
use civlink_verify::evaluate::run_rule;
use civlink_verify::reveal::subject_as_seen;
use civlink_verify::rule::Rule;

const RULE: &str = r#"
id = "everyone"
version = 1
title_zh = "全部人口"
title_en = "everyone"
basis = "test"
severity = "low"
subject = "person"
department = "gongan"
explain = "{name}（{id_number}）"
sql = "SELECT id_number, name, division_code FROM gongan.population"
[columns]
subject = "id_number"
division = "division_code"
evidence = ["name"]
[[rests_on]]
dataset = "gongan.population"
key = { id_number = "id_number" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_records_pseudonymous_findings_in_scope_and_refuses_an_unmasked_principal() {
    let catalog = corpus::catalog().await;
    let county = catalog.data.villages[0].parent(Level::County).unwrap();
    let analyst = Principal {
        name: "county".into(),
        department: Some(Department::Gongan),
        role: Role::Analyst,
        division: county,
    };
    let unmasked = Principal { name: "unmasked".into(), ..analyst.clone() };
    for p in [&analyst, &unmasked] {
        catalog.store.create_principal(p).await.unwrap();
    }
    catalog
        .store
        .grant(&Grant {
            id: "unmasked-population".into(),
            subject: GrantSubject::Principal("unmasked".into()),
            dataset: POPULATION.parse().unwrap(),
            columns: None,
            unmasked: true,
            purpose: Some("test".into()),
            purpose_required: false,
            expires_at: None,
        })
        .await
        .unwrap();
    let factory = SessionFactory::builder(catalog.store.clone(), catalog.tables.clone()).build().await.unwrap();
    let snapshot = factory.policy().current().await.unwrap();
    let checked =
        check_rule(Rule::parse(RULE, Some("everyone")).unwrap(), &Shapes::of_snapshot(&snapshot)).await.unwrap();

    let outcome = run_rule(&factory, &analyst, &checked).await.unwrap();
    assert!(outcome.summary.new > 0, "{outcome:?}");
    assert_eq!(outcome.summary.found, outcome.summary.new);
    assert_eq!(outcome.dataset_versions.len(), 1);
    let findings = catalog.store.findings(&FindingFilter::default()).await.unwrap();
    assert_eq!(findings.len() as u64, outcome.summary.found);
    let clear: Vec<String> = (0..catalog.data.population.num_rows())
        .map(|i| {
            let ids = catalog.data.population.column_by_name("id_number").unwrap();
            arrow::util::display::array_value_to_string(ids, i).unwrap()
        })
        .collect();
    for finding in &findings {
        assert!(county.contains(&finding.division), "{} lies outside the county", finding.division);
        assert!(finding.subject.starts_with("ps_"), "the subject is a pseudonym: {}", finding.subject);
        assert!(!clear.iter().any(|id| finding.explanation.contains(id.as_str())), "{}", finding.explanation);
        assert_eq!(finding.rests_on[0].key["id_number"], finding.subject);
    }

    // Each reader sees the subject as its own access shows it: the masked analyst the
    // pseudonym and a masked name, the unmasked one the clear number and name.
    let names = catalog.data.population.column_by_name("name").unwrap();
    let finding = &findings[0];
    let masked = subject_as_seen(&factory, &analyst, finding).await.unwrap().expect("readable");
    assert_eq!(masked.id_number, finding.subject);
    assert!(masked.name.as_deref().is_some_and(|n| n.contains('*')), "{masked:?}");
    let clear_seen = subject_as_seen(&factory, &unmasked, finding).await.unwrap().expect("readable");
    let at = clear.iter().position(|id| *id == clear_seen.id_number).expect("the clear ID number");
    assert_eq!(
        clear_seen.name.as_deref(),
        Some(arrow::util::display::array_value_to_string(names, at).unwrap().as_str())
    );
    let elsewhere = catalog
        .data
        .villages
        .iter()
        .filter_map(|v| v.parent(Level::County))
        .find(|c| !c.contains(&finding.division))
        .expect("the corpus spans more than one county");
    let outsider = Principal { name: "outsider".into(), division: elsewhere, ..analyst.clone() };
    catalog.store.create_principal(&outsider).await.unwrap();
    assert_eq!(subject_as_seen(&factory, &outsider, finding).await.unwrap(), None, "outside its division, no row");

    let refused = run_rule(&factory, &unmasked, &checked).await.unwrap_err();
    assert!(matches!(refused, civlink_verify::Error::Unmasked { .. }), "{refused}");
    assert_eq!(catalog.store.findings(&FindingFilter::default()).await.unwrap().len(), findings.len());
}
