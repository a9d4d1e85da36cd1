//! Small estates made for a case: three hosts, one cluster, the racks and zones the test
//! needs.
#![allow(
    dead_code,
    reason = "each test crate compiles this module; only some plan on a made-up estate"
)]

/// An estate of three hosts `<rack>-standard-01`, one in each of `host_racks`, among
/// `racks` (the Inventory's racks as YAML flow mappings), a cluster `solo` with `cp`
/// control-plane members and three workers, and `extra` documents.
pub(crate) fn estate(
    racks: &[&str],
    host_racks: [&str; 3],
    cp: u32,
    extra: &str,
) -> tempfile::TempDir {
    let rack_list: String = racks.iter().map(|r| format!("    - {{{r}}}\n")).collect();
    let hosts: String = host_racks
        .iter()
        .map(|r| format!("    - class: standard\n      rack: {r}\n      count: 1\n"))
        .collect();
    let yaml = format!(
        r#"apiVersion: plinth.dev/v1alpha1
kind: Inventory
metadata:
  name: three
spec:
  hostClasses:
    - name: standard
      sockets: 2
      coresPerSocket: 16
      threadsPerCore: 2
      memory: 384Gi
      disks:
        - kind: nvme
          capacity: 3.84T
          count: 2
      nicGbps: 25
      watts:
        idle: 180
        peak: 550
      leadTime: 42d
  racks:
{rack_list}  hosts:
{hosts}---
apiVersion: plinth.dev/v1alpha1
kind: Cluster
metadata:
  name: solo
spec:
  kubernetesVersion: "1.31.4"
  osImage: ubuntu-24.04
  controlPlane:
    replicas: {cp}
    vcpu: 2
    memory: 8Gi
  nodePools:
    - name: workers
      vcpu: 4
      memory: 16Gi
      disk: 60Gi
      replicas: 3
{extra}"#
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("estate.yaml"), yaml).expect("write");
    dir
}

/// Three racks, each its own declared zone.
pub(crate) const LONELY: [&str; 3] = [
    "name: ra, zone: a",
    "name: rb, zone: b",
    "name: rc, zone: c",
];
