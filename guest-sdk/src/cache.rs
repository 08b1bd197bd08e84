//! Reads from the host's cache of watched objects.
//!
//! Only kinds the plugin subscribes to or declares with
//! [`Manifest::reads`](crate::Manifest::reads) are readable.

use crate::{Object, ObjectRef, Result, bindings::informant::plugin::cache as wit};

fn parse_all(items: Vec<String>) -> Result<Vec<Object>> {
    Ok(items.into_iter().map(Object::from_json).collect())
}

/// One object, if cached.
///
/// # Errors
/// `Forbidden` for a kind the plugin may not read.
pub fn get(r: &ObjectRef) -> Result<Option<Object>> {
    match wit::get(r.into())? {
        Some(json) => Ok(Some(Object::from_json(json))),
        None => Ok(None),
    }
}

/// The objects of a kind, optionally in one namespace and matching a label
/// selector, ordered by namespace and name.
///
/// # Errors
/// `Forbidden` for a kind the plugin may not read, `Invalid` for a bad selector.
pub fn list(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<Vec<Object>> {
    parse_all(wit::list(api_version, kind, namespace, label_selector)?)
}

/// Like [`list`], but only the references.
///
/// # Errors
/// As [`list`].
pub fn list_keys(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<Vec<ObjectRef>> {
    Ok(
        wit::list_keys(api_version, kind, namespace, label_selector)?
            .into_iter()
            .map(Into::into)
            .collect(),
    )
}

/// The objects a declared index maps `value` to.
///
/// # Errors
/// `NotFound` for an index the manifest does not declare.
pub fn by_index(index: &str, value: &str) -> Result<Vec<Object>> {
    parse_all(wit::by_index(index, value)?)
}

/// Like [`by_index`], but only the references.
///
/// # Errors
/// As [`by_index`].
pub fn by_index_keys(index: &str, value: &str) -> Result<Vec<ObjectRef>> {
    Ok(wit::by_index_keys(index, value)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Every key present in a declared index.
///
/// # Errors
/// As [`by_index`].
pub fn index_values(index: &str) -> Result<Vec<String>> {
    Ok(wit::index_values(index)?)
}
