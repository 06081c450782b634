//! "Every number is finite" for any `Serialize` value: a serializer that
//! visits every field and records the path of the first non-finite float.
//!
//! JSON cannot carry the check (serde_json writes NaN and infinities as
//! `null`, like a `None`), so the walk goes through serde's data model
//! directly. Every report type of the crate and every policy derives
//! `Serialize`, so the check covers fields added later without changes here.

use serde::Serialize;
use serde::ser;
use std::fmt::{self, Debug, Display};

/// Asserts that every `f32`/`f64` reachable through `value`'s `Serialize`
/// implementation is finite; the panic names the field path.
#[track_caller]
pub fn assert_finite_numbers<T: Serialize + Debug>(what: &str, value: &T) {
    let mut walk = Walk::default();
    if let Err(e) = value.serialize(&mut walk) {
        panic!("{what}: serialisation failed: {e}\n{value:?}");
    }
    if let Some((path, x)) = walk.bad {
        panic!("{what}: {path} is not finite: {x}\n{value:?}");
    }
}

#[derive(Default)]
struct Walk {
    path: Vec<String>,
    bad: Option<(String, f64)>,
}

impl Walk {
    fn float(&mut self, x: f64) {
        if !x.is_finite() && self.bad.is_none() {
            self.bad = Some((self.path.join("."), x));
        }
    }

    fn nested<T: Serialize + ?Sized>(&mut self, name: String, value: &T) -> Result<(), Error> {
        self.path.push(name);
        let out = value.serialize(&mut *self);
        self.path.pop();
        out
    }
}

/// The walk never fails on its own; serde needs an error type.
#[derive(Debug)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Serializer methods for values that hold no float: nothing to check.
macro_rules! no_floats {
    ($($method:ident: $ty:ty,)*) => {$(
        fn $method(self, _: $ty) -> Result<(), Error> {
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Walk {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Seq<'a>;
    type SerializeStruct = &'a mut Walk;
    type SerializeStructVariant = &'a mut Walk;

    no_floats! {
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_char: char,
        serialize_str: &str,
        serialize_bytes: &[u8],
    }
    fn serialize_f32(self, x: f32) -> Result<(), Error> {
        self.float(f64::from(x));
        Ok(())
    }
    fn serialize_f64(self, x: f64) -> Result<(), Error> {
        self.float(x);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.nested(variant.to_string(), value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self))
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Seq<'a>, Error> {
        Ok(Seq::new(self))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<&'a mut Walk, Error> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<&'a mut Walk, Error> {
        Ok(self)
    }
}

/// Elements of a sequence, tuple or map, named by position.
pub struct Seq<'a> {
    walk: &'a mut Walk,
    index: usize,
}

impl<'a> Seq<'a> {
    fn new(walk: &'a mut Walk) -> Self {
        Seq { walk, index: 0 }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let name = format!("[{}]", self.index);
        self.index += 1;
        self.walk.nested(name, value)
    }
}

/// A sequence-like serde trait on [`Seq`]: each element is named by position.
macro_rules! seq_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    };
}

seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

impl ser::SerializeMap for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        key.serialize(&mut *self.walk)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// A struct-like serde trait on [`Walk`]: each field is named by its key.
macro_rules! struct_impl {
    ($trait:ident) => {
        impl ser::$trait for &mut Walk {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.nested(key.to_string(), value)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    };
}

struct_impl!(SerializeStruct);
struct_impl!(SerializeStructVariant);
