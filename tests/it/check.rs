//! Household checks (核对) end to end, on the demo's data (8,000 people,
//! where every rule's findings also match the planted cases exactly): for every
//! applicant household the generator planted, `civlink check household`
//! states exactly the planted facts of every member and raises exactly the
//! planted flags; bad requests and principals without the duty are refused
//! clearly; every check is audited with its consent, and no clear ID number
//! reaches the catalog's database.

use std::collections::BTreeSet;
use std::path::Path;

use civlink_synth::{ApplicantMember, GroundTruth};
use serde_json::Value;

use crate::common::{civlink, text};

/// The token printed after a principal's name on one line (`… NAME … token: T`).
fn token_of(printed: &str, name: &str) -> String {
    let lines: Vec<&str> = printed.lines().collect();
    let line = lines
        .iter()
        .position(|l| l.contains(name) && l.contains("token: "))
        .map(|at| lines[at])
        .or_else(|| {
            let at = lines.iter().position(|l| l.contains(name) && !l.contains("household check"))?;
            lines.get(at + 1).copied()
        })
        .unwrap_or_else(|| panic!("no line for {name}"));
    line.split("token: ").nth(1).unwrap_or_else(|| panic!("no token for {name}")).trim().to_owned()
}

fn check_args<'a>(members: &'a [String], division: &'a str, as_of: &'a str, token: &'a str) -> Vec<&'a str> {
    let mut args = vec!["check", "household"];
    for member in members {
        args.extend(["--member", member.as_str()]);
    }
    args.extend([
        "--consent",
        "SQ-T-0001",
        "--purpose",
        "低保申请审核",
        "--division",
        division,
        "--as-of",
        as_of,
        "--token",
        token,
    ]);
    args
}

/// The rows of `dataset`'s item in a member's report.
fn rows<'a>(member: &'a Value, dataset: &str) -> &'a Vec<Value> {
    let items = member["items"].as_array().unwrap();
    let item = items.iter().find(|i| i["dataset"] == dataset).unwrap_or_else(|| panic!("no item for {dataset}"));
    item["rows"].as_array().unwrap()
}

fn item<'a>(member: &'a Value, dataset: &str) -> &'a Value {
    member["items"].as_array().unwrap().iter().find(|i| i["dataset"] == dataset).unwrap()
}

fn open(rows: &[Value]) -> usize {
    rows.iter().filter(|r| r["end_date"].is_null()).count()
}

