//! Client methods whose byte lists pass whole: typed host functions, the
//! client side of [`Passing::Typed`].
//!
//! A guest that calls another endpoint with a `list<u8>` hands the host the
//! list in one copy, as [`Bytes`], and gets a byte-list result back the same
//! way; the dynamic path would make one `Val` per byte each way. The forms
//! are those of the export side, each result wrapped in
//! `result<_, rpc-error>` as client methods return it.

use bytes::Bytes;
use wasmtime::component::{ComponentNamedList, Lift, LinkerInstance, Lower, ResourceAny, Val};

use super::bindings::types::RpcError as WitRpcError;
use super::clients::send;
use super::store::StoreData;
use crate::error::RpcError;
use crate::gateway::{ClientMethod, ClientReply, Passing, TypedParams, TypedResult, Value};

/// Defines `method` (the client's `index`-th) as a typed host function if
/// its form allows; `false` if it takes dynamic values.
///
/// # Errors
///
/// The linker refused the definition.
pub(super) fn define(
    instance: &mut LinkerInstance<'_, StoreData>,
    index: usize,
    method: &ClientMethod,
) -> wasmtime::Result<bool> {
    use TypedParams as P;
    use TypedResult as R;
    let params: Vec<_> = method.params.iter().collect();
    let result = match &method.reply {
        ClientReply::Tell => None,
        ClientReply::Ask(Some(shape)) => Some(shape),
        // A result without a value: `result<_, rpc-error>`, dynamic.
        ClientReply::Ask(None) => return Ok(false),
    };
    let Passing::Typed(params, result) = Passing::of_parts(&params, result) else { return Ok(false) };
    let name = &method.import_name;
    match (params, result) {
        (P::Bytes, R::Nothing) => wrap::<(ResourceAny, Bytes), ()>(instance, name, index)?,
        (P::Bytes, R::Bytes) => wrap::<(ResourceAny, Bytes), (Result<Bytes, WitRpcError>,)>(instance, name, index)?,
        (P::Bytes, R::U32) => wrap::<(ResourceAny, Bytes), (Result<u32, WitRpcError>,)>(instance, name, index)?,
        (P::Bytes, R::U64) => wrap::<(ResourceAny, Bytes), (Result<u64, WitRpcError>,)>(instance, name, index)?,
        (P::Bytes, R::Bool) => wrap::<(ResourceAny, Bytes), (Result<bool, WitRpcError>,)>(instance, name, index)?,
        (P::Bytes, R::Status) => wrap::<(ResourceAny, Bytes), (Result<Status, WitRpcError>,)>(instance, name, index)?,
        (P::Bytes, R::U64OrWhy) => {
            wrap::<(ResourceAny, Bytes), (Result<U64OrWhy, WitRpcError>,)>(instance, name, index)?
        }
        (P::U32Bytes, R::Nothing) => wrap::<(ResourceAny, u32, Bytes), ()>(instance, name, index)?,
        (P::U32Bytes, R::Bytes) => wrap::<Payload, (Result<Bytes, WitRpcError>,)>(instance, name, index)?,
        (P::U32Bytes, R::U32) => wrap::<Payload, (Result<u32, WitRpcError>,)>(instance, name, index)?,
        (P::U32Bytes, R::U64) => wrap::<Payload, (Result<u64, WitRpcError>,)>(instance, name, index)?,
        (P::U32Bytes, R::Bool) => wrap::<Payload, (Result<bool, WitRpcError>,)>(instance, name, index)?,
        (P::U32Bytes, R::Status) => wrap::<Payload, (Result<Status, WitRpcError>,)>(instance, name, index)?,
        (P::U32Bytes, R::U64OrWhy) => wrap::<Payload, (Result<U64OrWhy, WitRpcError>,)>(instance, name, index)?,
        (P::Nothing, R::Bytes) => wrap::<(ResourceAny,), (Result<Bytes, WitRpcError>,)>(instance, name, index)?,
        (P::U32, R::Bytes) => wrap::<(ResourceAny, u32), (Result<Bytes, WitRpcError>,)>(instance, name, index)?,
        (P::U64, R::Bytes) => wrap::<(ResourceAny, u64), (Result<Bytes, WitRpcError>,)>(instance, name, index)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// The arguments of an id-and-payload method.
type Payload = (ResourceAny, u32, Bytes);

/// `result<_, string>`: done, or why not.
type Status = Result<(), String>;

/// `result<u64, string>`: a number, or why not.
type U64OrWhy = Result<u64, String>;

fn wrap<A: Args, O: Outcome>(
    instance: &mut LinkerInstance<'_, StoreData>,
    name: &str,
    method: usize,
) -> wasmtime::Result<()> {
    instance.func_wrap_concurrent(name, move |accessor, args: A| {
        Box::pin(async move {
            let (handle, args) = args.split();
            let outcome = send(accessor, handle, method, O::TELL, args).await?;
            O::from_outcome(outcome)
        })
    })
}

/// A client method's parameters: the handle, then the call's arguments.
trait Args: ComponentNamedList + Lift + Sized + Send + 'static {
    fn split(self) -> (ResourceAny, Vec<Value>);
}

impl Args for (ResourceAny,) {
    fn split(self) -> (ResourceAny, Vec<Value>) {
        (self.0, Vec::new())
    }
}

impl Args for (ResourceAny, Bytes) {
    fn split(self) -> (ResourceAny, Vec<Value>) {
        (self.0, vec![Value::Bytes(self.1)])
    }
}

impl Args for (ResourceAny, u32, Bytes) {
    fn split(self) -> (ResourceAny, Vec<Value>) {
        (self.0, vec![Value::Val(Val::U32(self.1)), Value::Bytes(self.2)])
    }
}

impl Args for (ResourceAny, u32) {
    fn split(self) -> (ResourceAny, Vec<Value>) {
        (self.0, vec![Value::Val(Val::U32(self.1))])
    }
}

impl Args for (ResourceAny, u64) {
    fn split(self) -> (ResourceAny, Vec<Value>) {
        (self.0, vec![Value::Val(Val::U64(self.1))])
    }
}

/// What a client method returns: nothing for a tell, else
/// `result<T, rpc-error>`.
trait Outcome: ComponentNamedList + Lower + Sized + Send + Sync + 'static {
    /// Whether the method is a tell.
    const TELL: bool;
    fn from_outcome(outcome: Option<Result<Option<Value>, RpcError>>) -> wasmtime::Result<Self>;
}

