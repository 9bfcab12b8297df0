//! Image bytes in a directory or an S3-compatible bucket, through the
//! `object_store` crate.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use pp_domain::photos::{ByteStream, MediaKey, MediaStore, StoredObject};
use pp_domain::ports::StoreError;

/// Where the images live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaSettings {
    /// A directory of this machine (created when missing).
    Directory(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Settings),
}

/// An S3-compatible bucket. Credentials not given here come from the
/// process's AWS variables (`AWS_SESSION_TOKEN`, a web identity, an
/// instance profile…).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket's name.
    pub bucket: String,
    /// The service's address, for a server other than AWS (MinIO, Ceph…).
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, when set.
    pub access_key: Option<(String, String)>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key.as_ref().map(|(id, _)| id))
            .finish_non_exhaustive()
    }
}

/// The domain's [`MediaStore`] over an `object_store` store.
#[derive(Debug, Clone)]
pub struct ObjectMedia {
    store: Arc<dyn ObjectStore>,
}

fn failed(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Unknown(anyhow::anyhow!("media storage: {what}: {err}"))
}

impl ObjectMedia {
    /// The store `settings` name.
    ///
    /// # Errors
    /// When the directory cannot be created, or the bucket's settings are
    /// not usable.
    pub fn open(settings: &MediaSettings) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match settings {
            MediaSettings::Directory(dir) => {
                std::fs::create_dir_all(dir)?;
                Arc::new(LocalFileSystem::new_with_prefix(dir)?)
            }
            MediaSettings::S3(s3) => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region);
                if let Some((id, secret)) = &s3.access_key {
                    builder = builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret);
                }
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        // A self-hosted server names buckets in the path.
                        .with_virtual_hosted_style_request(false);
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(ObjectMedia { store })
    }
}

#[async_trait]
impl MediaStore for ObjectMedia {
    async fn put(&self, key: &MediaKey, bytes: &[u8]) -> Result<(), StoreError> {
        self.store
            .put(&Path::from(key.as_str()), PutPayload::from(bytes.to_vec()))
            .await
            .map_err(|e| failed("put", e))?;
        Ok(())
    }

    async fn read(
        &self,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Result<Option<ByteStream>, StoreError> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        match self
            .store
            .get_opts(&Path::from(key.as_str()), options)
            .await
        {
            Ok(found) => Ok(Some(Box::pin(found.into_stream().map(|chunk| {
                chunk
                    .map(|bytes| bytes.to_vec())
                    .map_err(|e| failed("read", e))
            })))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failed("read", e)),
        }
    }

    async fn list(&self) -> Result<Vec<StoredObject>, StoreError> {
        let objects: Vec<_> = self
            .store
            .list(None)
            .try_collect()
            .await
            .map_err(|e| failed("list", e))?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                Some(StoredObject {
                    key: MediaKey::parse(meta.location.as_ref())?,
                    written_at: meta.last_modified,
                })
            })
            .collect())
    }

    async fn delete(&self, key: &MediaKey) -> Result<(), StoreError> {
        match self.store.delete(&Path::from(key.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed("delete", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use pp_domain::photos::ImageFormat;

    use super::*;

    /// The bytes `media` streams for `key` in `range`, if it has them.
    pub(crate) async fn read(
        media: &ObjectMedia,
        key: &MediaKey,
        range: Range<u64>,
    ) -> Option<Vec<u8>> {
        let stream = media.read(key, range).await.unwrap()?;
        let chunks: Vec<_> = stream.collect().await;
        Some(chunks.into_iter().flat_map(Result::unwrap).collect())
    }

    #[tokio::test]
    async fn a_directory_keeps_reads_ranges_lists_and_deletes_images() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("media");
        let media = ObjectMedia::open(&MediaSettings::Directory(root.clone())).unwrap();
        let key = MediaKey::for_bytes(b"0123456789", ImageFormat::Png);
        media.put(&key, b"0123456789").await.unwrap();
        // Writing the same name again is harmless.
        media.put(&key, b"0123456789").await.unwrap();
        assert!(root.join(key.as_str()).is_file());
        assert_eq!(read(&media, &key, 0..10).await.unwrap(), b"0123456789");
        assert_eq!(read(&media, &key, 3..5).await.unwrap(), b"34");
        let missing = MediaKey::for_bytes(b"other", ImageFormat::Jpeg);
        assert_eq!(read(&media, &missing, 0..1).await, None);
        // Only the service's own names are listed.
        std::fs::write(root.join("notes.txt"), "not an image").unwrap();
        let listed = media.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, key);
        let age = chrono::Utc::now() - listed[0].written_at;
        assert!(age < chrono::Duration::minutes(1), "{age}");
        media.delete(&key).await.unwrap();
        media.delete(&key).await.unwrap();
        assert_eq!(read(&media, &key, 0..1).await, None);
        assert!(media.list().await.unwrap().is_empty());
    }

    #[test]
    fn the_secret_key_never_prints() {
        let settings = S3Settings {
            bucket: "photos".into(),
            endpoint: None,
            region: "eu-west-1".into(),
            access_key: Some(("AKIAEXAMPLE".into(), "very-secret".into())),
        };
        let printed = format!("{settings:?}");
        assert!(printed.contains("AKIAEXAMPLE"));
        assert!(!printed.contains("very-secret"));
    }
}
