//! Members of each placement group per failure domain, so a group check is one lookup,
//! and the fewest members any domain of a group has, so a soft group's search can stop at
//! the first host that reaches it.

/// One group's members per domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Group {
    /// Members per domain; empty while the group has none (so equal counts compare equal).
    per_domain: Vec<u32>,
    /// Domains with at least one member.
    occupied: u32,
    /// `by_count[k - 1]`: domains with exactly `k` members; no trailing zero.
    by_count: Vec<u32>,
}

impl Group {
    fn count(&mut self, k: u32, delta: i32) {
        if k == 0 {
            return;
        }
        let at = k as usize - 1;
        if self.by_count.len() <= at {
            self.by_count.resize(at + 1, 0);
        }
        self.by_count[at] = self.by_count[at].saturating_add_signed(delta);
        while self.by_count.last() == Some(&0) {
            self.by_count.pop();
        }
    }
}

/// `(group, domain)` → members there. Domains are host or rack indices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupCounts {
    groups: Vec<Group>,
    /// Domains per group (hosts or racks of the pool).
    domains: Vec<u32>,
}

impl GroupCounts {
    /// No members yet, for groups of `domains[g]` domains each.
    pub(crate) fn new(domains: Vec<u32>) -> Self {
        Self {
            groups: vec![Group::default(); domains.len()],
            domains,
        }
    }

    /// Members of `group` in `domain`.
    pub(crate) fn get(&self, group: u32, domain: u32) -> u32 {
        self.groups
            .get(group as usize)
            .and_then(|g| g.per_domain.get(domain as usize))
            .copied()
            .unwrap_or(0)
    }

    /// The fewest members any domain of `group` has: no host's domain has fewer.
    pub(crate) fn fewest(&self, group: u32) -> u32 {
        let (Some(g), Some(&domains)) = (
            self.groups.get(group as usize),
            self.domains.get(group as usize),
        ) else {
            return 0;
        };
        if g.occupied < domains {
            return 0;
        }
        g.by_count
            .iter()
            .position(|&n| n > 0)
            .map_or(0, |at| at as u32 + 1)
    }

    pub(crate) fn add(&mut self, group: u32, domain: u32) {
        let Some(&domains) = self.domains.get(group as usize) else {
            return;
        };
        let g = &mut self.groups[group as usize];
        if g.per_domain.is_empty() {
            g.per_domain = vec![0; domains as usize];
        }
        let Some(n) = g.per_domain.get_mut(domain as usize) else {
            return;
        };
        let before = *n;
        *n += 1;
        if before == 0 {
            g.occupied += 1;
        }
        g.count(before, -1);
        g.count(before + 1, 1);
    }

    pub(crate) fn sub(&mut self, group: u32, domain: u32) {
        let Some(g) = self.groups.get_mut(group as usize) else {
            return;
        };
        let Some(n) = g.per_domain.get_mut(domain as usize).filter(|n| **n > 0) else {
            return;
        };
        let before = *n;
        *n -= 1;
        g.count(before, -1);
        g.count(before - 1, 1);
        if before == 1 {
            g.occupied -= 1;
            if g.occupied == 0 {
                *g = Group::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewest_is_zero_until_every_domain_has_a_member_then_the_least_count() {
        let mut c = GroupCounts::new(vec![3]);
        assert_eq!(c.fewest(0), 0);
        for d in [0, 1, 1, 2, 2] {
            c.add(0, d);
        }
        assert_eq!((c.get(0, 1), c.fewest(0)), (2, 1));
        c.add(0, 0);
        assert_eq!(c.fewest(0), 2);
        c.sub(0, 2);
        assert_eq!(c.fewest(0), 1);
        for d in [0, 0, 1, 1, 2] {
            c.sub(0, d);
        }
        assert_eq!(c, GroupCounts::new(vec![3]), "emptied is as new");
        c.sub(0, 0);
        assert_eq!(c.get(0, 0), 0);
    }
}
