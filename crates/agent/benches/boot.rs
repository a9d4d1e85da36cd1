//! Linked clone + boot to guest-agent Ready, one VM at a time, ten times: prints each time,
//! the p50 and the accelerator. Needs the node image: `PLINTH_IMAGE=$(scripts/image)`.
//!
//! `PLINTH_IMAGE=$(scripts/image) cargo bench -p plinth-agent --bench boot`

#![allow(missing_docs, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use plinth_agent::image::{Image, Images};
use plinth_agent::{Hypervisor, KVM_PROBE_TIMEOUT, QemuConfig, QemuHypervisor, detect_accel};
use plinth_proto::guest::Bootstrap;
use plinth_proto::{Capacity, VmName, VmSpec};

const BOOTS: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo test --all-targets` runs this binary without `--bench`: boots are for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    // `scripts/image` prints one image directory per line: the first is `plinth-node`.
    let Some(dir) = std::env::var("PLINTH_IMAGE")
        .ok()
        .and_then(|dirs| dirs.lines().next().map(PathBuf::from))
    else {
        eprintln!("set PLINTH_IMAGE=$(scripts/image)");
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let image = Image::open(&dir)?;
        let accel = detect_accel(&image, KVM_PROBE_TIMEOUT).await;
        let image_name = image.name.clone();
        let images = Images::open(&[dir])?;
        let state = tempfile::tempdir()?;
        let hv = QemuHypervisor::open(QemuConfig {
            images,
            state_dir: state.path().join("run"),
            storage: state.path().join("storage"),
            accel,
            capacity: Capacity { cpus: 2, memory_mib: 1024 },
            underlay: None,
        })
        .await?;
        let mut times = Vec::new();
        for i in 0..BOOTS {
            let name = VmName(format!("bench-{i}"));
            let spec = VmSpec {
                name: name.clone(),
                vcpus: 1,
                memory_mib: 192,
                image: image_name.clone(),
                bootstrap: Bootstrap {
                    node: format!("node-{i}"),
                    cluster: "bench".into(),
                    kubernetes_version: "1.33.1".into(),
                    join_config: "kind: JoinConfiguration\n".into(),
                },
                network: None,
            };
            let t0 = Instant::now();
            hv.create(&spec).await?;
            hv.start(&name).await?;
            let took = t0.elapsed();
            hv.delete(&name).await?;
            eprintln!("boot {i}: {:.2} s", took.as_secs_f64());
            times.push(took);
        }
        times.sort();
        let p50 = times[BOOTS / 2];
        let max = times.last().copied().unwrap_or(Duration::ZERO);
        eprintln!(
            "linked clone + boot to Ready, {BOOTS} boots, accel {}: p50 {:.2} s, min {:.2} s, max {:.2} s",
            accel.name(),
            p50.as_secs_f64(),
            times[0].as_secs_f64(),
            max.as_secs_f64()
        );
        Ok(())
    })
}
