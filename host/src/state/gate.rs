//! Whether this replica may write the durable tier: one small seam between
//! the store and whatever decides who writes (leader election today; the
//! singleton of the sharded host next).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// Says whether this replica may write the durable tier now.
pub trait WriteGate: Send + Sync + std::fmt::Debug {
    /// `Some(term)` while this replica may write; the term is different
    /// every time it gains that right again, so the store knows to read the
    /// cluster afresh before it writes (another replica may have written
    /// meanwhile). `None` while it may not: its writes are dropped, like its
    /// actions, and its view follows the cluster through the watch.
    fn term(&self) -> Option<u64>;
}

/// The gate fed by leader election: this replica writes while it leads.
/// Without leader election it always leads, in one term.
#[derive(Debug)]
pub struct Leadership {
    term: watch::Sender<Option<u64>>,
    terms: AtomicU64,
}

impl Default for Leadership {
    /// Leading, in term 1: a host without leader election.
    fn default() -> Self {
        Self {
            term: watch::Sender::new(Some(1)),
            terms: AtomicU64::new(1),
        }
    }
}

impl Leadership {
    /// This replica leads from now on (a new term, if it did not), or no
    /// longer does.
    pub fn set_leading(&self, leading: bool) {
        self.term.send_if_modified(|term| match (leading, *term) {
            (true, None) => {
                *term = Some(self.terms.fetch_add(1, Ordering::Relaxed) + 1);
                true
            }
            (false, Some(_)) => {
                *term = None;
                true
            }
            _ => false,
        });
    }

    /// Follow the term as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Option<u64>> {
        self.term.subscribe()
    }
}

impl WriteGate for Leadership {
    fn term(&self) -> Option<u64> {
        *self.term.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_lead_is_a_new_term() {
        let gate = Leadership::default();
        assert_eq!(gate.term(), Some(1));
        gate.set_leading(true);
        assert_eq!(gate.term(), Some(1), "still the same term");
        gate.set_leading(false);
        assert_eq!(gate.term(), None);
        gate.set_leading(true);
        assert_eq!(gate.term(), Some(2));
    }
}
