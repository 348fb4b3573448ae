//! Principals, tokens, grants, access decisions and the audit chain against
//! both backends (SQLite, and a fresh PostgreSQL database per test).

use std::collections::HashSet;

use chrono::{Duration, Utc};
use civlink_catalog::model::{DatasetId, DatasetSpec, Department, SharingType, UpdateCycle};
use civlink_catalog::policy::{
    AuditAction, AuditEntry, AuditOutcome, AuditProblemKind, Error, Grant, GrantSubject, Principal, Role, TOKEN_PREFIX,
};
use civlink_catalog::store::{AuditFilter, Error as StoreError, MetadataStore};
use civlink_standards::division::DivisionCode;
use civlink_standards::mask::MaskStrategy;
use civlink_standards::shipped::SHIPPED;
use civlink_standards::standard::Sensitivity;
use sha2::{Digest, Sha256};

use crate::store::{on_both_backends, raw};

pub(crate) fn population() -> DatasetId {
    "gongan.population".parse().unwrap()
}

pub(crate) fn principal(name: &str, department: Option<Department>, role: Role, division: &str) -> Principal {
    Principal { name: name.into(), department, role, division: DivisionCode::parse(division).unwrap() }
}

/// Register the shipped population standard and `gongan.population` under it.
pub(crate) async fn register_population(store: &MetadataStore, sharing: SharingType) {
    let (id, document) = SHIPPED[0];
    store.register_standard(id, "1.0.0", document).await.unwrap();
    let spec = DatasetSpec {
        id: population(),
        title: "户籍人口信息".into(),
        owner: "省公安厅户籍管理处".into(),
        description: String::new(),
        standard_id: id.into(),
        standard_version: "1.0.0".into(),
        classification: Sensitivity::Sensitive,
        sharing,
        update_cycle: UpdateCycle::Daily,
        division_column: Some("division_code".into()),
        primary_key: vec!["id_number".into()],
    };
    store.upsert_dataset(&spec, "file:///t/population", "file:///t/population__q").await.unwrap();
}

