//! Calling gateway functions: through wasmtime typed functions where
//! [`Passing`] says their byte lists can pass whole, with dynamic values
//! otherwise.
//!
//! A typed function copies a `list<u8>` into or out of guest memory in one
//! `memcpy`, as [`Bytes`]; the dynamic path makes one `Val` per byte. Typed
//! functions are static types, so each form of [`Passing::Typed`] maps to
//! one instantiation of [`Typed`] here.

use std::sync::OnceLock;

use bytes::Bytes;
use futures::future::BoxFuture;
use wasmtime::component::{
    Accessor, ComponentExportIndex, ComponentNamedList, Func, Instance, Lift, Lower, TypedFunc,
    TypedFuncCallConcurrent, Val,
};
use wasmtime::{AsContextMut, Store, StoreContext};

use crate::capability::StoreData;
use crate::gateway::{Passing, TypedParams, TypedResult, Value};

/// What a call of a gateway function returns: its result, if it has one.
pub(crate) type Called = wasmtime::Result<Option<Value>>;

/// Makes the typed function of one form of the catalogue.
type MakeTyped = fn(Func, StoreContext<'_, StoreData>) -> wasmtime::Result<Box<dyn TypedCall>>;

/// A gateway function (or hook) of one instance. It is looked up, and its
/// typed function made, on its first call: an endpoint's start then costs
/// nothing per function it exports, called or not.
pub(crate) struct GatewayFunc {
    instance: Instance,
    index: ComponentExportIndex,
    passing: Passing,
    resolved: OnceLock<Resolved>,
}

/// A gateway function, looked up.
enum Resolved {
    /// Called with dynamic values.
    Dynamic(Func),
    /// Called through a typed function.
    Typed(Box<dyn TypedCall>),
}

impl std::fmt::Debug for GatewayFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayFunc").field("passing", &self.passing).finish_non_exhaustive()
    }
}

impl GatewayFunc {
    /// The export `index` of `instance`, to be called as `passing` says.
    pub(crate) fn new(instance: Instance, index: ComponentExportIndex, passing: Passing) -> Self {
        Self { instance, index, passing, resolved: OnceLock::new() }
    }

    /// The function, looked up if this is its first call.
    fn resolve(&self, mut store: impl AsContextMut<Data = StoreData>) -> wasmtime::Result<&Resolved> {
        if let Some(resolved) = self.resolved.get() {
            return Ok(resolved);
        }
        let func = lookup(self.instance, self.index, &mut store)?;
        let resolved = match maker(self.passing) {
            Some(make) => Resolved::Typed(make(func, store.as_context())?),
            None => Resolved::Dynamic(func),
        };
        Ok(self.resolved.get_or_init(|| resolved))
    }

    /// Calls the function on a store without concurrency support.
    pub(crate) async fn call(&self, store: &mut Store<StoreData>, args: Vec<Value>, has_result: bool) -> Called {
        match self.resolve(&mut *store)? {
            Resolved::Dynamic(func) => {
                let args = vals(args);
                let mut results = [Val::Bool(false)];
                let results = &mut results[..usize::from(has_result)];
                func.call_async(&mut *store, &args, results).await?;
                Ok(take_result(results))
            }
            Resolved::Typed(typed) => typed.call(store, args).await,
        }
    }

    /// Starts the function as a guest task of a store with concurrency
    /// support, and waits for its result.
    pub(crate) async fn call_concurrent(
        &self,
        accessor: &Accessor<StoreData>,
        args: Vec<Value>,
        has_result: bool,
    ) -> Called {
        match accessor.with(|mut access| self.resolve(&mut access))? {
            Resolved::Dynamic(func) => call_dynamic(*func, accessor, args, has_result).await,
            Resolved::Typed(typed) => typed.call_concurrent(accessor, args).await,
        }
    }
}

