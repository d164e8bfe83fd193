//! Instances made ahead for the components endpoints start as children.
//!
//! A parent that starts a component once tends to start it again: a
//! coordinator one endpoint per job it accepts, a worker one per task it is
//! handed and again at each restart. Instantiating (a store, linear memory
//! filled from the data segments, tables of function references) took a
//! tenth of a job's submission at parallelism 4, on the parent's thread,
//! where the next step waited for it. So after each child start the
//! service makes one more instance of that component in the background,
//! and the next start of it takes one and only gives it its identity
//! ([`crate::capability::adopt`]). No guest code runs in an instance
//! before it is taken.
//!
//! What is kept is bounded: as many instances of a component as were
//! started in one burst, up to [`PER_COMPONENT`], and [`IN_ALL`] in all
//! (they hold slots of the instance pool, whose spares are for swaps too,
//! and the pages their instance was given), the components started least
//! lately giving way. A shut-down service drops them.
//!
//! Instances are made on a thread of their own, at the lowest priority
//! (nice 19), once the burst of starts that asked for them has paused for
//! [`SETTLE`]: made at once on the blocking pool, the four instances that
//! follow the four task starts of a job at parallelism 4 took the second
//! core from the rest of its submission, and kept half the gain.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wasmtime::Store;

use crate::capability::StoreData;
use crate::engine::{EndpointComponent, InstanceFuncs};

/// Instances kept ready of one component.
const PER_COMPONENT: usize = 8;
/// Instances kept ready in all, well within the pool's spare slots.
const IN_ALL: usize = 16;

/// An instance made ahead, with its functions.
pub(super) struct Ready {
    pub store: Store<StoreData>,
    pub funcs: InstanceFuncs,
}

/// The instances kept ready, by component.
#[derive(Default)]
pub(super) struct Warm {
    state: Mutex<State<EndpointComponent, Ready>>,
    /// Where instances are made, once one has been asked for.
    maker: Mutex<Option<Sender<Job>>>,
}

/// Making one instance.
type Job = Box<dyn FnOnce() + Send>;

/// How long the starts that asked for instances must have paused before
/// they are made: starts come in bursts (a job's tasks, a restart's), and
/// the instances for the next burst are made once this one is over.
const SETTLE: Duration = Duration::from_millis(1);

/// What is kept, by key (a component), the key started least lately
/// first; generic for its tests.
struct State<K, T> {
    /// Set once the service shuts down: nothing more is kept.
    closed: bool,
    kept: Vec<Kept<K, T>>,
}

struct Kept<K, T> {
    key: K,
    ready: Vec<T>,
    /// Instances being made.
    making: usize,
}

/// Tells keys apart.
trait Key {
    fn same(&self, other: &Self) -> bool;
}

impl Key for EndpointComponent {
    fn same(&self, other: &Self) -> bool {
        EndpointComponent::same(self, other)
    }
}

impl<K, T> Default for State<K, T> {
    fn default() -> Self {
        Self { closed: false, kept: Vec::new() }
    }
}

impl<K: Key + Clone, T> State<K, T> {
    /// One kept for `key`, if one is ready.
    fn take(&mut self, key: &K) -> Option<T> {
        let index = self.position(key)?;
        let ready = self.kept[index].ready.pop();
        self.prune(index);
        ready
    }

    /// Whether one more for `key` is to be made, and if so counts it as
    /// being made: room for it is made by dropping those of the keys used
    /// least lately. Each key is kept up to [`PER_COMPONENT`], all up to
    /// [`IN_ALL`].
    fn reserve(&mut self, key: &K) -> bool {
        if self.closed {
            return false;
        }
        // The key becomes the one used last, and stays last below.
        let entry = match self.position(key) {
            Some(index) => self.kept.remove(index),
            None => Kept { key: key.clone(), ready: Vec::new(), making: 0 },
        };
        let full = entry.ready.len() + entry.making >= PER_COMPONENT;
        self.kept.push(entry);
        if full {
            return false;
        }
        while self.count() >= IN_ALL {
            let last = self.kept.len() - 1;
            let Some(oldest) = self.kept[..last].iter().position(|kept| !kept.ready.is_empty()) else {
                self.prune(last);
                return false;
            };
            self.kept[oldest].ready.remove(0);
            self.prune(oldest);
        }
        let last = self.kept.len() - 1;
        self.kept[last].making += 1;
        true
    }

    /// Keeps `made`, reserved with [`State::reserve`] (`None` if making it
    /// failed); nothing once closed.
    fn made(&mut self, key: &K, made: Option<T>) {
        let Some(index) = self.position(key) else { return };
        let kept = &mut self.kept[index];
        kept.making = kept.making.saturating_sub(1);
        kept.ready.extend(made);
        self.prune(index);
    }

    /// Those ready for `key`.
    #[cfg(test)]
    fn ready(&self, key: &K) -> usize {
        self.position(key).map_or(0, |index| self.kept[index].ready.len())
    }

    fn count(&self) -> usize {
        self.kept.iter().map(|kept| kept.ready.len() + kept.making).sum()
    }

    fn position(&self, key: &K) -> Option<usize> {
        self.kept.iter().position(|kept| kept.key.same(key))
    }

