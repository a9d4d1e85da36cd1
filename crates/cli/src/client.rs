//! The CLI's side of `plinth serve`'s API: where the server is, the token, requests, and
//! the server's answers turned into errors a user can act on.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

use plinth_server::kinds::Resource;
use plinth_server::wire::Status;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The largest answer read, bytes (a list of every object of a big estate).
const MAX_ANSWER: u64 = 256 << 20;

/// The server a CLI talks to when nothing names one.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7780";

/// Where the server is and who we are, shared by every verb that talks to it. Each comes
/// from its flag, else its environment variable, else the context, else the default.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerArgs {
    /// The server's URL; default: the context's, else http://127.0.0.1:7780.
    #[arg(long, env = "PLINTH_SERVER")]
    pub(crate) server: Option<String>,
    /// File holding the bearer token; default: the context's, else the admin token `plinth
    /// serve` made in its default data directory.
    #[arg(long, env = "PLINTH_TOKEN_FILE", value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,
    /// A context of the config file ($PLINTH_CONFIG, else ~/.config/plinth/config.yaml);
    /// default: its `current-context`.
    #[arg(long, env = "PLINTH_CONTEXT")]
    pub(crate) context: Option<String>,
    /// The PEM CA certificate an https server's certificate must be signed by; default:
    /// the context's `certificate-authority`, else the CA `plinth serve --tls` made in its
    /// default data directory, else the public web CAs.
    #[arg(long, env = "PLINTH_CA_FILE", value_name = "PATH")]
    pub(crate) ca_file: Option<PathBuf>,
}

/// One context of the config file: a server and who we are there, like a kubeconfig's.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Context {
    name: String,
    server: Option<String>,
    token_file: Option<PathBuf>,
    certificate_authority: Option<PathBuf>,
}

/// The config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Config {
    current_context: Option<String>,
    #[serde(default)]
    contexts: Vec<Context>,
}

fn config_path() -> Option<PathBuf> {
    std::env::var_os("PLINTH_CONFIG")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/plinth/config.yaml"))
        })
}

/// The context `wanted` names (or the file's current one): `None` when there is no config
/// file and none was asked for.
fn context(wanted: Option<&str>) -> Result<Option<Context>, ClientError> {
    let bad = |path: &PathBuf, message: String| ClientError::Config {
        path: path.clone(),
        message,
    };
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && wanted.is_none() => return Ok(None),
        Err(e) => return Err(bad(&path, e.to_string())),
    };
    let source = plinth_model::SourceFile::new(path.display().to_string(), text);
    let (docs, error) = plinth_model::yaml::parse_documents(&source);
    if let Some(e) = error {
        return Err(bad(&path, e.to_string()));
    }
    let config: Config = match docs.into_iter().next() {
        Some(doc) => serde_json::from_value(doc.value).map_err(|e| bad(&path, e.to_string()))?,
        None => Config::default(),
    };
    let Some(name) = wanted.map(str::to_owned).or(config.current_context) else {
        return Ok(None);
    };
    let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
    let found = config.contexts.iter().find(|c| c.name == name).cloned();
    found.map(Some).ok_or_else(|| {
        bad(
            &path,
            format!("no context `{name}`; it has: {}", names.join(", ")),
        )
    })
}

/// What a request to the server can end in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// No token to send.
    #[error("reading the token {path}: {error} (start `plinth serve` first, or pass --token-file)")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// The config file or the context asked for.
    #[error("config {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The CA certificate to trust.
    #[error("the CA file {path}: {message}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the fix.
        message: String,
    },
    /// The server could not be reached or the answer not read.
    #[error("{server}: {error} ({})", transport_hint(server, error))]
    Transport {
        /// The server.
        server: String,
        /// Why.
        error: Box<ureq::Error>,
    },
    /// The server answered with a failure.
    #[error("{}: {}", .0.reason, .0.message)]
    Api(Box<Status>),
    /// Writing what the server sent failed.
    #[error("writing the output")]
    Output(#[source] crate::output::OutputError),
    /// The answer was not what the API sends.
    #[error("the server's answer is not understood: {0}")]
    Answer(String),
}