/// What makes the typed function of `passing`; `None` for dynamic values.
fn maker(passing: Passing) -> Option<MakeTyped> {
    use TypedParams as P;
    use TypedResult as R;
    let Passing::Typed(params, result) = passing else { return None };
    Some(match (params, result) {
        (P::Bytes, R::Nothing) => typed::<(Bytes,), ()>,
        (P::Bytes, R::Bytes) => typed::<(Bytes,), (Bytes,)>,
        (P::Bytes, R::U32) => typed::<(Bytes,), (u32,)>,
        (P::Bytes, R::U64) => typed::<(Bytes,), (u64,)>,
        (P::Bytes, R::Bool) => typed::<(Bytes,), (bool,)>,
        (P::Bytes, R::Status) => typed::<(Bytes,), (Result<(), String>,)>,
        (P::Bytes, R::U64OrWhy) => typed::<(Bytes,), (Result<u64, String>,)>,
        (P::U32Bytes, R::Nothing) => typed::<(u32, Bytes), ()>,
        (P::U32Bytes, R::Bytes) => typed::<(u32, Bytes), (Bytes,)>,
        (P::U32Bytes, R::U32) => typed::<(u32, Bytes), (u32,)>,
        (P::U32Bytes, R::U64) => typed::<(u32, Bytes), (u64,)>,
        (P::U32Bytes, R::Bool) => typed::<(u32, Bytes), (bool,)>,
        (P::U32Bytes, R::Status) => typed::<(u32, Bytes), (Result<(), String>,)>,
        (P::U32Bytes, R::U64OrWhy) => typed::<(u32, Bytes), (Result<u64, String>,)>,
        (P::Nothing, R::Bytes) => typed::<(), (Bytes,)>,
        (P::U32, R::Bytes) => typed::<(u32,), (Bytes,)>,
        (P::U64, R::Bytes) => typed::<(u64,), (Bytes,)>,
        // Not a form `Passing` makes: no byte list on either side.
        _ => return None,
    })
}

/// Starts `func` as a guest task with dynamic values.
async fn call_dynamic(func: Func, accessor: &Accessor<StoreData>, args: Vec<Value>, has_result: bool) -> Called {
    let args = vals(args);
    let mut results = [Val::Bool(false)];
    let results = &mut results[..usize::from(has_result)];
    func.call_concurrent(accessor, &args, results).await?;
    Ok(take_result(results))
}

/// The arguments of a dynamic call. A [`Value`] is the size of a [`Val`],
/// so the vector's memory is reused: nothing is allocated.
fn vals(args: Vec<Value>) -> Vec<Val> {
    args.into_iter().map(Value::into_val).collect()
}

/// The value a dynamic call left in its result slots: `None` for a
/// function without a result.
fn take_result(results: &mut [Val]) -> Option<Value> {
    results.first_mut().map(|slot| Value::Val(std::mem::replace(slot, Val::Bool(false))))
}

/// A hook of one instance with a fixed signature, called with parameters
/// `P` for results `R`: the batch entries and the handover hooks.
pub(crate) struct TypedExport<P, R>(Lazy<P, R>);

/// `deliver`: queued calls of sync functions (`weir:rpc/batch`).
pub(crate) type BatchFunc = TypedExport<DeliverParams, DeliverResults>;
/// `deliver-async`: queued calls of async functions, their asks still
/// running when it returns answered through `weir:rpc/batch-replies`.
pub(crate) type BatchAsyncFunc = TypedExport<DeliverAsyncParams, DeliverResults>;

/// `deliver`'s parameters: function ids, their arguments one after the
/// other, and where each call's arguments end.
type DeliverParams = (Vec<u64>, Bytes, Vec<u32>);
/// `deliver-async`'s parameters: those of `deliver`, and each call's slot.
type DeliverAsyncParams = (Vec<u64>, Bytes, Vec<u32>, Vec<u32>);
/// What both return: outcomes one after the other, and where each ends.
type DeliverResults = ((Bytes, Vec<u32>),);

/// What a batch returns: each call's outcome, one after the other, and
/// their end offsets.
pub(crate) type Delivered = wasmtime::Result<(Bytes, Vec<u32>)>;

/// An endpoint's state as `weir:rpc/handover` hands it over.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lift, wasmtime::component::Lower, Clone, Debug)]
#[component(record)]
pub(crate) struct HandedState {
    pub version: u32,
    pub bytes: Bytes,
}

