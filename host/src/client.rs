//! Host-side calls into endpoints, by gateway and function name.
//!
//! Tests, the CLI and (later) the REST API call endpoints through a
//! [`GatewayClient`], with dynamic [`Val`] arguments, or with [`Value`]s,
//! which carry a `list<u8>` as its bytes (for payloads of any size).
//! Arguments are checked against the function's WIT type before anything is
//! sent, so a wrong type is the caller's error and never reaches the
//! endpoint.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Val;

use crate::error::RpcError;
use crate::fencing::FencingToken;
use crate::gateway::{FunctionId, FunctionSignature, GatewaySignature, Value, wave};
use crate::route::Route;

/// A connection to one gateway of one endpoint, on this host or another
/// (Flink's gateway proxy).
#[derive(Clone, Debug)]
pub struct GatewayClient {
    target: Route,
    gateway: Arc<GatewaySignature>,
    token: Option<FencingToken>,
    timeout: Duration,
}

impl GatewayClient {
    pub(crate) fn new(
        target: Route,
        gateway: Arc<GatewaySignature>,
        token: Option<FencingToken>,
        timeout: Duration,
    ) -> Self {
        Self { target, gateway, token, timeout }
    }

    /// The address of the endpoint behind this client.
    pub fn address(&self) -> &str {
        self.target.address()
    }

    /// Whether the endpoint is on another host, so calls are encoded and
    /// sent over TCP.
    pub fn is_remote(&self) -> bool {
        matches!(self.target, Route::Remote(_))
    }

    /// The gateway's interface name.
    pub fn gateway(&self) -> &str {
        &self.gateway.name
    }

    /// The ask timeout this client uses.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same client with another ask timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The signatures of the gateway's functions.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionSignature> {
        self.gateway.iter().map(|(_, f)| f)
    }

    /// Asks `function` and waits for its result (`None` for a result
    /// without a value), in dynamic values. A byte list in the result comes
    /// back as one `Val` per byte: for large ones use [`Self::ask_values`].
    ///
    /// # Errors
    ///
    /// [`RpcError::UnknownFunction`] if the gateway has no such ask or the
    /// arguments do not fit it, else whatever the call ran into.
    pub async fn ask(&self, function: &str, args: Vec<Val>) -> Result<Option<Val>, RpcError> {
        let args = args.into_iter().map(Value::Val).collect();
        Ok(self.ask_values(function, args).await?.map(Value::into_val))
    }

    /// [`Self::ask`] with [`Value`]s: a `list<u8>` given or returned as
    /// [`Value::Bytes`] is moved as its bytes, never one value per byte.
    ///
    /// # Errors
    ///
    /// As [`Self::ask`]; message-too-large or frame-too-large for arguments
    /// over `max-message-size` (on this host) or `frame-size` (to another).
    pub async fn ask_values(&self, function: &str, args: Vec<Value>) -> Result<Option<Value>, RpcError> {
        let id = self.prepare(function, &args, true)?;
        self.target.ask(id, args, self.token, self.timeout).await
    }

    /// Tells `function`: returns once the call is in the mailbox. Delivery
    /// failures are not reported, as in Flink; they are logged as dead
    /// letters.
    ///
    /// # Errors
    ///
    /// [`RpcError::UnknownFunction`] if the gateway has no such tell or the
    /// arguments do not fit it.
    pub async fn tell(&self, function: &str, args: Vec<Val>) -> Result<(), RpcError> {
        self.tell_values(function, args.into_iter().map(Value::Val).collect()).await
    }

    /// [`Self::tell`] with [`Value`]s, as [`Self::ask_values`].
    ///
    /// # Errors
    ///
    /// As [`Self::tell`].
    pub async fn tell_values(&self, function: &str, args: Vec<Value>) -> Result<(), RpcError> {
        let id = self.prepare(function, &args, false)?;
        self.target.tell(id, args, self.token).await;
        Ok(())
    }

    /// Reads arguments for `function` written in WAVE, the WebAssembly Value
    /// Encoding (`42`, `"text"`, `[1, 2]`, `{ high: 1, low: 2 }`,
    /// `some(7)`): how the CLI and config files call gateways.
    ///
    /// # Errors
    ///
    /// [`RpcError::UnknownFunction`] for an unknown function, a wrong number
    /// of arguments, or text that is not a value of the parameter's type.
    pub fn parse_args(&self, function: &str, args: &[&str]) -> Result<Vec<Val>, RpcError> {
        let (_, signature) = self.find(function, args.len())?;
        signature
            .params
            .iter()
            .zip(args)
            .map(|((name, shape), text)| {
                wave::parse(shape, text)
                    .map_err(|e| self.unknown(format!("`{function}` argument `{name}` must be a {shape} in WAVE: {e}")))
            })
            .collect()
    }

    /// The function `name` of the gateway with its id, if it takes `arity`
    /// arguments.
    fn find(&self, name: &str, arity: usize) -> Result<(FunctionId, &FunctionSignature), RpcError> {
        let gateway = self.gateway();
        let (id, signature) = self
            .gateway
            .iter()
            .find(|(_, f)| f.name == name)
            .ok_or_else(|| self.unknown(format!("gateway `{gateway}` has no function `{name}`")))?;
        if arity != signature.params.len() {
            let expected = signature.params.len();
            return Err(self.unknown(format!("`{gateway}.{name}` takes {expected} argument(s), got {arity}")));
        }
        Ok((id, signature))
    }

    /// Finds `function` and checks the call against its signature.
    fn prepare(&self, function: &str, args: &[Value], ask: bool) -> Result<FunctionId, RpcError> {
        let gateway = self.gateway();
        let (id, signature) = self.find(function, args.len())?;
        match (ask, signature.is_ask()) {
            (true, false) => return Err(self.unknown(format!("`{gateway}.{function}` has no result: tell it"))),
            (false, true) => return Err(self.unknown(format!("`{gateway}.{function}` has a result: ask it"))),
            _ => {}
        }
        for ((name, shape), arg) in signature.params.iter().zip(args) {
            let fits = shape.check_value(arg);
            fits.map_err(|e| self.unknown(format!("`{gateway}.{function}` argument `{name}`: {e}")))?;
        }
        Ok(id)
    }

    fn unknown(&self, detail: String) -> RpcError {
        RpcError::UnknownFunction { endpoint: self.target.endpoint().to_owned(), detail }
    }
}
