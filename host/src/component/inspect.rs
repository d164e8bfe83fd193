//! Reading a component's world: which gateways it exports, which clients it
//! imports, which hooks it has, and whether the host lends everything else
//! it imports.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentFunc, ComponentItem};

use super::Lender;
use super::info::{ComponentInfo, ExecutionMode, FunctionExport, GatewayExport, Hooks};
use crate::gateway::{ClientInterface, FunctionId, FunctionSignature, Passing, Shape, batchable, gateway_of_client};

/// The WIT package every endpoint builds against.
pub const RPC_PACKAGE: &str = "weir:rpc";
/// The version of it this host implements.
pub const RPC_VERSION: &str = "0.1.0";

const RUNTIME: &str = "weir:rpc/runtime@0.1.0";
const LIFECYCLE: &str = "weir:rpc/lifecycle@0.1.0";
const MAIN_THREAD: &str = "weir:rpc/main-thread@0.1.0";
const BATCH: &str = "weir:rpc/batch@0.1.0";
const HANDOVER: &str = "weir:rpc/handover@0.1.0";

/// Reads the world of `component`. Errors describe what does not fit, for
/// [`LoadError::WrongWorld`](crate::error::LoadError::WrongWorld).
pub(crate) fn inspect(
    engine: &Engine,
    component: &Component,
    name: &str,
    mode: ExecutionMode,
    lender: &dyn Lender,
) -> Result<ComponentInfo, String> {
    let ty = component.component_type();
    let (mut gateways, mut functions, mut clients, mut imports) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut hooks = Hooks::default();
    let mut uses_run_async = false;
    for (import, item) in ty.imports(engine) {
        // An interface imported only for its types (a gateway's records,
        // used by its client) needs nothing from the host.
        let types_only = matches!(&item.ty, ComponentItem::ComponentInstance(instance)
            if instance.exports(engine).all(|(_, export)| matches!(export.ty, ComponentItem::Type(_))));
        if !types_only && !lender.lends(import) {
            if import.starts_with(&format!("{RPC_PACKAGE}/")) && !import.ends_with(&format!("@{RPC_VERSION}")) {
                return Err(format!("imports `{import}`, but this host provides {RPC_PACKAGE}@{RPC_VERSION}"));
            }
            return Err(format!(
                "imports `{import}`, which a weir host does not lend; an endpoint may import {}",
                lender.describe()
            ));
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            return Err(format!("import `{import}` must be an interface"));
        };
        if import == RUNTIME {
            uses_run_async = instance.exports(engine).any(|(f, _)| f == "schedule-run-async");
        } else if gateway_of_client(import).is_some() {
            let exports = instance.exports(engine).map(|(name, e)| (name, e.ty));
            clients.push(ClientInterface::parse(import, exports)?);
        }
        imports.push(import.to_owned());
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
                            hooks.on_start = Some(index);
                        }
                        "on-stop" => {
                            expect_hook(&function, &func, true, Some(unit_or_string()))?;
                            hooks.on_stop = Some(index);
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
                    hooks.run_task = Some(index_of(&function)?);
                }
            }
            BATCH => {
                let list = |shape| Shape::List(Box::new(shape));
                let batch = [list(Shape::U64), list(Shape::U8), list(Shape::U32)];
                let outcomes = Shape::Tuple(vec![list(Shape::U8), list(Shape::U32)]);
                for (function, func) in funcs {
                    let params: Vec<_> = func.params().map(|(_, t)| Shape::of(&t).ok()).collect();
                    let index = index_of(&function)?;
                    let (expected, slot) = match function.as_str() {
                        "deliver" => {
                            expect_hook(&function, &func, false, Some(outcomes.clone()))?;
                            (batch.to_vec(), &mut hooks.batch)
                        }
                        "deliver-async" => {
                            expect_hook(&function, &func, true, Some(outcomes.clone()))?;
                            let mut with_slots = batch.to_vec();
                            with_slots.push(list(Shape::U32));
                            (with_slots, &mut hooks.batch_async)
                        }
                        other => return Err(format!("`{BATCH}` has an unknown function `{other}`")),
                    };
                    if params != expected.into_iter().map(Some).collect::<Vec<_>>() {
                        return Err(format!("`{BATCH}.{function}` does not take the parameters of {RPC_PACKAGE}"));
                    }
                    *slot = Some(index);
                }
            }
            HANDOVER => {
                let state = || {
                    Shape::Record(vec![
                        ("version".into(), Shape::U32),
                        ("bytes".into(), Shape::List(Box::new(Shape::U8))),
                    ])
                };
                for (function, func) in funcs {
                    let params: Vec<_> = func.params().map(|(_, t)| Shape::of(&t).ok()).collect();
                    let index = index_of(&function)?;
                    let (expected, slot) = match function.as_str() {
                        "snapshot" => {
                            let result = Shape::Result {
                                ok: Some(Box::new(Shape::Option(Box::new(state())))),
                                err: Some(Box::new(Shape::String)),
                            };
                            expect_hook(&function, &func, false, Some(result))?;
                            (Vec::new(), &mut hooks.snapshot)
                        }
                        "restore" => {
                            expect_hook(&function, &func, true, Some(unit_or_string()))?;
                            (vec![Some(state())], &mut hooks.restore)
                        }
                        other => return Err(format!("`{HANDOVER}` has an unknown function `{other}`")),
                    };
                    if params != expected {
                        return Err(format!("`{HANDOVER}.{function}` does not take the parameters of {RPC_PACKAGE}"));
                    }
                    *slot = Some(index);
                }
            }
            _ if export.starts_with(&format!("{RPC_PACKAGE}/")) => {
                return Err(format!("exports `{export}`, which is not a {RPC_PACKAGE}@{RPC_VERSION} interface"));
            }
            _ => {
                let gateway = gateways.len();
                let start = functions.len();
                for (function, func) in funcs {
                    let signature =
                        FunctionSignature::of(&function, &func).map_err(|e| format!("gateway `{export}`: {e}"))?;
                    let id = FunctionId::of(export, &function);
                    let passing = Passing::of(&signature);
                    let index = index_of(&function)?;
                    functions.push(FunctionExport { id, signature, gateway, passing, batched: false, index });
                }
                gateways.push(GatewayExport { name: export.to_owned(), functions: start..functions.len() });
            }
        }
    }
    if mode == ExecutionMode::Concurrent {
        for function in &mut functions {
            let entry = if function.signature.is_async { hooks.batch_async } else { hooks.batch };
            function.batched = entry.is_some() && batchable(&function.signature);
        }
    }
    if uses_run_async && hooks.run_task.is_none() {
        return Err(format!("calls `schedule-run-async` but does not export `{MAIN_THREAD}` to run the tasks"));
    }
    ComponentInfo::new(name.to_owned(), mode, gateways, functions, clients, imports, hooks)
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
