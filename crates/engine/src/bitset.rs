//! A fixed-size set of small integers (pod ids), one bit each.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BitSet {
    words: Vec<u64>,
    len: usize,
}

impl BitSet {
    pub fn new(len: usize) -> Self {
        BitSet { words: vec![0; len.div_ceil(64)], len }
    }

    /// A set of no elements and length 0 (usable in a `static`).
    pub const fn empty() -> Self {
        BitSet { words: Vec::new(), len: 0 }
    }

    pub fn full(len: usize) -> Self {
        let mut s = BitSet { words: vec![u64::MAX; len.div_ceil(64)], len };
        s.trim();
        s
    }

    fn trim(&mut self) {
        let rem = self.len % 64;
        if rem != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << rem) - 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub fn remove(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }

    /// Adds (`value`) or removes element `i`, growing the set when `i` is beyond it.
    pub fn set(&mut self, i: usize, value: bool) {
        if value {
            if i >= self.len {
                self.len = i + 1;
                self.words.resize(self.len.div_ceil(64), 0);
            }
            self.insert(i);
        } else if i < self.len {
            self.remove(i);
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn union_with(&mut self, other: &BitSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// `self |= a & b`
    pub fn union_with_intersection(&mut self, a: &BitSet, b: &BitSet) {
        for ((s, x), y) in self.words.iter_mut().zip(&a.words).zip(&b.words) {
            *s |= x & y;
        }
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }
}

/// Transposes a 64×64 bit block in place (row k, bit c) → (row c, bit k).
fn transpose64(a: &mut [u64; 64]) {
    let mut j = 32;
    let mut m: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// Transposes a square bit matrix given as rows (`rows[i]` has bit j set ⇔ entry (i, j)).
///
/// Block rows are taken eight at a time, so each cache line of an output row (eight words) is filled while it
/// is hot and the input lines read stay within a few tens of kilobytes, whatever the size.
pub fn transpose(rows: &[&BitSet]) -> Vec<BitSet> {
    const GROUP: usize = 8;
    let n = rows.len();
    let blocks = n.div_ceil(64);
    let mut out: Vec<BitSet> = (0..n).map(|_| BitSet::new(n)).collect();
    let mut block = [0u64; 64];
    for group in (0..blocks).step_by(GROUP) {
        for bj in 0..blocks {
            for bi in group..(group + GROUP).min(blocks) {
                let first = bi * 64;
                let height = (n - first).min(64);
                for (b, r) in block.iter_mut().zip(&rows[first..first + height]) {
                    *b = r.words[bj];
                }
                block[height..].fill(0);
                if block.iter().all(|w| *w == 0) {
                    continue;
                }
                transpose64(&mut block);
                let width = (n - bj * 64).min(64);
                for (r, w) in out[bj * 64..bj * 64 + width].iter_mut().zip(&block) {
                    r.words[bi] = *w;
                }
            }
        }
    }
    for r in &mut out {
        r.trim();
    }
    out
}

impl BitSet {
    /// `self &= other`
    pub fn intersect_with(&mut self, other: &BitSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// `self &= !other`
    pub fn subtract(&mut self, other: &BitSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_naive() {
        // Partial blocks, and more block rows than one group of eight (with a partial last group).
        for n in [150, 64 * 9 + 5] {
            let mut rows: Vec<BitSet> = (0..n).map(|_| BitSet::new(n)).collect();
            let mut x: u64 = 12345;
            for (i, r) in rows.iter_mut().enumerate() {
                for j in 0..n {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if (x >> 33).is_multiple_of(3) || i == j {
                        r.insert(j);
                    }
                }
            }
            let t = transpose(&rows.iter().collect::<Vec<_>>());
            for (i, row) in rows.iter().enumerate() {
                for (j, col) in t.iter().enumerate() {
                    assert_eq!(row.contains(j), col.contains(i), "n={n} ({i},{j})");
                }
            }
        }
    }

    #[test]
    fn basics() {
        let mut s = BitSet::new(130);
        s.insert(0);
        s.insert(64);
        s.insert(129);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        s.remove(64);
        assert!(!s.contains(64));
        let mut g = BitSet::new(3);
        g.set(200, false);
        assert_eq!(g.len(), 3, "removing what is beyond the set changes nothing");
        g.set(200, true);
        assert_eq!((g.len(), g.iter().collect::<Vec<_>>()), (201, vec![200]));
        assert_eq!(BitSet::full(130).count(), 130);
        let mut u = BitSet::new(130);
        u.union_with_intersection(&BitSet::full(130), &s);
        assert_eq!(u, s);
    }
}

impl BitSet {
    /// Makes room for a new element at position `at`: elements `at..` move up by one, the set grows by one,
    /// and `at` is set to `value`.
    pub fn insert_at(&mut self, at: usize, value: bool) {
        let len = self.len + 1;
        self.words.resize(len.div_ceil(64), 0);
        let first = at / 64;
        // Shift words above `first` left by one bit, carrying the top bit of the word below.
        for w in (first + 1..self.words.len()).rev() {
            self.words[w] = (self.words[w] << 1) | (self.words[w - 1] >> 63);
        }
        let bit = at % 64;
        let low_mask = (1u64 << bit) - 1;
        let word = self.words[first];
        self.words[first] = (word & low_mask) | ((word & !low_mask) << 1) | (u64::from(value) << bit);
        self.len = len;
        self.trim();
    }

    /// Removes position `at`: elements above it move down by one and the set shrinks by one.
    pub fn remove_at(&mut self, at: usize) {
        let first = at / 64;
        let bit = at % 64;
        let low_mask = (1u64 << bit) - 1;
        let n = self.words.len();
        let word = self.words[first];
        let high = if bit == 63 { 0 } else { (word >> 1) & !low_mask };
        self.words[first] = (word & low_mask) | high;
        for w in first..n {
            let carry = self.words.get(w + 1).map_or(0, |x| x & 1);
            if w > first {
                self.words[w] >>= 1;
            }
            self.words[w] |= carry << 63;
        }
        self.len -= 1;
        self.words.truncate(self.len.div_ceil(64));
        self.trim();
    }
}

#[cfg(test)]
mod shift_tests {
    use super::BitSet;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn insert_and_remove_at_move_the_elements_above(bits in proptest::collection::vec(any::<bool>(), 0..200), at in 0usize..201, value: bool) {
            let at = at.min(bits.len());
            let mut s = BitSet::new(bits.len());
            for (i, b) in bits.iter().enumerate() {
                if *b { s.insert(i); }
            }
            let mut expected = bits.clone();
            expected.insert(at, value);
            s.insert_at(at, value);
            prop_assert_eq!(s.len(), expected.len());
            prop_assert_eq!((0..expected.len()).map(|i| s.contains(i)).collect::<Vec<_>>(), expected.clone());
            let mut back = BitSet::new(bits.len());
            for (i, b) in bits.iter().enumerate() {
                if *b { back.insert(i); }
            }
            s.remove_at(at);
            prop_assert_eq!(s, back);
        }
    }
}
