//! Object names as Kubernetes checks them: a DNS-1123 label (at most 63 lower-case
//! letters, digits and `-`, starting and ending with a letter or digit) or a DNS-1123
//! subdomain (labels joined by `.`, at most 253 characters). Each Kubernetes kind uses the
//! rule the API server applies to it; Plinth's kinds, host classes, racks and node pools
//! use the label rule their documentation states, since they become parts of node and
//! host names.

use std::fmt;

/// Which naming rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
    Label,
    /// A DNS-1123 subdomain: labels joined by `.`, at most 253 characters.
    Subdomain,
}

impl NameRule {
    /// The longest name the rule accepts.
    pub const fn max_len(self) -> usize {
        match self {
            Self::Label => 63,
            Self::Subdomain => 253,
        }
    }
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Label => {
                "a DNS-1123 label: at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit"
            }
            Self::Subdomain => {
                "a DNS-1123 subdomain: at most 253 lower-case letters, digits, `-` and `.`, each dot-separated part starting and ending with a letter or digit"
            }
        })
    }
}

/// Why a name breaks its rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("is empty")]
    Empty,
    /// The name is longer than the rule allows.
    #[error("is {len} characters long, more than {max}")]
    TooLong {
        /// Its length in characters.
        len: usize,
        /// The most the rule allows.
        max: usize,
    },
    /// A character the rule does not allow.
    #[error(
        "has {found:?} at character {at}, where only lower-case letters, digits{allowed} are allowed"
    )]
    Character {
        /// The character.
        found: char,
        /// Its 1-based position.
        at: usize,
        /// The punctuation the rule allows.
        allowed: &'static str,
    },
    /// A part starts or ends with `-`, or is empty (`a..b`, `.a`).
    #[error("has a part that is empty or starts or ends with `-`")]
    Edge,
}

fn label_chars_ok(part: &str) -> bool {
    !part.is_empty() && !part.starts_with('-') && !part.ends_with('-')
}

/// The error for `name` of `what` (at `at`) breaking `rule`, if it does; the name is
/// quoted as an excerpt.
pub(crate) fn diagnostic(
    name: &str,
    rule: NameRule,
    what: &str,
    at: impl FnOnce() -> crate::Location,
) -> Option<crate::Diagnostic> {
    check(name, rule).err().map(|e| {
        crate::Diagnostic::error(at(), format!("{what} `{}` {e}", crate::diag::excerpt(name)))
            .with_help(format!("a name must be {rule}"))
    })
}

/// Checks `name` against `rule`. Linear in the name's length.
pub fn check(name: &str, rule: NameRule) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let len = name.chars().count();
    if len > rule.max_len() {
        return Err(NameError::TooLong {
            len,
            max: rule.max_len(),
        });
    }
    let allowed = match rule {
        NameRule::Label => " and `-`",
        NameRule::Subdomain => ", `-` and `.`",
    };
    if let Some((i, c)) = name.chars().enumerate().find(|&(_, c)| {
        !(c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '-'
            || (c == '.' && rule == NameRule::Subdomain))
    }) {
        return Err(NameError::Character {
            found: c,
            at: i + 1,
            allowed,
        });
    }
    if name.split('.').all(label_chars_ok) {
        Ok(())
    } else {
        Err(NameError::Edge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains_as_kubernetes_checks_them() {
        assert_eq!(check("web-1", NameRule::Label), Ok(()));
        assert_eq!(check("api.v2", NameRule::Subdomain), Ok(()));
        assert!(matches!(
            check("api.v2", NameRule::Label),
            Err(NameError::Character {
                found: '.',
                at: 4,
                ..
            })
        ));
        assert_eq!(check("-web", NameRule::Label), Err(NameError::Edge));
        assert_eq!(check("a..b", NameRule::Subdomain), Err(NameError::Edge));
        assert!(matches!(
            check("Web", NameRule::Label),
            Err(NameError::Character { found: 'W', .. })
        ));
        for bad in ["../etc", "a/b", "café", "<b>x</b>"] {
            assert!(check(bad, NameRule::Subdomain).is_err(), "{bad}");
        }
        assert_eq!(
            check(&"a".repeat(64), NameRule::Label),
            Err(NameError::TooLong { len: 64, max: 63 })
        );
        assert_eq!(check(&"a".repeat(253), NameRule::Subdomain), Ok(()));
    }
}
