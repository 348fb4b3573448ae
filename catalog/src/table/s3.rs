//! `s3://` for deltalake through `object_store`'s `AmazonS3`, without the AWS SDK.
//!
//! deltalake finds storage by URL scheme in two process-wide registries: an
//! object-store factory (builds the client from the table URL and storage
//! options) and a log-store factory (how commits are made atomic). We register
//! both for `s3://`: the client is `AmazonS3` configured only from the options
//! we pass (never from the environment), with path-style requests; commits use
//! deltalake's default log store, whose `PutMode::Create` becomes an
//! `If-None-Match: *` conditional put, which AWS S3, MinIO and s3s support.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Once};

use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
    object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use url::Url;

use crate::config::S3Config;

/// deltalake storage options carrying the S3 settings to [`S3ObjectStoreFactory`].
pub(super) fn storage_options(s3: &S3Config) -> HashMap<String, String> {
    let mut options = HashMap::from([
        ("aws_region".to_owned(), s3.region.clone()),
        ("aws_access_key_id".to_owned(), s3.access_key_id.clone()),
        ("aws_secret_access_key".to_owned(), s3.secret_access_key.clone()),
        ("aws_allow_http".to_owned(), s3.allow_http.to_string()),
        // Path-style (`endpoint/bucket/key`): custom endpoints rarely have per-bucket DNS names.
        ("aws_virtual_hosted_style_request".to_owned(), "false".to_owned()),
        // Commit files are created with `If-None-Match: *`, so two writers cannot both make version N.
        ("aws_conditional_put".to_owned(), "etag".to_owned()),
    ]);
    if let Some(endpoint) = &s3.endpoint {
        options.insert("aws_endpoint".to_owned(), endpoint.trim_end_matches('/').to_owned());
    }
    options
}

/// Register the `s3://` factories with deltalake, once per process.
pub(super) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(scheme) = Url::parse("s3://") {
            object_store_factories().insert(scheme.clone(), Arc::new(S3ObjectStoreFactory));
            logstore_factories().insert(scheme, Arc::new(S3LogStoreFactory));
        }
    });
}

/// Builds the bucket's `AmazonS3` client from the storage options.
struct S3ObjectStoreFactory;

impl ObjectStoreFactory for S3ObjectStoreFactory {
    fn parse_url_opts(&self, url: &Url, config: &StorageConfig) -> DeltaResult<(ObjectStoreRef, Path)> {
        let bucket = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| DeltaTableError::InvalidTableLocation(format!("{url}: an s3:// URL needs a bucket")))?;
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        for (key, value) in config.raw() {
            // Options that are not S3 settings (deltalake's own) are deltalake's business.
            if let Ok(key) = AmazonS3ConfigKey::from_str(&key.to_ascii_lowercase()) {
                builder = builder.with_config(key, value.clone());
            }
        }
        let store: ObjectStoreRef = Arc::new(builder.build()?);
        let path = Path::from_url_path(url.path())?;
        Ok((store, path))
    }
}

/// deltalake's default log store (conditional-put commits) for `s3://`.
struct S3LogStoreFactory;

impl LogStoreFactory for S3LogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_path_style_with_conditional_put() {
        let options = storage_options(&S3Config {
            endpoint: Some("http://127.0.0.1:9000/".into()),
            region: "us-east-1".into(),
            access_key_id: "ak".into(),
            secret_access_key: "sk".into(),
            allow_http: true,
        });
        assert_eq!(options["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(options["aws_virtual_hosted_style_request"], "false");
        assert_eq!(options["aws_conditional_put"], "etag");
        for key in options.keys() {
            assert!(AmazonS3ConfigKey::from_str(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn factory_builds_a_bucket_client_and_rejects_bucketless_urls() {
        let config = StorageConfig::parse_options(HashMap::from([
            ("aws_endpoint".to_owned(), "http://127.0.0.1:9000".to_owned()),
            ("aws_allow_http".to_owned(), "true".to_owned()),
            ("aws_region".to_owned(), "us-east-1".to_owned()),
        ]))
        .unwrap();
        let (_, path) = S3ObjectStoreFactory.parse_url_opts(&Url::parse("s3://b/t/x").unwrap(), &config).unwrap();
        assert_eq!(path.as_ref(), "t/x");
        assert!(S3ObjectStoreFactory.parse_url_opts(&Url::parse("s3:///t").unwrap(), &config).is_err());
    }
}
