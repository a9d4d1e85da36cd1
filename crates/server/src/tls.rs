//! TLS for the API: the certificate `plinth serve` presents, and the listener that speaks
//! TLS on every connection it accepts.
//!
//! `--tls` uses a CA of the data directory's own: made on the first start in
//! `DATA_DIR/tls/` (`ca.crt` is what clients trust, `ca.key` stays there, readable by its
//! owner only), it signs a new server certificate at every start, for the names the
//! server is reached by. A restart with more `--tls-san` names therefore needs nothing
//! new on the clients. `--tls-cert`/`--tls-key` present the operator's own certificate
//! instead, for a CA the clients already trust.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};

use crate::{io, write_private};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How long a client may take over the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections whose handshake finished, waiting for the server to take them.
const ACCEPTED_BACKLOG: usize = 64;

/// Which certificate the API presents.
#[derive(Clone, Debug)]
pub enum Tls {
    /// One signed by the data directory's own CA, for the listen address, the loopback
    /// names, and these.
    Own {
        /// Further DNS names and IP addresses clients reach the server by.
        names: Vec<String>,
    },
    /// The operator's: a PEM certificate chain (the server's first) and its PEM key.
    Given {
        /// The chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
}

/// Why the API's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file of the certificate, the key or the CA.
    #[error(transparent)]
    Io(#[from] crate::FileError),
    /// A file that is not the PEM it should be.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the fix.
        message: String,
    },
    /// A `--tls-san` that is neither a DNS name nor an IP address.
    #[error("--tls-san {0:?}: not a DNS name or an IP address")]
    Name(String),
    /// Making a certificate.
    #[error("making the server's certificate: {0}")]
    Make(#[from] rcgen::Error),
    /// The certificate and key do not go together, or rustls refuses them.
    #[error("the certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The files of the data directory's own CA.
pub mod paths {
    use std::path::{Path, PathBuf};

    /// The directory.
    pub fn dir(data: &Path) -> PathBuf {
        data.join("tls")
    }
    /// The CA's certificate: what clients trust.
    pub fn ca_cert(data: &Path) -> PathBuf {
        dir(data).join("ca.crt")
    }
    /// The CA's private key.
    pub fn ca_key(data: &Path) -> PathBuf {
        dir(data).join("ca.key")
    }
}

/// The API's TLS settings for `tls`, and the CA certificate clients should trust when
/// it is the data directory's own.
///
/// # Errors
/// A file that cannot be read, written or parsed, or a name no certificate can hold.
pub fn server_config(
    tls: &Tls,
    data_dir: &Path,
    listen: SocketAddr,
) -> Result<(Arc<rustls::ServerConfig>, Option<PathBuf>), TlsError> {
    let (chain, key, trust) = match tls {
        Tls::Given { cert, key } => (read_chain(cert)?, read_key(key)?, None),
        Tls::Own { names } => {
            let ca_key = own_ca(data_dir)?;
            let (chain, key) = sign(&ca_key, &server_names(listen, names)?)?;
            (chain, key, Some(paths::ca_cert(data_dir)))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), trust))
}

/// The names the server certificate holds: the loopback names, the listen address
/// unless it is a wildcard, and `extra`, each once.
fn server_names(listen: SocketAddr, extra: &[String]) -> Result<Vec<String>, TlsError> {
    if let Some(bad) = extra
        .iter()
        .find(|n| rustls::pki_types::ServerName::try_from(n.as_str()).is_err())
    {
        return Err(TlsError::Name(bad.clone()));
    }
    let mut names = vec![
        "localhost".to_owned(),
        IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
        IpAddr::V6(Ipv6Addr::LOCALHOST).to_string(),
    ];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    Ok(names)
}

/// The CA's name and uses: the same at every start, so that it and the CA's key make
/// the issuer of every server certificate (the certificate itself need not be parsed).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "plinth serve CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// The data directory's CA key, made with its certificate on the first start. Replicas
/// sharing a data directory may start at once: the CA is made in a directory of its own
/// and renamed into place, and whoever loses the race uses the winner's.
fn own_ca(data_dir: &Path) -> Result<KeyPair, TlsError> {
    let key_path = paths::ca_key(data_dir);
    if !paths::dir(data_dir).exists() {
        let made = tempfile::Builder::new()
            .prefix(".tls-")
            .tempdir_in(data_dir)
            .map_err(io("making a directory in", data_dir))?;
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        write_private(&made.path().join("ca.key"), &key.serialize_pem())?;
        std::fs::write(made.path().join("ca.crt"), cert.pem())
            .map_err(io("writing", &made.path().join("ca.crt")))?;
        let staged = made.keep();
        if std::fs::rename(&staged, paths::dir(data_dir)).is_err() {
            // Another replica made it first.
            let _ = std::fs::remove_dir_all(&staged);
        }
    }
    let pem = std::fs::read_to_string(&key_path).map_err(io("reading", &key_path))?;
    KeyPair::from_pem(&pem).map_err(|e| TlsError::Pem {
        path: key_path,
        message: format!("not the CA's PEM private key ({e}); remove the directory to make a new CA (clients must then trust the new ca.crt)"),
    })
}

/// A new server certificate for `names`, signed by the CA, and its key.
fn sign(
    ca_key: &KeyPair,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "plinth serve");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &Issuer::new(ca_params(), ca_key))?;
    // rcgen serialises a key as PKCS#8.
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((vec![cert.der().clone()], key))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(io("reading", path))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            message: "holds no CERTIFICATE: --tls-cert takes the server's PEM certificate, then its chain".into(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(io("reading", path))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        message: format!(
            "no PEM private key ({e}): --tls-key takes a PKCS#8, PKCS#1 or SEC1 PEM key"
        ),
    })
}

