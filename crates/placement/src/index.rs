//! Hosts that are up, ordered by free capacity, so spread takes the emptiest host and pack
//! the fullest one that can still fit, without scanning every host.

use std::collections::BTreeSet;

/// `(free score, tie)` of every host up. The tie is the host's name rank, stored so that the
/// preferred walk (emptiest first for spread, fullest first for pack) meets equal scores in
/// name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FreeIndex {
    set: BTreeSet<(u64, u32)>,
    /// Host → its key while it is in the index.
    key: Vec<Option<(u64, u32)>>,
    /// Name rank → host.
    host_of_rank: Vec<u32>,
    /// Walk from the highest score down (spread) instead of the lowest up (pack).
    emptiest_first: bool,
}

impl FreeIndex {
    pub(crate) fn new(hosts: usize, emptiest_first: bool) -> Self {
        Self {
            set: BTreeSet::new(),
            key: vec![None; hosts],
            host_of_rank: vec![0; hosts],
            emptiest_first,
        }
    }

    fn tie(&self, rank: u32) -> u32 {
        if self.emptiest_first {
            u32::MAX - rank
        } else {
            rank
        }
    }

    fn host(&self, tie: u32) -> u32 {
        let rank = if self.emptiest_first {
            u32::MAX - tie
        } else {
            tie
        };
        self.host_of_rank[rank as usize]
    }

    /// Puts `host` (or moves it) at `score`.
    pub(crate) fn set(&mut self, host: u32, rank: u32, score: u64) {
        self.remove(host);
        let key = (score, self.tie(rank));
        self.set.insert(key);
        self.key[host as usize] = Some(key);
        self.host_of_rank[rank as usize] = host;
    }

    /// Takes `host` out of the index (it is down).
    pub(crate) fn remove(&mut self, host: u32) {
        if let Some(k) = self.key[host as usize].take() {
            self.set.remove(&k);
        }
    }

    /// The host's preference key when it is in the index: larger is better for spread,
    /// smaller for pack, equal scores tie-broken by name either way.
    pub(crate) fn key(&self, host: u32) -> Option<(u64, u32)> {
        self.key[host as usize]
    }

    /// Whether key `a` is preferred over key `b` in this index's walk order.
    pub(crate) fn prefers(&self, a: (u64, u32), b: (u64, u32)) -> bool {
        if self.emptiest_first { a > b } else { a < b }
    }

    /// Hosts in preference order. Spread: emptiest first (`floor` unused). Pack: fullest
    /// first, starting at score `floor` (no host below it can fit).
    pub(crate) fn walk(&self, floor: u64) -> Box<dyn Iterator<Item = u32> + '_> {
        if self.emptiest_first {
            Box::new(self.set.iter().rev().map(|&(_, t)| self.host(t)))
        } else {
            Box::new(self.set.range((floor, 0)..).map(|&(_, t)| self.host(t)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_walks_emptiest_first_ties_by_name() {
        let mut ix = FreeIndex::new(4, true);
        ix.set(0, 3, 10);
        ix.set(1, 0, 10);
        ix.set(2, 1, 5);
        ix.set(3, 2, 20);
        assert_eq!(ix.walk(0).collect::<Vec<_>>(), vec![3, 1, 0, 2]);
        ix.remove(3);
        ix.set(2, 1, 30);
        assert_eq!(ix.walk(0).collect::<Vec<_>>(), vec![2, 1, 0]);
    }

    #[test]
    fn pack_walks_fullest_first_from_floor_ties_by_name() {
        let mut ix = FreeIndex::new(4, false);
        ix.set(0, 3, 10);
        ix.set(1, 0, 10);
        ix.set(2, 1, 5);
        ix.set(3, 2, 20);
        assert_eq!(ix.walk(6).collect::<Vec<_>>(), vec![1, 0, 3]);
        assert!(ix.prefers(ix.key(1).unwrap_or_default(), ix.key(0).unwrap_or_default()));
    }
}
