//! Members of each placement group per failure domain, so a group check is one lookup.

use std::collections::BTreeMap;

/// `(group, domain)` → members there. Domains are host or rack indices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupCounts {
    counts: BTreeMap<(u32, u32), u32>,
}

impl GroupCounts {
    /// Members of `group` in `domain`.
    pub(crate) fn get(&self, group: u32, domain: u32) -> u32 {
        self.counts.get(&(group, domain)).copied().unwrap_or(0)
    }

    pub(crate) fn add(&mut self, group: u32, domain: u32) {
        *self.counts.entry((group, domain)).or_insert(0) += 1;
    }

    pub(crate) fn sub(&mut self, group: u32, domain: u32) {
        if let Some(n) = self.counts.get_mut(&(group, domain)) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&(group, domain));
            }
        }
    }
}
