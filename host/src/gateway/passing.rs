//! Which gateway functions the host calls through typed functions.
//!
//! A function whose parameters or result hold a top-level `list<u8>` is
//! called through a wasmtime typed function, which copies the list into or
//! out of guest memory in one piece, as [`bytes::Bytes`]; every other
//! function is called with dynamic values. The choice is made once, from the
//! signature, when a component is loaded; callers and endpoint authors see
//! no difference.
//!
//! Wasmtime's typed functions are static types, so the forms are a fixed
//! catalogue: a byte-list parameter, alone or after a `u32` (an id and its
//! payload: a producer's batch of records), with any result of the list
//! below, or up to one scalar parameter with a byte-list result. A byte
//! list nested in a record, variant, option or result, or beside other
//! parameters, is passed as dynamic values (one `Val` per byte).

use super::shape::Shape;
use super::signature::FunctionSignature;

/// The parameters of a typed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypedParams {
    /// `(payload: list<u8>)`.
    Bytes,
    /// `(x: u32, payload: list<u8>)`.
    U32Bytes,
    /// `()`.
    Nothing,
    /// `(x: u32)`.
    U32,
    /// `(x: u64)`.
    U64,
}

/// The result of a typed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypedResult {
    /// No result: a tell.
    Nothing,
    /// `-> list<u8>`.
    Bytes,
    /// `-> u32`.
    U32,
    /// `-> u64`.
    U64,
    /// `-> bool`.
    Bool,
    /// `-> result<_, string>`: done, or why not.
    Status,
    /// `-> result<u64, string>`: a number (a key, an id), or why not.
    U64OrWhy,
}

/// How a function's values cross into and out of its guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Passing {
    /// As dynamic `Val`s.
    Dynamic,
    /// Through a typed function of this form.
    Typed(TypedParams, TypedResult),
}

impl Passing {
    /// How to call a function of `signature`.
    pub(crate) fn of(signature: &FunctionSignature) -> Passing {
        let params: Vec<&Shape> = signature.params.iter().map(|(_, shape)| shape).collect();
        Passing::of_parts(&params, signature.result.as_ref())
    }

    /// How to call a function with parameters `params` and result `result`
    /// (`None` for a tell).
    pub(crate) fn of_parts(params: &[&Shape], result: Option<&Shape>) -> Passing {
        let params = match params {
            [] => Some(TypedParams::Nothing),
            [shape] if is_bytes(shape) => Some(TypedParams::Bytes),
            [Shape::U32, shape] if is_bytes(shape) => Some(TypedParams::U32Bytes),
            [Shape::U32] => Some(TypedParams::U32),
            [Shape::U64] => Some(TypedParams::U64),
            _ => None,
        };
        let result = match result {
            None => Some(TypedResult::Nothing),
            Some(shape) if is_bytes(shape) => Some(TypedResult::Bytes),
            Some(Shape::U32) => Some(TypedResult::U32),
            Some(Shape::U64) => Some(TypedResult::U64),
            Some(Shape::Bool) => Some(TypedResult::Bool),
            Some(Shape::Result { ok: None, err: Some(err) }) if **err == Shape::String => Some(TypedResult::Status),
            Some(Shape::Result { ok: Some(ok), err: Some(err) }) if **ok == Shape::U64 && **err == Shape::String => {
                Some(TypedResult::U64OrWhy)
            }
            Some(_) => None,
        };
        let bytes_in = matches!(params, Some(TypedParams::Bytes | TypedParams::U32Bytes));
        match (params, result) {
            (Some(params), Some(result)) if bytes_in || result == TypedResult::Bytes => Passing::Typed(params, result),
            _ => Passing::Dynamic,
        }
    }
}

/// Whether calls of a function of `signature` may be delivered in batches
/// (`weir:rpc/batch`) to a component that exports it: a function called
/// with dynamic values whose types the guest reads without type names. The
/// guest SDK's batch entry applies the same rule to the WIT.
pub(crate) fn batchable(signature: &FunctionSignature) -> bool {
    Passing::of(signature) == Passing::Dynamic
        && signature.params.iter().all(|(_, shape)| is_plain(shape))
        && signature.result.as_ref().is_none_or(is_plain)
}

