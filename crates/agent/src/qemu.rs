//! VMs as QEMU processes: one daemonized `qemu-system-x86_64` per VM with a QMP socket and a
//! virtio-serial socket to its guest agent; disks as qcow2 linked clones of the image's base;
//! a NoCloud seed as a small FAT image. Processes outlive the agent, which re-adopts them from
//! their pid files and sockets when it starts again.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use plinth_proto::guest::{
    BenchKernel, FromGuest, GuestStatus, MetaData, NETWORK_CONFIG, NetworkConfig, SEED_LABEL,
    ToGuest, UserData,
};
use plinth_proto::network::{Ipv4Net, Reach, mac_of};
use plinth_proto::{
    CONSOLE_CHUNK_BYTES, Capacity, ConsoleChunk, MigrationStats, VmName, VmReport, VmSpec, VmState,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LinesCodec};

use crate::datastore;
use crate::error::AgentError;
use crate::hypervisor::{Hypervisor, console_chunk, console_start};
use crate::image::{Image, Images};
use crate::network::{NODE_SPACE, Network, Networks, Nic};
use crate::table::{VmRecord, VmTable};
use crate::tool::run;

/// The QEMU binary.
const QEMU: &str = "qemu-system-x86_64";
/// The kernel command line of a node VM.
const CMDLINE: &str = "console=ttyS0 panic=-1 quiet";
/// Under TCG the kernel's TSC calibration against the PIT fails on a loaded host and the boot
/// hangs; an explicit TSC frequency lets it go on (never under KVM, where it would be wrong).
const TCG_CMDLINE: &str = "console=ttyS0 panic=-1 quiet tsc_early_khz=2000000";
/// How often the agent probes a running guest.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// The longest line a guest agent may send.
const MAX_GUEST_LINE: usize = 64 * 1024;
/// How long an ask of a guest waits for its answer (a reachability check gives up after two
/// seconds, a kernel runs for one).
const ASK_WAIT: Duration = Duration::from_secs(10);
/// How often a sender reads its migration's progress.
const MIGRATION_POLL: Duration = Duration::from_millis(20);
/// How often a receiver is asked whether it took over.
const INCOMING_POLL: Duration = Duration::from_millis(50);
/// The longest one such look may take.
const INCOMING_LOOK: Duration = Duration::from_secs(2);
/// A migration still under way this long before its command's deadline is cancelled, so the
/// answer (the VM runs on its source) comes before the deadline.
const CANCEL_MARGIN: Duration = Duration::from_secs(2);
/// How long a stopped QEMU gets to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the accelerator probe waits for `/init` under KVM.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The accelerator VMs run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualization.
    Kvm,
    /// Software emulation.
    Tcg,
}

impl Accel {
    fn cmdline(self) -> &'static str {
        match self {
            Self::Kvm => CMDLINE,
            Self::Tcg => TCG_CMDLINE,
        }
    }

    fn args(self) -> [&'static str; 4] {
        match self {
            Self::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Self::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }

    /// The name QEMU uses.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }
}

/// Where a QEMU host agent keeps things.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The node OS images VMs boot, by name.
    pub images: Images,
    /// Per-VM runtime files (sockets, pid files, serial logs, records).
    pub state_dir: PathBuf,
    /// Per-VM disks and seeds: a directory every host of the pool sees (it stands in for the
    /// pool's distributed storage).
    pub storage: PathBuf,
    /// The accelerator.
    pub accel: Accel,
    /// What the host offers to VMs.
    pub capacity: Capacity,
    /// The interface cluster networks are joined to other hosts over (VXLAN); none: they
    /// span this host only.
    pub underlay: Option<String>,
}

/// The files of one VM.
#[derive(Debug, Clone)]
struct VmPaths {
    run: PathBuf,
    disk: PathBuf,
    seed: PathBuf,
}

impl VmPaths {
    fn spec(&self) -> PathBuf {
        self.run.join("spec.json")
    }
    fn qmp(&self) -> PathBuf {
        self.run.join("qmp.sock")
    }
    fn guest(&self) -> PathBuf {
        self.run.join("guest.sock")
    }
    fn generation(&self) -> PathBuf {
        self.run.join("generation")
    }
    fn pid(&self) -> PathBuf {
        self.run.join("qemu.pid")
    }
    fn serial(&self) -> PathBuf {
        self.run.join("serial.log")
    }
}

/// The QEMU hypervisor of one host.
#[derive(Debug)]
pub struct QemuHypervisor {
    config: QemuConfig,
    table: Arc<VmTable>,
    networks: Networks,
    checks: Arc<Checks>,
}

/// A reachability check for a guest: where to connect, and who waits for the answer.
type Check = (Ask, oneshot::Sender<Answer>);

/// What the agent asks of a guest beside its probes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ask {
    /// A reachability check of an address.
    Reach(Ipv4Addr),
    /// An overhead kernel.
    Bench(BenchKernel),
}

/// A guest's answer to an [`Ask`].
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Reached(Reach),
    Benched(f64),
}

/// Per running VM, the way to its guest channel's session for reachability checks.
#[derive(Debug, Default)]
struct Checks(Mutex<HashMap<VmName, mpsc::Sender<Check>>>);

