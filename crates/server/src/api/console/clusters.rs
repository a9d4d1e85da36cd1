//! The clusters view: per cluster its Kubernetes version and node OS image, its control
//! plane and pools (size, replicas, VMs running), its conditions with reason and message,
//! a rollout's progress, and — for a token that may write Clusters — the forms that scale a
//! pool and start a rolling upgrade (the page confirms, then PUTs the changed Cluster).

use maud::{Markup, html};
use plinth_model::Estate;
use plinth_model::policy::{PlacementPolicy, SpreadMode};

use super::objects::{Cluster, Snapshot, gib};
use super::pool::colour;

/// A pool's row: (name, vCPU, memory bytes, replicas, policy).
type PoolRow<'a> = (&'a str, u32, u64, u32, PlacementPolicy);

fn pools<'a>(estate: &'a Estate, cluster: &str) -> Vec<PoolRow<'a>> {
    let Some(c) = estate.clusters.iter().find(|c| c.name == cluster) else {
        return Vec::new();
    };
    let cp = &c.spec.control_plane;
    std::iter::once((
        plinth_control::upgrade::CONTROL_PLANE,
        cp.vcpu,
        cp.memory.0,
        cp.replicas,
        cp.placement,
    ))
    .chain(
        c.spec
            .node_pools
            .iter()
            .map(|p| (p.name.as_str(), p.vcpu, p.memory.0, p.replicas, p.placement)),
    )
    .collect()
}

fn policy(p: &PlacementPolicy) -> String {
    let over = match p.spread_over {
        plinth_model::policy::Scope::Host => "host",
        plinth_model::policy::Scope::Rack => "rack",
    };
    match (p.mode, p.hard_limit()) {
        (SpreadMode::Soft, _) => format!("spread over {over}s (soft)"),
        (_, limit) => format!("at most {} per {over}", limit.unwrap_or(1)),
    }
}

fn conditions(cluster: Option<&Cluster>) -> Markup {
    let Some(cluster) = cluster else {
        return html! { p.note { "Not stored: no status yet." } };
    };
    html! {
        table.conditions {
            caption.sr { "Conditions of " (cluster.metadata.name) }
            thead { tr { th scope="col" { "Condition" } th scope="col" { "Status" } th scope="col" { "Reason" } th scope="col" { "Message" } } }
            tbody {
                @for c in &cluster.status.conditions {
                    // Every condition but Progressing is good when True.
                    tr data-condition=(c.kind) data-status=(c.status)
                        .condition-bad[c.status == "False" && c.kind != "Progressing"] {
                        th scope="row" { (c.kind) }
                        td { (c.status) }
                        td { (c.reason) }
                        td.message { (c.message) }
                    }
                }
            }
        }
    }
}

/// Node VMs running of those the cluster should run, as a bar.
fn progress(cluster: Option<&Cluster>) -> Markup {
    let (ready, nodes) = cluster.map_or((0, 0), |c| {
        (
            c.status.ready_nodes.unwrap_or(0),
            c.status.nodes.unwrap_or(0),
        )
    });
    let rolling = cluster.is_some_and(|c| {
        c.status
            .conditions
            .iter()
            .any(|c| c.kind == "Progressing" && c.status == "True")
    });
    html! {
        div.progress {
            label {
                (ready) " of " (nodes) " node VMs running" @if rolling { " · rolling out" }
                progress value=(ready) max=(nodes.max(1)) {}
            }
        }
    }
}

fn scale_form(cluster: &str, pool: &str, replicas: u32) -> Markup {
    let id = format!("scale-{cluster}-{pool}");
    html! {
        form.action.scale data-cluster=(cluster) data-pool=(pool) data-replicas=(replicas) {
            label for=(id) { "Replicas" }
            input id=(id) name="replicas" type="number" min="0" max="1000" value=(replicas) required;
            button type="submit" { "Scale…" }
        }
    }
}

fn upgrade_form(cluster: &str, version: &str, image: &str) -> Markup {
    html! {
        form.action.upgrade data-cluster=(cluster) data-version=(version) data-image=(image) {
            label { "Kubernetes version " input id=(format!("version-{cluster}")) name="version" value=(version) required; }
            label { "Node OS image " input id=(format!("image-{cluster}")) name="image" value=(image) required; }
            button type="submit" { "Start rolling upgrade…" }
        }
    }
}

