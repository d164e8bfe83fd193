//! Client interfaces (`<gateway>-client`): the host side of the typed
//! handles through which an endpoint calls other endpoints' gateways.
//!
//! Each imported client interface gets a dynamic resource type
//! (`host_dynamic(i)` for the component's `i`-th client) whose reps index the
//! endpoint's [`Connections`]. Calls are concurrent host functions, so the
//! calling endpoint keeps serving other messages while it awaits a reply.
//! Methods whose byte lists can pass whole are typed host functions
//! ([`typed_clients`]); the others take dynamic values.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use slab::Slab;
use wasmtime::AsContextMut;
use wasmtime::component::{Accessor, Linker, ResourceAny, ResourceDynamic, ResourceType, Val};

use super::store::StoreData;
use super::typed_clients;
use super::{Capability, ComponentInfo};
use crate::error::RpcError;
use crate::fencing::FencingToken;
use crate::gateway::{
    ClientInterface, ClientReply, FunctionId, GatewaySignature, Value, gateway_of_client, routes, token_from_val,
};
use crate::route::{Connector, Route};

/// What one open handle costs the host, charged against the endpoint's
/// memory cap: its [`Connection`] and its share of the method table.
const HANDLE_BYTES: u64 = 256;

/// Lends every client interface a component imports.
#[derive(Debug)]
pub(crate) struct Clients;

impl Capability for Clients {
    fn describe(&self) -> &'static str {
        "client interfaces named `<gateway>-client`"
    }

    fn lends(&self, name: &str) -> bool {
        gateway_of_client(name).is_some()
    }

    fn link(&self, linker: &mut Linker<StoreData>, component: &ComponentInfo) -> wasmtime::Result<()> {
        for (index, client) in component.clients.iter().enumerate() {
            define(linker, u32::try_from(index)?, client)?;
        }
        Ok(())
    }

    fn state(&self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(Connections::default()))
    }
}

/// The handles an endpoint holds; a handle's rep is its key.
#[derive(Debug, Default)]
pub(crate) struct Connections(Slab<Connection>);

/// A handle the guest holds: a checked route to one gateway of one
/// endpoint, on this host or another.
#[derive(Debug)]
pub(crate) struct Connection {
    pub target: Route,
    /// Target function for each of the client's methods, by method index.
    pub routes: Arc<[FunctionId]>,
    pub token: Option<FencingToken>,
    pub timeout: Duration,
}

impl StoreData {
    fn connections(&mut self) -> &mut Slab<Connection> {
        &mut self.state::<Connections>().expect("the clients' state exists where they are linked").0
    }

    fn connection(&mut self, rep: usize) -> Option<&mut Connection> {
        self.connections().get_mut(rep)
    }
}

/// Defines client interface `client`, the component's `index`-th, in `linker`.
fn define(linker: &mut Linker<StoreData>, index: u32, client: &ClientInterface) -> wasmtime::Result<()> {
    let mut instance = linker.instance(&client.interface)?;
    instance.resource(&client.resource, ResourceType::host_dynamic(index), |mut store, rep| {
        let data = store.data_mut();
        if data.connections().try_remove(rep as usize).is_some() {
            data.refund(HANDLE_BYTES);
        }
        Ok(())
    })?;
    if let Some(name) = &client.connect {
        let client = Arc::new(LinkedClient { interface: client.clone(), known: KnownRoutes::default() });
        instance.func_new_concurrent(name, move |accessor, _ty, params, results| {
            let client = client.clone();
            Box::pin(async move { connect(accessor, &client, index, params, results).await })
        })?;
    }
    if let Some(name) = &client.set_timeout {
        instance.func_new(name, |mut store, _ty, params, _results| {
            let rep = borrowed_rep_of(&mut store, &params[0])?;
            let Val::U64(millis) = params[1] else { wasmtime::bail!("set-timeout takes a u64") };
            if let Some(connection) = store.data_mut().connection(rep) {
                connection.timeout = Duration::from_millis(millis.max(1));
            }
            Ok(())
        })?;
    }
    if let Some(name) = &client.address {
        instance.func_new(name, |mut store, _ty, params, results| {
            let rep = borrowed_rep_of(&mut store, &params[0])?;
            let address = store.data_mut().connection(rep).map_or_else(String::new, |c| c.target.address().to_owned());
            results[0] = Val::String(address);
            Ok(())
        })?;
    }
    for (method, spec) in client.methods.iter().enumerate() {
        if typed_clients::define(&mut instance, method, spec)? {
            continue;
        }
        let tell = spec.reply == ClientReply::Tell;
        instance.func_new_concurrent(&spec.import_name, move |accessor, _ty, params, results| {
            Box::pin(async move { call(accessor, method, tell, params, results).await })
        })?;
    }
    Ok(())
}

/// A client interface as a component's `connect` serves it: the interface,
/// and the routes its methods take to the gateways it has connected to.
#[derive(Debug)]
struct LinkedClient {
    interface: ClientInterface,
    known: KnownRoutes,
}

/// The routes a client's methods take to gateways of this host, by the
/// gateway's signature. Matching a client against a gateway compares the
/// types of every method; a loaded component's signature never changes, so
/// each pair is matched once, not at each connect (a job's submission
/// connects a dozen times, and the matching was a fortieth of its CPU).
/// Each entry holds its signature weakly: the allocation stays while the
/// entry does, so no other signature can take its address.
#[derive(Debug, Default)]
struct KnownRoutes(Mutex<Vec<KnownRoute>>);

