//! `anonymize:` — rewriting columns of a step's output before it is stored.
//!
//! [`anonymize`] first checks every rule against the schema (the column
//! exists, its type suits the method, the salt is there), so a bad rule fails
//! before any row is touched; then it rewrites each batch column by column.
//! It runs on every row ingested, so the per-row paths allocate nothing: the
//! HMAC key is set up once and cloned per value, hex and mask text are built
//! in reused buffers, and string columns are built with sized builders.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericStringArray, OffsetSizeTrait, PrimitiveArray, RecordBatch,
    RecordBatchOptions, StringArray, StringBuilder, new_null_array,
};
use datafusion::arrow::compute::{can_cast_types, cast};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, ArrowTimestampType, DataType, Date32Type, Date64Type, Decimal32Type,
    Decimal64Type, Decimal128Type, Field, FieldRef, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use weir_spec::{AnonymizeSpec, DatePart};

type HmacSha256 = Hmac<Sha256>;

/// Hex characters of a hash token: 128 of the 256 bits, plenty to keep
/// distinct values apart while keeping tokens short.
const TOKEN_HEX_LEN: usize = 32;

/// Days from 0001-01-01 (chrono's day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;
const SECONDS_PER_DAY: i64 = 86_400;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Columns listed at most in an unknown-column message.
const LISTED_COLUMNS: usize = 20;

/// The key of `anonymize: hash`: the step environment's `hash_salt` secret.
///
/// The caller resolves it: the environment's `hash_salt:` names a secret,
/// whose value it looks up. Only needed when a rule hashes; the state is
/// kept (rather than an `Option` of bytes) so the error can say what to fix.
#[derive(Clone, Copy)]
pub enum HashSalt<'a> {
    /// The step's environment sets no `hash_salt` (or the step runs in no
    /// environment).
    NotConfigured,
    /// `hash_salt` names `secret`, whose value is not set.
    Unset { secret: &'a str },
    /// `hash_salt` names `secret`, and this is its value. An empty value
    /// counts as not set: a known key would make tokens reversible.
    Value { secret: &'a str, value: &'a [u8] },
}

// By hand, so that the salt never ends up in a log line.
impl fmt::Debug for HashSalt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashSalt::NotConfigured => f.write_str("NotConfigured"),
            HashSalt::Unset { secret } => f.debug_struct("Unset").field("secret", secret).finish(),
            HashSalt::Value { secret, .. } => f
                .debug_struct("Value")
                .field("secret", secret)
                .field("value", &"<redacted>")
                .finish_non_exhaustive(),
        }
    }
}

/// Why a table could not be anonymized. Each message says what failed, on
/// which column, then `hint:` with what to do.
#[derive(Debug, thiserror::Error)]
pub enum AnonymizeError {
    /// A rule names a column the table does not have.
    #[error(
        "`anonymize` names column `{column}`, which is not in the step's output (its columns: {})\nhint: {}",
        list_columns(.columns),
        unknown_column_hint(.suggestion.as_deref()),
    )]
    UnknownColumn {
        column: String,
        /// The table's columns at that rule (after earlier `drop`s).
        columns: Vec<String>,
        /// The closest column name, when one is close enough to be a typo.
        suggestion: Option<String>,
    },
    /// A rule hashes a column but there is no salt to key the HMAC with.
    #[error("{}", no_salt_message(.column, .secret.as_deref()))]
    NoSalt {
        column: String,
        /// The secret `hash_salt` names; `None` when the environment sets no
        /// `hash_salt`.
        secret: Option<String>,
    },
    /// The method does not apply to the column's type.
    #[error("{}", unsupported_type_message(.column, .method, .data_type))]
    UnsupportedType {
        column: String,
        /// The method's YAML name (`generalize`, `bucket`, ...).
        method: &'static str,
        data_type: DataType,
    },
    /// A `bucket` that is not positive, or not whole for an integer column,
    /// or finer than a decimal column's scale.
    #[error("{}", invalid_bucket_message(.column, *.bucket, .data_type))]
    InvalidBucket {
        column: String,
        bucket: f64,
        data_type: DataType,
    },
    /// A value whose result does not fit the column's type (e.g. the year of
    /// a nanosecond timestamp in 1677, before the type's first instant).
    #[error(
        "`{method}` of column `{column}` turns value {value} into one its type `{data_type}` cannot hold\nhint: cast the column to a wider type in a `sql` step first, or use another method"
    )]
    OutOfRange {
        column: String,
        method: &'static str,
        /// The value as stored (a number; for dates and timestamps, the
        /// count of days or time units since 1970-01-01).
        value: String,
        data_type: DataType,
    },
    /// An Arrow kernel failed on the column's data, e.g. turning binary
    /// data that is not UTF-8 into text, or an unknown time zone.
    #[error(
        "cannot `{method}` column `{column}`: {source}\nhint: fix the column's values or type in a `sql` step first"
    )]
    Arrow {
        column: String,
        method: &'static str,
        #[source]
        source: ArrowError,
    },
    /// Something this module assumed about its own data does not hold.
    #[error("internal error (this is a bug in weir): {message}")]
    Internal { message: String },
}

fn list_columns(columns: &[String]) -> String {
    let mut shown: Vec<String> = columns
        .iter()
        .take(LISTED_COLUMNS)
        .map(|c| format!("`{c}`"))
        .collect();
    if columns.len() > LISTED_COLUMNS {
        shown.push(format!("and {} more", columns.len() - LISTED_COLUMNS));
    }
    match shown.as_slice() {
        [] => "none".to_owned(),
        _ => shown.join(", "),
    }
}

fn unknown_column_hint(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(s) => format!("did you mean `{s}`?"),
        None => "`anonymize` rules name columns of the step's output; check the spelling (names are case-sensitive)".to_owned(),
    }
}

fn no_salt_message(column: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) => format!(
            "cannot hash column `{column}`: the environment's `hash_salt` secret `{secret}` is not set (or is empty)\n\
             hint: set `WEIR_SECRET_{secret}` on the worker to a long random value, e.g. the output of `openssl rand -hex 32`; \
             keep it unchanged, since another salt gives other tokens"
        ),
        None => format!(
            "cannot hash column `{column}`: the step's environment sets no `hash_salt`\n\
             hint: add `hash_salt: SALT_SECRET` (and `secrets: [SALT_SECRET]`) to the environment's file, \
             and set `WEIR_SECRET_SALT_SECRET` on the worker"
        ),
    }
}