impl Checks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VmName, mpsc::Sender<Check>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl QemuHypervisor {
    /// Opens the host's state: every VM recorded in `state_dir` is taken back, and a running
    /// QEMU process of one is re-adopted (its pid, its guest agent), so an agent restart loses
    /// no VM.
    ///
    /// # Errors
    /// When the directories cannot be made or read, or a path holds a comma (QEMU's option
    /// separator).
    pub async fn open(config: QemuConfig) -> Result<Self, AgentError> {
        for dir in [&config.state_dir, &config.storage] {
            if dir.to_string_lossy().contains(',') {
                return Err(AgentError::File {
                    path: dir.clone(),
                    source: std::io::Error::other("a comma in the path breaks QEMU options"),
                });
            }
            tokio::fs::create_dir_all(dir.join("vms"))
                .await
                .map_err(AgentError::file(dir))?;
        }
        if config.underlay.is_none() {
            tracing::warn!("no underlay: a cluster network spans this host only");
        }
        let hv = Self {
            networks: Networks::new(&config.storage, config.underlay.clone()).await,
            config,
            table: Arc::new(VmTable::default()),
            checks: Arc::default(),
        };
        hv.adopt().await?;
        Ok(hv)
    }

    fn paths(&self, vm: &VmName) -> VmPaths {
        VmPaths {
            run: self.config.state_dir.join("vms").join(&vm.0),
            disk: self.config.storage.join("vms").join(format!("{vm}.qcow2")),
            seed: self
                .config
                .storage
                .join("vms")
                .join(format!("{vm}.seed.img")),
        }
    }

    /// Registers `vm`, created on another host, from its configuration on the shared
    /// storage (an HA restart or a start after a move); unknown when there is none. Its
    /// record, and whether this call made it (a concurrent start may have first).
    async fn register(&self, vm: &VmName) -> Result<(VmRecord, bool), AgentError> {
        if !vm.is_valid() {
            return Err(AgentError::InvalidName(vm.clone()));
        }
        let paths = self.paths(vm);
        let (spec, text) = datastore::read(&self.config.storage, vm).await?;
        tokio::fs::create_dir_all(&paths.run)
            .await
            .map_err(AgentError::file(&paths.run))?;
        tokio::fs::write(paths.spec(), &text)
            .await
            .map_err(AgentError::file(paths.spec()))?;
        let mut record = VmRecord::new(spec);
        record.address = self.leased(&record.spec).await;
        // A concurrent start of the same VM registered it first: use that record.
        let made = self.table.insert(record.clone());
        tracing::info!(vm = %vm, "registered from the shared storage");
        let record = self
            .table
            .get(vm)
            .ok_or_else(|| AgentError::UnknownVm(vm.clone()))?;
        Ok((record, made))
    }

