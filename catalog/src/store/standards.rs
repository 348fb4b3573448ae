//! Registered standards (migrations `0001_catalog`, `0011_standard_deprecation`):
//! documents by id and version, immutable once registered, and their
//! deprecation.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::codec::{parse_timestamp, timestamp};
use super::{Error, MetadataStore, Result, announce_change, db_err, get, is_unique_violation};

/// One registered version of a standard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardVersion {
    /// Standard id.
    pub id: String,
    /// Version.
    pub version: String,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
    /// When it was deprecated, and why; `None` while current.
    pub deprecated: Option<(DateTime<Utc>, String)>,
}

impl MetadataStore {
    /// Register a standard's document under `id` and `version`.
    ///
    /// Registering the identical document again does nothing; a different
    /// document under the same id and version is a [`Error::StandardConflict`]:
    /// standards are immutable, a change is a new version.
    pub async fn register_standard(&self, id: &str, version: &str, document: &str) -> Result<()> {
        let conflict = || Error::StandardConflict { id: id.to_owned(), version: version.to_owned() };
        match self.standard(id, version).await? {
            Some(existing) if existing == document => return Ok(()),
            Some(_) => return Err(conflict()),
            None => {}
        }
        let mut tx = self.pool.begin().await.map_err(db_err("register standard"))?;
        let inserted =
            sqlx::query("INSERT INTO standards (id, version, document, registered_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(version)
                .bind(document)
                .bind(timestamp(Utc::now()))
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {
                announce_change(&mut tx).await?;
                tx.commit().await.map_err(db_err("register standard"))
            }
            // Someone registered it between our read and our insert.
            Err(e) if is_unique_violation(&e) => match self.standard(id, version).await? {
                Some(existing) if existing == document => Ok(()),
                _ => Err(conflict()),
            },
            Err(e) => Err(db_err("register standard")(e)),
        }
    }

    /// The document of a registered standard version.
    pub async fn standard(&self, id: &str, version: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT document FROM standards WHERE id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("read standard"))?;
        row.map(|row| get(&row, "document", || format!("standards.document of {id} {version}"))).transpose()
    }

    /// The registered versions of a standard, in registration order.
    pub async fn standard_versions(&self, id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT version, registered_at FROM standards WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list standard versions"))?;
        let mut versions = rows
            .iter()
            .map(|row| {
                let version: String = get(row, "version", || format!("standards.version of {id}"))?;
                let what = || format!("standards.registered_at of {id} {version}");
                let at = parse_timestamp(what, &get::<String>(row, "registered_at", what)?)?;
                Ok((at, version))
            })
            .collect::<Result<Vec<_>>>()?;
        versions.sort();
        Ok(versions.into_iter().map(|(_, v)| v).collect())
    }

    /// Every registered version of every standard, by id, each id's in registration order.
    pub async fn standards(&self) -> Result<Vec<StandardVersion>> {
        let rows = sqlx::query(
            "SELECT id, version, registered_at, deprecated_at, deprecation_reason FROM standards ORDER BY id, registered_at, version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list standards"))?;
        rows.iter()
            .map(|row| {
                let id: String = get(row, "id", || "standards.id".to_owned())?;
                let version: String = get(row, "version", || format!("standards.version of {id}"))?;
                let what = |c: &str| format!("standards.{c} of {id} {version}");
                let registered_at = parse_timestamp(
                    || what("registered_at"),
                    &get::<String>(row, "registered_at", || what("registered_at"))?,
                )?;
                let deprecated_at: Option<String> = get(row, "deprecated_at", || what("deprecated_at"))?;
                let deprecated = match deprecated_at {
                    Some(at) => {
                        let reason: Option<String> = get(row, "deprecation_reason", || what("deprecation_reason"))?;
                        Some((parse_timestamp(|| what("deprecated_at"), &at)?, reason.unwrap_or_default()))
                    }
                    None => None,
                };
                Ok(StandardVersion { id, version, registered_at, deprecated })
            })
            .collect()
    }

    /// Mark a registered version deprecated, with a reason: datasets bound to
    /// it keep reading, publishers and readers are told. Deprecating it again
    /// keeps the first time and reason. `false` when no such version is registered.
    pub async fn deprecate_standard(&self, id: &str, version: &str, reason: &str) -> Result<bool> {
        if reason.trim().is_empty() {
            return Err(Error::Invalid { what: "deprecation", message: "a deprecation needs a reason".into() });
        }
        let mut tx = self.pool.begin().await.map_err(db_err("deprecate standard"))?;
        let exists = sqlx::query("SELECT deprecated_at FROM standards WHERE id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err("deprecate standard"))?;
        let Some(row) = exists else { return Ok(false) };
        let already: Option<String> = row.try_get("deprecated_at").map_err(db_err("deprecate standard"))?;
        if already.is_none() {
            sqlx::query(
                "UPDATE standards SET deprecated_at = $1, deprecation_reason = $2 WHERE id = $3 AND version = $4",
            )
            .bind(timestamp(Utc::now()))
            .bind(reason)
            .bind(id)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db_err("deprecate standard"))?;
            announce_change(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err("deprecate standard"))?;
        Ok(true)
    }
}
