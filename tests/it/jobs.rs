//! `civlink jobs list | run | history` over a job directory: schedules
//! with their next run, a broken job file named with its problem, a job run
//! by name, and its runs (a held one marked) with their counts.

use crate::common::{civlink_env, export_rows, job, text, write_gbk};

#[test]
fn jobs_are_listed_run_by_name_and_their_history_reads_at_a_glance() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    let (export, _, _, _) = export_rows();
    let csv = dir.path().join("people.csv");
    write_gbk(&csv, &export);
    let written = job(&jobs, "overwrite", csv.to_str().unwrap());
    let scheduled = std::fs::read_to_string(&written)
        .unwrap()
        .replace("mode = \"overwrite\"", "mode = \"overwrite\"\nschedule = \"0 0 2 * * *\"");
    std::fs::write(jobs.join("people.toml"), scheduled).unwrap();
    if written != jobs.join("people.toml") {
        std::fs::remove_file(&written).unwrap();
    }
    std::fs::write(jobs.join("broken.toml"), "name = \"broken\"\nmode = \"sideways\"\n").unwrap();
    let env = vec![("CIVLINK_JOBS_DIR".to_owned(), jobs.display().to_string())];

    let list = civlink_env(&data_dir, &["jobs", "list"], &env);
    let listed = text(&list);
    assert!(
        listed.contains("test-people") && listed.contains("0 0 2 * * *") && listed.contains("never run"),
        "{listed}"
    );
    assert!(listed.contains(" 02:00:00Z"), "the next run of a 02:00 schedule: {listed}");
    assert!(listed.contains("broken.toml") && listed.contains("sideways"), "a broken job is named: {listed}");

    let ran = civlink_env(&data_dir, &["jobs", "run", "test-people"], &env);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
    let unknown = civlink_env(&data_dir, &["jobs", "run", "no-such-job"], &env);
    assert_ne!(unknown.status.code(), Some(0));
    assert!(text(&unknown).contains("no job named \"no-such-job\""), "{}", text(&unknown));

    // The next delivery is empty: a gate holds it, and the history marks it.
    let header = export.lines().next().unwrap().to_owned() + "\n";
    write_gbk(&csv, &header);
    let held = civlink_env(&data_dir, &["jobs", "run", "test-people"], &env);
    assert_eq!(held.status.code(), Some(3), "{}", text(&held));
    let history = text(&civlink_env(&data_dir, &["jobs", "history", "test-people"], &env));
    let lines: Vec<&str> = history.lines().filter(|l| l.contains("test-people")).collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(lines.iter().any(|l| l.contains("committed")), "{history}");
    assert!(lines.iter().any(|l| l.trim_start().starts_with('!') && l.contains("held")), "{history}");
    let listed = text(&civlink_env(&data_dir, &["jobs", "list"], &env));
    assert!(listed.contains("held"), "the last outcome: {listed}");

    // The export is gone: the run fails, is recorded with its cause, and stands out.
    std::fs::remove_file(&csv).unwrap();
    let failed = civlink_env(&data_dir, &["jobs", "run", "test-people"], &env);
    assert_ne!(failed.status.code(), Some(0), "{}", text(&failed));
    let history = text(&civlink_env(&data_dir, &["jobs", "history", "test-people"], &env));
    assert!(
        history.lines().any(|l| l.trim_start().starts_with("!!") && l.contains("failed") && l.contains("people.csv")),
        "{history}"
    );
}
