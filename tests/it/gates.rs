//! Delivery gates end to end: a broken delivery never replaces good data.
//! The two cases a new user found (a GBK file declared UTF-8 against a
//! loaded dataset, an export with none of the standard's columns), a shrink
//! in overwrite mode held and then accepted with an audited reason, and bad
//! gate configuration reported with every other job problem.

use std::path::Path;

use crate::common::{civlink, civlink_env, current_version, has_row, repo, text, valid_export, write_gbk};

/// Exit code of a run a gate held.
const HELD: i32 = 3;

/// A job loading `location` into `minzheng.gate_people`, overwriting, UTF-8, with extra `gates`.
fn overwrite_job(dir: &Path, location: &str, gates: &str) -> std::path::PathBuf {
    let job = format!(
        r#"
name = "gate-people"
dataset = "minzheng.gate_people"
standard = "{standard}"
mode = "overwrite"

[dataset_info]
title = "闸门测试人员"
owner = "测试处"
sharing = "conditional"
update_cycle = "daily"

[source]
location = "{location}"

[source.csv]
encoding = "utf-8"

[mapping]
rename = {{ "身份证号" = "id_number", "姓名" = "name", "编码" = "code", "年龄" = "age", "出生日期" = "birth_date", "金额" = "amount" }}
{gates}
"#,
        standard = repo().join("tests/data/person_v1.json").display()
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, job).unwrap();
    path
}

/// (table version, rows) of the dataset, as `catalog show` reports them.
fn state(data: &Path) -> (i64, String) {
    let show = text(&civlink(data, &["catalog", "show", "minzheng.gate_people"]));
    let rows = show
        .lines()
        .find(|l| l.trim_start().starts_with("rows:"))
        .unwrap_or_else(|| panic!("no rows line in {show}"))
        .to_owned();
    (current_version(&show), rows)
}

/// The run id a summary names.
fn run_id(summary: &str) -> String {
    summary.split("run ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("a run id").to_owned()
}

/// Rows of the dataset as readers see it: the catalog's version, read by a Delta reader that is not ours.
fn count_rows(data: &Path) -> u64 {
    let table = data.join("tables/minzheng/gate_people");
    crate::common::python_delta_rows(&table, Some(state(data).0)).0
}

#[test]
fn a_mis_encoded_delivery_is_held_and_the_dataset_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("people.csv"), valid_export(999, 0)).unwrap();
    let job = overwrite_job(dir.path(), "people.csv", "");
    let first = civlink(&data, &["ingest", job.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = state(&data);

    // The same export, now in GBK, while the job still says UTF-8.
    write_gbk(&dir.path().join("people.csv"), &valid_export(999, 0));
    let second = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&second);
    assert_eq!(second.status.code(), Some(HELD), "{out}");
    assert!(out.contains("HELD by a delivery gate"), "{out}");
    // The Chinese header itself does not decode: held before any row.
    assert!(has_row(&out, &["HELD", "rejected:", "encoding"]), "{out}");
    assert!(out.contains("the header is not valid utf-8"), "{out}");
    assert!(out.contains("declared utf-8; the file decodes cleanly as gbk"), "{out}");
    // Untouched: same version, same rows.
    assert_eq!(state(&data), before);
    assert_eq!(count_rows(&data), 999);
    let history = text(&civlink(&data, &["catalog", "history", "minzheng.gate_people"]));
    assert!(history.contains("held"), "{history}");
    // The run record says why, at a glance.
    assert!(has_row(&history, &["HELD", "rejected:", "encoding"]), "{history}");
    assert!(history.contains("declared utf-8; the file decodes cleanly as gbk"), "{history}");

    // With an ASCII header (as the reported export had), the rows are read, and
    // set aside as invalid UTF-8: held on the quarantine and encoding gates, its
    // quarantine kept for inspection.
    let gbk = valid_export(999, 0).replacen(
        "身份证号,姓名,编码,年龄,出生日期,金额",
        "id_number,name,code,age,birth_date,amount",
        1,
    );
    write_gbk(&dir.path().join("people.csv"), &gbk);
    let third = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&third);
    assert_eq!(third.status.code(), Some(HELD), "{out}");
    assert!(has_row(&out, &["HELD", "quarantined"]), "{out}");
    assert!(has_row(&out, &["HELD", "rejected:", "encoding"]), "{out}");
    assert!(has_row(&out, &["HELD", "shrink"]), "{out}");
    assert!(out.contains("declared utf-8; the file decodes cleanly as gbk"), "{out}");
    assert_eq!(state(&data).0, before.0);
    assert_eq!(count_rows(&data), 999);
    let quarantine = text(&civlink(&data, &["catalog", "quarantine", "minzheng.gate_people"]));
    assert!(quarantine.contains("invalid UTF-8"), "{quarantine}");
}

