//! The structural type of a gateway value, independent of any component.
//!
//! Wasmtime's [`Type`] belongs to one component's type tables, so two
//! components' identical `record { a: u32 }` are not comparable as they
//! stand. A [`Shape`] is the same type reduced to its structure: it compares
//! across components (and, later, across hosts), prints as WIT, and checks
//! that a dynamic [`Val`] fits it before the value reaches another endpoint.

use std::fmt;

use serde::{Deserialize, Serialize};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

use super::passing::is_bytes;
use super::value::Value;

/// A WIT value type, by structure. Field, case and flag names are part of
/// the structure; type names are not.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shape {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Shape>),
    Record(Vec<(String, Shape)>),
    Tuple(Vec<Shape>),
    Variant(Vec<(String, Option<Shape>)>),
    Enum(Vec<String>),
    Option(Box<Shape>),
    Result { ok: Option<Box<Shape>>, err: Option<Box<Shape>> },
    Flags(Vec<String>),
}

/// A type that cannot travel between endpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} cannot be passed between endpoints")]
pub struct UnsupportedType {
    /// The kind of type, e.g. "a resource handle".
    pub what: &'static str,
}

impl Shape {
    /// The shape of a component type.
    ///
    /// # Errors
    ///
    /// Resources, futures, streams, error contexts, maps and fixed-length
    /// lists are bound to one component instance (or not yet stable) and
    /// cannot be part of a gateway's signature.
    pub fn of(ty: &Type) -> Result<Shape, UnsupportedType> {
        let unsupported = |what| Err(UnsupportedType { what });
        Ok(match ty {
            Type::Bool => Shape::Bool,
            Type::S8 => Shape::S8,
            Type::U8 => Shape::U8,
            Type::S16 => Shape::S16,
            Type::U16 => Shape::U16,
            Type::S32 => Shape::S32,
            Type::U32 => Shape::U32,
            Type::S64 => Shape::S64,
            Type::U64 => Shape::U64,
            Type::Float32 => Shape::F32,
            Type::Float64 => Shape::F64,
            Type::Char => Shape::Char,
            Type::String => Shape::String,
            Type::List(list) => Shape::List(Box::new(Shape::of(&list.ty())?)),
            Type::Record(record) => Shape::Record(
                record
                    .fields()
                    .map(|field| Ok((field.name.to_owned(), Shape::of(&field.ty)?)))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Tuple(tuple) => Shape::Tuple(tuple.types().map(|t| Shape::of(&t)).collect::<Result<_, _>>()?),
            Type::Variant(variant) => Shape::Variant(
                variant
                    .cases()
                    .map(|case| Ok((case.name.to_owned(), case.ty.as_ref().map(Shape::of).transpose()?)))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Enum(en) => Shape::Enum(en.names().map(str::to_owned).collect()),
            Type::Option(option) => Shape::Option(Box::new(Shape::of(&option.ty())?)),
            Type::Result(result) => Shape::Result {
                ok: result.ok().as_ref().map(Shape::of).transpose()?.map(Box::new),
                err: result.err().as_ref().map(Shape::of).transpose()?.map(Box::new),
            },
            Type::Flags(flags) => Shape::Flags(flags.names().map(str::to_owned).collect()),
            Type::Own(_) | Type::Borrow(_) => return unsupported("a resource handle"),
            Type::Future(_) => return unsupported("a future"),
            Type::Stream(_) => return unsupported("a stream"),
            Type::ErrorContext => return unsupported("an error context"),
            Type::Map(_) => return unsupported("a map"),
            Type::FixedLengthList(_) => return unsupported("a fixed-length list"),
        })
    }

    /// Where `found` differs from `self`, described for a handshake error;
    /// `None` if they are the same.
    pub fn difference(&self, found: &Shape) -> Option<String> {
        let mismatch = || Some(format!("expected {self}, found {found}"));
        match (self, found) {
            (Shape::List(a), Shape::List(b)) | (Shape::Option(a), Shape::Option(b)) => {
                a.difference(b).map(|d| format!("element: {d}"))
            }
            (Shape::Record(a), Shape::Record(b)) if same_names(a, b) => {
                a.iter().zip(b).find_map(|((name, a), (_, b))| a.difference(b).map(|d| format!("field `{name}`: {d}")))
            }
            (Shape::Tuple(a), Shape::Tuple(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (a, b))| a.difference(b).map(|d| format!("tuple element {i}: {d}"))),
            (Shape::Variant(a), Shape::Variant(b)) if same_names(a, b) => {
                a.iter().zip(b).find_map(|((name, a), (_, b))| match (a, b) {
                    (Some(a), Some(b)) => a.difference(b).map(|d| format!("case `{name}`: {d}")),
                    (None, None) => None,
                    _ => Some(format!("case `{name}`: payloads differ")),
                })
            }
            (Shape::Result { ok: a_ok, err: a_err }, Shape::Result { ok: b_ok, err: b_err }) => {
                optional_difference(a_ok, b_ok, "ok").or_else(|| optional_difference(a_err, b_err, "error"))
            }
            _ if self == found => None,
            _ => mismatch(),
        }
    }

    /// Checks that `value` is a value of this shape.
    ///
    /// # Errors
    ///
    /// A description of the first part of `value` that does not fit.
    pub fn check_value(&self, value: &Value) -> Result<(), String> {
        match value {
            Value::Val(val) => self.check(val),
            Value::Bytes(_) if is_bytes(self) => Ok(()),
            Value::Bytes(_) => Err(format!("expected {self}, found list<u8>")),
        }
    }

    /// Checks that `val` is a value of this shape.
    ///
    /// # Errors
    ///
    /// A description of the first part of `val` that does not fit.
    pub fn check(&self, val: &Val) -> Result<(), String> {
        let mismatch = || Err(format!("expected {self}, found {}", describe(val)));
        match (self, val) {
            (Shape::Bool, Val::Bool(_))
            | (Shape::S8, Val::S8(_))
            | (Shape::U8, Val::U8(_))
            | (Shape::S16, Val::S16(_))
            | (Shape::U16, Val::U16(_))
            | (Shape::S32, Val::S32(_))
            | (Shape::U32, Val::U32(_))
            | (Shape::S64, Val::S64(_))
            | (Shape::U64, Val::U64(_))
            | (Shape::F32, Val::Float32(_))
            | (Shape::F64, Val::Float64(_))
            | (Shape::Char, Val::Char(_))
            | (Shape::String, Val::String(_)) => Ok(()),
            (Shape::List(element), Val::List(items)) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| element.check(item).map_err(|e| format!("list element {i}: {e}"))),
            (Shape::Record(fields), Val::Record(values)) => {
                if fields.len() != values.len() || fields.iter().zip(values).any(|((a, _), (b, _))| a != b) {
                    return mismatch();
                }
                fields
                    .iter()
                    .zip(values)
                    .try_for_each(|((name, shape), (_, v))| shape.check(v).map_err(|e| format!("field `{name}`: {e}")))
            }
            (Shape::Tuple(shapes), Val::Tuple(values)) if shapes.len() == values.len() => shapes
                .iter()
                .zip(values)
                .enumerate()
                .try_for_each(|(i, (s, v))| s.check(v).map_err(|e| format!("tuple element {i}: {e}"))),
            (Shape::Variant(cases), Val::Variant(name, payload)) => {
                match (cases.iter().find(|(case, _)| case == name), payload) {
                    (Some((_, None)), None) => Ok(()),
                    (Some((_, Some(shape))), Some(v)) => shape.check(v).map_err(|e| format!("case `{name}`: {e}")),
                    _ => mismatch(),
                }
            }
            (Shape::Enum(names), Val::Enum(name)) if names.contains(name) => Ok(()),
            (Shape::Option(_), Val::Option(None)) => Ok(()),
            (Shape::Option(inner), Val::Option(Some(v))) => inner.check(v),
            (Shape::Result { ok, err }, Val::Result(result)) => {
                let (shape, payload, side) = match result {
                    Ok(payload) => (ok, payload, "ok"),
                    Err(payload) => (err, payload, "error"),
                };
                match (shape, payload) {
                    (None, None) => Ok(()),
                    (Some(shape), Some(v)) => shape.check(v).map_err(|e| format!("{side}: {e}")),
                    _ => mismatch(),
                }
            }
            (Shape::Flags(names), Val::Flags(set)) if set.iter().all(|flag| names.contains(flag)) => Ok(()),
            _ => mismatch(),
        }
    }
}

fn same_names<T>(a: &[(String, T)], b: &[(String, T)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((x, _), (y, _))| x == y)
}

fn optional_difference(a: &Option<Box<Shape>>, b: &Option<Box<Shape>>, side: &str) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => a.difference(b).map(|d| format!("{side}: {d}")),
        (None, None) => None,
        (Some(a), None) => Some(format!("{side}: expected {a}, found nothing")),
        (None, Some(b)) => Some(format!("{side}: expected nothing, found {b}")),
    }
}

