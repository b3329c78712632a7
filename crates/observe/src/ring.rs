//! A bounded ring of records with a monotonic cursor, so a follower (`/v1/flows?follow`) asks "what came
//! after cursor N" and is told how many it missed when the ring moved past it, never left with a silent gap.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The default capacity: 16k records (OBSERVABILITY.md §4.4, about 5 MB of joined records).
pub const DEFAULT_CAPACITY: usize = 16 * 1024;

/// The newest `capacity` items, numbered from 1 in the order they were pushed.
#[derive(Clone, Debug)]
pub struct Ring<T> {
    capacity: usize,
    items: VecDeque<T>,
    /// The cursor of `items[0]`.
    first: u64,
}

/// What a follower gets for "after cursor N".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// Items with their cursors, oldest first.
    pub items: Vec<(u64, T)>,
    /// The cursor to ask after next time: the last item's, or the one asked after when there was none.
    pub next: u64,
    /// Items after the asked cursor that the ring no longer holds.
    pub missed: u64,
    /// The asked cursor is beyond anything this ring has numbered (it came from an earlier process):
    /// the page starts from the oldest item held.
    pub stale: bool,
}

impl<T> Ring<T> {
    /// A ring of at least one item.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Ring { capacity, items: VecDeque::with_capacity(capacity.min(4096)), first: 1 }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends an item, evicting the oldest when full; returns its cursor.
    pub fn push(&mut self, item: T) -> u64 {
        if self.items.len() == self.capacity {
            self.items.pop_front();
            self.first += 1;
        }
        self.items.push_back(item);
        self.latest()
    }

    /// The newest item's cursor (0 before any push).
    pub fn latest(&self) -> u64 {
        self.first + self.items.len() as u64 - 1
    }

    /// The oldest held item's cursor (`latest() + 1` when empty).
    pub fn oldest(&self) -> u64 {
        self.first
    }

    /// Up to `max` items after `cursor` (0 asks for everything held).
    pub fn after(&self, cursor: u64, max: usize) -> Page<&T> {
        let latest = self.latest();
        let stale = cursor > latest;
        let from = if stale { self.first } else { cursor.saturating_add(1).max(self.first) };
        let missed = if stale { 0 } else { self.first.saturating_sub(cursor.saturating_add(1)) };
        let skip = usize::try_from(from - self.first).unwrap_or(usize::MAX);
        let items: Vec<(u64, &T)> = self.items.iter().skip(skip).take(max).zip(from..).map(|(t, c)| (c, t)).collect();
        let next = items.last().map_or(if stale { latest } else { cursor }, |(c, _)| *c);
        Page { items, next, missed, stale }
    }
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring::new(DEFAULT_CAPACITY)
    }
}

/// A ring shared between the thread that publishes records and the followers that read them.
#[derive(Debug, Default)]
pub struct SharedRing<T> {
    ring: Mutex<Ring<T>>,
    changed: Condvar,
}

impl<T: Clone> SharedRing<T> {
    pub fn new(capacity: usize) -> Self {
        SharedRing { ring: Mutex::new(Ring::new(capacity)), changed: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring<T>> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends items under one lock and wakes the followers; returns the newest cursor.
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> u64 {
        let latest = {
            let mut ring = self.lock();
            items.into_iter().for_each(|t| {
                ring.push(t);
            });
            ring.latest()
        };
        self.changed.notify_all();
        latest
    }

    pub fn push(&self, item: T) -> u64 {
        self.extend([item])
    }

    pub fn latest(&self) -> u64 {
        self.lock().latest()
    }

    /// Up to `max` items after `cursor`, cloned.
    pub fn after(&self, cursor: u64, max: usize) -> Page<T> {
        clone_page(self.lock().after(cursor, max))
    }

    /// Like [`after`](Self::after), but waits up to `timeout` for something to come after `cursor`.
    pub fn wait_after(&self, cursor: u64, max: usize, timeout: Duration) -> Page<T> {
        let deadline = Instant::now() + timeout;
        let mut ring = self.lock();
        loop {
            let page = ring.after(cursor, max);
            let now = Instant::now();
            if !page.items.is_empty() || page.missed > 0 || now >= deadline {
                return clone_page(page);
            }
            ring = self.changed.wait_timeout(ring, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

fn clone_page<T: Clone>(p: Page<&T>) -> Page<T> {
    Page {
        items: p.items.into_iter().map(|(c, t)| (c, t.clone())).collect(),
        next: p.next,
        missed: p.missed,
        stale: p.stale,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn cursors<T>(p: &Page<T>) -> Vec<u64> {
        p.items.iter().map(|(c, _)| *c).collect()
    }

    #[test]
    fn cursors_count_from_one_and_pages_follow() {
        let mut r = Ring::new(4);
        assert_eq!((r.latest(), r.oldest()), (0, 1));
        assert_eq!(r.after(0, 10), Page { items: vec![], next: 0, missed: 0, stale: false });
        assert_eq!(r.push("a"), 1);
        assert_eq!(r.push("b"), 2);
        assert_eq!(r.push("c"), 3);
        let p = r.after(0, 2);
        assert_eq!((p.items.clone(), p.next, p.missed), (vec![(1, &"a"), (2, &"b")], 2, 0));
        let p = r.after(p.next, 2);
        assert_eq!((cursors(&p), p.next), (vec![3], 3));
        let p = r.after(3, 2);
        assert_eq!((cursors(&p), p.next, p.missed, p.stale), (vec![], 3, 0, false));
    }

    #[test]
    fn a_follower_left_behind_is_told_what_it_missed() {
        let mut r = Ring::new(3);
        for i in 0..10 {
            r.push(i);
        }
        assert_eq!((r.oldest(), r.latest(), r.len()), (8, 10, 3));
        let p = r.after(2, 10);
        assert_eq!((cursors(&p), p.missed, p.next), (vec![8, 9, 10], 5, 10));
        let p = r.after(0, 10);
        assert_eq!((cursors(&p), p.missed), (vec![8, 9, 10], 7));
        let p = r.after(7, 1);
        assert_eq!((cursors(&p), p.missed, p.next), (vec![8], 0, 8));
        assert_eq!(p.items[0].1, &7);
    }

    #[test]
    fn a_cursor_from_an_earlier_process_restarts_from_the_oldest() {
        let mut r = Ring::new(3);
        r.push('x');
        r.push('y');
        let p = r.after(500, 10);
        assert_eq!((cursors(&p), p.stale, p.next, p.missed), (vec![1, 2], true, 2, 0));
        let empty: Ring<u8> = Ring::new(3);
        let p = empty.after(500, 10);
        assert_eq!((p.stale, p.next), (true, 0));
    }

    #[test]
    fn a_follower_waits_for_the_next_record() {
        let ring = Arc::new(SharedRing::new(8));
        ring.push(1u32);
        let r = Arc::clone(&ring);
        let follower = std::thread::spawn(move || r.wait_after(1, 10, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        ring.extend([2, 3]);
        let p = follower.join().unwrap();
        assert_eq!(p.items, vec![(2, 2), (3, 3)]);
        let p = ring.wait_after(3, 10, Duration::from_millis(20));
        assert_eq!((p.items, p.next), (vec![], 3));
    }
}
