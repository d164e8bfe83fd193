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
use wasmtime::component::{Accessor, ComponentNamedList, Func, Lift, Lower, TypedFunc, Val};
use wasmtime::{AsContext, Store, StoreContext};

use crate::capability::StoreData;
use crate::gateway::{Passing, TypedParams, TypedResult, Value};

/// What a call of a gateway function returns: its result, if it has one.
pub(crate) type Called = wasmtime::Result<Option<Value>>;

/// Makes the typed function of one form of the catalogue.
type MakeTyped = fn(Func, StoreContext<'_, StoreData>) -> wasmtime::Result<Box<dyn TypedCall>>;

/// A gateway function of one instance, ready to call.
pub(crate) enum GatewayFunc {
    /// Called with dynamic values.
    Dynamic(Func),
    /// Called through a typed function, made on the first call: its type
    /// check would cost every endpoint's start microseconds, whether or not
    /// the function is ever called.
    Typed { func: Func, make: MakeTyped, typed: OnceLock<Box<dyn TypedCall>> },
}

impl std::fmt::Debug for GatewayFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GatewayFunc::Dynamic(_) => "GatewayFunc::Dynamic",
            GatewayFunc::Typed { .. } => "GatewayFunc::Typed",
        })
    }
}

impl GatewayFunc {
    /// `func`, called as `passing` says.
    pub(crate) fn new(func: Func, passing: Passing) -> Self {
        use TypedParams as P;
        use TypedResult as R;
        let Passing::Typed(params, result) = passing else { return GatewayFunc::Dynamic(func) };
        let make: MakeTyped = match (params, result) {
            (P::Bytes, R::Nothing) => typed::<(Bytes,), ()>,
            (P::Bytes, R::Bytes) => typed::<(Bytes,), (Bytes,)>,
            (P::Bytes, R::U32) => typed::<(Bytes,), (u32,)>,
            (P::Bytes, R::U64) => typed::<(Bytes,), (u64,)>,
            (P::Bytes, R::Bool) => typed::<(Bytes,), (bool,)>,
            (P::Nothing, R::Bytes) => typed::<(), (Bytes,)>,
            (P::U32, R::Bytes) => typed::<(u32,), (Bytes,)>,
            (P::U64, R::Bytes) => typed::<(u64,), (Bytes,)>,
            // Not a form `Passing` makes: no byte list on either side.
            _ => return GatewayFunc::Dynamic(func),
        };
        GatewayFunc::Typed { func, make, typed: OnceLock::new() }
    }

    /// The typed function of a [`GatewayFunc::Typed`], made if this is its
    /// first call.
    fn typed<'a>(
        func: Func,
        make: MakeTyped,
        typed: &'a OnceLock<Box<dyn TypedCall>>,
        store: StoreContext<'_, StoreData>,
    ) -> wasmtime::Result<&'a dyn TypedCall> {
        if let Some(typed) = typed.get() {
            return Ok(&**typed);
        }
        let made = make(func, store)?;
        Ok(&**typed.get_or_init(|| made))
    }

    /// Calls the function on a store without concurrency support.
    pub(crate) async fn call(&self, store: &mut Store<StoreData>, args: Vec<Value>, has_result: bool) -> Called {
        match self {
            GatewayFunc::Dynamic(func) => {
                let args: Vec<Val> = args.into_iter().map(Value::into_val).collect();
                let mut results = [Val::Bool(false)];
                let results = &mut results[..usize::from(has_result)];
                func.call_async(&mut *store, &args, results).await?;
                Ok(take_result(results))
            }
            GatewayFunc::Typed { func, make, typed } => {
                let typed = Self::typed(*func, *make, typed, store.as_context())?;
                typed.call(store, args).await
            }
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
        match self {
            GatewayFunc::Dynamic(func) => call_dynamic(*func, accessor, args, has_result).await,
            GatewayFunc::Typed { func, make, typed } => {
                let typed = accessor.with(|access| Self::typed(*func, *make, typed, access.as_context()))?;
                typed.call_concurrent(accessor, args).await
            }
        }
    }
}

