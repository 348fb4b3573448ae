//! Job files: loading good ones from disk, and listing every problem of bad ones.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use civlink_catalog::model::{SharingType, UpdateCycle, WriteMode};
use civlink_connectors::file::FileFormat;
use civlink_connectors::job::{Job, JobError};
use civlink_connectors::source::list_files;

/// A closed standard with two columns, written next to the job.
const STANDARD: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "x-civlink-id": "minzheng.people",
  "x-civlink-version": "1.0.0",
  "title": "人员",
  "type": "object",
  "required": ["id_number"],
  "additionalProperties": false,
  "properties": {
    "id_number": {"type": "string", "format": "gb11643", "title": "公民身份号码"},
    "sex": {"type": "string", "title": "性别", "x-civlink-code-table": "sex"}
  }
}"#;

const JOB: &str = r#"
name = "minzheng-people"
dataset = "minzheng.people"
standard = "standards/people.json"
mode = "overwrite"
schedule = "30 1 * * *"

[dataset_info]
title = "人员"
owner = "省民政厅"
sharing = "not_shared"
update_cycle = "monthly"
classification = "internal"

[source]
location = "exports/*.xlsx"
sheet = "人口"

[mapping]
drop_unmapped = true
rename = { "公民身份号码" = "id_number" }
[[mapping.columns]]
name = "sex"
derive = "copy(性别)"
code_table = "sex"
"#;

fn job_dir(job: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("standards")).unwrap();
    std::fs::write(dir.path().join("standards/people.json"), STANDARD).unwrap();
    std::fs::create_dir_all(dir.path().join("exports")).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/population.xlsx");
    std::fs::copy(fixture, dir.path().join("exports/population.xlsx")).unwrap();
    std::fs::write(dir.path().join("people.toml"), job).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn good_job_from_disk() {
    let dir = job_dir(JOB);
    let job = Job::load(&dir.path().join("people.toml")).unwrap();
    assert_eq!(job.base_dir, std::path::absolute(dir.path()).unwrap());
    assert_eq!(job.path.as_deref(), Some(dir.path().join("people.toml").as_path()));
    assert_eq!(job.spec.mode, WriteMode::Overwrite);
    assert_eq!(job.spec.dataset_info.sharing, SharingType::NotShared);
    assert_eq!(job.spec.dataset_info.update_cycle, UpdateCycle::Monthly);
    assert_eq!(job.spec.source.format, None);
    assert!(job.schedule.is_some());
    let standard = job.standard().unwrap();
    assert_eq!(standard.id, "minzheng.people");
    assert!(job.standard_document().unwrap().contains("minzheng.people"));

    // The location resolves against the job's directory, and the sheet reaches the reader.
    let files = list_files(&job.spec.source.location, &job.base_dir, None).await.unwrap();
    assert_eq!(files.len(), 1);
    let options = job.read_options();
    assert_eq!(options.excel.sheets, ["人口"]);
    let mut source =
        civlink_connectors::source::open_source(&files[0], job.spec.source.format, &options, None).await.unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    // drop_unmapped keeps exactly the standard's columns.
    let mapped = job.mapping.apply(&batch.batch).unwrap();
    let names: Vec<String> = mapped.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id_number", "sex"]);
    assert_eq!(mapped.num_rows(), batch.batch.num_rows());
    let sex = mapped.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(sex.value(0), "1");
    assert_eq!(sex.value(1), "2");
}

#[test]
fn a_standard_file_is_read_when_asked() {
    let dir = job_dir(JOB);
    let job = Job::load(&dir.path().join("people.toml")).unwrap();
    std::fs::remove_file(dir.path().join("standards/people.json")).unwrap();
    assert!(matches!(job.standard_document(), Err(JobError::Standard { .. })));
}

#[test]
fn missing_file() {
    assert!(matches!(Job::load(Path::new("/nonexistent/job.toml")), Err(JobError::Read { .. })));
}