/// A listener whose connections speak TLS. Handshakes run on tasks of their own, so a
/// slow or silent client holds up nobody else; one that fails or takes longer than
/// [`HANDSHAKE_TIMEOUT`] is dropped (and logged at debug level).
#[derive(Debug)]
pub struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Speaks TLS with `config` on `listener`'s connections. Call within a Tokio runtime.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = tokio::sync::mpsc::channel(ACCEPTED_BACKLOG);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    () = tx.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors, mostly: wait rather than spin.
                            tracing::warn!(error = %e, "accepting a connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accepting task ended, which it does only once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hold_loopback_the_listen_address_and_extra_names_once() {
        let names = server_names(
            "10.0.0.5:7780".parse().unwrap(),
            &["plinth.example".into(), "127.0.0.1".into()],
        )
        .unwrap();
        assert_eq!(
            names,
            [
                "localhost",
                "127.0.0.1",
                "::1",
                "10.0.0.5",
                "plinth.example"
            ]
        );
        let wildcard = server_names("0.0.0.0:7780".parse().unwrap(), &[]).unwrap();
        assert!(!wildcard.contains(&"0.0.0.0".to_owned()));
    }

    #[test]
    fn the_ca_is_made_once_and_signs_every_start() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::Own { names: vec![] };
        let listen = "127.0.0.1:7780".parse().unwrap();
        let (_, trust) = server_config(&tls, dir.path(), listen).unwrap();
        let first = std::fs::read(paths::ca_cert(dir.path())).unwrap();
        server_config(&tls, dir.path(), listen).unwrap();
        assert_eq!(std::fs::read(paths::ca_cert(dir.path())).unwrap(), first);
        assert_eq!(trust, Some(paths::ca_cert(dir.path())));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(paths::ca_key(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the CA key is its owner's only");
    }

    #[test]
    fn a_name_no_certificate_can_hold_is_refused_with_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::Own {
            names: vec!["not a name".into()],
        };
        let e = server_config(&tls, dir.path(), "127.0.0.1:1".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("--tls-san"), "{e}");
    }

    #[test]
    fn a_given_file_that_is_not_pem_names_the_file_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("server.crt");
        std::fs::write(&cert, "hello").unwrap();
        let tls = Tls::Given {
            cert: cert.clone(),
            key: cert.clone(),
        };
        let e = server_config(&tls, dir.path(), "127.0.0.1:1".parse().unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("server.crt") && e.to_string().contains("--tls-cert"),
            "{e}"
        );
    }
}
