//! A bounded set remembering the most recent items (which blocks a peer knows).

use std::{
    collections::{HashSet, VecDeque},
    hash::Hash,
};

/// Remembers up to `capacity` items; the oldest is forgotten first.
#[derive(Debug)]
pub(crate) struct BoundedSet<T> {
    order: VecDeque<T>,
    set: HashSet<T>,
    capacity: usize,
}

impl<T: Hash + Eq + Copy> BoundedSet<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::with_capacity(capacity),
            set: HashSet::with_capacity(capacity),
            capacity,
        }
    }

    /// Inserts `item`; returns whether it was new.
    pub(crate) fn insert(&mut self, item: T) -> bool {
        if !self.set.insert(item) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(item);
        true
    }

    /// Forgets `item`; returns whether it was there.
    pub(crate) fn remove(&mut self, item: &T) -> bool {
        let found = self.set.remove(item);
        if found {
            self.order.retain(|i| i != item);
        }
        found
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forgets_the_oldest() {
        let mut s = super::BoundedSet::new(3);
        for i in 0..5 {
            assert!(s.insert(i));
        }
        assert!(!s.insert(4));
        assert!(!s.contains(&1) && s.contains(&2) && s.contains(&4));
    }
}
