//! The node OS images: each a Debian cloud kernel, an initramfs with busybox, the kernel
//! modules a node needs, an `/etc/os-release` and Plinth's guest agent, and an empty qcow2
//! base disk that every VM's disk is a linked clone of. Built once per content hash into a
//! cache directory. Plinth builds two ([`RECIPES`]) that differ in OS release, kernel and
//! kernel command line, so two clusters of one pool run different node OS stacks and a
//! rolling upgrade moves a pool from one to the other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AgentError;
use crate::tool::run;

/// Bumped whenever the layout below changes, so old cached images are not reused.
const FORMAT: &str = "plinth-image-2";

/// The kernel metapackage an image takes its kernel and modules from: each of its versions
/// depends on one versioned kernel package.
pub const KERNEL_PACKAGE: &str = "linux-image-cloud-amd64";

/// Which of the kernels Debian offers (the versions of [`KERNEL_PACKAGE`] apt knows, from
/// the point release and the security updates) an image takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPick {
    /// The newest.
    Newest,
    /// The one before it (the newest when apt knows only one).
    Previous,
}

/// A node OS image Plinth builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipe {
    /// Its name: what a Cluster's `osImage` names.
    pub name: &'static str,
    /// Its OS release (`VERSION_ID` in its `/etc/os-release`).
    pub version: &'static str,
    /// Its kernel.
    pub kernel: KernelPick,
    /// What it adds to the kernel command line.
    pub cmdline: &'static str,
}

/// The node OS images Plinth builds: release 1 on Debian's previous cloud kernel, and
/// release 2 on its newest with its own command line (no speculative-execution
/// mitigations, which cost a node VM throughput, and no IPv6: the cluster networks are
/// IPv4).
pub const RECIPES: [Recipe; 2] = [
    Recipe {
        name: plinth_proto::guest::DEFAULT_IMAGE,
        version: "1",
        kernel: KernelPick::Previous,
        cmdline: "",
    },
    Recipe {
        name: "plinth-node-2",
        version: "2",
        kernel: KernelPick::Newest,
        cmdline: "mitigations=off ipv6.disable=1",
    },
];

/// The recipe named `name`.
#[must_use]
pub fn recipe(name: &str) -> Option<&'static Recipe> {
    RECIPES.iter().find(|r| r.name == name)
}

/// Kernel modules loaded by `/init`, by path under `kernel/`: virtio over MMIO (QEMU's
/// microvm machine), its block disks, serial port and NIC, and FAT for the seed. `/init` loads
/// them in passes until none is left, so the order need not follow the kernel's
/// dependencies, which change between kernel updates (6.1.0-57's `virtio.ko` needs
/// `virtio_ring.ko`, earlier ones the reverse), and the package ships no `modules.dep`.
const MODULES: &[&str] = &[
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio_mmio.ko",
    "drivers/block/virtio_blk.ko",
    "drivers/char/virtio_console.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "fs/fat/fat.ko",
    "fs/fat/vfat.ko",
    "fs/nls/nls_cp437.ko",
    "fs/nls/nls_ascii.ko",
];

/// The initramfs's `/init`: mounts what a node needs, loads the modules, mounts the seed
/// (the second disk) and runs the guest agent for ever. `plinth: init` on the console is the
/// mark the accelerator probe waits for.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
echo "plinth: init"
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
todo=$(cat /etc/modules)
left=""
while [ -n "$todo" ]; do
  left=""
  for m in $todo; do insmod "/lib/modules/$m" 2>/dev/null || left="$left $m"; done
  [ "$(echo $left)" = "$(echo $todo)" ] && break
  todo=$left
done
for m in $left; do echo "plinth: insmod $m failed"; done
mkdir -p /seed
mount -t vfat -o ro /dev/vdb /seed || echo "plinth: no seed"
while true; do /bin/plinth-guest /seed; sleep 1; done
"#;

/// The base disk's virtual size: the node's root disk stands in for a real OS disk.
const BASE_DISK: &str = "1G";

/// What `plinth image build` needs.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// Which image.
    pub recipe: Recipe,
    /// The static guest agent binary.
    pub guest_agent: PathBuf,
    /// A static busybox (`busybox-static`'s `/bin/busybox`).
    pub busybox: PathBuf,
    /// The versioned kernel package's `.deb`; the recipe's, downloaded with `apt-get
    /// download` into the cache, when absent.
    pub kernel_deb: Option<PathBuf>,
    /// Where images and downloads are cached.
    pub cache: PathBuf,
}