    /// Drops the entry at `index` if it holds nothing and nothing is being
    /// made for it, so that no key is held for nothing.
    fn prune(&mut self, index: usize) {
        if self.kept[index].ready.is_empty() && self.kept[index].making == 0 {
            self.kept.remove(index);
        }
    }
}

impl std::fmt::Debug for Warm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        let kept: Vec<_> = state.kept.iter().map(|k| (&k.key.info().name, k.ready.len(), k.making)).collect();
        f.debug_struct("Warm").field("closed", &state.closed).field("kept", &kept).finish()
    }
}

impl Warm {
    /// An instance of `component` made ahead, if one is ready.
    pub(super) fn take(&self, component: &EndpointComponent) -> Option<Ready> {
        self.lock().take(component)
    }

    /// Makes one more instance of `component` with `make`, on the maker
    /// thread, unless as many as are kept are ready or being made.
    pub(super) fn make_ahead(
        self: &Arc<Self>,
        component: &EndpointComponent,
        make: impl FnOnce() -> Option<Ready> + Send + 'static,
    ) {
        if !self.lock().reserve(component) {
            return;
        }
        let (warm, of) = (self.clone(), component.clone());
        let job: Job = Box::new(move || {
            let made = make();
            warm.lock().made(&of, made);
        });
        let mut maker = self.maker.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = maker.get_or_insert_with(start_maker);
        if let Err(unsent) = sender.send(job) {
            // The thread could not start: nothing is made ahead.
            drop(unsent);
            self.lock().made(component, None);
        }
    }

    /// Drops every instance kept and keeps none from now on; the maker
    /// thread ends once it has made those asked for.
    pub(super) fn close(&self) {
        let kept = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.kept)
        };
        drop(kept);
        self.maker.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    /// Instances ready now, of all components.
    pub(super) fn ready(&self) -> usize {
        self.lock().kept.iter().map(|kept| kept.ready.len()).sum()
    }

    fn lock(&self) -> MutexGuard<'_, State<EndpointComponent, Ready>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the maker thread, at the lowest priority; it ends when its
/// sender is dropped. If the thread cannot start, the sender's sends fail.
fn start_maker() -> Sender<Job> {
    let (sender, jobs) = channel::<Job>();
    let started = std::thread::Builder::new().name("weir-warm".into()).spawn(move || {
        // Linux's nice value is the calling thread's own.
        #[cfg(target_os = "linux")]
        if let Err(error) = rustix::process::nice(19) {
            tracing::debug!(%error, "instances made ahead are made at normal priority");
        }
        while let Ok(first) = jobs.recv() {
            let mut burst = vec![first];
            while let Ok(job) = jobs.recv_timeout(SETTLE) {
                burst.push(job);
            }
            for job in burst {
                job();
            }
        }
    });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start the thread that makes instances ahead; none are");
    }
    sender
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Key for &'static str {
        fn same(&self, other: &Self) -> bool {
            self == other
        }
    }

    /// Reserves and makes one for `key`; whether it was to be made.
    fn make(state: &mut State<&'static str, u32>, key: &'static str) -> bool {
        let reserved = state.reserve(&key);
        if reserved {
            state.made(&key, Some(0));
        }
        reserved
    }

    #[test]
    fn each_key_keeps_up_to_its_bound_and_a_take_makes_room_for_one_more() {
        let mut state = State::default();
        let made = (0..PER_COMPONENT + 2).filter(|_| make(&mut state, "task")).count();
        assert_eq!(made, PER_COMPONENT);
        assert_eq!(state.ready(&"task"), PER_COMPONENT);
        assert!(state.take(&"task").is_some());
        assert!(make(&mut state, "task"), "a taken one is made again");
        assert!(!make(&mut state, "task"));
    }

    #[test]
    fn all_keys_together_keep_up_to_the_bound_the_least_lately_used_giving_way() {
        let mut state = State::default();
        for key in ["a", "b", "c"] {
            for _ in 0..PER_COMPONENT {
                make(&mut state, key);
            }
        }
        assert_eq!(state.count(), IN_ALL);
        assert_eq!(state.ready(&"c"), PER_COMPONENT, "the key used last keeps all of its own");
        assert_eq!(state.ready(&"a"), 0, "the one used least lately gave way");
        assert!(state.position(&"a").is_none(), "and holds no entry for nothing");
        assert_eq!(state.ready(&"b"), IN_ALL - PER_COMPONENT);
    }

    #[test]
    fn those_being_made_count_and_a_failed_or_late_one_is_not_kept() {
        let mut state: State<&'static str, u32> = State::default();
        assert!(state.reserve(&"jm"));
        assert_eq!(state.count(), 1, "being made counts against the bound");
        state.made(&"jm", None);
        assert_eq!(state.count(), 0);
        assert!(state.position(&"jm").is_none());

        assert!(state.reserve(&"jm"));
        state.closed = true;
        state.kept.clear();
        state.made(&"jm", Some(1));
        assert_eq!(state.count(), 0, "made after the close: dropped");
        assert!(!state.reserve(&"jm"), "nothing is made once closed");
    }
}