/// A short name for the kind of a value, for error messages.
fn describe(val: &Val) -> &'static str {
    match val {
        Val::Bool(_) => "bool",
        Val::S8(_) => "s8",
        Val::U8(_) => "u8",
        Val::S16(_) => "s16",
        Val::U16(_) => "u16",
        Val::S32(_) => "s32",
        Val::U32(_) => "u32",
        Val::S64(_) => "s64",
        Val::U64(_) => "u64",
        Val::Float32(_) => "f32",
        Val::Float64(_) => "f64",
        Val::Char(_) => "char",
        Val::String(_) => "string",
        Val::List(_) | Val::FixedLengthList(_) => "a list",
        Val::Map(_) => "a map",
        Val::Record(_) => "a record",
        Val::Tuple(_) => "a tuple",
        Val::Variant(..) => "a variant case",
        Val::Enum(_) => "an enum case",
        Val::Option(_) => "an option",
        Val::Result(_) => "a result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "a resource",
        Val::Future(_) => "a future",
        Val::Stream(_) => "a stream",
        Val::ErrorContext(_) => "an error context",
    }
}

/// Prints the shape in WIT syntax, with anonymous compound types spelled out.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Bool => f.write_str("bool"),
            Shape::S8 => f.write_str("s8"),
            Shape::U8 => f.write_str("u8"),
            Shape::S16 => f.write_str("s16"),
            Shape::U16 => f.write_str("u16"),
            Shape::S32 => f.write_str("s32"),
            Shape::U32 => f.write_str("u32"),
            Shape::S64 => f.write_str("s64"),
            Shape::U64 => f.write_str("u64"),
            Shape::F32 => f.write_str("f32"),
            Shape::F64 => f.write_str("f64"),
            Shape::Char => f.write_str("char"),
            Shape::String => f.write_str("string"),
            Shape::List(element) => write!(f, "list<{element}>"),
            Shape::Option(inner) => write!(f, "option<{inner}>"),
            Shape::Tuple(items) => {
                f.write_str("tuple<")?;
                write_separated(f, items.iter(), |f, item| write!(f, "{item}"))?;
                f.write_str(">")
            }
            Shape::Record(fields) => {
                f.write_str("record { ")?;
                write_separated(f, fields.iter(), |f, (name, shape)| write!(f, "{name}: {shape}"))?;
                f.write_str(" }")
            }
            Shape::Variant(cases) => {
                f.write_str("variant { ")?;
                write_separated(f, cases.iter(), |f, (name, payload)| match payload {
                    Some(shape) => write!(f, "{name}({shape})"),
                    None => write!(f, "{name}"),
                })?;
                f.write_str(" }")
            }
            Shape::Enum(names) => {
                f.write_str("enum { ")?;
                write_separated(f, names.iter(), |f, name| f.write_str(name))?;
                f.write_str(" }")
            }
            Shape::Flags(names) => {
                f.write_str("flags { ")?;
                write_separated(f, names.iter(), |f, name| f.write_str(name))?;
                f.write_str(" }")
            }
            Shape::Result { ok, err } => match (ok, err) {
                (None, None) => f.write_str("result"),
                (Some(ok), None) => write!(f, "result<{ok}>"),
                (None, Some(err)) => write!(f, "result<_, {err}>"),
                (Some(ok), Some(err)) => write!(f, "result<{ok}, {err}>"),
            },
        }
    }
}

