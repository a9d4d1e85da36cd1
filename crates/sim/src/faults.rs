//! Faults between the control plane and the host agents, for testing the control plane's
//! contract (off by default: `simulate` and `compare` model hardware failures, not a
//! flaky management network).
//!
//! - A *partition* cuts a live host off from the control plane: its heartbeats stop, the
//!   commands sent to its agent are lost, the answers of those in flight are lost, and its
//!   VMs keep running until its agent kills them after `selfFenceTimeout` without contact.
//!   The host's BMC (fencing) and the Kubernetes API (drains) stay reachable.
//! - An agent's *answer* (command completed or failed, inventory) may be lost, delivered
//!   twice, or delayed; answers are delivered in the order they were sent.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp};

use crate::failures::stream_seed;

/// The fault model.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Mean time between partitions of one host, ms (exponential); `None`: never.
    pub partition_mtbf: Option<u64>,
    /// Mean length of a partition, ms (exponential).
    pub partition_mean: u64,
    /// Chance an agent's answer is lost.
    pub answer_loss: f64,
    /// Chance an agent's answer is delivered twice.
    pub duplicate: f64,
    /// Longest extra delay of an agent's answer, ms (uniform).
    pub max_delay: u64,
}

impl Faults {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.partition_mtbf.is_some()
            || self.answer_loss > 0.0
            || self.duplicate > 0.0
            || self.max_delay > 0
    }
}

/// The seeded stream every fault is drawn from, apart from the hosts' failure streams so
/// that turning faults on does not move any hardware failure.
pub(crate) struct FaultStream {
    rng: ChaCha8Rng,
    faults: Faults,
}

/// What happens to one answer.
pub(crate) struct Fate {
    /// Lost on the way.
    pub lost: bool,
    /// Delivered a second time.
    pub duplicated: bool,
    /// Extra delay, ms.
    pub delay: u64,
}

impl FaultStream {
    pub(crate) fn new(seed: u64, faults: Faults) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(stream_seed(seed, "faults")),
            faults,
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Time to the next partition of a host, ms, if partitions are on.
    pub(crate) fn time_to_partition(&mut self) -> Option<u64> {
        let mean = self.faults.partition_mtbf?;
        Some(self.exp(mean))
    }

    /// Length of a partition, ms.
    pub(crate) fn partition_length(&mut self) -> u64 {
        self.exp(self.faults.partition_mean)
    }

    /// The fate of one answer.
    pub(crate) fn answer(&mut self) -> Fate {
        let f = self.faults;
        Fate {
            lost: f.answer_loss > 0.0 && self.rng.random_bool(f.answer_loss.min(1.0)),
            duplicated: f.duplicate > 0.0 && self.rng.random_bool(f.duplicate.min(1.0)),
            delay: if f.max_delay > 0 {
                self.rng.random_range(0..=f.max_delay)
            } else {
                0
            },
        }
    }

    fn exp(&mut self, mean: u64) -> u64 {
        let lambda = 1.0 / mean.max(1) as f64;
        Exp::new(lambda)
            .map_or(mean, |d| d.sample(&mut self.rng) as u64)
            .max(1)
    }
}
