//! The per-plugin limits on CPU time, memory, actions and boundary sizes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Error;

const MIB: usize = 1024 * 1024;

/// What one plugin may consume per call. `Default` gives the host defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Limits {
    /// CPU deadline of one call, enforced by epoch interruption.
    #[serde(with = "millis", rename = "deadlineMs")]
    pub deadline: Duration,
    /// Cap on the guest's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Cap on the actions one call may enqueue.
    pub max_actions_per_call: usize,
    /// Cap on one string the guest passes to the host (an action's JSON).
    pub max_guest_string_bytes: usize,
    /// Cap on the bytes the cache returns to the guest during one call.
    pub max_host_result_bytes: usize,
    /// Cap on the items of one list the cache returns.
    pub max_list_items: usize,
    /// Cap on the guest's stdout and stderr per call; the rest is dropped.
    pub max_output_bytes_per_call: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(100),
            memory_bytes: 64 * MIB,
            max_actions_per_call: 100,
            max_guest_string_bytes: 3 * MIB,
            max_host_result_bytes: 32 * MIB,
            max_list_items: 100_000,
            max_output_bytes_per_call: 64 * 1024,
        }
    }
}

impl Limits {
    /// Sets the CPU deadline per call.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets the memory cap in bytes.
    #[must_use]
    pub fn memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Sets the cap on actions per call.
    #[must_use]
    pub fn max_actions_per_call(mut self, n: usize) -> Self {
        self.max_actions_per_call = n;
        self
    }

    /// Apply what a plugin's manifest asks for, within the operator's `ceiling`.
    ///
    /// # Errors
    /// [`Error::LimitRequest`] if the plugin asks for more than the ceiling.
    pub fn with_request(
        mut self,
        memory_mib: Option<u32>,
        deadline_ms: Option<u32>,
        ceiling: &Limits,
    ) -> Result<Self, Error> {
        if let Some(mib) = memory_mib {
            let bytes = mib as usize * MIB;
            if bytes > ceiling.memory_bytes {
                return Err(Error::LimitRequest(format!(
                    "the plugin asks for {mib} MiB of memory; the operator allows at most {} MiB",
                    ceiling.memory_bytes / MIB
                )));
            }
            self.memory_bytes = bytes;
        }
        if let Some(ms) = deadline_ms {
            let deadline = Duration::from_millis(ms.into());
            if deadline > ceiling.deadline {
                return Err(Error::LimitRequest(format!(
                    "the plugin asks for a {ms} ms deadline; the operator allows at most {} ms",
                    ceiling.deadline.as_millis()
                )));
            }
            self.deadline = deadline;
        }
        Ok(self)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_granted_within_the_ceiling_only() {
        let ceiling = Limits::default().memory_bytes(256 * MIB);
        let l = Limits::default()
            .with_request(Some(128), None, &ceiling)
            .unwrap();
        assert_eq!(l.memory_bytes, 128 * MIB);
        let err = Limits::default()
            .with_request(Some(512), None, &ceiling)
            .unwrap_err();
        assert!(err.to_string().contains("512 MiB"), "{err}");
        assert!(
            Limits::default()
                .with_request(None, Some(10_000), &ceiling)
                .is_err()
        );
    }
}
