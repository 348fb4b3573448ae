//! Job leases and claimed occurrences, on both backends: one holder at a
//! time, lapsed leases taken over with the run they covered, renewals that
//! fail once another holder has the job, and races with exactly one winner.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use civlink_catalog::store::{LeaseOutcome, MetadataStore};

use crate::store::on_both_backends;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_lease_has_one_holder_until_it_is_released_or_lapses() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 2, 0, 0).unwrap();
        let acquired = store.acquire_job_lease("gongan-population", "a", "run-a", MINUTE, t0).await.unwrap();
        assert_eq!(acquired, LeaseOutcome::Acquired { replaced: None });
        // Another holder waits while the lease lives.
        let LeaseOutcome::Held(current) =
            store.acquire_job_lease("gongan-population", "b", "run-b", MINUTE, t0).await.unwrap()
        else {
            panic!("two holders")
        };
        assert_eq!((current.holder.as_str(), current.run_id.as_str()), ("a", "run-a"));
        assert!(current.is_live(t0) && !current.is_live(t0 + chrono::Duration::minutes(1)));
        // Other jobs are free.
        assert!(matches!(
            store.acquire_job_lease("renshe-pensions", "b", "run-c", MINUTE, t0).await.unwrap(),
            LeaseOutcome::Acquired { replaced: None }
        ));
        // Renewing is the holder's alone; releasing another's lease changes nothing.
        let t1 = t0 + chrono::Duration::seconds(50);
        assert!(store.renew_job_lease("gongan-population", "a", MINUTE, t1).await.unwrap());
        assert!(!store.renew_job_lease("gongan-population", "b", MINUTE, t1).await.unwrap());
        store.release_job_lease("gongan-population", "b").await.unwrap();
        let renewed = store.job_lease("gongan-population").await.unwrap().unwrap();
        assert_eq!(renewed.expires_at, t1 + chrono::Duration::minutes(1));
        // Renewed at t1, so still held a minute after t0.
        assert!(matches!(
            store
                .acquire_job_lease("gongan-population", "b", "run-b", MINUTE, t0 + chrono::Duration::seconds(70))
                .await
                .unwrap(),
            LeaseOutcome::Held(_)
        ));
        // Released: the next holder gets it, with nothing to take over.
        store.release_job_lease("gongan-population", "a").await.unwrap();
        assert_eq!(
            store.acquire_job_lease("gongan-population", "b", "run-b", MINUTE, t1).await.unwrap(),
            LeaseOutcome::Acquired { replaced: None }
        );
        // Lapsed: taken over, and the caller learns which run its dead holder left.
        let late = t1 + chrono::Duration::minutes(2);
        let LeaseOutcome::Acquired { replaced: Some(dead) } =
            store.acquire_job_lease("gongan-population", "c", "run-c2", MINUTE, late).await.unwrap()
        else {
            panic!("a lapsed lease was not taken over")
        };
        assert_eq!((dead.holder.as_str(), dead.run_id.as_str()), ("b", "run-b"));
        assert!(
            !store.renew_job_lease("gongan-population", "b", MINUTE, late).await.unwrap(),
            "the dead holder renewed"
        );
        let leases = store.job_leases().await.unwrap();
        let holders: Vec<(&str, &str)> = leases.iter().map(|l| (l.job.as_str(), l.holder.as_str())).collect();
        assert_eq!(holders, [("gongan-population", "c"), ("renshe-pensions", "b")]);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn of_many_processes_racing_for_a_lease_exactly_one_wins() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let now = Utc::now();
        for round in 0..3 {
            let job = format!("race-{round}");
            let racers = (0..8).map(|i| {
                let store = store.clone();
                let job = job.clone();
                tokio::spawn(async move {
                    store.acquire_job_lease(&job, &format!("holder-{i}"), &format!("run-{i}"), MINUTE, now).await
                })
            });
            let mut winners = 0;
            for racer in racers {
                if matches!(racer.await.unwrap().unwrap(), LeaseOutcome::Acquired { .. }) {
                    winners += 1;
                }
            }
            assert_eq!(winners, 1, "round {round}");
        }
        // Taking over a lapsed lease is a compare-and-set too: of many racers, one takes it over.
        let lapsed = now - chrono::Duration::hours(1);
        store.acquire_job_lease("lapsed", "dead", "run-dead", MINUTE, lapsed).await.unwrap();
        let racers = (0..8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.acquire_job_lease("lapsed", &format!("taker-{i}"), &format!("run-t{i}"), MINUTE, now).await
            })
        });
        let mut takeovers = Vec::new();
        for racer in racers {
            if let LeaseOutcome::Acquired { replaced } = racer.await.unwrap().unwrap() {
                takeovers.push(replaced.map(|dead| dead.run_id));
            }
        }
        assert_eq!(takeovers, [Some("run-dead".to_owned())], "exactly one takes the lapsed lease over");
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_occurrence_is_claimed_once_and_only_forwards() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let at = |h| Utc.with_ymd_and_hms(2026, 12, 3, h, 0, 0).unwrap();
        assert_eq!(store.job_occurrence("nightly").await.unwrap(), None);
        assert!(store.claim_job_occurrence("nightly", at(2), "a").await.unwrap());
        assert!(!store.claim_job_occurrence("nightly", at(2), "b").await.unwrap(), "claimed twice");
        assert!(!store.claim_job_occurrence("nightly", at(1), "b").await.unwrap(), "claimed backwards");
        assert!(store.claim_job_occurrence("nightly", at(3), "b").await.unwrap());
        assert_eq!(store.job_occurrence("nightly").await.unwrap(), Some(at(3)));
        // Racing claims of one occurrence: one winner.
        let claims = (0..6).map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_job_occurrence("nightly", at(4), &format!("p{i}")).await.unwrap() })
        });
        let mut won = 0;
        for claim in claims {
            won += usize::from(claim.await.unwrap());
        }
        assert_eq!(won, 1);
        store.close().await;
    })
    .await;
}
