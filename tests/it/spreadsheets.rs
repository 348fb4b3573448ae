//! Spreadsheets as township and county offices make them, written by other
//! writers than civlink's own (openpyxl for `.xlsx`, xlwt for `.xls`, in
//! `tests/python/ledgers.py`): a merged title and notes above the header, a
//! two-row header under a merged group title, totals and signature lines,
//! date cells and serial numbers, IDs typed as numbers (intact and with
//! digits lost), several and hidden sheets, and the pre-2007 `.xls`. Each
//! case checks the rows written, the rows skipped with their reasons and the
//! rows quarantined with theirs.

use std::path::{Path, PathBuf};

use crate::common::{civlink, has_row, python, repo, text};

/// The workbooks and the ID numbers in them.
struct Ledgers {
    dir: tempfile::TempDir,
    ids: serde_json::Value,
}

impl Ledgers {
    fn write() -> Ledgers {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(python())
            .arg(repo().join("tests/python/ledgers.py"))
            .arg(dir.path())
            .output()
            .expect("run ledgers.py");
        assert!(output.status.success(), "ledgers.py failed: {}", String::from_utf8_lossy(&output.stderr));
        let ids = serde_json::from_slice(&output.stdout).expect("ledgers.py prints the IDs as JSON");
        Ledgers { dir, ids }
    }

