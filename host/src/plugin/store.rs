//! The host functions of the contract's `state` interface (0.3.0): what a
//! plugin's calls to its store do.
//!
//! The store itself arrives with issue 24 (`crate::state`); until then every
//! call is refused with `forbidden`, saying so, so a 0.3.0 plugin loads and
//! runs, and learns at the call that it has no store.

use super::host::{Code, GuestError, HostState, error};

const NOT_YET: &str = "this host has no state store yet: the state interface is refused";

fn refused<T>() -> Result<T, GuestError> {
    Err(error(Code::Forbidden, NOT_YET))
}

impl HostState {
    pub(crate) fn state_get(&mut self, _key: &str) -> Result<Option<Vec<u8>>, GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_get_versioned(
        &mut self,
        _key: &str,
    ) -> Result<Option<(Vec<u8>, String)>, GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_set(
        &mut self,
        _key: String,
        _value: Vec<u8>,
        _ttl_ms: Option<u64>,
    ) -> Result<(), GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_delete(&mut self, _key: String) -> Result<(), GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_exists(&mut self, _key: &str) -> Result<bool, GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_compare_and_swap(
        &mut self,
        _key: String,
        _expected: Option<String>,
        _value: Vec<u8>,
        _ttl_ms: Option<u64>,
    ) -> Result<bool, GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_increment(&mut self, _key: String, _delta: i64) -> Result<i64, GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_get_many(
        &mut self,
        _keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_set_many(
        &mut self,
        _entries: Vec<(String, Vec<u8>)>,
        _ttl_ms: Option<u64>,
    ) -> Result<(), GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_delete_many(&mut self, _keys: Vec<String>) -> Result<(), GuestError> {
        self.refused_state(refused())
    }

    pub(crate) fn state_list_keys(
        &mut self,
        _prefix: &str,
        _cursor: Option<String>,
        _limit: u32,
    ) -> Result<(Vec<String>, Option<String>), GuestError> {
        self.refused_state(refused())
    }
}