fn unsupported_type_message(column: &str, method: &str, data_type: &DataType) -> String {
    let (works_on, hint) = match method {
        "generalize" => (
            "dates and timestamps".to_owned(),
            format!("convert the column in a `sql` step first, e.g. `CAST({column} AS DATE)`"),
        ),
        "bucket" => (
            "integer, float and decimal numbers".to_owned(),
            format!("convert the column in a `sql` step first, e.g. `CAST({column} AS DOUBLE)`"),
        ),
        _ => (
            "values that have a text form".to_owned(),
            format!("select a text form of `{column}` in a `sql` step first, or `drop` the column"),
        ),
    };
    format!(
        "cannot `{method}` column `{column}` of type `{data_type}`: `{method}` works on {works_on}\nhint: {hint}"
    )
}

fn invalid_bucket_message(column: &str, bucket: f64, data_type: &DataType) -> String {
    if !(bucket.is_finite() && bucket > 0.0) {
        format!(
            "`bucket: {bucket}` on column `{column}`: a bucket must be a positive number\nhint: write the width of the ranges values are rounded down into, e.g. `{{ bucket: 10 }}` turns 37 into 30"
        )
    } else if let DataType::Decimal32(_, scale)
    | DataType::Decimal64(_, scale)
    | DataType::Decimal128(_, scale)
    | DataType::Decimal256(_, scale) = data_type
    {
        format!(
            "`bucket: {bucket}` on column `{column}` of type `{data_type}`: the bucket is not a multiple of the column's smallest step, 1e-{scale}\nhint: use a bucket with at most {scale} decimal places"
        )
    } else {
        format!(
            "`bucket: {bucket}` on column `{column}` of type `{data_type}`: an integer column needs a whole bucket\nhint: use a whole number, or cast the column to a float in a `sql` step first"
        )
    }
}

/// What one rule does, checked against the schema.
enum Op {
    Drop,
    Null,
    Hash,
    /// Keep this many trailing characters.
    Mask(usize),
    /// `tz`: the column's time zone, for timestamps that have one.
    Generalize {
        part: DatePart,
        tz: Option<Tz>,
    },
    /// For integer and decimal columns: the bucket in the column's stored
    /// units (for decimals, scaled by `10^scale`).
    BucketWhole(i128),
    BucketFloat(f64),
}

/// One rule resolved against the schema as it is when the rule applies.
struct Step {
    /// The column's index in the schema at this step (earlier `drop`s shift
    /// it).
    index: usize,
    column: String,
    method: &'static str,
    op: Op,
}