/// A built image: the files a VM boots from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    /// Its name, as a Cluster's `osImage` names it.
    pub name: String,
    /// Its OS as the guest reports it (`PRETTY_NAME` of its `/etc/os-release`).
    pub os: String,
    /// Its kernel's release.
    pub kernel_release: String,
    /// What it adds to the kernel command line.
    pub cmdline: String,
    /// Content hash of the inputs (SHA-256, hex).
    pub hash: String,
    /// The kernel (`vmlinuz`).
    pub kernel: PathBuf,
    /// The initramfs (uncompressed newc cpio).
    pub initrd: PathBuf,
    /// The qcow2 base disk VM disks are linked clones of.
    pub base: PathBuf,
    /// The kernel package the image came from.
    pub kernel_deb: String,
}

/// The images an agent runs VMs from, by name.
#[derive(Debug, Clone, Default)]
pub struct Images(BTreeMap<String, Image>);

impl Images {
    /// The images in `dirs` (each written by [`build`]).
    ///
    /// # Errors
    /// When one cannot be read, or two have one name.
    pub fn open(dirs: &[PathBuf]) -> Result<Self, AgentError> {
        let mut images = BTreeMap::new();
        for dir in dirs {
            let image = Image::open(dir)?;
            if let Some(other) = images.insert(image.name.clone(), image) {
                return Err(AgentError::File {
                    path: dir.clone(),
                    source: std::io::Error::other(format!(
                        "another image is named {} already ({})",
                        other.name,
                        other.kernel.display()
                    )),
                });
            }
        }
        Ok(Self(images))
    }