    async fn adopt(&self) -> Result<(), AgentError> {
        let dir = self.config.state_dir.join("vms");
        let mut entries = tokio::fs::read_dir(&dir)
            .await
            .map_err(AgentError::file(&dir))?;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let Ok(text) = tokio::fs::read(entry.path().join("spec.json")).await else {
                continue;
            };
            let Ok(spec) = serde_json::from_slice::<VmSpec>(&text) else {
                tracing::warn!(dir = %entry.path().display(), "unreadable VM record skipped");
                continue;
            };
            let paths = self.paths(&spec.name);
            let pid = read_number(&paths.pid())
                .await
                .filter(|&p| is_our_qemu(p, &paths));
            if let Some(pid) = pid
                && left_by_a_migration(&paths).await
            {
                tracing::warn!(vm = %spec.name, pid, "ending a QEMU process a live migration left behind (a receiver that never took over, or a source whose VM runs elsewhere)");
                kill(pid);
                let _ = tokio::fs::remove_dir_all(&paths.run).await;
                continue;
            }
            let name = spec.name.clone();
            let mut record = VmRecord::new(spec);
            record.address = self.leased(&record.spec).await;
            if let Some(generation) = read_number(&paths.generation()).await {
                record.generation = plinth_proto::Generation(generation);
            }
            if let Some(pid) = pid {
                record.state = VmState::Running;
                record.pid = Some(pid);
            }
            let spec = record.spec.clone();
            self.table.insert(record);
            if let Some(pid) = pid {
                tracing::info!(vm = %name, pid, "re-adopted running VM");
                // Its TAP may not be on its bridge yet: the last agent may have ended
                // between starting QEMU and plugging it.
                if let Err(e) = self.replug(&spec).await {
                    tracing::warn!(vm = %name, error = %e, "its NIC could not be plugged again");
                }
                self.watch_guest(&name, pid);
            }
        }
        Ok(())
    }

    /// Probes the guest agent for as long as the process lives; records its status.
    fn watch_guest(&self, vm: &VmName, pid: u32) {
        watch_guest(
            Arc::clone(&self.table),
            Arc::clone(&self.checks),
            self.paths(vm).guest(),
            vm.clone(),
            pid,
        );
    }

    /// Drops `vm`'s record and run directory on this host (not its disks, which belong to
    /// the pool): it was registered here for an action that did not happen.
    async fn forget(&self, vm: &VmName) {
        self.table.remove(vm);
        let _ = tokio::fs::remove_dir_all(&self.paths(vm).run).await;
    }

    /// The address `spec`'s VM leased on its network, if it has a network and a lease.
    async fn leased(&self, spec: &VmSpec) -> Option<Ipv4Net> {
        self.nic(spec).await.ok().flatten().map(|(_, n)| n.address)
    }

    /// `spec`'s network and NIC; none for a VM with no network.
    async fn nic(&self, spec: &VmSpec) -> Result<Option<(Network, Nic)>, AgentError> {
        let Some(of) = &spec.network else {
            return Ok(None);
        };
        let net = self
            .networks
            .lookup(of)
            .await?
            .ok_or_else(|| AgentError::BadNetwork {
                network: of.clone(),
                detail: "it has no slot on the shared storage (no VM of it was created?)".into(),
            })?;
        let address = self
            .networks
            .leased(&spec.name, of, &net)
            .await
            .ok_or_else(|| AgentError::BadNetwork {
                network: of.clone(),
                detail: format!(
                    "{} has no address on it (it was not created here?)",
                    spec.name
                ),
            })?;
        Ok(Some((net, Nic::new(&net, address))))
    }

    /// Builds `spec`'s network here and puts its running VM's TAP on it again.
    async fn replug(&self, spec: &VmSpec) -> Result<(), AgentError> {
        if let Some((net, nic)) = self.nic(spec).await? {
            self.networks.build(&net).await?;
            self.networks.plug(&nic).await?;
        }
        Ok(())
    }

    /// Starts `record`'s QEMU process with `extra` arguments, its NIC on its network's
    /// bridge; its pid.
    async fn launch(&self, record: &VmRecord, extra: &[&str]) -> Result<u32, AgentError> {
        let spec = &record.spec;
        let nic = self.nic(spec).await?;
        if let Some((net, _)) = &nic {
            self.networks.build(net).await?;
        }
        let nic = nic.map(|(_, nic)| nic);
        let paths = self.paths(&spec.name);
        let _ = tokio::fs::remove_file(paths.pid()).await;
        let image = self.config.images.get(&spec.image)?;
        let mut args = self.qemu_args(spec, image, &paths, nic.as_ref());
        args.extend(extra.iter().map(OsString::from));
        run(QEMU, args).await?;
        let pid = read_number(&paths.pid())
            .await
            .ok_or_else(|| AgentError::Vm {
                vm: spec.name.clone(),
                detail: "QEMU wrote no pid file".into(),
            })?;
        if let Some(nic) = &nic
            && let Err(e) = self.networks.plug(nic).await
        {
            self.kill_and_wait(&spec.name, pid).await;
            return Err(e);
        }
        Ok(pid)
    }

    /// Makes the receiver of a launched `-incoming defer` process listen on `listen`; where.
    async fn listen_incoming(&self, vm: &VmName, listen: IpAddr) -> Result<SocketAddr, String> {
        let mut qmp = crate::qmp::Qmp::connect(&self.paths(vm).qmp()).await?;
        qmp.execute(crate::qmp::QmpCommand::return_path()).await?;
        let uri = crate::qmp::tcp_uri(SocketAddr::new(listen, 0));
        qmp.execute(crate::qmp::QmpCommand::MigrateIncoming { uri })
            .await?;
        let info = qmp.migration().await?;
        info.socket_address
            .iter()
            .find_map(crate::qmp::SocketAddress::inet)
            .ok_or_else(|| format!("QEMU names no TCP address it listens on: {info:?}"))
    }

    /// Watches a receiver until it takes over `vm` (it then runs here) or ends: its sender
    /// failed, or `deadline` came first. A receiver that never took over is forgotten.
    fn watch_incoming(&self, vm: &VmName, pid: u32, deadline: Instant) {
        let table = Arc::clone(&self.table);
        let checks = Arc::clone(&self.checks);
        let paths = self.paths(vm);
        let vm = vm.clone();
        tokio::spawn(async move {
            // One session per look, bounded: QMP serves one client at a time, and a stop may
            // want it.
            let running = || async {
                let look = async {
                    let mut qmp = crate::qmp::Qmp::connect(&paths.qmp()).await.ok()?;
                    qmp.status().await.ok()
                };
                tokio::time::timeout(INCOMING_LOOK, look)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.status == "running")
            };
            let took_over = loop {
                if !process_alive(pid) {
                    break false;
                }
                if running().await {
                    break true;
                }
                if Instant::now() >= deadline {
                    // It may have switched over since the last look.
                    if running().await {
                        break true;
                    }
                    tracing::warn!(vm = %vm, "the receiver got nothing by its deadline; ending it");
                    kill(pid);
                    break false;
                }
                tokio::time::sleep(INCOMING_POLL).await;
            };
            if took_over {
                tracing::info!(vm = %vm, pid, "received by live migration; it runs here");
                table.update(&vm, true, |r| {
                    if r.pid == Some(pid) {
                        r.state = VmState::Running;
                    }
                });
                watch_guest(table, checks, paths.guest(), vm, pid);
            } else {
                let ours = table
                    .get(&vm)
                    .is_some_and(|r| r.pid == Some(pid) && r.state == VmState::Incoming);
                if ours {
                    let _ = tokio::fs::remove_dir_all(&paths.run).await;
                    table.remove(&vm);
                }
            }
        });
    }

    fn qemu_args(
        &self,
        spec: &VmSpec,
        image: &Image,
        paths: &VmPaths,
        nic: Option<&Nic>,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |parts: &[&dyn AsRef<std::ffi::OsStr>]| {
            args.extend(parts.iter().map(|p| p.as_ref().to_os_string()));
        };
        push(&[&"-name", &spec.name.0.as_str()]);
        push(&[&"-M", &"microvm,pit=on,rtc=on"]);
        for a in self.config.accel.args() {
            push(&[&a]);
        }
        push(&[
            &"-m",
            &spec.memory_mib.to_string(),
            &"-smp",
            &spec.vcpus.to_string(),
        ]);
        push(&[
            &"-nodefaults",
            &"-no-user-config",
            &"-display",
            &"none",
            &"-no-reboot",
        ]);
        push(&[
            &"-kernel",
            &image.kernel,
            &"-initrd",
            &image.initrd,
            &"-append",
            &[self.config.accel.cmdline(), image.cmdline.as_str()]
                .join(" ")
                .trim_end(),
        ]);
        push(&[&"-serial", &opt("file:", &paths.serial())]);
        push(&[&"-drive", &drive("root", &paths.disk, "qcow2", false)]);
        push(&[&"-device", &"virtio-blk-device,drive=root"]);
        push(&[&"-drive", &drive("seed", &paths.seed, "raw", true)]);
        push(&[&"-device", &"virtio-blk-device,drive=seed"]);
        push(&[&"-device", &"virtio-serial-device"]);
        push(&[&"-chardev", &socket_chardev("guest", &paths.guest())]);
        push(&[
            &"-device",
            &format!(
                "virtserialport,chardev=guest,name={}",
                plinth_proto::guest::PORT_NAME
            ),
        ]);
        if let Some(nic) = nic {
            push(&[
                &"-netdev",
                &format!("tap,id=nic,ifname={},script=no,downscript=no", nic.tap),
                &"-device",
                &format!(
                    "virtio-net-device,netdev=nic,mac={}",
                    mac_of(nic.address.addr())
                ),
            ]);
        }
        push(&[&"-qmp", &qmp_socket(&paths.qmp())]);
        push(&[&"-daemonize", &"-pidfile", &paths.pid()]);
        args
    }

    /// Records a change the agent made: a new generation, kept across agent restarts.
    async fn change(&self, vm: &VmName, f: impl FnOnce(&mut VmRecord)) {
        self.table.update(vm, true, f);
        if let Some(record) = self.table.get(vm) {
            let path = self.paths(vm).generation();
            if let Err(e) = tokio::fs::write(&path, record.generation.to_string()).await {
                tracing::warn!(vm = %vm, error = %e, "generation not recorded");
            }
        }
    }

    async fn wait_ready(&self, vm: &VmName) -> Result<(), AgentError> {
        let mut changes = self.table.subscribe();
        loop {
            let record = self
                .table
                .get(vm)
                .ok_or_else(|| AgentError::UnknownVm(vm.clone()))?;
            match (&record.state, &record.guest) {
                (VmState::Running, Some(g)) if g.ready => return Ok(()),
                (VmState::Running, Some(g)) => {
                    return Err(AgentError::Vm {
                        vm: vm.clone(),
                        detail: format!("guest not ready: bootstrap exit {}", g.payload_exit),
                    });
                }
                (VmState::Stopped, _) => {
                    return Err(AgentError::Vm {
                        vm: vm.clone(),
                        detail: "the process ended before Ready".into(),
                    });
                }
                // A receiver runs it once the migration switches over.
                (VmState::Running, None) | (VmState::Incoming, _) => {}
            }
            if changes.changed().await.is_err() {
                return Err(AgentError::UnknownVm(vm.clone()));
            }
        }
    }

    async fn kill_and_wait(&self, vm: &VmName, pid: u32) {
        let paths = self.paths(vm);
        if let Ok(mut qmp) = crate::qmp::Qmp::connect(&paths.qmp()).await {
            let _ = qmp.execute(crate::qmp::QmpCommand::Quit).await;
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while process_alive(pid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill(pid);
        while process_alive(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Hypervisor for QemuHypervisor {
    async fn create(&self, spec: &VmSpec) -> Result<(), AgentError> {
        if !spec.name.is_valid() {
            return Err(AgentError::InvalidName(spec.name.clone()));
        }
        self.config.images.get(&spec.image)?;
        if self.table.get(&spec.name).is_none()
            && datastore::holds(&self.config.storage, spec).await
        {
            return Ok(());
        }
        if !self.table.insert(VmRecord::new(spec.clone())) {
            // A repeated create (its first answer was lost) is a no-op; another VM of the
            // same name is refused.
            return match self.table.get(&spec.name) {
                Some(existing) if existing.spec == *spec => Ok(()),
                _ => Err(AgentError::VmExists(spec.name.clone())),
            };
        }
        let made = async {
            let address = match &spec.network {
                Some(of) => {
                    let net = self.networks.resolve(of).await?;
                    Some(self.networks.lease(&spec.name, of, &net).await?)
                }
                None => None,
            };
            let nic = address.map(|a| (a, self.networks.mtu()));
            make_vm_files(spec, nic, &self.paths(&spec.name), &self.config).await?;
            self.table
                .update(&spec.name, false, |r| r.address = address);
            Ok(())
        }
        .await;
        if made.is_err() {
            if let Some(of) = &spec.network {
                self.networks.release(&spec.name, of).await;
            }
            self.table.remove(&spec.name);
        }
        made
    }

    async fn start(&self, vm: &VmName) -> Result<(), AgentError> {
        let (record, registered) = match self.table.get(vm) {
            Some(r) => (r, false),
            None => self.register(vm).await?,
        };
        if record.state == VmState::Stopped {
            let paths = self.paths(vm);
            // A VM registered from the shared storage for this start alone is forgotten
            // again when it does not start here (its QEMU process killed first).
            let pid = match self.launch(&record, &[]).await {
                Ok(pid) => pid,
                Err(e) => {
                    if registered {
                        self.forget(vm).await;
                    }
                    return Err(e);
                }
            };
            let status = match crate::qmp::Qmp::connect(&paths.qmp()).await {
                Ok(mut qmp) => qmp.status().await,
                Err(e) => Err(e),
            };
            let status = match status {
                Ok(status) => status,
                Err(detail) => {
                    self.kill_and_wait(vm, pid).await;
                    if registered {
                        self.forget(vm).await;
                    }
                    return Err(AgentError::Qmp {
                        vm: vm.clone(),
                        detail,
                    });
                }
            };
            tracing::info!(vm = %vm, pid, status = %status.status, accel = self.config.accel.name(), "VM started");
            self.change(vm, |r| {
                r.state = VmState::Running;
                r.pid = Some(pid);
                r.guest = None;
            })
            .await;
            self.watch_guest(vm, pid);
        }
        self.wait_ready(vm).await
    }

    async fn stop(&self, vm: &VmName) -> Result<(), AgentError> {
        let record = self
            .table
            .get(vm)
            .ok_or_else(|| AgentError::UnknownVm(vm.clone()))?;
        if let Some(pid) = record.pid {
            self.kill_and_wait(vm, pid).await;
        }
        self.change(vm, |r| {
            r.state = VmState::Stopped;
            r.pid = None;
            r.guest = None;
        })
        .await;
        Ok(())
    }

    async fn delete(&self, vm: &VmName) -> Result<(), AgentError> {
        self.stop(vm).await?;
        let paths = self.paths(vm);
        for file in [&paths.disk, &paths.seed] {
            let _ = tokio::fs::remove_file(file).await;
        }
        if let Some(of) = self.table.get(vm).and_then(|r| r.spec.network) {
            self.networks.release(vm, &of).await;
        }
        datastore::remove(&self.config.storage, vm).await;
        let _ = tokio::fs::remove_dir_all(&paths.run).await;
        self.table.remove(vm);
        Ok(())
    }

    async fn fence(&self) {
        for vm in self.table.names() {
            if let Some(pid) = self.table.get(&vm).and_then(|r| r.pid) {
                kill(pid);
                tracing::warn!(vm = %vm, pid, "killed by fencing");
            }
            self.change(&vm, |r| {
                r.state = VmState::Stopped;
                r.pid = None;
                r.guest = None;
            })
            .await;
        }
    }

    async fn receive(
        &self,
        vm: &VmName,
        listen: IpAddr,
        deadline: Instant,
    ) -> Result<SocketAddr, AgentError> {
        let (record, registered) = match self.table.get(vm) {
            Some(r) => (r, false),
            None => self.register(vm).await?,
        };
        record.receivable()?;
        let started = async {
            let pid = self.launch(&record, &["-incoming", "defer"]).await?;
            match self.listen_incoming(vm, listen).await {
                Ok(addr) => Ok((pid, addr)),
                Err(detail) => {
                    self.kill_and_wait(vm, pid).await;
                    Err(AgentError::Qmp {
                        vm: vm.clone(),
                        detail,
                    })
                }
            }
        }
        .await;
        let (pid, addr) = match started {
            Ok(started) => started,
            // A VM registered for this receiver alone is forgotten again, as a receiver
            // that never took over is: it runs on its source, not here.
            Err(e) => {
                if registered {
                    self.forget(vm).await;
                }
                return Err(e);
            }
        };
        tracing::info!(vm = %vm, pid, %addr, "receiver listening");
        self.change(vm, |r| {
            r.state = VmState::Incoming;
            r.pid = Some(pid);
            r.guest = None;
        })
        .await;
        self.watch_incoming(vm, pid, deadline);
        Ok(addr)
    }

    async fn send(
        &self,
        vm: &VmName,
        to: SocketAddr,
        deadline: Instant,
    ) -> Result<MigrationStats, AgentError> {
        let record = self
            .table
            .get(vm)
            .ok_or_else(|| AgentError::UnknownVm(vm.clone()))?;
        record.sendable()?;
        let pid = record.pid.ok_or_else(|| AgentError::Vm {
            vm: vm.clone(),
            detail: "running with no QEMU pid recorded".into(),
        })?;
        let qmp_error = |detail| AgentError::Qmp {
            vm: vm.clone(),
            detail,
        };
        let stats = {
            let mut qmp = crate::qmp::Qmp::connect(&self.paths(vm).qmp())
                .await
                .map_err(qmp_error)?;
            migrate(&mut qmp, vm, to, deadline).await?
        };
        // Switched over: the receiver runs the VM; this copy stays paused until it ends.
        self.kill_and_wait(vm, pid).await;
        let _ = tokio::fs::remove_dir_all(&self.paths(vm).run).await;
        self.table.remove(vm);
        tracing::info!(vm = %vm, %to, total_ms = stats.total_ms, downtime_ms = stats.downtime_ms, "live-migrated away");
        Ok(stats)
    }

    fn vms(&self) -> Vec<VmReport> {
        self.table.reports()
    }

    fn capacity(&self) -> Capacity {
        self.config.capacity
    }

    fn accelerator(&self) -> plinth_proto::Accelerator {
        match self.config.accel {
            Accel::Kvm => plinth_proto::Accelerator::Kvm,
            Accel::Tcg => plinth_proto::Accelerator::Tcg,
        }
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.table.subscribe()
    }

    async fn console(&self, vm: &VmName, from: u64) -> Result<ConsoleChunk, AgentError> {
        if self.table.get(vm).is_none() {
            return Err(AgentError::UnknownVm(vm.clone()));
        }
        let path = self.paths(vm).serial();
        let file_error = |source| AgentError::File {
            path: path.clone(),
            source,
        };
        // QEMU truncates it on every start; none yet before the first.
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(console_chunk(vm, 0, &[]));
            }
            Err(e) => return Err(file_error(e)),
        };
        let len = file.metadata().await.map_err(file_error)?.len();
        let start = console_start(from, len);
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(file_error)?;
        let mut bytes = Vec::with_capacity(CONSOLE_CHUNK_BYTES);
        file.take(CONSOLE_CHUNK_BYTES as u64)
            .read_to_end(&mut bytes)
            .await
            .map_err(file_error)?;
        Ok(console_chunk(vm, start, &bytes))
    }

    async fn reach(&self, vm: &VmName, address: Ipv4Addr) -> Reach {
        match self.ask(vm, Ask::Reach(address), true).await {
            Ok(Answer::Reached(reach)) => reach,
            Ok(other) => Reach::NotChecked {
                reason: format!("{vm}'s guest answered {other:?}"),
            },
            Err(reason) => Reach::NotChecked { reason },
        }
    }

    async fn bench(&self, vm: &VmName, kernel: BenchKernel) -> Result<f64, String> {
        match self.ask(vm, Ask::Bench(kernel), false).await? {
            Answer::Benched(rate) => Ok(rate),
            other => Err(format!("{vm}'s guest answered {other:?}")),
        }
    }
}

impl QemuHypervisor {
    /// Asks `ask` of `vm`'s guest agent on its probe session and waits for the answer;
    /// `nic`: the ask needs the VM's NIC. Why it could not be asked, or was not answered.
    async fn ask(&self, vm: &VmName, ask: Ask, nic: bool) -> Result<Answer, String> {
        match self.table.get(vm) {
            None => return Err(AgentError::UnknownVm(vm.clone()).to_string()),
            Some(r) if nic && r.address.is_none() => {
                return Err(format!("{vm} has no NIC on a cluster network"));
            }
            Some(r) if r.guest.is_none() => {
                return Err(format!("{vm}'s guest agent has not reported yet"));
            }
            Some(_) => {}
        }
        let Some(session) = self.checks.lock().get(vm).cloned() else {
            return Err(format!("{vm}'s guest channel is not open"));
        };
        let (tx, rx) = oneshot::channel();
        let asked = async {
            session.send((ask, tx)).await.ok()?;
            rx.await.ok()
        };
        match tokio::time::timeout(ASK_WAIT, asked).await {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(format!("{vm}'s guest channel closed before the answer")),
            Err(_) => Err(format!("{vm}'s guest agent did not answer in {ASK_WAIT:?}")),
        }
    }
}

/// Runs a live migration of `vm` on its source's QMP session until it completes, fails, or
/// `deadline` (less a margin for the cancel) comes and it is cancelled.
async fn migrate(
    qmp: &mut crate::qmp::Qmp,
    vm: &VmName,
    to: SocketAddr,
    deadline: Instant,
) -> Result<MigrationStats, AgentError> {
    use crate::qmp::{MigrationStatus, QmpCommand};
    let not_migrated = |detail: String| AgentError::NotMigrated {
        vm: vm.clone(),
        detail,
    };
    let qmp_error = |detail| AgentError::Qmp {
        vm: vm.clone(),
        detail,
    };
    let uri = crate::qmp::tcp_uri(to);
    // Refused at once (a bad address): nothing started. A receiver that is not there shows
    // later, as the `failed` status.
    qmp.execute(QmpCommand::return_path())
        .await
        .map_err(not_migrated)?;
    qmp.execute(QmpCommand::Migrate { uri })
        .await
        .map_err(not_migrated)?;
    let cancel_at = deadline.checked_sub(CANCEL_MARGIN).unwrap_or(deadline);
    let mut cancelled = false;
    loop {
        let info = qmp.migration().await.map_err(qmp_error)?;
        match info.status {
            Some(MigrationStatus::Completed) => {
                return Ok(MigrationStats {
                    total_ms: info.total_time.unwrap_or_default(),
                    downtime_ms: info.downtime.unwrap_or_default(),
                    transferred_bytes: info.ram.map_or(0, |r| r.transferred),
                });
            }
            Some(MigrationStatus::Failed | MigrationStatus::Cancelled) => {
                // QEMU runs the VM on its source again; say so only when it does.
                let running = qmp.status().await.is_ok_and(|s| s.status == "running");
                let why = if cancelled {
                    "cancelled: its deadline came".to_owned()
                } else {
                    info.error_desc.unwrap_or_else(|| "failed".into())
                };
                return Err(if running {
                    not_migrated(why)
                } else {
                    qmp_error(format!("{why}; the VM does not run on its source"))
                });
            }
            Some(MigrationStatus::UnderWay) | None => {}
        }
        if !cancelled && Instant::now() >= cancel_at {
            cancelled = true;
            qmp.execute(QmpCommand::MigrateCancel)
                .await
                .map_err(qmp_error)?;
        }
        tokio::time::sleep(MIGRATION_POLL).await;
    }
}

/// Watches a running VM's guest agent for as long as its process lives (see
/// [`probe_guest`]); marks the VM stopped when the process ends.
fn watch_guest(table: Arc<VmTable>, checks: Arc<Checks>, socket: PathBuf, vm: VmName, pid: u32) {
    let (mine, mut rx) = mpsc::channel(16);
    checks.lock().insert(vm.clone(), mine.clone());
    tokio::spawn(async move {
        // One sequence for the process's life, from an unlikely start: a guest's late
        // answer to an earlier session (or an earlier agent) names a number no check of
        // this one has.
        let mut seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        while process_alive(pid) {
            if let Err(e) = probe_guest(&table, &vm, &socket, pid, &mut seq, &mut rx).await {
                tracing::debug!(vm = %vm, error = %e, "guest channel");
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
        // Only this process's session: a newer start of the VM has its own.
        let mut sessions = checks.lock();
        if sessions.get(&vm).is_some_and(|s| s.same_channel(&mine)) {
            sessions.remove(&vm);
        }
        drop(sessions);
        // The process ended on its own (crash, guest poweroff) or was stopped.
        table.update(&vm, false, |r| {
            if r.pid == Some(pid) {
                r.state = VmState::Stopped;
                r.pid = None;
                r.guest = None;
            }
        });
    });
}

fn qmp_socket(path: &Path) -> OsString {
    let mut s = opt("unix:", path);
    s.push(",server=on,wait=off");
    s
}

fn opt(prefix: &str, path: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path);
    s
}

fn drive(id: &str, file: &Path, format: &str, readonly: bool) -> OsString {
    let mut s = OsString::from(format!("id={id},if=none,format={format},file="));
    s.push(file);
    if readonly {
        s.push(",readonly=on");
    }
    s
}

fn socket_chardev(id: &str, path: &Path) -> OsString {
    let mut s = OsString::from(format!("socket,id={id},server=on,wait=off,path="));
    s.push(path);
    s
}

/// The overlay disk, the seed and the record of a new VM (`nic`: its NIC's leased address
/// and MTU).
async fn make_vm_files(
    spec: &VmSpec,
    nic: Option<(Ipv4Net, u32)>,
    paths: &VmPaths,
    config: &QemuConfig,
) -> Result<(), AgentError> {
    let (image, storage) = (config.images.get(&spec.image)?, &config.storage);
    tokio::fs::create_dir_all(&paths.run)
        .await
        .map_err(AgentError::file(&paths.run))?;
    let base = image.base.as_os_str();
    run(
        "qemu-img",
        [
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-F".as_ref(),
            "qcow2".as_ref(),
            "-b".as_ref(),
            base,
            paths.disk.as_os_str(),
        ],
    )
    .await?;
    write_seed(spec, nic, &paths.seed, &paths.run).await?;
    datastore::write(storage, spec).await?;
    tokio::fs::write(paths.spec(), datastore::encode(spec, &paths.spec())?)
        .await
        .map_err(AgentError::file(paths.spec()))
}

/// A NoCloud seed: a FAT image labelled `CIDATA` with `meta-data`, `user-data` and, for a VM
/// with a NIC, `network-config`, made with `mkfs.vfat` and `mcopy` (dosfstools, mtools).
async fn write_seed(
    spec: &VmSpec,
    nic: Option<(Ipv4Net, u32)>,
    seed: &Path,
    scratch: &Path,
) -> Result<(), AgentError> {
    let meta = MetaData {
        instance_id: spec.name.0.clone(),
        local_hostname: spec.bootstrap.node.clone(),
    };
    let io = |e: serde_json::Error| AgentError::File {
        path: seed.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let meta_path = scratch.join("meta-data");
    let user_path = scratch.join("user-data");
    tokio::fs::write(&meta_path, meta.to_document().map_err(io)?)
        .await
        .map_err(AgentError::file(&meta_path))?;
    let user = UserData::for_node(&spec.bootstrap)
        .to_document()
        .map_err(io)?;
    tokio::fs::write(&user_path, user)
        .await
        .map_err(AgentError::file(&user_path))?;
    let mut files = vec![meta_path.into_os_string(), user_path.into_os_string()];
    if let Some((address, mtu)) = nic {
        let config = NetworkConfig::for_nic(&mac_of(address.addr()), address, NODE_SPACE, mtu);
        let path = scratch.join(NETWORK_CONFIG);
        let text = serde_json::to_vec_pretty(&config).map_err(io)?;
        tokio::fs::write(&path, text)
            .await
            .map_err(AgentError::file(&path))?;
        files.push(path.into_os_string());
    }
    let _ = tokio::fs::remove_file(seed).await;
    run(
        "mkfs.vfat",
        [
            "-n".as_ref(),
            SEED_LABEL.as_ref(),
            "-C".as_ref(),
            seed.as_os_str(),
            "1024".as_ref(),
        ],
    )
    .await?;
    let mut args = vec![OsString::from("-i"), seed.as_os_str().to_owned()];
    args.extend(files);
    args.push("::/".into());
    run("mcopy", args).await?;
    Ok(())
}

/// One session on the guest channel: probe, record the answers, and pass on the
/// reachability checks of `checks`, until it breaks. A check in flight when it breaks is
/// answered by its waiter's end (the sender dropped). A line longer than
/// [`MAX_GUEST_LINE`] ends the session: a guest is not trusted with the agent's memory.
async fn probe_guest(
    table: &VmTable,
    vm: &VmName,
    socket: &Path,
    pid: u32,
    seq: &mut u64,
    checks: &mut mpsc::Receiver<Check>,
) -> Result<(), String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| e.to_string())?;
    let (r, mut w) = stream.into_split();
    let mut lines = FramedRead::new(r, LinesCodec::new_with_max_length(MAX_GUEST_LINE));
    let mut waiting: HashMap<u64, Check> = HashMap::new();
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    loop {
        let message = tokio::select! {
            _ = tick.tick() => {
                if !process_alive(pid) {
                    return Ok(());
                }
                *seq = seq.wrapping_add(1);
                ToGuest::Probe { seq: *seq }
            }
            Some((ask, answer)) = checks.recv() => {
                *seq = seq.wrapping_add(1);
                waiting.retain(|_, (_, w)| !w.is_closed());
                waiting.insert(*seq, (ask, answer));
                match ask {
                    Ask::Reach(address) => ToGuest::Reach { seq: *seq, address },
                    Ask::Bench(kernel) => ToGuest::Bench { seq: *seq, kernel },
                }
            }
            line = lines.next() => {
                let line = line.ok_or("guest channel closed")?.map_err(|e| e.to_string())?;
                match serde_json::from_str::<FromGuest>(&line) {
                    Ok(FromGuest::Status { status, .. }) => record_guest(table, vm, pid, status),
                    Ok(FromGuest::Reached { seq, address, reach }) => {
                        answer(&mut waiting, seq, Ask::Reach(address), Answer::Reached(reach));
                    }
                    Ok(FromGuest::Benched { seq, kernel, mib_per_second }) => {
                        let rate = Answer::Benched(mib_per_second);
                        answer(&mut waiting, seq, Ask::Bench(kernel), rate);
                    }
                    Err(e) => tracing::warn!(vm = %vm, error = %e, "unreadable guest line ignored"),
                }
                continue;
            }
        };
        let mut line = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        line.push(b'\n');
        w.write_all(&line).await.map_err(|e| e.to_string())?;
    }
}

/// Hands `answer` to whoever waits for ask `seq`, if that ask was `asked` (an answer naming
/// another address or kernel is not its answer).
fn answer(waiting: &mut HashMap<u64, Check>, seq: u64, asked: Ask, answer: Answer) {
    if waiting.get(&seq).is_some_and(|(a, _)| *a == asked)
        && let Some((_, waiter)) = waiting.remove(&seq)
    {
        let _ = waiter.send(answer);
    }
}

fn record_guest(table: &VmTable, vm: &VmName, pid: u32, status: GuestStatus) {
    let unchanged = table
        .get(vm)
        .is_some_and(|r| r.guest.as_ref() == Some(&status));
    if !unchanged {
        table.update(vm, false, |r| {
            if r.pid == Some(pid) {
                r.guest = Some(status);
            }
        });
    }
}

/// A number a file holds (a pid, a generation).
async fn read_number<T: std::str::FromStr>(path: &Path) -> Option<T> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    text.trim().parse().ok()
}

/// Whether `pid` is a live process (a zombie is dead).
pub(crate) fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Whether `pid` is the QEMU of this VM (its command line names the VM's QMP socket), so a
/// reused pid is never adopted or killed.
fn is_our_qemu(pid: u32, paths: &VmPaths) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = paths.qmp().to_string_lossy().into_owned();
    process_alive(pid)
        && cmdline
            .split(|&b| b == 0)
            .any(|arg| String::from_utf8_lossy(arg).contains(&needle))
}

/// Whether a VM's QEMU process is one a live migration left behind when the agent that ran
/// it ended: a receiver that never took over (`inmigrate`: its command died with the agent,
/// and its sender's migration fails) or a source whose VM now runs on its target
/// (`postmigrate`).
async fn left_by_a_migration(paths: &VmPaths) -> bool {
    match crate::qmp::Qmp::connect(&paths.qmp()).await {
        Ok(mut qmp) => qmp
            .status()
            .await
            .is_ok_and(|s| matches!(s.status.as_str(), "inmigrate" | "postmigrate")),
        Err(_) => false,
    }
}

fn kill(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Decides the accelerator: boots the image under KVM once and waits for `/init`'s mark on
/// the console; TCG when `/dev/kvm` is absent, QEMU fails, or the mark does not come in time.
pub async fn detect_accel(image: &Image, timeout: Duration) -> Accel {
    if !Path::new("/dev/kvm").exists() {
        tracing::warn!("no /dev/kvm: VMs run under TCG (software emulation)");
        return Accel::Tcg;
    }
    let mut child = match tokio::process::Command::new(QEMU)
        .args([
            "-M",
            "microvm,pit=on,rtc=on",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-m",
            "128",
        ])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start QEMU for the KVM probe: VMs run under TCG");
            return Accel::Tcg;
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return Accel::Tcg;
    };
    let mut lines = BufReader::new(stdout).lines();
    let saw_init = tokio::time::timeout(timeout, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("plinth: init") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let _ = child.kill().await;
    if saw_init {
        tracing::info!("KVM boots the node image: VMs run under KVM");
        Accel::Kvm
    } else {
        tracing::warn!(
            timeout_s = timeout.as_secs(),
            "the node image did not reach /init under KVM in time (a nested KVM that hangs guests?): VMs run under TCG (software emulation)"
        );
        Accel::Tcg
    }
}