/// Applies `rules` (column → method, in order) to a table before it is
/// stored, and returns the new schema and batches.
///
/// Replaced columns keep their name and position; `hash` and `mask` make
/// them `Utf8`, the other methods keep the type. `salt` is only read when a
/// rule hashes. Every rule is checked before any row is rewritten.
pub fn anonymize(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rules: &[(String, AnonymizeSpec)],
    salt: HashSalt<'_>,
) -> Result<(SchemaRef, Vec<RecordBatch>), AnonymizeError> {
    if rules.is_empty() {
        return Ok((schema, batches));
    }
    let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    let mut steps = Vec::with_capacity(rules.len());
    let mut mac: Option<HmacSha256> = None;
    for (column, spec) in rules {
        let Some(index) = fields.iter().position(|f| f.name() == column) else {
            let columns: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
            let suggestion = did_you_mean(column, columns.iter().map(String::as_str));
            return Err(AnonymizeError::UnknownColumn {
                column: column.clone(),
                suggestion: suggestion.map(str::to_owned),
                columns,
            });
        };
        let field = &fields[index];
        let op = check_rule(column, spec, field.data_type())?;
        if matches!(op, Op::Hash) && mac.is_none() {
            mac = Some(keyed_mac(column, salt)?);
        }
        match &op {
            Op::Drop => {
                fields.remove(index);
            }
            // A new type: the field's metadata (an extension type, say) no
            // longer describes it.
            Op::Hash => fields[index] = Arc::new(Field::new(column, DataType::Utf8, true)),
            Op::Mask(_) => {
                let nullable = field.is_nullable();
                fields[index] = Arc::new(Field::new(column, DataType::Utf8, nullable));
            }
            Op::Null => fields[index] = Arc::new(field.as_ref().clone().with_nullable(true)),
            Op::Generalize { .. } | Op::BucketWhole(_) | Op::BucketFloat(_) => {}
        }
        steps.push(Step {
            index,
            column: column.clone(),
            method: spec.name(),
            op,
        });
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batches = batches
        .into_iter()
        .map(|batch| {
            let rows = batch.num_rows();
            let mut columns = batch.columns().to_vec();
            for step in &steps {
                if matches!(step.op, Op::Drop) {
                    columns.remove(step.index);
                } else {
                    columns[step.index] = apply(step, &columns[step.index], mac.as_ref())?;
                }
            }
            // The row count is explicit: a table whose every column is
            // dropped still has its rows.
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(|e| {
                AnonymizeError::Internal {
                    message: format!("rebuilding a batch after `anonymize`: {e}"),
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// The HMAC keyed with the salt, cloned for every value.
fn keyed_mac(column: &str, salt: HashSalt<'_>) -> Result<HmacSha256, AnonymizeError> {
    let no_salt = |secret: Option<&str>| AnonymizeError::NoSalt {
        column: column.to_owned(),
        secret: secret.map(str::to_owned),
    };
    match salt {
        HashSalt::NotConfigured => Err(no_salt(None)),
        HashSalt::Unset { secret } => Err(no_salt(Some(secret))),
        HashSalt::Value { secret, value: [] } => Err(no_salt(Some(secret))),
        HashSalt::Value { value, .. } => {
            HmacSha256::new_from_slice(value).map_err(|e| AnonymizeError::Internal {
                message: format!("HMAC-SHA256 refused a key of {} bytes: {e}", value.len()),
            })
        }
    }
}

/// Checks one rule against its column's type.
fn check_rule(
    column: &str,
    spec: &AnonymizeSpec,
    data_type: &DataType,
) -> Result<Op, AnonymizeError> {
    let unsupported = || AnonymizeError::UnsupportedType {
        column: column.to_owned(),
        method: spec.name(),
        data_type: data_type.clone(),
    };
    let invalid_bucket = |bucket: f64| AnonymizeError::InvalidBucket {
        column: column.to_owned(),
        bucket,
        data_type: data_type.clone(),
    };
    Ok(match spec {
        AnonymizeSpec::Drop => Op::Drop,
        AnonymizeSpec::Null => Op::Null,
        AnonymizeSpec::Hash | AnonymizeSpec::Mask(_) => {
            if !is_bytes(data_type) && !can_cast_types(data_type, &DataType::Utf8) {
                return Err(unsupported());
            }
            match spec {
                AnonymizeSpec::Mask(keep) => Op::Mask(*keep as usize),
                _ => Op::Hash,
            }
        }
        AnonymizeSpec::Generalize(part) => {
            let tz = match data_type {
                DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, None) => None,
                DataType::Timestamp(_, Some(tz)) => {
                    Some(Tz::from_str(tz).map_err(|source| AnonymizeError::Arrow {
                        column: column.to_owned(),
                        method: spec.name(),
                        source,
                    })?)
                }
                _ => return Err(unsupported()),
            };
            Op::Generalize { part: *part, tz }
        }
        AnonymizeSpec::Bucket(bucket) => {
            let bucket = *bucket;
            if !(bucket.is_finite() && bucket > 0.0) {
                return Err(invalid_bucket(bucket));
            }
            match data_type {
                DataType::Float32 | DataType::Float64 => Op::BucketFloat(bucket),
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64 => {
                    if bucket.fract() != 0.0 {
                        return Err(invalid_bucket(bucket));
                    }
                    // Saturates past i128: every value then lands in the
                    // first bucket (0) or fails as out of range.
                    Op::BucketWhole(bucket as i128)
                }
                DataType::Decimal32(_, scale)
                | DataType::Decimal64(_, scale)
                | DataType::Decimal128(_, scale) => {
                    // A decimal stores `value * 10^scale` as an integer.
                    let scaled = bucket * 10f64.powi(i32::from(*scale));
                    let whole = scaled.round();
                    // `0.1 * 100` is not exactly 10 in binary floating point.
                    if whole < 1.0 || (scaled - whole).abs() > 1e-9 * whole {
                        return Err(invalid_bucket(bucket));
                    }
                    Op::BucketWhole(whole as i128)
                }
                _ => return Err(unsupported()),
            }
        }
    })
}

/// Types whose values are hashed as their bytes, without a cast.
fn is_bytes(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

/// Rewrites one column of one batch.
fn apply(
    step: &Step,
    array: &ArrayRef,
    mac: Option<&HmacSha256>,
) -> Result<ArrayRef, AnonymizeError> {
    let column = step.column.as_str();
    match &step.op {
        Op::Drop => Ok(array.clone()),
        Op::Null => Ok(new_null_array(array.data_type(), array.len())),
        Op::Hash => {
            let mac = mac.ok_or_else(|| AnonymizeError::Internal {
                message: format!("no HMAC key for hashing column `{column}`"),
            })?;
            hash_column(step, array, mac)
        }
        Op::Mask(keep) => mask_column(step, array, *keep),
        Op::Generalize { part, tz } => generalize_column(step, array, *part, tz.as_ref()),
        Op::BucketWhole(bucket) => bucket_whole_column(step, array, *bucket),
        Op::BucketFloat(bucket) => Ok(match array.data_type() {
            DataType::Float32 => Arc::new(
                array
                    .as_primitive::<Float32Type>()
                    .unary::<_, Float32Type>(|v| bucket_float(f64::from(v), *bucket) as f32),
            ),
            _ => Arc::new(
                array
                    .as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(|v| bucket_float(v, *bucket)),
            ),
        }),
    }
}

/// The column as `Utf8`, through Arrow's cast kernel (`42` → `"42"`).
fn to_utf8(step: &Step, array: &ArrayRef) -> Result<ArrayRef, AnonymizeError> {
    cast(array, &DataType::Utf8).map_err(|source| AnonymizeError::Arrow {
        column: step.column.clone(),
        method: step.method,
        source,
    })
}

/// Bytes of the text in a string array's slice (not of its whole buffer,
/// which a slice may share with other batches).
fn text_bytes<O: OffsetSizeTrait>(array: &GenericStringArray<O>) -> usize {
    let offsets = array.value_offsets();
    match (offsets.first(), offsets.last()) {
        (Some(first), Some(last)) => (*last - *first).as_usize(),
        _ => 0,
    }
}

fn hash_column(
    step: &Step,
    array: &ArrayRef,
    mac: &HmacSha256,
) -> Result<ArrayRef, AnonymizeError> {
    let out = match array.data_type() {
        DataType::Utf8 => hash_values(
            array
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
            array,
            mac,
        ),
        DataType::LargeUtf8 => hash_values(
            array
                .as_string::<i64>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
            array,
            mac,
        ),
        DataType::Utf8View => hash_values(
            array.as_string_view().iter().map(|v| v.map(str::as_bytes)),
            array,
            mac,
        ),
        DataType::Binary => hash_values(array.as_binary::<i32>().iter(), array, mac),
        DataType::LargeBinary => hash_values(array.as_binary::<i64>().iter(), array, mac),
        DataType::BinaryView => hash_values(array.as_binary_view().iter(), array, mac),
        DataType::FixedSizeBinary(_) => {
            hash_values(array.as_fixed_size_binary().iter(), array, mac)
        }
        _ => {
            let text = to_utf8(step, array)?;
            hash_values(
                text.as_string::<i32>().iter().map(|v| v.map(str::as_bytes)),
                array,
                mac,
            )
        }
    };
    Ok(Arc::new(out?))
}

/// HMAC-SHA256 of each value as 32 lowercase hex characters; nulls stay
/// null.
fn hash_values<'v>(
    values: impl Iterator<Item = Option<&'v [u8]>>,
    array: &ArrayRef,
    mac: &HmacSha256,
) -> Result<StringArray, AnonymizeError> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let non_null = array.len() - array.null_count();
    let mut builder = StringBuilder::with_capacity(array.len(), non_null * TOKEN_HEX_LEN);
    let mut hex = [0u8; TOKEN_HEX_LEN];
    for value in values {
        let Some(value) = value else {
            builder.append_null();
            continue;
        };
        // Cloning the keyed state skips re-deriving the padded keys per row.
        let mut mac = mac.clone();
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest.iter()) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        let token = std::str::from_utf8(&hex).map_err(|e| AnonymizeError::Internal {
            message: format!("hex token is not UTF-8: {e}"),
        })?;
        builder.append_value(token);
    }
    Ok(builder.finish())
}

fn mask_column(step: &Step, array: &ArrayRef, keep: usize) -> Result<ArrayRef, AnonymizeError> {
    // A `*` is one byte and replaces at least one, so the masked text is
    // never longer than the original.
    let out = match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            mask_values(a.iter(), a.len(), text_bytes(a), keep)
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            mask_values(a.iter(), a.len(), text_bytes(a), keep)
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            mask_values(a.iter(), a.len(), a.total_bytes_len(), keep)
        }
        _ => {
            let text = to_utf8(step, array)?;
            let a = text.as_string::<i32>();
            mask_values(a.iter(), a.len(), text_bytes(a), keep)
        }
    };
    Ok(Arc::new(out))
}

/// Each value with all but its last `keep` characters replaced by `*`.
fn mask_values<'v>(
    values: impl Iterator<Item = Option<&'v str>>,
    len: usize,
    bytes: usize,
    keep: usize,
) -> StringArray {
    let mut builder = StringBuilder::with_capacity(len, bytes);
    let mut masked = String::new();
    for value in values {
        let Some(value) = value else {
            builder.append_null();
            continue;
        };
        let chars = value.chars().count();
        if chars <= keep {
            builder.append_value(value);
            continue;
        }
        let hidden = chars - keep;
        // The byte index where the kept characters start.
        let start = value
            .char_indices()
            .nth(hidden)
            .map_or(value.len(), |(i, _)| i);
        masked.clear();
        masked.extend(std::iter::repeat_n('*', hidden));
        masked.push_str(&value[start..]);
        builder.append_value(&masked);
    }
    builder.finish()
}

fn out_of_range(step: &Step, value: impl fmt::Display, data_type: &DataType) -> AnonymizeError {
    AnonymizeError::OutOfRange {
        column: step.column.clone(),
        method: step.method,
        value: value.to_string(),
        data_type: data_type.clone(),
    }
}

fn generalize_column(
    step: &Step,
    array: &ArrayRef,
    part: DatePart,
    tz: Option<&Tz>,
) -> Result<ArrayRef, AnonymizeError> {
    let data_type = array.data_type();
    Ok(match data_type {
        DataType::Date32 => Arc::new(
            array
                .as_primitive::<Date32Type>()
                .try_unary::<_, Date32Type, _>(|days| {
                    truncate_days(i64::from(days), part)
                        .and_then(|d| i32::try_from(d).ok())
                        .ok_or_else(|| out_of_range(step, days, data_type))
                })?,
        ),
        DataType::Date64 => Arc::new(
            array
                .as_primitive::<Date64Type>()
                .try_unary::<_, Date64Type, _>(|millis| {
                    truncate_days(millis.div_euclid(MILLIS_PER_DAY), part)
                        .and_then(|d| d.checked_mul(MILLIS_PER_DAY))
                        .ok_or_else(|| out_of_range(step, millis, data_type))
                })?,
        ),
        DataType::Timestamp(TimeUnit::Second, _) => {
            generalize_timestamps::<TimestampSecondType>(step, array, 1, part, tz)?
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            generalize_timestamps::<TimestampMillisecondType>(step, array, 1_000, part, tz)?
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            generalize_timestamps::<TimestampMicrosecondType>(step, array, 1_000_000, part, tz)?
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            generalize_timestamps::<TimestampNanosecondType>(step, array, 1_000_000_000, part, tz)?
        }
        other => {
            return Err(AnonymizeError::Internal {
                message: format!(
                    "`generalize` reached column `{}` of type `{other}`",
                    step.column
                ),
            });
        }
    })
}

/// `per_second`: the column's units in one second.
fn generalize_timestamps<T: ArrowTimestampType>(
    step: &Step,
    array: &ArrayRef,
    per_second: i64,
    part: DatePart,
    tz: Option<&Tz>,
) -> Result<ArrayRef, AnonymizeError> {
    let data_type = array.data_type();
    let out = array.as_primitive::<T>().try_unary::<_, T, _>(|value| {
        // Truncating to a day or more drops the sub-second part anyway.
        let seconds = value.div_euclid(per_second);
        let start = match tz {
            None => truncate_days(seconds.div_euclid(SECONDS_PER_DAY), part)
                .and_then(|days| days.checked_mul(SECONDS_PER_DAY)),
            Some(tz) => truncate_local(seconds, part, tz),
        };
        start
            .and_then(|s| s.checked_mul(per_second))
            .ok_or_else(|| out_of_range(step, value, data_type))
    })?;
    // Keeps the time zone, which `try_unary` does not carry over.
    Ok(Arc::new(out.with_data_type(data_type.clone())))
}

/// The day (since 1970-01-01) that starts the day, month or year of `days`.
fn truncate_days(days: i64, part: DatePart) -> Option<i64> {
    if part == DatePart::Day {
        return Some(days);
    }
    let ce = i32::try_from(days.checked_add(EPOCH_DAYS_FROM_CE)?).ok()?;
    let date = truncate_date(NaiveDate::from_num_days_from_ce_opt(ce)?, part)?;
    Some(i64::from(date.num_days_from_ce()) - EPOCH_DAYS_FROM_CE)
}

fn truncate_date(date: NaiveDate, part: DatePart) -> Option<NaiveDate> {
    match part {
        DatePart::Day => Some(date),
        DatePart::Month => date.with_day(1),
        DatePart::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1),
    }
}

