//! The HA services' store of small records (Flink's `StateHandleStore`):
//! named values in collections, which outlive the endpoint that wrote
//! them. [`MemoryStore`] keeps them in the host's memory (embedded and
//! standalone HA); the ZooKeeper services keep them in ZooKeeper nodes, so
//! that every process of the cluster sees them and they outlive each.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use futures::future::BoxFuture;

use super::HaError;

/// The largest value the store keeps: ZooKeeper's node limit (its
/// `jute.maxbuffer`, 1 MiB, less room for the request around it).
pub const MAX_VALUE_BYTES: usize = 1_000_000;

/// Named values in collections; each future completes once the operation
/// took effect where the values are kept.
pub trait HaStore: Send + Sync + fmt::Debug {
    /// Writes `value` under `key` in `collection`, replacing what was there.
    fn put<'a>(&'a self, collection: &'a str, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), HaError>>;

    /// The value under `key` in `collection`, if there is one.
    fn get<'a>(&'a self, collection: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, HaError>>;

    /// The keys in `collection`, sorted.
    fn keys<'a>(&'a self, collection: &'a str) -> BoxFuture<'a, Result<Vec<String>, HaError>>;

    /// Removes `key` from `collection`, if it is there.
    fn remove<'a>(&'a self, collection: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), HaError>>;
}

/// Checks that `name` (a collection or a key) is one path segment.
pub(super) fn check_name(name: &str) -> Result<(), HaError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(HaError::InvalidStoreName(name.to_owned()));
    }
    Ok(())
}

/// Checks that `value` fits the store.
pub(super) fn check_value(value: &[u8]) -> Result<(), HaError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(HaError::ValueTooLarge { size: value.len(), limit: MAX_VALUE_BYTES });
    }
    Ok(())
}

/// The store in the host's memory: it outlives the endpoints that write
/// it, not the host.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<BTreeMap<String, BTreeMap<String, Vec<u8>>>>);

impl MemoryStore {
    fn with<T>(&self, act: impl FnOnce(&mut BTreeMap<String, BTreeMap<String, Vec<u8>>>) -> T) -> T {
        act(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl HaStore for MemoryStore {
    fn put<'a>(&'a self, collection: &'a str, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), HaError>> {
        Box::pin(async move {
            check_name(collection)?;
            check_name(key)?;
            check_value(&value)?;
            self.with(|all| all.entry(collection.to_owned()).or_default().insert(key.to_owned(), value));
            Ok(())
        })
    }

    fn get<'a>(&'a self, collection: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, HaError>> {
        Box::pin(async move {
            check_name(collection)?;
            check_name(key)?;
            Ok(self.with(|all| all.get(collection).and_then(|values| values.get(key)).cloned()))
        })
    }

    fn keys<'a>(&'a self, collection: &'a str) -> BoxFuture<'a, Result<Vec<String>, HaError>> {
        Box::pin(async move {
            check_name(collection)?;
            Ok(self.with(|all| all.get(collection).map(|values| values.keys().cloned().collect()).unwrap_or_default()))
        })
    }

    fn remove<'a>(&'a self, collection: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), HaError>> {
        Box::pin(async move {
            check_name(collection)?;
            check_name(key)?;
            self.with(|all| all.get_mut(collection).map(|values| values.remove(key)));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_replaces_lists_and_removes_values() {
        let store = MemoryStore::default();
        assert_eq!(store.keys("jobs").await, Ok(Vec::new()));
        store.put("jobs", "b", b"two".to_vec()).await.unwrap();
        store.put("jobs", "a", b"one".to_vec()).await.unwrap();
        store.put("jobs", "a", b"uno".to_vec()).await.unwrap();
        assert_eq!(store.get("jobs", "a").await, Ok(Some(b"uno".to_vec())));
        assert_eq!(store.keys("jobs").await, Ok(vec!["a".to_owned(), "b".to_owned()]));
        store.remove("jobs", "a").await.unwrap();
        store.remove("jobs", "a").await.unwrap();
        assert_eq!(store.get("jobs", "a").await, Ok(None));
    }

    #[tokio::test]
    async fn names_are_one_segment_and_values_fit_a_zookeeper_node() {
        let store = MemoryStore::default();
        assert_eq!(store.put("jobs", "a/b", Vec::new()).await, Err(HaError::InvalidStoreName("a/b".into())));
        assert_eq!(store.keys("").await, Err(HaError::InvalidStoreName(String::new())));
        let huge = vec![0; MAX_VALUE_BYTES + 1];
        assert_eq!(
            store.put("jobs", "a", huge).await,
            Err(HaError::ValueTooLarge { size: MAX_VALUE_BYTES + 1, limit: MAX_VALUE_BYTES })
        );
    }
}