/// Starts `func` as a guest task with dynamic values; for hooks too.
pub(crate) async fn call_dynamic(
    func: Func,
    accessor: &Accessor<StoreData>,
    args: Vec<Value>,
    has_result: bool,
) -> Called {
    let args: Vec<Val> = args.into_iter().map(Value::into_val).collect();
    let mut results = [Val::Bool(false)];
    let results = &mut results[..usize::from(has_result)];
    func.call_concurrent(accessor, &args, results).await?;
    Ok(take_result(results))
}

/// The value a dynamic call left in its result slots: `None` for a
/// function without a result.
fn take_result(results: &mut [Val]) -> Option<Value> {
    results.first_mut().map(|slot| Value::Val(std::mem::replace(slot, Val::Bool(false))))
}

/// `weir:rpc/batch.deliver` of one instance: several queued calls in one
/// guest task.
pub(crate) struct BatchFunc(Lazy<DeliverParams, DeliverResults>);

/// A typed function made on its first call (see [`GatewayFunc::Typed`]).
struct Lazy<P, R> {
    func: Func,
    typed: OnceLock<TypedFunc<P, R>>,
}

impl<P: ComponentNamedList + Lower + Send + Sync, R: ComponentNamedList + Lift + Send + Sync> Lazy<P, R> {
    fn new(func: Func) -> Self {
        Self { func, typed: OnceLock::new() }
    }

    fn get(&self, store: impl AsContext<Data = StoreData>) -> wasmtime::Result<TypedFunc<P, R>> {
        if let Some(typed) = self.typed.get() {
            return Ok(*typed);
        }
        let made = self.func.typed(store)?;
        Ok(*self.typed.get_or_init(|| made))
    }
}

/// `deliver`'s parameters: function ids, their arguments one after the
/// other, and where each call's arguments end.
type DeliverParams = (Vec<u64>, Bytes, Vec<u32>);
/// `deliver`'s result: outcomes one after the other, and where each ends.
type DeliverResults = ((Bytes, Vec<u32>),);

impl std::fmt::Debug for BatchFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchFunc")
    }
}

/// What a batch returns: each call's outcome, one after the other, and
/// their end offsets.
pub(crate) type Delivered = wasmtime::Result<(Bytes, Vec<u32>)>;

impl BatchFunc {
    /// `func`, to be called as `deliver` (loading checked it is).
    pub(crate) fn new(func: Func) -> Self {
        Self(Lazy::new(func))
    }

    /// Runs calls `functions` with arguments `args` (ending at `ends`) in
    /// one guest task.
    pub(crate) async fn call_concurrent(
        &self,
        accessor: &Accessor<StoreData>,
        functions: Vec<u64>,
        args: Bytes,
        ends: Vec<u32>,
    ) -> Delivered {
        let deliver = accessor.with(|access| self.0.get(access))?;
        let (delivered,) = deliver.call_concurrent(accessor, (functions, args, ends)).await?;
        Ok(delivered)
    }
}

/// `weir:rpc/batch.deliver-async` of one instance: queued calls of async
/// functions in one guest task, their asks answered through
/// `weir:rpc/batch-replies`.
pub(crate) struct BatchAsyncFunc(Lazy<DeliverAsyncParams, DeliverResults>);

/// `deliver-async`'s parameters: those of `deliver`, and each call's slot.
type DeliverAsyncParams = (Vec<u64>, Bytes, Vec<u32>, Vec<u32>);

impl std::fmt::Debug for BatchAsyncFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchAsyncFunc")
    }
}

impl BatchAsyncFunc {
    /// `func`, to be called as `deliver-async` (loading checked it is).
    pub(crate) fn new(func: Func) -> Self {
        Self(Lazy::new(func))
    }

    /// Starts calls `functions` (arguments ending at `ends`, asks numbered
    /// `slots`) in one guest task; returns their outcomes once each has run
    /// until it awaits or returns.
    pub(crate) async fn call_concurrent(
        &self,
        accessor: &Accessor<StoreData>,
        params: DeliverAsyncParams,
    ) -> Delivered {
        let deliver = accessor.with(|access| self.0.get(access))?;
        let (delivered,) = deliver.call_concurrent(accessor, params).await?;
        Ok(delivered)
    }
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
