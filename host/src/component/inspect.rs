//! Reading a component's world: which gateways it exports, which clients it
//! imports, which hooks it has, and whether the host can provide the rest.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentFunc, ComponentItem};

use super::info::{ComponentInfo, ExecutionMode, FunctionExport, GatewayExport, Hooks};
use crate::gateway::{ClientInterface, FunctionSignature, Shape, gateway_of_client};

/// The WIT package every endpoint builds against.
pub const RPC_PACKAGE: &str = "weir:rpc";
/// The version of it this host implements.
pub const RPC_VERSION: &str = "0.1.0";

const RUNTIME: &str = "weir:rpc/runtime@0.1.0";
const TYPES: &str = "weir:rpc/types@0.1.0";
const LIFECYCLE: &str = "weir:rpc/lifecycle@0.1.0";
const MAIN_THREAD: &str = "weir:rpc/main-thread@0.1.0";

/// Reads the world of `component`. Errors describe what does not fit, for
/// [`LoadError::WrongWorld`](crate::error::LoadError::WrongWorld).
pub(crate) fn inspect(
    engine: &Engine,
    component: &Component,
    name: &str,
    mode: ExecutionMode,
) -> Result<ComponentInfo, String> {
    let ty = component.component_type();
    let mut info = ComponentInfo {
        name: name.to_owned(),
        mode,
        gateways: Vec::new(),
        functions: Vec::new(),
        clients: Vec::new(),
        hooks: Hooks::default(),
    };
    let mut uses_run_async = false;
    for (import, item) in ty.imports(engine) {
        match import {
            _ if import.starts_with("wasi:") || import == TYPES => {}
            RUNTIME => {
                let ComponentItem::ComponentInstance(instance) = item.ty else {
                    return Err(format!("import `{import}` must be an interface"));
                };
                uses_run_async = instance.exports(engine).any(|(f, _)| f == "schedule-run-async");
            }
            _ if import.starts_with(&format!("{RPC_PACKAGE}/")) => {
                return Err(format!("imports `{import}`, but this host provides {RPC_PACKAGE}@{RPC_VERSION}"));
            }
            _ if gateway_of_client(import).is_some() => {
                let ComponentItem::ComponentInstance(instance) = item.ty else {
                    return Err(format!("import `{import}` must be an interface"));
                };
                let exports = instance.exports(engine).map(|(name, e)| (name, e.ty));
                info.clients.push(ClientInterface::parse(import, exports)?);
            }
            _ => {
                return Err(format!(
                    "imports `{import}`, which a weir host does not provide: an endpoint may import \
                     {RUNTIME}, WASI, and client interfaces named `<gateway>-client`"
                ));
            }
        }
    }
    for (export, item) in ty.exports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            return Err(format!("exports `{export}` outside an interface; gateway functions belong to an interface"));
        };
        let interface =
            component.get_export_index(None, export).ok_or_else(|| format!("export `{export}` has no index"))?;
        let funcs = instance.exports(engine).filter_map(|(name, e)| match e.ty {
            ComponentItem::ComponentFunc(func) => Some((name.to_owned(), func)),
            _ => None,
        });
        let index_of = |function: &str| {
            component
                .get_export_index(Some(&interface), function)
                .ok_or_else(|| format!("`{export}` has no function `{function}`"))
        };
        match export {
            LIFECYCLE => {
                for (function, func) in funcs {
                    let index = index_of(&function)?;
                    match function.as_str() {
                        "on-start" => {
                            expect_hook(&function, &func, false, Some(unit_or_string()))?;
                            info.hooks.on_start = Some(index);
                        }
                        "on-stop" => {
                            expect_hook(&function, &func, true, Some(unit_or_string()))?;
                            info.hooks.on_stop = Some(index);
                        }
                        other => {
                            return Err(format!("`{LIFECYCLE}` has an unknown function `{other}`"));
                        }
                    }
                }
            }
            MAIN_THREAD => {
                for (function, func) in funcs {
                    if function != "run" {
                        return Err(format!("`{MAIN_THREAD}` has an unknown function `{function}`"));
                    }
                    expect_hook(&function, &func, true, None)?;
                    if func.params().map(|(_, t)| Shape::of(&t).ok()).collect::<Vec<_>>() != [Some(Shape::U64)] {
                        return Err(format!("`{MAIN_THREAD}.run` must take one `u64`"));
                    }
                    info.hooks.run_task = Some(index_of(&function)?);
                }
            }
            _ if export.starts_with(&format!("{RPC_PACKAGE}/")) => {
                return Err(format!("exports `{export}`, which is not a {RPC_PACKAGE}@{RPC_VERSION} interface"));
            }
            _ => {
                let gateway = info.gateways.len();
                let start = to_u32(info.functions.len())?;
                for (function, func) in funcs {
                    let signature =
                        FunctionSignature::of(&function, &func).map_err(|e| format!("gateway `{export}`: {e}"))?;
                    info.functions.push(FunctionExport { signature, gateway, index: index_of(&function)? });
                }
                let end = to_u32(info.functions.len())?;
                info.gateways.push(GatewayExport { name: export.to_owned(), functions: start..end });
            }
        }
    }
    if uses_run_async && info.hooks.run_task.is_none() {
        return Err(format!("calls `schedule-run-async` but does not export `{MAIN_THREAD}` to run the tasks"));
    }
    Ok(info)
}

fn to_u32(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| "too many gateway functions".to_owned())
}

fn unit_or_string() -> Shape {
    Shape::Result { ok: None, err: Some(Box::new(Shape::String)) }
}

/// Checks a hook's asyncness and result against `weir:rpc`.
fn expect_hook(name: &str, func: &ComponentFunc, is_async: bool, result: Option<Shape>) -> Result<(), String> {
    let found = func.results().next().map(|t| Shape::of(&t).ok());
    if func.async_() != is_async || found != result.clone().map(Some) {
        let kind = if is_async { "async func" } else { "func" };
        let result = result.map_or(String::new(), |r| format!(" -> {r}"));
        return Err(format!("hook `{name}` must be `{kind}(...){result}` as in {RPC_PACKAGE}@{RPC_VERSION}"));
    }
    Ok(())
}
