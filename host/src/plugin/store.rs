//! The host functions of the contract's `state` interface (0.3.0): a
//! plugin's calls to its store go to the call's [`Transaction`], opened at
//! the first of them, so that a call that never touches the store costs
//! nothing. What the store returns counts against the call's read budget,
//! like the cache's; refusals are counted and logged like every other.

use super::host::{Code, GuestError, HostState, error};
use crate::state::{self, Access, Transaction};

impl From<state::Error> for GuestError {
    fn from(e: state::Error) -> Self {
        match e {
            state::Error::Invalid(m) => error(Code::Invalid, m),
            state::Error::Forbidden(m) => error(Code::Forbidden, m),
            state::Error::LimitExceeded(m) => error(Code::LimitExceeded, m),
        }
    }
}

impl HostState {
    /// The call's transaction, opened now if this is its first store call.
    fn txn(&mut self) -> Result<&mut Transaction, GuestError> {
        if self.txn.is_none() {
            let store = self.plugin_ctx()?.state.clone().ok_or_else(|| {
                error(
                    Code::Forbidden,
                    "the store is not available during describe",
                )
            })?;
            self.txn = Some(Transaction::new(store, self.access));
        }
        match self.txn.as_mut() {
            Some(txn) => Ok(txn),
            None => Err(error(Code::Failed, "no transaction")),
        }
    }

    /// Run one store call, then count and report a refusal.
    fn state_call<T>(
        &mut self,
        call: impl FnOnce(&mut Transaction) -> Result<T, state::Error>,
    ) -> Result<T, GuestError> {
        let result = self
            .txn()
            .and_then(|txn| call(txn).map_err(GuestError::from));
        self.refused_state(result)
    }

    /// Charge values read against the call's read budget.
    fn charge_read(&mut self, bytes: usize, items: usize) -> Result<(), GuestError> {
        let result = self.charge(bytes, items);
        self.refused_state(result)
    }

    pub(crate) fn state_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, GuestError> {
        let value = self.state_call(|t| t.get(key))?;
        self.charge_read(value.as_ref().map_or(0, |v| v.len()), 1)?;
        Ok(value.map(|v| v.to_vec()))
    }

    pub(crate) fn state_get_versioned(
        &mut self,
        key: &str,
    ) -> Result<Option<(Vec<u8>, String)>, GuestError> {
        let found = self.state_call(|t| t.get_versioned(key))?;
        self.charge_read(found.as_ref().map_or(0, |(v, _)| v.len()), 1)?;
        Ok(found.map(|(v, version)| (v.to_vec(), version)))
    }

    pub(crate) fn state_set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), GuestError> {
        self.state_call(|t| t.set(key, value, ttl_ms))
    }

    pub(crate) fn state_delete(&mut self, key: String) -> Result<(), GuestError> {
        self.state_call(|t| t.delete(key))
    }

    pub(crate) fn state_exists(&mut self, key: &str) -> Result<bool, GuestError> {
        self.state_call(|t| t.exists(key))
    }

    pub(crate) fn state_compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, GuestError> {
        self.state_call(|t| t.compare_and_swap(key, expected.as_deref(), value, ttl_ms))
    }

    pub(crate) fn state_increment(&mut self, key: String, delta: i64) -> Result<i64, GuestError> {
        self.state_call(|t| t.increment(key, delta))
    }

    pub(crate) fn state_get_many(
        &mut self,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, GuestError> {
        let values = self.state_call(|t| t.get_many(keys))?;
        let bytes = values.iter().flatten().map(|v| v.len()).sum();
        self.charge_read(bytes, values.len())?;
        Ok(values.into_iter().map(|v| v.map(|v| v.to_vec())).collect())
    }

    pub(crate) fn state_set_many(
        &mut self,
        entries: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Result<(), GuestError> {
        self.state_call(|t| t.set_many(entries, ttl_ms))
    }

    pub(crate) fn state_delete_many(&mut self, keys: Vec<String>) -> Result<(), GuestError> {
        self.state_call(|t| t.delete_many(keys))
    }

    pub(crate) fn state_list_keys(
        &mut self,
        prefix: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<String>, Option<String>), GuestError> {
        let page = self.state_call(|t| t.list_keys(prefix, cursor.as_deref(), limit))?;
        self.charge_read(page.0.iter().map(String::len).sum(), page.0.len())?;
        Ok(page)
    }

    /// Take the call's transaction, if it opened one.
    pub(crate) fn take_transaction(&mut self) -> Option<Transaction> {
        self.txn.take()
    }
}

/// Why `init` may not use the store: it runs on every fresh instance, and,
/// at load, before a durable store is loaded.
pub(crate) const INIT_CLOSED: Access = Access::Closed(
    "init runs on every fresh instance, before the store is loaded; use it from handle",
);
