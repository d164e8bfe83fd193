//! [`Value`]: a gateway value as the host carries it from a caller to an
//! endpoint and back.
//!
//! Wasmtime's dynamic [`Val`] holds a `list<u8>` as one `Val` per byte:
//! 32 bytes of memory and tens of nanoseconds each, so a 100 KiB payload
//! costs milliseconds and a few megabytes. A [`Value`] can hold such a list
//! as its bytes instead, which the host then moves by reference (mailbox,
//! local route, wire) and copies only into and out of guest memory, in one
//! piece. Functions whose byte lists can be passed this way are picked when
//! a component is loaded (see [`super::passing`]); everything else travels
//! as a `Val`, as before.

use bytes::Bytes;
use wasmtime::component::Val;

/// A gateway value: a dynamic [`Val`], or a `list<u8>` as its bytes. The two
/// forms of the same list are equal.
#[derive(Clone, Debug)]
pub enum Value {
    /// Any value, in wasmtime's dynamic form.
    Val(Val),
    /// A `list<u8>`, whole.
    Bytes(Bytes),
}

impl Value {
    /// The value in wasmtime's dynamic form. A byte list becomes one `Val`
    /// per byte: cheap for small lists, costly for large ones.
    pub fn into_val(self) -> Val {
        match self {
            Value::Val(val) => val,
            Value::Bytes(bytes) => Val::List(bytes.iter().map(|b| Val::U8(*b)).collect()),
        }
    }

    /// The bytes of a byte list held as bytes; `None` for any other value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            Value::Val(_) => None,
        }
    }

    /// The bytes of a byte list in either form; the value back if it is no
    /// byte list.
    ///
    /// # Errors
    ///
    /// The value itself, when it is not a list of `u8`.
    pub fn into_bytes(self) -> Result<Bytes, Value> {
        match self {
            Value::Bytes(bytes) => Ok(bytes),
            Value::Val(Val::List(items)) => match byte_list(&items) {
                Some(bytes) => Ok(bytes.into()),
                None => Err(Value::Val(Val::List(items))),
            },
            other => Err(other),
        }
    }

    /// About how many bytes the value takes when encoded: the measure of a
    /// message's size against `max-message-size`. Byte lists and strings
    /// count their bytes, scalars up to 8.
    pub fn size(&self) -> usize {
        match self {
            Value::Bytes(bytes) => bytes.len(),
            Value::Val(val) => val_size(val),
        }
    }
}

/// The bytes of `items` if every one is a `u8`.
fn byte_list(items: &[Val]) -> Option<Vec<u8>> {
    items.iter().map(|item| if let Val::U8(b) = item { Some(*b) } else { None }).collect()
}

fn val_size(val: &Val) -> usize {
    let total = |vals: &mut dyn Iterator<Item = &Val>| vals.map(val_size).sum::<usize>();
    match val {
        Val::String(text) => text.len(),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => total(&mut items.iter()),
        Val::Record(fields) => total(&mut fields.iter().map(|(_, v)| v)),
        Val::Variant(_, payload) | Val::Option(payload) => 1 + payload.as_deref().map_or(0, val_size),
        Val::Result(Ok(payload) | Err(payload)) => 1 + payload.as_deref().map_or(0, val_size),
        Val::Flags(set) => 4 * set.len(),
        Val::Map(pairs) => pairs.iter().map(|(k, v)| val_size(k) + val_size(v)).sum(),
        Val::U8(_) | Val::S8(_) | Val::Bool(_) | Val::Enum(_) => 1,
        _ => 8,
    }
}

impl From<Val> for Value {
    fn from(val: Val) -> Self {
        Value::Val(val)
    }
}

impl From<Bytes> for Value {
    fn from(bytes: Bytes) -> Self {
        Value::Bytes(bytes)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Self {
        Value::Bytes(bytes.into())
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Val(a), Value::Val(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Bytes(bytes), Value::Val(val)) | (Value::Val(val), Value::Bytes(bytes)) => holds(val, bytes),
        }
    }
}

/// Whether `val` is the byte list `bytes`.
fn holds(val: &Val, bytes: &[u8]) -> bool {
    matches!(val, Val::List(items) if items.len() == bytes.len()
        && items.iter().zip(bytes).all(|(item, b)| *item == Val::U8(*b)))
}

impl PartialEq<Val> for Value {
    fn eq(&self, other: &Val) -> bool {
        match self {
            Value::Val(val) => val == other,
            Value::Bytes(bytes) => holds(other, bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_of_a_byte_list_are_equal_and_convert() {
        let bytes = Value::from(vec![1u8, 2, 3]);
        let val = Value::Val(Val::List(vec![Val::U8(1), Val::U8(2), Val::U8(3)]));
        assert_eq!(bytes, val);
        assert_eq!(val.clone().into_bytes().unwrap(), Bytes::from_static(&[1, 2, 3]));
        assert_eq!(bytes.clone().into_val(), val.clone().into_val());
        assert_ne!(bytes, Value::from(vec![1u8, 2]));
        let not_bytes = Value::Val(Val::List(vec![Val::U16(1)]));
        assert_eq!(not_bytes.clone().into_bytes().unwrap_err(), not_bytes);
    }

    #[test]
    fn size_counts_payload_bytes() {
        assert_eq!(Value::from(vec![0u8; 1000]).size(), 1000);
        assert_eq!(Value::Val(Val::String("abc".into())).size(), 3);
        let record = Val::Record(vec![("a".into(), Val::U64(1)), ("b".into(), Val::List(vec![Val::U8(0); 10]))]);
        assert_eq!(Value::Val(record).size(), 18);
    }

    #[test]
    fn a_value_is_the_size_of_a_val() {
        // Arguments become `Val`s for a dynamic call in the vector they came
        // in, without an allocation, only while the two sizes are equal.
        assert_eq!(size_of::<Value>(), size_of::<Val>());
    }
}
