//! Gateway values as bytes: bincode, guided by the function's WIT type. The
//! wire between hosts and batches delivered to a guest (`weir:rpc/batch`,
//! whose reader the guest SDK implements) use this encoding.
//!
//! bincode is not self-describing: it writes a `u64` as a varint and a
//! record as its fields one after the other, with no names or tags. The
//! reader knows what comes next from the [`Shape`] of the function's
//! parameters or result, which the handshake made sure both hosts agree
//! on. So no gateway needs hand-written serialization code, and a value
//! costs about what a hand-written bincode struct would.
//!
//! Layout, per shape: integers as varints, floats as little-endian IEEE,
//! strings and `list<u8>` as a length and the bytes, other lists as a
//! length and the elements, records and tuples as their elements, options
//! as a tag byte and the payload, variants and results as a case index and
//! the payload, enums as a case index, flags as 32-bit words.
//!
//! A top-level `list<u8>` (an argument or a result) is read as a slice of
//! the frame it arrived in, not copied: [`Value::Bytes`] shares the frame's
//! buffer.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{self, SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wasmtime::component::Val;

use super::passing::is_bytes;
use super::shape::Shape;
use super::value::Value;

/// The bincode configuration of every frame: little endian, varints.
pub(crate) const BINCODE: bincode::config::Configuration = bincode::config::standard();

/// Elements reserved up front for a list, whatever length its header
/// claims: a lying header must not make the reader allocate gigabytes.
const MAX_PREALLOCATED: usize = 4096;

/// A value with the shape that says how to write it.
pub(crate) struct Typed<'a> {
    pub shape: &'a Shape,
    pub val: &'a Val,
}

/// A host value with the shape that says how to write it: a byte list
/// held as bytes is written as they are.
pub(crate) struct TypedValue<'a> {
    pub shape: &'a Shape,
    pub value: &'a Value,
}

/// A call's arguments, written as a tuple of the parameters' shapes.
pub(crate) struct Args<'a> {
    pub params: &'a [(String, Shape)],
    pub values: &'a [Value],
}

/// Reads a value of one shape.
#[derive(Clone, Copy)]
pub(crate) struct ShapeSeed<'a>(pub &'a Shape);

/// Reads a host value of one shape from `frame`: a byte list becomes a
/// slice of the frame.
#[derive(Clone, Copy)]
pub(crate) struct ValueSeed<'a> {
    pub shape: &'a Shape,
    pub frame: &'a Bytes,
}

/// Reads a call's arguments from `frame`.
#[derive(Clone, Copy)]
pub(crate) struct ArgsSeed<'a> {
    pub params: &'a [(String, Shape)],
    pub frame: &'a Bytes,
}

impl Serialize for TypedValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Val(val) => Typed { shape: self.shape, val }.serialize(s),
            Value::Bytes(bytes) if is_bytes(self.shape) => s.serialize_bytes(bytes),
            Value::Bytes(_) => Err(ser::Error::custom(format!("a byte list does not fit its type {}", self.shape))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if is_bytes(self.shape) {
            d.deserialize_bytes(self)
        } else {
            ShapeSeed(self.shape).deserialize(d).map(Value::Val)
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte list")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, bytes: &'de [u8]) -> Result<Value, E> {
        Ok(Value::Bytes(slice_of(self.frame, bytes)))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(Bytes::copy_from_slice(bytes)))
    }
}

