//! Clusters merged into one, as an architect consolidates clusters that could share
//! servers: one cluster named after its first member, with the largest member's control
//! plane, every member's worker pools (one pool where members have alike pools of one name)
//! and workloads, a namespace per former cluster where two would clash. `bareMetal.shareServers` merges the clusters that run the same OS image
//! and Kubernetes version ([`same_stack_groups`]); `compare`'s what-if merges them all
//! ([`every_cluster`]). A cluster a timeline step adds later is never merged.

use std::collections::{BTreeMap, BTreeSet};

use crate::estate::Estate;
use crate::kinds::cluster::{NodePool, POOL_LABEL};
use crate::kinds::environment::EnvironmentType;
use crate::kinds::scenario::TimelineAction;
use crate::workload::WorkloadId;

/// One merged cluster.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Merge {
    /// Its name: its first member's.
    pub into: String,
    /// Every member, the first included, in input order.
    pub members: Vec<String>,
}

/// An estate whose clusters were merged.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The estate as merged.
    pub estate: Estate,
    /// The merges, in input order of their first members.
    pub merges: Vec<Merge>,
    /// Each moved workload's identity in the merged estate → its identity in the input.
    pub workloads: BTreeMap<WorkloadId, WorkloadId>,
}

/// Clusters added by a timeline step (`addCluster`): they do not exist at the start.
fn added_later(estate: &Estate) -> BTreeSet<&str> {
    estate
        .scenario
        .spec
        .operations
        .timeline
        .iter()
        .filter(|s| s.action == TimelineAction::AddCluster)
        .filter_map(|s| s.cluster.as_deref())
        .collect()
}

/// Groups of two or more clusters (indices into `Estate::clusters`, input order) with the
/// same OS image and Kubernetes version.
pub fn same_stack_groups(estate: &Estate) -> Vec<Vec<usize>> {
    let later = added_later(estate);
    let mut groups: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, c) in estate.clusters.iter().enumerate() {
        if !later.contains(c.name.as_str()) {
            groups
                .entry((&c.spec.os_image, &c.spec.kubernetes_version))
                .or_default()
                .push(i);
        }
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
    out.sort();
    out
}

/// The estate the bare-metal design runs when its Environment shares servers
/// (`shareServers: true`): the clusters of one OS image and Kubernetes version merged.
/// `None` when it does not share servers or no two clusters run the same stack.
pub fn shared(estate: &Estate) -> Option<Merged> {
    if !estate.bare_metal.spec.share_servers {
        return None;
    }
    let groups = same_stack_groups(estate);
    (!groups.is_empty()).then(|| merged(estate, &groups))
}

/// The merge design `env` runs `estate` with: [`shared`] on bare metal, none on the
/// virtualized pool (VMs of every cluster share its hosts already). `plan`, `simulate` and
/// `compare` all go through it.
pub fn for_design(estate: &Estate, env: EnvironmentType) -> Option<Merged> {
    match env {
        EnvironmentType::BareMetal => shared(estate),
        EnvironmentType::Virtualized => None,
    }
}

/// Every cluster that exists from the start, as one group (none with fewer than two).
pub fn every_cluster(estate: &Estate) -> Vec<Vec<usize>> {
    let later = added_later(estate);
    let all: Vec<usize> = (0..estate.clusters.len())
        .filter(|i| !later.contains(estate.clusters[*i].name.as_str()))
        .collect();
    if all.len() > 1 { vec![all] } else { Vec::new() }
}

