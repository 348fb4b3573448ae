//! Where the catalog keeps its metadata and tables.
//!
//! Read from the `[catalog]` and `[storage]` sections of `civlink.toml` (and
//! its top-level `data_dir`), then overridden by environment variables.
//! Every problem is reported at once, not the first one only.
//!
//! | setting | TOML | environment |
//! |---|---|---|
//! | data directory | `data_dir` | `CIVLINK_DATA_DIR` |
//! | metadata database URL | `catalog.url` | `CIVLINK_CATALOG_URL` |
//! | table storage URL | `storage.url` | `CIVLINK_STORAGE_URL` |
//! | S3 endpoint | `storage.s3.endpoint` | `CIVLINK_S3_ENDPOINT` |
//! | S3 region | `storage.s3.region` | `CIVLINK_S3_REGION` |
//! | S3 access key id | `storage.s3.access_key_id` | `CIVLINK_S3_ACCESS_KEY_ID` |
//! | S3 secret access key | `storage.s3.secret_access_key` | `CIVLINK_S3_SECRET_ACCESS_KEY` |
//! | S3 over plain HTTP | `storage.s3.allow_http` | `CIVLINK_S3_ALLOW_HTTP` |

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every configuration problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct Error {
    /// One line per problem, each naming the setting.
    pub problems: Vec<String>,
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./civlink-data";

/// The `[catalog]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSection {
    /// Metadata database: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    /// Default: a SQLite file `catalog.db` in the data directory.
    pub url: Option<String>,
}

/// The `[storage.s3]` section: credentials and endpoint of S3-compatible storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000` for a local S3-compatible server.
    pub endpoint: Option<String>,
    /// Region name (`us-east-1` when unset).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow plain-HTTP endpoints (only for loopback and tests).
    pub allow_http: Option<bool>,
}

/// The `[storage]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Root of the Delta tables: `file:///path` or `s3://bucket/prefix`.
    /// Default: `tables/` in the data directory.
    pub url: Option<String>,
    /// S3 settings, for `s3://` URLs.
    #[serde(default)]
    pub s3: S3Section,
}

/// Resolved S3 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL (None: AWS).
    pub endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Allow plain HTTP.
    pub allow_http: bool,
}

/// Resolved storage configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    /// Data directory (SQLite file, local tables, staging).
    pub data_dir: PathBuf,
    /// Metadata database URL.
    pub metadata_url: String,
    /// Root URL of the Delta tables (`file://…` or `s3://…`).
    pub storage_url: url::Url,
    /// S3 settings, present for `s3://` storage.
    pub s3: Option<S3Config>,
}

