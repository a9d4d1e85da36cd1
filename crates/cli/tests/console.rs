//! The web console of `plinth serve` in headless Chromium, as an operator uses it: the
//! service on loopback over simulated agents, the page signed in with a token; the pool map
//! shows every host and VM the API reports; a pool scaled from the console shows its new VM
//! without a reload; a crashed host shows in the timeline as its phases and leaves the map
//! failed and empty; Decide shows the comparison and what would change its answer; a
//! rolling upgrade confirmed in the console starts; a reader's token sees no action and the
//! API refuses it anyway; the page is keyboard-navigable, breaks no rule of axe-core of
//! serious or critical impact in any view, fits a narrow screen and does not shift as
//! events stream in. The README's `examples/enterprise`, VirtualMachineSets included, shows
//! on the map exactly as the API lists it, and a host's maintenance asked from the map
//! shows the plan `plinth maintenance --dry-run` prints before it goes ahead, and a host
//! of it that loses power shows as phases while its VMs restart elsewhere. Screenshots of each view are kept in the test's
//! target directory (`PLINTH_WRITE_DOCS=1` refreshes the ones in `docs/`).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::serve::{Agents, Served, Server, cli, token, wait_ready};
use plinth_browser_check::axe::{self, Engine};
use plinth_browser_check::live::Live;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// One test at a time: each runs a browser and dozens of agents, and the failure phases are
/// timed on a machine of two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// axe-core, or why there is none (the caller prints it; `CI` makes it a failure).
fn axe_engine() -> Option<String> {
    match axe::engine().expect("axe-core") {
        Engine::Loaded(script) => Some(script),
        Engine::Skipped(why) => {
            println!(
                "no accessibility check: {why} (scripts/axe-core installs it; CI requires it)"
            );
            None
        }
    }
}

/// Fails on any rule of axe-core of serious or critical impact the page breaks in `view`.
fn accessible(page: &mut Live, engine: Option<&str>, view: &str) {
    let Some(engine) = engine else {
        return;
    };
    let found = page.axe(engine).expect("axe-core runs");
    let serious: Vec<String> = axe::serious(&found)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        serious.is_empty(),
        "axe-core, {view}: {}",
        serious.join("\n")
    );
}

/// Where the screenshots are kept.
fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).expect("artefact directory");
    dir
}

