//! The policy snapshot decides exactly as the store does, and the catalog's
//! change counter moves with every change the snapshot holds (and only then).

use chrono::{Duration, Utc};
use civlink_catalog::model::{Department, SharingType};
use civlink_catalog::policy::{Error, Grant, GrantSubject, Principal, Role};
use civlink_catalog::store::{MetadataStore, PolicySnapshot};

use crate::policy::{population, principal, register_population};
use crate::store::on_both_backends;

/// The snapshot and the store agree on what each of `principals` may read,
/// and on every token in `tokens` (secret, or garbage).
async fn agrees(store: &MetadataStore, snapshot: &PolicySnapshot, principals: &[Principal], tokens: &[String]) {
    let now = Utc::now();
    for p in principals {
        let from_store = store.readable(p).await.unwrap();
        let from_snapshot = snapshot.readable(p, now);
        let store_view: Vec<_> = from_store.iter().map(|(r, a)| (r.spec.id.clone(), a.clone())).collect();
        let snapshot_view: Vec<_> =
            from_snapshot.iter().map(|r| (r.record.spec.id.clone(), r.access.clone())).collect();
        assert_eq!(snapshot_view, store_view, "readable by {}", p.name);
        // Asked twice (the second from the memo), the same.
        let again: Vec<_> =
            snapshot.readable(p, now).iter().map(|r| (r.record.spec.id.clone(), r.access.clone())).collect();
        assert_eq!(again, store_view);
    }
    for token in tokens {
        assert_eq!(snapshot.authenticate(token, now), store.authenticate(token).await, "token {token}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_decides_as_the_store_and_the_counter_moves_with_each_change() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let other_process = MetadataStore::connect(&url).await.unwrap();
        let mut epoch = store.catalog_epoch().await.unwrap();
        // Each step must move the counter, as seen from another connection.
        let mut moved = async |what: &str| {
            let now = other_process.catalog_epoch().await.unwrap();
            assert!(now > epoch, "{what} did not move the counter ({epoch} → {now})");
            epoch = now;
            let snapshot = other_process.policy_snapshot(None).await.unwrap();
            assert_eq!(snapshot.epoch(), now);
            snapshot
        };

        register_population(&store, SharingType::Conditional).await;
        moved("registering a standard and a dataset").await;
        let bob = principal("bob", Some(Department::Minzheng), Role::Analyst, "630102000000");
        let carol = principal("carol", Some(Department::Renshe), Role::Analyst, "630000000000");
        let owner = principal("dan", Some(Department::Gongan), Role::DepartmentService, "630100000000");
        let admin = principal("root", None, Role::Admin, "630000000000");
        for p in [&bob, &carol, &owner, &admin] {
            store.create_principal(p).await.unwrap();
        }
        let everyone = [bob.clone(), carol.clone(), owner.clone(), admin.clone()];
        let snapshot = moved("creating principals").await;
        agrees(&store, &snapshot, &everyone, &[]).await;

        let bob_token = store.create_token("bob", None).await.unwrap();
        let short = store.create_token("carol", Some(Utc::now() + Duration::milliseconds(300))).await.unwrap();
        let snapshot = moved("issuing tokens").await;
        let forged = format!("{}x", bob_token.secret);
        let unknown = bob_token.secret.replacen(&bob_token.id, &"0".repeat(bob_token.id.len()), 1);
        let tokens = vec![bob_token.secret.clone(), short.secret.clone(), forged, unknown, "garbage".into()];
        agrees(&store, &snapshot, &everyone, &tokens).await;
        assert_eq!(snapshot.authenticate(&bob_token.secret, Utc::now()), Ok(bob.clone()));
        // Time counts inside a snapshot: the short token expires without a reload.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert!(matches!(snapshot.authenticate(&short.secret, Utc::now()), Err(Error::TokenExpired { .. })));

        let to_minzheng = Grant {
            id: "g-minzheng".into(),
            subject: GrantSubject::Department(Department::Minzheng),
            dataset: population(),
            columns: Some(vec!["division_code".into(), "name".into(), "sex".into()]),
            unmasked: false,
            purpose: None,
            purpose_required: false,
            expires_at: Some(Utc::now() + Duration::milliseconds(600)),
        };
        store.grant(&to_minzheng).await.unwrap();
        let to_carol = Grant {
            id: "g-carol".into(),
            subject: GrantSubject::Principal("carol".into()),
            columns: None,
            unmasked: true,
            expires_at: None,
            ..to_minzheng.clone()
        };
        store.grant(&to_carol).await.unwrap();
        let snapshot = moved("granting").await;
        agrees(&store, &snapshot, &everyone, &tokens).await;
        assert_eq!(snapshot.readable(&bob, Utc::now()).len(), 1);
        // The memo holds only until the grant it used expires.
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert!(snapshot.readable(&bob, Utc::now()).is_empty(), "an expired grant still opened the dataset");
        agrees(&store, &snapshot, &everyone, &tokens).await;

        store.revoke_grant("g-carol").await.unwrap();
        let snapshot = moved("withdrawing a grant").await;
        agrees(&store, &snapshot, &everyone, &tokens).await;
        assert!(snapshot.readable(&carol, Utc::now()).is_empty());

        store.revoke_token(&bob_token.id).await.unwrap();
        let snapshot = moved("revoking a token").await;
        assert!(matches!(snapshot.authenticate(&bob_token.secret, Utc::now()), Err(Error::TokenRevoked { .. })));
        agrees(&store, &snapshot, &everyone, &tokens).await;

        // What changes nothing moves nothing: a refused grant, a second revocation.
        let before = other_process.catalog_epoch().await.unwrap();
        let refused = store.grant(&Grant { dataset: "gongan.nothing".parse().unwrap(), ..to_carol.clone() }).await;
        assert!(refused.is_err());
        store.revoke_token(&bob_token.id).await.unwrap();
        assert_eq!(other_process.catalog_epoch().await.unwrap(), before);

        // A reload reuses the standards it has parsed, and still agrees.
        let reloaded = other_process.policy_snapshot(Some(&snapshot)).await.unwrap();
        agrees(&store, &reloaded, &everyone, &tokens).await;
        store.close().await;
        other_process.close().await;
    })
    .await;
}
