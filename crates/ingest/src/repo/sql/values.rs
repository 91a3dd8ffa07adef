//! The two values the backends store differently, as one Rust type each with
//! a codec per backend: a bound list of ids and a message's stored labels.

use serde::Serialize;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

use crate::repo::RepoError;

/// A list of ids bound as one parameter: an array on PostgreSQL, a JSON
/// array on SQLite (read with `json_each`); see `Dialect::in_list`.
pub(crate) struct IdList<'a, T>(pub(crate) &'a [T]);

impl<T: PgHasArrayType> Type<Postgres> for IdList<'_, T> {
    fn type_info() -> PgTypeInfo {
        T::array_type_info()
    }
}

impl<'q, T: Encode<'q, Postgres> + Type<Postgres>> Encode<'q, Postgres> for IdList<'_, T> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&[T] as Encode<Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<T> Type<Sqlite> for IdList<'_, T> {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<T: Serialize> Encode<'_, Sqlite> for IdList<'_, T> {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <String as Encode<Sqlite>>::encode(serde_json::to_string(self.0)?, buf)
    }
}

/// A message's stored labels as read: a `text[]` on PostgreSQL, JSON text on
/// SQLite, which [`Labels::of_message`] parses (a row that is not an array is
/// corrupt, named by its message).
pub(crate) enum Labels {
    Array(Vec<String>),
    Json(String),
}

impl Labels {
    pub(crate) fn of_message(self, message_id: &str) -> Result<Vec<String>, RepoError> {
        match self {
            Labels::Array(labels) => Ok(labels),
            Labels::Json(text) => serde_json::from_str(&text).map_err(|e| {
                RepoError::Corrupt(format!(
                    "labels of message {message_id} are not a JSON array: {e}"
                ))
            }),
        }
    }
}

impl Type<Postgres> for Labels {
    fn type_info() -> PgTypeInfo {
        <Vec<String> as Type<Postgres>>::type_info()
    }
}

impl Decode<'_, Postgres> for Labels {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(Labels::Array(<Vec<String> as Decode<Postgres>>::decode(
            value,
        )?))
    }
}

impl Type<Sqlite> for Labels {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl Decode<'_, Sqlite> for Labels {
    fn decode(value: SqliteValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(Labels::Json(<String as Decode<Sqlite>>::decode(value)?))
    }
}
