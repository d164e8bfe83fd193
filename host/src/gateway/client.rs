//! Client interfaces: how an endpoint holds typed handles to gateways.
//!
//! For a gateway interface `pkg/name@v`, the client interface
//! `pkg/name-client@v` declares a resource `name-gateway` with
//!
//! - `connect: static async func(address, token: option<fencing-token>) ->
//!   result<name-gateway, rpc-error>` (Flink's `RpcService.connect`),
//! - one `async` method per gateway function, with the same parameters; an
//!   ask returns `result<T, rpc-error>` where the gateway returns `T`, a
//!   tell returns nothing,
//! - `set-timeout: func(timeout-ms: u64)`, the ask timeout of later calls
//!   through this handle, and `address: func() -> endpoint-address`.
//!
//! `weir wit clients` derives client interfaces from gateway interfaces, and
//! [`routes`] checks each pair mechanically when an endpoint connects.

use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

use super::rpc_error::rpc_error_shape;
use super::shape::Shape;
use super::signature::{FunctionId, FunctionSignature};

/// The suffix that makes an interface a client interface.
pub const CLIENT_SUFFIX: &str = "-client";
/// The suffix of the resource in a client interface.
pub const GATEWAY_RESOURCE_SUFFIX: &str = "-gateway";

/// What a call through a client method expects back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    /// Nothing: a tell.
    Tell,
    /// The gateway function's result (`None`: a result without a value).
    Ask(Option<Shape>),
}

/// A gateway function as a client interface imports it.
#[derive(Clone, Debug)]
pub struct ClientMethod {
    /// The import's name, e.g. `[method]echo-gateway.ping`.
    pub import_name: String,
    /// The gateway function it calls, e.g. `ping`.
    pub function: String,
    /// Parameter shapes after the `self` handle.
    pub params: Vec<Shape>,
    /// What comes back.
    pub reply: ClientReply,
}

/// An imported client interface, as far as the component uses it: a
/// component imports only the functions it calls.
#[derive(Clone, Debug)]
pub struct ClientInterface {
    /// The interface name, e.g. `weir:examples/echo-client@0.1.0`.
    pub interface: String,
    /// The gateway it reaches, e.g. `weir:examples/echo@0.1.0`.
    pub gateway: String,
    /// The handle resource, e.g. `echo-gateway`.
    pub resource: String,
    /// The import name of `connect`, if imported.
    pub connect: Option<String>,
    /// The import name of `set-timeout`, if imported.
    pub set_timeout: Option<String>,
    /// The import name of `address`, if imported.
    pub address: Option<String>,
    /// The gateway functions called through it.
    pub methods: Vec<ClientMethod>,
}

/// The gateway interface a client interface name stands for, if it is one:
/// `pkg/name-client@v` gives `pkg/name@v` and the resource `name-gateway`.
pub fn gateway_of_client(interface: &str) -> Option<(String, String)> {
    let (base, version) = match interface.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (interface, None),
    };
    let gateway_base = base.strip_suffix(CLIENT_SUFFIX)?;
    let (_, name) = gateway_base.rsplit_once('/')?;
    let gateway = match version {
        Some(version) => format!("{gateway_base}@{version}"),
        None => gateway_base.to_owned(),
    };
    Some((gateway, format!("{name}{GATEWAY_RESOURCE_SUFFIX}")))
}

