//! A generated estate of any size, written as manifests into a directory: hosts in racks
//! of 20 (four of every five `general`, the fifth `dense`), clusters with a control plane
//! and one or two node pools, Deployments and StatefulSets bound to the clusters
//! round-robin, and VirtualMachineSets. Environment, Scenario and PriceSheet are the
//! embedded defaults. The same shape always gives the same bytes.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// Hosts per rack.
const RACK: u32 = 20;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Active hosts.
    pub(crate) hosts: u32,
    /// Kubernetes clusters.
    pub(crate) clusters: u32,
    /// Workloads, spread over the clusters round-robin.
    pub(crate) workloads: u32,
    /// VMs of the VirtualMachineSets.
    pub(crate) vms: u32,
    /// VMs per VirtualMachineSet (the last one takes the rest).
    pub(crate) vms_per_set: u32,
}

impl Shape {
    /// Issue 13's estate for `compare`: 500 hosts, 50 clusters, 300 workloads, 200 VMs.
    pub(crate) const COMPARE: Self = Self {
        hosts: 500,
        clusters: 50,
        workloads: 300,
        vms: 200,
        vms_per_set: 10,
    };

    /// Issue 13's estate for `plan`: 10,000 VMs (9,593 in VirtualMachineSets, the 407 node
    /// VMs its 50 clusters plan) on 1,000 hosts.
    pub(crate) const PLAN: Self = Self {
        hosts: 1000,
        clusters: 50,
        workloads: 300,
        vms: 9593,
        vms_per_set: 50,
    };

    /// A tenth of [`Shape::COMPARE`], for tests.
    pub(crate) const SMALL: Self = Self {
        hosts: 50,
        clusters: 5,
        workloads: 30,
        vms: 20,
        vms_per_set: 10,
    };
}

fn inventory(shape: &Shape) -> String {
    let mut out = String::from(
        "apiVersion: plinth.dev/v1alpha1
kind: Inventory
metadata:
  name: generated
spec:
  hostClasses:
    - name: general
      sockets: 2
      coresPerSocket: 16
      threadsPerCore: 2
      memory: 512Gi
      disks:
        - kind: nvme
          capacity: 3.84T
          count: 2
      nicGbps: 25
      watts:
        idle: 210
        peak: 720
      leadTime: 42d
    - name: dense
      sockets: 2
      coresPerSocket: 32
      threadsPerCore: 2
      memory: 1Ti
      disks:
        - kind: nvme
          capacity: 7.68T
          count: 4
      nicGbps: 50
      watts:
        idle: 320
        peak: 1150
      leadTime: 56d
  racks:
",
    );
    let racks = shape.hosts.div_ceil(RACK);
    for r in 0..racks {
        let _ = writeln!(out, "    - name: r{r:03}");
    }
    out.push_str("  hosts:\n");
    for r in 0..racks {
        let here = (shape.hosts - r * RACK).min(RACK);
        let dense = here / 5;
        for (class, count) in [("general", here - dense), ("dense", dense)] {
            if count > 0 {
                let _ = writeln!(
                    out,
                    "    - class: {class}\n      rack: r{r:03}\n      count: {count}"
                );
            }
        }
    }
    out
}

fn cluster(c: u32) -> String {
    let version = ["1.31.4", "1.32.2", "1.33.1"][c as usize % 3];
    let image = ["ubuntu-22.04", "ubuntu-24.04"][c as usize % 2];
    let mut out = format!(
        "apiVersion: plinth.dev/v1alpha1
kind: Cluster
metadata:
  name: c{c:03}
spec:
  kubernetesVersion: \"{version}\"
  osImage: {image}
  tenant: t{tenant:02}
  controlPlane:
    replicas: 3
    vcpu: 4
    memory: 16Gi
    placement:
      spreadOver: host
      mode: strict
  nodePools:
    - name: workers
      vcpu: 16
      memory: 64Gi
      disk: 200Gi
      replicas: {workers}
      labels:
        plinth.dev/pool: workers
",
        tenant = c % 10,
        workers = 3 + c % 4,
    );
    if c.is_multiple_of(3) {
        out.push_str(
            "    - name: memory
      vcpu: 8
      memory: 128Gi
      replicas: 2
      labels:
        plinth.dev/pool: memory
      placement:
        spreadOver: host
        mode: strict
",
        );
    }
    out
}

fn workload(w: u32, clusters: u32) -> String {
    let cluster = w % clusters.max(1);
    let cpu = ["250m", "500m", "1", "2"][w as usize % 4];
    let memory = ["512Mi", "1Gi", "2Gi", "4Gi"][(w / 4) as usize % 4];
    let replicas = 2 + w % 5;
    let head = |kind: &str| {
        format!(
            "apiVersion: apps/v1
kind: {kind}
metadata:
  name: app-{w:04}
  namespace: ns-{ns}
  labels:
    plinth.dev/cluster: c{cluster:03}
  annotations:
    plinth.dev/usage-mean: \"0.{mean}\"
    plinth.dev/usage-peak: \"0.{peak}\"
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: app-{w:04}
",
            ns = w % 7,
            mean = 2 + w % 4,
            peak = 6 + w % 4,
        )
    };
    let pod = format!(
        "    metadata:
      labels:
        app: app-{w:04}
    spec:
      nodeSelector:
        plinth.dev/pool: workers
      containers:
        - name: main
          image: registry.example.com/app-{w:04}:1.0.0
          resources:
            requests:
              cpu: \"{cpu}\"
              memory: {memory}
"
    );
    if w % 5 == 4 {
        format!(
            "{}  serviceName: app-{w:04}
  template:
{pod}  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 50Gi
",
            head("StatefulSet")
        )
    } else {
        let spread = if w.is_multiple_of(2) {
            format!(
                "      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app: app-{w:04}
"
            )
        } else {
            String::new()
        };
        format!("{}  template:\n{pod}{spread}", head("Deployment"))
    }
}

fn vm_set(s: u32, count: u32) -> String {
    let strict = if s.is_multiple_of(4) {
        "  placement:\n    spreadOver: host\n    mode: strict\n"
    } else {
        ""
    };
    format!(
        "apiVersion: plinth.dev/v1alpha1
kind: VirtualMachineSet
metadata:
  name: vms-{s:04}
spec:
  count: {count}
  vcpu: {vcpu}
  memory: {memory}Gi
  disk: 100Gi
{strict}  restartPriority: medium
  usage:
    mean: 0.2
    peak: 0.5
",
        vcpu = 2 << (s % 3),
        memory = 4 << (s % 3),
    )
}

fn documents(docs: impl Iterator<Item = String>) -> String {
    docs.collect::<Vec<_>>().join("---\n")
}

/// The manifests of `shape`, as (file name, content).
pub(crate) fn manifests(shape: &Shape) -> Vec<(&'static str, String)> {
    let per_set = shape.vms_per_set.max(1);
    let sets = shape.vms.div_ceil(per_set);
    let mut files = vec![
        ("inventory.yaml", inventory(shape)),
        ("clusters.yaml", documents((0..shape.clusters).map(cluster))),
    ];
    if shape.workloads > 0 {
        files.push((
            "workloads.yaml",
            documents((0..shape.workloads).map(|w| workload(w, shape.clusters))),
        ));
    }
    if sets > 0 {
        files.push((
            "vms.yaml",
            documents((0..sets).map(|s| vm_set(s, (shape.vms - s * per_set).min(per_set)))),
        ));
    }
    files
}

/// Writes the manifests of `shape` into `dir` (created if missing).
pub(crate) fn write(dir: &Path, shape: &Shape) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in manifests(shape) {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}
