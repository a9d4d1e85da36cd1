//! Means, 95 % confidence intervals (Student's t) and paired differences.

use serde::Serialize;

/// A mean with its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Sample mean.
    pub mean: f64,
    /// Lower end of the 95 % interval.
    pub low: f64,
    /// Upper end of the 95 % interval.
    pub high: f64,
}

impl Estimate {
    /// Whether the interval lies entirely on one side of zero.
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// Two-sided 95 % critical values of Student's t for 1–30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The two-sided 95 % critical value of t with `df` degrees of freedom: the table up to 30,
/// beyond it the Cornish–Fisher expansion around z = 1.959964 (error < 1e-4 there).
pub fn t95(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T95[df - 1],
        _ => {
            let (z, v) = (1.959_964f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * v)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        }
    }
}

/// Mean and 95 % interval of `samples` (zero width for one sample or none).
pub fn estimate(samples: &[f64]) -> Estimate {
    let n = samples.len();
    if n == 0 {
        return Estimate {
            mean: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Estimate {
            mean,
            low: mean,
            high: mean,
        };
    }
    // Identical samples (a static metric) have no spread, whatever the rounding of the mean.
    if samples.iter().all(|x| *x == samples[0]) {
        return Estimate {
            mean: samples[0],
            low: samples[0],
            high: samples[0],
        };
    }
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t95(n - 1) * (var / n as f64).sqrt();
    Estimate {
        mean,
        low: mean - half,
        high: mean + half,
    }
}

/// The paired difference `a[i] − b[i]`, estimated over the pairs.
pub fn paired(a: &[f64], b: &[f64]) -> Estimate {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    estimate(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_of_a_known_sample() {
        // mean 5, s = sqrt(2.5), n = 5: half-width 2.776 * sqrt(2.5 / 5).
        let e = estimate(&[3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(e.mean, 5.0);
        assert!((e.high - 5.0 - 2.776 * 0.5f64.sqrt()).abs() < 1e-9);
        assert!(e.excludes_zero());
    }

    #[test]
    fn t_beyond_the_table_matches_published_values() {
        // t(0.975; 31) = 2.0395, t(0.975; 60) = 2.0003, t(0.975; 120) = 1.9799.
        for (df, t) in [(31, 2.0395), (60, 2.0003), (120, 1.9799)] {
            assert!((t95(df) - t).abs() < 2e-4, "df {df}: {}", t95(df));
        }
    }

    #[test]
    fn constant_samples_have_a_zero_width_interval() {
        let e = estimate(&[2.0; 8]);
        assert_eq!((e.low, e.high), (2.0, 2.0));
        assert!(!estimate(&[0.0; 4]).excludes_zero());
    }

    #[test]
    fn pairing_removes_shared_noise() {
        let a = [10.0, 20.0, 30.0, 40.0];
        let b = [9.0, 19.0, 29.0, 39.0];
        let d = paired(&a, &b);
        assert_eq!((d.mean, d.low, d.high), (1.0, 1.0, 1.0));
        assert!(!estimate(&a).excludes_zero() || estimate(&a).low > 0.0);
    }
}
