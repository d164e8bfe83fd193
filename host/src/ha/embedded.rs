//! In-memory HA for one process (Flink's `EmbeddedHaServices`): the first
//! contender of a component leads; when it leaves, the next in line is
//! granted leadership under a new session.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use super::{
    Contender, Grants, HaContext, HaError, HaServices, HaStore, LeaderElection, LeaderInformation, LeaderRetrieval,
    MemoryStore, check_component,
};
use crate::fencing::FencingToken;

/// In-memory leader election and retrieval.
#[derive(Debug)]
pub struct Embedded {
    components: Mutex<HashMap<String, Arc<Component>>>,
    context: HaContext,
    store: MemoryStore,
}

/// One component's election.
#[derive(Debug)]
struct Component {
    name: String,
    state: Mutex<Election>,
    leader: watch::Sender<Option<LeaderInformation>>,
}

#[derive(Debug, Default)]
struct Election {
    /// Contenders in the order they entered; the first one leads.
    line: VecDeque<Entrant>,
    next_id: u64,
}

#[derive(Debug)]
struct Entrant {
    id: u64,
    grants: Grants,
    /// The session it was granted, once it leads.
    session: Option<FencingToken>,
}

impl Embedded {
    /// Elections in memory, their tasks on `context`'s runtime.
    pub fn new(context: HaContext) -> Self {
        Self { components: Mutex::default(), context, store: MemoryStore::default() }
    }

    fn component(&self, name: &str) -> Arc<Component> {
        let mut components = self.components.lock().unwrap_or_else(PoisonError::into_inner);
        components
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Component { name: name.to_owned(), state: Mutex::default(), leader: watch::Sender::new(None) })
            })
            .clone()
    }
}

impl HaServices for Embedded {
    fn leader_election(&self, component: &str) -> Result<LeaderElection, HaError> {
        check_component(component)?;
        let (election, Contender { grants, mut confirmations }) =
            LeaderElection::new(component, self.context.events.clone());
        let component = self.component(component);
        let id = component.enter(grants);
        self.context.runtime.spawn(async move {
            while let Some(confirmed) = confirmations.recv().await {
                component.confirm(id, confirmed);
            }
            component.leave(id);
        });
        Ok(election)
    }

    fn leader_retrieval(&self, component: &str) -> Result<LeaderRetrieval, HaError> {
        check_component(component)?;
        Ok(LeaderRetrieval { leader: self.component(component).leader.subscribe() })
    }

    fn store(&self) -> &dyn HaStore {
        &self.store
    }
}

impl Component {
    fn lock(&self) -> std::sync::MutexGuard<'_, Election> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, grants: Grants) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.line.push_back(Entrant { id, grants, session: None });
        self.grant_first(&mut state);
        id
    }

    fn leave(&self, id: u64) {
        let mut state = self.lock();
        let was_leader = state.line.front().is_some_and(|first| first.id == id);
        state.line.retain(|entrant| entrant.id != id);
        if was_leader {
            tracing::info!(component = %self.name, "leader left; electing the next contender");
            self.leader.send_replace(None);
            self.grant_first(&mut state);
        }
    }

    fn confirm(&self, id: u64, confirmed: LeaderInformation) {
        let state = self.lock();
        let current = state.line.front().filter(|first| first.id == id).and_then(|first| first.session);
        if current == Some(confirmed.session) {
            tracing::info!(component = %self.name, leader = %confirmed, "leadership confirmed");
            self.leader.send_replace(Some(confirmed));
        }
    }

    fn grant_first(&self, state: &mut Election) {
        if let Some(first) = state.line.front_mut().filter(|first| first.session.is_none()) {
            let session = FencingToken::random();
            first.session = Some(session);
            first.grants.grant(session);
        }
    }
}
