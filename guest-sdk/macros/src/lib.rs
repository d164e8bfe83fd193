//! `weir_guest::generate!`: wit-bindgen's bindings for an endpoint's world,
//! and the dispatcher that runs batches of its gateways' calls.
//!
//! The host hands an endpoint several queued calls at once through
//! `weir:rpc/batch` (one guest task for all of them, instead of one each).
//! Running them takes code that knows every gateway function: its id, how
//! to read its arguments and write its result. This macro reads the world's
//! WIT, as wit-bindgen does, and writes that code, so endpoint authors write
//! nothing for it.

use std::path::PathBuf;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote};
use wit_parser::{Function, FunctionKind, Resolve, Type, TypeDefKind, WorldItem};

/// Generates bindings for an endpoint's world (see `weir_guest::generate!`).
#[proc_macro]
pub fn generate(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = TokenStream::from(input);
    let options = match input.clone().into_iter().next() {
        Some(TokenTree::Group(group)) => group.stream(),
        _ => input.clone(),
    };
    match dispatcher(&input) {
        Ok(dispatcher) => quote! {
            ::weir_guest::wit_bindgen::generate!({
                runtime_path: "::weir_guest::wit_bindgen::rt",
                with: {
                    "weir:rpc/types@0.1.0": ::weir_guest::types,
                    "weir:rpc/runtime@0.1.0": ::weir_guest::runtime,
                    "weir:rpc/leadership@0.1.0": ::weir_guest::leadership::wit,
                    "weir:rpc/heartbeats@0.1.0": ::weir_guest::heartbeat::wit,
                    "weir:rpc/registration@0.1.0": ::weir_guest::registration::wit,
                    "weir:rpc/batch-replies@0.1.0": ::weir_guest::bindings::weir::rpc::batch_replies,
                },
                generate_all,
                #options
            });
            #dispatcher
        }
        .into(),
        Err(message) => syn::Error::new(Span::call_site(), message).to_compile_error().into(),
    }
}

/// The `world` and `path` options of the macro's input.
fn options(input: &TokenStream) -> Result<(String, Vec<String>), String> {
    let Some(TokenTree::Group(group)) = input.clone().into_iter().next() else {
        return Err("expected `{ world: \"...\", path: [...], ... }`".into());
    };
    let tokens: Vec<TokenTree> = group.stream().into_iter().collect();
    let mut world = None;
    let mut paths = Vec::new();
    for window in tokens.windows(3) {
        let [TokenTree::Ident(key), TokenTree::Punct(colon), value] = window else { continue };
        if colon.as_char() != ':' {
            continue;
        }
        match key.to_string().as_str() {
            "world" => world = Some(string(value)?),
            "path" => match value {
                TokenTree::Group(list) => {
                    for item in list.stream() {
                        if let TokenTree::Literal(_) = item {
                            paths.push(string(&item)?);
                        }
                    }
                }
                other => paths.push(string(other)?),
            },
            _ => {}
        }
    }
    let world = world.ok_or("`world` is required")?;
    if paths.is_empty() {
        return Err("`path` is required".into());
    }
    Ok((world, paths))
}

fn string(token: &TokenTree) -> Result<String, String> {
    let literal: syn::LitStr = syn::parse2(token.clone().into()).map_err(|e| e.to_string())?;
    Ok(literal.value())
}

