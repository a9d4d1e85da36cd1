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

use plinth_tls::{Authority, HANDSHAKE_TIMEOUT, Usage};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// Connections whose handshake finished, waiting for the server to take them.
const ACCEPTED_BACKLOG: usize = 64;

/// The common name of the data directory's own certificate authority.
const SERVE_CA: &str = "plinth serve CA";

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
    /// A file of `--tls-cert` or `--tls-key`.
    #[error("{flag}: {source}")]
    Given {
        /// The flag that names the file.
        flag: &'static str,
        /// What is wrong with it.
        #[source]
        source: plinth_tls::TlsError,
    },
    /// A `--tls-san` that is neither a DNS name nor an IP address.
    #[error("--tls-san {0:?}: not a DNS name or an IP address")]
    Name(String),
    /// The data directory's CA, or the certificate it signs.
    #[error(transparent)]
    Own(#[from] plinth_tls::TlsError),
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
        plinth_tls::Authority::cert_path(&dir(data))
    }
    /// The CA's private key.
    #[cfg(test)]
    pub fn ca_key(data: &Path) -> PathBuf {
        plinth_tls::Authority::key_path(&dir(data))
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
    let given = |flag| move |source| TlsError::Given { flag, source };
    let mut config = match tls {
        Tls::Given { cert, key } => plinth_tls::server_config(
            plinth_tls::read_chain(cert).map_err(given("--tls-cert"))?,
            plinth_tls::read_key(key).map_err(given("--tls-key"))?,
        )
        .map_err(given("--tls-cert and --tls-key"))?,
        Tls::Own { names } => {
            let names = server_names(listen, names)?;
            let issued = Authority::open_or_make(&paths::dir(data_dir), SERVE_CA)?.issue(
                "plinth serve",
                &names,
                Usage::Server,
            )?;
            plinth_tls::server_config(issued.chain, issued.key)?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let trust = matches!(tls, Tls::Own { .. }).then(|| paths::ca_cert(data_dir));
    Ok((Arc::new(config), trust))
}

/// The names the server certificate holds: the loopback names, the listen address
/// unless it is a wildcard, and `extra`, each once.
fn server_names(listen: SocketAddr, extra: &[String]) -> Result<Vec<String>, TlsError> {
    if let Some(bad) = extra
        .iter()
        .find(|n| plinth_tls::ServerName::try_from(n.as_str()).is_err())
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