/// The clusters view of `snapshot`; `can_write` draws the action forms.
pub(crate) fn render(snapshot: &Snapshot, can_write: bool) -> Markup {
    let Some(estate) = &snapshot.estate else {
        return html! {
            p.empty { "No valid estate yet. Stored clusters and why they are not accepted:" }
            @for c in &snapshot.clusters {
                article.cluster { h3 { (c.metadata.name) } (conditions(Some(c))) }
            }
        };
    };
    html! {
        @for (i, spec) in estate.clusters.iter().enumerate() {
            @let stored = snapshot.clusters.iter().find(|c| c.metadata.name == spec.name);
            article.cluster data-cluster=(spec.name) aria-labelledby=(format!("cluster-{}", spec.name)) {
                h3 id=(format!("cluster-{}", spec.name)) {
                    span.swatch style=(format!("--c:{}", colour(i))) {}
                    (spec.name)
                }
                p.stack { "Kubernetes " strong { (spec.spec.kubernetes_version) } " · node OS " strong { (spec.spec.os_image) } }
                (progress(stored))
                (conditions(stored))
                table.pools {
                    caption.sr { "Pools of " (spec.name) }
                    thead { tr {
                        th scope="col" { "Pool" } th scope="col" { "Size" } th scope="col" { "Replicas" }
                        th scope="col" { "Running" } th scope="col" { "Placement" }
                        @if can_write { th scope="col" { "Scale" } }
                    } }
                    tbody {
                        @for (name, vcpu, memory, replicas, placement) in pools(estate, &spec.name) {
                            @let running = snapshot.vms.iter().filter(|v| v.spec.is_pool(&spec.name, name) && v.status.phase == "Running").count();
                            tr data-pool=(name) {
                                th scope="row" { (name) }
                                td { (vcpu) " vCPU · " (gib(memory)) }
                                td.n { (replicas) }
                                td.n { (running) }
                                td { (policy(&placement)) }
                                @if can_write {
                                    td { @if name != plinth_control::upgrade::CONTROL_PLANE { (scale_form(&spec.name, name, replicas)) } }
                                }
                            }
                        }
                    }
                }
                @if can_write { (upgrade_form(&spec.name, &spec.spec.kubernetes_version, &spec.spec.os_image)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut input = plinth_model::Input::default();
        input.add(plinth_model::SourceFile::new(
            "e.yaml",
            "apiVersion: plinth.dev/v1alpha1\nkind: Inventory\nmetadata: {name: lab}\nspec:\n  hostClasses:\n  - {name: std, sockets: 1, coresPerSocket: 8, memory: 64Gi}\n  racks: [{name: r1}]\n  hosts:\n  - {rack: r1, class: std, count: 3}\n---\napiVersion: plinth.dev/v1alpha1\nkind: Cluster\nmetadata: {name: apps}\nspec:\n  kubernetesVersion: 1.31.4\n  osImage: ubuntu-24.04\n  controlPlane: {replicas: 3, vcpu: 2, memory: 8Gi}\n  nodePools:\n  - {name: workers, vcpu: 4, memory: 16Gi, replicas: 2}\n",
        ));
        Snapshot {
            estate: plinth_model::load(&input).estate,
            ..Snapshot::default()
        }
    }

    #[test]
    fn only_a_token_that_may_write_clusters_gets_the_action_forms() {
        let snapshot = snapshot();
        let operator = render(&snapshot, true).into_string();
        // The node pool can be scaled, the control plane cannot; the cluster can be upgraded.
        assert!(
            operator.contains("data-pool=\"workers\" data-replicas=\"2\""),
            "{operator}"
        );
        assert!(!operator.contains(
            "form class=\"action scale\" data-cluster=\"apps\" data-pool=\"control-plane\""
        ));
        assert!(operator.contains(
            "form class=\"action upgrade\" data-cluster=\"apps\" data-version=\"1.31.4\""
        ));
        let reader = render(&snapshot, false).into_string();
        assert!(!reader.contains("<form"), "{reader}");
        assert!(!reader.contains("<button"), "{reader}");
        assert!(
            reader.contains("Kubernetes <strong>1.31.4</strong>"),
            "{reader}"
        );
    }
}
