//! A store's quotas: how many keys, how large a value, how many bytes in
//! all. The host's defaults come from the configuration; a plugin's manifest
//! may ask for others within the operator's maximum.

use serde::Serialize;

/// What one plugin's store may hold. Bytes count keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// The most keys.
    pub max_keys: u64,
    /// The largest value, in bytes.
    pub max_value_bytes: u64,
    /// The most bytes of keys and values together.
    pub max_total_bytes: u64,
}

impl Default for Quota {
    /// The host's defaults: 10,000 keys, 64 KiB values, 4 MiB in all.
    fn default() -> Self {
        Self {
            max_keys: 10_000,
            max_value_bytes: 64 * 1024,
            max_total_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Quota {
    /// The most a manifest may ask for unless the operator says otherwise:
    /// 1,000,000 keys, 1 MiB values, 64 MiB in all.
    pub fn ceiling() -> Self {
        Self {
            max_keys: 1_000_000,
            max_value_bytes: 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
        }
    }

    /// Each quota the larger of the two: a plugin's own quotas raise its ceiling.
    #[must_use]
    pub fn max(self, other: Quota) -> Self {
        Self {
            max_keys: self.max_keys.max(other.max_keys),
            max_value_bytes: self.max_value_bytes.max(other.max_value_bytes),
            max_total_bytes: self.max_total_bytes.max(other.max_total_bytes),
        }
    }

    /// These quotas with what a manifest asks for, within `ceiling`.
    ///
    /// # Errors
    /// What is asked beyond the ceiling, named as the manifest names it.
    pub fn with_request(
        mut self,
        max_keys: Option<u32>,
        max_value_bytes: Option<u32>,
        max_total_bytes: Option<u64>,
        ceiling: &Quota,
    ) -> Result<Self, String> {
        let check = |field: &str, asked: u64, most: u64| {
            if asked > most {
                Err(format!(
                    "the plugin asks for state.{field} {asked}; the operator allows at most {most}"
                ))
            } else {
                Ok(asked)
            }
        };
        if let Some(n) = max_keys {
            self.max_keys = check("maxKeys", n.into(), ceiling.max_keys)?;
        }
        if let Some(n) = max_value_bytes {
            self.max_value_bytes = check("maxValueBytes", n.into(), ceiling.max_value_bytes)?;
        }
        if let Some(n) = max_total_bytes {
            self.max_total_bytes = check("maxTotalBytes", n, ceiling.max_total_bytes)?;
        }
        Ok(self)
    }
}

/// How much of its quota a store uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Keys stored (expired ones until they are removed).
    pub keys: u64,
    /// Bytes of keys and values stored.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_granted_within_the_ceiling_only() {
        let ceiling = Quota::ceiling();
        let q = Quota::default()
            .with_request(Some(100), None, Some(1 << 20), &ceiling)
            .unwrap();
        assert_eq!(q.max_keys, 100);
        assert_eq!(q.max_value_bytes, Quota::default().max_value_bytes);
        assert_eq!(q.max_total_bytes, 1 << 20);
        let err = Quota::default()
            .with_request(None, None, Some(1 << 40), &ceiling)
            .unwrap_err();
        assert!(err.contains("state.maxTotalBytes"), "{err}");
    }
}
