//! `weir:rpc/leadership`: leader election and retrieval for endpoints,
//! through the service's HA services.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Accessor, HasSelf, Linker, Resource};

use super::bindings::leadership::{self, Leader, LeadershipChange};
use super::bindings::types::Uuid;
use super::store::StoreData;
use crate::fencing::FencingToken;
use crate::ha::{Confirmer, LeaderElection, LeaderInformation, LeaderRetrieval, Leadership as Change};

/// The interface, as components import it.
pub(crate) const INTERFACE: &str = "weir:rpc/leadership@0.1.0";

/// Defines the interface in a linker.
pub(crate) fn link(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    leadership::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
}

/// What one contender or follower handle costs the host, charged against
/// the endpoint's memory cap.
const HANDLE_BYTES: u64 = 512;

/// A contender handle: its election, which `next` awaits (`None` once it
/// left), a way to confirm while it does, and a way to leave while it does.
pub struct Contender {
    election: Arc<Mutex<Option<LeaderElection>>>,
    confirmer: Confirmer,
    left: CancellationToken,
}

/// A follower handle: the leader as last seen, and the retrieval `changed`
/// and `next-leader` await.
pub struct Follower {
    seen: LeaderRetrieval,
    waiting: Arc<Mutex<LeaderRetrieval>>,
}

fn uuid(token: FencingToken) -> Uuid {
    let (high, low) = token.as_u64_pair();
    Uuid { high, low }
}

fn token(uuid: Uuid) -> FencingToken {
    FencingToken::from_u64_pair(uuid.high, uuid.low)
}

fn leader(info: LeaderInformation) -> Leader {
    Leader { session: uuid(info.session), address: info.address }
}

impl StoreData {
    /// Keeps `value` in the resource table, charged against the memory cap.
    pub(crate) fn hold<T: Send + 'static>(&mut self, value: T, bytes: u64) -> wasmtime::Result<Resource<T>> {
        self.charge(bytes)?;
        Ok(self.table.push(value)?)
    }

    /// Lets go of a handle [`StoreData::hold`] kept.
    pub(crate) fn release<T: Send + 'static>(&mut self, handle: Resource<T>, bytes: u64) -> wasmtime::Result<T> {
        let value = self.table.delete(handle)?;
        self.refund(bytes);
        Ok(value)
    }
}

impl leadership::Host for StoreData {}

impl leadership::HostContender for StoreData {
    fn enter(&mut self, name: String) -> wasmtime::Result<Result<Resource<Contender>, String>> {
        let election = match self.host.ha.leader_election(&name) {
            Ok(election) => election,
            Err(error) => return Ok(Err(error.to_string())),
        };
        tracing::debug!(endpoint = %self.identity.id, %name, "entered the election");
        let confirmer = election.confirmer();
        let contender =
            Contender { election: Arc::new(Mutex::new(Some(election))), confirmer, left: CancellationToken::new() };
        Ok(Ok(self.hold(contender, HANDLE_BYTES)?))
    }

    fn confirm(&mut self, contender: Resource<Contender>, session: Uuid, address: String) {
        if let Ok(contender) = self.table.get(&contender) {
            contender.confirmer.confirm(token(session), &address);
        }
    }

    fn leave(&mut self, contender: Resource<Contender>) {
        if let Ok(contender) = self.table.get(&contender) {
            leave(contender);
        }
    }

    fn drop(&mut self, contender: Resource<Contender>) -> wasmtime::Result<()> {
        leave(&self.release(contender, HANDLE_BYTES)?);
        Ok(())
    }
}

/// Leaves the election at once if nobody awaits `next`, else as soon as
/// that `next` returns.
fn leave(contender: &Contender) {
    contender.left.cancel();
    if let Ok(mut election) = contender.election.try_lock() {
        election.take();
    }
}

impl<T> leadership::HostContenderWithStore<T> for HasSelf<StoreData> {
    async fn next(accessor: &Accessor<T, Self>, contender: Resource<Contender>) -> Option<LeadershipChange> {
        let (election, left) = accessor.with(|mut access| {
            let contender = access.get().table.get(&contender).ok()?;
            Some((contender.election.clone(), contender.left.clone()))
        })?;
        let mut election = election.lock().await;
        let change = tokio::select! {
            change = election.as_mut()?.next() => change,
            () = left.cancelled() => None,
        };
        if left.is_cancelled() {
            election.take();
        }
        let change = change?;
        Some(match change {
            Change::Granted(session) => LeadershipChange::Granted(uuid(session)),
            Change::Revoked => LeadershipChange::Revoked,
        })
    }
}

impl leadership::HostFollower for StoreData {
    fn follow(&mut self, name: String) -> wasmtime::Result<Result<Resource<Follower>, String>> {
        let retrieval = match self.host.ha.leader_retrieval(&name) {
            Ok(retrieval) => retrieval,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let follower = Follower { seen: retrieval.clone(), waiting: Arc::new(Mutex::new(retrieval)) };
        Ok(Ok(self.hold(follower, HANDLE_BYTES)?))
    }

    fn current(&mut self, follower: Resource<Follower>) -> Option<Leader> {
        self.table.get(&follower).ok()?.seen.current().map(leader)
    }

    fn drop(&mut self, follower: Resource<Follower>) -> wasmtime::Result<()> {
        self.release(follower, HANDLE_BYTES).map(|_| ())
    }
}

impl<T> leadership::HostFollowerWithStore<T> for HasSelf<StoreData> {
    async fn changed(accessor: &Accessor<T, Self>, follower: Resource<Follower>) -> Option<Leader> {
        let retrieval = accessor.with(|mut access| Some(access.get().table.get(&follower).ok()?.waiting.clone()))?;
        retrieval.lock().await.changed().await.flatten().map(leader)
    }

    async fn next_leader(
        accessor: &Accessor<T, Self>,
        follower: Resource<Follower>,
        previous: Option<Uuid>,
    ) -> Option<Leader> {
        let retrieval = accessor.with(|mut access| Some(access.get().table.get(&follower).ok()?.waiting.clone()))?;
        retrieval.lock().await.next_leader(previous.map(token)).await.map(leader)
    }
}
