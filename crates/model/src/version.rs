//! Kubernetes versions as a Cluster and an `upgradeKubernetes` step write them:
//! `1.31`, `1.31.4` or `v1.31.4`, read as numbers so that `"banana"` is refused.

use std::fmt;
use std::str::FromStr;

/// A Kubernetes release: major, minor and (optionally) patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubernetesVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch release, if written.
    pub patch: Option<u32>,
}

/// Why a text is not a Kubernetes version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("is not a Kubernetes version: expected MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.31.4")]
pub struct VersionError;

/// Why a cluster cannot be rolled from one Kubernetes version to another in place (the
/// Kubernetes version skew policy, kubernetes.io/releases/version-skew-policy: the control
/// plane moves one minor version at a time, and never back).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkewError {
    /// More than one minor version ahead.
    #[error(
        "{from} → {to} skips a minor version: Kubernetes upgrades one minor version at a time (version skew policy); roll to {next} first"
    )]
    SkipsMinor {
        /// The version running.
        from: KubernetesVersion,
        /// The version asked for.
        to: KubernetesVersion,
        /// The one minor version ahead to roll to first.
        next: String,
    },
    /// Older than the version running.
    #[error(
        "{from} → {to} is a downgrade: Kubernetes does not support rolling a cluster back; build a new cluster at {to} and move the workloads"
    )]
    Downgrade {
        /// The version running.
        from: KubernetesVersion,
        /// The version asked for.
        to: KubernetesVersion,
    },
    /// Another major version.
    #[error("{from} → {to} changes the major version: no in-place path exists")]
    Major {
        /// The version running.
        from: KubernetesVersion,
        /// The version asked for.
        to: KubernetesVersion,
    },
}

impl KubernetesVersion {
    /// Whether a cluster running `self` may be rolled to `to` in place: the same version,
    /// a newer patch, or the next minor version.
    ///
    /// # Errors
    /// [`SkewError`] naming the rule broken and the way round it.
    pub fn upgrade_to(self, to: Self) -> Result<(), SkewError> {
        let (from, level) = (self, |v: Self| (v.minor, v.patch.unwrap_or(0)));
        if to.major != from.major {
            return Err(SkewError::Major { from, to });
        }
        if level(to) < level(from) {
            return Err(SkewError::Downgrade { from, to });
        }
        if to.minor > from.minor + 1 {
            return Err(SkewError::SkipsMinor {
                from,
                to,
                next: format!("{}.{}", from.major, from.minor + 1),
            });
        }
        Ok(())
    }
}

impl FromStr for KubernetesVersion {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, VersionError> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let number = |part: &str| {
            (!part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u32>().ok())
                .flatten()
                .ok_or(VersionError)
        };
        let mut parts = text.split('.');
        let major = number(parts.next().unwrap_or_default())?;
        let minor = number(parts.next().ok_or(VersionError)?)?;
        let patch = parts.next().map(number).transpose()?;
        if parts.next().is_some() {
            return Err(VersionError);
        }
        Ok(Self {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_rolls_one_minor_version_at_a_time_and_never_back() {
        let v = |t: &str| t.parse::<KubernetesVersion>().expect("version");
        for ok in ["1.31.4", "1.31.9", "1.32.0", "1.32"] {
            assert_eq!(v("1.31.4").upgrade_to(v(ok)), Ok(()), "{ok}");
        }
        let skip = v("1.31.4").upgrade_to(v("1.33.1")).expect_err("skips 1.32");
        assert!(skip.to_string().contains("roll to 1.32 first"), "{skip}");
        assert!(matches!(
            v("1.31.4").upgrade_to(v("1.31.2")),
            Err(SkewError::Downgrade { .. })
        ));
        assert!(matches!(
            v("1.31.4").upgrade_to(v("1.30")),
            Err(SkewError::Downgrade { .. })
        ));
        assert!(matches!(
            v("1.31").upgrade_to(v("2.0")),
            Err(SkewError::Major { .. })
        ));
    }

    #[test]
    fn versions_parse_as_numbers() {
        let v: KubernetesVersion = "v1.31.4".parse().expect("version");
        assert_eq!((v.major, v.minor, v.patch), (1, 31, Some(4)));
        assert_eq!(
            "1.32".parse::<KubernetesVersion>().map(|v| v.to_string()),
            Ok("1.32".into())
        );
        for bad in [
            "banana",
            "",
            "1",
            "1.",
            "1.x",
            "1.2.3.4",
            "1.-2",
            "1.99999999999",
        ] {
            assert_eq!(bad.parse::<KubernetesVersion>(), Err(VersionError), "{bad}");
        }
    }
}