/// `part` as a slice of `frame` if it lies within it (no copy), else a copy.
fn slice_of(frame: &Bytes, part: &[u8]) -> Bytes {
    let (start, end) = (frame.as_ptr() as usize, frame.as_ptr() as usize + frame.len());
    let part_start = part.as_ptr() as usize;
    if part_start >= start && part_start + part.len() <= end {
        frame.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

impl Serialize for Typed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mismatch = || ser::Error::custom(format!("a value does not fit its type {}", self.shape));
        match (self.shape, self.val) {
            (Shape::Bool, Val::Bool(v)) => s.serialize_bool(*v),
            (Shape::S8, Val::S8(v)) => s.serialize_i8(*v),
            (Shape::U8, Val::U8(v)) => s.serialize_u8(*v),
            (Shape::S16, Val::S16(v)) => s.serialize_i16(*v),
            (Shape::U16, Val::U16(v)) => s.serialize_u16(*v),
            (Shape::S32, Val::S32(v)) => s.serialize_i32(*v),
            (Shape::U32, Val::U32(v)) => s.serialize_u32(*v),
            (Shape::S64, Val::S64(v)) => s.serialize_i64(*v),
            (Shape::U64, Val::U64(v)) => s.serialize_u64(*v),
            (Shape::F32, Val::Float32(v)) => s.serialize_f32(*v),
            (Shape::F64, Val::Float64(v)) => s.serialize_f64(*v),
            (Shape::Char, Val::Char(v)) => s.serialize_char(*v),
            (Shape::String, Val::String(v)) => s.serialize_str(v),
            (Shape::List(element), Val::List(items)) if **element == Shape::U8 => {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|item| if let Val::U8(b) = item { Ok(*b) } else { Err(mismatch()) })
                    .collect::<Result<_, _>>()?;
                s.serialize_bytes(&bytes)
            }
            (Shape::List(element), Val::List(items)) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Typed { shape: element, val: item })?;
                }
                seq.end()
            }
            (Shape::Record(fields), Val::Record(values)) if fields.len() == values.len() => {
                let mut tuple = s.serialize_tuple(fields.len())?;
                for ((_, shape), (_, val)) in fields.iter().zip(values) {
                    tuple.serialize_element(&Typed { shape, val })?;
                }
                tuple.end()
            }
            (Shape::Tuple(shapes), Val::Tuple(values)) if shapes.len() == values.len() => {
                let mut tuple = s.serialize_tuple(shapes.len())?;
                for (shape, val) in shapes.iter().zip(values) {
                    tuple.serialize_element(&Typed { shape, val })?;
                }
                tuple.end()
            }
            (Shape::Variant(cases), Val::Variant(name, payload)) => {
                let index = cases.iter().position(|(case, _)| case == name).ok_or_else(mismatch)?;
                serialize_case(s, index, cases[index].1.as_ref(), payload.as_deref()).map_err(|_| mismatch())?
            }
            (Shape::Enum(names), Val::Enum(name)) => {
                let index = names.iter().position(|case| case == name).ok_or_else(mismatch)?;
                s.serialize_u32(case_index(index))
            }
            (Shape::Option(_), Val::Option(None)) => s.serialize_none(),
            (Shape::Option(inner), Val::Option(Some(val))) => s.serialize_some(&Typed { shape: inner, val }),
            (Shape::Result { ok, err }, Val::Result(result)) => {
                let (index, shape, payload) = match result {
                    Ok(payload) => (0, ok, payload),
                    Err(payload) => (1, err, payload),
                };
                serialize_case(s, index, shape.as_deref(), payload.as_deref()).map_err(|_| mismatch())?
            }
            (Shape::Flags(names), Val::Flags(set)) => {
                let mut words = vec![0u32; flag_words(names.len())];
                for flag in set {
                    let bit = names.iter().position(|name| name == flag).ok_or_else(mismatch)?;
                    words[bit / 32] |= 1 << (bit % 32);
                }
                let mut tuple = s.serialize_tuple(words.len())?;
                for word in &words {
                    tuple.serialize_element(word)?;
                }
                tuple.end()
            }
            _ => Err(mismatch()),
        }
    }
}

/// A case index and, if the case has one, its payload. The outer `Result`
/// says whether the payload matches the case; the inner one is the
/// serializer's.
fn serialize_case<S: Serializer>(
    s: S,
    index: usize,
    shape: Option<&Shape>,
    payload: Option<&Val>,
) -> Result<Result<S::Ok, S::Error>, ()> {
    let written = match (shape, payload) {
        (None, None) => s.serialize_u32(case_index(index)),
        (Some(shape), Some(val)) => (|| {
            let mut tuple = s.serialize_tuple(2)?;
            tuple.serialize_element(&case_index(index))?;
            tuple.serialize_element(&Typed { shape, val })?;
            tuple.end()
        })(),
        _ => return Err(()),
    };
    Ok(written)
}

