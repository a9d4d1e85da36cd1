//! `scripts/testbed up 2` / `down`: namespaced hosts whose agents answer on their addresses;
//! `down` is idempotent, also after a crash.

mod agent_support;

use std::process::Command;

use agent_support::{connect_over, image, repo};
use plinth_proto::{HostName, Token};

fn testbed(dir: &std::path::Path, args: &[&str]) -> bool {
    Command::new(repo().join("scripts/testbed"))
        .args(args)
        .env("PLINTH", env!("CARGO_BIN_EXE_plinth"))
        .env("PLINTH_IMAGE", image())
        .env("PLINTH_TESTBED_DIR", dir)
        .status()
        .expect("scripts/testbed runs")
        .success()
}

fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("plinth-h"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn testbed_up_2_answers_on_each_host_and_down_is_idempotent_even_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(testbed(dir.path(), &["up", "2"]));
    let mut up = namespaces();
    up.sort();
    assert_eq!(up, ["plinth-h1", "plinth-h2"]);
    let token = Token::new(&std::fs::read_to_string(dir.path().join("token")).expect("token"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The agents speak mutual TLS with the certificates `up` issued.
    let tls = plinth_tls::LinkFiles::control_plane(&dir.path().join("tls"))
        .control_plane_config()
        .expect("up issues the control plane's certificate");
    rt.block_on(async {
        for (host, addr) in [("h1", "10.77.0.11:7700"), ("h2", "10.77.0.12:7700")] {
            let (_, inv) = connect_over(addr.parse().expect("addr"), &token, Some(&tls)).await;
            assert_eq!(
                inv.host,
                HostName(host.into()),
                "the agent on {addr} serves {host}"
            );
        }
    });
    assert!(testbed(dir.path(), &["down"]));
    assert!(namespaces().is_empty());
    assert!(testbed(dir.path(), &["down"]), "down twice");

    // A crash: the agent dies under the testbed; down still cleans up, up starts afresh.
    assert!(testbed(dir.path(), &["up", "1"]));
    let pids = Command::new("ip")
        .args(["netns", "pids", "plinth-h1"])
        .output()
        .expect("ip runs");
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    assert!(
        testbed(dir.path(), &["up", "1"]),
        "up over a crashed testbed"
    );
    assert_eq!(namespaces(), vec!["plinth-h1".to_owned()]);
    assert!(testbed(dir.path(), &["down"]));
    assert!(namespaces().is_empty());
    let links = Command::new("ip")
        .args(["link", "show", "plinth-br0"])
        .output()
        .expect("ip runs");
    assert!(!links.status.success(), "the bridge is gone");
}