impl CatalogConfig {
    /// Resolve the sections with environment overrides (`env` is usually `std::env::vars()`).
    pub fn resolve(
        data_dir: Option<&Path>,
        catalog: &MetadataSection,
        storage: &StorageSection,
        env: &HashMap<String, String>,
    ) -> Result<CatalogConfig> {
        let mut problems = Vec::new();
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let data_dir = var("CIVLINK_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| data_dir.map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let data_dir = absolute(&data_dir);

        let metadata_url = var("CIVLINK_CATALOG_URL")
            .or_else(|| catalog.url.clone())
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("catalog.db").display()));
        if !(metadata_url.starts_with("sqlite:")
            || metadata_url.starts_with("postgres://")
            || metadata_url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "catalog.url / CIVLINK_CATALOG_URL: \"{metadata_url}\" is neither sqlite: nor postgres://"
            ));
        }

        let storage_text = var("CIVLINK_STORAGE_URL").or_else(|| storage.url.clone());
        let storage_url = match storage_text {
            None => url::Url::from_directory_path(data_dir.join("tables")).ok(),
            Some(text) => match url::Url::parse(&text) {
                Ok(u) if u.scheme() == "file" || u.scheme() == "s3" => Some(u),
                Ok(u) => {
                    problems.push(format!(
                        "storage.url / CIVLINK_STORAGE_URL: scheme \"{}\" is not supported (file://, s3://)",
                        u.scheme()
                    ));
                    None
                }
                Err(_) if !text.contains("://") => url::Url::from_directory_path(absolute(Path::new(&text))).ok(),
                Err(e) => {
                    problems.push(format!("storage.url / CIVLINK_STORAGE_URL: \"{text}\" is not a URL: {e}"));
                    None
                }
            },
        };

        let s3 = match &storage_url {
            Some(u) if u.scheme() == "s3" => {
                if u.host_str().is_none_or(str::is_empty) {
                    problems.push("storage.url: an s3:// URL needs a bucket, e.g. s3://civlink/tables".into());
                }
                let section = &storage.s3;
                let access_key_id = var("CIVLINK_S3_ACCESS_KEY_ID").or_else(|| section.access_key_id.clone());
                let secret_access_key =
                    var("CIVLINK_S3_SECRET_ACCESS_KEY").or_else(|| section.secret_access_key.clone());
                if access_key_id.is_none() {
                    problems
                        .push("storage.s3.access_key_id / CIVLINK_S3_ACCESS_KEY_ID: required for s3:// storage".into());
                }
                if secret_access_key.is_none() {
                    problems.push(
                        "storage.s3.secret_access_key / CIVLINK_S3_SECRET_ACCESS_KEY: required for s3:// storage"
                            .into(),
                    );
                }
                let allow_http = match var("CIVLINK_S3_ALLOW_HTTP") {
                    Some(v) => match v.as_str() {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        other => {
                            problems.push(format!("CIVLINK_S3_ALLOW_HTTP: \"{other}\" is not true/false"));
                            false
                        }
                    },
                    None => section.allow_http.unwrap_or(false),
                };
                let endpoint = var("CIVLINK_S3_ENDPOINT").or_else(|| section.endpoint.clone());
                if let Some(e) = &endpoint {
                    if let Err(err) = url::Url::parse(e) {
                        problems.push(format!("storage.s3.endpoint: \"{e}\" is not a URL: {err}"));
                    } else if e.starts_with("http://") && !allow_http {
                        problems.push(format!(
                            "storage.s3.endpoint: \"{e}\" is plain HTTP; set allow_http = true to permit it"
                        ));
                    }
                }
                Some(S3Config {
                    endpoint,
                    region: var("CIVLINK_S3_REGION")
                        .or_else(|| section.region.clone())
                        .unwrap_or_else(|| "us-east-1".into()),
                    access_key_id: access_key_id.unwrap_or_default(),
                    secret_access_key: secret_access_key.unwrap_or_default(),
                    allow_http,
                })
            }
            _ => None,
        };

        match storage_url {
            Some(storage_url) if problems.is_empty() => Ok(CatalogConfig { data_dir, metadata_url, storage_url, s3 }),
            _ => Err(Error { problems }),
        }
    }

    /// Defaults under `data_dir` with no file and no environment: what `civlink demo` uses.
    pub fn local(data_dir: &Path) -> Result<CatalogConfig> {
        CatalogConfig::resolve(Some(data_dir), &MetadataSection::default(), &StorageSection::default(), &HashMap::new())
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_live_in_the_data_dir() {
        let config = CatalogConfig::local(Path::new("/tmp/civlink-x")).unwrap();
        assert_eq!(config.metadata_url, "sqlite:///tmp/civlink-x/catalog.db?mode=rwc");
        assert_eq!(config.storage_url.as_str(), "file:///tmp/civlink-x/tables/");
        assert!(config.s3.is_none());
    }

    #[test]
    fn environment_overrides_the_file() {
        let section = StorageSection { url: Some("file:///a/".into()), s3: S3Section::default() };
        let config = CatalogConfig::resolve(
            Some(Path::new("/d")),
            &MetadataSection { url: Some("sqlite:///x.db".into()) },
            &section,
            &env(&[("CIVLINK_DATA_DIR", "/e"), ("CIVLINK_CATALOG_URL", "postgres://127.0.0.1/test")]),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/e"));
        assert_eq!(config.metadata_url, "postgres://127.0.0.1/test");
        assert_eq!(config.storage_url.as_str(), "file:///a/");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let section = StorageSection {
            url: Some("s3://bucket/tables".into()),
            s3: S3Section { endpoint: Some("http://127.0.0.1:9000".into()), ..S3Section::default() },
        };
        let err =
            CatalogConfig::resolve(None, &MetadataSection { url: Some("mysql://x".into()) }, &section, &HashMap::new())
                .unwrap_err();
        assert_eq!(err.problems.len(), 4, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("catalog.url")
                && text.contains("access_key_id")
                && text.contains("secret_access_key")
                && text.contains("allow_http"),
            "{text}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml::from_str::<StorageSection>("url = 'file:///x'\nbucket = 'y'").unwrap_err();
        assert!(err.to_string().contains("bucket"), "{err}");
    }
}