/// `estate` with each of `groups` (as [`same_stack_groups`] gives them) merged into its
/// first member. The merged cluster runs the first member's OS image, Kubernetes version
/// and Kubernetes timings; its control plane has the most members and the largest member
/// size of any; its pools are every member's: a pool with the name and the node shape of an
/// earlier member's joins it (replicas and bounds added; a `scalePool` step of a member
/// scales it to the step's replicas plus the others'), another pool of that name is renamed
/// `<member>-<pool>` (it keeps its `plinth.dev/pool` label, so a node selector on that label
/// matches it, and any other pool of that name, as before the merge);
/// a member's namespace used by an earlier member becomes `<member>-<namespace>`, for its
/// workloads and disruption budgets alike (a renamed pool or namespace whose new name is
/// taken too gets `-2`, `-3`, …); timeline steps follow their cluster and pool.
pub fn merged(estate: &Estate, groups: &[Vec<usize>]) -> Merged {
    let mut out = estate.clone();
    let mut merges = Vec::new();
    let mut workloads = BTreeMap::new();
    let mut gone = BTreeSet::new();
    for group in groups {
        let Some((&first, rest)) = group.split_first() else {
            continue;
        };
        let into = estate.clusters[first].name.clone();
        let mut pools: BTreeSet<String> = estate.clusters[first]
            .spec
            .node_pools
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let mut namespaces = namespaces_of(estate, &into);
        let mut merge = Merge {
            into: into.clone(),
            members: vec![into.clone()],
        };
        // (member, its pool) → the merged pool it is part of.
        let mut pool_of: BTreeMap<(String, String), String> = estate.clusters[first]
            .spec
            .node_pools
            .iter()
            .map(|p| ((into.clone(), p.name.clone()), p.name.clone()))
            .collect();
        for &m in rest {
            let member = &estate.clusters[m];
            let name = member.name.clone();
            // Pools.
            let target = &mut out.clusters[first].spec;
            for p in &member.spec.node_pools {
                let mut p = p.clone();
                let original = p.name.clone();
                let key = (name.clone(), original.clone());
                if let Some(same) = target
                    .node_pools
                    .iter_mut()
                    .find(|q| q.name == original && same_shape(q, &p))
                {
                    add_nodes(same, &p);
                    pool_of.insert(key, same.name.clone());
                    continue;
                }
                if pools.contains(&p.name) {
                    p.labels
                        .entry(POOL_LABEL.to_owned())
                        .or_insert_with(|| original.clone());
                    p.name = unused(&pools, &format!("{name}-{original}"));
                }
                pools.insert(p.name.clone());
                pool_of.insert(key, p.name.clone());
                target.node_pools.push(p);
            }
            // Control plane: the most members, the largest member.
            let cp = &mut target.control_plane;
            let theirs = &member.spec.control_plane;
            cp.replicas = cp.replicas.max(theirs.replicas);
            cp.vcpu = cp.vcpu.max(theirs.vcpu);
            cp.memory = cp.memory.max(theirs.memory);
            cp.disk = cp.disk.max(theirs.disk);
            // Namespaces.
            let mut renamed = BTreeMap::new();
            for ns in namespaces_of(estate, &name) {
                let new = if namespaces.contains(&ns) {
                    unused(&namespaces, &format!("{name}-{ns}"))
                } else {
                    ns.clone()
                };
                namespaces.insert(new.clone());
                renamed.insert(ns, new);
            }
            for w in out.workloads.iter_mut().filter(|w| w.id.cluster == name) {
                let original = w.id.clone();
                w.id.cluster = into.clone();
                if let Some(ns) = renamed.get(&w.id.namespace) {
                    w.id.namespace = ns.clone();
                }
                workloads.insert(w.id.clone(), original);
            }
            for b in out
                .disruption_budgets
                .iter_mut()
                .filter(|b| b.cluster == name)
            {
                b.cluster = into.clone();
                if let Some(ns) = renamed.get(&b.namespace) {
                    b.namespace = ns.clone();
                }
            }
            merge.members.push(name.clone());
            gone.insert(name);
        }
        follow_timeline(&mut out, estate, &merge, &pool_of);
        merges.push(merge);
    }
    // Indices above point into the input order: drop the merged members only now.
    out.clusters.retain(|c| !gone.contains(&c.name));
    Merged {
        estate: out,
        merges,
        workloads,
    }
}

/// The timeline steps of `merge`'s members, on the merged cluster: a `scalePool` step on
/// the pool its pool became, asking for the step's replicas plus the other members' in that
/// pool; a rollout (`upgradeKubernetes`, `patchOs`) several members asked for at the same
/// time and version, once.
fn follow_timeline(
    out: &mut Estate,
    estate: &Estate,
    merge: &Merge,
    pool_of: &BTreeMap<(String, String), String>,
) {
    let declared = |cluster: &str, pool: &str| {
        estate
            .cluster(cluster)
            .and_then(|c| c.spec.node_pools.iter().find(|p| p.name == pool))
            .map_or(0, |p| p.replicas)
    };
    let mut steps = std::mem::take(&mut out.scenario.spec.operations.timeline);
    let merged_replicas = |pool: &str| {
        out.cluster(&merge.into)
            .and_then(|c| c.spec.node_pools.iter().find(|p| p.name == pool))
            .map_or(0, |p| p.replicas)
    };
    for s in &mut steps {
        let Some(member) = s.cluster.clone().filter(|c| merge.members.contains(c)) else {
            continue;
        };
        s.cluster = Some(merge.into.clone());
        if let Some(p) = s.pool.as_mut()
            && let Some(new) = pool_of.get(&(member.clone(), p.clone()))
        {
            let others = merged_replicas(new).saturating_sub(declared(&member, p));
            if let Some(r) = s.replicas.as_mut() {
                *r = r.saturating_add(others);
            }
            *p = new.clone();
        }
    }
    let mut rollouts = Vec::new();
    steps.retain(|s| {
        let rollout = matches!(
            s.action,
            TimelineAction::UpgradeKubernetes | TimelineAction::PatchOs
        );
        if !rollout || s.cluster.as_deref() != Some(merge.into.as_str()) {
            return true;
        }
        let key = (s.at, s.action, s.version.clone());
        let first = !rollouts.contains(&key);
        rollouts.push(key);
        first
    });
    out.scenario.spec.operations.timeline = steps;
}

