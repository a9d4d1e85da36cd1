//! DRS: when the standard deviation of per-host CPU allocation / capacity exceeds the
//! threshold, propose at most N live migrations that each reduce it. Every move is checked
//! against the state *with the plan so far applied* ([`PoolState::migrate`] on a working
//! copy), so two moves of one plan can never together break a placement group.

use plinth_placement::{HostId, HostStatus, Migration, PoolState, VmId};

use crate::config::DrsConfig;

/// CPU allocation / capacity of host `h`.
fn ratio(state: &PoolState, h: HostId) -> f64 {
    let cap = state.pool().host(h).capacity.cpu_millis.max(1) as f64;
    state.used(h).cpu_millis as f64 / cap
}

/// The hosts that are up, by host id.
fn up_hosts(state: &PoolState) -> impl Iterator<Item = HostId> + '_ {
    (0..state.pool().hosts().len() as u32)
        .map(HostId)
        .filter(|h| state.status(*h) == HostStatus::Up)
}

/// CPU allocation / capacity of every host that is up, by host id.
fn ratios(state: &PoolState) -> Vec<(HostId, f64)> {
    up_hosts(state).map(|h| (h, ratio(state, h))).collect()
}

/// The population standard deviation of per-host CPU allocation / capacity over the hosts
/// that are up (0 with fewer than two). Sums in host id order without collecting the
/// ratios (DRS evaluates it once per candidate move).
pub fn imbalance(state: &PoolState) -> f64 {
    let n = up_hosts(state).count();
    if n < 2 {
        return 0.0;
    }
    let n = n as f64;
    let mean = up_hosts(state).map(|h| ratio(state, h)).sum::<f64>() / n;
    (up_hosts(state)
        .map(|h| {
            let x = ratio(state, h);
            (x - mean) * (x - mean)
        })
        .sum::<f64>()
        / n)
        .sqrt()
}

/// Up to `cfg.max_moves` migrations that reduce [`imbalance`], each from the most loaded
/// host; only VMs for which `movable` holds move, and never onto a host in `blocked`.
/// Empty when the pool is balanced or no move helps. Pure: `state` is not changed.
pub fn plan(
    state: &PoolState,
    cfg: &DrsConfig,
    movable: impl Fn(VmId) -> bool,
    blocked: &[HostId],
) -> Vec<Migration> {
    if imbalance(state) <= cfg.threshold {
        return Vec::new();
    }
    let mut work = state.clone();
    let mut out = Vec::new();
    for _ in 0..cfg.max_moves {
        let before = imbalance(&work);
        if before <= cfg.threshold {
            break;
        }
        let mut r = ratios(&work);
        r.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| work.pool().host(a.0).name.cmp(&work.pool().host(b.0).name))
        });
        let Some(&(source, _)) = r.first() else {
            break;
        };
        let targets: Vec<HostId> = r
            .iter()
            .rev()
            .map(|(h, _)| *h)
            .filter(|h| *h != source && !blocked.contains(h))
            .collect();
        let mut vms: Vec<VmId> = work
            .vms_on(source)
            .into_iter()
            .filter(|v| movable(*v))
            .collect();
        vms.sort_by(|a, b| name(&work, *a).cmp(name(&work, *b)));
        let mut best: Option<(f64, Migration)> = None;
        for vm in vms {
            for &to in &targets {
                let m = Migration {
                    vm,
                    from: source,
                    to,
                };
                if work.migrate(m).is_err() {
                    continue;
                }
                let after = imbalance(&work);
                let back = Migration {
                    vm,
                    from: to,
                    to: source,
                };
                // Moving back to where it ran before cannot break a constraint.
                let _ = work.migrate(back);
                if after < before - 1e-9 && best.as_ref().is_none_or(|(b, _)| after < *b) {
                    best = Some((after, m));
                }
                // The least loaded target that accepts the VM is its best; try the next VM.
                break;
            }
        }
        match best {
            Some((_, m)) if work.migrate(m).is_ok() => out.push(m),
            _ => break,
        }
    }
    out
}

fn name(state: &PoolState, vm: VmId) -> &str {
    state.vm(vm).map_or("", |s| s.name.as_str())
}
