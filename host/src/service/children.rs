//! Endpoints that endpoints start (`weir:rpc/supervision`): the components
//! a host knows by name, those it compiled from bytes a parent handed it,
//! and the service as the capability's [`Spawner`].

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use futures::future::BoxFuture;

use super::{EndpointOptions, RpcService, ServiceInner, StartError};
use crate::capability::{ChildError, ChildSpec, Source, Spawner};
use crate::component::CompileCache;
use crate::endpoint::ActorRef;
use crate::engine::{EndpointComponent, Engine};

/// Components compiled from bytes kept for reuse: a job's tasks start from
/// the same artifact again and again, and compiling takes far longer than
/// starting.
const COMPILED_KEPT: usize = 16;

/// The components children start from.
#[derive(Debug, Default)]
pub(super) struct Components {
    /// Given to the builder, by name.
    named: BTreeMap<String, EndpointComponent>,
    /// Compiled from bytes, the one used last at the end.
    compiled: Mutex<Vec<Compiled>>,
}

/// A component compiled from bytes: the bytes, a sampled hash of them
/// (compared before the bytes on a lookup by bytes) and their digest (the
/// name `load` gives it).
#[derive(Debug)]
struct Compiled {
    hash: u64,
    digest: String,
    bytes: Arc<[u8]>,
    component: EndpointComponent,
}

impl Compiled {
    /// Whether it was compiled from `bytes`, whose hash is `hash`.
    fn is(&self, hash: u64, bytes: &[u8]) -> bool {
        self.hash == hash && *self.bytes == *bytes
    }
}

impl Components {
    pub(super) fn new(named: BTreeMap<String, EndpointComponent>) -> Self {
        Self { named, compiled: Mutex::default() }
    }

    fn named(&self, name: &str) -> Result<EndpointComponent, ChildError> {
        self.named.get(name).cloned().ok_or_else(|| ChildError::UnknownComponent {
            name: name.to_owned(),
            known: match self.named.keys().map(String::as_str).collect::<Vec<_>>().join(", ") {
                known if known.is_empty() => "none".to_owned(),
                known => known,
            },
        })
    }

    /// The component loaded under `digest`, if still kept.
    fn loaded(&self, digest: &str) -> Result<EndpointComponent, ChildError> {
        self.find(|kept| kept.digest == digest)
            .map(|(component, _)| component)
            .ok_or_else(|| ChildError::UnknownDigest(digest.to_owned()))
    }

    /// The component `bytes` hold and its digest, compiled once (off the
    /// endpoints' threads) and kept among the [`COMPILED_KEPT`] used last.
    async fn compiled(&self, engine: &Engine, bytes: Vec<u8>) -> Result<(EndpointComponent, String), ChildError> {
        let hash = sampled_hash(&bytes);
        if let Some(kept) = self.find(|kept| kept.is(hash, &bytes)) {
            return Ok(kept);
        }
        let bytes: Arc<[u8]> = bytes.into();
        let (engine, source) = (engine.clone(), bytes.clone());
        let name = format!("a component of {} bytes", bytes.len());
        let (component, digest) = tokio::task::spawn_blocking(move || {
            engine.load_bytes(&name, &source).map(|component| (component, CompileCache::digest(&source)))
        })
        .await
        .map_err(|error| ChildError::InvalidComponent(format!("compiling the component failed: {error}")))?
        .map_err(|error| ChildError::InvalidComponent(crate::error::chain(&error)))?;
        let mut compiled = self.lock();
        // Two parents may have compiled the same bytes at once: keep one.
        if let Some(kept) = compiled.iter().find(|kept| kept.is(hash, &bytes)) {
            return Ok((kept.component.clone(), kept.digest.clone()));
        }
        if compiled.len() == COMPILED_KEPT {
            compiled.remove(0);
        }
        compiled.push(Compiled { hash, digest: digest.clone(), bytes, component: component.clone() });
        Ok((component, digest))
    }

    /// The kept component `which` picks, and its digest, made the one used
    /// last.
    fn find(&self, which: impl Fn(&Compiled) -> bool) -> Option<(EndpointComponent, String)> {
        let mut compiled = self.lock();
        let index = compiled.iter().position(which)?;
        let kept = compiled.remove(index);
        let found = (kept.component.clone(), kept.digest.clone());
        compiled.push(kept);
        Some(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Compiled>> {
        self.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A hash of `bytes` that reads a sample of them: a hit is confirmed by
/// comparing the bytes whole, so the hash need only tell components apart
/// cheaply, and their length with a few hundred bytes spread over them
/// nearly always does. Hashing all of a task component (hundreds of KiB)
/// cost more than starting the task.
fn sampled_hash(bytes: &[u8]) -> u64 {
    const SAMPLES: usize = 64;
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.len().hash(&mut hasher);
    for chunk in bytes.chunks((bytes.len() / SAMPLES).max(1)) {
        chunk[..chunk.len().min(8)].hash(&mut hasher);
    }
    bytes[bytes.len().saturating_sub(8)..].hash(&mut hasher);
    hasher.finish()
}

/// The service as [`Spawner`]. The endpoints' host context holds it and the
/// service holds the host context, so it only holds the service weakly; it
/// is set once the service exists.
#[derive(Debug, Default)]
pub(super) struct ChildStarter(OnceLock<Weak<ServiceInner>>);

impl ChildStarter {
    pub(super) fn serve(&self, inner: &Arc<ServiceInner>) {
        let _ = self.0.set(Arc::downgrade(inner));
    }

    /// The service, unless it has stopped.
    fn service(&self) -> Result<RpcService, ChildError> {
        let inner = self.0.get().and_then(Weak::upgrade);
        inner.map(|inner| RpcService { inner }).ok_or_else(|| ChildError::Refused("the RPC service is stopped".into()))
    }
}

impl Spawner for ChildStarter {
    fn start(&self, spec: ChildSpec) -> BoxFuture<'static, Result<Arc<ActorRef>, ChildError>> {
        let service = self.service();
        Box::pin(async move { start(&service?, spec).await })
    }

    fn load(&self, bytes: Vec<u8>) -> BoxFuture<'static, Result<String, ChildError>> {
        let service = self.service();
        Box::pin(async move {
            let inner = service?.inner;
            let (_, digest) = inner.components.compiled(&inner.engine, bytes).await?;
            Ok(digest)
        })
    }
}

async fn start(service: &RpcService, spec: ChildSpec) -> Result<Arc<ActorRef>, ChildError> {
    let inner = &service.inner;
    let component = match spec.source {
        Source::Named(name) => inner.components.named(&name)?,
        Source::Bytes(bytes) => inner.components.compiled(&inner.engine, bytes).await?.0,
        Source::Loaded(digest) => inner.components.loaded(&digest)?,
    };
    let options = EndpointOptions {
        fencing_token: spec.token,
        memory_cap: spec.memory_cap,
        cpu_deadline: spec.cpu_deadline,
        config: spec.settings,
        directories: spec.directories,
    };
    match service.start(&spec.id, &component, options).await {
        Ok(endpoint) => {
            service.make_ahead(&component);
            Ok(endpoint.actor)
        }
        Err(StartError::Spawn(error)) => Err(ChildError::Refused(crate::error::chain(&error))),
        Err(StartError::Failed(failure)) => Err(ChildError::StartFailed(failure.to_string())),
    }
}