/// The first second (since the epoch) of the day, month or year that the
/// instant `seconds` falls in on the clocks of `tz`, as DataFusion's
/// `date_trunc` does for a timestamp with a time zone.
fn truncate_local(seconds: i64, part: DatePart, tz: &Tz) -> Option<i64> {
    let local = DateTime::from_timestamp(seconds, 0)?.with_timezone(tz);
    let midnight = truncate_date(local.date_naive(), part)?.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight).earliest() {
        Some(start) => Some(start.timestamp()),
        // Midnight falls in a daylight-saving gap (clocks jumped from 23:59
        // to 01:00): the day starts at the jump, which is midnight at the
        // offset in force before it.
        None => {
            let before = tz
                .offset_from_utc_datetime(&(midnight - TimeDelta::days(1)))
                .fix();
            Some((midnight - before).and_utc().timestamp())
        }
    }
}

fn bucket_whole_column(
    step: &Step,
    array: &ArrayRef,
    bucket: i128,
) -> Result<ArrayRef, AnonymizeError> {
    let data_type = array.data_type();
    match data_type {
        DataType::Int8 => bucket_whole::<Int8Type>(step, array, bucket),
        DataType::Int16 => bucket_whole::<Int16Type>(step, array, bucket),
        DataType::Int32 => bucket_whole::<Int32Type>(step, array, bucket),
        DataType::Int64 => bucket_whole::<Int64Type>(step, array, bucket),
        DataType::UInt8 => bucket_whole::<UInt8Type>(step, array, bucket),
        DataType::UInt16 => bucket_whole::<UInt16Type>(step, array, bucket),
        DataType::UInt32 => bucket_whole::<UInt32Type>(step, array, bucket),
        DataType::UInt64 => bucket_whole::<UInt64Type>(step, array, bucket),
        DataType::Decimal32(..) => bucket_whole::<Decimal32Type>(step, array, bucket),
        DataType::Decimal64(..) => bucket_whole::<Decimal64Type>(step, array, bucket),
        DataType::Decimal128(..) => bucket_whole::<Decimal128Type>(step, array, bucket),
        other => Err(AnonymizeError::Internal {
            message: format!(
                "`bucket` reached column `{}` of type `{other}`",
                step.column
            ),
        }),
    }
}

