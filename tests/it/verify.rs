//! Verification (比对) end to end, on the demo's data: `civlink demo
//! --no-serve` runs every shipped rule; then each scope's officer sees
//! exactly the planted cases their office must act on (CLI), decides one,
//! cannot touch another office's, and re-runs are idempotent. No clear ID
//! number from the data is anywhere in the catalog's database.

use std::collections::BTreeMap;
use std::path::Path;

use civlink_standards::division::DivisionCode;
use civlink_synth::GroundTruth;

use crate::common::{civlink, text};

/// The demo's analysts and their divisions.
const SCOPES: [(&str, &str); 3] = [
    ("demo-province-analyst", "630000000000"),
    ("demo-county-analyst", "630106000000"),
    ("demo-township-analyst", "630106100000"),
];

/// The token printed on the line after each analyst's name.
fn tokens(printed: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = printed.lines().collect();
    SCOPES
        .iter()
        .map(|(name, _)| {
            let at = lines.iter().position(|l| l.contains(name)).unwrap_or_else(|| panic!("no line for {name}"));
            let token = lines[at + 1].split("token: ").nth(1).unwrap_or_else(|| panic!("no token after {name}"));
            ((*name).to_owned(), token.trim().to_owned())
        })
        .collect()
}

/// Per rule, the findings `findings list` shows.
fn listed(data_dir: &Path, token: &str) -> (BTreeMap<String, u64>, Vec<(String, String)>) {
    let out = civlink(data_dir, &["findings", "list", "--limit", "100000", "--token", token]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut ids = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [id, rule, ..] = words[..]
            && id.starts_with("f_")
        {
            *by_rule.entry(rule.to_owned()).or_default() += 1;
            ids.push((id.to_owned(), rule.to_owned()));
        }
    }
    (by_rule, ids)
}