fn write_separated<I: Iterator>(
    f: &mut fmt::Formatter<'_>,
    items: I,
    mut write_item: impl FnMut(&mut fmt::Formatter<'_>, I::Item) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_item(f, item)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid() -> Shape {
        Shape::Record(vec![("high".into(), Shape::U64), ("low".into(), Shape::U64)])
    }

    #[test]
    fn prints_as_wit() {
        let shape = Shape::Result {
            ok: Some(Box::new(Shape::List(Box::new(Shape::U8)))),
            err: Some(Box::new(Shape::Variant(vec![("timeout".into(), Some(Shape::String)), ("gone".into(), None)]))),
        };
        assert_eq!(shape.to_string(), "result<list<u8>, variant { timeout(string), gone }>");
        assert_eq!(uuid().to_string(), "record { high: u64, low: u64 }");
    }

    #[test]
    fn difference_names_the_path_to_the_mismatch() {
        let found = Shape::Record(vec![("high".into(), Shape::U64), ("low".into(), Shape::U32)]);
        assert_eq!(uuid().difference(&uuid()), None);
        assert_eq!(uuid().difference(&found).unwrap(), "field `low`: expected u64, found u32");
        let renamed = Shape::Record(vec![("hi".into(), Shape::U64), ("low".into(), Shape::U64)]);
        assert!(uuid().difference(&renamed).unwrap().contains("record { hi: u64"));
    }

    #[test]
    fn check_accepts_fitting_values_and_explains_the_rest() {
        let ok = Val::Record(vec![("high".into(), Val::U64(1)), ("low".into(), Val::U64(2))]);
        uuid().check(&ok).unwrap();
        let bad = Val::Record(vec![("high".into(), Val::U64(1)), ("low".into(), Val::String("x".into()))]);
        assert_eq!(uuid().check(&bad).unwrap_err(), "field `low`: expected u64, found string");
        let list = Shape::List(Box::new(Shape::U8));
        assert!(list.check(&Val::List(vec![Val::U8(1), Val::U16(2)])).unwrap_err().starts_with("list element 1"));
        let option = Shape::Option(Box::new(Shape::Bool));
        option.check(&Val::Option(None)).unwrap();
        assert!(option.check(&Val::Bool(true)).is_err());
        let en = Shape::Enum(vec!["a".into(), "b".into()]);
        en.check(&Val::Enum("b".into())).unwrap();
        assert!(en.check(&Val::Enum("c".into())).is_err());
    }
}
