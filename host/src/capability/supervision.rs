//! `weir:rpc/supervision`: endpoints that start endpoints, and learn how
//! they end.
//!
//! The capability sits below the service, which alone can start an
//! endpoint: it asks through [`Spawner`], which the service implements. A
//! child handle owns its endpoint, as an actor owns its children in Pekko:
//! dropping the handle, or the whole store when the parent terminates,
//! stops the child. A swapped parent's new instance adopts the children of
//! the old one ([`Children`]), so that a swap stops none.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use wasmtime::component::{Accessor, HasSelf, Linker, Resource};

use super::bindings::supervision::{self, ChildDirectory, ChildOptions, ComponentSource, StartError};
use super::store::StoreData;
use crate::config::LentDirectory;
use crate::endpoint::{ActorRef, Control, Lifecycle};
use crate::fencing::FencingToken;

/// The interface, as components import it.
pub(crate) const INTERFACE: &str = "weir:rpc/supervision@0.1.0";

/// Defines the interface in a linker.
pub(crate) fn link(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    supervision::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
}

/// What one child handle costs the host, charged against the parent's
/// memory cap (the child's own store is charged to the child).
const HANDLE_BYTES: u64 = 256;

/// Starts endpoints for their parents: the service, seen from below.
pub(crate) trait Spawner: Send + Sync + std::fmt::Debug {
    /// Starts the endpoint `spec` describes; it has run `on-start` when the
    /// future returns it.
    fn start(&self, spec: ChildSpec) -> BoxFuture<'static, Result<Arc<ActorRef>, ChildError>>;

    /// Compiles `bytes` (once per distinct component) and keeps the
    /// component for [`Source::Loaded`]; its digest.
    fn load(&self, bytes: Vec<u8>) -> BoxFuture<'static, Result<String, ChildError>>;
}

/// Where a child's component comes from.
#[derive(Debug)]
pub(crate) enum Source {
    /// One the host was given under this name.
    Named(String),
    /// A component's bytes.
    Bytes(Vec<u8>),
    /// One loaded on the host, by its digest.
    Loaded(String),
}

/// What a parent asks for: the component, and the endpoint's options.
#[derive(Debug)]
pub(crate) struct ChildSpec {
    pub source: Source,
    pub id: String,
    pub token: Option<FencingToken>,
    pub settings: Vec<(String, String)>,
    pub memory_cap: Option<u64>,
    pub cpu_deadline: Option<Duration>,
    pub directories: Vec<LentDirectory>,
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChildError {
    /// No component has this name on the host.
    #[error("no component is named `{name}` on this host (named: {known}); add it to the `[components]` table")]
    UnknownComponent { name: String, known: String },
    /// No component is loaded under this digest on the host.
    #[error(
        "this host holds no component loaded under digest {0} (loaded on another host, or no longer kept): load its \
         bytes on this host, then start it"
    )]
    UnknownDigest(String),
    /// The bytes are no endpoint component; the loader's message.
    #[error("{0}")]
    InvalidComponent(String),
    /// The host refused the endpoint.
    #[error("{0}")]
    Refused(String),
    /// `on-start` failed.
    #[error("{0}")]
    StartFailed(String),
}

impl From<ChildError> for StartError {
    fn from(error: ChildError) -> Self {
        let text = error.to_string();
        match error {
            ChildError::UnknownComponent { .. } | ChildError::UnknownDigest(_) => StartError::UnknownComponent(text),
            ChildError::InvalidComponent(_) => StartError::InvalidComponent(text),
            ChildError::Refused(_) => StartError::Refused(text),
            ChildError::StartFailed(_) => StartError::StartFailed(text),
        }
    }
}

/// What keeps a child running: every handle to it shares one, and the
/// child is stopped when the last goes. Two handles exist only across a
/// swap, while both the old instance of its parent and the new one that
/// adopted it hold it.
pub(crate) struct Link {
    actor: Arc<ActorRef>,
}

impl Link {
    fn runs(&self) -> bool {
        self.actor.lifecycle.get() != Lifecycle::Terminated
    }
}

impl Drop for Link {
    /// Stops the child; nothing happens if it has terminated already.
    fn drop(&mut self) {
        self.actor.control(Control::Terminate);
    }
}

/// A child handle: the endpoint it owns.
pub struct Child {
    link: Arc<Link>,
}

impl Child {
    fn actor(&self) -> &Arc<ActorRef> {
        &self.link.actor
    }
}