#[test]
fn an_export_without_the_standards_columns_is_held_at_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("people.csv"), valid_export(50, 0)).unwrap();
    let job = overwrite_job(dir.path(), "people.csv", "");
    assert_eq!(civlink(&data, &["ingest", job.to_str().unwrap()]).status.code(), Some(0));
    let before = state(&data);

    std::fs::write(dir.path().join("people.csv"), "a,b\n1,2\n3,4\n").unwrap();
    let run = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(HELD), "{out}");
    assert!(has_row(&out, &["HELD", "required", "columns"]), "{out}");
    assert!(out.contains("missing id_number, name"), "{out}");
    assert!(out.contains("source columns the mapping does not use: a, b"), "{out}");
    // Stopped at the header: nothing read, nothing written.
    assert!(has_row(&out, &["read", "0"]), "{out}");
    assert_eq!(state(&data), before);
}

#[test]
fn a_shrink_is_held_and_accepting_it_takes_an_allowed_principal_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("people.csv"), valid_export(1000, 0)).unwrap();
    let job = overwrite_job(dir.path(), "people.csv", "[gates]\nmax_shrink = \"40%\"\n");
    assert_eq!(civlink(&data, &["ingest", job.to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(count_rows(&data), 1000);

    // 300 good rows replace 1000: a 70 % shrink.
    std::fs::write(dir.path().join("people.csv"), valid_export(300, 0)).unwrap();
    let run = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(HELD), "{out}");
    assert!(has_row(&out, &["HELD", "shrink", "70%", "≤", "40%"]), "{out}");
    let held = run_id(&out);
    assert_eq!(count_rows(&data), 1000, "readers still see the old version");

    let token = |args: &[&str]| {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(args);
        let made = text(&civlink(&data, &all));
        made.lines().map(str::trim).find(|l| l.starts_with("clk_")).expect("a token").to_owned()
    };
    let analyst =
        token(&["--user", "an-analyst", "--role", "analyst", "--division", "630000", "--department", "minzheng"]);
    let other_service = token(&[
        "--user",
        "svc-renshe",
        "--role",
        "department_service",
        "--division",
        "630000",
        "--department",
        "renshe",
    ]);
    let service = token(&[
        "--user",
        "svc-minzheng",
        "--role",
        "department_service",
        "--division",
        "630000",
        "--department",
        "minzheng",
    ]);

    // Refused: no reason; an analyst; another department's service account.
    let accept = |token: &str, reason: Option<&str>| {
        let mut args = vec!["ingest", "--accept", held.as_str()];
        if let Some(reason) = reason {
            args.extend_from_slice(&["--reason", reason]);
        }
        civlink_env(&data, &args, &[("CIVLINK_TOKEN".to_owned(), token.to_owned())])
    };
    let no_reason = accept(&service, None);
    assert_eq!(no_reason.status.code(), Some(2), "{}", text(&no_reason));
    assert!(text(&no_reason).contains("needs --reason"), "{}", text(&no_reason));
    for refused in [&analyst, &other_service] {
        let outcome = accept(refused, Some("月底截止"));
        assert_eq!(outcome.status.code(), Some(2), "{}", text(&outcome));
        assert!(text(&outcome).contains("may not override"), "{}", text(&outcome));
    }
    assert_eq!(count_rows(&data), 1000);

    let accepted = accept(&service, Some("county merged two townships; the smaller list is right"));
    assert_eq!(accepted.status.code(), Some(0), "{}", text(&accepted));
    assert!(text(&accepted).contains("accepted by svc-minzheng"), "{}", text(&accepted));
    let history = text(&civlink(&data, &["catalog", "history", "minzheng.gate_people"]));
    assert!(has_row(&history, &["HELD", "shrink", "70%"]), "{history}");
    assert!(history.contains("accepted by svc-minzheng") && history.contains("county merged"), "{history}");
    assert_eq!(count_rows(&data), 300);
    // Once only.
    let again = accept(&service, Some("again"));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    // The override is in the audit chain, with its reason, and the chain verifies.
    let log = text(&civlink(&data, &["audit", "log", "--limit", "50"]));
    assert!(log.contains("ingest_accept"), "{log}");
    assert!(log.contains("svc-minzheng") && log.contains("county merged"), "{log}");
    let verify = civlink(&data, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
}

#[test]
fn a_forced_run_commits_over_the_gates_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("people.csv"), "身份证号,姓名,编码,年龄,出生日期,金额\n").unwrap();
    let job = overwrite_job(dir.path(), "people.csv", "");
    // An empty delivery: below min_rows.
    let held = civlink(&data, &["ingest", job.to_str().unwrap()]);
    assert_eq!(held.status.code(), Some(HELD), "{}", text(&held));
    assert!(has_row(&text(&held), &["HELD", "rows", "0"]), "{}", text(&held));

    let made = text(&civlink(&data, &["token", "create", "--user", "ops", "--role", "admin", "--division", "630000"]));
    let admin = made.lines().map(str::trim).find(|l| l.starts_with("clk_")).expect("a token").to_owned();
    let forced = civlink_env(
        &data,
        &["ingest", job.to_str().unwrap(), "--force", "--reason", "the register is empty this month"],
        &[("CIVLINK_TOKEN".to_owned(), admin)],
    );
    let out = text(&forced);
    assert_eq!(forced.status.code(), Some(0), "{out}");
    assert!(out.contains("committed with --force"), "{out}");
    let log = text(&civlink(&data, &["audit", "log"]));
    assert!(log.contains("ingest_force") && log.contains("the register is empty"), "{log}");
}