/// `plinth get KIND -o json`'s items.
fn items(server: &Server, token: &Path, kind: &str) -> Vec<Value> {
    let (code, out, err) = cli(server, token, &["get", kind, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).expect("json");
    list["items"].as_array().cloned().unwrap_or_default()
}

fn names(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// The `data-NAME` values of the elements `selector` matches, as a set.
fn shown(page: &mut Live, selector: &str, attribute: &str) -> BTreeSet<String> {
    let found = page
        .eval(&format!(
            "[...document.querySelectorAll('{selector}')].map(e => e.dataset.{attribute})"
        ))
        .expect("eval");
    found
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn sign_in(page: &mut Live, secret_file: &Path) {
    let secret = std::fs::read_to_string(secret_file).expect("token");
    page.eval(&format!(
        "document.getElementById('token').value = {}; document.getElementById('sign-in').requestSubmit()",
        serde_json::to_string(secret.trim()).expect("json")
    ))
    .expect("sign in");
    page.wait_for("!document.getElementById('nav').hidden", WAIT)
        .expect("signed in");
}

/// Waits until `expression` holds; else fails with what the page's status line says.
fn wait(page: &mut Live, expression: &str, what: &str) {
    if let Err(e) = page.wait_for(expression, WAIT) {
        let status = page
            .eval("document.getElementById('status').textContent")
            .unwrap_or_default();
        panic!("{what}: {e}; the page says: {status}");
    }
}

/// A screenshot kept as an artefact; with `PLINTH_WRITE_DOCS=1`, also as
/// `docs/console-NAME.png`.
fn shot(page: &mut Live, name: &str) {
    let path = artefacts().join(format!("{name}.png"));
    page.screenshot(&path).expect("screenshot");
    if std::env::var_os("PLINTH_WRITE_DOCS").is_some() {
        let docs = common::serve::root().join(format!("docs/console-{name}.png"));
        std::fs::copy(&path, docs).expect("docs screenshot");
    }
}

/// The host of `server` that runs most VMs, other than `spared`, loses power: the timeline
/// shows its failure's phases (`at_timeline` then looks at it), and the map shows the host
/// failed and empty, its VMs moved. The page is left on the pool map.
fn a_host_fails(
    page: &mut Live,
    agents: &Agents,
    server: &Server,
    token: &Path,
    spared: &[&str],
    at_timeline: impl FnOnce(&mut Live),
) {
    let busiest = items(server, token, "hosts")
        .iter()
        .filter(|h| !spared.iter().any(|s| h["metadata"]["name"] == *s))
        .max_by_key(|h| h["status"]["vms"].as_array().map_or(0, Vec::len))
        .and_then(|h| h["metadata"]["name"].as_str().map(str::to_owned))
        .expect("a host");
    page.eval("document.getElementById('tab-timeline').click()")
        .expect("timeline");
    agents.crash(&busiest);
    let failure = format!("#view-timeline li.failure[data-host=\"{busiest}\"]");
    for phase in ["detected", "fenced", "restarted"] {
        wait(
            page,
            &format!("document.querySelector('{failure} li.phase.seen[data-phase={phase}]')"),
            &format!("phase {phase} of {busiest}"),
        );
    }
    wait(
        page,
        "document.querySelector('#view-timeline tr.event[data-reason=HeartbeatMissed]')",
        "the event",
    );
    at_timeline(page);
    page.eval("document.getElementById('tab-pool').click()")
        .expect("pool");
    wait(
        page,
        &format!(
            "(h => h && h.dataset.state === 'failed' && !h.querySelector('li.vm'))(document.querySelector('#view-pool li.host[data-host=\"{busiest}\"]'))"
        ),
        "the host failed and empty on the map",
    );
}

#[test]
fn the_console_shows_the_pool_live_and_acts_through_the_api() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut page) = Live::launch(1280, 800).expect("chromium starts") else {
        println!("skipped: no chromium (scripts/test installs it; CI requires it)");
        return;
    };
    let engine = axe_engine();
    let engine = engine.as_deref();
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = Served::up(
        dir.path(),
        17_400,
        // The four-worker estate this test's steps and waits were written for (the shape
        // of `examples/small` before it was sized like a real estate). On the resized
        // example a CI run once missed the failure's `restarted` phase within 60 s: not
        // yet explained (see the stop-35 note).
        "crates/sim/tests/fixtures/four-workers",
        &[
            "crates/sim/tests/fixtures/four-workers",
            "examples/lab/environment.yaml",
        ],
    );
    let Served {
        server,
        agents,
        operator,
        reader,
        ..
    } = &svc;

    // Signed in, the pool map shows every host and VM the API reports.
    page.open(&server.url, WAIT).expect("the console loads");
    sign_in(&mut page, operator);
    let hosts = names(&items(server, reader, "hosts"));
    let vms = names(&items(server, reader, "vms"));
    page.wait_for(
        &format!(
            "document.querySelectorAll('#view-pool li.vm').length === {}",
            vms.len()
        ),
        WAIT,
    )
    .expect("every VM on the map");
    assert_eq!(shown(&mut page, "#view-pool li.host", "host"), hosts);
    assert_eq!(shown(&mut page, "#view-pool li.vm", "vm"), vms);
    accessible(&mut page, engine, "pool map");
    shot(&mut page, "pool");
    // A marker a reload would lose, and the layout shifts from now on.
    page.eval(
        "window.__sameLoad = true; window.__shift = 0; new PerformanceObserver(l => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; }).observe({type: 'layout-shift'})",
    )
    .expect("marker");

    // The keyboard moves between the views (arrow keys on the tabs).
    page.eval("document.getElementById('tab-pool').focus()")
        .expect("focus");
    page.press("ArrowRight").expect("key");
    page.wait_for(
        "document.activeElement.id === 'tab-clusters' && document.querySelector('#view-clusters form.scale[data-pool=workers]')",
        WAIT,
    )
    .expect("the clusters view by keyboard");
    accessible(&mut page, engine, "clusters, with actions");
    shot(&mut page, "clusters");

    // Scale the workers from 4 to 5, confirmed; the new VM appears on the map, live.
    page.eval(
        "const f = document.querySelector('form.scale[data-pool=workers]'); f.elements.replicas.value = '5'; f.requestSubmit()",
    )
    .expect("scale");
    page.wait_for("document.getElementById('confirm').open && document.getElementById('confirm-text').textContent.includes('from 4 to 5')", WAIT)
        .expect("a confirmation");
    page.eval("document.getElementById('confirm-ok').click()")
        .expect("confirm");
    page.eval("document.getElementById('tab-pool').click()")
        .expect("pool");
    wait(
        &mut page,
        "document.querySelector('#view-pool li.vm[data-vm=\"apps-workers-4\"][data-phase=Running]')",
        "the new VM shows, running",
    );
    assert_eq!(page.eval("window.__sameLoad").expect("eval"), true);

    // A host loses power: the timeline shows its failure as phases; the map shows it failed
    // and its VMs elsewhere.
    a_host_fails(&mut page, agents, server, reader, &[], |page| {
        accessible(page, engine, "timeline");
        shot(page, "timeline");
    });
    shot(&mut page, "pool-after-failure");
    let shift = page.eval("window.__shift").expect("eval");
    assert!(
        shift.as_f64().is_some_and(|s| s < 0.1),
        "layout shift {shift}"
    );

    // Decide: the comparison report of the applied estate, from the API.
    page.eval("document.getElementById('tab-decide').click()")
        .expect("decide");
    page.wait_for(
        "document.getElementById('report').srcdoc.includes('virtualized vs bare-metal Kubernetes nodes for small')",
        Duration::from_secs(180),
    )
    .expect("the report");
    // What would change the answer, drawn on the server from the report's sweeps: a
    // break-even row per input searched, a what-if row for the one cluster.
    wait(
        &mut page,
        "document.querySelectorAll('#sweeps tr[data-parameter]').length === 8 && document.querySelector('#sweeps tr[data-cluster=apps]')",
        "the break-even and the what-if",
    );
    accessible(&mut page, engine, "Decide");
    shot(&mut page, "decide");

    // A rolling upgrade started from the console, confirmed: the control plane starts it.
    page.eval("document.getElementById('tab-clusters').click()")
        .expect("clusters");
    wait(
        &mut page,
        "document.querySelector('#view-clusters form.upgrade[data-cluster=apps]')",
        "the upgrade form",
    );
    page.eval(
        "const u = document.querySelector('form.upgrade[data-cluster=apps]'); u.elements.version.value = '1.32.0'; u.requestSubmit()",
    )
    .expect("upgrade");
    wait(
        &mut page,
        "document.getElementById('confirm').open && document.getElementById('confirm-text').textContent.includes('Kubernetes 1.32.0')",
        "a confirmation of the upgrade",
    );
    page.eval("document.getElementById('confirm-ok').click()")
        .expect("confirm");
    page.eval("document.getElementById('tab-timeline').click()")
        .expect("timeline");
    wait(
        &mut page,
        "document.querySelector('#view-timeline tr.event[data-reason=UpgradeStarted]')",
        "the upgrade started",
    );

    // A narrow screen: nothing wider than it.
    page.resize(390, 844).expect("resize");
    page.eval("document.getElementById('tab-clusters').click()")
        .expect("clusters");
    wait(
        &mut page,
        "!document.getElementById('view-clusters').hidden && document.querySelector('#view-clusters article.cluster')",
        "the clusters on a narrow screen",
    );
    let width = page
        .eval("document.documentElement.scrollWidth")
        .expect("eval");
    assert!(
        width.as_u64().is_some_and(|w| w <= 390),
        "page is {width} px wide"
    );
    shot(&mut page, "narrow");
    page.resize(1280, 800).expect("resize");

    // A reader sees the clusters but no action, and the API refuses the write anyway.
    page.eval("document.getElementById('sign-out').click()")
        .expect("sign out");
    sign_in(&mut page, reader);
    page.eval("document.getElementById('tab-clusters').click()")
        .expect("clusters");
    page.wait_for(
        "document.querySelector('#view-clusters article.cluster[data-cluster=apps]')",
        WAIT,
    )
    .expect("the clusters, read-only");
    let actions = page
        .eval(
            "document.querySelectorAll('#view-clusters form.action, #view-clusters button').length",
        )
        .expect("eval");
    assert_eq!(actions, 0, "a reader sees no action");
    accessible(&mut page, engine, "clusters, read-only");
    page.eval("document.getElementById('tab-pool').click()")
        .expect("pool");
    page.wait_for(
        "!document.getElementById('view-pool').hidden && document.querySelector('#view-pool li.host')",
        WAIT,
    )
    .expect("the pool map, read-only");
    let actions = page
        .eval("document.querySelectorAll('#view-pool form.action').length")
        .expect("eval");
    assert_eq!(actions, 0, "a reader is offered no maintenance");
    let secret = std::fs::read_to_string(reader).expect("token");
    let cluster = &items(server, reader, "clusters")[0];
    let response = ureq::put(format!(
        "{}/apis/plinth.dev/v1alpha1/clusters/apps",
        server.url
    ))
    .header("Authorization", format!("Bearer {}", secret.trim()))
    .config()
    .http_status_as_error(false)
    .build()
    .send_json(cluster)
    .expect("an answer");
    assert_eq!(response.status().as_u16(), 403);
}

/// `examples/enterprise` as the README runs it (`plinth apply -f examples/enterprise`,
/// VirtualMachineSets included) over simulated agents, its clusters Ready: the admin's
/// token, the service and the agents.
fn enterprise(dir: &Path) -> (PathBuf, Server, Agents) {
    let agents = Agents::up(dir.join("agents"), 17_500, "examples/enterprise");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "").expect("tokens file");
    let admin = token(&tokens, "admin", dir);
    let server = Server::start(&dir.join("data"), &tokens, &agents.file());
    let (code, _, err) = cli(&server, &admin, &["apply", "-f", "examples/enterprise"]);
    assert_eq!(code, 0, "{err}");
    // Sped up as examples/lab's Environment is: a host failure is declared in 2 s and its
    // VMs restart elsewhere after the agents' 3 s self-fence.
    let environments = std::fs::read_to_string(
        common::serve::root().join("examples/enterprise/environments.yaml"),
    )
    .expect("environments");
    let fast = environments
        .replace("heartbeatInterval: 1s", "heartbeatInterval: 500ms")
        .replace(
            "failureDetectionTimeout: 15s",
            "failureDetectionTimeout: 2s",
        )
        .replace("selfFenceTimeout: 60s", "selfFenceTimeout: 3s");
    assert_ne!(fast, environments, "examples/enterprise's HA timings");
    let fast_file = dir.join("environments.yaml");
    std::fs::write(&fast_file, fast).expect("environments");
    let (code, _, err) = cli(
        &server,
        &admin,
        &["apply", &fast_file.display().to_string()],
    );
    assert_eq!(code, 0, "{err}");
    wait_ready(&server, &admin, "300s");
    (admin, server, agents)
}

