//! Seeded failure processes. Each host has its own stream keyed by (seed, host class,
//! index within the class), so adding a host of another class or a cluster does not shift
//! any other host's failures, and both designs see the same failures on the same servers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp, Weibull};
use sha2::{Digest, Sha256};

use plinth_model::kinds::scenario::{Distribution, HostFailures};

/// A stable 64-bit seed from the run seed and a stream name.
pub(crate) fn stream_seed(seed: u64, stream: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(stream.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// Γ(x) for x > 0 (Lanczos, g = 7), for the Weibull scale from a mean.
fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x));
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut a = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

/// The failure process of one host: times between failures with the model's mean (MTBF),
/// exponential or Weibull with the model's shape; a fixed repair time.
#[derive(Clone, Debug)]
pub struct FailureStream {
    rng: ChaCha8Rng,
    model: HostFailures,
}

impl FailureStream {
    /// The stream of host `index` (within its class) of class `class`.
    pub fn new(seed: u64, class: &str, index: usize, model: HostFailures) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(stream_seed(seed, &format!("host/{class}/{index}"))),
            model,
        }
    }

    /// Milliseconds of operation until the next failure.
    pub fn time_to_failure(&mut self) -> u64 {
        let mean = self.model.mtbf.millis().max(1) as f64;
        let x = match self.model.distribution {
            Distribution::Exponential => Exp::new(1.0 / mean)
                .map(|d| d.sample(&mut self.rng))
                .unwrap_or(mean),
            Distribution::Weibull => {
                let k = if self.model.shape > 0.0 {
                    self.model.shape
                } else {
                    1.0
                };
                let scale = mean / gamma(1.0 + 1.0 / k);
                Weibull::new(scale, k)
                    .map(|d| d.sample(&mut self.rng))
                    .unwrap_or(mean)
            }
        };
        (x.max(1.0)).min(u64::MAX as f64 / 2.0) as u64
    }

    /// Milliseconds a failed host stays down.
    pub fn repair_time(&self) -> u64 {
        self.model.repair_time.millis()
    }

    /// A Bernoulli draw with probability `p` (fencing).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random::<f64>() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_matches_known_values() {
        assert!((gamma(1.0) - 1.0).abs() < 1e-9);
        assert!((gamma(5.0) - 24.0).abs() < 1e-7);
        assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn streams_are_keyed_and_means_hold() {
        let m = HostFailures::default();
        let a: Vec<u64> = (0..5)
            .map(|_| 0)
            .scan(FailureStream::new(1, "c", 0, m), |s, _| {
                Some(s.time_to_failure())
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map(|_| 0)
            .scan(FailureStream::new(1, "c", 0, m), |s, _| {
                Some(s.time_to_failure())
            })
            .collect();
        let c: Vec<u64> = (0..5)
            .map(|_| 0)
            .scan(FailureStream::new(1, "c", 1, m), |s, _| {
                Some(s.time_to_failure())
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        for dist in [Distribution::Exponential, Distribution::Weibull] {
            let mut s = FailureStream::new(
                7,
                "c",
                0,
                HostFailures {
                    distribution: dist,
                    ..m
                },
            );
            let n = 20_000;
            let mean = (0..n).map(|_| s.time_to_failure() as f64).sum::<f64>() / n as f64;
            let want = m.mtbf.millis() as f64;
            assert!(
                (mean / want - 1.0).abs() < 0.05,
                "{dist:?}: {mean} vs {want}"
            );
        }
    }
}
