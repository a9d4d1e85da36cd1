//! A live page in headless Chromium, driven over the DevTools protocol, for pages that
//! keep running after they load (the console of `plinth serve`): open a URL, evaluate
//! JavaScript in it, wait until an expression holds, press keys and take screenshots.
//!
//! Chromium is started with `--remote-debugging-port=0`; the page's DevTools socket is
//! found through the port it prints, and each command is one JSON message answered by the
//! message with the same id (events in between are skipped: no domain is enabled).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::{BrowserCheckError, Result, on_ci};

/// How long Chromium may take to open its DevTools port.
const LAUNCH: Duration = Duration::from_secs(30);
/// How often [`Live::wait_for`] evaluates its expression.
const POLL: Duration = Duration::from_millis(100);

/// The Chromium binary, if one is installed: the names `scripts/render-html` tries.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn devtools(what: &'static str, message: impl ToString) -> BrowserCheckError {
    BrowserCheckError::DevTools {
        what,
        message: message.to_string(),
    }
}

/// One page of a headless Chromium, closed (and the browser killed) when dropped.
pub struct Live {
    browser: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("pid", &self.browser.id())
            .finish_non_exhaustive()
    }
}

/// The `ws://` address of the browser, from the line Chromium prints on stderr.
fn browser_socket(browser: &mut Child) -> Result<String> {
    let stderr = browser
        .stderr
        .take()
        .ok_or_else(|| devtools("reading Chromium's output", "no stderr"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Chromium keeps writing to stderr: drain it for as long as it runs.
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::io::Result::ok)
        {
            if !sent && let Some(at) = line.find("ws://") {
                sent = tx.send(line[at..].trim().to_owned()).is_ok();
            }
        }
    });
    rx.recv_timeout(LAUNCH)
        .map_err(|_| devtools("starting Chromium", "no DevTools address printed"))
}

/// The DevTools socket of the browser's first page.
fn page_socket(browser: &str) -> Result<String> {
    let host = browser
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| devtools("reading the DevTools address", browser))?;
    let list: Value = ureq::get(format!("http://{host}/json/list"))
        .call()
        .map_err(|e| devtools("listing the pages", e))?
        .body_mut()
        .read_json()
        .map_err(|e| devtools("listing the pages", e))?;
    list.as_array()
        .into_iter()
        .flatten()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| devtools("listing the pages", "no page"))
}

impl Live {
    /// Starts headless Chromium with one blank page of `width`×`height` pixels. `None`
    /// when Chromium is missing and `CI` is not set (the caller says so and passes); an
    /// error when it is missing on CI.
    ///
    /// # Errors
    /// When Chromium cannot start or its DevTools socket cannot be reached.
    pub fn launch(width: u32, height: u32) -> Result<Option<Self>> {
        let Some(binary) = chromium() else {
            if on_ci() {
                return Err(BrowserCheckError::ChromiumMissing {
                    stderr: "no chromium on PATH".into(),
                });
            }
            return Ok(None);
        };
        let profile = tempfile::tempdir().map_err(|source| BrowserCheckError::Io {
            what: "creating a profile directory in",
            path: std::env::temp_dir(),
            source,
        })?;
        let mut browser = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BrowserCheckError::Io {
                what: "starting",
                path: binary.clone(),
                source,
            })?;
        let started = browser_socket(&mut browser).and_then(|b| page_socket(&b));
        let page = match started {
            Ok(p) => p,
            Err(e) => {
                let _ = browser.kill();
                let _ = browser.wait();
                return Err(e);
            }
        };
        let (socket, _) =
            tungstenite::connect(page.as_str()).map_err(|e| devtools("connecting to", e))?;
        let mut live = Self {
            browser,
            socket,
            next: 0,
            _profile: profile,
        };
        live.resize(width, height)?;
        Ok(Some(live))
    }

    /// Sends one DevTools command and returns its result.
    ///
    /// # Errors
    /// When the socket fails or Chromium answers with an error.
    pub fn call(&mut self, method: &'static str, params: Value) -> Result<Value> {
        self.next += 1;
        let id = self.next;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(Message::text(message))
            .map_err(|e| devtools(method, e))?;
        loop {
            let answer = self.socket.read().map_err(|e| devtools(method, e))?;
            let Message::Text(text) = answer else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).map_err(|e| devtools(method, e))?;
            if value["id"] != id {
                continue;
            }
            if let Some(error) = value.get("error") {
                return Err(devtools(method, error));
            }
            return Ok(value["result"].clone());
        }
    }

    /// Sets the page's viewport to `width`×`height` CSS pixels.
    ///
    /// # Errors
    /// As [`Live::call`].
    pub fn resize(&mut self, width: u32, height: u32) -> Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .map(drop)
    }

    /// Opens `url` and waits until its document has loaded.
    ///
    /// # Errors
    /// As [`Live::call`], or when it does not load within `timeout`.
    pub fn open(&mut self, url: &str, timeout: Duration) -> Result<()> {
        self.call("Page.navigate", json!({"url": url}))?;
        self.wait_for(
            "location.href !== 'about:blank' && document.readyState === 'complete'",
            timeout,
        )
        .map(drop)
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    ///
    /// # Errors
    /// As [`Live::call`], or when the expression throws.
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        )?;
        if let Some(thrown) = result.get("exceptionDetails") {
            return Err(BrowserCheckError::Script {
                expression: expression.to_owned(),
                message: thrown["exception"]["description"]
                    .as_str()
                    .or(thrown["text"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluates `expression` until its value is truthy (not `false`, `null`, `0` or
    /// empty) and returns that value.
    ///
    /// # Errors
    /// When it is not within `timeout` (the error has the last value), or as
    /// [`Live::eval`].
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Result<Value> {
        let started = Instant::now();
        loop {
            let value = self.eval(expression)?;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(value);
            }
            if started.elapsed() > timeout {
                return Err(BrowserCheckError::Timeout {
                    expression: expression.to_owned(),
                    waited: timeout,
                    last: value.to_string(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Presses and releases `key` (a DOM key name: `Tab`, `Enter`, `ArrowRight`) in the
    /// focused element, as a keyboard would.
    ///
    /// # Errors
    /// As [`Live::call`].
    pub fn press(&mut self, key: &str) -> Result<()> {
        let code = match key {
            "Tab" => 9,
            "Enter" => 13,
            "Escape" => 27,
            " " => 32,
            "ArrowLeft" => 37,
            "ArrowRight" => 39,
            _ => 0,
        };
        let text = match key {
            "Enter" => "\r",
            " " => " ",
            _ => "",
        };
        for kind in ["keyDown", "keyUp"] {
            let mut event = json!({"type": kind, "key": key, "code": key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code});
            if kind == "keyDown" && !text.is_empty() {
                event["text"] = json!(text);
            }
            self.call("Input.dispatchKeyEvent", event)?;
        }
        Ok(())
    }

    /// Writes a PNG of the viewport to `path`.
    ///
    /// # Errors
    /// As [`Live::call`], or when the file cannot be written.
    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| devtools("Page.captureScreenshot", e))?;
        std::fs::write(path, bytes).map_err(|source| BrowserCheckError::Io {
            what: "writing",
            path: path.to_owned(),
            source,
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.browser.kill();
        let _ = self.browser.wait();
    }
}