/// `floor(v / bucket) * bucket` in `i128`, which holds every value of these
/// types, so only the result can fall outside the column's type (`-128` of an
/// `Int8` in buckets of 3 is `-129`).
fn bucket_whole<T>(step: &Step, array: &ArrayRef, bucket: i128) -> Result<ArrayRef, AnonymizeError>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128> + TryFrom<i128> + fmt::Display,
{
    let data_type = array.data_type();
    let out: PrimitiveArray<T> = array.as_primitive::<T>().try_unary(|value| {
        let wide: i128 = value.into();
        wide.div_euclid(bucket)
            .checked_mul(bucket)
            .and_then(|r| T::Native::try_from(r).ok())
            .ok_or_else(|| out_of_range(step, value, data_type))
    })?;
    // Keeps a decimal's precision and scale.
    Ok(Arc::new(out.with_data_type(data_type.clone())))
}

/// `floor(v / bucket) * bucket`, except that a quotient a few rounding
/// errors below a whole number counts as that number: `0.3 / 0.1` is
/// `2.9999999999999996` in binary floating point, and 0.3 belongs in the
/// bucket starting at 0.3, not 0.2.
fn bucket_float(value: f64, bucket: f64) -> f64 {
    let quotient = value / bucket;
    let nearest = quotient.round();
    let floor = if (quotient - nearest).abs() <= 4.0 * f64::EPSILON * nearest.abs() {
        nearest
    } else {
        quotient.floor()
    };
    floor * bucket
}

