//! What one reader may see of the cache: the cache is shared, but a plugin
//! that is being handed a list as it streams in must not read, through the
//! cache, an object of that list it has not been handed yet. Its lane says
//! which; the plugin's reads leave those out.

use crate::vocabulary::{KindKey, ObjectKey};

/// A reader's view of the cache: which cached objects it may not see now.
pub trait View: Send + Sync {
    /// Whether the object `key` of `kind` is hidden from this reader.
    fn hides(&self, kind: &KindKey, key: &ObjectKey) -> bool;
}
