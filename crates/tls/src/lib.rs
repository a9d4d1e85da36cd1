//! Plinth's certificates.
//!
//! - An [`Authority`]: a certificate authority kept in a directory (`ca.crt`, and `ca.key`
//!   readable by its owner only), made on first use, that issues server and client
//!   certificates. `plinth serve --tls` keeps one in its data directory for the API;
//!   `plinth certs` keeps one for the agent link.
//! - PEM files read with errors that name the file.
//! - The agent link's mutual TLS ([`LinkFiles`]): an agent presents a certificate for its
//!   host name and address and accepts only a control plane whose client certificate the
//!   same authority issued; the control plane accepts only an agent whose certificate holds
//!   the address it dialled. The shared token still travels in every frame: TLS proves
//!   who is at either end, the token that the peer is of this estate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub use tokio_rustls::rustls::pki_types::ServerName;
pub use tokio_rustls::rustls::{ClientConfig, ServerConfig};
pub use tokio_rustls::{TlsAcceptor, TlsConnector, client};

/// How long an issued certificate is valid: issue it again (`plinth certs`, or a restart
/// of `plinth serve --tls`) before then.
pub const CERTIFICATE_DAYS: i64 = 365;
/// How long an authority's own certificate is valid.
pub const AUTHORITY_DAYS: i64 = 3650;

/// How long a peer may take over a TLS handshake before its connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why certificates could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file or directory.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not the PEM it should be.
    #[error("{}: {message}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the fix.
        message: String,
    },
    /// A name no certificate can hold.
    #[error("{0:?}: not a DNS name or an IP address")]
    Name(String),
    /// Making a key or a certificate.
    #[error("making a certificate: {0}")]
    Make(#[from] rcgen::Error),
    /// rustls refuses the certificates (a key that does not go with its certificate, an
    /// authority file that holds no usable certificate).
    #[error("the certificates: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the authority.
    #[error("the certificate authority {}: {message}", path.display())]
    Verifier {
        /// The authority's certificate.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TlsError + 'a {
    move |source| TlsError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// What an issued certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (the API, an agent).
    Server,
    /// A TLS client (the control plane, towards its agents).
    Client,
}

/// A certificate authority kept in a directory: `ca.crt` (what peers trust) and `ca.key`.
pub struct Authority {
    name: String,
    key: KeyPair,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// The authority of `dir`, made with its certificate (common name `name`) when `dir`
    /// holds none. Opened again, it must be given the same `name`: its certificates name
    /// their issuer by it. Processes sharing `dir` may open it at once: a new authority is
    /// made in a directory of its own and renamed into place, and whoever loses the race
    /// uses the winner's.
    ///
    /// # Errors
    /// When the directory cannot be made or read, or its key is not a PEM key.
    pub fn open_or_make(dir: &Path, name: &str) -> Result<Self, TlsError> {
        let key_path = Self::key_path(dir);
        if !key_path.exists() {
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(parent).map_err(io("making", parent))?;
            let made = tempfile::Builder::new()
                .prefix(".ca-")
                .tempdir_in(parent)
                .map_err(io("making a directory in", parent))?;
            let key = KeyPair::generate()?;
            let mut params = ca_params(name);
            (params.not_before, params.not_after) = validity(AUTHORITY_DAYS);
            let cert = params.self_signed(&key)?;
            let key_path = Self::key_path(made.path());
            write_private(&key_path, &key.serialize_pem()).map_err(io("writing", &key_path))?;
            let cert_path = Self::cert_path(made.path());
            std::fs::write(&cert_path, cert.pem()).map_err(io("writing", &cert_path))?;
            let staged = made.keep();
            // Renaming onto an empty directory replaces it; onto another process's new
            // authority (or any directory with files in it) fails, and that one is used.
            if let Err(e) = std::fs::rename(&staged, dir) {
                let _ = std::fs::remove_dir_all(&staged);
                let taken = matches!(
                    e.kind(),
                    std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists
                );
                if !taken {
                    return Err(io("moving the new authority into", dir)(e));
                }
            }
        }
        let pem = std::fs::read_to_string(&key_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TlsError::Pem {
                    path: key_path.clone(),
                    message: "missing, and the directory already holds other files: give a new or empty directory for the certificate authority".into(),
                }
            } else {
                io("reading", &key_path)(source)
            }
        })?;
        let key = KeyPair::from_pem(&pem).map_err(|e| TlsError::Pem {
            path: key_path.clone(),
            message: format!("not the authority's PEM private key ({e}); remove the directory to make a new authority (peers must then trust the new ca.crt)"),
        })?;
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// The authority's certificate in `dir`: what peers trust.
    #[must_use]
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join("ca.crt")
    }

    /// The authority's private key in `dir`.
    #[must_use]
    pub fn key_path(dir: &Path) -> PathBuf {
        dir.join("ca.key")
    }

    /// A new certificate and key for `usage`, named `subject`, holding `names` (DNS names
    /// and IP addresses) as subject alternative names.
    ///
    /// # Errors
    /// A name no certificate can hold.
    pub fn issue(&self, subject: &str, names: &[String], usage: Usage) -> Result<Issued, TlsError> {
        let mut params = CertificateParams::default();
        for name in names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    ServerName::try_from(name.as_str())
                        .map_err(|_| TlsError::Name(name.clone()))?;
                    SanType::DnsName(
                        name.as_str()
                            .try_into()
                            .map_err(|_| TlsError::Name(name.clone()))?,
                    )
                }
            };
            params.subject_alt_names.push(san);
        }
        params.distinguished_name.push(DnType::CommonName, subject);
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        (params.not_before, params.not_after) = validity(CERTIFICATE_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &Issuer::new(ca_params(&self.name), &self.key))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone()],
            // rcgen serialises a key as PKCS#8.
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

