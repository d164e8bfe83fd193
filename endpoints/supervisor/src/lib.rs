//! Serves the `supervisor` gateway: starts endpoints from named components
//! or from bytes through `weir:rpc/supervision`, keeps their handles, and
//! notes how each one ended; reads and writes files in the directories it
//! was lent. Swapped, it hands over how its children ended and adopts
//! those still running, except any whose id starts with `unadoptable`
//! (which tests use to see such a swap refused).

weir_guest::generate!({
    world: "weir:examples/supervisor-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use exports::weir::examples::supervisor::Guest;
use weir_guest::supervision::{self, Child, ChildDirectory, ChildOptions, ComponentSource, StartError};

thread_local! {
    /// The children whose handles it holds, by id.
    static CHILDREN: RefCell<HashMap<String, Rc<Child>>> = RefCell::new(HashMap::new());
    /// How each child ended, by id.
    static ENDED: RefCell<HashMap<String, Result<(), String>>> = RefCell::new(HashMap::new());
}

struct Supervisor;

impl weir_guest::Endpoint for Supervisor {}

/// Its layout of the state it hands over: the ids of its children, and
/// how those that ended did.
const LAYOUT: u32 = 1;

type State = (Vec<String>, HashMap<String, Result<(), String>>);

impl weir_guest::Handover for Supervisor {
    fn snapshot() -> Result<Option<weir_guest::State>, String> {
        let children = CHILDREN.with(|children| children.borrow().keys().cloned().collect());
        let ended = ENDED.with(|all| all.borrow().clone());
        let state: State = (children, ended);
        weir_guest::State::encode(LAYOUT, &state).map(Some)
    }

    async fn restore(state: weir_guest::State) -> Result<(), String> {
        let (children, ended): State = state.decode(LAYOUT, "a supervisor's")?;
        ENDED.with(|all| all.borrow_mut().extend(ended));
        for id in children.into_iter().filter(|id| !id.starts_with("unadoptable")) {
            match Child::adopt(&id) {
                Some(child) => keep(id, child),
                // It ended as the swap ran, and how went with the old
                // instance's watcher.
                None => ENDED.with(|all| {
                    let unknown = || Err("it ended while its parent's component was swapped".to_owned());
                    all.borrow_mut().entry(id).or_insert_with(unknown);
                }),
            }
        }
        Ok(())
    }
}

/// Keeps a child's handle, and watches for its end.
fn keep(id: String, child: Child) {
    let child = Rc::new(child);
    CHILDREN.with(|children| children.borrow_mut().insert(id.clone(), child.clone()));
    weir_guest::spawn(async move {
        let ended = child.terminated().await;
        ENDED.with(|all| all.borrow_mut().insert(id, ended));
    });
}

/// Keeps a child just started, and watches for its end; its address.
fn started(id: String, child: Result<Child, StartError>) -> Result<String, String> {
    let child = child.map_err(|error| error.message().to_owned())?;
    let address = child.address();
    keep(id, child);
    Ok(address)
}

/// Starts a child, keeps its handle, and watches for its end.
async fn start(source: ComponentSource, options: ChildOptions) -> Result<String, String> {
    let id = options.id.clone();
    started(id, Child::start(source, options).await)
}

impl Guest for Supervisor {
    async fn start_named(name: String, id: String, directories: Vec<(String, String, bool)>) -> Result<String, String> {
        let mut options = ChildOptions::new(id);
        options.directories = directories
            .into_iter()
            .map(|(path, guest_path, writable)| ChildDirectory { path, guest_path, writable })
            .collect();
        start(ComponentSource::Named(name), options).await
    }

    async fn start_bytes(
        component: Vec<u8>,
        id: String,
        settings: Vec<(String, String)>,
        memory_cap: u64,
    ) -> Result<String, String> {
        let mut options = ChildOptions::new(id);
        options.settings = settings;
        options.memory_cap = (memory_cap > 0).then_some(memory_cap);
        start(ComponentSource::Bytes(component), options).await
    }

    async fn load(component: Vec<u8>) -> Result<String, String> {
        supervision::load(component).await.map_err(|error| error.message().to_owned())
    }

    async fn start_loaded(digest: String, id: String) -> Result<String, String> {
        started(id.clone(), Child::start_loaded(digest, ChildOptions::new(id)).await)
    }

    async fn stop(id: String) -> Result<(), String> {
        let child = CHILDREN.with(|children| children.borrow_mut().remove(&id));
        match child {
            Some(child) => child.stop().await,
            None => Err(format!("no child `{id}`")),
        }
    }

    fn ended(id: String) -> Option<Result<(), String>> {
        ENDED.with(|all| all.borrow().get(&id).cloned())
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|error| format!("cannot read `{path}`: {error}"))
    }

    fn write_file(path: String, text: String) -> Result<(), String> {
        std::fs::write(&path, text).map_err(|error| format!("cannot write `{path}`: {error}"))
    }
}

weir_guest::export!(Supervisor, handover);
