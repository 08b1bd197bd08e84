//! The plugin's own key-value store, kept by the host (contract 0.3.0).
//!
//! Values are kept as JSON: [`get`] and [`set`] take and return any serde
//! type; the `_bytes` functions take raw bytes.
//!
//! ```no_run
//! use informant_sdk::{prelude::*, state};
//!
//! # fn handle(event: Event) -> Result<()> {
//! // One budget per Deployment, shared by every instance, kept across reloads.
//! let key = format!("restarts/{}", event.object.object_ref());
//! if !state::exists(&key)? {
//!     state::set_with_ttl(&key, &0, std::time::Duration::from_secs(3600))?;
//! }
//! if state::increment(&key, 1)? > 3 {
//!     return Ok(()); // over budget: no restart this hour
//! }
//! # Ok(()) }
//! ```
//!
//! The guarantees:
//! - **One store per plugin**, shared by all its instances; it survives
//!   instance recycling and hot reload of the same plugin name.
//! - **Committed with the call.** Writes take effect only if `handle`
//!   returns `Ok`, like actions; an error, a panic or a timeout leaves the
//!   store as it was. Reads see the call's own writes.
//! - **Isolated.** A call whose reads another instance changed before it
//!   committed is run again with the same event (its actions from the first
//!   run are dropped), so [`increment`] and [`compare_and_swap`] are atomic
//!   across instances, and so is a `get` followed by a `set`. Calls that
//!   only read never run again.
//! - **Tiers** ([`Manifest::state`](crate::Manifest::state)): `memory` (the
//!   default; lost when the host stops) or `durable` (kept in the cluster,
//!   loaded before the first call; with leader election only the leader's
//!   writes count).
//! - **Limits.** Quotas on keys, value size and total bytes: a write past
//!   them fails with [`ErrorCode::LimitExceeded`](crate::ErrorCode). Keys
//!   are 1-512 bytes. `init` cannot use the store; `handle` can.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, ErrorCode, Result, bindings::informant::plugin::state as wit};

/// A value's version, as `get_versioned` returns it.
pub type Version = String;

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorCode::Invalid,
            format!("the value of {key:?} is not the type asked for: {e}"),
        )
    })
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The value of `key`, deserialized; `None` if it does not exist.
///
/// # Errors
/// `Invalid` for a bad key, or a value that is not a `T`.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    wit::get(key)?.map(|v| decode(key, &v)).transpose()
}

/// The raw bytes of `key`.
///
/// # Errors
/// `Invalid` for a bad key.
pub fn get_bytes(key: &str) -> Result<Option<Vec<u8>>> {
    Ok(wit::get(key)?)
}

/// The value of `key` with its version, for [`compare_and_swap`].
///
/// # Errors
/// As [`get`].
pub fn get_versioned<T: DeserializeOwned>(key: &str) -> Result<Option<(T, Version)>> {
    match wit::get_versioned(key)? {
        Some(v) => Ok(Some((decode(key, &v.value)?, v.version))),
        None => Ok(None),
    }
}

/// Set `key` to `value` (as JSON), with no expiry.
///
/// # Errors
/// `LimitExceeded` past a quota, `Forbidden` outside `handle`.
pub fn set<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<()> {
    Ok(wit::set(key, &encode(value)?, None)?)
}

/// Set `key` to `value`, expiring `ttl` after the call commits.
///
/// # Errors
/// As [`set`].
pub fn set_with_ttl<T: Serialize + ?Sized>(key: &str, value: &T, ttl: Duration) -> Result<()> {
    Ok(wit::set(key, &encode(value)?, Some(millis(ttl)))?)
}

/// Set `key` to raw bytes, with an optional time to live.
///
/// # Errors
/// As [`set`].
pub fn set_bytes(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
    Ok(wit::set(key, value, ttl.map(millis))?)
}

/// Remove `key` (nothing happens if it does not exist).
///
/// # Errors
/// `Forbidden` outside `handle`.
pub fn delete(key: &str) -> Result<()> {
    Ok(wit::delete(key)?)
}

/// Whether `key` exists.
///
/// # Errors
/// `Invalid` for a bad key.
pub fn exists(key: &str) -> Result<bool> {
    Ok(wit::exists(key)?)
}

/// Set `key` to `value` only if its version is still `expected` (`None`:
/// only if it does not exist). Returns whether it was set.
///
/// # Errors
/// As [`set`].
pub fn compare_and_swap<T: Serialize + ?Sized>(
    key: &str,
    expected: Option<&Version>,
    value: &T,
) -> Result<bool> {
    Ok(wit::compare_and_swap(
        key,
        expected.map(String::as_str),
        &encode(value)?,
        None,
    )?)
}

/// Add `delta` to the integer at `key` (0 if it does not exist) and return
/// the sum. Keeps the key's time to live.
///
/// # Errors
/// `Invalid` if the value is not an integer or the sum overflows.
pub fn increment(key: &str, delta: i64) -> Result<i64> {
    Ok(wit::increment(key, delta)?)
}

/// The values of several keys, deserialized, in the order asked.
///
/// # Errors
/// As [`get`].
pub fn get_many<T: DeserializeOwned>(keys: &[&str]) -> Result<Vec<Option<T>>> {
    wit::get_many(keys)?
        .into_iter()
        .zip(keys)
        .map(|(v, k)| v.map(|v| decode(k, &v)).transpose())
        .collect()
}

/// Set several keys at once, all or none.
///
/// # Errors
/// As [`set`].
pub fn set_many<T: Serialize>(entries: &[(&str, T)], ttl: Option<Duration>) -> Result<()> {
    let encoded = entries
        .iter()
        .map(|(k, v)| Ok((*k, encode(v)?)))
        .collect::<Result<Vec<_>>>()?;
    let borrowed: Vec<(&str, &[u8])> = encoded.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    Ok(wit::set_many(&borrowed, ttl.map(millis))?)
}

/// Remove several keys.
///
/// # Errors
/// As [`delete`].
pub fn delete_many(keys: &[&str]) -> Result<()> {
    Ok(wit::delete_many(keys)?)
}

/// Every key that starts with `prefix`, in byte order, read a page at a
/// time as the iterator goes. An error ends the iteration with it.
pub fn keys(prefix: &str) -> Keys {
    Keys {
        prefix: prefix.to_string(),
        page: Vec::new().into_iter(),
        cursor: None,
        done: false,
    }
}

/// The iterator of [`keys`].
#[derive(Debug)]
pub struct Keys {
    prefix: String,
    page: std::vec::IntoIter<String>,
    cursor: Option<String>,
    done: bool,
}

impl Iterator for Keys {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            match wit::list_keys(&self.prefix, self.cursor.as_deref(), 0) {
                Ok(page) => {
                    self.done = page.cursor.is_none();
                    self.cursor = page.cursor;
                    self.page = page.keys.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
    }
}
