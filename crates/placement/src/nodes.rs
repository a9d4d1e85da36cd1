//! The node-count formula both environments share: a pool gets
//! max(declared replicas, nodes that hold its pods' requests + headroom nodes), where the
//! pods are packed onto nodes of one shape after kubelet reservations and the pod limit.

use plinth_model::Resources;

/// Per-node kubelet settings of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kubelet {
    /// System, kube and eviction reservations taken from every node.
    pub reserved: Resources,
    /// `maxPods` (kubelet default 110).
    pub max_pods: u32,
    /// `podsPerCore` (0 or `None`: off).
    pub pods_per_core: Option<u32>,
}

impl Default for Kubelet {
    fn default() -> Self {
        Self {
            reserved: Resources::ZERO,
            max_pods: 110,
            pods_per_core: None,
        }
    }
}

impl Kubelet {
    /// Pods one node of `cores` cores may run: maxPods, capped by podsPerCore × cores.
    pub fn pod_limit(&self, cores: u32) -> u32 {
        match self.pods_per_core {
            Some(per) if per > 0 => self.max_pods.min(per.saturating_mul(cores)),
            _ => self.max_pods,
        }
    }
}

/// `count` pods with the same requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodShape {
    /// Requests of one pod.
    pub requests: Resources,
    /// How many.
    pub count: u32,
}

/// Which term of the formula set a pool's node count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeTerm {
    /// The declared replicas.
    Declared,
    /// The nodes the pods' requests need.
    Capacity,
    /// The requests' nodes plus the headroom rule's failure and maintenance nodes.
    Headroom,
}

/// The fewest nodes of `allocatable` (at most `pod_limit` pods each) that hold `pods`,
/// first-fit decreasing by shape; `None` when one pod fits no empty node.
pub fn fit_nodes(allocatable: &Resources, pod_limit: u32, pods: &[PodShape]) -> Option<u32> {
    let per = |free: &Resources, req: &Resources, slots: u32| -> u64 {
        let dim = |f: u64, r: u64| f.checked_div(r).unwrap_or(u64::MAX);
        dim(free.cpu_millis, req.cpu_millis)
            .min(dim(free.memory_bytes, req.memory_bytes))
            .min(dim(free.disk_bytes, req.disk_bytes))
            .min(u64::from(slots))
    };
    let mut order: Vec<usize> = (0..pods.len()).collect();
    let key = |p: &PodShape| {
        (
            p.requests.memory_bytes,
            p.requests.cpu_millis,
            p.requests.disk_bytes,
        )
    };
    order.sort_by(|&a, &b| key(&pods[b]).cmp(&key(&pods[a])).then(a.cmp(&b)));
    let mut nodes: Vec<(Resources, u32)> = Vec::new();
    for i in order {
        let shape = &pods[i];
        let mut left = u64::from(shape.count);
        for (free, slots) in nodes.iter_mut() {
            if left == 0 {
                break;
            }
            let k = per(free, &shape.requests, *slots).min(left);
            if k > 0 {
                *free = *free - shape.requests.times(k);
                *slots -= k as u32;
                left -= k;
            }
        }
        if left == 0 {
            continue;
        }
        let full = per(allocatable, &shape.requests, pod_limit);
        if full == 0 {
            return None;
        }
        while left > 0 {
            let k = full.min(left);
            nodes.push((*allocatable - shape.requests.times(k), pod_limit - k as u32));
            left -= k;
        }
    }
    u32::try_from(nodes.len()).ok()
}

/// max(declared, fit + extra), with the term that set it. `extra` is the headroom rule's
/// nodes (host failures plus maintenance) for bare metal, 0 where HA restart covers them.
pub fn node_count(declared: u32, fit: u32, extra: u32) -> (u32, NodeTerm) {
    let needed = fit.saturating_add(extra);
    if declared >= needed {
        (declared, NodeTerm::Declared)
    } else if extra == 0 {
        (needed, NodeTerm::Capacity)
    } else {
        (needed, NodeTerm::Headroom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_pack_onto_nodes_within_the_pod_limit() {
        let node = Resources::new(8000, 32, 0);
        let pods = [PodShape {
            requests: Resources::new(1000, 4, 0),
            count: 20,
        }];
        assert_eq!(fit_nodes(&node, 110, &pods), Some(3));
        assert_eq!(fit_nodes(&node, 5, &pods), Some(4));
        let big = [PodShape {
            requests: Resources::new(9000, 1, 0),
            count: 1,
        }];
        assert_eq!(fit_nodes(&node, 110, &big), None);
        let mixed = [
            PodShape {
                requests: Resources::new(1000, 1, 0),
                count: 4,
            },
            PodShape {
                requests: Resources::new(4000, 16, 0),
                count: 3,
            },
        ];
        assert_eq!(
            fit_nodes(&node, 110, &mixed),
            Some(2),
            "small pods fill the big ones' gaps"
        );
    }

    #[test]
    fn pod_limit_and_formula() {
        let k = Kubelet {
            pods_per_core: Some(10),
            ..Kubelet::default()
        };
        assert_eq!(k.pod_limit(4), 40);
        assert_eq!(k.pod_limit(64), 110);
        assert_eq!(node_count(3, 2, 0), (3, NodeTerm::Declared));
        assert_eq!(node_count(3, 4, 0), (4, NodeTerm::Capacity));
        assert_eq!(node_count(3, 2, 2), (4, NodeTerm::Headroom));
    }
}