    /// The image named `name`.
    ///
    /// # Errors
    /// [`AgentError::UnknownImage`] when this host has none of that name.
    pub fn get(&self, name: &str) -> Result<&Image, AgentError> {
        self.0.get(name).ok_or_else(|| AgentError::UnknownImage {
            image: name.to_owned(),
            known: self.0.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Some image (the first by name), to probe the accelerator with.
    #[must_use]
    pub fn any(&self) -> Option<&Image> {
        self.0.values().next()
    }
}

/// The manifest's file name inside an image directory.
const MANIFEST: &str = "image.json";

impl Image {
    /// Reads the image in `dir` (written by [`build`]).
    ///
    /// # Errors
    /// When the manifest is missing or broken.
    pub fn open(dir: &Path) -> Result<Self, AgentError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).map_err(AgentError::file(&path))?;
        serde_json::from_slice(&text).map_err(|e| AgentError::File {
            path,
            source: std::io::Error::other(e),
        })
    }
}

/// Builds the image from `inputs`, or returns the cached one with the same content hash.
///
/// # Errors
/// When an input is missing or a tool (apt-get, dpkg-deb, busybox cpio, qemu-img) fails.
pub async fn build(inputs: &ImageInputs) -> Result<Image, AgentError> {
    let deb = match &inputs.kernel_deb {
        Some(deb) => deb.clone(),
        None => download_kernel(&inputs.cache.join("debs"), inputs.recipe.kernel).await?,
    };
    let hash = content_hash(
        &inputs.recipe,
        &[&deb, &inputs.busybox, &inputs.guest_agent],
    )?;
    let dir = inputs.cache.join("images").join(&hash[..16]);
    if let Ok(image) = Image::open(&dir) {
        tracing::info!(dir = %dir.display(), "image cached");
        return Ok(image);
    }
    let work = inputs
        .cache
        .join("images")
        .join(format!("{}.tmp", &hash[..16]));
    let _ = tokio::fs::remove_dir_all(&work).await;
    let image = assemble(inputs, &deb, &hash, &work, &dir).await?;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    tokio::fs::rename(&work, &dir)
        .await
        .map_err(AgentError::file(&dir))?;
    Ok(image)
}

/// SHA-256 over the format tag, the recipe, `/init`, the module list and the input files.
fn content_hash(recipe: &Recipe, files: &[&Path]) -> Result<String, AgentError> {
    let mut h = Sha256::new();
    h.update(FORMAT);
    for part in [recipe.name, recipe.version, recipe.cmdline] {
        h.update(part);
        h.update([0]);
    }
    h.update(INIT);
    h.update(MODULES.join("\n"));
    for file in files {
        h.update(std::fs::read(file).map_err(AgentError::file(*file))?);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The `.deb` of the kernel `pick` names, from `debs`, downloaded there with `apt-get
/// download` if it is not there yet.
async fn download_kernel(debs: &Path, pick: KernelPick) -> Result<PathBuf, AgentError> {
    let package = kernel_package(pick).await?;
    if let Some(deb) = cached_deb(debs, &package)? {
        return Ok(deb);
    }
    tokio::fs::create_dir_all(debs)
        .await
        .map_err(AgentError::file(debs))?;
    let mut apt = tokio::process::Command::new("apt-get");
    apt.args(["download", package.as_str()])
        .current_dir(debs)
        .stdout(std::io::stderr());
    let status = apt.status().await.map_err(|e| AgentError::Tool {
        tool: "apt-get".into(),
        detail: e.to_string(),
    })?;
    cached_deb(debs, &package)?.ok_or_else(|| AgentError::Tool {
        tool: "apt-get".into(),
        detail: format!("download {package}: {status}"),
    })
}

/// The versioned kernel package `pick` names: the dependency of that version of
/// [`KERNEL_PACKAGE`] (`apt-cache madison` lists its versions; dpkg orders them).
async fn kernel_package(pick: KernelPick) -> Result<String, AgentError> {
    let no_kernel = |detail: String| AgentError::Tool {
        tool: "apt-cache".into(),
        detail,
    };
    let madison = run("apt-cache", ["madison", KERNEL_PACKAGE]).await?;
    let mut versions: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&madison.stdout).lines() {
        if let Some(v) = line.split('|').nth(1).map(str::trim)
            && !versions.iter().any(|known| known == v)
        {
            versions.push(v.to_owned());
        }
    }
    let versions = newest_first(versions).await?;
    let version = match (pick, versions.as_slice()) {
        (_, []) => {
            return Err(no_kernel(format!(
                "apt knows no version of {KERNEL_PACKAGE}; run apt-get update"
            )));
        }
        (KernelPick::Previous, [_, previous, ..]) => previous.clone(),
        (KernelPick::Previous, [only]) => {
            tracing::warn!(%only, "apt knows one kernel: the previous is the newest");
            only.clone()
        }
        (KernelPick::Newest, [newest, ..]) => newest.clone(),
    };
    let show = run(
        "apt-cache",
        ["show", &format!("{KERNEL_PACKAGE}={version}")],
    )
    .await?;
    String::from_utf8_lossy(&show.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .and_then(|d| d.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| no_kernel(format!("{KERNEL_PACKAGE} {version} depends on no kernel")))
}

/// `versions`, newest first, as dpkg orders Debian versions (a handful: each comparison is
/// one `dpkg --compare-versions`).
async fn newest_first(versions: Vec<String>) -> Result<Vec<String>, AgentError> {
    let mut sorted: Vec<String> = Vec::with_capacity(versions.len());
    for v in versions {
        let mut at = sorted.len();
        for (i, known) in sorted.iter().enumerate() {
            if newer(&v, known).await? {
                at = i;
                break;
            }
        }
        sorted.insert(at, v);
    }
    Ok(sorted)
}

/// Whether Debian version `a` is newer than `b` (`dpkg --compare-versions A gt B`).
async fn newer(a: &str, b: &str) -> Result<bool, AgentError> {
    let failed = |detail: String| AgentError::Tool {
        tool: "dpkg".into(),
        detail,
    };
    let status = tokio::process::Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .await
        .map_err(|e| failed(e.to_string()))?;
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(failed(format!("--compare-versions {a} gt {b}: {status}"))),
    }
}

/// `package`'s `.deb` in `debs` (`PACKAGE_VERSION_ARCH.deb`, as `apt-get download` names it).
fn cached_deb(debs: &Path, package: &str) -> Result<Option<PathBuf>, AgentError> {
    let Ok(entries) = std::fs::read_dir(debs) else {
        return Ok(None);
    };
    let prefix = format!("{package}_");
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    found.sort();
    Ok(found.pop())
}

/// Lays the image out in `work`; the manifest names the final `dir`.
async fn assemble(
    inputs: &ImageInputs,
    deb: &Path,
    hash: &str,
    work: &Path,
    dir: &Path,
) -> Result<Image, AgentError> {
    let unpacked = work.join("deb");
    let root = work.join("root");
    for d in [
        &unpacked,
        &root.join("bin"),
        &root.join("etc"),
        &root.join("lib/modules"),
    ] {
        tokio::fs::create_dir_all(d)
            .await
            .map_err(AgentError::file(d))?;
    }
    run(
        "dpkg-deb",
        ["-x".as_ref(), deb.as_os_str(), unpacked.as_os_str()],
    )
    .await?;
    let (kernel, release) = find_kernel(&unpacked)?;
    let module_dir = unpacked.join("lib/modules").join(&release).join("kernel");
    let recipe = &inputs.recipe;
    let os = format!("Plinth node {} (Debian kernel {release})", recipe.version);
    let os_release = format!(
        "NAME=\"Plinth node\"\nID={}\nVERSION_ID={}\nPRETTY_NAME=\"{os}\"\n",
        recipe.name, recipe.version
    );
    write(&root.join("etc/os-release"), os_release.as_bytes()).await?;
    copy(&kernel, &work.join("vmlinuz")).await?;
    copy(&inputs.busybox, &root.join("bin/busybox")).await?;
    copy(&inputs.guest_agent, &root.join("bin/plinth-guest")).await?;
    let mut names = Vec::new();
    for module in MODULES {
        let name = Path::new(module)
            .file_name()
            .map(Path::new)
            .unwrap_or(Path::new(module));
        copy(
            &module_dir.join(module),
            &root.join("lib/modules").join(name),
        )
        .await?;
        names.push(name.display().to_string());
    }
    write(&root.join("etc/modules"), names.join("\n").as_bytes()).await?;
    write(&root.join("init"), INIT.as_bytes()).await?;
    for d in ["dev", "proc", "sys", "seed", "tmp"] {
        let p = root.join(d);
        tokio::fs::create_dir_all(&p)
            .await
            .map_err(AgentError::file(&p))?;
    }
    make_executable(&[
        &root.join("init"),
        &root.join("bin/busybox"),
        &root.join("bin/plinth-guest"),
    ])?;
    cpio(&inputs.busybox, &root, &work.join("initrd.img")).await?;
    let base = work.join("base.qcow2");
    run(
        "qemu-img",
        [
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            base.as_os_str(),
            BASE_DISK.as_ref(),
        ],
    )
    .await?;
    tokio::fs::remove_dir_all(&unpacked)
        .await
        .map_err(AgentError::file(&unpacked))?;
    tokio::fs::remove_dir_all(&root)
        .await
        .map_err(AgentError::file(&root))?;
    let image = Image {
        name: recipe.name.to_owned(),
        os,
        kernel_release: release,
        cmdline: recipe.cmdline.to_owned(),
        hash: hash.to_owned(),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        base: dir.join("base.qcow2"),
        kernel_deb: deb
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let manifest = serde_json::to_vec_pretty(&image).map_err(|e| AgentError::File {
        path: work.join(MANIFEST),
        source: std::io::Error::other(e),
    })?;
    write(&work.join(MANIFEST), &manifest).await?;
    Ok(image)
}

/// The `vmlinuz-*` in the unpacked package's `boot/` and its release.
fn find_kernel(unpacked: &Path) -> Result<(PathBuf, String), AgentError> {
    let boot = unpacked.join("boot");
    let entries = std::fs::read_dir(&boot).map_err(AgentError::file(&boot))?;
    let vmlinuz = entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .ok_or_else(|| AgentError::File {
            path: boot.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no vmlinuz-*"),
        })?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap_or_default()
        .to_owned();
    Ok((vmlinuz, release))
}

/// Packs `root` as a newc cpio archive with busybox's `cpio`.
async fn cpio(busybox: &Path, root: &Path, out: &Path) -> Result<(), AgentError> {
    let list = walk(root, root)?;
    let file = std::fs::File::create(out).map_err(AgentError::file(out))?;
    let mut child = tokio::process::Command::new(busybox)
        .args(["cpio", "-o", "-H", "newc"])
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .stdout(file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| AgentError::Tool {
            tool: "busybox cpio".into(),
            detail: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(list.join("\n").as_bytes())
            .await
            .map_err(AgentError::file(out))?;
    }
    let status = child.wait().await.map_err(AgentError::file(out))?;
    if status.success() {
        Ok(())
    } else {
        Err(AgentError::Tool {
            tool: "busybox cpio".into(),
            detail: status.to_string(),
        })
    }
}

/// Every path under `dir`, relative to `root`, parents before children.
fn walk(root: &Path, dir: &Path) -> Result<Vec<String>, AgentError> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(AgentError::file(dir))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.display().to_string());
        }
        if path.is_dir() {
            out.extend(walk(root, &path)?);
        }
    }
    Ok(out)
}

fn make_executable(paths: &[&Path]) -> Result<(), AgentError> {
    use std::os::unix::fs::PermissionsExt;
    for path in paths {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(AgentError::file(*path))?;
    }
    Ok(())
}

async fn copy(from: &Path, to: &Path) -> Result<(), AgentError> {
    tokio::fs::copy(from, to)
        .await
        .map(drop)
        .map_err(AgentError::file(from))
}

async fn write(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    tokio::fs::write(path, bytes)
        .await
        .map_err(AgentError::file(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's order, not the text's: `6.1.0-57` is newer than `6.1.0-9`, and a `~`
    /// release candidate older than its release.
    #[tokio::test]
    async fn kernel_versions_are_ordered_as_dpkg_orders_them() {
        let sorted = newest_first(
            ["6.1.0-9", "6.1.0-57", "6.1.0-57~rc1", "6.1.0-50"]
                .map(String::from)
                .to_vec(),
        )
        .await
        .expect("dpkg compares");
        assert_eq!(sorted, ["6.1.0-57", "6.1.0-57~rc1", "6.1.0-50", "6.1.0-9"]);
    }
}
