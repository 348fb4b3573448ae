//! Findings in the metadata store, on both backends: recording evaluations
//! (new, seen again, resolved at source, reopened), scoped reads, decisions
//! and their history, and the counts of the summary.

use std::collections::BTreeMap;

use chrono::Utc;
use civlink_catalog::findings::{
    Candidate, DismissReason, FindingFilter, FindingStatus, Outcome, RowRef, RuleEvaluation, Severity, SubjectKind,
};
use civlink_catalog::model::Department;
use civlink_catalog::store::{Error, MetadataStore};
use civlink_standards::division::DivisionCode;

use crate::store::on_both_backends;

fn division(code: &str) -> DivisionCode {
    DivisionCode::parse(code).unwrap()
}

fn candidate(subject: &str, village: &str) -> Candidate {
    Candidate {
        subject: subject.to_owned(),
        department: Department::Minzheng,
        division: division(village),
        explanation: format!("低保成员 张**（{subject}）户籍已注销（死亡）"),
        evidence: BTreeMap::from([("name".to_owned(), "张**".to_owned())]),
        rests_on: vec![RowRef {
            dataset: "minzheng.dibao_members".into(),
            key: BTreeMap::from([("id_number".to_owned(), subject.to_owned())]),
        }],
    }
}

fn evaluation(run: &str, scope: &str) -> RuleEvaluation {
    RuleEvaluation {
        run_id: run.to_owned(),
        rule_id: "dibao_deceased".into(),
        rule_version: 1,
        severity: Severity::High,
        subject_kind: SubjectKind::Person,
        principal: "verify".into(),
        scope: division(scope),
        dataset_versions: BTreeMap::from([("minzheng.dibao_members".to_owned(), 3)]),
        started_at: Utc::now(),
    }
}

const PROVINCE: &str = "630000000000";
const XINING_VILLAGE: &str = "630102001001";
const OTHER_COUNTY_VILLAGE: &str = "630105001001";

