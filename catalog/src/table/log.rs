//! Reading the Delta log directly: which versions exist, and each commit's info.
//!
//! deltalake's own history drops the version numbers and its timestamp time
//! travel uses file modification times; the catalog needs versions next to run
//! ids, and commit timestamps that are exact on any object store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt as _};

use super::{CommitInfoSummary, Error, RUN_ID_KEY, Result, StoreRef, store_err};

/// The log files of one table.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Commit files (`<version>.json`) by version.
    commits: BTreeMap<i64, ObjectMeta>,
    /// The newest checkpoint version (its commit file may have been cleaned up).
    checkpoint: Option<i64>,
}

impl Listing {
    /// The newest version; `None` when the log is empty or missing.
    pub(crate) fn head(&self) -> Option<i64> {
        self.commits.keys().next_back().copied().max(self.checkpoint)
    }
}

/// What a file directly in `_delta_log/` is.
#[derive(Debug, PartialEq, Eq)]
enum LogFile {
    Commit(i64),
    Checkpoint(i64),
}

fn classify(location: &Path) -> Option<LogFile> {
    let name = location.as_ref().strip_prefix("_delta_log/")?;
    if name.contains('/') {
        // Subdirectories (staged commits of other engines) are not part of the log.
        return None;
    }
    let (digits, rest) = name.split_at_checked(20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = digits.parse::<i64>().ok()?;
    if rest == ".json" {
        Some(LogFile::Commit(version))
    } else if rest.starts_with(".checkpoint") && rest.ends_with(".parquet") {
        Some(LogFile::Checkpoint(version))
    } else {
        None
    }
}

/// List `_delta_log/` of the table whose root `store` points at.
pub(crate) async fn list(uri: &str, store: &dyn ObjectStore) -> Result<Listing> {
    let mut listing = Listing::default();
    let prefix = Path::from("_delta_log");
    let mut entries = store.list(Some(&prefix));
    while let Some(entry) = entries.next().await {
        let meta = match entry {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => break,
            Err(e) => return Err(store_err(uri, "list the Delta log")(e)),
        };
        match classify(&meta.location) {
            Some(LogFile::Commit(version)) => {
                listing.commits.insert(version, meta);
            }
            Some(LogFile::Checkpoint(version)) => listing.checkpoint = listing.checkpoint.max(Some(version)),
            None => {}
        }
    }
    Ok(listing)
}

/// The commit info of every commit file in `listing`, oldest first.
pub(crate) async fn history(uri: &str, store: &StoreRef, listing: &Listing) -> Result<Vec<CommitInfoSummary>> {
    // Each read owns its inputs: futures borrowing from a stream closure would not be
    // `Send` for every lifetime, and callers spawn these calls on a multi-thread runtime.
    let reads = listing.commits.iter().map(|(version, meta)| {
        let (uri, store, version, meta) = (uri.to_owned(), store.clone(), *version, meta.clone());
        async move {
            let bytes = match store.get(&meta.location).await {
                Ok(found) => found.bytes().await,
                Err(e) => Err(e),
            }
            .map_err(store_err(&uri, "read the Delta log"))?;
            Ok::<_, Error>(summarize(version, meta.last_modified, &bytes))
        }
    });
    futures::stream::iter(reads.collect::<Vec<_>>()).buffered(8).try_collect().await
}

/// The summary of one commit file; fields the file lacks fall back to defaults.
fn summarize(version: i64, modified: DateTime<Utc>, commit: &[u8]) -> CommitInfoSummary {
    let info = commit
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .find_map(|mut action| action.get_mut("commitInfo").map(serde_json::Value::take))
        .unwrap_or_default();
    let millis =
        info.get("inCommitTimestamp").and_then(serde_json::Value::as_i64).or_else(|| info.get("timestamp")?.as_i64());
    CommitInfoSummary {
        version,
        timestamp: millis.and_then(DateTime::from_timestamp_millis).unwrap_or(modified),
        operation: info.get("operation").and_then(serde_json::Value::as_str).unwrap_or("UNKNOWN").to_owned(),
        run_id: info.get(RUN_ID_KEY).and_then(serde_json::Value::as_str).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_top_level_commits_and_checkpoints_count() {
        let p = |s: &str| Path::from(s);
        assert_eq!(classify(&p("_delta_log/00000000000000000007.json")), Some(LogFile::Commit(7)));
        assert_eq!(classify(&p("_delta_log/00000000000000000010.checkpoint.parquet")), Some(LogFile::Checkpoint(10)));
        for other in [
            "_delta_log/00000000000000000007.crc",
            "_delta_log/_last_checkpoint",
            "_delta_log/_commits/00000000000000000008.uuid.json",
            "_delta_log/0000000000000000007.json",
            "_delta_log/0000000000000000000x.json",
            "_delta_log/_commit_ab.json.tmp",
            "part-0001.parquet",
            "_delta_log/日志文件日志文件日志文件日志文件日志文件.json",
        ] {
            assert_eq!(classify(&p(other)), None, "{other}");
        }
    }

    #[test]
    fn commit_info_is_summarized_with_fallbacks() {
        let modified = DateTime::from_timestamp_millis(5).unwrap();
        let commit = br#"{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE","civlink.run_id":"r1"}}
{"add":{"path":"a.parquet"}}"#;
        let summary = summarize(3, modified, commit);
        assert_eq!(summary.version, 3);
        assert_eq!(summary.timestamp.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(summary.operation, "WRITE");
        assert_eq!(summary.run_id.as_deref(), Some("r1"));

        let bare = summarize(4, modified, b"{\"add\":{}}\nnot json\n\xff\xfe");
        assert_eq!((bare.timestamp, bare.operation.as_str(), bare.run_id), (modified, "UNKNOWN", None));
    }
}