#[test]
fn the_enterprise_estate_shows_every_host_and_vm_of_the_api() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut page) = Live::launch(1280, 800).expect("chromium starts") else {
        println!("skipped: no chromium (scripts/test installs it; CI requires it)");
        return;
    };
    let engine = axe_engine();
    let dir = tempfile::tempdir().expect("tempdir");
    let (admin, server, agents) = enterprise(dir.path());
    let vms = items(&server, &admin, "vms");
    let legacy = vms
        .iter()
        .filter(|v| v["spec"]["virtualMachineSet"].is_string())
        .count();
    assert_eq!(legacy, 44, "the VirtualMachineSets' 40 + 4 VMs");
    let running = |v: &&Value| v["status"]["phase"] == "Running";
    assert_eq!(vms.iter().filter(running).count(), vms.len());
    let vms = names(&vms);
    let hosts = names(&items(&server, &admin, "hosts"));
    page.open(&server.url, WAIT).expect("the console loads");
    sign_in(&mut page, &admin);
    wait(
        &mut page,
        &format!(
            "document.querySelectorAll('#view-pool li.vm[data-phase=Running]').length === {}",
            vms.len()
        ),
        "every VM on the map, running",
    );
    assert_eq!(shown(&mut page, "#view-pool li.vm", "vm"), vms);
    let mapped = shown(&mut page, "#view-pool li.host", "host");
    assert!(
        mapped.is_superset(&hosts),
        "{mapped:?} lacks some of {hosts:?}"
    );
    let on_hosts = page
        .eval(
            "[...document.querySelectorAll('#view-pool li.host[data-state=outside] li.vm')].length",
        )
        .expect("eval");
    assert_eq!(on_hosts, 0, "no VM on a host the design does not use");
    accessible(&mut page, engine.as_deref(), "enterprise pool map");
    shot(&mut page, "enterprise");

    // A host's maintenance asked of the service checks what the directory's dry run
    // checks: every cluster's quorum in the directory's order, and every budget — prod's
    // and staging's same-named workloads are two objects there. (Which VMs move differs:
    // the service plans on where its control plane built each VM, one cluster at a time,
    // the directory on the plan's placement.)
    let host = "r1-general-01";
    let ask = ["maintenance", "--host", host, "--dry-run", "-o", "json"];
    let (code, served, err) = cli(&server, &admin, &ask);
    assert_eq!(code, 0, "{err}");
    let (code, planned, err) =
        common::plinth_streams(&[&ask[..1], &["examples/enterprise"], &ask[1..]].concat());
    assert_eq!(code, 0, "{err}");
    let served: Value = serde_json::from_str(&served).expect("json");
    let planned: Value = serde_json::from_str(&planned).expect("json");
    for field in [
        "/plan/quorum",
        "/plan/budgets",
        "/safe",
        "/refusals",
        "/forced",
    ] {
        assert_eq!(served.pointer(field), planned.pointer(field), "{field}");
    }

    // The console shows the service's plan before the host goes down, then asks for it.
    page.eval(&format!(
        "document.querySelector('#view-pool form.maintain[data-host=\"{host}\"]').requestSubmit()"
    ))
    .expect("maintenance");
    let moves = served["plan"]["moves"].as_array().map_or(0, Vec::len);
    assert!(moves > 0, "{served}");
    wait(
        &mut page,
        &format!(
            "document.getElementById('confirm').open && document.querySelectorAll('#confirm-detail tr[data-vm]').length === {moves}"
        ),
        "the maintenance plan, every move",
    );
    let first = &served["plan"]["moves"][0];
    let row = page
        .eval(&format!(
            "[...document.querySelector('#confirm-detail tr[data-vm=\"{}\"]').cells].map(c => c.textContent)",
            first["vm"].as_str().expect("a VM")
        ))
        .expect("the first move");
    assert_eq!(row[1], first["to"], "{row}");
    accessible(&mut page, engine.as_deref(), "the maintenance plan");
    shot(&mut page, "maintenance");
    page.eval("document.getElementById('confirm-ok').click()")
        .expect("confirm");
    wait(
        &mut page,
        &format!(
            "(h => h && (h.dataset.state === 'maintenance' || !h.querySelector('li.vm')))(document.querySelector('#view-pool li.host[data-host=\"{host}\"]'))"
        ),
        "the host in maintenance, its VMs moving off",
    );
    page.eval("document.getElementById('tab-timeline').click()")
        .expect("timeline");
    wait(
        &mut page,
        "document.querySelector('#view-timeline tr.event[data-reason=MaintenanceRequested]')",
        "who asked, in the timeline",
    );

    // Another host loses power: its failure in phases, its VMs restarted elsewhere.
    a_host_fails(&mut page, &agents, &server, &admin, &[host], |_| {});
    shot(&mut page, "enterprise-after-failure");
}

