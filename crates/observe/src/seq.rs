//! Exact loss accounting from NFLOG's per-group sequence numbers (`F_SEQ`).
//!
//! The kernel numbers every packet it logs to a group, from 0 when the group is bound, whether or not the
//! packet reaches the reader (a full socket buffer drops whole batches). A gap between consecutive numbers
//! is exactly the packets lost on the way.

use std::collections::HashMap;

/// The next sequence number expected per group.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    next: HashMap<u16, u32>,
    lost: u64,
}

impl SeqTracker {
    pub fn new() -> Self {
        SeqTracker::default()
    }

    /// Records that packet `seq` of `group` arrived; returns how many were lost just before it. A group
    /// seen for the first time is expected to start at 0 (the reader bound it). A number behind the
    /// expected one (by up to half the u32 space) means the group was bound anew: nothing is counted and
    /// counting restarts from it. Numbers wrap at `u32::MAX`.
    pub fn observe(&mut self, group: u16, seq: u32) -> u64 {
        let expected = self.next.get(&group).copied().unwrap_or(0);
        let gap = seq.wrapping_sub(expected);
        self.next.insert(group, seq.wrapping_add(1));
        let lost = if gap < 1 << 31 { u64::from(gap) } else { 0 };
        self.lost += lost;
        lost
    }

    /// Every packet lost so far, all groups.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_gap_no_loss() {
        let mut t = SeqTracker::new();
        assert_eq!((0..1000).map(|s| t.observe(5, s)).sum::<u64>(), 0);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn gaps_count_exactly() {
        let mut t = SeqTracker::new();
        let seen = [0, 1, 2, 5, 6, 100, 101, 103];
        let lost: Vec<u64> = seen.iter().map(|&s| t.observe(5, s)).collect();
        assert_eq!(lost, vec![0, 0, 0, 2, 0, 93, 0, 1]);
        assert_eq!(t.lost(), 96);
    }

    #[test]
    fn the_first_packets_of_a_group_count_when_missing() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(6, 3), 3);
    }

    #[test]
    fn groups_are_counted_apart() {
        let mut t = SeqTracker::new();
        t.observe(5, 0);
        t.observe(6, 0);
        assert_eq!(t.observe(5, 1), 0);
        assert_eq!(t.observe(6, 4), 3);
        assert_eq!(t.lost(), 3);
    }

    #[test]
    fn wraps_at_u32_max() {
        let mut t = SeqTracker::new();
        // So far behind 0 that it reads as a group bound anew, counting from there.
        assert_eq!(t.observe(5, u32::MAX - 1), 0);
        assert_eq!(t.observe(5, u32::MAX), 0);
        assert_eq!(t.observe(5, 0), 0);
        assert_eq!(t.observe(5, 2), 1);
        assert_eq!(t.lost(), 1);
    }

    #[test]
    fn a_rebound_group_restarts_without_counting() {
        let mut t = SeqTracker::new();
        (0..50).for_each(|s| {
            t.observe(5, s);
        });
        assert_eq!(t.observe(5, 0), 0);
        assert_eq!(t.observe(5, 1), 0);
        assert_eq!(t.lost(), 0);
    }
}