/// The children an endpoint's store keeps track of.
#[derive(Default)]
pub(crate) struct Children {
    /// Those it started or adopted, while a handle to them lives.
    held: Vec<Weak<Link>>,
    /// After a swap, until the new instance adopts them: the children of
    /// the instance it replaced, by id.
    orphans: BTreeMap<String, Arc<Link>>,
}

impl Children {
    fn hold(&mut self, link: &Arc<Link>) {
        self.forget_ended();
        self.held.push(Arc::downgrade(link));
    }

    /// How many of the endpoints it holds still run.
    pub(crate) fn running(&mut self) -> usize {
        self.forget_ended();
        self.held.len()
    }

    fn forget_ended(&mut self) {
        self.held.retain(|link| link.upgrade().is_some_and(|link| link.runs()));
    }

    /// Offers the children this store's instance runs to `heir`, the store
    /// of the instance that replaces it, to adopt. Each is held by both
    /// until one of the stores goes: the child runs on whichever instance
    /// the swap leaves.
    pub(crate) fn bequeath(&mut self, heir: &mut Children) {
        self.forget_ended();
        let running = self.held.iter().filter_map(Weak::upgrade);
        heir.orphans.extend(running.map(|link| (link.actor.id.to_string(), link)));
    }

    /// Ends the adoption once the new instance stays: forgets what it did
    /// not take (children that ended meanwhile); how many children it holds.
    pub(crate) fn settle(&mut self) -> usize {
        self.orphans.clear();
        self.running()
    }

    /// The ids of the running children offered by the instance this one
    /// replaced that it has not adopted.
    pub(crate) fn unadopted(&self) -> Vec<String> {
        self.orphans.iter().filter(|(_, link)| link.runs()).map(|(id, _)| id.clone()).collect()
    }
}

/// The child a parent asks for, its directories resolved against those
/// the parent was lent (`parent`).
///
/// # Errors
///
/// [`ChildError::Refused`] for a directory the parent may not lend.
fn spec(source: Source, options: ChildOptions, parent: &[LentDirectory]) -> Result<ChildSpec, ChildError> {
    let directories = options.directories.into_iter().map(|wanted| lend(parent, wanted)).collect::<Result<_, _>>()?;
    Ok(ChildSpec {
        source,
        id: options.id,
        token: options.fencing_token.map(|uuid| FencingToken::from_u64_pair(uuid.high, uuid.low)),
        settings: options.settings,
        memory_cap: options.memory_cap,
        cpu_deadline: options.cpu_deadline_ms.map(Duration::from_millis),
        directories,
    })
}

/// The host directory behind `wanted`: a child is lent only what its
/// parent holds, and may write only where its parent may.
fn lend(parent: &[LentDirectory], wanted: ChildDirectory) -> Result<LentDirectory, ChildError> {
    let refuse = |why: String| ChildError::Refused(format!("cannot lend `{}`: {why}", wanted.path));
    let (holder, host) =
        parent.iter().find_map(|holder| Some((holder, holder.resolve(&wanted.path)?))).ok_or_else(|| {
            let held: Vec<&str> = parent.iter().map(|d| d.guest.as_str()).collect();
            refuse(match held.is_empty() {
                true => "the parent has no directory of its own to lend".into(),
                false => format!("it is not inside a directory the parent holds ({})", held.join(", ")),
            })
        })?;
    if wanted.writable && !holder.writable {
        return Err(refuse(format!("the parent may only read `{}`", holder.guest)));
    }
    if !wanted.guest_path.starts_with('/') {
        return Err(refuse(format!("`{}` is not an absolute path", wanted.guest_path)));
    }
    if wanted.writable && !host.is_dir() {
        create(&holder.host, &host).map_err(|why| refuse(format!("creating it failed: {why}")))?;
    }
    Ok(LentDirectory { host, guest: wanted.guest_path, writable: wanted.writable })
}

/// Creates `path` and the directories above it up to `holder`, the lent
/// directory it lies in, once sure that the part of it that exists does
/// not lead outside `holder` (through a link). Done here rather than by
/// the parent through its own file access, which takes a trip to a
/// blocking thread per step.
fn create(holder: &std::path::Path, path: &std::path::Path) -> std::io::Result<()> {
    let existing = path.ancestors().find(|ancestor| ancestor.exists()).unwrap_or(holder);
    if !existing.canonicalize()?.starts_with(holder.canonicalize()?) {
        return Err(std::io::Error::other("it leads outside the directory the parent holds"));
    }
    std::fs::create_dir_all(path)
}

/// How a child terminated, as the guest sees it.
async fn termination(actor: &ActorRef) -> Result<(), String> {
    actor.lifecycle.terminated().await.map_err(|failure| failure.to_string())
}