impl ClientInterface {
    /// Reads a client interface from a component's import.
    ///
    /// # Errors
    ///
    /// A description of what does not follow the client convention.
    pub fn parse<'a>(interface: &str, items: impl Iterator<Item = (&'a str, ComponentItem)>) -> Result<Self, String> {
        let (gateway, resource) =
            gateway_of_client(interface).ok_or_else(|| format!("`{interface}` is not a client interface name"))?;
        let mut client = ClientInterface {
            interface: interface.to_owned(),
            gateway,
            resource: resource.clone(),
            connect: None,
            set_timeout: None,
            address: None,
            methods: Vec::new(),
        };
        let method_prefix = format!("[method]{resource}.");
        let connect_name = format!("[static]{resource}.connect");
        for (name, item) in items {
            let ComponentItem::ComponentFunc(func) = item else {
                continue;
            };
            let context = |problem: String| format!("client `{interface}`, `{name}`: {problem}");
            if name == connect_name {
                check_connect(&func).map_err(context)?;
                client.connect = Some(name.to_owned());
            } else if let Some(method) = name.strip_prefix(&method_prefix) {
                match method {
                    "set-timeout" => {
                        check_plain(&func, &[Shape::U64], None).map_err(context)?;
                        client.set_timeout = Some(name.to_owned());
                    }
                    "address" => {
                        check_plain(&func, &[], Some(Shape::String)).map_err(context)?;
                        client.address = Some(name.to_owned());
                    }
                    function => client.methods.push(parse_method(name, function, &func).map_err(context)?),
                }
            } else {
                return Err(context(format!("not part of the `{resource}` handle")));
            }
        }
        Ok(client)
    }
}

