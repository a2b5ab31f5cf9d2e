//! A preallocated set of small indices with O(1) insert, remove and dense iteration: the
//! engine's lists of channels that need work this tick (so idle channels cost nothing).

/// Marker for "not in the list" in the position table.
const ABSENT: u32 = u32::MAX;

/// A set of indices `0..capacity`, stored densely for iteration.
///
/// # Real-time
/// `insert`, `remove` and `contains` are O(1) and never allocate (both tables are sized at
/// construction for every possible member).
#[derive(Debug, Clone)]
pub(crate) struct ActiveList {
    items: Vec<u32>,
    pos: Vec<u32>,
}

impl ActiveList {
    /// An empty set able to hold every index below `capacity`.
    pub(crate) fn new(capacity: usize) -> Self {
        ActiveList { items: Vec::with_capacity(capacity), pos: vec![ABSENT; capacity] }
    }

    /// Whether `i` is in the set.
    #[inline]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.pos[i] != ABSENT
    }

    /// Add `i` (no effect when present).
    #[inline]
    pub(crate) fn insert(&mut self, i: usize) {
        if self.pos[i] == ABSENT {
            self.pos[i] = self.items.len() as u32;
            // Capacity is the size of the index space and every index is present at most
            // once, so this push never reallocates.
            self.items.push(i as u32);
        }
    }

    /// Remove `i` (no effect when absent). The last member takes its place.
    #[inline]
    pub(crate) fn remove(&mut self, i: usize) {
        let p = self.pos[i];
        if p != ABSENT {
            let last = self.items.pop().expect("a present member implies a non-empty list");
            if last as usize != i {
                self.items[p as usize] = last;
                self.pos[last as usize] = p;
            }
            self.pos[i] = ABSENT;
        }
    }

    /// Number of members.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The member at dense position `k` (`k < len()`).
    #[inline]
    pub(crate) fn get(&self, k: usize) -> usize {
        self.items[k] as usize
    }

    /// The members, in no particular order.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u32] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::ActiveList;

    #[test]
    fn insert_remove_keeps_set_semantics() {
        let mut l = ActiveList::new(10);
        for i in [3, 7, 1, 3, 9] {
            l.insert(i);
        }
        assert_eq!(l.len(), 4);
        l.remove(7);
        l.remove(7);
        assert!(!l.contains(7));
        let mut v: Vec<u32> = l.as_slice().to_vec();
        v.sort_unstable();
        assert_eq!(v, vec![1, 3, 9]);
        l.remove(9);
        l.remove(1);
        l.remove(3);
        assert_eq!(l.len(), 0);
        l.insert(0);
        assert_eq!(l.get(0), 0);
        assert_eq!(l.items.capacity(), 10);
    }
}
