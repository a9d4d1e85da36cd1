//! The event log: JSON Lines of [`plinth_events::Record`]s, written in the order events
//! happen (virtual time, then queue sequence), so it is byte-identical for the same inputs
//! and seed. Each event is serialized straight from the typed enum, borrowing the world's
//! names, without building a JSON tree.

use plinth_events::{Event, Record};

use crate::setup::SimPod;

/// An in-memory JSON Lines log.
#[derive(Clone, Debug, Default)]
pub(crate) struct Log {
    pub(crate) buf: Vec<u8>,
    pub(crate) lines: u64,
}

impl Log {
    /// Appends `event` at `t` ms.
    pub(crate) fn write(&mut self, t: u64, event: Event<'_>) {
        // Writing to a `Vec` does not fail, and every event of the schema serializes.
        if Record::new(t, event).write_to(&mut self.buf).is_ok() {
            self.lines += 1;
        }
    }
}

/// Each pod's ordinal among its workload's replicas (0, 1, … in the order the pods were
/// created), extended as pods are added.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodOrdinals {
    /// By pod index.
    of: Vec<u32>,
    /// By workload index: the next ordinal.
    next: Vec<u32>,
}

impl PodOrdinals {
    /// Pod `p`'s ordinal (`pods` is every pod created so far).
    pub(crate) fn get(&mut self, pods: &[SimPod], p: usize) -> u32 {
        while self.of.len() <= p {
            let Some(pod) = pods.get(self.of.len()) else {
                break;
            };
            let w = pod.workload as usize;
            if self.next.len() <= w {
                self.next.resize(w + 1, 0);
            }
            self.of.push(self.next[w]);
            self.next[w] += 1;
        }
        self.of.get(p).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use plinth_model::Resources;

    use super::*;

    fn pod(workload: u32) -> SimPod {
        SimPod {
            workload,
            cluster: 0,
            template: std::sync::Arc::default(),
            requests: Resources::ZERO,
            local: false,
            initial: None,
        }
    }

    #[test]
    fn ordinals_count_within_each_workload_as_pods_are_added() {
        let mut pods = vec![pod(0), pod(1), pod(0)];
        let mut o = PodOrdinals::default();
        assert_eq!(o.get(&pods, 2), 1);
        assert_eq!(o.get(&pods, 1), 0);
        pods.push(pod(1));
        assert_eq!(o.get(&pods, 3), 1);
        assert_eq!(o.get(&pods, 0), 0);
    }
}
