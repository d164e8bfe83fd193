//! Gateways: the typed interfaces endpoints export and call.
//!
//! The host knows no gateway at compile time. It reads each loaded
//! component's exported interfaces into [`FunctionSignature`]s of
//! [`Shape`]s, and its imported client interfaces into
//! [`ClientInterface`]s; [`routes`] then matches a client to a gateway when
//! an endpoint connects, and [`Shape::check`] vets host-side arguments.

mod client;
pub(crate) mod encoding;
mod passing;
mod rpc_error;
mod shape;
mod signature;
mod value;
pub mod wave;

pub use self::client::{
    CLIENT_SUFFIX, ClientInterface, ClientMethod, ClientReply, GATEWAY_RESOURCE_SUFFIX, gateway_of_client, routes,
};
pub(crate) use self::passing::{Passing, TypedParams, TypedResult, batchable};
pub(crate) use self::rpc_error::token_from_val;
pub use self::shape::{Shape, UnsupportedType};
pub use self::signature::{FunctionId, FunctionSignature, GatewaySignature, SignatureError};
pub use self::value::Value;
