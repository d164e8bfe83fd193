//! Paths of the endpoint components, built from `endpoints/` by this
//! crate's build script.
//!
//! Every component has a constant with its `.wasm` path, and
//! [`foreach_endpoint!`] calls a macro once per component, so tests can
//! demand one test per component.

include!(concat!(env!("OUT_DIR"), "/gen.rs"));