/// `__weir_dispatch`: runs one call of a batch, for any endpoint type that
/// implements the world's exported gateways.
fn dispatcher(input: &TokenStream) -> Result<TokenStream, String> {
    let (world, paths) = options(input)?;
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let mut resolve = Resolve::default();
    let mut packages = Vec::new();
    for path in &paths {
        let (package, _) = resolve.push_path(root.join(path)).map_err(|e| format!("{e:#}"))?;
        packages.push(package);
    }
    let world = resolve.select_world(&packages, Some(&world)).map_err(|e| format!("{e:#}"))?;
    let mut bounds = Vec::new();
    let (mut arms, mut async_arms) = (Vec::new(), Vec::new());
    for item in resolve.worlds[world].exports.values() {
        let WorldItem::Interface { id, .. } = item else { continue };
        let interface = &resolve.interfaces[*id];
        let (Some(name), Some(package)) = (&interface.name, interface.package) else { continue };
        let package = &resolve.packages[package].name;
        if package.namespace == "weir" && package.name == "rpc" {
            continue;
        }
        let qualified = resolve.id_of(*id).ok_or("an exported interface without an id")?;
        let module = [&package.namespace, &package.name, name].map(|part| format_ident!("{}", rust_ident(part)));
        let [namespace, package_module, interface_module] = &module;
        let guest = quote!(exports::#namespace::#package_module::#interface_module::Guest);
        bounds.push(guest.clone());
        for function in interface.functions.values() {
            match function.kind {
                FunctionKind::Freestanding => arms.extend(arm(&resolve, &qualified, function, &guest)),
                FunctionKind::AsyncFreestanding => async_arms.extend(arm(&resolve, &qualified, function, &guest)),
                _ => {}
            }
        }
    }
    Ok(quote! {
        /// Runs call `function` of a batch (`weir:rpc/batch`) with the
        /// arguments `args` holds, and appends its result to `out`; `false`
        /// for a function not delivered in batches. Generated by
        /// `weir_guest::generate!`.
        #[doc(hidden)]
        #[allow(dead_code, reason = "used by `weir_guest::export!`")]
        #[allow(clippy::ptr_arg, reason = "results are appended to `out`")]
        pub(crate) fn __weir_dispatch<T: #(#bounds)+*>(
            function: u64,
            args: &mut ::weir_guest::batch::Reader<'_>,
            out: &mut Vec<u8>,
        ) -> Result<bool, ::weir_guest::batch::Malformed> {
            #[allow(unused_imports, reason = "a world without batched functions")]
            use ::weir_guest::batch::Wire as _;
            match function {
                #(#arms)*
                _ => Ok(false),
            }
        }

        /// Starts call `function` of an async batch with the arguments
        /// `args` holds; `None` for a function not delivered in batches.
        /// Generated by `weir_guest::generate!`.
        #[doc(hidden)]
        #[allow(dead_code, reason = "used by `weir_guest::export!`")]
        pub(crate) fn __weir_dispatch_async<T: #(#bounds)+* + 'static>(
            function: u64,
            args: &mut ::weir_guest::batch::Reader<'_>,
        ) -> Result<Option<::weir_guest::batch::Running>, ::weir_guest::batch::Malformed> {
            match function {
                #(#async_arms)*
                _ => Ok(None),
            }
        }
    })
}

/// The dispatch arm of `function`, if it is delivered in batches: a
/// function whose parameter and result types the wire reads without type
/// names (the host applies the same rule to the same signature). An async
/// function's arm starts it and gives back the running call.
fn arm(resolve: &Resolve, interface: &str, function: &Function, guest: &TokenStream) -> Option<TokenStream> {
    let params = function.params.iter().map(|p| rust_type(resolve, &p.ty)).collect::<Option<Vec<_>>>()?;
    if let Some(result) = &function.result {
        rust_type(resolve, result)?;
    }
    let id = function_id(interface, &function.name);
    let method = format_ident!("{}", rust_ident(&function.name));
    let names: Vec<_> = (0..params.len()).map(|i| format_ident!("a{i}")).collect();
    let call = quote!(<T as #guest>::#method(#(#names),*));
    let decode = quote!(let (#(#names,)*): (#(#params,)*) = ::weir_guest::batch::Wire::decode(args)?;);
    if function.kind == FunctionKind::AsyncFreestanding {
        let result = match function.result {
            Some(_) => quote!(#call.await),
            None => quote!({ #call.await; }),
        };
        return Some(quote! {
            #id => {
                #decode
                Ok(Some(Box::pin(async move { ::weir_guest::batch::done(&#result) })))
            }
        });
    }
    let run = match function.result {
        Some(_) => quote!(#call.encode(out);),
        None => quote!(#call;),
    };
    Some(quote! {
        #id => {
            #decode
            #run
            Ok(true)
        }
    })
}

/// The Rust type wit-bindgen gives a WIT type that needs no type name:
/// scalars, strings, and lists, options and tuples of those.
fn rust_type(resolve: &Resolve, ty: &Type) -> Option<TokenStream> {
    Some(match ty {
        Type::Bool => quote!(bool),
        Type::U8 => quote!(u8),
        Type::U16 => quote!(u16),
        Type::U32 => quote!(u32),
        Type::U64 => quote!(u64),
        Type::S8 => quote!(i8),
        Type::S16 => quote!(i16),
        Type::S32 => quote!(i32),
        Type::S64 => quote!(i64),
        Type::F32 => quote!(f32),
        Type::F64 => quote!(f64),
        Type::Char => quote!(char),
        Type::String => quote!(String),
        Type::ErrorContext => return None,
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::List(element) => {
                let element = rust_type(resolve, element)?;
                quote!(Vec<#element>)
            }
            TypeDefKind::Option(inner) => {
                let inner = rust_type(resolve, inner)?;
                quote!(Option<#inner>)
            }
            TypeDefKind::Tuple(tuple) => {
                let items = tuple.types.iter().map(|t| rust_type(resolve, t)).collect::<Option<Vec<_>>>()?;
                quote!((#(#items,)*))
            }
            TypeDefKind::Type(alias) => rust_type(resolve, alias)?,
            _ => return None,
        },
    })
}

/// A function's id as the host derives it: 64-bit FNV-1a of
/// `<interface>#<function>`.
fn function_id(interface: &str, function: &str) -> TokenStream {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in interface.bytes().chain(*b"#").chain(function.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    quote!(#hash)
}

/// The identifier wit-bindgen gives a WIT name.
fn rust_ident(name: &str) -> String {
    wit_bindgen_rust::to_rust_ident(name)
}
