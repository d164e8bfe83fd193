//! Calling a gateway function by name from the command line: an ask or a
//! tell, as its signature says, with the outcome as WAVE text.

use wasmtime::component::Val;
use weir::GatewayClient;

use crate::Error;

/// What a call returned, as WAVE text, and whether it is an `err(...)`.
pub struct Outcome {
    /// The result in WAVE, `(told)` for a tell, `(done)` for an empty result.
    pub text: String,
    /// Whether the result is an `err(...)`.
    pub is_err: bool,
}

/// Asks or tells, as the function's signature says.
pub async fn invoke(client: &GatewayClient, function: &str, args: Vec<Val>) -> Result<Outcome, Error> {
    let is_ask = client.functions().any(|f| f.name == function && f.is_ask());
    if !is_ask {
        client.tell(function, args).await?;
        return Ok(Outcome { text: "(told)".into(), is_err: false });
    }
    Ok(match client.ask(function, args).await? {
        Some(value) => Outcome { is_err: matches!(value, Val::Result(Err(_))), text: value.to_wave()? },
        None => Outcome { text: "(done)".into(), is_err: false },
    })
}