/// Run a statement underneath the store.
async fn exec(pool: &sqlx::AnyPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_upsert_and_read_back() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        assert_eq!(store.principal("张三").await.unwrap(), None);
        let zhang = principal("张三", Some(Department::Minzheng), Role::Analyst, "630102000000");
        store.create_principal(&zhang).await.unwrap();
        assert_eq!(store.principal("张三").await.unwrap(), Some(zhang.clone()));
        let promoted = Principal { role: Role::StandardsAdmin, department: None, ..zhang.clone() };
        store.create_principal(&promoted).await.unwrap();
        assert_eq!(store.principal("张三").await.unwrap(), Some(promoted.clone()));
        let svc = principal("svc-gongan", Some(Department::Gongan), Role::DepartmentService, "630000000000");
        store.create_principal(&svc).await.unwrap();
        assert_eq!(store.principals().await.unwrap(), [svc, promoted]);
        for bad in ["", " padded", "a\u{0}b"] {
            let err = store.create_principal(&Principal { name: bad.into(), ..zhang.clone() }).await.unwrap_err();
            assert!(matches!(err, Error::Invalid { what: "principal", .. }), "{bad:?}: {err}");
        }
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_authenticate_expire_and_revoke() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let alice = principal("alice", Some(Department::Minzheng), Role::Analyst, "630102000000");
        store.create_principal(&alice).await.unwrap();

        let token = store.create_token("alice", None).await.unwrap();
        assert!(token.secret.starts_with(&format!("{TOKEN_PREFIX}{}_", token.id)), "{}", token.id);
        assert_eq!(store.authenticate(&token.secret).await.unwrap(), alice);

        // Only the hash is stored; the secret appears in no column.
        let pool = raw(&url).await;
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, principal, hash, created_at FROM tokens").fetch_all(&pool).await.unwrap();
        assert_eq!(rows.len(), 1);
        let secret_part = &token.secret[token.secret.len() - 64..];
        for (id, principal, hash, created_at) in &rows {
            for value in [id, principal, hash, created_at] {
                assert!(!value.contains(secret_part), "{value}");
            }
            assert_eq!(*hash, hex::encode(Sha256::digest(token.secret.as_bytes())));
        }

        // Garbage, a wrong secret for a real id, an unknown id.
        let wrong_secret = format!("{TOKEN_PREFIX}{}_{}", token.id, "0".repeat(64));
        let unknown = format!("{TOKEN_PREFIX}{}_{}", "0123456789abcdef", "0".repeat(64));
        for bad in ["", "garbage", "clk_", "Bearer x", "clk_😀_😀", &token.secret[..token.secret.len() - 1]] {
            assert_eq!(store.authenticate(bad).await.unwrap_err(), Error::BadToken, "{bad:?}");
        }
        assert_eq!(store.authenticate(&wrong_secret).await.unwrap_err(), Error::BadToken);
        assert_eq!(
            store.authenticate(&unknown).await.unwrap_err(),
            Error::UnknownToken { id: "0123456789abcdef".into() }
        );

        // Expiry: in the future works; moved into the past (underneath), it is refused.
        let expiring = store.create_token("alice", Some(Utc::now() + Duration::hours(1))).await.unwrap();
        assert_eq!(store.authenticate(&expiring.secret).await.unwrap(), alice);
        let past = (Utc::now() - Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        exec(&pool, &format!("UPDATE tokens SET expires_at = '{past}' WHERE id = '{}'", expiring.id)).await;
        assert_eq!(
            store.authenticate(&expiring.secret).await.unwrap_err(),
            Error::TokenExpired { id: expiring.id.clone() }
        );
        let err = store.create_token("alice", Some(Utc::now() - Duration::minutes(1))).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "token expiry", .. }), "{err}");
        assert_eq!(
            store.create_token("nobody", None).await.unwrap_err(),
            Error::UnknownPrincipal { name: "nobody".into() }
        );

        // Revocation, idempotent; unknown ids are reported.
        store.revoke_token(&token.id).await.unwrap();
        store.revoke_token(&token.id).await.unwrap();
        assert_eq!(store.authenticate(&token.secret).await.unwrap_err(), Error::TokenRevoked { id: token.id.clone() });
        assert_eq!(store.revoke_token("nope").await.unwrap_err(), Error::UnknownToken { id: "nope".into() });
        // A wrong secret for a revoked token says nothing about the revocation.
        assert_eq!(store.authenticate(&wrong_secret).await.unwrap_err(), Error::BadToken);

        let listed = store.tokens().await.unwrap();
        assert_eq!(listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), [&token.id, &expiring.id]);
        let now = Utc::now();
        assert_eq!(listed.iter().map(|t| t.status(now)).collect::<Vec<_>>(), ["revoked", "expired"]);
        assert!(listed.iter().all(|t| t.principal == "alice"));
        let expires_at = store.token(&expiring.id).await.unwrap().unwrap().expires_at;
        assert_eq!(expires_at, Some(chrono::DateTime::parse_from_rfc3339(&past).unwrap().to_utc()));

        pool.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_by_principal_and_by_department_decide_access() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        register_population(&store, SharingType::Conditional).await;
        let bob = principal("bob", Some(Department::Minzheng), Role::Analyst, "630102000000");
        let carol = principal("carol", Some(Department::Renshe), Role::Analyst, "630000000000");
        let owner = principal("dan", Some(Department::Gongan), Role::DepartmentService, "630100000000");
        let admin = principal("root", None, Role::Admin, "630000000000");
        for p in [&bob, &carol, &owner, &admin] {
            store.create_principal(p).await.unwrap();
        }
        assert_eq!(store.access(&bob, &population()).await.unwrap(), None);
        assert!(store.readable(&bob).await.unwrap().is_empty());
        // The owning department and admin read without grants, masked.
        let own = store.access(&owner, &population()).await.unwrap().unwrap();
        assert_eq!(own.row_prefix.as_deref(), Some("6301"));
        assert_eq!(own.column("name").unwrap().mask, MaskStrategy::Name);
        let all = store.access(&admin, &population()).await.unwrap().unwrap();
        assert_eq!(all.row_prefix, None);

        // By department: bob's department, three columns, masked.
        let expires = Utc::now() + Duration::days(30) + Duration::nanoseconds(123_456_789);
        let to_minzheng = Grant {
            id: "g-minzheng".into(),
            subject: GrantSubject::Department(Department::Minzheng),
            dataset: population(),
            columns: Some(vec!["division_code".into(), "name".into(), "sex".into()]),
            unmasked: false,
            purpose: Some("低保资格核查".into()),
            purpose_required: false,
            expires_at: Some(expires),
        };
        store.grant(&to_minzheng).await.unwrap();
        let access = store.access(&bob, &population()).await.unwrap().unwrap();
        let mut columns: Vec<(&str, MaskStrategy)> = access.columns.iter().map(|c| (c.name.as_str(), c.mask)).collect();
        columns.sort_by_key(|c| c.0);
        assert_eq!(
            columns,
            [("division_code", MaskStrategy::None), ("name", MaskStrategy::Name), ("sex", MaskStrategy::None)]
        );
        assert_eq!(access.row_filter(), Some(("division_code", "630102")));
        assert_eq!(store.access(&carol, &population()).await.unwrap(), None);

        // By principal: every column, unmasked.
        let to_carol = Grant {
            id: "g-carol".into(),
            subject: GrantSubject::Principal("carol".into()),
            dataset: population(),
            columns: None,
            unmasked: true,
            purpose: None,
            purpose_required: false,
            expires_at: None,
        };
        store.grant(&to_carol).await.unwrap();
        let access = store.access(&carol, &population()).await.unwrap().unwrap();
        assert!(access.columns.iter().all(|c| c.mask.is_none()));
        assert!(access.column("id_number").is_some());
        assert_eq!(access.row_prefix.as_deref(), Some("63"));
        let readable = store.readable(&carol).await.unwrap();
        assert_eq!(readable.len(), 1);
        assert_eq!((readable[0].0.spec.id.clone(), &readable[0].1), (population(), &access));

        // Both grants read back exactly (expiry to the nanosecond).
        let grants = store.grants_for(&population()).await.unwrap();
        let mut expected = [to_minzheng.clone(), to_carol.clone()];
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        let mut got = grants.clone();
        got.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(got, expected);

        // An expired grant opens nothing.
        let eve = principal("eve", Some(Department::Weijian), Role::Analyst, "630000000000");
        store.create_principal(&eve).await.unwrap();
        let expired = Grant {
            id: "g-eve".into(),
            subject: GrantSubject::Principal("eve".into()),
            expires_at: Some(Utc::now() - Duration::seconds(1)),
            ..to_carol.clone()
        };
        store.grant(&expired).await.unwrap();
        assert_eq!(store.access(&eve, &population()).await.unwrap(), None);

        // Replacing a grant by id; withdrawing it.
        store.grant(&Grant { unmasked: false, ..to_carol.clone() }).await.unwrap();
        let access = store.access(&carol, &population()).await.unwrap().unwrap();
        // The shipped standard masks ID numbers as keyed pseudonyms.
        assert_eq!(access.column("id_number").unwrap().mask, MaskStrategy::Pseudonym);
        store.revoke_grant("g-carol").await.unwrap();
        assert_eq!(store.access(&carol, &population()).await.unwrap(), None);
        assert!(matches!(store.revoke_grant("g-carol").await, Err(Error::UnknownGrant { .. })));
        // Creating never replaces: the second create of one id is refused, whatever it grants.
        store.create_grant(&to_carol).await.unwrap();
        let again = store.create_grant(&Grant { unmasked: !to_carol.unmasked, ..to_carol.clone() }).await;
        assert!(matches!(again, Err(Error::GrantExists { .. })), "{again:?}");
        let kept = store.grants().await.unwrap().into_iter().find(|g| g.id == "g-carol").unwrap();
        assert_eq!(kept.unmasked, to_carol.unmasked);
        store.revoke_grant("g-carol").await.unwrap();

        // Refusals.
        let err = store.grant(&Grant { dataset: "gongan.nothing".parse().unwrap(), ..to_carol.clone() }).await;
        assert!(matches!(err, Err(Error::Store(StoreError::UnknownDataset { .. }))), "{err:?}");
        let err = store.grant(&Grant { columns: Some(vec!["salary".into()]), ..to_carol.clone() }).await;
        assert!(matches!(err, Err(Error::Invalid { what: "grant", .. })), "{err:?}");
        let err = store.grant(&Grant { subject: GrantSubject::Principal("ghost".into()), ..to_carol.clone() }).await;
        assert_eq!(err, Err(Error::UnknownPrincipal { name: "ghost".into() }));
        let err = store.access(&carol, &"gongan.nothing".parse().unwrap()).await;
        assert!(matches!(err, Err(Error::Store(StoreError::UnknownDataset { .. }))), "{err:?}");

        // A dataset bound to an unregistered standard version.
        let mut spec = store.dataset(&population()).await.unwrap().unwrap().spec;
        spec.standard_version = "9.9.9".into();
        store.upsert_dataset(&spec, "file:///t/population", "file:///t/population__q").await.unwrap();
        let err = store.access(&admin, &population()).await;
        assert!(matches!(err, Err(Error::MissingStandard { .. })), "{err:?}");
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscoped_datasets_are_for_province_level_only() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        // The standard declares no division column, and neither does the dataset.
        let document = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","x-civlink-id":"minzheng.stats",
            "x-civlink-version":"1","title":"统计","type":"object",
            "properties":{"year":{"type":"integer","title":"年度"},"total":{"type":"integer","title":"合计"}}}"#;
        store.register_standard("minzheng.stats", "1", document).await.unwrap();
        let spec = DatasetSpec {
            id: "minzheng.stats".parse().unwrap(),
            title: "统计".into(),
            owner: "民政厅".into(),
            description: String::new(),
            standard_id: "minzheng.stats".into(),
            standard_version: "1".into(),
            classification: Sensitivity::Public,
            sharing: SharingType::Unconditional,
            update_cycle: UpdateCycle::Yearly,
            division_column: None,
            primary_key: vec!["year".into()],
        };
        store.upsert_dataset(&spec, "file:///t/stats", "file:///t/stats__q").await.unwrap();
        let county = principal("county", None, Role::Analyst, "630102000000");
        let province = principal("province", None, Role::Analyst, "630000000000");
        assert_eq!(store.access(&county, &spec.id).await.unwrap(), None);
        let access = store.access(&province, &spec.id).await.unwrap().unwrap();
        assert_eq!(access.row_filter(), None);
        assert_eq!(access.columns.len(), 2);
        store.close().await;
    })
    .await;
}

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        at: Utc::now() + Duration::nanoseconds(i as i64),
        principal: format!("analyst-{i}"),
        purpose: i.is_multiple_of(2).then(|| "低保资格核查".to_owned()),
        action: if i == 1 { AuditAction::Handshake } else { AuditAction::Query },
        sql_text: (i > 1).then(|| format!("SELECT name FROM gongan.population WHERE name = '张{i}' -- \"x\"")),
        datasets: if i > 1 { vec!["gongan.population".into()] } else { vec![] },
        rows: (i > 1).then_some(i * 10),
        duration_ms: (i > 1).then_some(i),
        outcome: AuditOutcome::OK,
    }
}