/// The routes to one gateway.
type KnownRoute = (Weak<GatewaySignature>, Arc<[FunctionId]>);

impl KnownRoutes {
    /// The routes to `gateway`, matched now if they are not known yet.
    fn to(&self, client: &ClientInterface, gateway: &Arc<GatewaySignature>) -> Result<Arc<[FunctionId]>, String> {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, routes)) =
            known.iter().find(|(signature, _)| std::ptr::eq(signature.as_ptr(), Arc::as_ptr(gateway)))
        {
            return Ok(routes.clone());
        }
        let routes: Arc<[FunctionId]> = routes(client, gateway.iter())?.into();
        // Components unloaded since leave their entries behind.
        known.retain(|(signature, _)| signature.strong_count() > 0);
        known.push((Arc::downgrade(gateway), routes.clone()));
        Ok(routes)
    }
}

/// Flink's `connect`: resolve the address and check that the target exports
/// the gateway with the client's types.
async fn connect(
    accessor: &Accessor<StoreData>,
    client: &LinkedClient,
    resource_type: u32,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let (Val::String(address), Val::Option(token)) = (&params[0], &params[1]) else {
        wasmtime::bail!("connect takes (string, option<fencing-token>)");
    };
    let token = token.as_deref().and_then(token_from_val);
    let (connector, caller) = accessor.with(|mut access| {
        let data = access.data_mut();
        (data.host.connector.clone(), data.identity.id.clone())
    });
    let timeout = connector.ask_timeout();
    results[0] = match handshake(&connector, address, client).await {
        Ok((target, routes)) => {
            tracing::debug!(endpoint = %caller, to = %address, gateway = %client.interface.gateway, "connected");
            let connection = Connection { target, routes, token, timeout };
            let handle = accessor.with(|mut access| {
                let data = access.data_mut();
                data.charge(HANDLE_BYTES)?;
                let rep = data.connections().insert(connection);
                let rep = u32::try_from(rep).map_err(|_| wasmtime::format_err!("too many open handles"))?;
                ResourceDynamic::new_own(rep, resource_type).try_into_resource_any(access.as_context_mut())
            })?;
            Val::Result(Ok(Some(Box::new(Val::Resource(handle)))))
        }
        Err(error) => {
            tracing::debug!(endpoint = %caller, to = %address, gateway = %client.interface.gateway, %error, "connect failed");
            Val::Result(Err(Some(Box::new(error.to_val()))))
        }
    };
    Ok(())
}

/// Finds the target and matches the client's methods to its functions:
/// once per loaded gateway on this host, at each connect to another host's
/// (whose gateway may have changed since).
async fn handshake(
    connector: &Connector,
    address: &str,
    client: &LinkedClient,
) -> Result<(Route, Arc<[FunctionId]>), RpcError> {
    let interface = &client.interface;
    let (target, gateway) = connector.connect(address, &interface.gateway).await?;
    let routes = match target {
        Route::Local(_) => client.known.to(interface, &gateway),
        Route::Remote(_) => routes(interface, gateway.iter()).map(Into::into),
    };
    let routes = routes
        .map_err(|difference| RpcError::Handshake(format!("`{}` at {address}: {difference}", interface.gateway)))?;
    Ok((target, routes))
}

/// A call through a handle: an ask, or a tell for functions without result.
async fn call(
    accessor: &Accessor<StoreData>,
    method: usize,
    tell: bool,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let Val::Resource(handle) = &params[0] else { wasmtime::bail!("expected a gateway handle") };
    let args = params[1..].iter().cloned().map(Value::Val).collect();
    let Some(outcome) = send(accessor, *handle, method, tell, args).await? else { return Ok(()) };
    results[0] = match outcome {
        Ok(value) => Val::Result(Ok(value.map(|value| Box::new(value.into_val())))),
        Err(error) => Val::Result(Err(Some(Box::new(error.to_val())))),
    };
    Ok(())
}

/// Sends a call through the handle `handle` for the client's method
/// `method`: a tell (`None` back at once) or an ask (its outcome).
pub(super) async fn send(
    accessor: &Accessor<StoreData>,
    handle: ResourceAny,
    method: usize,
    tell: bool,
    args: Vec<Value>,
) -> wasmtime::Result<Option<Result<Option<Value>, RpcError>>> {
    let (target, function, token, timeout) = accessor.with(|mut access| -> wasmtime::Result<_> {
        let rep = borrowed_rep(&mut access, handle)?;
        let connection = access
            .data_mut()
            .connection(rep)
            .ok_or_else(|| wasmtime::format_err!("call through a dropped gateway handle"))?;
        Ok((connection.target.clone(), connection.routes[method], connection.token, connection.timeout))
    })?;
    if tell {
        target.tell(function, args, token).await;
        return Ok(None);
    }
    Ok(Some(target.ask(function, args, token, timeout).await))
}

/// The slab key behind a borrowed handle.
fn borrowed_rep(mut store: impl AsContextMut<Data = StoreData>, handle: ResourceAny) -> wasmtime::Result<usize> {
    Ok(ResourceDynamic::try_from_resource_any(handle, store.as_context_mut())?.rep() as usize)
}

/// The slab key behind a borrowed handle given as a dynamic value.
fn borrowed_rep_of(store: impl AsContextMut<Data = StoreData>, handle: &Val) -> wasmtime::Result<usize> {
    let Val::Resource(handle) = handle else { wasmtime::bail!("expected a gateway handle") };
    borrowed_rep(store, *handle)
}