/// Case indexes fit a `u32`: the component model allows far fewer cases.
fn case_index(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

fn flag_words(flags: usize) -> usize {
    flags.div_ceil(32)
}

impl Serialize for Args<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.params.len() != self.values.len() {
            return Err(ser::Error::custom(format!(
                "{} argument(s) for {} parameter(s)",
                self.values.len(),
                self.params.len()
            )));
        }
        let mut tuple = s.serialize_tuple(self.params.len())?;
        for ((_, shape), value) in self.params.iter().zip(self.values) {
            tuple.serialize_element(&TypedValue { shape, value })?;
        }
        tuple.end()
    }
}

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_> {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        let visitor = ShapeVisitor(self.0);
        match self.0 {
            Shape::Bool => bool::deserialize(d).map(Val::Bool),
            Shape::S8 => i8::deserialize(d).map(Val::S8),
            Shape::U8 => u8::deserialize(d).map(Val::U8),
            Shape::S16 => i16::deserialize(d).map(Val::S16),
            Shape::U16 => u16::deserialize(d).map(Val::U16),
            Shape::S32 => i32::deserialize(d).map(Val::S32),
            Shape::U32 => u32::deserialize(d).map(Val::U32),
            Shape::S64 => i64::deserialize(d).map(Val::S64),
            Shape::U64 => u64::deserialize(d).map(Val::U64),
            Shape::F32 => f32::deserialize(d).map(Val::Float32),
            Shape::F64 => f64::deserialize(d).map(Val::Float64),
            Shape::Char => char::deserialize(d).map(Val::Char),
            // Borrowed from the frame: a lying length fails for want of
            // bytes instead of allocating first.
            Shape::String => d.deserialize_str(visitor),
            Shape::List(element) if **element == Shape::U8 => d.deserialize_bytes(visitor),
            Shape::List(_) => d.deserialize_seq(visitor),
            Shape::Record(fields) => d.deserialize_tuple(fields.len(), visitor),
            Shape::Tuple(shapes) => d.deserialize_tuple(shapes.len(), visitor),
            Shape::Flags(names) => d.deserialize_tuple(flag_words(names.len()), visitor),
            Shape::Variant(_) | Shape::Result { .. } => d.deserialize_tuple(2, visitor),
            Shape::Enum(names) => {
                let index = u32::deserialize(d)?;
                let name = names.get(index as usize).ok_or_else(|| bad_case::<D::Error>(index, self.0))?;
                Ok(Val::Enum(name.clone()))
            }
            Shape::Option(_) => d.deserialize_option(visitor),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ArgsSeed<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_tuple(self.params.len(), self)
    }
}

impl<'de> Visitor<'de> for ArgsSeed<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} argument(s)", self.params.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let frame = self.frame;
        let mut next_value = |shape| {
            seq.next_element_seed(ValueSeed { shape, frame })?.ok_or_else(|| de::Error::custom("a value ends early"))
        };
        self.params.iter().map(|(_, shape)| next_value(shape)).collect()
    }
}

/// Reads the compound shapes, whose parts are read one after the other.
struct ShapeVisitor<'a>(&'a Shape);

