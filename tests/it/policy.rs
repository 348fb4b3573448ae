//! `civlink token` and `civlink audit` end to end: tokens are printed once and
//! never stored, listed without secrets, revoked; the audit log verifies
//! intact, and names the entries after the SQLite file is tampered with
//! directly.

use std::path::Path;
use std::process::Command;

use crate::common::{civlink, has_row, text};

/// `token create` and the printed token (`clk_<id>_<secret>`) with its id.
fn create(data: &Path, args: &[&str]) -> (String, String, String) {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    let output = civlink(data, &all);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("clk_"))
        .unwrap_or_else(|| panic!("no token in {out}"))
        .to_owned();
    let id = token.split('_').nth(1).unwrap().to_owned();
    (token, id, out)
}

/// Run SQL on the catalog's SQLite file, underneath civlink.
/// A copy of a data directory (the SQLite catalog and its tables).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn tamper(data: &Path, sql: &str) {
    let db = data.join("catalog.db");
    let output = Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"])
        .arg(&db)
        .arg(sql)
        .output()
        .expect("run python3");
    assert!(output.status.success(), "{sql}: {}", text(&output));
}

/// Every byte civlink left in the data directory's SQLite files.
fn catalog_bytes(data: &Path) -> Vec<u8> {
    ["catalog.db", "catalog.db-wal", "catalog.db-shm"]
        .iter()
        .filter_map(|f| std::fs::read(data.join(f)).ok())
        .flatten()
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn tokens_are_shown_once_listed_without_secrets_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (alice, alice_id, out) = create(
        &data,
        &[
            "--user",
            "alice",
            "--role",
            "analyst",
            "--division",
            "630102000000",
            "--department",
            "minzheng",
            "--expires",
            "30d",
        ],
    );
    assert!(out.contains("county 630102 城东区"), "{out}");
    assert!(out.contains("民政"), "{out}");
    assert!(out.contains("cannot be shown again"), "{out}");
    assert!(out.contains("expires "), "{out}");
    assert_eq!(alice.len(), "clk_".len() + 16 + 1 + 64, "{alice}");
    let (svc, svc_id, out) =
        create(&data, &["--user", "svc-gongan", "--role", "department_service", "--division", "630000"]);
    assert!(out.contains("province 63 青海省"), "{out}");
    assert!(out.contains("never expires"), "{out}");

    // The secrets are stored nowhere: not in the catalog, not in the listing.
    let bytes = catalog_bytes(&data);
    assert!(!bytes.is_empty());
    for token in [&alice, &svc] {
        let secret = &token[token.len() - 64..];
        assert!(!contains(&bytes, secret), "the secret of {token} is in the catalog file");
    }
    let list = civlink(&data, &["token", "list"]);
    let out = text(&list);
    assert_eq!(list.status.code(), Some(0), "{out}");
    assert!(has_row(&out, &[&alice_id, "alice", "analyst", "630102000000"]), "{out}");
    assert!(has_row(&out, &[&svc_id, "svc-gongan", "department_service", "630000000000"]), "{out}");
    assert!(out.lines().filter(|l| l.trim_end().ends_with("active")).count() == 2, "{out}");
    assert!(!out.contains(&alice[alice.len() - 64..]) && !out.contains(&svc[svc.len() - 64..]), "{out}");

    // Revocation, idempotent; an unknown id is an error.
    let revoke = civlink(&data, &["token", "revoke", &alice_id]);
    assert_eq!(revoke.status.code(), Some(0), "{}", text(&revoke));
    assert!(text(&revoke).contains("revoked"));
    let again = civlink(&data, &["token", "revoke", &alice_id]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("already revoked"));
    let unknown = civlink(&data, &["token", "revoke", "0123456789abcdef"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains("unknown token 0123456789abcdef"), "{}", text(&unknown));
    let out = text(&civlink(&data, &["token", "list"]));
    assert!(out.lines().any(|l| l.starts_with(&alice_id) && l.trim_end().ends_with("revoked")), "{out}");

    // Refused arguments: nothing is created.
    for (args, expected) in [
        (vec!["--user", "x", "--role", "analyst", "--division", "999999999999"], "not in the division table"),
        (vec!["--user", "x", "--role", "analyst", "--division", "63010200000x"], "--division"),
        (vec!["--user", "x", "--role", "root", "--division", "630102000000"], "not a role"),
        (vec!["--user", "x", "--role", "analyst", "--division", "630102000000", "--expires", "30s"], "lifetime"),
        (vec!["--user", "x", "--role", "analyst", "--division", "630102000000", "--department", "police"], "police"),
        (vec!["--user", "", "--role", "analyst", "--division", "630102000000"], "empty"),
    ] {
        let mut all = vec!["token", "create"];
        all.extend_from_slice(&args);
        let output = civlink(&data, &all);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {out}");
        assert!(out.contains(expected), "{args:?}: {out}");
    }
    let out = text(&civlink(&data, &["token", "list"]));
    assert_eq!(out.lines().count(), 3, "{out}");

    // Every issue and revocation is audited, without secrets.
    let verify = civlink(&data, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    assert!(text(&verify).contains("audit log intact: 3 entries"), "{}", text(&verify));
    let log = civlink(&data, &["audit", "log"]);
    let out = text(&log);
    assert_eq!(log.status.code(), Some(0), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("token_create")).count(), 2, "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("token_revoke")).count(), 1, "{out}");
    assert!(!out.contains(&alice[alice.len() - 64..]), "{out}");
    let limited = text(&civlink(&data, &["audit", "log", "--limit", "1"]));
    assert_eq!(limited.lines().count(), 2, "{limited}");
    assert!(limited.contains("token_revoke"), "{limited}");
}

#[test]
fn audit_verify_names_entries_tampered_with_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let empty = civlink(&data, &["audit", "verify"]);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));
    assert!(text(&empty).contains("0 entries"));
    let empty_log = civlink(&data, &["audit", "log"]);
    assert!(text(&empty_log).contains("the audit log is empty"), "{}", text(&empty_log));
    for user in ["a", "b", "c", "d", "e"] {
        create(&data, &["--user", user, "--role", "analyst", "--division", "630102000000"]);
    }
    let verify = civlink(&data, &["audit", "verify"]);
    let out = text(&verify);
    assert_eq!(verify.status.code(), Some(0), "{out}");
    assert!(out.contains("audit log intact: 5 entries; head 5:"), "{out}");
    let head: String = out.split("head ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let expect = |data: &Path, heads: &[&str]| {
        let mut args = vec!["audit", "verify"];
        for h in heads {
            args.extend(["--expect-head", h]);
        }
        civlink(data, &args)
    };
    assert_eq!(expect(&data, &[&head]).status.code(), Some(0));
    // A checkpoint file is read the same way; a malformed anchor is a usage error.
    let checkpoint = dir.path().join("audit.head");
    std::fs::write(&checkpoint, format!("{head}\n")).unwrap();
    let from_file = civlink(&data, &["audit", "verify", "--checkpoint", checkpoint.to_str().unwrap()]);
    assert_eq!(from_file.status.code(), Some(0), "{}", text(&from_file));
    assert_eq!(expect(&data, &["5:nothex"]).status.code(), Some(2));

    // The tail cut: the chain alone looks intact; the recorded head says otherwise.
    let cut = dir.path().join("cut");
    copy_dir(&data, &cut);
    tamper(&cut, "DELETE FROM audit_log WHERE seq = 5");
    assert_eq!(civlink(&cut, &["audit", "verify"]).status.code(), Some(0));
    let out = text(&expect(&cut, &[&head]));
    assert!(has_row(&out, &["entry", "5", "truncated"]), "{out}");
    // The chain rewritten from entry 5 with a recomputed hash: a new entry in its place.
    create(&cut, &["--user", "mallory", "--role", "admin", "--division", "630000000000"]);
    assert_eq!(civlink(&cut, &["audit", "verify"]).status.code(), Some(0));
    let rewritten = expect(&cut, &[&head]);
    assert_eq!(rewritten.status.code(), Some(1));
    assert!(has_row(&text(&rewritten), &["entry", "5", "rewritten"]), "{}", text(&rewritten));

    // Edited.
    tamper(&data, "UPDATE audit_log SET outcome = 'ok: nothing happened' WHERE seq = 2");
    let verify = civlink(&data, &["audit", "verify"]);
    let out = text(&verify);
    assert_eq!(verify.status.code(), Some(1), "{out}");
    assert!(out.contains("audit log TAMPERED: 1 problem(s) in 5 entries"), "{out}");
    assert!(has_row(&out, &["entry", "2", "edited"]), "{out}");

    // Deleted, on top.
    tamper(&data, "DELETE FROM audit_log WHERE seq = 4");
    let out = text(&civlink(&data, &["audit", "verify"]));
    assert!(has_row(&out, &["entry", "2", "edited"]), "{out}");
    assert!(has_row(&out, &["entry", "4", "deleted", "entry", "4", "is", "missing"]), "{out}");

    // Inserted: a forged entry in the hole.
    tamper(
        &data,
        "INSERT INTO audit_log (seq, at, principal, action, datasets, outcome, prev_hash, hash) VALUES \
         (4, '2026-01-01T00:00:00.000000000Z', 'mallory', 'query', '[]', 'ok', 'forged', 'forged')",
    );
    let verify = civlink(&data, &["audit", "verify"]);
    let out = text(&verify);
    assert_eq!(verify.status.code(), Some(1), "{out}");
    assert!(out.contains("2 problem(s) in 5 entries"), "{out}");
    assert!(has_row(&out, &["entry", "2", "edited"]), "{out}");
    assert!(has_row(&out, &["entry", "4", "inserted"]), "{out}");
}

