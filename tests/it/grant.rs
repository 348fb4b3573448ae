//! `civlink grant create | list | revoke` end to end: grants made with their
//! columns, unmasking, purpose and expiry, refused when they name nothing
//! real, listed as a table, revoked, and every step in the audit log.

use std::path::Path;

use crate::common::{civlink, export_rows, has_row, job, text, write_gbk};

const DATASET: &str = "minzheng.test_people";

fn ok(data: &Path, args: &[&str]) -> String {
    let output = civlink(data, args);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {out}");
    out
}

fn refused(data: &Path, args: &[&str]) -> String {
    let output = civlink(data, args);
    let out = text(&output);
    assert_ne!(output.status.code(), Some(0), "{args:?} was accepted: {out}");
    out
}

#[test]
fn grants_are_made_listed_refused_and_revoked_with_an_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (export, _, _, _) = export_rows();
    write_gbk(&dir.path().join("people.csv"), &export);
    ok(&data, &["ingest", job(dir.path(), "append", "people.csv").to_str().unwrap()]);
    ok(&data, &["token", "create", "--user", "alice", "--role", "analyst", "--division", "630102000000"]);
    ok(&data, &["token", "create", "--user", "bob", "--role", "analyst", "--division", "630102000000"]);

    let out = ok(
        &data,
        &[
            "grant",
            "create",
            "--principal",
            "alice",
            "--dataset",
            DATASET,
            "--columns",
            "name,id_number",
            "--unmasked",
            "--purpose",
            "低保复核",
            "--purpose-required",
            "--expires",
            "30d",
            "--id",
            "g-alice",
        ],
    );
    assert!(out.contains("g-alice: principal alice reads minzheng.test_people (name,id_number) in clear"), "{out}");
    assert!(out.contains("must be stated") && out.contains("expires "), "{out}");
    let out = ok(&data, &["grant", "create", "--department", "gongan", "--dataset", DATASET, "--id", "g-gongan"]);
    assert!(out.contains("department gongan reads minzheng.test_people (every column) masked"), "{out}");
    assert!(out.contains("never expires"), "{out}");

    // Refusals: an existing id, an unknown principal, dataset or column, no subject or two, a past expiry.
    let base = ["grant", "create", "--dataset", DATASET];
    let with = |extra: &[&'static str]| -> Vec<&str> { base.iter().copied().chain(extra.iter().copied()).collect() };
    assert!(refused(&data, &with(&["--principal", "bob", "--id", "g-alice"])).contains("g-alice exists"));
    assert!(refused(&data, &with(&["--principal", "nobody"])).contains("unknown principal nobody"));
    assert!(refused(&data, &with(&["--principal", "bob", "--columns", "salary"])).contains("salary"));
    refused(&data, &with(&[]));
    refused(&data, &with(&["--principal", "bob", "--department", "gongan"]));
    refused(&data, &with(&["--principal", "bob", "--purpose-required"]));
    refused(&data, &with(&["--principal", "bob", "--expires-at", "2001-01-01T00:00:00Z"]));
    refused(&data, &["grant", "create", "--principal", "bob", "--dataset", "minzheng.nothing"]);

    let list = ok(&data, &["grant", "list"]);
    assert!(
        has_row(&list, &["ID", "SUBJECT", "DATASET", "COLUMNS", "SHOWN", "PURPOSE", "EXPIRES", "STATUS"]),
        "{list}"
    );
    assert!(has_row(
        &list,
        &["g-alice", "principal", "alice", DATASET, "name,id_number", "clear", "低保复核", "(required)"]
    ));
    assert!(has_row(&list, &["g-gongan", "department", "gongan", DATASET, "*", "masked", "-", "never", "live"]));
    let mine = ok(&data, &["grant", "list", "--principal", "alice"]);
    assert!(mine.contains("g-alice") && !mine.contains("g-gongan"), "{mine}");
    assert_eq!(ok(&data, &["grant", "list", "--dataset", "gongan.population"]), "no grants\n");
    refused(&data, &["grant", "list", "--principal", "nobody"]);

    assert!(ok(&data, &["grant", "revoke", "g-alice"]).contains("grant g-alice revoked"));
    assert!(refused(&data, &["grant", "revoke", "g-alice"]).contains("unknown grant g-alice"));
    assert!(!ok(&data, &["grant", "list"]).contains("g-alice"));

    let log = ok(&data, &["audit", "log", "--limit", "50"]);
    for action in ["grant ", "grant_list", "grant_revoke"] {
        assert!(log.contains(action), "no {action} in\n{log}");
    }
    assert!(ok(&data, &["audit", "verify"]).contains("audit log intact"));
}