/// `weir:rpc/handover.snapshot`.
pub(crate) type SnapshotFunc = TypedExport<(), (Result<Option<HandedState>, String>,)>;
/// `weir:rpc/handover.restore`.
pub(crate) type RestoreFunc = TypedExport<(HandedState,), (Result<(), String>,)>;
/// `weir:rpc/main-thread.run`: a task the endpoint scheduled, by its id.
pub(crate) type TaskFunc = TypedExport<(u64,), ()>;

impl<P, R> std::fmt::Debug for TypedExport<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TypedExport")
    }
}

impl<P, R> TypedExport<P, R>
where
    P: ComponentNamedList + Lower + Send + Sync + 'static,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    /// Export `index` of `instance`, to be called with `P` for `R` (loading
    /// checked that it is).
    pub(crate) fn new(instance: Instance, index: ComponentExportIndex) -> Self {
        Self(Lazy { instance, index, typed: OnceLock::new() })
    }

    /// Runs it as a guest task of a store with concurrency support; for an
    /// async batch entry, it returns once each call has run until it awaits
    /// or returns.
    pub(crate) async fn call_concurrent(&self, accessor: &Accessor<StoreData>, params: P) -> wasmtime::Result<R> {
        accessor.with(|mut access| self.queue(&mut access, params)).result(accessor).await
    }

    /// Queues it as a guest task of `store` (one with concurrency support)
    /// now, rather than when a future is first polled: the store runs the
    /// task whether or not anyone awaits its result.
    pub(crate) fn queue(&self, mut store: impl AsContextMut<Data = StoreData>, params: P) -> Queued<P, R> {
        let queued = self.0.get(&mut store).and_then(|func| Ok((func, func.start_call_concurrent(store, params)?)));
        Queued(queued)
    }
}

/// A guest task [`TypedExport::queue`] queued, or why it could not.
pub(crate) struct Queued<P, R>(wasmtime::Result<Call<P, R>>);

/// A queued call, with the function it calls (which takes its result).
type Call<P, R> = (TypedFunc<P, R>, TypedFuncCallConcurrent<StoreData, P, R>);

impl<P, R> Queued<P, R>
where
    P: ComponentNamedList + Lower + Send + Sync + 'static,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    /// Waits for the task's result.
    pub(crate) async fn result(self, accessor: &Accessor<StoreData>) -> wasmtime::Result<R> {
        let (func, call) = self.0?;
        func.finish_call_concurrent(accessor, call).await
    }
}

/// A typed export looked up on its first call (see [`GatewayFunc`]).
struct Lazy<P, R> {
    instance: Instance,
    index: ComponentExportIndex,
    typed: OnceLock<TypedFunc<P, R>>,
}

impl<P: ComponentNamedList + Lower + Send + Sync, R: ComponentNamedList + Lift + Send + Sync> Lazy<P, R> {
    fn get(&self, mut store: impl AsContextMut<Data = StoreData>) -> wasmtime::Result<TypedFunc<P, R>> {
        if let Some(typed) = self.typed.get() {
            return Ok(*typed);
        }
        let made = lookup(self.instance, self.index, &mut store)?.typed(store)?;
        Ok(*self.typed.get_or_init(|| made))
    }
}

/// Export `index` of `instance`.
fn lookup(
    instance: Instance,
    index: ComponentExportIndex,
    store: impl AsContextMut<Data = StoreData>,
) -> wasmtime::Result<Func> {
    instance
        .get_func(store, index)
        .ok_or_else(|| wasmtime::format_err!("an instance lost one of its component's exports"))
}

/// A typed function, behind an object so that an instance can hold any
/// form of the catalogue.
pub(crate) trait TypedCall: Send + Sync {
    fn call<'a>(&'a self, store: &'a mut Store<StoreData>, args: Vec<Value>) -> BoxFuture<'a, Called>;
    fn call_concurrent<'a>(&'a self, accessor: &'a Accessor<StoreData>, args: Vec<Value>) -> BoxFuture<'a, Called>;
}

