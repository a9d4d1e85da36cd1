//! `plinth-guest`: Plinth's guest agent, PID 1's only child in a node VM's initramfs.
//!
//! It reads the NoCloud seed that `/init` mounted (`meta-data`: instance id and node name;
//! `user-data`: Plinth's cloud-config), runs the bootstrap (writes the files, runs the
//! commands), then reports its [`GuestStatus`] over the virtio-serial port
//! [`PORT_NAME`] and answers every probe of the host agent with it. It decides nothing and
//! talks to nothing else. Built as a static glibc binary by `scripts/image`.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread::sleep;
use std::time::Duration;

use plinth_proto::guest::{
    FromGuest, GuestStatus, MetaData, PORT_NAME, ToGuest, UserData, checksum,
};

/// Where `/init` mounts the seed when no argument says otherwise.
const DEFAULT_SEED: &str = "/seed";
/// How long to look for the port before giving up (modules load before the agent starts).
const PORT_ATTEMPTS: u32 = 100;
/// The pause between reads while the host side is not connected.
const IDLE: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let seed = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from(DEFAULT_SEED), PathBuf::from);
    let status = bootstrap(&seed);
    log(&format!(
        "plinth-guest: node {} ready {} (bootstrap exit {})",
        status.node, status.ready, status.payload_exit
    ));
    match serve(&status) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(&format!("plinth-guest: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn log(line: &str) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Reads the seed and runs its bootstrap; what went wrong is in the status, never a panic.
fn bootstrap(seed: &Path) -> GuestStatus {
    let meta = fs::read_to_string(seed.join("meta-data"))
        .ok()
        .and_then(|t| MetaData::from_document(&t));
    let payload = fs::read(seed.join("user-data")).unwrap_or_default();
    let user = UserData::from_document(&payload).ok();
    let payload_exit = user.as_ref().map_or(-1, run_user_data);
    let node = meta.map(|m| m.local_hostname).unwrap_or_default();
    GuestStatus {
        ready: payload_exit == 0 && !node.is_empty(),
        cluster: user.map(|u| u.plinth.cluster).unwrap_or_default(),
        node,
        payload_sha256: checksum(&payload),
        payload_exit,
    }
}

/// Writes the files and runs the commands; the exit status of the first failure, else 0.
fn run_user_data(user: &UserData) -> i32 {
    let hostname = std::iter::once(("/etc/hostname", format!("{}\n", user.hostname)));
    let files = user
        .write_files
        .iter()
        .map(|f| (f.path.as_str(), f.content.clone()));
    for (path, content) in hostname.chain(files) {
        let path = Path::new(path);
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(path, content));
        if written.is_err() {
            return 1;
        }
    }
    user.runcmd
        .iter()
        .map(|cmd| {
            Command::new("/bin/sh")
                .args(["-c", cmd])
                .status()
                .map_or(127, |s| s.code().unwrap_or(128))
        })
        .find(|&code| code != 0)
        .unwrap_or(0)
}

/// The device of the virtio-serial port named [`PORT_NAME`].
fn find_port() -> io::Result<PathBuf> {
    for _ in 0..PORT_ATTEMPTS {
        for entry in fs::read_dir("/sys/class/virtio-ports")?.flatten() {
            let name = fs::read_to_string(entry.path().join("name")).unwrap_or_default();
            if name.trim() == PORT_NAME {
                return Ok(Path::new("/dev").join(entry.file_name()));
            }
        }
        sleep(IDLE);
    }
    Err(io::Error::new(io::ErrorKind::NotFound, PORT_NAME))
}

/// Reports the status once, then answers probes for ever.
fn serve(status: &GuestStatus) -> io::Result<()> {
    let path = find_port()?;
    let mut port = fs::OpenOptions::new().read(true).write(true).open(path)?;
    send(&mut port, None, status)?;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = port.read(&mut buf)?;
        if n == 0 {
            // The host side is not connected (the host agent restarts): wait for it.
            sleep(IDLE);
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Ok(ToGuest::Probe { seq }) = serde_json::from_slice(&line) {
                send(&mut port, Some(seq), status)?;
            }
        }
    }
}

fn send(port: &mut fs::File, seq: Option<u64>, status: &GuestStatus) -> io::Result<()> {
    let message = FromGuest::Status {
        seq,
        status: status.clone(),
    };
    let mut line = serde_json::to_vec(&message).map_err(io::Error::other)?;
    line.push(b'\n');
    port.write_all(&line)
}
