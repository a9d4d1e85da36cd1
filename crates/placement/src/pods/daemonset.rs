//! DaemonSets: one pod per eligible node, as the DaemonSet controller and scheduler do it.

use std::sync::Arc;

use super::scheduler::{Binding, OK, PodState, Scheduler};
use super::{NodeId, PodTemplate, PodsError};

/// The result of scheduling a DaemonSet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonSetOutcome {
    /// Pods bound now, one per eligible node that lacked one, in node-name order.
    pub bound: Vec<Binding>,
    /// Eligible nodes that already run a pod of this owner.
    pub already_running: usize,
    /// Nodes the DaemonSet does not target (node selector, affinity, untolerated taint).
    pub not_eligible: usize,
    /// Eligible nodes where the pod does not fit, with the reason (the pod stays pending).
    pub pending: Vec<(NodeId, String)>,
}

impl Scheduler {
    /// Runs one pod of `pod.owner` on every eligible node that has none yet (call again when
    /// nodes join). Like DaemonSet pods, it tolerates cordoned nodes; each pod must still
    /// pass the resource, max-pods and pod (anti-)affinity filters of its node.
    pub fn schedule_daemonset(&mut self, pod: &PodTemplate) -> Result<DaemonSetOutcome, PodsError> {
        let compiled = Arc::new(self.compile(pod)?);
        let stat = self.static_pass(&compiled, true);
        let mut order: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| stat.code[i] != super::scheduler::GONE)
            .collect();
        order.sort_by(|a, b| self.nodes[*a].name.cmp(&self.nodes[*b].name));
        let mut outcome = DaemonSetOutcome::default();
        let mut state = PodState::default();
        for i in order {
            if stat.code[i] != OK {
                outcome.not_eligible += 1;
                continue;
            }
            let runs = self.node_pods[i]
                .iter()
                .any(|p| self.template(*p).is_some_and(|t| t.owner == pod.owner));
            if runs {
                outcome.already_running += 1;
                continue;
            }
            self.pod_state(&compiled, &mut state);
            let node = NodeId(u32::try_from(i).unwrap_or(u32::MAX));
            match self
                .resource_reason(&compiled, i)
                .or_else(|| self.pod_reason(&compiled, &state, i))
            {
                Some(reason) => outcome.pending.push((node, reason.to_owned())),
                None => outcome.bound.push(self.bind(&compiled, node.0)),
            }
        }
        Ok(outcome)
    }
}