fn typed<P: Params, R: Results>(
    func: Func,
    store: StoreContext<'_, StoreData>,
) -> wasmtime::Result<Box<dyn TypedCall>> {
    Ok(Box::new(Typed(func.typed::<P, R>(store)?)))
}

struct Typed<P, R>(TypedFunc<P, R>);

impl<P: Params, R: Results> TypedCall for Typed<P, R> {
    fn call<'a>(&'a self, store: &'a mut Store<StoreData>, args: Vec<Value>) -> BoxFuture<'a, Called> {
        Box::pin(async move {
            let params = P::from_values(args)?;
            Ok(self.0.call_async(store, params).await?.into_value())
        })
    }

    fn call_concurrent<'a>(&'a self, accessor: &'a Accessor<StoreData>, args: Vec<Value>) -> BoxFuture<'a, Called> {
        let func = self.0;
        Box::pin(async move {
            let params = P::from_values(args)?;
            Ok(func.call_concurrent(accessor, params).await?.into_value())
        })
    }
}

/// The parameters of a typed call, made from the call's values. The caller
/// checked the values against the signature, so a mismatch is a host bug.
trait Params: ComponentNamedList + Lower + Sized + Send + Sync + 'static {
    fn from_values(args: Vec<Value>) -> wasmtime::Result<Self>;
}

/// The result of a typed call, as a value.
trait Results: ComponentNamedList + Lift + Sized + Send + Sync + 'static {
    fn into_value(self) -> Option<Value>;
}

/// The only argument of a one-parameter call.
fn only(args: Vec<Value>) -> wasmtime::Result<Value> {
    let [arg] = <[Value; 1]>::try_from(args).map_err(|args| wasmtime::format_err!("{} arguments for 1", args.len()))?;
    Ok(arg)
}

impl Params for () {
    fn from_values(_: Vec<Value>) -> wasmtime::Result<Self> {
        Ok(())
    }
}

impl Params for (Bytes,) {
    fn from_values(args: Vec<Value>) -> wasmtime::Result<Self> {
        let bytes = only(args)?.into_bytes().map_err(|v| wasmtime::format_err!("expected a byte list, got {v:?}"))?;
        Ok((bytes,))
    }
}

impl Params for (u32, Bytes) {
    fn from_values(args: Vec<Value>) -> wasmtime::Result<Self> {
        match <[Value; 2]>::try_from(args) {
            Ok([Value::Val(Val::U32(x)), Value::Bytes(bytes)]) => Ok((x, bytes)),
            Ok(args) => wasmtime::bail!("expected a u32 and a byte list, got {args:?}"),
            Err(args) => wasmtime::bail!("{} arguments for 2", args.len()),
        }
    }
}

impl Results for (Result<(), String>,) {
    fn into_value(self) -> Option<Value> {
        Some(outcome(self.0.map(|()| None)))
    }
}

impl Results for (Result<u64, String>,) {
    fn into_value(self) -> Option<Value> {
        Some(outcome(self.0.map(|number| Some(Box::new(Val::U64(number))))))
    }
}

/// A `result<_, string>` whose `ok` case holds `ok`.
fn outcome(result: Result<Option<Box<Val>>, String>) -> Value {
    Value::Val(Val::Result(result.map_err(|why| Some(Box::new(Val::String(why))))))
}

macro_rules! scalar_forms {
    ($($ty:ty => $case:ident),*) => {$(
        impl Params for ($ty,) {
            fn from_values(args: Vec<Value>) -> wasmtime::Result<Self> {
                match only(args)? {
                    Value::Val(Val::$case(x)) => Ok((x,)),
                    other => wasmtime::bail!("expected a {}, got {other:?}", stringify!($ty)),
                }
            }
        }

        impl Results for ($ty,) {
            fn into_value(self) -> Option<Value> {
                Some(Value::Val(Val::$case(self.0)))
            }
        }
    )*};
}

scalar_forms!(u32 => U32, u64 => U64, bool => Bool);

impl Results for () {
    fn into_value(self) -> Option<Value> {
        None
    }
}

impl Results for (Bytes,) {
    fn into_value(self) -> Option<Value> {
        Some(Value::Bytes(self.0))
    }
}