/// Two `civlink serve` processes sharing one PostgreSQL catalog: a token
/// revoked through the CLI (a third process) is refused by both on their
/// next request, without a restart.
#[test]
fn two_servers_sharing_a_postgres_catalog_both_refuse_a_revoked_token() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let database = runtime.block_on(civlink_testkit::postgres::PgDatabase::create());
    let outcome = std::panic::catch_unwind(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let env = vec![("CIVLINK_CATALOG_URL".to_owned(), database.url.clone())];
        let run = |args: &[&str]| {
            let output = crate::common::civlink_env(&data, args, &env);
            assert_eq!(output.status.code(), Some(0), "{args:?}: {}", text(&output));
            text(&output)
        };
        let created =
            run(&["token", "create", "--user", "svc-renshe", "--role", "department_service", "--division", "630000"]);
        let token = created.lines().map(str::trim).find(|l| l.starts_with("clk_")).expect("a token").to_owned();
        let token_id = token.split('_').nth(1).unwrap().to_owned();

        let first = crate::common::Server::start(&data, &env);
        let second = crate::common::Server::start(&data, &env);
        for server in [&first, &second] {
            let (status, body) = server.get("/api/v1/datasets", &token);
            assert_eq!(status, 200, "{body}");
        }
        run(&["token", "revoke", &token_id]);
        for server in [&first, &second] {
            let (status, body) = server.get("/api/v1/datasets", &token);
            assert_eq!(status, 401, "a revoked token was served: {body}");
            assert!(body.contains("revoked"), "{body}");
        }
        // A token issued after both started is known to both at once.
        let again =
            run(&["token", "create", "--user", "svc-renshe-2", "--role", "department_service", "--division", "630000"]);
        let fresh = again.lines().map(str::trim).find(|l| l.starts_with("clk_")).expect("a token").to_owned();
        for server in [&first, &second] {
            assert_eq!(server.get("/api/v1/datasets", &fresh).0, 200);
        }
        first.stop();
        second.stop();
    });
    runtime.block_on(database.drop());
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn serve_checkpoints_the_audit_head_and_verify_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (token, _, _) = create(&data, &["--user", "analyst", "--role", "analyst", "--division", "630000"]);
    let checkpoint = dir.path().join("audit.head");
    let env = [
        ("CIVLINK_AUDIT_CHECKPOINT".to_owned(), checkpoint.display().to_string()),
        ("CIVLINK_AUDIT_CHECKPOINT_SECS".to_owned(), "1".to_owned()),
    ];
    let server = crate::common::Server::start(&data, &env);
    // Audited requests: a listing, and a refused token.
    assert_eq!(server.get("/api/v1/datasets", &token).0, 200);
    assert_eq!(server.get("/api/v1/datasets", "clk_nonsense").0, 401);
    // The head is written at once and then every second: wait for one that covers both requests.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let head = loop {
        let head = std::fs::read_to_string(&checkpoint).unwrap_or_default();
        let seq: i64 = head.split(':').next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        if seq >= 2 {
            break head;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint past the requests: {head:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    server.stop();
    let (seq, hash) = head.trim().split_once(':').expect("SEQ:HASH");
    assert!(seq.parse::<i64>().is_ok() && hash.len() == 64, "{head}");

    let verified = civlink(&data, &["audit", "verify", "--checkpoint", checkpoint.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    // A head the chain does not hold (a cut tail, or a rewritten one) fails.
    std::fs::write(&checkpoint, format!("{seq}:{}\n", "0".repeat(64))).unwrap();
    let rewritten = civlink(&data, &["audit", "verify", "--checkpoint", checkpoint.to_str().unwrap()]);
    assert_ne!(rewritten.status.code(), Some(0), "{}", text(&rewritten));
}
