//! One case of the table and how it runs: files written into a fresh directory, the
//! binary started there with a timeout, its exit code, output and peak memory checked.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Most resident memory any case may reach.
pub(crate) const RSS_LIMIT_KIB: i64 = 768 * 1024;

/// Longest any case may run by default.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// Where the child's stdout goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sink {
    /// A pipe the test reads.
    Capture,
    /// A pipe whose reading end is closed before the child writes (`plinth … | head -c0`).
    Closed,
    /// `/dev/full`: every write fails with "no space left on device".
    Full,
}

/// One hostile input: files, arguments, what stdout is, and the expected outcome.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// Unique name, for filtering and reports.
    pub(crate) name: String,
    /// Files written below the case's directory before the run (path, content).
    pub(crate) files: Vec<(String, Vec<u8>)>,
    /// Symbolic links made below the case's directory (link, target).
    pub(crate) links: Vec<(String, String)>,
    /// FIFOs made below the case's directory.
    pub(crate) fifos: Vec<String>,
    /// Arguments; `{repo}` is replaced by the repository root.
    pub(crate) args: Vec<String>,
    /// Standard input.
    pub(crate) stdin: Vec<u8>,
    /// Where stdout goes.
    pub(crate) stdout: Sink,
    /// The exit code the case must give.
    pub(crate) code: i32,
    /// Fragments stdout or stderr must contain, each one.
    pub(crate) fragments: Vec<String>,
    /// Longest the case may run.
    pub(crate) timeout: Duration,
}

impl Case {
    /// A case named `name` running `plinth ARGS` in an empty directory, expected to exit
    /// `code` with `fragment` in its output.
    pub(crate) fn new(name: impl Into<String>, args: &[&str], code: i32, fragment: &str) -> Self {
        Self {
            name: name.into(),
            files: Vec::new(),
            links: Vec::new(),
            fifos: Vec::new(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            stdin: Vec::new(),
            stdout: Sink::Capture,
            code,
            fragments: vec![fragment.to_owned()],
            timeout: TIMEOUT,
        }
    }

    /// Adds a file.
    pub(crate) fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_owned(), content.into()));
        self
    }

    /// Adds a symbolic link.
    pub(crate) fn link(mut self, path: &str, target: &str) -> Self {
        self.links.push((path.to_owned(), target.to_owned()));
        self
    }

    /// Adds a FIFO.
    pub(crate) fn fifo(mut self, path: &str) -> Self {
        self.fifos.push(path.to_owned());
        self
    }

    /// Sets standard input.
    pub(crate) fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Adds a fragment the output must contain.
    pub(crate) fn also(mut self, fragment: &str) -> Self {
        self.fragments.push(fragment.to_owned());
        self
    }

    /// Sends stdout to `sink`.
    pub(crate) fn stdout(mut self, sink: Sink) -> Self {
        self.stdout = sink;
        self
    }
}

/// The repository root.
fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn prepare(case: &Case, dir: &Path) -> Result<(), String> {
    for (path, content) in &case.files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("mkdir: {e}"))?;
        }
        std::fs::write(&p, content).map_err(|e| format!("writing {path}: {e}"))?;
    }
    for (link, target) in &case.links {
        std::os::unix::fs::symlink(target, dir.join(link)).map_err(|e| format!("link: {e}"))?;
    }
    for fifo in &case.fifos {
        let status = Command::new("mkfifo")
            .arg(dir.join(fifo))
            .status()
            .map_err(|e| format!("mkfifo: {e}"))?;
        if !status.success() {
            return Err("mkfifo failed".into());
        }
    }
    Ok(())
}

fn peak_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0)
}

/// Runs `case` and checks its outcome.
pub(crate) fn run(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    prepare(case, dir.path())?;
    let repo = repo().display().to_string();
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| a.replace("{repo}", &repo))
        .collect();
    let stdout = match case.stdout {
        Sink::Capture | Sink::Closed => Stdio::piped(),
        Sink::Full => std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .map(Stdio::from)
            .map_err(|e| format!("/dev/full: {e}"))?,
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(&args)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    if case.stdout == Sink::Closed {
        drop(child.stdout.take());
    }
    let stdin = child.stdin.take();
    let input = case.stdin.clone();
    let feeder = std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            let _ = s.write_all(&input);
        }
    });
    let out_pipe = child.stdout.take();
    let err_pipe = child.stderr.take();
    let reader = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = reader(out_pipe.map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let err_thread = reader(err_pipe.map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| format!("wait: {e}"))? {
            Some(status) => break status,
            None if started.elapsed() > case.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {:?}", case.timeout));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let _ = feeder.join();
    let stdout = String::from_utf8_lossy(&out_thread.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
    let rss = peak_rss_kib();
    let shown = || {
        let cut = |s: &str| s.chars().take(1500).collect::<String>();
        format!(
            "\n--- stdout\n{}\n--- stderr\n{}",
            cut(&stdout),
            cut(&stderr)
        )
    };
    if rss > RSS_LIMIT_KIB {
        return Err(format!(
            "peak resident memory {} MiB over the {} MiB limit",
            rss / 1024,
            RSS_LIMIT_KIB / 1024
        ));
    }
    let code = status.code();
    if stderr.contains("panicked") || code.is_none() || code == Some(101) {
        return Err(format!("panicked or was killed ({status}){}", shown()));
    }
    if code != Some(case.code) {
        return Err(format!("exit {code:?}, expected {}{}", case.code, shown()));
    }
    if case.stdout == Sink::Closed && stderr.contains("error") {
        return Err(format!("a closed stdout is not an error{}", shown()));
    }
    for fragment in &case.fragments {
        if !stdout.contains(fragment.as_str()) && !stderr.contains(fragment.as_str()) {
            return Err(format!("no `{fragment}` in the output{}", shown()));
        }
    }
    Ok(())
}
