//! Standalone HA (Flink's `StandaloneHaServices`): no election at all. Every
//! contender leads at once under [`DEFAULT_LEADER_ID`], and listeners learn
//! the fixed addresses the configuration gives. A name ending in `*` gives
//! the address of every component whose name starts with the rest, with
//! what follows that in place of the address's `*`: how components named
//! after what they lead (one per job, say) are found at a known host, as
//! Flink's standalone mode finds a job's leader at the address it is given.

use std::collections::BTreeMap;

use tokio::sync::watch;

use super::{
    DEFAULT_LEADER_ID, HaContext, HaError, HaServices, HaStore, LeaderElection, LeaderInformation, LeaderRetrieval,
    MemoryStore, check_component,
};

/// Fixed leaders by component name.
#[derive(Debug)]
pub struct Standalone {
    leaders: BTreeMap<String, String>,
    context: HaContext,
    store: MemoryStore,
}

impl Standalone {
    /// Leaders at the given addresses, by component name.
    pub fn new(leaders: BTreeMap<String, String>, context: HaContext) -> Self {
        Self { leaders, context, store: MemoryStore::default() }
    }

    /// `component`'s configured address: its own entry, else that of the
    /// longest pattern `prefix*` it matches.
    fn address(&self, component: &str) -> Option<String> {
        if let Some(address) = self.leaders.get(component) {
            return Some(address.clone());
        }
        let matches = self.leaders.iter().filter_map(|(pattern, address)| {
            let prefix = pattern.strip_suffix('*')?;
            Some((prefix.len(), address.replacen('*', component.strip_prefix(prefix)?, 1)))
        });
        matches.max_by_key(|(prefix, _)| *prefix).map(|(_, address)| address)
    }
}

impl HaServices for Standalone {
    fn leader_election(&self, component: &str) -> Result<LeaderElection, HaError> {
        check_component(component)?;
        let (election, contender) = LeaderElection::new(component, self.context.events.clone());
        contender.grants.grant(DEFAULT_LEADER_ID);
        // Confirmations change nothing (the address is the configured one);
        // the contender's side lives as long as the election, its grants
        // too: dropped, they would end the election right after the grant.
        self.context.runtime.spawn(async move {
            let mut contender = contender;
            while contender.confirmations.recv().await.is_some() {}
        });
        Ok(election)
    }

    fn leader_retrieval(&self, component: &str) -> Result<LeaderRetrieval, HaError> {
        check_component(component)?;
        let address = self.address(component).ok_or_else(|| HaError::NoConfiguredLeader(component.to_owned()))?;
        let leader = LeaderInformation { session: DEFAULT_LEADER_ID, address };
        let (sender, receiver) = watch::channel(Some(leader));
        // The leader never changes, but a dropped sender would tell the
        // listeners that the retrieval has ended.
        self.context.runtime.spawn(async move { sender.closed().await });
        Ok(LeaderRetrieval { leader: receiver })
    }

    /// In memory: a standalone cluster's records outlive endpoints, not
    /// the host (as Flink's standalone mode keeps no job graphs).
    fn store(&self) -> &dyn HaStore {
        &self.store
    }
}