/// What to check when the server could not be reached or its answer not read.
fn transport_hint(server: &str, error: &ureq::Error) -> &'static str {
    let refused_certificate = match error {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
        ureq::Error::Io(e) => e
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    };
    match error {
        _ if refused_certificate => {
            "the server's certificate is not trusted, or not for this name: --ca-file names the CA that signed it (`plinth serve --tls` keeps it in DATA_DIR/tls/ca.crt)"
        }
        _ if server.starts_with("http://") => {
            "is `plinth serve` running there, and over plain HTTP? A server started with --tls takes https://; --server or PLINTH_SERVER names it"
        }
        _ => "is `plinth serve` running there? --server or PLINTH_SERVER names it",
    }
}

/// The CA certificates in the PEM file `path`.
fn read_ca(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ClientError> {
    let bad = |message: String| ClientError::Ca {
        path: path.to_owned(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad(
            "holds no PEM CERTIFICATE (it should be the CA's certificate, e.g. DATA_DIR/tls/ca.crt of `plinth serve --tls`)".into(),
        ));
    }
    Ok(certs)
}

/// The TLS settings for `server`: trust `ca_file` when given, else the default data
/// directory's own CA when it exists, else the public web CAs. Plain HTTP reads no file.
fn tls_config(server: &str, ca_file: Option<PathBuf>) -> Result<ureq::tls::TlsConfig, ClientError> {
    if server.starts_with("http://") {
        return Ok(ureq::tls::TlsConfig::default());
    }
    let own = plinth_server::tls::paths::ca_cert(&plinth_server::paths::default_data_dir());
    let ca = ca_file.or_else(|| own.exists().then_some(own));
    let roots = match ca {
        Some(path) => ureq::tls::RootCerts::new_with_certs(&read_ca(&path)?),
        None => ureq::tls::RootCerts::WebPki,
    };
    Ok(ureq::tls::TlsConfig::builder().root_certs(roots).build())
}

/// A connection to the server.
pub(crate) struct Client {
    agent: ureq::Agent,
    server: String,
    authorization: String,
}

impl Client {
    /// A client for `args`.
    pub(crate) fn new(args: &ServerArgs) -> Result<Self, ClientError> {
        let context = context(args.context.as_deref())?.unwrap_or_default();
        let server = args
            .server
            .clone()
            .or(context.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let path = args
            .token_file
            .clone()
            .or(context.token_file)
            .unwrap_or_else(|| {
                plinth_server::paths::admin_token(&plinth_server::paths::default_data_dir())
            });
        let token = std::fs::read_to_string(&path).map_err(|e| ClientError::Token {
            path: path.clone(),
            error: e.to_string(),
        })?;
        if token.trim().is_empty() {
            return Err(ClientError::Token {
                path,
                error: "the file is empty".into(),
            });
        }
        let ca_file = args.ca_file.clone().or(context.certificate_authority);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls_config(&server, ca_file)?)
            .build()
            .into();
        Ok(Self {
            agent,
            server: server.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {}", token.trim()),
        })
    }

    fn transport(&self, e: ureq::Error) -> ClientError {
        ClientError::Transport {
            server: self.server.clone(),
            error: Box::new(e),
        }
    }

    /// Reads an answer: the value on success, the server's `Status` otherwise.
    fn answer<T: DeserializeOwned>(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let mut response = response.map_err(|e| self.transport(e))?;
        let ok = response.status().is_success();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        if ok {
            serde_json::from_str(&text).map_err(|e| ClientError::Answer(e.to_string()))
        } else {
            let status: Status = serde_json::from_str(&text).map_err(|_| {
                ClientError::Answer(format!("HTTP {}: {}", response.status(), text.trim()))
            })?;
            Err(ClientError::Api(Box::new(status)))
        }
    }

    /// `GET path`.
    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.server);
        self.answer(
            self.agent
                .get(&url)
                .header("Authorization", &self.authorization)
                .call(),
        )
    }

    /// `POST path` with a JSON body.
    pub(crate) fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.server);
        self.answer(
            self.agent
                .post(&url)
                .header("Authorization", &self.authorization)
                .send_json(body),
        )
    }

    /// `DELETE path`.
    pub(crate) fn delete(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.server);
        self.answer(
            self.agent
                .delete(&url)
                .header("Authorization", &self.authorization)
                .call(),
        )
    }

    /// `GET path` as a stream: `write` gets the body's bytes as they arrive, until the
    /// server ends it.
    ///
    /// # Errors
    /// The server's failure, the connection's, or `write`'s (a closed standard output).
    pub(crate) fn stream(
        &self,
        path: &str,
        write: &mut dyn std::io::Write,
    ) -> Result<(), ClientError> {
        let url = format!("{}{path}", self.server);
        let response = self
            .agent
            .get(&url)
            .header("Authorization", &self.authorization)
            .call()
            .map_err(|e| self.transport(e))?;
        if !response.status().is_success() {
            return self.answer::<Value>(Ok(response)).map(|_| ());
        }
        let mut body = response.into_body().into_reader();
        let mut buffer = [0u8; 8192];
        loop {
            let n = std::io::Read::read(&mut body, &mut buffer)
                .map_err(|e| self.transport(ureq::Error::Io(e)))?;
            if n == 0 {
                return Ok(());
            }
            write
                .write_all(&buffer[..n])
                .and_then(|()| write.flush())
                .map_err(|e| ClientError::Output(crate::output::OutputError::of_stdout(e)))?;
        }
    }

    /// Watches `path` from `resource_version` (or from the current objects, each an
    /// `ADDED`): calls `each` with every event's type and object until it returns false,
    /// the stream ends, or `deadline` passes (then `Ok` too: the caller knows its state).
    pub(crate) fn watch(
        &self,
        path: &str,
        resource_version: Option<&str>,
        deadline: Option<Instant>,
        mut each: impl FnMut(&str, &Value) -> bool,
    ) -> Result<(), ClientError> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{path}{join}watch=true", self.server);
        if let Some(rv) = resource_version {
            url.push_str("&resourceVersion=");
            url.push_str(rv);
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let response = self
            .agent
            .get(&url)
            .header("Authorization", &self.authorization)
            .config()
            .timeout_global(timeout)
            .build()
            .call();
        let response = match response {
            Err(ureq::Error::Timeout(_)) => return Ok(()),
            other => other.map_err(|e| self.transport(e))?,
        };
        if !response.status().is_success() {
            return self.answer::<Value>(Ok(response)).map(|_| ());
        }
        let reader = BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let line = match line {
                Ok(line) => line,
                Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(()),
                Err(e) => return Err(self.transport(ureq::Error::Io(e))),
            };
            let event: Value =
                serde_json::from_str(&line).map_err(|e| ClientError::Answer(e.to_string()))?;
            let kind = event
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if kind == "ERROR" {
                let status: Status = serde_json::from_value(event["object"].clone())
                    .map_err(|e| ClientError::Answer(e.to_string()))?;
                return Err(ClientError::Api(Box::new(status)));
            }
            if !each(kind, &event["object"]) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A resource a user names (`clusters`, `vm`, `deploy`), or the error listing them.
pub(crate) fn resource(word: &str) -> anyhow::Result<Resource> {
    Resource::named(word).ok_or_else(|| {
        let all: Vec<&str> = plinth_server::kinds::TABLE
            .iter()
            .map(|i| i.plural)
            .collect();
        anyhow::anyhow!("no resource `{word}`: one of {}", all.join(", "))
    })
}