#[test]
fn every_office_sees_exactly_its_planted_cases_and_decides_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let out = dir.path().join("demo");
    let demo = civlink(&data_dir, &["demo", "--people", "3000", "--no-serve", "--out", out.to_str().unwrap()]);
    let printed = text(&demo);
    assert_eq!(demo.status.code(), Some(0), "{printed}");
    assert!(printed.contains("precision = recall = 1.0 for every rule"), "{printed}");
    let truth = GroundTruth::load(&out.join("ground_truth.json")).unwrap();
    let tokens = tokens(&printed);

    for (name, division) in SCOPES {
        let prefix = DivisionCode::parse(division).unwrap().scope_prefix().to_owned();
        let (found, _) = listed(&data_dir, &tokens[name]);
        let planted: BTreeMap<String, u64> = truth.findings_in(&prefix).into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(found, planted, "{name}: findings per rule");
        if name == "demo-province-analyst" {
            assert_eq!(found.len(), 8, "every shipped rule finds its planted cases: {found:?}");
        }
    }

    // The rules, each with its last run (the demo's, as the province analyst).
    let rules = civlink(&data_dir, &["verify", "rules"]);
    let rules_text = text(&rules);
    assert_eq!(rules.status.code(), Some(0), "{rules_text}");
    for rule in [
        "dibao_deceased",
        "dibao_employee_pension",
        "dibao_employed",
        "dibao_two_counties",
        "missed_assistance",
        "disabled_without_care_subsidy",
        "tekun_and_dibao",
        "aid_after_death",
    ] {
        let line = rules_text.lines().find(|l| l.starts_with(rule)).unwrap_or_else(|| panic!("{rule}: {rules_text}"));
        assert!(line.contains("shipped") && line.contains("by demo-province-analyst"), "{line}");
    }

    // A re-run adds nothing.
    let again = civlink(&data_dir, &["verify", "run", "--token", &tokens["demo-province-analyst"]]);
    let again_text = text(&again);
    assert_eq!(again.status.code(), Some(0), "{again_text}");
    for line in again_text
        .lines()
        .filter(|l| ["dibao_", "missed", "disabled", "tekun", "aid_"].iter().any(|p| l.starts_with(p)))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&words[3..6], ["0", "0", "0"], "a re-run found something new, reopened or resolved: {line}");
    }

    // The township officer decides one of their own; the county's other findings are not theirs.
    let (_, township_ids) = listed(&data_dir, &tokens["demo-township-analyst"]);
    let (_, county_ids) = listed(&data_dir, &tokens["demo-county-analyst"]);
    let (mine, _) = township_ids.first().expect("the township has findings").clone();
    let township = &tokens["demo-township-analyst"];
    let decided = civlink(
        &data_dir,
        &["findings", "decide", &mine, "--outcome", "confirmed", "--note", "入户核实", "--token", township],
    );
    assert_eq!(decided.status.code(), Some(0), "{}", text(&decided));
    assert!(text(&decided).contains("confirmed"), "{}", text(&decided));
    let twice = civlink(
        &data_dir,
        &["findings", "decide", &mine, "--outcome", "dismissed", "--reason", "other", "--token", township],
    );
    assert_ne!(twice.status.code(), Some(0), "a decided finding is not decided again");
    let shown = civlink(&data_dir, &["findings", "show", &mine, "--token", township]);
    let shown_text = text(&shown);
    assert!(shown_text.contains("demo-township-analyst") && shown_text.contains("入户核实"), "{shown_text}");
    assert!(shown_text.contains("rests on:") && shown_text.contains("version"), "{shown_text}");
    assert!(shown_text.contains("subject as you see it: ps_"), "masked for a masked reader: {shown_text}");

    let outside = county_ids.iter().find(|(id, _)| !township_ids.iter().any(|(t, _)| t == id));
    if let Some((theirs, _)) = outside {
        let refused =
            civlink(&data_dir, &["findings", "decide", theirs, "--outcome", "confirmed", "--token", township]);
        assert_ne!(refused.status.code(), Some(0));
        assert!(text(&refused).contains("no finding"), "{}", text(&refused));
        let hidden = civlink(&data_dir, &["findings", "show", theirs, "--token", township]);
        assert_ne!(hidden.status.code(), Some(0));
    }
    let (other, _) = county_ids.iter().find(|(id, _)| *id != mine).expect("the county has another finding");
    let county = &tokens["demo-county-analyst"];
    let dismiss_without_reason =
        civlink(&data_dir, &["findings", "decide", other, "--outcome", "dismissed", "--token", county]);
    assert_ne!(dismiss_without_reason.status.code(), Some(0), "{}", text(&dismiss_without_reason));

    let summary = civlink(&data_dir, &["findings", "summary", "--token", &tokens["demo-county-analyst"]]);
    let summary_text = text(&summary);
    assert_eq!(summary.status.code(), Some(0), "{summary_text}");
    assert!(summary_text.contains("by township") && summary_text.contains("100% of 1"), "{summary_text}");

    // The source changes: one employed 低保 recipient's employment rows are gone from 人社's
    // next delivery. Its finding is resolved at source; when the rows come back, it is reopened.
    let employed = truth
        .anomalies
        .iter()
        .find(|a| a.kind == civlink_synth::AnomalyKind::DibaoEmployed)
        .expect("an employed recipient is planted");
    let dataset = truth.datasets.iter().find(|d| d.id == "renshe.employment").unwrap();
    let export = out.join(&dataset.exports[0]);
    let original = std::fs::read(&export).unwrap();
    let without: Vec<u8> = original
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| !String::from_utf8_lossy(line).contains(&employed.id_number))
        .flatten()
        .copied()
        .collect();
    assert!(without.len() < original.len(), "the person's employment rows are in {}", export.display());
    let province = &tokens["demo-province-analyst"];
    let job = out.join(&dataset.job);
    // The rule is scheduled to run after each committed ingestion of a dataset it reads.
    let scheduled = dir.path().join("scheduled-rules");
    std::fs::create_dir_all(&scheduled).unwrap();
    let shipped = std::fs::read_to_string(crate::common::repo().join("rules/dibao_employed.toml")).unwrap();
    std::fs::write(
        scheduled.join("dibao_employed.toml"),
        format!("{shipped}\n[schedule]\nafter_ingest = true\nrun_as = \"demo-province-analyst\"\n"),
    )
    .unwrap();
    let rules_dir = scheduled.to_str().unwrap();
    let deliver_and_verify = |bytes: &[u8]| {
        std::fs::write(&export, bytes).unwrap();
        let ingest = civlink(&data_dir, &["ingest", job.to_str().unwrap(), "--rules-dir", rules_dir]);
        let printed = String::from_utf8_lossy(&ingest.stdout).into_owned();
        assert_eq!(ingest.status.code(), Some(0), "{}", text(&ingest));
        assert!(printed.contains("rules after ingest of renshe.employment"), "{printed}");
        printed
    };
    let responsible = employed.responsible_divisions.len().to_string();
    let gone = deliver_and_verify(&without);
    assert!(crate::common::has_row(&gone, &["dibao_employed", "v1"]), "{gone}");
    let words = |table: &str| -> Vec<String> {
        table.lines().find(|l| l.starts_with("dibao_employed")).unwrap().split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(words(&gone)[5], responsible, "resolved at source: {gone}");
    let resolved = civlink(
        &data_dir,
        &["findings", "list", "--rule", "dibao_employed", "--status", "resolved_at_source", "--token", province],
    );
    assert!(text(&resolved).contains("源数据已消除"), "{}", text(&resolved));
    let back = deliver_and_verify(&original);
    assert_eq!(words(&back)[4], responsible, "reopened: {back}");
    let (found, _) = listed(&data_dir, province);
    assert_eq!(found.get("dibao_employed").copied(), truth.findings_in("63").get("dibao_employed").copied());

    // A gutted delivery is held by the delivery gates: the dataset keeps its version, so the
    // rules see the good data and resolve nothing.
    let mut gutted: Vec<u8> = original.split_inclusive(|b| *b == b'\n').take(5).flatten().copied().collect();
    gutted.extend_from_slice(b"\n");
    std::fs::write(&export, &gutted).unwrap();
    // Audited as the principal it ran as, with what started it (the log's SQL column is cut short: read the store).
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("catalog.db")) {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(
        String::from_utf8_lossy(&stored).contains("scheduled, after civlink ingest of renshe.employment by"),
        "the scheduled run's audit entry names its trigger"
    );
    let held = civlink(&data_dir, &["ingest", job.to_str().unwrap(), "--rules-dir", rules_dir]);
    assert_eq!(held.status.code(), Some(3), "held by a gate: {}", text(&held));
    assert!(
        text(&held).contains("rules after ingest not run: the delivery is held"),
        "a held delivery triggers no rule: {}",
        text(&held)
    );
    let after_hold = civlink(&data_dir, &["verify", "run", "dibao_employed", "--token", province]);
    assert_eq!(after_hold.status.code(), Some(0), "{}", text(&after_hold));
    let row = words(&String::from_utf8_lossy(&after_hold.stdout));
    assert_eq!(&row[3..6], ["0", "0", "0"], "nothing new, reopened or resolved from a held delivery: {row:?}");
    std::fs::write(&export, &original).unwrap();

    // No clear ID number of the data is anywhere in the catalog database.
    let mut database = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("catalog.db")) {
            database.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!database.is_empty(), "no catalog database in {}", data_dir.display());
    let database = String::from_utf8_lossy(&database);
    for anomaly in &truth.anomalies {
        assert!(!database.contains(&anomaly.id_number), "a clear ID number is stored in the catalog");
    }
}