impl<'de> Visitor<'de> for ShapeVisitor<'_> {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of type {}", self.0)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Val, E> {
        Ok(Val::String(text.to_owned()))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Val, E> {
        Ok(Val::List(bytes.iter().map(|b| Val::U8(*b)).collect()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Val, E> {
        Ok(Val::Option(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        let Shape::Option(inner) = self.0 else { return Err(de::Error::invalid_type(de::Unexpected::Option, &self)) };
        Ok(Val::Option(Some(Box::new(ShapeSeed(inner).deserialize(d)?))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        match self.0 {
            Shape::List(element) => {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOCATED));
                while let Some(item) = seq.next_element_seed(ShapeSeed(element))? {
                    items.push(item);
                }
                Ok(Val::List(items))
            }
            Shape::Record(fields) => fields
                .iter()
                .map(|(name, shape)| Ok((name.clone(), next(&mut seq, shape)?)))
                .collect::<Result<_, _>>()
                .map(Val::Record),
            Shape::Tuple(shapes) => {
                shapes.iter().map(|shape| next(&mut seq, shape)).collect::<Result<_, _>>().map(Val::Tuple)
            }
            Shape::Variant(cases) => {
                let index: u32 = next_plain(&mut seq)?;
                let (name, payload) = cases.get(index as usize).ok_or_else(|| bad_case::<A::Error>(index, self.0))?;
                let payload = payload.as_ref().map(|shape| next(&mut seq, shape)).transpose()?;
                Ok(Val::Variant(name.clone(), payload.map(Box::new)))
            }
            Shape::Result { ok, err } => {
                let index: u32 = next_plain(&mut seq)?;
                let shape = match index {
                    0 => ok,
                    1 => err,
                    _ => return Err(bad_case(index, self.0)),
                };
                let payload = shape.as_ref().map(|shape| next(&mut seq, shape)).transpose()?.map(Box::new);
                Ok(Val::Result(if index == 0 { Ok(payload) } else { Err(payload) }))
            }
            Shape::Flags(names) => {
                let mut set = Vec::new();
                for word_index in 0..flag_words(names.len()) {
                    let word: u32 = next_plain(&mut seq)?;
                    let bits = names.iter().skip(word_index * 32).take(32).enumerate();
                    set.extend(bits.filter(|(bit, _)| word & (1 << bit) != 0).map(|(_, name)| name.clone()));
                }
                Ok(Val::Flags(set))
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
        }
    }
}

/// The next part of a compound value, of the given shape.
fn next<'de, A: SeqAccess<'de>>(seq: &mut A, shape: &Shape) -> Result<Val, A::Error> {
    seq.next_element_seed(ShapeSeed(shape))?.ok_or_else(|| de::Error::custom("a value ends early"))
}

/// The next case index or flag word.
fn next_plain<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<u32, A::Error> {
    seq.next_element()?.ok_or_else(|| de::Error::custom("a value ends early"))
}

fn bad_case<E: de::Error>(index: u32, shape: &Shape) -> E {
    E::custom(format!("case {index} does not exist in {shape}"))
}

/// Encodes `value` onto the end of `out`.
///
/// # Errors
///
/// A value that does not fit its shape.
pub(crate) fn encode_into(value: impl Serialize, out: &mut Vec<u8>) -> Result<(), bincode::error::EncodeError> {
    bincode::serde::encode_into_std_write(value, out, BINCODE).map(drop)
}

/// Decodes one value from the start of `bytes`, returning it and the bytes
/// it took.
///
/// # Errors
///
/// Bytes that are not a value of the seed's shape.
pub(crate) fn decode<'de, T: DeserializeSeed<'de>>(
    seed: T,
    bytes: &'de [u8],
) -> Result<(T::Value, usize), bincode::error::DecodeError> {
    bincode::serde::seed_decode_from_slice(seed, bytes, BINCODE)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Any shape a gateway may use, up to a modest depth.
    fn shapes() -> impl Strategy<Value = Shape> {
        let leaf = prop_oneof![
            Just(Shape::Bool),
            Just(Shape::S8),
            Just(Shape::U8),
            Just(Shape::S16),
            Just(Shape::U16),
            Just(Shape::S32),
            Just(Shape::U32),
            Just(Shape::S64),
            Just(Shape::U64),
            Just(Shape::F32),
            Just(Shape::F64),
            Just(Shape::Char),
            Just(Shape::String),
            names(1..40).prop_map(Shape::Enum),
            names(0..40).prop_map(Shape::Flags),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                inner.clone().prop_map(|s| Shape::List(Box::new(s))),
                inner.clone().prop_map(|s| Shape::Option(Box::new(s))),
                prop::collection::vec(inner.clone(), 1..5).prop_map(Shape::Tuple),
                prop::collection::vec(inner.clone(), 1..5).prop_map(|s| Shape::Record(named(s))),
                prop::collection::vec(prop::option::of(inner.clone()), 1..5).prop_map(|s| Shape::Variant(named(s))),
                (prop::option::of(inner.clone()), prop::option::of(inner))
                    .prop_map(|(ok, err)| Shape::Result { ok: ok.map(Box::new), err: err.map(Box::new) }),
            ]
        })
    }

    fn names(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<String>> {
        count.prop_map(|n| (0..n).map(|i| format!("n{i}")).collect())
    }

    fn named<T>(items: Vec<T>) -> Vec<(String, T)> {
        items.into_iter().enumerate().map(|(i, item)| (format!("f{i}"), item)).collect()
    }

    /// Any value of `shape`.
    fn values(shape: &Shape) -> BoxedStrategy<Val> {
        match shape {
            Shape::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
            Shape::S8 => any::<i8>().prop_map(Val::S8).boxed(),
            Shape::U8 => any::<u8>().prop_map(Val::U8).boxed(),
            Shape::S16 => any::<i16>().prop_map(Val::S16).boxed(),
            Shape::U16 => any::<u16>().prop_map(Val::U16).boxed(),
            Shape::S32 => any::<i32>().prop_map(Val::S32).boxed(),
            Shape::U32 => any::<u32>().prop_map(Val::U32).boxed(),
            Shape::S64 => any::<i64>().prop_map(Val::S64).boxed(),
            Shape::U64 => any::<u64>().prop_map(Val::U64).boxed(),
            // Any bit pattern but NaN, which is not equal to itself.
            Shape::F32 => any::<f32>().prop_filter("NaN", |f| !f.is_nan()).prop_map(Val::Float32).boxed(),
            Shape::F64 => any::<f64>().prop_filter("NaN", |f| !f.is_nan()).prop_map(Val::Float64).boxed(),
            Shape::Char => any::<char>().prop_map(Val::Char).boxed(),
            Shape::String => any::<String>().prop_map(Val::String).boxed(),
            Shape::List(element) => prop::collection::vec(values(element), 0..6).prop_map(Val::List).boxed(),
            Shape::Option(inner) => prop::option::of(values(inner)).prop_map(|v| Val::Option(v.map(Box::new))).boxed(),
            Shape::Tuple(shapes) => shapes.iter().map(values).collect::<Vec<_>>().prop_map(Val::Tuple).boxed(),
            Shape::Record(fields) => {
                let names: Vec<String> = fields.iter().map(|(name, _)| name.clone()).collect();
                let values: Vec<_> = fields.iter().map(|(_, shape)| values(shape)).collect();
                values.prop_map(move |vals| Val::Record(names.iter().cloned().zip(vals).collect())).boxed()
            }
            Shape::Variant(cases) => {
                let cases = cases.clone();
                (0..cases.len())
                    .prop_flat_map(move |i| {
                        let name = cases[i].0.clone();
                        match &cases[i].1 {
                            Some(shape) => {
                                values(shape).prop_map(move |v| Val::Variant(name.clone(), Some(Box::new(v)))).boxed()
                            }
                            None => Just(Val::Variant(name, None)).boxed(),
                        }
                    })
                    .boxed()
            }
            Shape::Enum(names) => prop::sample::select(names.clone()).prop_map(Val::Enum).boxed(),
            Shape::Flags(names) => {
                prop::sample::subsequence(names.clone(), 0..=names.len()).prop_map(Val::Flags).boxed()
            }
            Shape::Result { ok, err } => {
                let side = |shape: &Option<Box<Shape>>| match shape {
                    Some(shape) => values(shape).prop_map(|v| Some(Box::new(v))).boxed(),
                    None => Just(None).boxed(),
                };
                prop_oneof![side(ok).prop_map(|v| Val::Result(Ok(v))), side(err).prop_map(|v| Val::Result(Err(v)))]
                    .boxed()
            }
        }
    }

    fn shape_and_value() -> impl Strategy<Value = (Shape, Val)> {
        shapes().prop_flat_map(|shape| {
            let vals = values(&shape);
            (Just(shape), vals)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn every_gateway_type_round_trips((shape, val) in shape_and_value()) {
            shape.check(&val).unwrap();
            let mut bytes = Vec::new();
            encode_into(Typed { shape: &shape, val: &val }, &mut bytes).unwrap();
            let (back, used) = decode(ShapeSeed(&shape), &bytes).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(back, val);
        }

        #[test]
        fn arguments_round_trip(pairs in prop::collection::vec(shape_and_value(), 0..4)) {
            let params: Vec<(String, Shape)> = pairs.iter().enumerate().map(|(i, (s, _))| (format!("p{i}"), s.clone())).collect();
            let values: Vec<Value> = pairs.into_iter().map(|(_, v)| Value::Val(v)).collect();
            let mut bytes = Vec::new();
            encode_into(Args { params: &params, values: &values }, &mut bytes).unwrap();
            let frame = Bytes::from(bytes);
            let (back, used) = decode(ArgsSeed { params: &params, frame: &frame }, &frame).unwrap();
            prop_assert_eq!(used, frame.len());
            prop_assert_eq!(back, values);
        }

        #[test]
        fn truncated_or_garbage_bytes_fail_cleanly((shape, val) in shape_and_value(), garbage in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = Vec::new();
            encode_into(Typed { shape: &shape, val: &val }, &mut bytes).unwrap();
            if !bytes.is_empty() {
                prop_assert!(decode(ShapeSeed(&shape), &bytes[..bytes.len() - 1]).is_err());
            }
            // Garbage either fails or decodes to some value of the shape.
            if let Ok((decoded, _)) = decode(ShapeSeed(&shape), &garbage) {
                prop_assert!(shape.check(&decoded).is_ok());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn large_byte_lists_round_trip_as_slices_of_their_frame(
        sizes in prop::collection::vec(prop_oneof![0..300usize, 60_000..70_000usize, 9_000_000..9_437_184usize], 1..3),
        as_val in any::<bool>(),
    ) {
        let params: Vec<(String, Shape)> =
            sizes.iter().enumerate().map(|(i, _)| (format!("p{i}"), Shape::List(Box::new(Shape::U8)))).collect();
        let values: Vec<Value> = sizes.iter().enumerate().map(|(i, n)| {
            let bytes: Vec<u8> = (0..*n).map(|j| (i + j) as u8).collect();
            // Small ones also in dynamic form: both forms write the same bytes.
            if as_val && *n < 300 { Value::Val(Value::from(bytes).into_val()) } else { Value::from(bytes) }
        }).collect();
        let mut bytes = Vec::new();
        encode_into(Args { params: &params, values: &values }, &mut bytes).unwrap();
        let frame = Bytes::from(bytes);
        let (back, used) = decode(ArgsSeed { params: &params, frame: &frame }, &frame).unwrap();
        prop_assert_eq!(used, frame.len());
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        for (back, value) in back.iter().zip(&values) {
            let Value::Bytes(slice) = back else { panic!("a top-level byte list reads as bytes") };
            prop_assert!(slice.is_empty() || frame_range.contains(&(slice.as_ptr() as usize)), "a slice of the frame, not a copy");
            prop_assert_eq!(back, value);
        }
    }
    }

    #[test]
    fn a_value_of_another_type_is_refused() {
        let mut bytes = Vec::new();
        let err = encode_into(Typed { shape: &Shape::U64, val: &Val::String("x".into()) }, &mut bytes).unwrap_err();
        assert!(err.to_string().contains("does not fit its type u64"), "{err}");
    }

    #[test]
    fn a_byte_list_is_its_bytes() {
        let shape = Shape::List(Box::new(Shape::U8));
        let val = Val::List((0..200u8).map(Val::U8).collect());
        let mut bytes = Vec::new();
        encode_into(Typed { shape: &shape, val: &val }, &mut bytes).unwrap();
        assert_eq!(bytes.len(), 1 + 200, "a one-byte length, then the bytes");
    }
}