/// `name`, or `name-2`, `name-3`, … : the first that `taken` does not hold.
fn unused(taken: &BTreeSet<String>, name: &str) -> String {
    (1..)
        .map(|i| {
            if i == 1 {
                name.to_owned()
            } else {
                format!("{name}-{i}")
            }
        })
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| name.to_owned())
}

/// Whether two pools' nodes are alike (all but name, size and bounds): such pools of
/// merged clusters become one.
fn same_shape(a: &NodePool, b: &NodePool) -> bool {
    let shape = |p: &NodePool| NodePool {
        replicas: 0,
        min: None,
        max: None,
        ..p.clone()
    };
    shape(a) == shape(b)
}

/// Adds `more`'s nodes (replicas and bounds) to `pool`.
fn add_nodes(pool: &mut NodePool, more: &NodePool) {
    let ((a_min, a_max), (b_min, b_max)) = (pool.bounds(), more.bounds());
    if pool.min.is_some() || more.min.is_some() {
        pool.min = Some(a_min.saturating_add(b_min));
    }
    if pool.max.is_some() || more.max.is_some() {
        pool.max = Some(a_max.saturating_add(b_max));
    }
    pool.replicas = pool.replicas.saturating_add(more.replicas);
}

/// The namespaces of `cluster`'s workloads and disruption budgets.
fn namespaces_of(estate: &Estate, cluster: &str) -> BTreeSet<String> {
    let workloads = estate
        .workloads
        .iter()
        .filter(|w| w.id.cluster == cluster)
        .map(|w| w.id.namespace.clone());
    let budgets = estate
        .disruption_budgets
        .iter()
        .filter(|b| b.cluster == cluster)
        .map(|b| b.namespace.clone());
    workloads.chain(budgets).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::{Input, load};
    use crate::source::SourceFile;

    const INVENTORY: &str = "apiVersion: plinth.dev/v1alpha1\nkind: Inventory\nmetadata:\n  name: i\nspec:\n  hostClasses:\n    - name: std\n      sockets: 2\n      coresPerSocket: 16\n      threadsPerCore: 2\n      memory: 512Gi\n  racks:\n    - name: r1\n  hosts:\n    - class: std\n      rack: r1\n      count: 4\n";

    fn cluster(name: &str, version: &str, cp: u32, vcpu: u32) -> String {
        format!(
            "---\napiVersion: plinth.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {name}\nspec:\n  kubernetesVersion: \"{version}\"\n  osImage: ubuntu-24.04\n  controlPlane:\n    replicas: {cp}\n  nodePools:\n    - name: workers\n      vcpu: {vcpu}\n      memory: 32Gi\n      replicas: 2\n"
        )
    }

    fn deployment(cluster: &str, namespace: &str) -> String {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {namespace}\n  labels:\n    plinth.dev/cluster: {cluster}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: web\n          resources:\n            requests:\n              cpu: 500m\n              memory: 1Gi\n"
        )
    }

    fn estate(text: &str) -> Estate {
        let mut input = Input::default();
        input.add(SourceFile::new("e.yaml", format!("{INVENTORY}{text}")));
        let loaded = load(&input);
        loaded
            .estate
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
    }

    #[test]
    fn clusters_of_one_version_merge_into_the_first_with_a_namespace_each() {
        let e = estate(&format!(
            "{}{}{}{}{}{}{}{}",
            cluster("a", "1.31.4", 1, 8),
            cluster("b", "1.32.2", 3, 8),
            cluster("c", "1.31.4", 3, 16),
            cluster("d", "1.31.4", 1, 8),
            deployment("a", "shop"),
            deployment("b", "shop"),
            deployment("c", "shop"),
            deployment("d", "shop"),
        ));
        let groups = same_stack_groups(&e);
        assert_eq!(groups, [vec![0, 2, 3]]);
        let m = merged(&e, &groups);
        let names: Vec<&str> = m.estate.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &m.estate.clusters[0].spec;
        assert_eq!(a.control_plane.replicas, 3, "the most members of any");
        let pools: Vec<&str> = a.node_pools.iter().map(|p| p.name.as_str()).collect();
        // d's pool is like a's: one pool of both; c's is not: renamed.
        assert_eq!(pools, ["workers", "c-workers"]);
        assert_eq!(a.node_pools[0].replicas, 4);
        assert_eq!(
            a.node_pools[1].labels.get(POOL_LABEL).map(String::as_str),
            Some("workers"),
            "a renamed pool keeps its pool label"
        );
        let ids: Vec<String> = m
            .estate
            .workloads
            .iter()
            .map(|w| w.id.to_string())
            .collect();
        assert_eq!(
            ids,
            [
                "a/shop/Deployment/web",
                "b/shop/Deployment/web",
                "a/c-shop/Deployment/web",
                "a/d-shop/Deployment/web"
            ]
        );
        let moved = &m.estate.workloads[2].id;
        assert_eq!(
            m.workloads.get(moved).map(ToString::to_string).as_deref(),
            Some("c/shop/Deployment/web")
        );
        assert_eq!(
            m.merges,
            [Merge {
                into: "a".into(),
                members: vec!["a".into(), "c".into(), "d".into()]
            }]
        );
        // Every cluster, whatever its version.
        let all = every_cluster(&e);
        assert_eq!(all, [vec![0, 1, 2, 3]]);
        assert_eq!(merged(&e, &all).estate.clusters.len(), 1);
    }

    #[test]
    fn timeline_steps_follow_their_cluster_into_the_merge() {
        let e = estate(&format!(
            "{}{}---\napiVersion: plinth.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: s\nspec:\n  operations:\n    timeline:\n      - at: 10d\n        action: scalePool\n        cluster: d\n        pool: workers\n        replicas: 5\n      - at: 20d\n        action: patchOs\n        cluster: a\n      - at: 20d\n        action: patchOs\n        cluster: d\n",
            cluster("a", "1.31.4", 3, 8),
            cluster("d", "1.31.4", 3, 8),
        ));
        let m = merged(&e, &same_stack_groups(&e));
        let steps: Vec<String> = m
            .estate
            .scenario
            .spec
            .operations
            .timeline
            .iter()
            .map(|s| {
                format!(
                    "{:?} {:?} {:?} {:?}",
                    s.action, s.cluster, s.pool, s.replicas
                )
            })
            .collect();
        // d's 5 nodes beside a's 2 in the one pool; one patch of the one cluster.
        assert_eq!(
            steps,
            [
                r#"ScalePool Some("a") Some("workers") Some(7)"#,
                r#"PatchOs Some("a") None None"#,
            ]
        );
    }

    #[test]
    fn a_renamed_pool_or_namespace_never_takes_a_name_in_use() {
        let first = cluster("a", "1.31.4", 3, 8).replace(
            "      replicas: 2\n",
            "      replicas: 2\n    - name: c-workers\n      vcpu: 4\n      memory: 32Gi\n      replicas: 1\n",
        );
        let e = estate(&format!(
            "{first}{}{}{}{}",
            cluster("c", "1.31.4", 3, 16),
            deployment("a", "shop"),
            deployment("a", "c-shop"),
            deployment("c", "shop"),
        ));
        let m = merged(&e, &same_stack_groups(&e));
        let pools: Vec<&str> = m.estate.clusters[0]
            .spec
            .node_pools
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(pools, ["workers", "c-workers", "c-workers-2"]);
        let ids: BTreeSet<String> = m
            .estate
            .workloads
            .iter()
            .map(|w| w.id.to_string())
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(ids.contains("a/c-shop-2/Deployment/web"), "{ids:?}");
    }

    #[test]
    fn a_cluster_added_later_is_never_merged() {
        let e = estate(&format!(
            "{}{}---\napiVersion: plinth.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: s\nspec:\n  operations:\n    timeline:\n      - at: 30d\n        action: addCluster\n        cluster: b\n",
            cluster("a", "1.31.4", 3, 8),
            cluster("b", "1.31.4", 3, 8),
        ));
        assert!(same_stack_groups(&e).is_empty());
        assert!(every_cluster(&e).is_empty());
    }
}
