//! Which live replica should hold which bucket: a pure function of the
//! members and the current holders, computed alike by every replica.
//!
//! Balanced (each member gets B/M buckets, rounded down or up) and with
//! hysteresis: a member keeps what it holds up to its share, so only the
//! surplus moves when replicas join or leave, and nothing moves while the
//! shares are already within one of each other. The members with the most
//! buckets get the rounded-up shares, so a balanced table is a fixed point.

use std::collections::HashMap;

/// The member that should hold each bucket, or none without members.
///
/// `members` are the live replicas (order does not matter); `holders` has
/// one entry per bucket, the replica holding it now, if any. A holder that
/// is not a member counts as none: its buckets are handed out.
pub fn assign<'a>(members: &[&'a str], holders: &[Option<&str>]) -> Vec<Option<&'a str>> {
    let buckets = holders.len();
    let mut members: Vec<&'a str> = members.to_vec();
    members.sort_unstable();
    members.dedup();
    if members.is_empty() {
        return vec![None; buckets];
    }
    let mut held: HashMap<&str, usize> = members.iter().map(|m| (*m, 0)).collect();
    for h in holders.iter().flatten() {
        if let Some(n) = held.get_mut(h) {
            *n += 1;
        }
    }
    // Shares: the `extra` members holding the most get one more.
    let (share, extra) = (buckets / members.len(), buckets % members.len());
    let mut by_holdings = members.clone();
    by_holdings.sort_by(|a, b| held[b].cmp(&held[a]).then(a.cmp(b)));
    let quota: HashMap<&str, usize> = by_holdings
        .iter()
        .enumerate()
        .map(|(i, m)| (*m, share + usize::from(i < extra)))
        .collect();
    // Keep what is held, up to the share, lowest buckets first.
    let mut kept: HashMap<&str, usize> = members.iter().map(|m| (*m, 0)).collect();
    let mut target: Vec<Option<&'a str>> = vec![None; buckets];
    for (b, holder) in holders.iter().enumerate() {
        let Some(member) = holder.and_then(|h| members.iter().find(|m| **m == h)) else {
            continue;
        };
        if kept[member] < quota[member] {
            target[b] = Some(*member);
            *kept.entry(member).or_default() += 1;
        }
    }
    // The rest to whoever is furthest below its share (then by name).
    for slot in target.iter_mut().filter(|t| t.is_none()) {
        let Some(member) = members
            .iter()
            .filter(|m| kept[*m] < quota[*m])
            .max_by(|a, b| {
                (quota[*a] - kept[*a])
                    .cmp(&(quota[*b] - kept[*b]))
                    .then(b.cmp(a))
            })
        else {
            break;
        };
        *slot = Some(*member);
        *kept.entry(member).or_default() += 1;
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(target: &[Option<&str>], member: &str) -> usize {
        target.iter().filter(|t| **t == Some(member)).count()
    }

    fn moved(before: &[Option<&str>], after: &[Option<&str>]) -> usize {
        before
            .iter()
            .zip(after)
            .filter(|(b, a)| b.is_some() && b != a)
            .count()
    }

    #[test]
    fn an_empty_table_is_shared_out_evenly() {
        let t = assign(&["c", "a", "b"], &[None; 32]);
        assert_eq!(
            [counts(&t, "a"), counts(&t, "b"), counts(&t, "c")],
            [11, 11, 10]
        );
        assert!(t.iter().all(Option::is_some));
    }

    #[test]
    fn nothing_moves_while_the_shares_are_balanced() {
        let t = assign(&["a", "b", "c"], &[None; 32]);
        // Whoever holds 11 and 10 now, the table is a fixed point.
        let again = assign(&["b", "c", "a"], &t);
        assert_eq!(again, t);
        // Also when the rounded-up shares sit with other members than the
        // names would say.
        let mut skew: Vec<Option<&str>> = vec![Some("a"); 10];
        skew.extend(vec![Some("b"); 11]);
        skew.extend(vec![Some("c"); 11]);
        assert_eq!(assign(&["a", "b", "c"], &skew), skew);
    }

    #[test]
    fn a_joining_member_takes_only_the_surplus() {
        let three = assign(&["a", "b", "c"], &[None; 32]);
        let four = assign(&["a", "b", "c", "d"], &three);
        assert_eq!(counts(&four, "d"), 8);
        // Exactly the 8 buckets d gets move; nothing else does.
        assert_eq!(moved(&three, &four), 8);
        for m in ["a", "b", "c"] {
            assert_eq!(counts(&four, m), 8);
        }
    }

    #[test]
    fn a_leaving_members_buckets_go_to_the_others_and_nothing_else_moves() {
        let three = assign(&["a", "b", "c"], &[None; 32]);
        let two = assign(&["a", "b"], &three);
        assert_eq!((counts(&two, "a"), counts(&two, "b")), (16, 16));
        // Only c's buckets changed hands.
        assert_eq!(moved(&three, &two), counts(&three, "c"));
    }

    #[test]
    fn scaling_3_to_5_and_back_is_balanced_each_time() {
        let three = assign(&["a", "b", "c"], &[None; 32]);
        let five = assign(&["a", "b", "c", "d", "e"], &three);
        for m in ["a", "b", "c", "d", "e"] {
            assert!((6..=7).contains(&counts(&five, m)), "{m}: {five:?}");
        }
        assert_eq!(
            moved(&three, &five),
            counts(&five, "d") + counts(&five, "e")
        );
        let back = assign(&["a", "b", "c"], &five);
        for m in ["a", "b", "c"] {
            assert!((10..=11).contains(&counts(&back, m)), "{m}: {back:?}");
        }
        assert_eq!(moved(&five, &back), counts(&five, "d") + counts(&five, "e"));
    }

    #[test]
    fn a_holder_that_is_not_a_member_counts_as_none() {
        let held = vec![Some("gone"); 4];
        let t = assign(&["a"], &held);
        assert_eq!(t, vec![Some("a"); 4]);
    }

    #[test]
    fn without_members_nobody_holds_anything() {
        assert_eq!(assign(&[], &[Some("a"), None]), vec![None, None]);
    }

    #[test]
    fn more_members_than_buckets_leaves_some_idle() {
        let t = assign(&["a", "b", "c"], &[None, None]);
        assert_eq!(t.iter().flatten().count(), 2);
        assert_ne!(t[0], t[1]);
    }
}