/// From an hour ago (clocks differ a little) to `days` from now.
fn validity(days: i64) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (
        now - time::Duration::hours(1),
        now + time::Duration::days(days),
    )
}

/// The authority's name and uses: the same at every open, so that they and its key make
/// the issuer of every certificate (its certificate file need not be parsed).
fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A certificate an [`Authority`] issued, and its key.
pub struct Issued {
    /// The certificate chain (the certificate alone: peers trust the authority).
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

impl Issued {
    /// Writes the certificate and the key (readable by its owner only) as PEM, replacing
    /// what the files held. Each is written to a new file beside it and renamed into
    /// place, the key first: a reader sees the old pair, the new key with the old
    /// certificate for an instant, or the new pair, never a partial file.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        replace(key, &self.key_pem)?;
        replace(cert, &self.cert_pem)
    }
}

/// Replaces `path` with a new owner-only file holding `text`.
fn replace(path: &Path, text: &str) -> Result<(), TlsError> {
    let staged = path.with_extension("new");
    match std::fs::remove_file(&staged) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("removing", &staged)(e));
        }
        _ => {}
    }
    write_private(&staged, text).map_err(io("writing", &staged))?;
    std::fs::rename(&staged, path).map_err(io("replacing", path))
}

/// Writes `text` to a new file readable by its owner only.
///
/// # Errors
/// When the file exists or cannot be written.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(text.as_bytes())
}

/// The PEM certificates of `path`, in order (a server's first, then its chain).
///
/// # Errors
/// When the file cannot be read or holds no PEM certificate.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(io("reading", path))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: format!("not PEM certificates: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            message: "holds no CERTIFICATE (a PEM certificate, then its chain)".into(),
        });
    }
    Ok(chain)
}

/// The PEM private key of `path`.
///
/// # Errors
/// When the file cannot be read or holds no PEM private key.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(io("reading", path))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        message: format!("no PEM private key ({e}): a PKCS#8, PKCS#1 or SEC1 PEM key"),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server's TLS settings for a certificate chain and its key, with no client
/// certificates asked for.
///
/// # Errors
/// When the key does not go with the certificate.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsError> {
    Ok(ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?)
}

/// One side's files of the agent link: its own certificate and key, and the authority
/// whose certificates it accepts from the other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFiles {
    /// The authority's certificate (`ca.crt`).
    pub ca: PathBuf,
    /// This side's certificate.
    pub cert: PathBuf,
    /// This side's private key.
    pub key: PathBuf,
}

/// The certificate authority of the agent link's directories (`plinth certs`).
pub const AGENTS_CA: &str = "plinth agents CA";

impl LinkFiles {
    /// The control plane's files in a directory `plinth certs` wrote.
    #[must_use]
    pub fn control_plane(dir: &Path) -> Self {
        Self {
            ca: Authority::cert_path(dir),
            cert: dir.join("control-plane.crt"),
            key: dir.join("control-plane.key"),
        }
    }

    /// Host `host`'s agent's files in a directory `plinth certs` wrote.
    #[must_use]
    pub fn agent(dir: &Path, host: &str) -> Self {
        let agents = dir.join("agents");
        Self {
            ca: Authority::cert_path(dir),
            cert: agents.join(format!("{host}.crt")),
            key: agents.join(format!("{host}.key")),
        }
    }