/// Scalars, strings, and lists, options and tuples of those.
fn is_plain(shape: &Shape) -> bool {
    match shape {
        Shape::List(inner) | Shape::Option(inner) => is_plain(inner),
        Shape::Tuple(items) => items.iter().all(is_plain),
        Shape::Record(_) | Shape::Variant(_) | Shape::Enum(_) | Shape::Result { .. } | Shape::Flags(_) => false,
        _ => true,
    }
}

/// Whether `shape` is `list<u8>`.
pub(crate) fn is_bytes(shape: &Shape) -> bool {
    matches!(shape, Shape::List(element) if **element == Shape::U8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(params: Vec<Shape>, result: Option<Shape>) -> FunctionSignature {
        let params = params.into_iter().enumerate().map(|(i, s)| (format!("p{i}"), s)).collect();
        FunctionSignature { name: "f".into(), params, result, is_async: false }
    }

    fn bytes() -> Shape {
        Shape::List(Box::new(Shape::U8))
    }

    #[test]
    fn top_level_byte_lists_are_typed_and_the_rest_dynamic() {
        let typed = |p, r| Passing::of(&signature(p, r));
        assert_eq!(typed(vec![bytes()], Some(bytes())), Passing::Typed(TypedParams::Bytes, TypedResult::Bytes));
        assert_eq!(typed(vec![bytes()], None), Passing::Typed(TypedParams::Bytes, TypedResult::Nothing));
        assert_eq!(typed(vec![bytes()], Some(Shape::U32)), Passing::Typed(TypedParams::Bytes, TypedResult::U32));
        assert_eq!(typed(vec![Shape::U64], Some(bytes())), Passing::Typed(TypedParams::U64, TypedResult::Bytes));
        assert_eq!(typed(vec![], Some(bytes())), Passing::Typed(TypedParams::Nothing, TypedResult::Bytes));
        // No byte list: dynamic values are as cheap.
        assert_eq!(typed(vec![Shape::U64], Some(Shape::U64)), Passing::Dynamic);
        // After a u32 (an id and its payload), with a status result.
        assert_eq!(
            typed(vec![Shape::U32, bytes()], Some(bytes())),
            Passing::Typed(TypedParams::U32Bytes, TypedResult::Bytes)
        );
        let status = Shape::Result { ok: None, err: Some(Box::new(Shape::String)) };
        let typed_status = Passing::Typed(TypedParams::U32Bytes, TypedResult::Status);
        assert_eq!(typed(vec![Shape::U32, bytes()], Some(status.clone())), typed_status);
        assert_eq!(typed(vec![Shape::U64], Some(status)), Passing::Dynamic, "no byte list");
        // An upload's key, or why it was refused.
        let key = Shape::Result { ok: Some(Box::new(Shape::U64)), err: Some(Box::new(Shape::String)) };
        assert_eq!(typed(vec![bytes()], Some(key)), Passing::Typed(TypedParams::Bytes, TypedResult::U64OrWhy));
        // Beside other parameters, or nested: outside the catalogue.
        assert_eq!(typed(vec![Shape::U64, bytes()], Some(bytes())), Passing::Dynamic);
        assert_eq!(typed(vec![bytes(), Shape::U32], None), Passing::Dynamic);
        let record = Shape::Record(vec![("data".into(), bytes())]);
        assert_eq!(typed(vec![record], None), Passing::Dynamic);
        assert_eq!(typed(vec![bytes()], Some(Shape::String)), Passing::Dynamic);
    }

    #[test]
    fn sync_functions_of_plain_types_are_batchable() {
        let plain = |p, r| batchable(&signature(p, r));
        assert!(plain(vec![Shape::U64], None));
        assert!(plain(vec![], Some(Shape::Tuple(vec![Shape::U64, Shape::U64]))));
        assert!(plain(vec![Shape::String, Shape::List(Box::new(Shape::Option(Box::new(Shape::S32))))], None));
        assert!(!plain(vec![Shape::Record(vec![("a".into(), Shape::U8)])], None), "type names");
        assert!(!plain(vec![], Some(Shape::Result { ok: None, err: None })), "type names");
        assert!(!plain(vec![bytes()], None), "typed byte lists go one by one, without a copy");
        let mut async_ping = signature(vec![Shape::U64], Some(Shape::U64));
        async_ping.is_async = true;
        assert!(batchable(&async_ping), "async functions go in batches of their own");
    }
}