fn kinds(report: &civlink_catalog::policy::AuditReport) -> Vec<(i64, AuditProblemKind)> {
    report.problems.iter().map(|p| (p.seq, p.kind)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_names_every_tampered_entry() {
    use AuditProblemKind::*;
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let empty = store.verify_audit().await.unwrap();
        assert!(empty.intact() && empty.entries == 0 && empty.head.is_none(), "{empty:?}");
        let entries: Vec<AuditEntry> = (1..=6).map(entry).collect();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(store.append_audit(e).await.unwrap(), i as i64 + 1);
        }
        let report = store.verify_audit().await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.entries, 6);
        let records = store.audit_entries(None).await.unwrap();
        assert_eq!(records.iter().map(|r| &r.entry).collect::<Vec<_>>(), entries.iter().collect::<Vec<_>>());
        assert_eq!(records[0].prev_hash, civlink_catalog::policy::GENESIS_HASH);
        assert!(records.windows(2).all(|w| w[1].prev_hash == w[0].hash));
        let head = report.head.clone().unwrap();
        assert_eq!((head.seq, head.hash.as_str()), (6, records[5].hash.as_str()));
        let tail = store.audit_entries(Some(2)).await.unwrap();
        assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 6]);

        let pool = raw(&url).await;
        exec(&pool, "CREATE TABLE audit_backup AS SELECT * FROM audit_log").await;
        let restore = || async {
            exec(&pool, "DELETE FROM audit_log").await;
            exec(&pool, "INSERT INTO audit_log SELECT * FROM audit_backup").await;
            let report = store.verify_audit().await.unwrap();
            assert!(report.intact(), "after restoring: {report:?}");
        };

        // Edited: the SQL of entry 2, then the row count of entry 5.
        exec(&pool, "UPDATE audit_log SET sql_text = 'SELECT 1' WHERE seq = 2").await;
        let report = store.verify_audit().await.unwrap();
        assert_eq!(kinds(&report), [(2, Edited)], "{report:?}");
        restore().await;
        exec(&pool, "UPDATE audit_log SET rows = 999 WHERE seq = 5").await;
        assert_eq!(kinds(&store.verify_audit().await.unwrap()), [(5, Edited)]);
        restore().await;
        // Edited and re-hashed: the next entry no longer chains from it.
        exec(&pool, &format!("UPDATE audit_log SET outcome = 'denied', hash = '{}' WHERE seq = 3", "f".repeat(64)))
            .await;
        assert_eq!(kinds(&store.verify_audit().await.unwrap()), [(3, Edited)]);
        restore().await;

        // Deleted: a middle entry, then the first.
        exec(&pool, "DELETE FROM audit_log WHERE seq = 4").await;
        let report = store.verify_audit().await.unwrap();
        assert_eq!(kinds(&report), [(4, Deleted)], "{report:?}");
        assert_eq!(report.entries, 5);
        // Inserted: a forged entry in the hole.
        exec(
            &pool,
            "INSERT INTO audit_log (seq, at, principal, action, datasets, outcome, prev_hash, hash) VALUES \
             (4, '2026-01-01T00:00:00.000000000Z', 'mallory', 'query', '[]', 'ok', 'forged', 'forged')",
        )
        .await;
        assert_eq!(kinds(&store.verify_audit().await.unwrap()), [(4, Inserted)]);
        restore().await;
        exec(&pool, "DELETE FROM audit_log WHERE seq = 1").await;
        assert_eq!(kinds(&store.verify_audit().await.unwrap()), [(1, Deleted)]);
        restore().await;

        // Inserted: a forged entry appended after the last one.
        exec(
            &pool,
            "INSERT INTO audit_log (seq, at, principal, action, datasets, outcome, prev_hash, hash) VALUES \
             (7, '2026-01-01T00:00:00.000000000Z', 'mallory', 'query', '[]', 'ok', 'forged', 'forged')",
        )
        .await;
        assert_eq!(kinds(&store.verify_audit().await.unwrap()), [(7, Inserted)]);
        restore().await;

        // Reordered: entries 2 and 3 swap places.
        exec(&pool, "UPDATE audit_log SET seq = -2 WHERE seq = 2").await;
        exec(&pool, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
        exec(&pool, "UPDATE audit_log SET seq = 3 WHERE seq = -2").await;
        assert_eq!(kinds(&store.verify_audit().await.unwrap()), [(2, Reordered), (3, Reordered)]);
        restore().await;

        // A value that does not even decode is an edit, not a failure to verify.
        exec(&pool, "UPDATE audit_log SET datasets = 'not json' WHERE seq = 6").await;
        assert_eq!(kinds(&store.verify_audit().await.unwrap()), [(6, Edited)]);
        restore().await;

        // Appending after a restore continues the chain.
        assert_eq!(store.append_audit(&entry(7)).await.unwrap(), 7);
        assert!(store.verify_audit().await.unwrap().intact());
        pool.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_kept_outside_the_database_shows_a_cut_tail_and_a_rewritten_chain() {
    use AuditProblemKind::*;
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        for i in 1..=5 {
            store.append_audit(&entry(i)).await.unwrap();
        }
        let head = store.audit_head().await.unwrap().unwrap();
        assert_eq!(head, store.verify_audit().await.unwrap().head.unwrap());
        assert!(store.verify_audit_anchored(std::slice::from_ref(&head)).await.unwrap().intact());
        let pool = raw(&url).await;

        // The tail cut: the chain itself is still consistent.
        exec(&pool, "DELETE FROM audit_log WHERE seq > 3").await;
        assert!(store.verify_audit().await.unwrap().intact());
        let report = store.verify_audit_anchored(std::slice::from_ref(&head)).await.unwrap();
        assert_eq!(kinds(&report), [(4, Truncated)], "{report:?}");

        // The chain rewritten from entry 3 on, with recomputed hashes, and as
        // long as before: consistent again, but not the recorded head.
        exec(&pool, "DELETE FROM audit_log WHERE seq > 2").await;
        for i in 3..=5 {
            let mut forged = entry(i);
            forged.principal = "mallory".into();
            store.append_audit(&forged).await.unwrap();
        }
        assert!(store.verify_audit().await.unwrap().intact());
        let report = store.verify_audit_anchored(std::slice::from_ref(&head)).await.unwrap();
        assert_eq!(kinds(&report), [(5, Rewritten)], "{report:?}");
        // An anchor inside the untouched part still holds.
        let records = store.audit_entries(None).await.unwrap();
        let early = civlink_catalog::policy::AuditHead { seq: 2, hash: records[1].hash.clone() };
        assert!(store.verify_audit_anchored(&[early]).await.unwrap().intact());
        pool.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_keep_the_chain_valid() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        // A second store: a separate pool, as another process would have.
        let other = MetadataStore::connect(&url).await.unwrap();
        let mut tasks = Vec::new();
        for task in 0..8u64 {
            let store = if task % 2 == 0 { store.clone() } else { other.clone() };
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..10 {
                    seqs.push(store.append_audit(&entry(task * 100 + i)).await.unwrap());
                }
                seqs
            }));
        }
        let mut seqs = HashSet::new();
        for task in tasks {
            for seq in task.await.unwrap() {
                assert!(seqs.insert(seq), "seq {seq} handed out twice");
            }
        }
        assert_eq!(seqs, (1..=80).collect());
        let report = store.verify_audit().await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.entries, 80);
        other.close().await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purpose_requiring_grants_round_trip_and_refuse_without_a_purpose() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        register_population(&store, SharingType::Conditional).await;
        let carol = principal("carol", Some(Department::Renshe), Role::Analyst, "630000000000");
        store.create_principal(&carol).await.unwrap();
        let grant = Grant {
            id: "g-purpose".into(),
            subject: GrantSubject::Principal("carol".into()),
            dataset: population(),
            columns: None,
            unmasked: true,
            purpose: Some("低保资格核查".into()),
            purpose_required: true,
            expires_at: None,
        };
        store.grant(&grant).await.unwrap();
        assert_eq!(store.grants().await.unwrap(), std::slice::from_ref(&grant));
        assert_eq!(store.grants_for(&population()).await.unwrap(), std::slice::from_ref(&grant));
        let snapshot = store.policy_snapshot(None).await.unwrap();
        let datasets = [population().to_string()];
        let refused = snapshot.purpose_required(&carol, &datasets, None, Utc::now()).expect("refused");
        assert_eq!((refused.dataset, refused.grant.as_str()), (population(), "g-purpose"));
        assert_eq!(snapshot.purpose_required(&carol, &datasets, Some("复核"), Utc::now()), None);
        // The access decision itself is unchanged: the refusal is a separate, typed answer.
        assert!(snapshot.access(&carol, &population(), Utc::now()).is_some());
        store.revoke_grant("g-purpose").await.unwrap();
        let snapshot = store.policy_snapshot(None).await.unwrap();
        assert_eq!(snapshot.purpose_required(&carol, &datasets, None, Utc::now()), None);
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_search_filters_newest_first() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let start = Utc::now();
        for i in 1..=6 {
            store.append_audit(&entry(i)).await.unwrap();
        }
        let seqs = |records: Vec<civlink_catalog::policy::AuditRecord>| -> Vec<i64> {
            records.iter().map(|r| r.seq).collect()
        };
        let all = AuditFilter { limit: 100, ..AuditFilter::default() };
        assert_eq!(seqs(store.audit_search(&all).await.unwrap()), [6, 5, 4, 3, 2, 1]);
        let page = AuditFilter { limit: 2, ..AuditFilter::default() };
        assert_eq!(seqs(store.audit_search(&page).await.unwrap()), [6, 5]);
        let next = AuditFilter { limit: 2, before: Some(5), ..AuditFilter::default() };
        assert_eq!(seqs(store.audit_search(&next).await.unwrap()), [4, 3]);
        let handshakes = AuditFilter { action: Some(AuditAction::Handshake), ..all.clone() };
        assert_eq!(seqs(store.audit_search(&handshakes).await.unwrap()), [1]);
        let by = AuditFilter { principal: Some("analyst-4".into()), ..all.clone() };
        let found = store.audit_search(&by).await.unwrap();
        assert_eq!((found.len(), found[0].entry.rows), (1, Some(40)));
        let since = AuditFilter { since: Some(start - Duration::hours(1)), ..all.clone() };
        assert_eq!(store.audit_search(&since).await.unwrap().len(), 6);
        let later = AuditFilter { since: Some(Utc::now() + Duration::hours(1)), ..all.clone() };
        assert!(store.audit_search(&later).await.unwrap().is_empty());
        // A huge limit is capped, not an error.
        let huge = AuditFilter { limit: u64::MAX, ..AuditFilter::default() };
        assert_eq!(store.audit_search(&huge).await.unwrap().len(), 6);
        store.close().await;
    })
    .await;
}