/// The candidate closest to `name`, when it is close enough to be a typo
/// (as `weir-spec` suggests names), or the same name in another case.
fn did_you_mean<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str> + Clone,
) -> Option<&'c str> {
    if let Some(same) = candidates.clone().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some(same);
    }
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| {
            *d <= limit || (c.len() >= 3 && (c.starts_with(name) || name.starts_with(c)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        Date32Array, Decimal128Array, Float64Array, Int8Array, Int64Array, StringViewArray,
        TimestampMicrosecondArray, TimestampNanosecondArray,
    };

    use super::*;

    const SALT: HashSalt<'static> = HashSalt::Value {
        secret: "PII_SALT",
        value: b"pepper",
    };

    /// A one-column table of `batches`, each an array of the same type.
    fn table(name: &str, batches: Vec<ArrayRef>) -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![Field::new(
            name,
            batches[0].data_type().clone(),
            true,
        )]));
        let batches = batches
            .into_iter()
            .map(|a| RecordBatch::try_new(schema.clone(), vec![a]).unwrap())
            .collect();
        (schema, batches)
    }

    fn rule(column: &str, spec: AnonymizeSpec) -> Vec<(String, AnonymizeSpec)> {
        vec![(column.to_owned(), spec)]
    }

    /// Anonymizes a one-column table and returns the column of each batch.
    fn run_one(
        name: &str,
        batches: Vec<ArrayRef>,
        spec: AnonymizeSpec,
        salt: HashSalt<'_>,
    ) -> Result<(SchemaRef, Vec<ArrayRef>), AnonymizeError> {
        let (schema, batches) = table(name, batches);
        let (schema, batches) = anonymize(schema, batches, &rule(name, spec), salt)?;
        let columns = batches.iter().map(|b| b.column(0).clone()).collect();
        Ok((schema, columns))
    }

    fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    fn utf8(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn hash_one(value: &str, salt: HashSalt<'_>) -> String {
        let (_, out) = run_one("v", vec![utf8(&[Some(value)])], AnonymizeSpec::Hash, salt).unwrap();
        strings(&out[0])[0].clone().unwrap()
    }

    #[test]
    fn anonymize_hash_is_hmac_sha256_truncated_to_128_bits() {
        // RFC 4231, test case 2.
        let salt = HashSalt::Value {
            secret: "S",
            value: b"Jefe",
        };
        assert_eq!(
            hash_one("what do ya want for nothing?", salt),
            "5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn anonymize_hash_gives_stable_tokens_across_batches_and_keeps_nulls() {
        let (schema, out) = run_one(
            "email",
            vec![
                utf8(&[Some("a@x.org"), None, Some("b@x.org")]),
                utf8(&[Some("b@x.org"), Some("a@x.org")]),
            ],
            AnonymizeSpec::Hash,
            SALT,
        )
        .unwrap();
        assert_eq!(schema.field(0).name(), "email");
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        assert!(schema.field(0).is_nullable());
        let (first, second) = (strings(&out[0]), strings(&out[1]));
        assert_eq!(first[1], None);
        let a = first[0].clone().unwrap();
        let b = first[2].clone().unwrap();
        assert_eq!(second, vec![Some(b.clone()), Some(a.clone())]);
        assert_ne!(a, b);
        assert_ne!(a, "a@x.org");
        for token in [&a, &b] {
            assert_eq!(token.len(), 32);
            assert!(
                token.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
                "{token}"
            );
        }
    }

    #[test]
    fn anonymize_hash_depends_on_the_salt() {
        let other = HashSalt::Value {
            secret: "PII_SALT",
            value: b"paprika",
        };
        assert_eq!(hash_one("alice", SALT), hash_one("alice", SALT));
        assert_ne!(hash_one("alice", SALT), hash_one("alice", other));
    }

    #[test]
    fn anonymize_hash_numbers_by_their_text() {
        let (_, out) = run_one(
            "n",
            vec![Arc::new(Int64Array::from(vec![Some(42), None]))],
            AnonymizeSpec::Hash,
            SALT,
        )
        .unwrap();
        assert_eq!(strings(&out[0]), vec![Some(hash_one("42", SALT)), None]);
        // Views and binary hash their bytes, as text does.
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![Some("42")]));
        let (_, out) = run_one("n", vec![view], AnonymizeSpec::Hash, SALT).unwrap();
        assert_eq!(strings(&out[0]), vec![Some(hash_one("42", SALT))]);
    }

    #[test]
    fn anonymize_hash_without_salt_fails_saying_what_to_set() {
        let hash = |salt| run_one("email", vec![utf8(&[Some("a")])], AnonymizeSpec::Hash, salt);
        let e = hash(HashSalt::Unset { secret: "PII_SALT" }).unwrap_err();
        assert!(
            matches!(&e, AnonymizeError::NoSalt { column, secret: Some(s) } if column == "email" && s == "PII_SALT"),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(message.contains("column `email`"), "{message}");
        assert!(
            message.contains("\nhint: set `WEIR_SECRET_PII_SALT`"),
            "{message}"
        );
        let empty = HashSalt::Value {
            secret: "PII_SALT",
            value: b"",
        };
        assert!(matches!(
            hash(empty).unwrap_err(),
            AnonymizeError::NoSalt {
                secret: Some(_),
                ..
            }
        ));
        let e = hash(HashSalt::NotConfigured).unwrap_err();
        assert!(
            matches!(&e, AnonymizeError::NoSalt { secret: None, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("sets no `hash_salt`\nhint: add `hash_salt:"),
            "{e}"
        );
        // No salt is needed when nothing is hashed.
        run_one(
            "email",
            vec![utf8(&[Some("a")])],
            AnonymizeSpec::Null,
            HashSalt::NotConfigured,
        )
        .unwrap();
    }

    #[test]
    fn anonymize_hash_salt_is_redacted_in_debug() {
        let shown = format!("{SALT:?}");
        assert!(
            shown.contains("PII_SALT") && !shown.contains("pepper"),
            "{shown}"
        );
    }

    #[test]
    fn anonymize_drop_and_null_apply_in_order_over_batches() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("age", DataType::Int64, false),
        ]));
        let batch = |ids: Vec<i64>| {
            let n = ids.len();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    utf8(&vec![Some("x"); n]),
                    Arc::new(Int64Array::from(vec![30; n])),
                ],
            )
            .unwrap()
        };
        let rules = vec![
            ("name".to_owned(), AnonymizeSpec::Drop),
            ("age".to_owned(), AnonymizeSpec::Null),
        ];
        let (out_schema, out) = anonymize(
            schema.clone(),
            vec![batch(vec![1, 2]), batch(vec![3])],
            &rules,
            SALT,
        )
        .unwrap();
        let names: Vec<&String> = out_schema.fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, ["id", "age"]);
        assert_eq!(out_schema.field(1).data_type(), &DataType::Int64);
        assert!(out_schema.field(1).is_nullable());
        assert!(!out_schema.field(0).is_nullable());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].num_rows(), 2);
        assert_eq!(out[1].column(1).null_count(), 1);
        assert_eq!(
            out[0].column(0).as_primitive::<Int64Type>().values(),
            &[1, 2]
        );

        // Dropping every column keeps the rows.
        let all: Vec<_> = ["id", "name", "age"]
            .iter()
            .map(|c| ((*c).to_owned(), AnonymizeSpec::Drop))
            .collect();
        let (out_schema, out) =
            anonymize(schema.clone(), vec![batch(vec![1, 2])], &all, SALT).unwrap();
        assert!(out_schema.fields().is_empty());
        assert_eq!(out[0].num_rows(), 2);
    }

    #[test]
    fn anonymize_mask_keeps_the_last_characters() {
        let (schema, out) = run_one(
            "card",
            vec![
                utf8(&[Some("4111111111111111"), None, Some("123"), Some("")]),
                utf8(&[Some("1234")]),
            ],
            AnonymizeSpec::Mask(4),
            SALT,
        )
        .unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        assert_eq!(
            strings(&out[0]),
            vec![
                Some("************1111".to_owned()),
                None,
                Some("123".to_owned()),
                Some(String::new())
            ]
        );
        assert_eq!(strings(&out[1]), vec![Some("1234".to_owned())]);
    }

    #[test]
    fn anonymize_mask_counts_characters_not_bytes() {
        let (_, out) = run_one(
            "name",
            vec![utf8(&[
                Some("naïve café"),
                Some("日本語テキスト"),
                Some("🦀🦀é"),
            ])],
            AnonymizeSpec::Mask(4),
            SALT,
        )
        .unwrap();
        assert_eq!(
            strings(&out[0]),
            vec![
                Some("******café".to_owned()),
                Some("***テキスト".to_owned()),
                Some("🦀🦀é".to_owned())
            ]
        );
        let view: ArrayRef = Arc::new(StringViewArray::from(vec![Some("žluťoučký kůň")]));
        let (_, out) = run_one("name", vec![view], AnonymizeSpec::Mask(3), SALT).unwrap();
        assert_eq!(strings(&out[0]), vec![Some("**********kůň".to_owned())]);
        let (_, out) = run_one(
            "n",
            vec![Arc::new(Int64Array::from(vec![-123_456]))],
            AnonymizeSpec::Mask(0),
            SALT,
        )
        .unwrap();
        assert_eq!(strings(&out[0]), vec![Some("*******".to_owned())]);
    }

    fn date(y: i32, m: u32, d: u32) -> i32 {
        let days = NaiveDate::from_ymd_opt(y, m, d).unwrap().num_days_from_ce();
        days - i32::try_from(EPOCH_DAYS_FROM_CE).unwrap()
    }

    #[test]
    fn anonymize_generalize_date32() {
        let input = || -> ArrayRef {
            Arc::new(Date32Array::from(vec![
                Some(date(2024, 7, 19)),
                None,
                Some(date(1969, 12, 31)),
            ]))
        };
        let cases = [
            (DatePart::Day, [date(2024, 7, 19), date(1969, 12, 31)]),
            (DatePart::Month, [date(2024, 7, 1), date(1969, 12, 1)]),
            (DatePart::Year, [date(2024, 1, 1), date(1969, 1, 1)]),
        ];
        for (part, [a, b]) in cases {
            let (schema, out) = run_one(
                "born",
                vec![input(), input()],
                AnonymizeSpec::Generalize(part),
                SALT,
            )
            .unwrap();
            assert_eq!(schema.field(0).data_type(), &DataType::Date32);
            for column in &out {
                let got: Vec<Option<i32>> = column.as_primitive::<Date32Type>().iter().collect();
                assert_eq!(got, vec![Some(a), None, Some(b)], "{part:?}");
            }
        }
    }

    fn micros(text: &str) -> i64 {
        text.parse::<chrono::NaiveDateTime>()
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn anonymize_generalize_naive_microsecond_timestamps() {
        let input: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            Some(micros("2024-07-19T13:45:12.345678")),
            None,
            Some(micros("1969-12-31T23:59:59.999999")),
        ]));
        let cases = [
            (
                DatePart::Day,
                ["2024-07-19T00:00:00", "1969-12-31T00:00:00"],
            ),
            (
                DatePart::Month,
                ["2024-07-01T00:00:00", "1969-12-01T00:00:00"],
            ),
            (
                DatePart::Year,
                ["2024-01-01T00:00:00", "1969-01-01T00:00:00"],
            ),
        ];
        for (part, [a, b]) in cases {
            let (schema, out) = run_one(
                "at",
                vec![input.clone()],
                AnonymizeSpec::Generalize(part),
                SALT,
            )
            .unwrap();
            assert_eq!(
                schema.field(0).data_type(),
                &DataType::Timestamp(TimeUnit::Microsecond, None)
            );
            assert_eq!(out[0].data_type(), schema.field(0).data_type());
            let got: Vec<Option<i64>> = out[0]
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .collect();
            assert_eq!(
                got,
                vec![Some(micros(a)), None, Some(micros(b))],
                "{part:?}"
            );
        }
    }

    fn nanos_in(tz: &str, values: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(values).with_timezone(tz))
    }

    #[test]
    fn anonymize_generalize_nanosecond_timestamps_with_a_time_zone() {
        let ns = |text: &str| micros(text) * 1_000;
        let input = nanos_in("UTC", vec![Some(ns("2024-07-19T13:45:12.5") + 123), None]);
        let (schema, out) = run_one(
            "at",
            vec![input],
            AnonymizeSpec::Generalize(DatePart::Month),
            SALT,
        )
        .unwrap();
        let utc = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        assert_eq!(schema.field(0).data_type(), &utc);
        assert_eq!(out[0].data_type(), &utc);
        let got: Vec<Option<i64>> = out[0]
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .collect();
        assert_eq!(got, vec![Some(ns("2024-07-01T00:00:00")), None]);

        // Days start on the zone's clocks: 2024-02-29T23:30Z is 00:30 on
        // March 1st in Paris, whose March starts at 2024-02-29T23:00Z.
        let paris = nanos_in("Europe/Paris", vec![Some(ns("2024-02-29T23:30:00"))]);
        let (_, out) = run_one(
            "at",
            vec![paris],
            AnonymizeSpec::Generalize(DatePart::Month),
            SALT,
        )
        .unwrap();
        let got: Vec<Option<i64>> = out[0]
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .collect();
        assert_eq!(got, vec![Some(ns("2024-02-29T23:00:00"))]);
    }

    #[test]
    fn anonymize_generalize_day_starting_in_a_dst_gap() {
        // Brazil moved clocks from 00:00 to 01:00 on 2018-11-04, so that day
        // started at 01:00 local (-02:00), i.e. 03:00Z.
        let s = |text: &str| micros(text) / 1_000_000;
        let array: ArrayRef = Arc::new(
            datafusion::arrow::array::TimestampSecondArray::from(vec![s("2018-11-04T15:00:00")])
                .with_timezone("America/Sao_Paulo"),
        );
        let (_, out) = run_one(
            "at",
            vec![array],
            AnonymizeSpec::Generalize(DatePart::Day),
            SALT,
        )
        .unwrap();
        let got: Vec<Option<i64>> = out[0]
            .as_primitive::<TimestampSecondType>()
            .iter()
            .collect();
        assert_eq!(got, vec![Some(s("2018-11-04T03:00:00"))]);
    }

    #[test]
    fn anonymize_generalize_rejects_other_types() {
        let e = run_one(
            "born",
            vec![utf8(&[Some("2024-01-01")])],
            AnonymizeSpec::Generalize(DatePart::Year),
            SALT,
        )
        .unwrap_err();
        assert!(
            matches!(&e, AnonymizeError::UnsupportedType { column, method: "generalize", data_type: DataType::Utf8 } if column == "born"),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(
            message.contains("column `born` of type `Utf8`"),
            "{message}"
        );
        assert!(message.contains("\nhint: "), "{message}");
    }

    #[test]
    fn anonymize_bucket_int64_floors_negative_values() {
        let input = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let (schema, out) = run_one(
            "age",
            vec![
                input(vec![Some(37), Some(-1), None, Some(-10), Some(-11)]),
                input(vec![Some(0), Some(9), Some(10)]),
            ],
            AnonymizeSpec::Bucket(10.0),
            SALT,
        )
        .unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        let got = |a: &ArrayRef| a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>();
        assert_eq!(
            got(&out[0]),
            vec![Some(30), Some(-10), None, Some(-10), Some(-20)]
        );
        assert_eq!(got(&out[1]), vec![Some(0), Some(0), Some(10)]);
    }

    #[test]
    fn anonymize_bucket_float64_floors_negative_values() {
        let input: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(37.5),
            Some(-0.5),
            None,
            Some(-10.0),
            Some(-10.5),
        ]));
        let (schema, out) = run_one("x", vec![input], AnonymizeSpec::Bucket(10.0), SALT).unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Float64);
        let got: Vec<Option<f64>> = out[0].as_primitive::<Float64Type>().iter().collect();
        assert_eq!(
            got,
            vec![Some(30.0), Some(-10.0), None, Some(-10.0), Some(-20.0)]
        );

        // 0.3 / 0.1 is 2.9999999999999996 in binary; 0.3 still lands in the
        // bucket that starts at 0.3.
        let input: ArrayRef = Arc::new(Float64Array::from(vec![0.3, 0.25]));
        let (_, out) = run_one("x", vec![input], AnonymizeSpec::Bucket(0.1), SALT).unwrap();
        let got = out[0].as_primitive::<Float64Type>().values();
        assert!((got[0] - 0.3).abs() < 1e-12, "{got:?}");
        assert!((got[1] - 0.2).abs() < 1e-12, "{got:?}");
    }

    #[test]
    fn anonymize_bucket_decimal_keeps_precision_and_scale() {
        let input: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(12_345), Some(-1), None])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        let (schema, out) =
            run_one("price", vec![input], AnonymizeSpec::Bucket(0.5), SALT).unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Decimal128(10, 2));
        assert_eq!(out[0].data_type(), &DataType::Decimal128(10, 2));
        let got: Vec<Option<i128>> = out[0].as_primitive::<Decimal128Type>().iter().collect();
        assert_eq!(got, vec![Some(12_300), Some(-50), None]);

        let input: ArrayRef = Arc::new(
            Decimal128Array::from(vec![1])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        let e = run_one("price", vec![input], AnonymizeSpec::Bucket(0.001), SALT).unwrap_err();
        assert!(matches!(e, AnonymizeError::InvalidBucket { .. }), "{e:?}");
    }

    #[test]
    fn anonymize_bucket_rejects_bad_buckets_and_types() {
        let ints = || -> ArrayRef { Arc::new(Int64Array::from(vec![1])) };
        for bucket in [0.0, -5.0, f64::NAN] {
            let e = run_one("age", vec![ints()], AnonymizeSpec::Bucket(bucket), SALT).unwrap_err();
            assert!(
                matches!(&e, AnonymizeError::InvalidBucket { column, .. } if column == "age"),
                "{e:?}"
            );
            assert!(
                e.to_string().contains("must be a positive number\nhint: "),
                "{e}"
            );
        }
        let e = run_one("age", vec![ints()], AnonymizeSpec::Bucket(2.5), SALT).unwrap_err();
        assert!(
            matches!(e, AnonymizeError::InvalidBucket { bucket: 2.5, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("integer column needs a whole bucket"),
            "{e}"
        );

        let e = run_one(
            "age",
            vec![utf8(&[Some("37")])],
            AnonymizeSpec::Bucket(10.0),
            SALT,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                AnonymizeError::UnsupportedType {
                    method: "bucket",
                    ..
                }
            ),
            "{e:?}"
        );

        // -128 in buckets of 3 is -129, which an Int8 cannot hold.
        let small: ArrayRef = Arc::new(Int8Array::from(vec![-128]));
        let e = run_one("age", vec![small], AnonymizeSpec::Bucket(3.0), SALT).unwrap_err();
        assert!(
            matches!(&e, AnonymizeError::OutOfRange { value, .. } if value == "-128"),
            "{e:?}"
        );
    }

    #[test]
    fn anonymize_unknown_column_lists_columns_and_suggests() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("email", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let unknown = |column: &str| {
            anonymize(
                schema.clone(),
                vec![],
                &rule(column, AnonymizeSpec::Drop),
                SALT,
            )
            .unwrap_err()
        };
        let e = unknown("emial");
        assert!(
            matches!(&e, AnonymizeError::UnknownColumn { column, suggestion: Some(s), columns } if column == "emial" && s == "email" && columns.len() == 2),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(message.contains("column `emial`"), "{message}");
        assert!(message.contains("`email`, `name`"), "{message}");
        assert!(
            message.ends_with("\nhint: did you mean `email`?"),
            "{message}"
        );
        assert!(
            unknown("EMAIL")
                .to_string()
                .ends_with("did you mean `email`?")
        );
        let e = unknown("zzz");
        assert!(
            matches!(
                &e,
                AnonymizeError::UnknownColumn {
                    suggestion: None,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("\nhint: "), "{e}");

        // A column dropped by an earlier rule is gone for later ones.
        let rules = vec![
            ("email".to_owned(), AnonymizeSpec::Drop),
            ("email".to_owned(), AnonymizeSpec::Null),
        ];
        let e = anonymize(schema, vec![], &rules, SALT).unwrap_err();
        assert!(
            matches!(&e, AnonymizeError::UnknownColumn { columns, .. } if columns == &["name"]),
            "{e:?}"
        );
    }

    #[test]
    fn anonymize_checks_every_rule_before_rewriting() {
        // The hash fails for want of a salt although it comes second: no
        // work is done on the first rule's column before that is known.
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![utf8(&[Some("x")]), utf8(&[Some("y")])])
                .unwrap();
        let rules = vec![
            ("a".to_owned(), AnonymizeSpec::Mask(1)),
            ("b".to_owned(), AnonymizeSpec::Hash),
        ];
        let e = anonymize(schema, vec![batch], &rules, HashSalt::NotConfigured).unwrap_err();
        assert!(
            matches!(&e, AnonymizeError::NoSalt { column, .. } if column == "b"),
            "{e:?}"
        );
    }
}
