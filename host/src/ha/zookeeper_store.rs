//! The HA store in ZooKeeper: each value a persistent node
//! `<root>/<cluster-id>/store/<collection>/<key>`, readable with
//! ZooKeeper's own tools. One session serves every operation of the host;
//! it is made on first use, and again after an operation found it gone.

use futures::future::BoxFuture;
use tokio::sync::Mutex;
use zookeeper_client as zk;

use super::HaError;
use super::store::{HaStore, check_name, check_value};
use super::zookeeper::{attempt, cluster_node};
use crate::config::ZooKeeperConfig;

/// Values in ZooKeeper nodes.
#[derive(Debug)]
pub(super) struct ZooKeeperStore {
    config: ZooKeeperConfig,
    /// `<root>/<cluster-id>/store`.
    base: String,
    session: Mutex<Option<zk::Client>>,
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

impl ZooKeeperStore {
    pub(super) fn new(config: ZooKeeperConfig) -> Self {
        let base = format!("{}/store", cluster_node(&config));
        Self { config, base, session: Mutex::new(None) }
    }

    /// The session, connected if there is none or it ended.
    async fn client(&self) -> Result<zk::Client, HaError> {
        let mut session = self.session.lock().await;
        if let Some(client) = session.as_ref().filter(|client| !client.state().is_terminated()) {
            return Ok(client.clone());
        }
        let client = attempt(&self.config, "store", 1).await.map_err(|reason| HaError::Unreachable {
            quorum: self.config.quorum.clone(),
            timeout: self.config.connection_timeout,
            reason,
        })?;
        *session = Some(client.clone());
        Ok(client)
    }

    /// What ZooKeeper said to `operation` on `path`, as the store's error;
    /// a session that failed is made again next time.
    async fn failed(&self, operation: &'static str, path: &str, error: &zk::Error) -> HaError {
        if matches!(error, zk::Error::ConnectionLoss | zk::Error::SessionExpired | zk::Error::ClientClosed) {
            self.session.lock().await.take();
        }
        HaError::Store { operation, path: path.to_owned(), reason: error.to_string() }
    }

    fn collection(&self, collection: &str) -> Result<String, HaError> {
        check_name(collection)?;
        Ok(format!("{}/{collection}", self.base))
    }

    /// The node of `key` in `collection`.
    fn node(&self, collection: &str, key: &str) -> Result<String, HaError> {
        check_name(key)?;
        Ok(format!("{}/{key}", self.collection(collection)?))
    }
}

impl HaStore for ZooKeeperStore {
    fn put<'a>(&'a self, collection: &'a str, key: &'a str, value: Vec<u8>) -> BoxFuture<'a, Result<(), HaError>> {
        Box::pin(async move {
            let (parent, path) = (self.collection(collection)?, self.node(collection, key)?);
            check_value(&value)?;
            let client = self.client().await?;
            let written = async {
                client.mkdir(&parent, &persistent()).await?;
                loop {
                    match client.set_data(&path, &value, None).await {
                        Err(zk::Error::NoNode) => {}
                        other => return other.map(drop),
                    }
                    match client.create(&path, &value, &persistent()).await {
                        // Another writer created it meanwhile: write over it.
                        Err(zk::Error::NodeExists) => {}
                        other => return other.map(drop),
                    }
                }
            };
            match written.await {
                Ok(()) => Ok(()),
                Err(error) => Err(self.failed("write", &path, &error).await),
            }
        })
    }

    fn get<'a>(&'a self, collection: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, HaError>> {
        Box::pin(async move {
            let path = self.node(collection, key)?;
            match self.client().await?.get_data(&path).await {
                Ok((value, _)) => Ok(Some(value)),
                Err(zk::Error::NoNode) => Ok(None),
                Err(error) => Err(self.failed("read", &path, &error).await),
            }
        })
    }

    fn keys<'a>(&'a self, collection: &'a str) -> BoxFuture<'a, Result<Vec<String>, HaError>> {
        Box::pin(async move {
            let path = self.collection(collection)?;
            match self.client().await?.list_children(&path).await {
                Ok(mut keys) => {
                    keys.sort_unstable();
                    Ok(keys)
                }
                Err(zk::Error::NoNode) => Ok(Vec::new()),
                Err(error) => Err(self.failed("list", &path, &error).await),
            }
        })
    }

    fn remove<'a>(&'a self, collection: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), HaError>> {
        Box::pin(async move {
            let path = self.node(collection, key)?;
            match self.client().await?.delete(&path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => Ok(()),
                Err(error) => Err(self.failed("remove", &path, &error).await),
            }
        })
    }
}
