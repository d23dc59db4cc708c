//! Column values in a backup: typed JSON (integers as numbers, text as strings, bytes as base64
//! strings, NULL as null), the same whichever backend wrote or reads them.

use base64::Engine;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::schema::Kind;
use crate::error::Result;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Column `i` of `row` as JSON.
pub(crate) fn to_json(row: &AnyRow, i: usize, kind: Kind) -> Result<serde_json::Value> {
    use serde_json::Value;
    Ok(match kind {
        Kind::Int => row
            .try_get::<Option<i64>, _>(i)?
            .map_or(Value::Null, Value::from),
        Kind::Text => row
            .try_get::<Option<String>, _>(i)?
            .map_or(Value::Null, Value::String),
        Kind::Bytes => row
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map_or(Value::Null, |b| Value::String(B64.encode(b))),
    })
}

/// A value read back from a backup, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Value {
    /// The value of a column of kind `kind` from its JSON, or `None` if the JSON has another type.
    pub fn from_json(json: serde_json::Value, kind: Kind) -> Option<Value> {
        use serde_json::Value as J;
        Some(match (kind, json) {
            (Kind::Int, J::Null) => Value::Int(None),
            (Kind::Text, J::Null) => Value::Text(None),
            (Kind::Bytes, J::Null) => Value::Bytes(None),
            (Kind::Int, J::Number(n)) => Value::Int(Some(n.as_i64()?)),
            (Kind::Text, J::String(s)) => Value::Text(Some(s)),
            (Kind::Bytes, J::String(s)) => Value::Bytes(Some(B64.decode(s).ok()?)),
            _ => return None,
        })
    }

    /// How many bytes it holds (to bound a batch's memory).
    pub fn weight(&self) -> usize {
        match self {
            Value::Int(_) => 8,
            Value::Text(s) => s.as_ref().map_or(0, String::len),
            Value::Bytes(b) => b.as_ref().map_or(0, Vec::len),
        }
    }

    /// `query` with this value bound as its next parameter.
    pub fn bind<'q>(self, query: Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments> {
        match self {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Bytes(v) => query.bind(v),
        }
    }
}