    fn roots(&self) -> Result<Arc<rustls::RootCertStore>, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_chain(&self.ca)? {
            roots.add(cert).map_err(|e| TlsError::Pem {
                path: self.ca.clone(),
                message: format!("not a usable authority certificate: {e}"),
            })?;
        }
        Ok(Arc::new(roots))
    }

    /// An agent's TLS settings: its certificate, and a client certificate of the
    /// authority required of every control plane.
    ///
    /// # Errors
    /// When a file cannot be read, or the key does not go with the certificate.
    pub fn agent_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots()?, provider())
                .build()
                .map_err(|e| TlsError::Verifier {
                    path: self.ca.clone(),
                    message: e.to_string(),
                })?;
        Ok(Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_client_cert_verifier(verifier)
                .with_single_cert(read_chain(&self.cert)?, read_key(&self.key)?)?,
        ))
    }

    /// The control plane's TLS settings: its client certificate, and the authority whose
    /// certificates it accepts from agents.
    ///
    /// # Errors
    /// When a file cannot be read, or the key does not go with the certificate.
    pub fn control_plane_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        Ok(Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(self.roots()?)
                .with_client_auth_cert(read_chain(&self.cert)?, read_key(&self.key)?)?,
        ))
    }
}

/// Makes the authority of `dir` when it has none, and issues the control plane's
/// certificate and each agent's (`(host, address)`: the certificate holds the host's name
/// and its address), replacing earlier ones. What `plinth certs` does.
///
/// # Errors
/// When a file cannot be written, or a host name or address cannot be held by a
/// certificate.
pub fn issue_link(
    dir: &Path,
    control_plane: bool,
    agents: &[(String, std::net::IpAddr)],
) -> Result<Vec<PathBuf>, TlsError> {
    let authority = Authority::open_or_make(dir, AGENTS_CA)?;
    // Every certificate is issued before any is written: a name no certificate can hold
    // leaves the directory as it was.
    let mut issued = Vec::new();
    if control_plane {
        let files = LinkFiles::control_plane(dir);
        issued.push((
            authority.issue("plinth control plane", &[], Usage::Client)?,
            files,
        ));
    }
    for (host, address) in agents {
        let cert = authority.issue(
            &format!("plinth agent {host}"),
            &[host.clone(), address.to_string()],
            Usage::Server,
        )?;
        issued.push((cert, LinkFiles::agent(dir, host)));
    }
    if !agents.is_empty() {
        let agents_dir = dir.join("agents");
        std::fs::create_dir_all(&agents_dir).map_err(io("making", &agents_dir))?;
    }
    let mut written = Vec::new();
    for (cert, files) in issued {
        cert.write(&files.cert, &files.key)?;
        written.push(files.cert);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authority_is_made_once_and_its_key_is_its_owners() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        Authority::open_or_make(&ca, AGENTS_CA).unwrap();
        let first = std::fs::read(Authority::cert_path(&ca)).unwrap();
        Authority::open_or_make(&ca, AGENTS_CA).unwrap();
        assert_eq!(std::fs::read(Authority::cert_path(&ca)).unwrap(), first);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(Authority::key_path(&ca))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn a_directory_with_other_files_and_no_key_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes"), "x").unwrap();
        let e = Authority::open_or_make(dir.path(), AGENTS_CA).unwrap_err();
        assert!(e.to_string().contains("new or empty directory"), "{e}");
    }

    #[test]
    fn issued_link_files_make_both_sides_configs() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let written =
            issue_link(&tls, true, &[("h1".into(), "10.0.0.1".parse().unwrap())]).unwrap();
        assert_eq!(written.len(), 2);
        LinkFiles::control_plane(&tls)
            .control_plane_config()
            .unwrap();
        LinkFiles::agent(&tls, "h1").agent_config().unwrap();
        // Issuing again replaces the certificates, under the same authority.
        issue_link(&tls, true, &[]).unwrap();
        LinkFiles::control_plane(&tls)
            .control_plane_config()
            .unwrap();
    }

    #[test]
    fn a_bad_agent_name_leaves_the_directory_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let bad = issue_link(&tls, true, &[("h_1 x".into(), "10.0.0.1".parse().unwrap())]);
        assert!(matches!(bad, Err(TlsError::Name(_))), "{bad:?}");
        assert!(!LinkFiles::control_plane(&tls).cert.exists());
    }

    #[test]
    fn a_name_no_certificate_can_hold_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::open_or_make(&dir.path().join("ca"), AGENTS_CA).unwrap();
        let e = authority
            .issue("x", &["not a name".into()], Usage::Server)
            .unwrap_err();
        assert!(matches!(e, TlsError::Name(_)), "{e}");
    }

    #[test]
    fn a_file_that_is_not_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.crt");
        std::fs::write(&path, "hello").unwrap();
        let e = read_chain(&path).unwrap_err();
        assert!(e.to_string().contains("server.crt"), "{e}");
        assert!(
            read_key(&path)
                .unwrap_err()
                .to_string()
                .contains("server.crt")
        );
    }
}
