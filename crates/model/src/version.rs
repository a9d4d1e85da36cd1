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