async fn statuses(store: &MetadataStore) -> BTreeMap<String, FindingStatus> {
    let all = store.findings(&FindingFilter::default()).await.unwrap();
    all.into_iter().map(|f| (f.subject, f.status)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_are_idempotent_resolve_what_is_gone_and_reopen_what_returns() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let found = [candidate("ps_a", XINING_VILLAGE), candidate("ps_b", OTHER_COUNTY_VILLAGE)];
        let first = store.record_evaluation(&evaluation("vr_1", PROVINCE), &found).await.unwrap();
        assert_eq!((first.found, first.new, first.resolved), (2, 2, 0));

        // The same run again: nothing new, no duplicate.
        let again = store.record_evaluation(&evaluation("vr_2", PROVINCE), &found).await.unwrap();
        assert_eq!((again.found, again.new, again.seen_again, again.resolved), (2, 0, 2, 0));
        assert_eq!(store.findings(&FindingFilter::default()).await.unwrap().len(), 2);

        // A duplicate row of one identity is merged, not stored twice.
        let doubled = [found[0].clone(), found[0].clone(), found[1].clone()];
        let merged = store.record_evaluation(&evaluation("vr_3", PROVINCE), &doubled).await.unwrap();
        assert_eq!(merged.found, 2);

        // ps_a no longer holds: resolved at source. A county-scoped run never resolves elsewhere.
        let county_run = store.record_evaluation(&evaluation("vr_4", "630105000000"), &[]).await.unwrap();
        assert_eq!(county_run.resolved, 1, "only the finding inside 630105 is resolved");
        assert_eq!(statuses(&store).await["ps_a"], FindingStatus::Open);
        assert_eq!(statuses(&store).await["ps_b"], FindingStatus::ResolvedAtSource);
        let gone = store.record_evaluation(&evaluation("vr_5", PROVINCE), &found[1..]).await.unwrap();
        assert_eq!((gone.resolved, gone.reopened), (1, 1));
        let now = statuses(&store).await;
        assert_eq!(now["ps_a"], FindingStatus::ResolvedAtSource);
        assert_eq!(now["ps_b"], FindingStatus::Open, "it came back: reopened");

        // Its history says all of it, in order.
        let id = found[1].id("dibao_deceased");
        let (_, events) = store.finding(&id, None).await.unwrap().unwrap();
        let path: Vec<(Option<FindingStatus>, FindingStatus)> = events.iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(
            path,
            [
                (None, FindingStatus::Open),
                (Some(FindingStatus::Open), FindingStatus::ResolvedAtSource),
                (Some(FindingStatus::ResolvedAtSource), FindingStatus::Open),
            ]
        );
        assert_eq!(events[1].run_id.as_deref(), Some("vr_4"));
        let last = store.last_rule_runs().await.unwrap();
        assert_eq!(last["dibao_deceased"].run_id, "vr_5");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_follow_the_lifecycle_and_stay_in_scope() {
    on_both_backends(|url| async move {
        let store = MetadataStore::connect(&url).await.unwrap();
        let found = [candidate("ps_a", XINING_VILLAGE), candidate("ps_b", OTHER_COUNTY_VILLAGE)];
        store.record_evaluation(&evaluation("vr_1", PROVINCE), &found).await.unwrap();
        let id = found[0].id("dibao_deceased");
        let decision = |status, reason| Outcome {
            status,
            reason,
            note: Some("入户核实".into()),
            by: "officer".into(),
            at: Utc::now(),
        };

        // Outside one's scope a finding does not exist.
        let outside = division("630105000000");
        assert!(store.finding(&id, Some(&outside)).await.unwrap().is_none());
        let err = store.decide_finding(&id, Some(&outside), &decision(FindingStatus::Confirmed, None)).await;
        assert!(matches!(err, Err(Error::UnknownFinding { .. })), "{err:?}");
        let listed =
            store.findings(&FindingFilter { within: Some(outside), ..FindingFilter::default() }).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].subject, "ps_b");

        // A dismissal needs a reason.
        let err = store.decide_finding(&id, None, &decision(FindingStatus::Dismissed, None)).await;
        assert!(matches!(err, Err(Error::Invalid { .. })), "{err:?}");

        let county = division("630102000000");
        let reviewed =
            store.decide_finding(&id, Some(&county), &decision(FindingStatus::UnderReview, None)).await.unwrap();
        assert_eq!(reviewed.status, FindingStatus::UnderReview);
        assert!(reviewed.outcome.is_none(), "under review is not a decision");
        let confirmed =
            store.decide_finding(&id, Some(&county), &decision(FindingStatus::Confirmed, None)).await.unwrap();
        assert_eq!(confirmed.outcome.as_ref().unwrap().status, FindingStatus::Confirmed);
        let err =
            store.decide_finding(&id, None, &decision(FindingStatus::Dismissed, Some(DismissReason::Other))).await;
        assert!(
            matches!(err, Err(Error::FindingTransition { from: FindingStatus::Confirmed, .. })),
            "a decided finding is not decided again: {err:?}"
        );
        let other = found[1].id("dibao_deceased");
        store
            .decide_finding(&other, None, &decision(FindingStatus::Dismissed, Some(DismissReason::Legitimate)))
            .await
            .unwrap();

        // The confirmed finding no longer holds: resolved, and its outcome is kept for the precision.
        store.record_evaluation(&evaluation("vr_2", PROVINCE), &found[1..]).await.unwrap();
        let (resolved, events) = store.finding(&id, None).await.unwrap().unwrap();
        assert_eq!(resolved.status, FindingStatus::ResolvedAtSource);
        assert_eq!(resolved.outcome.unwrap().status, FindingStatus::Confirmed);
        assert_eq!(events.iter().filter(|e| e.actor == "officer").count(), 2);
        let counts = store.finding_counts(None).await.unwrap();
        let confirmed =
            counts.iter().filter(|c| c.outcome == Some(FindingStatus::Confirmed)).map(|c| c.count).sum::<u64>();
        let dismissed =
            counts.iter().filter(|c| c.outcome == Some(FindingStatus::Dismissed)).map(|c| c.count).sum::<u64>();
        assert_eq!((confirmed, dismissed), (1, 1));
        let in_county = store.finding_counts(Some(&county)).await.unwrap();
        assert_eq!(in_county.iter().map(|c| c.count).sum::<u64>(), 1);

        let err = store.decide_finding("f_nothing", None, &decision(FindingStatus::Confirmed, None)).await;
        assert!(matches!(err, Err(Error::UnknownFinding { .. })), "{err:?}");
    })
    .await;
}
