//! Values written as text in WAVE, the WebAssembly Value Encoding (`42`,
//! `"text"`, `[1, 2]`, `{ high: 1, low: 2 }`, `some(7)`), read with a
//! gateway function's [`Shape`]s alone, so text works for gateways on
//! other hosts as well as for this host's.

use wasm_wave::value::{Type, Value};
use wasm_wave::wasm::WasmValue;
use wasmtime::component::Val;

use super::Shape;

/// Reads `text` as a value of `shape`.
///
/// # Errors
///
/// Text that is not a value of the shape, said the way WAVE's parser says it.
pub fn parse(shape: &Shape, text: &str) -> Result<Val, String> {
    let value: Value = wasm_wave::from_str(&wave_type(shape)?, text).map_err(|e| e.to_string())?;
    Ok(to_val(shape, &value))
}

/// The WAVE type of a shape.
fn wave_type(shape: &Shape) -> Result<Type, String> {
    let empty = || format!("{shape} has no cases or fields");
    Ok(match shape {
        Shape::Bool => Type::BOOL,
        Shape::S8 => Type::S8,
        Shape::U8 => Type::U8,
        Shape::S16 => Type::S16,
        Shape::U16 => Type::U16,
        Shape::S32 => Type::S32,
        Shape::U32 => Type::U32,
        Shape::S64 => Type::S64,
        Shape::U64 => Type::U64,
        Shape::F32 => Type::F32,
        Shape::F64 => Type::F64,
        Shape::Char => Type::CHAR,
        Shape::String => Type::STRING,
        Shape::List(element) => Type::list(wave_type(element)?),
        Shape::Option(inner) => Type::option(wave_type(inner)?),
        Shape::Record(fields) => Type::record(
            fields
                .iter()
                .map(|(name, shape)| Ok((name.as_str(), wave_type(shape)?)))
                .collect::<Result<Vec<_>, String>>()?,
        )
        .ok_or_else(empty)?,
        Shape::Tuple(shapes) => {
            Type::tuple(shapes.iter().map(wave_type).collect::<Result<Vec<_>, _>>()?).ok_or_else(empty)?
        }
        Shape::Variant(cases) => Type::variant(
            cases
                .iter()
                .map(|(name, payload)| Ok((name.as_str(), payload.as_ref().map(wave_type).transpose()?)))
                .collect::<Result<Vec<_>, String>>()?,
        )
        .ok_or_else(empty)?,
        Shape::Enum(names) => Type::enum_ty(names.iter().map(String::as_str)).ok_or_else(empty)?,
        Shape::Flags(names) => Type::flags(names.iter().map(String::as_str)).ok_or_else(empty)?,
        Shape::Result { ok, err } => {
            Type::result(ok.as_deref().map(wave_type).transpose()?, err.as_deref().map(wave_type).transpose()?)
        }
    })
}

/// The value WAVE read, as the `Val` of its shape.
fn to_val(shape: &Shape, value: &Value) -> Val {
    match shape {
        Shape::Bool => Val::Bool(value.unwrap_bool()),
        Shape::S8 => Val::S8(value.unwrap_s8()),
        Shape::U8 => Val::U8(value.unwrap_u8()),
        Shape::S16 => Val::S16(value.unwrap_s16()),
        Shape::U16 => Val::U16(value.unwrap_u16()),
        Shape::S32 => Val::S32(value.unwrap_s32()),
        Shape::U32 => Val::U32(value.unwrap_u32()),
        Shape::S64 => Val::S64(value.unwrap_s64()),
        Shape::U64 => Val::U64(value.unwrap_u64()),
        Shape::F32 => Val::Float32(value.unwrap_f32()),
        Shape::F64 => Val::Float64(value.unwrap_f64()),
        Shape::Char => Val::Char(value.unwrap_char()),
        Shape::String => Val::String(value.unwrap_string().into_owned()),
        Shape::List(element) => Val::List(value.unwrap_list().map(|item| to_val(element, &item)).collect()),
        Shape::Option(inner) => Val::Option(value.unwrap_option().map(|some| Box::new(to_val(inner, &some)))),
        Shape::Record(fields) => Val::Record(
            fields
                .iter()
                .zip(value.unwrap_record())
                .map(|((name, shape), (_, v))| (name.clone(), to_val(shape, &v)))
                .collect(),
        ),
        Shape::Tuple(shapes) => {
            Val::Tuple(shapes.iter().zip(value.unwrap_tuple()).map(|(shape, v)| to_val(shape, &v)).collect())
        }
        Shape::Variant(cases) => {
            let (name, payload) = value.unwrap_variant();
            let shape = cases.iter().find(|(case, _)| *case == name).and_then(|(_, shape)| shape.as_ref());
            let payload = shape.zip(payload).map(|(shape, v)| Box::new(to_val(shape, &v)));
            Val::Variant(name.into_owned(), payload)
        }
        Shape::Enum(_) => Val::Enum(value.unwrap_enum().into_owned()),
        Shape::Flags(_) => Val::Flags(value.unwrap_flags().map(|flag| flag.into_owned()).collect()),
        Shape::Result { ok, err } => {
            let side = |shape: &Option<Box<Shape>>, v: Option<std::borrow::Cow<'_, Value>>| {
                shape.as_deref().zip(v).map(|(shape, v)| Box::new(to_val(shape, &v)))
            };
            match value.unwrap_result() {
                Ok(v) => Val::Result(Ok(side(ok, v))),
                Err(v) => Val::Result(Err(side(err, v))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_by_shape() {
        let uuid = Shape::Record(vec![("high".into(), Shape::U64), ("low".into(), Shape::U64)]);
        let token = Shape::Option(Box::new(uuid));
        assert_eq!(
            parse(&token, "some({ high: 1, low: 2 })").unwrap(),
            Val::Option(Some(Box::new(Val::Record(vec![("high".into(), Val::U64(1)), ("low".into(), Val::U64(2))]))))
        );
        let bytes = Shape::List(Box::new(Shape::U8));
        assert_eq!(parse(&bytes, "[104, 105]").unwrap(), Val::List(vec![Val::U8(104), Val::U8(105)]));
        let outcome = Shape::Result { ok: None, err: Some(Box::new(Shape::Enum(vec!["gone".into(), "late".into()]))) };
        assert_eq!(parse(&outcome, "err(late)").unwrap(), Val::Result(Err(Some(Box::new(Val::Enum("late".into()))))));
        let flags = Shape::Flags(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(parse(&flags, "{a, c}").unwrap(), Val::Flags(vec!["a".into(), "c".into()]));
    }

    #[test]
    fn text_of_another_type_is_an_error() {
        assert!(parse(&Shape::U8, "300").is_err());
        assert!(parse(&Shape::String, "7").is_err());
    }
}