fn problems(job: &str) -> Vec<String> {
    let dir = job_dir(job);
    match Job::load(&dir.path().join("people.toml")) {
        Err(JobError::Invalid { origin, problems }) => {
            assert!(origin.ends_with("people.toml"));
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn every_problem_is_listed() {
    let bad = r#"
name = ""
dataset = "police.people"
standard = "standards/missing.json"
mode = "replace"
schedule = "every night"
owner = "misplaced"

[dataset_info]
title = " "
sharing = "sometimes"
update_cycle = "hourly"
classification = "top"

[source]
location = "exports/*.parquet"
sheet = "人口"
[source.csv]
encoding = "gbk"

[mapping]
rename = { "a" = "x", "b" = "x" }
[[mapping.columns]]
name = "sex"
code_table = "gender"
[[mapping.columns]]
name = "age"
derive = "age(id_number)"
"#;
    let found = problems(bad);
    let expect = [
        "name: must be a non-empty name",
        "dataset: unknown department \"police\"",
        "standard: \"standards/missing.json\" is neither a shipped standard (canlian.disability_certificates, canlian.disability_subsidies, gongan.population,",
        "mode: unknown write mode \"replace\"",
        "schedule: invalid cron expression \"every night\"",
        "owner: unknown key",
        "dataset_info.title: must not be empty when given",
        "dataset_info.sharing: unknown sharing type \"sometimes\"",
        "dataset_info.update_cycle: unknown update cycle \"hourly\"",
        "dataset_info.classification: unknown classification \"top\"",
        "source.csv: CSV options on a parquet source",
        "source: sheet, sheets, header_row and trailer_words apply to spreadsheets (xlsx, xls) only",
        "mapping.rename: \"a\", \"b\" are all renamed to \"x\"",
        "mapping.columns \"sex\": unknown code table \"gender\"",
        "mapping.columns \"age\": unknown derive function \"age\"",
    ];
    for needle in expect {
        assert!(found.iter().any(|p| p.contains(needle)), "missing {needle:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

#[test]
fn more_problems() {
    let bad = r#"
name = "x"
dataset = "minzheng.People"
standard = "standards/people.json"
mode = 3

[dataset_info]
title = "t"
owner = "o"
sharing = "conditional"
update_cycle = "daily"
classification = "public"
colour = "red"

[source]
location = "ftp://host/a.csv"
[source.csv]
delimiter = ";"
quote = ";"

[mapping]
rename = { "公民身份号码" = "id_number", "住址" = "address" }
"#;
    let found = problems(bad);
    let expect = [
        "dataset: \"minzheng.People\" is not a dataset id",
        "mode: expected a string, found integer",
        "dataset_info.colour: unknown key",
        "source.location: location \"ftp://host/a.csv\": unsupported scheme \"ftp\"",
        "source.csv: invalid reader options: delimiter and quote are both ';'",
        "mapping: column \"address\" is not in the standard",
    ];
    for needle in expect {
        assert!(found.iter().any(|p| p.contains(needle)), "missing {needle:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");

    // Missing sections, and sections of the wrong type.
    let found = problems("name = \"x\"\ndataset = \"gongan.x\"\nstandard = \"gongan.population\"\nsource = 1\n");
    assert!(found.iter().any(|p| p == "dataset_info: required"), "{found:#?}");
    assert!(found.iter().any(|p| p == "source: expected a table, found integer"), "{found:#?}");
    let found = problems("[mapping]\nrenames = {}\n");
    assert!(found.iter().any(|p| p.starts_with("mapping: unknown field `renames`")), "{found:#?}");
    assert!(found.iter().any(|p| p == "name: required"), "{found:#?}");
}

#[test]
fn formats_and_options_are_consistent() {
    // An explicit format wins over the extension.
    let job = JOB.replace("sheet = \"人口\"", "format = \"csv\"\n[source.csv]\ndelimiter = \"|\"");
    let dir = job_dir(&job);
    let loaded = Job::load(&dir.path().join("people.toml")).unwrap();
    assert_eq!(loaded.spec.source.format, Some(FileFormat::Csv));
    assert_eq!(loaded.read_options().csv.delimiter, b'|');
}

#[test]
fn mapping_is_applied_to_parquet_like_batches() {
    // Pass-through of non-text columns the mapping does not touch.
    let dir = job_dir(&JOB.replace("drop_unmapped = true\n", ""));
    let job = Job::load(&dir.path().join("people.toml")).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("公民身份号码", DataType::Utf8, true),
        Field::new("性别", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["11010519491231002X"])) as ArrayRef,
            Arc::new(StringArray::from(vec!["女"])),
            Arc::new(arrow::array::Int64Array::from(vec![7])),
        ],
    )
    .unwrap();
    let out = job.mapping.apply(&batch).unwrap();
    let names: Vec<String> = out.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id_number", "性别", "n", "sex"]);
    assert_eq!(out.schema().field(2).data_type(), &DataType::Int64);
}

#[test]
fn spreadsheet_settings_are_checked_together() {
    let bad = r#"
name = "x"
dataset = "minzheng.people"
standard = "standards/people.json"

[dataset_info]
title = "t"
owner = "o"
sharing = "conditional"
update_cycle = "daily"

[source]
location = "exports/population.xlsx"
sheet = "人口"
sheets = []
header_row = 0
trailer_words = ["备注", " "]

[mapping]
rename = { "公民身份号码" = "id_number" }
"#;
    let found = problems(bad);
    let expect = [
        "source.sheets: give either sheet or sheets, not both",
        "source.sheets: must name at least one sheet",
        "source.header_row: must be a sheet row, 1 to 1048576; found 0",
        "source.trailer_words: a trailer word must not be empty",
    ];
    for needle in expect {
        assert!(found.iter().any(|p| p.contains(needle)), "missing {needle:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");

    // Good settings reach the reader, with the names a header row may carry.
    let good = bad
        .replace("sheets = []\n", "")
        .replace("header_row = 0", "header_row = 2")
        .replace(r#"["备注", " "]"#, r#"["备注"]"#);
    let dir = job_dir(&good);
    let job = Job::load(&dir.path().join("people.toml")).unwrap();
    let excel = job.read_options().excel;
    assert_eq!(
        (excel.sheets, excel.header_row, excel.trailer_words),
        (vec!["人口".to_owned()], Some(2), vec!["备注".to_owned()])
    );
    assert!(
        excel.header_names.iter().any(|n| n == "公民身份号码") && excel.header_names.iter().any(|n| n == "id_number")
    );
}