impl Outcome for () {
    const TELL: bool = true;

    fn from_outcome(_: Option<Result<Option<Value>, RpcError>>) -> wasmtime::Result<Self> {
        Ok(())
    }
}

/// A result value in the Rust type of a typed client result.
trait FromValue: Sized {
    fn from_value(value: Value) -> Option<Self>;
}

impl FromValue for Bytes {
    fn from_value(value: Value) -> Option<Self> {
        value.into_bytes().ok()
    }
}

macro_rules! scalar_results {
    ($($ty:ty => $case:ident),*) => {$(
        impl FromValue for $ty {
            fn from_value(value: Value) -> Option<Self> {
                match value {
                    Value::Val(Val::$case(x)) => Some(x),
                    _ => None,
                }
            }
        }
    )*};
}

scalar_results!(u32 => U32, u64 => U64, bool => Bool);

impl FromValue for Status {
    fn from_value(value: Value) -> Option<Self> {
        match outcome(value)? {
            Ok(None) => Some(Ok(())),
            Ok(Some(_)) => None,
            Err(why) => Some(Err(why)),
        }
    }
}

impl FromValue for U64OrWhy {
    fn from_value(value: Value) -> Option<Self> {
        match outcome(value)? {
            Ok(Some(number)) => match *number {
                Val::U64(number) => Some(Ok(number)),
                _ => None,
            },
            Ok(None) => None,
            Err(why) => Some(Err(why)),
        }
    }
}

/// A `result<_, string>`'s `ok` value, or its reason.
fn outcome(value: Value) -> Option<Result<Option<Box<Val>>, String>> {
    match value {
        Value::Val(Val::Result(Ok(ok))) => Some(Ok(ok)),
        Value::Val(Val::Result(Err(Some(why)))) => match *why {
            Val::String(why) => Some(Err(why)),
            _ => None,
        },
        _ => None,
    }
}

impl<T: FromValue + ComponentNamedListItem> Outcome for (Result<T, WitRpcError>,) {
    const TELL: bool = false;

    fn from_outcome(outcome: Option<Result<Option<Value>, RpcError>>) -> wasmtime::Result<Self> {
        let result = match outcome {
            Some(Ok(Some(value))) => {
                // The handshake matched the types, so this is a host bug.
                Ok(T::from_value(value).ok_or_else(|| wasmtime::format_err!("a result of another type"))?)
            }
            Some(Err(error)) => Err(WitRpcError::from(&error)),
            Some(Ok(None)) | None => wasmtime::bail!("an ask without a result"),
        };
        Ok((result,))
    }
}

/// The bounds a typed result's value needs inside `result<T, rpc-error>`.
trait ComponentNamedListItem: wasmtime::component::ComponentType + Lower + Send + Sync + 'static {}

impl<T: wasmtime::component::ComponentType + Lower + Send + Sync + 'static> ComponentNamedListItem for T {}
