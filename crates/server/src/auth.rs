//! Bearer tokens with roles, from a file of hashed tokens.
//!
//! The file holds one token per line, `ROLE NAME sha256:HEX`: the role, a name for audit
//! events, and the SHA-256 of the secret (the secret itself is never stored). `#` starts
//! a comment. `plinth serve` writes a file with one admin token when none is given.

use std::fmt;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ServeError;
use crate::kinds::Resource;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read and watch everything.
    Reader,
    /// Also write clusters, workloads, VM sets, scenarios and price sheets.
    Operator,
    /// Also write the Inventory and the Environments: the pool itself.
    Admin,
}

impl Role {
    fn parse(word: &str) -> Option<Self> {
        match word {
            "reader" => Some(Self::Reader),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The role a write of `resource` needs.
    pub fn to_write(resource: Resource) -> Self {
        match resource {
            Resource::Inventory | Resource::Environment => Self::Admin,
            _ => Self::Operator,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reader => "reader",
            Self::Operator => "operator",
            Self::Admin => "admin",
        })
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// The tokens the server accepts.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<(String, Principal)>,
}

fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.trim().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Tokens {
    /// Reads a tokens file.
    ///
    /// # Errors
    /// When it cannot be read, or a line is not `ROLE NAME sha256:HEX`.
    pub fn load(path: &Path) -> Result<Self, ServeError> {
        let text =
            std::fs::read_to_string(path).map_err(crate::io("reading the tokens file", path))?;
        Self::parse(&text).map_err(|(line, message)| ServeError::Tokens {
            path: path.to_owned(),
            line,
            message,
        })
    }

    /// Parses a tokens file's text; the failing line (from 1) and why.
    ///
    /// # Errors
    /// When a line is not `ROLE NAME sha256:HEX`.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [role, name, digest] = fields[..] else {
                return Err((i + 1, "expected `ROLE NAME sha256:HEX`".to_owned()));
            };
            let role = Role::parse(role).ok_or_else(|| {
                (
                    i + 1,
                    format!("unknown role `{role}`: use reader, operator or admin"),
                )
            })?;
            let hex = digest
                .strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| {
                    (
                        i + 1,
                        "the third field must be `sha256:` and 64 hex digits (`plinth serve token` makes one)"
                            .to_owned(),
                    )
                })?;
            entries.push((
                hex.to_ascii_lowercase(),
                Principal {
                    name: name.to_owned(),
                    role,
                },
            ));
        }
        Ok(Self { entries })
    }

    /// The principal a bearer secret belongs to.
    pub fn authenticate(&self, secret: &str) -> Option<&Principal> {
        let digest = hash(secret);
        self.entries
            .iter()
            .find(|(h, _)| *h == digest)
            .map(|(_, p)| p)
    }

    /// A new random secret for `role` and `name`, and its line for a tokens file.
    pub fn generate(role: Role, name: &str) -> (String, String) {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let line = format!("{role} {name} sha256:{}", hash(&secret));
        (secret, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_authenticates_as_its_role_and_nothing_else_does() {
        let (secret, line) = Tokens::generate(Role::Operator, "ci");
        let tokens = Tokens::parse(&format!("# tokens\n{line}\n")).expect("parse");
        let who = tokens.authenticate(&secret).expect("known");
        assert_eq!((who.name.as_str(), who.role), ("ci", Role::Operator));
        assert!(tokens.authenticate("not-it").is_none());
        assert!(!line.contains(&secret), "only the hash is stored");
    }

    #[test]
    fn malformed_lines_name_their_line_and_fix() {
        let err = Tokens::parse("admin a sha256:00\n").expect_err("short digest");
        assert_eq!(err.0, 1);
        let err = Tokens::parse("\nroot a sha256:x\n").expect_err("role");
        assert_eq!(err.0, 2);
        assert!(err.1.contains("reader, operator or admin"), "{}", err.1);
    }
}