    fn id(&self, key: &str) -> String {
        self.ids[key].as_str().unwrap().to_owned()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A job loading `location` (a workbook here) into `minzheng.ledger`, with
    /// `source` lines added to `[source]` and `columns` to the mapping.
    fn job(&self, name: &str, location: &str, source: &str, rename: &str, columns: &str) -> PathBuf {
        let job = format!(
            r#"
name = "ledger-{name}"
dataset = "minzheng.ledger_{name}"
standard = "{standard}"
mode = "overwrite"

[dataset_info]
title = "台账测试"
owner = "测试处"
sharing = "conditional"
update_cycle = "monthly"

[source]
location = "{location}"
{source}

[mapping]
rename = {{ {rename} }}

[[mapping.columns]]
name = "id_number"
normalize = "id_number"
{columns}

# Some cases quarantine most rows on purpose.
[gates]
max_quarantined = "100%"
"#,
            standard = repo().join("tests/data/person_v1.json").display()
        );
        let path = self.path().join(format!("{name}.toml"));
        std::fs::write(&path, job).unwrap();
        path
    }
}

const RENAME: &str = r#""身份证号" = "id_number", "姓名" = "name", "编码" = "code", "年龄" = "age", "出生日期" = "birth_date", "金额" = "amount""#;

/// `civlink ingest` of `job`, which must succeed; its output.
fn ingest(data: &Path, job: &Path) -> String {
    let out = civlink(data, &["ingest", job.to_str().unwrap()]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    printed
}

/// The quarantine of `dataset`, as `catalog quarantine` lists it.
fn quarantine(data: &Path, dataset: &str) -> String {
    text(&civlink(data, &["catalog", "quarantine", dataset]))
}

/// `column` of every row of a dataset's table, sorted, read by the Python Delta reader.
fn column(data: &Path, dataset: &str, column: &str) -> Vec<String> {
    let table = data.join("tables/minzheng").join(dataset.trim_start_matches("minzheng."));
    let script = "import os, sys, json, deltalake\n\
                  t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()\n\
                  print(json.dumps(sorted(str(v) for v in t.column(sys.argv[2]).to_pylist())))\n\
                  sys.stdout.flush(); os._exit(0)";
    let output =
        std::process::Command::new(python()).arg("-c").arg(script).arg(&table).arg(column).output().expect("python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_ledger_with_a_title_notes_and_trailers_reads_its_five_rows() {
    let ledgers = Ledgers::write();
    let data = ledgers.path().join("data");
    let job = ledgers.job("title", "title.xlsx", "", RENAME, "");
    let out = ingest(&data, &job);

    // Rows 4–8 are the data: 5 read. Rows 1–2 (the merged title, 填报单位) and 9–10 (合计, 制表人) are not.
    assert!(has_row(&out, &["read", "5"]), "{out}");
    assert!(
        out.contains("sheet 低保人员 (title.xlsx): header row 3 (found: 6 known column names)")
            && out.contains("skipped 4 rows: 1–2 above the header, 9 trailer (合计), 10 trailer (制表人)"),
        "{out}"
    );
    // 王五's ID was typed as a number: Excel kept 15 digits. 赵六's birth date is a plain serial number.
    assert!(has_row(&out, &["written", "3"]) && has_row(&out, &["quarantined", "2"]), "{out}");
    let q = quarantine(&data, "minzheng.ledger_title");
    assert!(q.contains("title.xlsx#低保人员:6  id_number digits_lost: 身份证号以数字格式保存，已丢失末位"), "{q}");
    assert!(!q.contains("check"), "lost digits are not reported as a check-character error: {q}");
    assert!(q.contains("title.xlsx#低保人员:7  birth_date format"), "{q}");

    // Date cells are dates; the 15-digit ID stored as a number kept its digits (and became 18).
    assert_eq!(column(&data, "minzheng.ledger_title", "birth_date"), ["1954-08-04", "1984-06-02", "1994-05-01"]);
    let ids = column(&data, "minzheng.ledger_title", "id_number");
    assert!(ids.contains(&ledgers.id("text")) && ids.contains(&ledgers.id("fifth")), "{ids:?}");
    assert!(ids.iter().any(|id| id.starts_with("630121198406020")), "the 15-digit ID, upgraded: {ids:?}");
}

#[test]
fn a_serial_number_becomes_a_date_only_through_the_declared_normaliser() {
    let ledgers = Ledgers::write();
    let data = ledgers.path().join("data");
    let serial = "\n[[mapping.columns]]\nname = \"birth_date\"\nnormalize = \"excel_serial_date\"\n";
    let job = ledgers.job("serial", "title.xlsx", "header_row = 3", RENAME, serial);
    let out = ingest(&data, &job);
    assert!(out.contains("header row 3 (declared by the job (header_row))"), "{out}");
    assert!(has_row(&out, &["written", "4"]) && has_row(&out, &["quarantined", "1"]), "{out}");
    assert!(column(&data, "minzheng.ledger_serial", "birth_date").contains(&"2024-01-01".to_owned()));
    assert!(out.contains("birth_date") && out.contains("normalised"), "the normaliser's count is shown: {out}");
}

#[test]
fn a_two_row_header_names_the_columns_under_its_group() {
    let ledgers = Ledgers::write();
    let data = ledgers.path().join("data");
    let rename = r#""成员信息_姓名" = "name", "成员信息_身份证号" = "id_number", "编码" = "code", "年龄" = "age""#;
    let job = ledgers.job("members", "two_rows.xlsx", "", rename, "");
    let out = ingest(&data, &job);
    assert!(out.contains("sheet 家庭成员 (two_rows.xlsx): header rows 1–2 (found: 4 known column names)"), "{out}");
    assert!(out.contains("skipped 1 rows: 5 trailer (小计)"), "{out}");
    assert!(has_row(&out, &["written", "2"]) && has_row(&out, &["quarantined", "0"]), "{out}");
    assert_eq!(column(&data, "minzheng.ledger_members", "code"), ["11", "12"]);
    // 序号 is a column of the sheet the mapping leaves alone.
    assert!(out.contains("source columns the mapping does not use: 序号"), "{out}");
}

#[test]
fn sheets_by_pattern_skip_hidden_ones_unless_named() {
    let ledgers = Ledgers::write();
    let data = ledgers.path().join("data");
    let job = ledgers.job("towns", "sheets.xlsx", r#"sheets = ["乡镇*"]"#, RENAME, "");
    let out = ingest(&data, &job);
    assert!(out.contains("sheet 乡镇一 (sheets.xlsx)") && out.contains("sheet 乡镇二 (sheets.xlsx)"), "{out}");
    assert!(!out.contains("乡镇隐藏") && !out.contains("sheet 说明"), "{out}");
    assert!(has_row(&out, &["written", "3"]), "{out}");

    let named = ledgers.job("all_towns", "sheets.xlsx", r#"sheets = ["乡镇*", "乡镇隐藏"]"#, RENAME, "");
    let out = ingest(&data, &named);
    assert!(out.contains("sheet 乡镇隐藏 (sheets.xlsx)") && has_row(&out, &["written", "4"]), "{out}");

    // A name that matches nothing lists the sheets there are.
    let missing = ledgers.job("none", "sheets.xlsx", r#"sheet = "乡镇三""#, RENAME, "");
    let failed = civlink(&data, &["ingest", missing.to_str().unwrap()]);
    let printed = text(&failed);
    assert_ne!(failed.status.code(), Some(0), "{printed}");
    assert!(printed.contains("no sheet named \"乡镇三\"") && printed.contains("\"乡镇隐藏\""), "{printed}");
}

#[test]
fn an_xls_ledger_reads_like_an_xlsx_one() {
    let ledgers = Ledgers::write();
    let data = ledgers.path().join("data");
    let job = ledgers.job("xls", "ledger.xls", "", RENAME, "");
    let out = ingest(&data, &job);
    assert!(out.contains("sheet 低保人员 (ledger.xls): header row 2"), "{out}");
    assert!(out.contains("skipped 2 rows: 1 above the header, 6 trailer (合计)"), "{out}");
    assert!(has_row(&out, &["written", "2"]) && has_row(&out, &["quarantined", "1"]), "{out}");
    let q = quarantine(&data, "minzheng.ledger_xls");
    assert!(q.contains("ledger.xls#低保人员:4  id_number digits_lost: 身份证号以数字格式保存"), "{q}");
    assert_eq!(column(&data, "minzheng.ledger_xls", "birth_date"), ["1954-08-04", "1994-05-01"]);

    // A two-row header under a merged group title, from the .xls merge records.
    let rename = r#""成员信息_姓名" = "name", "成员信息_身份证号" = "id_number", "编码" = "code", "年龄" = "age""#;
    let members = ledgers.job("xls_members", "ledger.xls", r#"sheet = "家庭成员""#, rename, "");
    let out = ingest(&data, &members);
    assert!(out.contains("sheet 家庭成员 (ledger.xls): header rows 1–2 (found: 4 known column names)"), "{out}");
    assert!(has_row(&out, &["written", "2"]) && has_row(&out, &["quarantined", "0"]), "{out}");
    assert_eq!(column(&data, "minzheng.ledger_xls_members", "code"), ["11", "12"]);
}
