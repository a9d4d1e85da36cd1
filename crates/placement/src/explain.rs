//! Why something could not be placed, aggregated over candidates the way kube-scheduler
//! reports it: `0/24 hosts: 16 insufficient memory, 8 placement group prod-cp already on host`.

use std::collections::BTreeMap;
use std::fmt;

/// The per-candidate reasons a placement failed, counted by reason text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Explanation {
    /// What the candidates are, plural (`hosts`, `nodes`, `servers`).
    pub noun: &'static str,
    /// How many candidates were examined.
    pub candidates: usize,
    /// Reason text → number of candidates rejected for it (a candidate counts once, under
    /// the first filter that rejected it).
    pub reasons: BTreeMap<String, usize>,
}

impl Explanation {
    /// An empty explanation over `candidates` candidates called `noun`.
    pub fn new(noun: &'static str, candidates: usize) -> Self {
        Self {
            noun,
            candidates,
            reasons: BTreeMap::new(),
        }
    }

    /// Counts one candidate rejected for `reason`.
    pub fn reject(&mut self, reason: impl Into<String>) {
        *self.reasons.entry(reason.into()).or_insert(0) += 1;
    }
}

impl fmt::Display for Explanation {
    /// Most frequent reason first; equal counts in reason order, so the text is stable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} {} are available", self.candidates, self.noun)?;
        let mut reasons: Vec<_> = self.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (i, (reason, count)) in reasons.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{count} {reason}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_kube_scheduler() {
        let mut e = Explanation::new("hosts", 24);
        for _ in 0..8 {
            e.reject("placement group prod-cp already on host");
        }
        for _ in 0..16 {
            e.reject("insufficient memory");
        }
        assert_eq!(
            e.to_string(),
            "0/24 hosts are available: 16 insufficient memory, 8 placement group prod-cp already on host"
        );
    }
}