/// Everything the report states about one member, against the ground truth.
fn assert_member(planted: &ApplicantMember, member: &Value, n: usize) {
    let population = rows(member, "gongan.population");
    assert_eq!(population.len(), 1, "member {n}: one registration");
    assert_eq!(population[0]["status"], planted.register_status.as_str(), "member {n}: registration status");
    let deaths = rows(member, "weijian.death_certificates");
    match planted.certified_death {
        Some(date) => {
            assert_eq!(deaths.len(), 1, "member {n}: one death certificate");
            assert_eq!(deaths[0]["death_date"], date.to_string(), "member {n}: date of death");
        }
        None => assert!(deaths.is_empty(), "member {n}: no death certificate"),
    }
    let payments = rows(member, "renshe.pension_payments");
    assert_eq!(payments.len() as u32, planted.pension_payments, "member {n}: pension payments in 12 months");
    if let Some(monthly) = planted.pension_monthly {
        let latest = item(member, "renshe.pension_payments")["latest"].as_f64().unwrap();
        assert!((latest - monthly).abs() < 0.005, "member {n}: monthly pension {latest}, planted {monthly}");
    }
    assert_eq!(open(rows(member, "renshe.employment")) as u32, planted.open_jobs, "member {n}: open jobs");
    let certificates = rows(member, "canlian.disability_certificates");
    match planted.disability_grade {
        Some(grade) => assert_eq!(certificates[0]["grade"], grade.to_string(), "member {n}: disability grade"),
        None => assert!(certificates.is_empty(), "member {n}: no disability certificate"),
    }
    let poor = rows(member, "xiangcun.registered_poor");
    assert_eq!(poor.first().map(|r| r["poverty_status"].clone()), planted.poverty_status.clone().map(Value::from));
    let monitoring = rows(member, "xiangcun.monitoring");
    assert_eq!(
        monitoring.first().map(|r| r["risk_eliminated"].clone()),
        planted.risk_eliminated.clone().map(Value::from),
        "member {n}: monitoring"
    );
    assert_eq!(open(rows(member, "minzheng.dibao_members")) as u32, planted.dibao_current, "member {n}: 低保");
    assert_eq!(open(rows(member, "minzheng.tekun")) > 0, planted.tekun_current, "member {n}: 特困");
    assert_eq!(rows(member, "minzheng.temporary_aid").len() as u32, planted.temporary_aid, "member {n}: 临时救助");
    let flags: BTreeSet<&str> = member["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    let want: BTreeSet<&str> = planted.flags.iter().map(String::as_str).collect();
    assert_eq!(flags, want, "member {n}: flags");
    // Every item names its source's version and as-of date.
    for item in member["items"].as_array().unwrap() {
        assert!(item["version"].as_i64().is_some() && item["as_of"].is_string(), "{item}");
    }
}

fn database(data_dir: &Path) -> String {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("catalog.db")) {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn every_planted_household_is_reported_exactly_and_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let out = dir.path().join("demo");
    // 8,000 people: the scale at which every rule must find exactly its planted cases.
    let demo = civlink(&data_dir, &["demo", "--people", "8000", "--no-serve", "--out", out.to_str().unwrap()]);
    let printed = text(&demo);
    assert_eq!(demo.status.code(), Some(0), "{printed}");
    assert!(printed.contains("precision = recall = 1.0 for every rule"), "{printed}");
    assert!(printed.contains("the report raises exactly the planted facts for every member"), "{printed}");
    let truth = GroundTruth::load(&out.join("ground_truth.json")).unwrap();
    let officer = token_of(&printed, "demo-check-officer");
    let analyst = token_of(&printed, "demo-province-analyst");
    let as_of = truth.as_of.to_string();

    let planted: BTreeSet<&str> = truth.applicants.iter().map(|a| a.planted.as_str()).collect();
    for kind in [
        "dibao_deceased",
        "dibao_employee_pension",
        "dibao_employed",
        "dibao_two_counties",
        "tekun_and_dibao",
        "aid_after_death",
        "none",
    ] {
        assert!(planted.contains(kind), "an applicant household planted for {kind}: {planted:?}");
    }
    for applicant in &truth.applicants {
        let members: Vec<String> = applicant.members.iter().map(|m| m.id_number.clone()).collect();
        let mut args = check_args(&members, &applicant.household_division, &as_of, &officer);
        args.push("--json");
        let checked = civlink(&data_dir, &args);
        let flagged = applicant.members.iter().any(|m| !m.flags.is_empty());
        assert_eq!(checked.status.code(), Some(if flagged { 1 } else { 0 }), "{}", text(&checked));
        let report: Value = serde_json::from_slice(&checked.stdout).unwrap();
        assert_eq!(report["consent_reference"], "SQ-T-0001");
        for source in report["sources"].as_array().unwrap() {
            assert_eq!(source["consulted"], true, "{}: every source consulted: {source}", applicant.planted);
        }
        let reported = report["members"].as_array().unwrap();
        assert_eq!(reported.len(), applicant.members.len());
        for (n, (planted, member)) in applicant.members.iter().zip(reported).enumerate() {
            assert_member(planted, member, n + 1);
            assert!(!member["id_number"].as_str().unwrap().contains(&planted.id_number[6..14]), "ID shown in part");
        }
        // The summary flags come first and name every flagged member.
        let summary: BTreeSet<(String, u64)> = report["flags"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                let id = f["id"].as_str().unwrap().to_owned();
                f["members"].as_array().unwrap().iter().map(move |m| (id.clone(), m.as_u64().unwrap()))
            })
            .collect();
        let want: BTreeSet<(String, u64)> = applicant
            .members
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.flags.iter().map(move |f| (f.clone(), i as u64 + 1)))
            .collect();
        assert_eq!(summary, want, "{}: summary flags", applicant.planted);
    }

    // The printable page.
    let applicant = &truth.applicants[0];
    let members: Vec<String> = applicant.members.iter().map(|m| m.id_number.clone()).collect();
    let page = dir.path().join("report.html");
    let mut args = check_args(&members, &applicant.household_division, &as_of, &officer);
    args.extend(["--html", page.to_str().unwrap()]);
    let printed_check = civlink(&data_dir, &args);
    assert!(matches!(printed_check.status.code(), Some(0 | 1)), "{}", text(&printed_check));
    let html = std::fs::read_to_string(&page).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&page).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the printed report is its owner's only");
    }
    // The members from a file instead of the command line.
    let list = dir.path().join("members.txt");
    std::fs::write(&list, members.join("\n")).unwrap();
    let mut from_file: Vec<&str> = check_args(&[], &applicant.household_division, &as_of, &officer);
    from_file.extend(["--members-file", list.to_str().unwrap(), "--json"]);
    let listed = civlink(&data_dir, &from_file);
    assert!(matches!(listed.status.code(), Some(0 | 1)), "{}", text(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["members"].as_array().unwrap().len(), members.len());
    assert!(html.contains("家庭经济状况核对报告") && html.contains("SQ-T-0001") && html.contains("户籍登记"), "{html}");
    assert!(!html.contains(&members[0]), "the page shows ID numbers only in part");

    // Refusals, each with a clear message and no panic.
    let no_consent: Vec<&str> = {
        let mut args = check_args(&members, &applicant.household_division, &as_of, &officer);
        let at = args.iter().position(|a| *a == "--consent").unwrap();
        args.drain(at..at + 2);
        args
    };
    let refused = civlink(&data_dir, &no_consent);
    assert_ne!(refused.status.code(), Some(0));
    assert!(text(&refused).contains("signed consent"), "{}", text(&refused));
    let bad_id = vec!["110105194912310021".to_owned(), members[0].clone()];
    let malformed = civlink(&data_dir, &check_args(&bad_id, &applicant.household_division, &as_of, &officer));
    assert_ne!(malformed.status.code(), Some(0));
    assert!(text(&malformed).contains("member 1: not a valid ID number"), "{}", text(&malformed));
    assert!(!text(&malformed).contains("110105194912310021"), "the bad number is not echoed");
    let not_officer = civlink(&data_dir, &check_args(&members, &applicant.household_division, &as_of, &analyst));
    assert_ne!(not_officer.status.code(), Some(0));
    assert!(text(&not_officer).contains("may not run household checks"), "{}", text(&not_officer));
    let province = civlink(&data_dir, &check_args(&members, "630000000000", &as_of, &officer));
    assert!(text(&province).contains("county, township or village"), "{}", text(&province));
    for output in [&refused, &malformed, &not_officer, &province] {
        assert!(!text(output).contains("panicked"), "{}", text(output));
    }

    // Audited with the consent reference, the refusals too.
    let audit = civlink(&data_dir, &["audit", "log", "--limit", "400"]);
    let audit_text = text(&audit);
    assert!(audit_text.contains("household_check"), "{audit_text}");
    assert!(audit_text.contains("SQ-T-0001"), "{audit_text}");
    assert!(audit_text.contains("denied"), "refusals are audited: {audit_text}");

    // No clear ID number of any checked member is stored anywhere in the catalog.
    let database = database(&data_dir);
    for applicant in &truth.applicants {
        for member in &applicant.members {
            assert!(!database.contains(&member.id_number), "a clear ID number is stored in the catalog");
        }
    }
}