fn check_connect(func: &ComponentFunc) -> Result<(), String> {
    if !func.async_() {
        return Err("must be an `async func`".into());
    }
    let params: Vec<_> =
        func.params().map(|(_, ty)| Shape::of(&ty)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let token = Shape::Option(Box::new(Shape::Record(vec![("high".into(), Shape::U64), ("low".into(), Shape::U64)])));
    if params != [Shape::String, token] {
        return Err("expected parameters (address: endpoint-address, token: option<fencing-token>)".into());
    }
    match func.results().next() {
        Some(Type::Result(result)) if matches!(result.ok(), Some(Type::Own(_))) => {
            check_rpc_error(result.err().as_ref())
        }
        _ => Err("expected the result `result<handle, rpc-error>`".into()),
    }
}

/// A sync method with the given parameters after `self`, and result.
fn check_plain(func: &ComponentFunc, params: &[Shape], result: Option<Shape>) -> Result<(), String> {
    let shapes: Vec<_> = func.params().skip(1).map(|(_, ty)| Shape::of(&ty).ok()).collect();
    let found_result = func.results().next().map(|ty| Shape::of(&ty).ok());
    let expected: Vec<_> = params.iter().cloned().map(Some).collect();
    if shapes != expected || found_result != result.map(Some) {
        return Err("signature differs from the client convention".into());
    }
    Ok(())
}

fn parse_method(import_name: &str, function: &str, func: &ComponentFunc) -> Result<ClientMethod, String> {
    if !func.async_() {
        return Err("a gateway call must be an `async func`, so the caller keeps serving while it waits".into());
    }
    let params = func
        .params()
        .skip(1)
        .map(|(param, ty)| Shape::of(&ty).map_err(|e| format!("parameter `{param}`: {e}")))
        .collect::<Result<_, _>>()?;
    let reply = match func.results().next() {
        None => ClientReply::Tell,
        Some(Type::Result(result)) => {
            check_rpc_error(result.err().as_ref())?;
            ClientReply::Ask(result.ok().as_ref().map(Shape::of).transpose().map_err(|e| format!("result: {e}"))?)
        }
        Some(_) => return Err("an ask must return `result<T, rpc-error>`".into()),
    };
    Ok(ClientMethod { import_name: import_name.to_owned(), function: function.to_owned(), params, reply })
}

fn check_rpc_error(err: Option<&Type>) -> Result<(), String> {
    let expected = rpc_error_shape();
    let found = err.map(Shape::of).transpose().map_err(|e| e.to_string())?;
    match found {
        Some(found) => match expected.difference(&found) {
            None => Ok(()),
            Some(difference) => Err(format!("its error type is not this host's `rpc-error`: {difference}")),
        },
        None => Err("an ask must return `result<T, rpc-error>`".into()),
    }
}

/// Matches each method of `client` to a function of the target gateway and
/// checks that both sides agree on its type. `functions` are the target
/// gateway's functions with their ids.
///
/// # Errors
///
/// What differs, for a handshake error.
pub fn routes<'a>(
    client: &ClientInterface,
    functions: impl Iterator<Item = (FunctionId, &'a FunctionSignature)> + Clone,
) -> Result<Vec<FunctionId>, String> {
    client
        .methods
        .iter()
        .map(|method| {
            let (id, target) = functions
                .clone()
                .find(|(_, f)| f.name == method.function)
                .ok_or_else(|| format!("the gateway has no function `{}`", method.function))?;
            if target.params.len() != method.params.len() {
                return Err(format!(
                    "function `{}` takes {} parameter(s), the caller passes {}",
                    method.function,
                    target.params.len(),
                    method.params.len()
                ));
            }
            for (i, ((name, expected), found)) in target.params.iter().zip(&method.params).enumerate() {
                if let Some(difference) = expected.difference(found) {
                    return Err(format!("function `{}` parameter {i} (`{name}`): {difference}", method.function));
                }
            }
            match (&method.reply, &target.result) {
                (ClientReply::Tell, None) => Ok(id),
                (ClientReply::Ask(Some(found)), Some(expected)) => match expected.difference(found) {
                    None => Ok(id),
                    Some(difference) => Err(format!("function `{}` result: {difference}", method.function)),
                },
                (ClientReply::Tell, Some(_)) => {
                    Err(format!("function `{}` is an ask on the gateway but a tell on the caller", method.function))
                }
                (ClientReply::Ask(_), _) => {
                    Err(format!("function `{}` is a tell on the gateway but an ask on the caller", method.function))
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_map_to_gateways() {
        assert_eq!(
            gateway_of_client("weir:examples/echo-client@0.1.0"),
            Some(("weir:examples/echo@0.1.0".into(), "echo-gateway".into()))
        );
        assert_eq!(
            gateway_of_client("acme:flink/job-master-client"),
            Some(("acme:flink/job-master".into(), "job-master-gateway".into()))
        );
        assert_eq!(gateway_of_client("weir:examples/echo@0.1.0"), None);
    }

    fn signature(name: &str, params: Vec<Shape>, result: Option<Shape>) -> FunctionSignature {
        FunctionSignature {
            name: name.into(),
            params: params.into_iter().enumerate().map(|(i, s)| (format!("p{i}"), s)).collect(),
            result,
            is_async: false,
        }
    }

    fn client(methods: Vec<ClientMethod>) -> ClientInterface {
        ClientInterface {
            interface: "x:y/echo-client".into(),
            gateway: "x:y/echo".into(),
            resource: "echo-gateway".into(),
            connect: None,
            set_timeout: None,
            address: None,
            methods,
        }
    }

    fn method(function: &str, params: Vec<Shape>, reply: ClientReply) -> ClientMethod {
        ClientMethod {
            import_name: format!("[method]echo-gateway.{function}"),
            function: function.into(),
            params,
            reply,
        }
    }

    #[test]
    fn routes_follow_names_and_check_types() {
        let gateway =
            [signature("ping", vec![Shape::U64], Some(Shape::U64)), signature("notify", vec![Shape::U64], None)];
        let functions = || gateway.iter().enumerate().map(|(i, f)| (FunctionId(i as u64 + 10), f));
        let ok = client(vec![
            method("notify", vec![Shape::U64], ClientReply::Tell),
            method("ping", vec![Shape::U64], ClientReply::Ask(Some(Shape::U64))),
        ]);
        assert_eq!(routes(&ok, functions()).unwrap(), vec![FunctionId(11), FunctionId(10)]);

        let wrong_param = client(vec![method("ping", vec![Shape::U32], ClientReply::Ask(Some(Shape::U64)))]);
        assert_eq!(
            routes(&wrong_param, functions()).unwrap_err(),
            "function `ping` parameter 0 (`p0`): expected u64, found u32"
        );
        let missing = client(vec![method("pong", vec![], ClientReply::Tell)]);
        assert_eq!(routes(&missing, functions()).unwrap_err(), "the gateway has no function `pong`");
        let kind = client(vec![method("notify", vec![Shape::U64], ClientReply::Ask(None))]);
        assert!(routes(&kind, functions()).unwrap_err().contains("tell on the gateway"));
    }
}