#[test]
fn broken_rules_are_reported_all_at_once_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("bad_sql.toml"),
        "id = \"bad_sql\"\nversion = 1\ntitle_zh = \"坏\"\ntitle_en = \"bad\"\nbasis = \"x\"\nseverity = \"low\"\n\
         subject = \"person\"\ndepartment = \"minzheng\"\nexplain = \"{x}\"\nsql = \"SELEKT 1\"\n\
         [columns]\nsubject = \"x\"\ndivision = \"d\"\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("unknown_dataset.toml"),
        "id = \"unknown_dataset\"\nversion = 1\ntitle_zh = \"坏\"\ntitle_en = \"bad\"\nbasis = \"x\"\nseverity = \"low\"\n\
         subject = \"person\"\ndepartment = \"minzheng\"\nexplain = \"{x}\"\nsql = \"SELECT * FROM renshe.nowhere\"\n\
         [columns]\nsubject = \"x\"\ndivision = \"d\"\n",
    )
    .unwrap();
    std::fs::write(rules.join("wrong_name.toml"), "id = \"other\"\nversion = 0\n").unwrap();
    let out = civlink(&data_dir, &["verify", "rules", "--rules-dir", rules.to_str().unwrap()]);
    let printed = text(&out);
    assert_ne!(out.status.code(), Some(0), "{printed}");
    for expected in ["rule bad_sql", "does not plan", "rule unknown_dataset", "renshe.nowhere", "wrong_name"] {
        assert!(printed.contains(expected), "{expected} missing from: {printed}");
    }
    assert!(!printed.contains("panicked"), "{printed}");

    let without_token = civlink(&data_dir, &["verify", "run"]);
    assert_ne!(without_token.status.code(), Some(0));
    assert!(text(&without_token).contains("--token"), "{}", text(&without_token));
}
