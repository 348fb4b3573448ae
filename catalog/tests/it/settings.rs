//! The deployment's mask key, on both backends.

use civlink_catalog::store::{Error as StoreError, MetadataStore};
use civlink_standards::mask::{MASK_KEY_LEN, MaskKey, MaskStrategy};

use crate::store::{on_both_backends, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mask_key_is_created_once_and_then_always_the_same() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let pool = raw(&url).await;
        let count = || async {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM settings").fetch_one(&pool).await.unwrap();
            n
        };
        assert_eq!(count().await, 0, "no key before first use");

        let key = store.mask_key().await.unwrap();
        assert_eq!(store.mask_key().await.unwrap(), key);
        assert_eq!(count().await, 1);

        // Stored as 64 lower-case hex digits, which is the key the store hands out.
        let (stored,): (String,) = sqlx::query_as("SELECT mask_key FROM settings").fetch_one(&pool).await.unwrap();
        assert_eq!(stored.len(), 2 * MASK_KEY_LEN);
        assert!(stored.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "not lower-case hex");
        let bytes: [u8; MASK_KEY_LEN] = hex::decode(&stored).unwrap().try_into().unwrap();
        assert_eq!(MaskKey::from_bytes(bytes), key);
        assert!(!format!("{key:?}").contains(&stored[..8]));

        // Another connection (another process, in a deployment) gets the same key,
        // so pseudonyms agree across servers and restarts.
        store.close().await;
        let again = MetadataStore::connect(&url).await.unwrap();
        let same = again.mask_key().await.unwrap();
        assert_eq!(same, key);
        let id = "11010519491231002X";
        assert_eq!(MaskStrategy::Pseudonym.apply_keyed(id, &same), MaskStrategy::Pseudonym.apply_keyed(id, &key));
        again.close().await;
        pool.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_agree_on_one_key() {
    on_both_backends(|url| async move {
        // Separate stores (separate pools), racing on a database with no key yet.
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(MetadataStore::connect(&url).await.unwrap());
        }
        let tasks: Vec<_> = stores
            .iter()
            .flat_map(|store| (0..4).map(move |_| store.clone()))
            .map(|store| tokio::spawn(async move { store.mask_key().await.unwrap() }))
            .collect();
        let mut keys = Vec::new();
        for task in tasks {
            keys.push(task.await.unwrap());
        }
        assert!(keys.iter().all(|k| *k == keys[0]), "every caller must get the stored key");
        let pool = raw(&url).await;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM settings").fetch_one(&pool).await.unwrap();
        assert_eq!(n, 1);
        pool.close().await;
        for store in stores {
            store.close().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_stored_key_is_an_error_that_does_not_echo_it() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let pool = raw(&url).await;
        sqlx::query(
            "INSERT INTO settings (id, mask_key, created_at) VALUES (1, 'secretsecret', '2025-01-01T00:00:00Z')",
        )
        .execute(&pool)
        .await
        .unwrap();
        match store.mask_key().await {
            Err(StoreError::Corrupt { what, message }) => {
                assert_eq!(what, "settings.mask_key");
                assert!(!message.contains("secret"), "{message}");
            }
            other => panic!("expected a corrupt key, got {other:?}"),
        }
        // Only one settings row can exist.
        let second =
            sqlx::query("INSERT INTO settings (id, mask_key, created_at) VALUES (2, 'x', '2025-01-01T00:00:00Z')")
                .execute(&pool)
                .await;
        assert!(second.is_err(), "a second settings row must be refused");
        pool.close().await;
        store.close().await;
    })
    .await;
}
