//! Serves the `supervisor` gateway: starts endpoints from named components
//! or from bytes through `weir:rpc/supervision`, keeps their handles, and
//! notes how each one ended; reads and writes files in the directories it
//! was lent.

weir_guest::generate!({
    world: "weir:examples/supervisor-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use exports::weir::examples::supervisor::Guest;
use weir_guest::supervision::{Child, ChildDirectory, ChildOptions, ComponentSource};

thread_local! {
    /// The children whose handles it holds, by id.
    static CHILDREN: RefCell<HashMap<String, Rc<Child>>> = RefCell::new(HashMap::new());
    /// How each child ended, by id.
    static ENDED: RefCell<HashMap<String, Result<(), String>>> = RefCell::new(HashMap::new());
}

struct Supervisor;

impl weir_guest::Endpoint for Supervisor {}

/// Starts a child, keeps its handle, and watches for its end.
async fn start(source: ComponentSource, options: ChildOptions) -> Result<String, String> {
    let id = options.id.clone();
    let child = Rc::new(Child::start(source, options).await.map_err(|error| error.message().to_owned())?);
    let address = child.address();
    CHILDREN.with(|children| children.borrow_mut().insert(id.clone(), child.clone()));
    weir_guest::spawn(async move {
        let ended = child.terminated().await;
        ENDED.with(|all| all.borrow_mut().insert(id, ended));
    });
    Ok(address)
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

weir_guest::export!(Supervisor);