#[test]
fn bad_gates_are_reported_with_every_other_job_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let job = overwrite_job(
        dir.path(),
        "people.csv",
        "[gates]\nmax_quarantined = \"150%\"\nmax_shrnk = \"5%\"\nmin_rows = \"many\"\n",
    );
    let text_of = std::fs::read_to_string(&job).unwrap().replace("mode = \"overwrite\"", "mode = \"sideways\"");
    std::fs::write(&job, text_of).unwrap();
    let run = civlink(&data, &["ingest", job.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(2), "{out}");
    for expected in [
        "gates.max_quarantined: 150% is more than 100%",
        "gates.max_shrnk: unknown gate",
        "gates.min_rows: must be a whole number",
        "mode",
    ] {
        assert!(out.contains(expected), "{expected:?} not in {out}");
    }
}

#[test]
fn source_columns_the_mapping_does_not_use_are_a_stored_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let export = valid_export(20, 0);
    let mut lines = export.lines();
    let mut text_with_note = format!("{},备注\n", lines.next().unwrap());
    for line in lines {
        text_with_note.push_str(&format!("{line},无\n"));
    }
    std::fs::write(dir.path().join("people.csv"), text_with_note).unwrap();
    let job = overwrite_job(dir.path(), "people.csv", "");
    let run = civlink(&data, &["ingest", job.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(text(&run).contains("source columns the mapping does not use: 备注"), "{}", text(&run));
    // Kept with the run's quality report, not only printed.
    let show = text(&civlink(&data, &["catalog", "show", "minzheng.gate_people"]));
    assert!(show.contains("source columns the mapping does not use: 备注"), "{show}");
}