/// The time from opening the console (signed in: the token is in the tab) to the pool map
/// drawn with every VM, with `examples/enterprise` running (24 hosts; 38 node VMs and the
/// VirtualMachineSets' 44). A measurement for docs/benchmarks.md, not a check: `cargo test
/// -p plinth-cli --test console -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: 24 simulated hosts and a minute to build them"]
fn first_paint_with_the_enterprise_estate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut page) = Live::launch(1280, 800).expect("chromium starts") else {
        println!("skipped: no chromium");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (admin, server, _agents) = enterprise(dir.path());
    let vms = names(&items(&server, &admin, "vms")).len();
    page.open(&server.url, WAIT).expect("the console loads");
    sign_in(&mut page, &admin);
    let drawn = format!(
        "!window.__old && document.querySelectorAll('#view-pool li.vm').length === {vms} && Number(document.getElementById('view-pool').dataset.drawn) - performance.timeOrigin"
    );
    page.wait_for(&drawn, WAIT).expect("the map");
    let mut times = Vec::new();
    for _ in 0..5 {
        page.eval("window.__old = true; location.reload()")
            .expect("reload");
        let ms = page.wait_for(&drawn, WAIT).expect("the map again");
        times.push(ms.as_f64().unwrap_or_default());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "first paint of the pool map, {} hosts and {vms} VMs: median {:.0} ms, max {:.0} ms ({times:?})",
        items(&server, &admin, "hosts").len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
