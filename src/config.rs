//! `civlink.toml`: the one configuration file, every section optional.
//!
//! ```toml
//! data_dir = "./civlink-data"          # or CIVLINK_DATA_DIR, or --data-dir
//! [catalog]
//! url = "postgres://postgres@127.0.0.1:5432/civlink"   # default: SQLite in data_dir
//! [storage]
//! url = "s3://civlink/tables"          # default: data_dir/tables
//! [storage.s3]
//! endpoint = "http://127.0.0.1:9000"
//! access_key_id = "…"
//! secret_access_key = "…"
//! allow_http = true
//! [serve]
//! flight_addr = "127.0.0.1:50051"     # or CIVLINK_FLIGHT_ADDR, or --addr
//! api_addr = "127.0.0.1:8080"         # or CIVLINK_API_ADDR, or --api-addr
//! query_timeout_secs = 300
//! max_concurrent_per_principal = 4
//! memory_per_query_mib = 1024
//! ```
//!
//! Precedence, highest first: command-line flag, environment variable, file,
//! default. Unknown keys are errors, and every problem is reported at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use civlink_catalog::config::{CatalogConfig, MetadataSection, StorageSection};
use serde::Deserialize;

use crate::serve_cmd::ServeSection;
use crate::{Error, Result};

/// The file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Directory for the SQLite catalog, local tables and demo data.
    pub data_dir: Option<PathBuf>,
    /// The metadata store.
    #[serde(default)]
    pub catalog: MetadataSection,
    /// Table storage.
    #[serde(default)]
    pub storage: StorageSection,
    /// `civlink serve`: addresses, limits, TLS.
    #[serde(default)]
    pub serve: ServeSection,
}

fn read_file(config: Option<&Path>) -> Result<ConfigFile> {
    match config {
        None => Ok(ConfigFile::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
            toml::from_str(&text)
                .map_err(|e| Error::Config { problems: vec![format!("{}: {}", path.display(), e.message())] })
        }
    }
}

/// The `[serve]` section of the file (defaults when there is no file).
pub fn load_serve(config: Option<&Path>) -> Result<ServeSection> {
    Ok(read_file(config)?.serve)
}

/// Resolve the catalog configuration from an optional file, an optional `--data-dir` flag and the environment.
pub fn load(config: Option<&Path>, data_dir_flag: Option<&Path>) -> Result<CatalogConfig> {
    let file = read_file(config)?;
    let mut env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("CIVLINK_")).collect();
    if let Some(flag) = data_dir_flag {
        // The flag outranks the environment.
        env.insert("CIVLINK_DATA_DIR".into(), flag.display().to_string());
    }
    CatalogConfig::resolve(file.data_dir.as_deref(), &file.catalog, &file.storage, &env)
        .map_err(|e| Error::Config { problems: e.problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let err =
            toml::from_str::<ConfigFile>("data_dir = 'x'\n[catalog]\nurl = 'sqlite://x'\nuser = 'y'").unwrap_err();
        assert!(err.to_string().contains("user"), "{err}");
    }

    #[test]
    fn the_flag_outranks_the_file() {
        let dir = std::env::temp_dir().join(format!("civlink-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("civlink.toml");
        std::fs::write(&path, "data_dir = '/from/file'\n").unwrap();
        let config = load(Some(&path), Some(Path::new("/from/flag"))).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