/// The endpoint behind a child handle.
fn actor_of<T>(accessor: &Accessor<T, HasSelf<StoreData>>, child: &Resource<Child>) -> Option<Arc<ActorRef>> {
    accessor.with(|mut access| access.get().table.get(child).ok().map(|child| child.actor().clone()))
}

impl supervision::Host for StoreData {}

impl<T> supervision::HostWithStore<T> for HasSelf<StoreData> {
    async fn load(accessor: &Accessor<T, Self>, bytes: Vec<u8>) -> Result<String, StartError> {
        let (spawner, endpoint) = accessor.with(|mut access| {
            let data = access.get();
            (data.host.spawner.clone(), data.identity.id.clone())
        });
        let size = bytes.len();
        let loaded = spawner.load(bytes).await;
        match &loaded {
            Ok(digest) => tracing::debug!(%endpoint, size, %digest, "loaded a component"),
            Err(error) => tracing::debug!(%endpoint, size, %error, "could not load a component"),
        }
        loaded.map_err(StartError::from)
    }
}

impl supervision::HostChild for StoreData {
    fn adopt(&mut self, id: String) -> wasmtime::Result<Option<Resource<Child>>> {
        let Some(link) = self.children.orphans.remove(&id).filter(|link| link.runs()) else { return Ok(None) };
        tracing::info!(endpoint = %self.identity.id, child = %id, "adopted a child");
        self.children.hold(&link);
        self.hold(Child { link }, HANDLE_BYTES).map(Some)
    }

    fn id(&mut self, child: Resource<Child>) -> String {
        self.table.get(&child).map(|child| child.actor().id.to_string()).unwrap_or_default()
    }

    fn address(&mut self, child: Resource<Child>) -> String {
        self.table.get(&child).map(|child| child.actor().address.to_string()).unwrap_or_default()
    }

    fn drop(&mut self, child: Resource<Child>) -> wasmtime::Result<()> {
        self.release(child, HANDLE_BYTES).map(drop)
    }
}

/// Starts a child from `source` for the endpoint `accessor` serves, and
/// hands it a handle.
async fn start_child<T>(
    accessor: &Accessor<T, HasSelf<StoreData>>,
    source: Source,
    options: ChildOptions,
) -> wasmtime::Result<Result<Resource<Child>, StartError>> {
    let (spawner, parent, directories) = accessor.with(|mut access| {
        let data = access.get();
        (data.host.spawner.clone(), data.identity.id.clone(), data.identity.directories.clone())
    });
    let id = options.id.clone();
    let started = match spec(source, options, &directories) {
        Ok(spec) => spawner.start(spec).await,
        Err(error) => Err(error),
    };
    let actor = match started {
        Ok(actor) => actor,
        Err(error) => {
            tracing::debug!(endpoint = %parent, child = %id, %error, "could not start a child");
            return Ok(Err(error.into()));
        }
    };
    tracing::info!(endpoint = %parent, child = %actor.id, "started a child");
    let child = accessor.with(|mut access| {
        let data = access.get();
        let link = Arc::new(Link { actor });
        data.children.hold(&link);
        data.hold(Child { link }, HANDLE_BYTES)
    })?;
    Ok(Ok(child))
}

impl<T> supervision::HostChildWithStore<T> for HasSelf<StoreData> {
    async fn start(
        accessor: &Accessor<T, Self>,
        source: ComponentSource,
        options: ChildOptions,
    ) -> wasmtime::Result<Result<Resource<Child>, StartError>> {
        let source = match source {
            ComponentSource::Named(name) => Source::Named(name),
            ComponentSource::Bytes(bytes) => Source::Bytes(bytes),
        };
        start_child(accessor, source, options).await
    }

    async fn start_loaded(
        accessor: &Accessor<T, Self>,
        digest: String,
        options: ChildOptions,
    ) -> wasmtime::Result<Result<Resource<Child>, StartError>> {
        start_child(accessor, Source::Loaded(digest), options).await
    }

    async fn terminated(accessor: &Accessor<T, Self>, child: Resource<Child>) -> Result<(), String> {
        match actor_of(accessor, &child) {
            Some(actor) => termination(&actor).await,
            None => Err("no such child handle".into()),
        }
    }

    async fn stop(accessor: &Accessor<T, Self>, child: Resource<Child>) -> Result<(), String> {
        let Some(actor) = actor_of(accessor, &child) else { return Err("no such child handle".into()) };
        actor.control(Control::Terminate);
        termination(&actor).await
    }
}
