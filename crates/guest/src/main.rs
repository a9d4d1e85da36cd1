//! `plinth-guest`: Plinth's guest agent, PID 1's only child in a node VM's initramfs.
//!
//! It reads the NoCloud seed that `/init` mounted (`meta-data`: instance id and node name;
//! `network-config`: the NIC's address on its cluster's network; `user-data`: Plinth's
//! cloud-config), brings the NIC up, runs the bootstrap (writes the files, runs the
//! commands), then reports its [`GuestStatus`] over the virtio-serial port [`PORT_NAME`] and
//! answers every probe of the host agent with it. On its network it answers
//! [`ANSWER_PORT`] with its node name, and at the host agent's request it tries that port at
//! another address (a reachability check). It decides nothing. Built as a static glibc
//! binary by `scripts/image`.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, sleep};
use std::time::Duration;

mod bench;

use plinth_proto::guest::{
    ANSWER_PORT, BenchKernel, FromGuest, GuestStatus, MetaData, NETWORK_CONFIG, NetworkConfig,
    PORT_NAME, ToGuest, UserData, checksum,
};
use plinth_proto::network::{ANSWER_FILLER_BYTES, MAX_NODE_NAME, Reach};

/// Where `/init` mounts the seed when no argument says otherwise.
const DEFAULT_SEED: &str = "/seed";
/// How long to look for the port before giving up (modules load before the agent starts).
const PORT_ATTEMPTS: u32 = 100;
/// The pause between reads while the host side is not connected.
const IDLE: Duration = Duration::from_millis(100);
/// How long a reachability check waits to connect, and then for the node name.
const REACH_TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    // `plinth-guest bench cpu|memory`: a kernel on whatever runs this binary (the host, for
    // `plinth calibrate`), its MiB per second on stdout.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [bench, kernel] = args.as_slice()
        && bench == "bench"
    {
        return match BenchKernel::ALL.into_iter().find(|k| k.name() == kernel) {
            Some(k) => {
                log(&format!("{:.1}", bench::run(k)));
                ExitCode::SUCCESS
            }
            None => {
                log("usage: plinth-guest bench cpu|memory");
                ExitCode::from(2)
            }
        };
    }
    let seed = args
        .first()
        .map_or_else(|| PathBuf::from(DEFAULT_SEED), PathBuf::from);
    let status = bootstrap(&seed);
    log(&format!(
        "plinth-guest: node {} ready {} (bootstrap exit {})",
        status.node, status.ready, status.payload_exit
    ));
    let node = status.node.clone();
    thread::spawn(move || answer(&node));
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
    // As cloud-init does, the network comes up before the user-data runs.
    let network_error = bring_up(seed).err();
    let payload_exit = user.as_ref().map_or(-1, run_user_data);
    let node = meta.map(|m| m.local_hostname).unwrap_or_default();
    GuestStatus {
        ready: payload_exit == 0 && !node.is_empty() && network_error.is_none(),
        network_error,
        cluster: user.map(|u| u.plinth.cluster).unwrap_or_default(),
        node,
        payload_sha256: checksum(&payload),
        payload_exit,
        os: os_name(),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// `PRETTY_NAME` of the image's `/etc/os-release`, unquoted; empty when there is none.
fn os_name() -> String {
    fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// Applies the seed's `network-config`, if any, with busybox `ip`; what failed, if
/// anything. Re-applying it (the guest agent started again) changes nothing.
fn bring_up(seed: &Path) -> Result<(), String> {
    let Ok(text) = fs::read(seed.join(NETWORK_CONFIG)) else {
        return Ok(());
    };
    let config = serde_json::from_slice::<NetworkConfig>(&text)
        .map_err(|e| format!("{NETWORK_CONFIG} unreadable: {e}"))?;
    for (name, nic) in &config.ethernets {
        let found = nic_with_mac(&nic.matches.macaddress)
            .ok_or_else(|| format!("no NIC has MAC {}", nic.matches.macaddress))?;
        let mut steps: Vec<Vec<String>> = Vec::new();
        if found != *name {
            steps.push(vec![
                "link".into(),
                "set".into(),
                found,
                "name".into(),
                name.clone(),
            ]);
        }
        let mtu = nic.mtu.to_string();
        steps.push(vec![
            "link".into(),
            "set".into(),
            name.clone(),
            "mtu".into(),
            mtu,
        ]);
        steps.push(vec!["link".into(), "set".into(), name.clone(), "up".into()]);
        for a in &nic.addresses {
            let a = a.to_string();
            steps.push(vec![
                "addr".into(),
                "replace".into(),
                a,
                "dev".into(),
                name.clone(),
            ]);
        }
        for r in &nic.routes {
            steps.push(vec![
                "route".into(),
                "replace".into(),
                r.to.to_string(),
                "dev".into(),
                name.clone(),
                "scope".into(),
                r.scope.clone(),
            ]);
        }
        for step in steps {
            let code = Command::new("ip")
                .args(&step)
                .status()
                .map_or(127, |s| s.code().unwrap_or(128));
            if code != 0 {
                let failed = format!("ip {} exited {code}", step.join(" "));
                log(&format!("plinth-guest: {failed}"));
                return Err(failed);
            }
        }
    }
    Ok(())
}

/// The name of the NIC whose MAC is `mac`.
fn nic_with_mac(mac: &str) -> Option<String> {
    fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .find(|e| {
            fs::read_to_string(e.path().join("address"))
                .is_ok_and(|a| a.trim().eq_ignore_ascii_case(mac))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

/// Answers every connection to [`ANSWER_PORT`] with the node name and the filler, for ever.
fn answer(node: &str) {
    let listener = loop {
        match TcpListener::bind((Ipv4Addr::UNSPECIFIED, ANSWER_PORT)) {
            Ok(l) => break l,
            Err(_) => sleep(IDLE),
        }
    };
    let mut reply = format!("{node}\n").into_bytes();
    reply.resize(reply.len() + ANSWER_FILLER_BYTES, b'.');
    for mut stream in listener.incoming().flatten() {
        let _ = stream.write_all(&reply);
    }
}

/// Connects to [`ANSWER_PORT`] at `address` and reads the node name and filler that answer.
fn reach(address: Ipv4Addr) -> Reach {
    let target = SocketAddr::from((address, ANSWER_PORT));
    let stream = match TcpStream::connect_timeout(&target, REACH_TIMEOUT) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
            ) =>
        {
            return Reach::Unreachable {
                reason: e.to_string(),
            };
        }
        Err(e) => {
            return Reach::Refused {
                reason: e.to_string(),
            };
        }
    };
    let refused = |reason: String| Reach::Refused { reason };
    if let Err(e) = stream.set_read_timeout(Some(REACH_TIMEOUT)) {
        return refused(e.to_string());
    }
    let mut reply = Vec::new();
    let limit = (MAX_NODE_NAME + 1 + ANSWER_FILLER_BYTES) as u64;
    if let Err(e) = stream.take(limit).read_to_end(&mut reply) {
        return refused(format!("after {} bytes: {e}", reply.len()));
    }
    let Some(end) = reply.iter().position(|&b| b == b'\n') else {
        return refused("no node name came".into());
    };
    let filler = reply.len() - end - 1;
    if filler != ANSWER_FILLER_BYTES {
        return refused(format!(
            "{filler} of {ANSWER_FILLER_BYTES} filler bytes came (frames dropped on the way?)"
        ));
    }
    Reach::Answered {
        node: String::from_utf8_lossy(&reply[..end]).into_owned(),
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

/// Reports the status once, then answers probes and reachability checks for ever.
fn serve(status: &GuestStatus) -> io::Result<()> {
    let path = find_port()?;
    let mut reader = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let writer = Arc::new(Mutex::new(reader.try_clone()?));
    send(
        &writer,
        &FromGuest::Status {
            seq: None,
            status: status.clone(),
        },
    )?;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            // The host side is not connected (the host agent restarts): wait for it.
            sleep(IDLE);
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            match serde_json::from_slice(&line) {
                Ok(ToGuest::Probe { seq }) => send(
                    &writer,
                    &FromGuest::Status {
                        seq: Some(seq),
                        status: status.clone(),
                    },
                )?,
                // A kernel runs for a second: beside the probes, like a check.
                Ok(ToGuest::Bench { seq, kernel }) => {
                    let writer = Arc::clone(&writer);
                    thread::spawn(move || {
                        let mib_per_second = bench::run(kernel);
                        let answer = FromGuest::Benched {
                            seq,
                            kernel,
                            mib_per_second,
                        };
                        let _ = send(&writer, &answer);
                    });
                }
                // A check takes up to two timeouts: it runs beside the probes.
                Ok(ToGuest::Reach { seq, address }) => {
                    let writer = Arc::clone(&writer);
                    thread::spawn(move || {
                        let reach = reach(address);
                        let _ = send(
                            &writer,
                            &FromGuest::Reached {
                                seq,
                                address,
                                reach,
                            },
                        );
                    });
                }
                Err(_) => {}
            }
        }
    }
}

fn send(port: &Mutex<fs::File>, message: &FromGuest) -> io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
    line.push(b'\n');
    port.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .write_all(&line)
}
