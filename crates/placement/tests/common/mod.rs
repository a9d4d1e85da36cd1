//! Builders shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use plinth_model::Resources;
use plinth_model::policy::{PlacementPolicy, PlacementStrategy, Scope, SpreadMode};
use plinth_model::units::GIB;
use plinth_placement::{Group, HostId, HostSpec, Pool, PoolConfig, RackId};

pub fn gib(n: u64) -> u64 {
    n * GIB
}

/// `n` hosts `h00..`, `per_rack` to a rack, each of `cpu` millis and `mem` GiB, disk 1 TiB.
pub fn hosts(n: usize, per_rack: usize, cpu: u64, mem: u64) -> (Vec<HostSpec>, Vec<String>) {
    let racks = n.div_ceil(per_rack.max(1));
    let hosts = (0..n)
        .map(|i| {
            HostSpec::new(
                format!("h{i:02}"),
                RackId((i / per_rack.max(1)) as u32),
                Resources::new(cpu, gib(mem), gib(1024)),
            )
        })
        .collect();
    (hosts, (0..racks).map(|r| format!("r{r}")).collect())
}

pub fn group(name: &str, scope: Scope, mode: SpreadMode, max: Option<u32>) -> Group {
    Group {
        name: name.into(),
        policy: PlacementPolicy {
            spread_over: scope,
            mode,
            max_per_domain: max,
        },
    }
}

pub fn pool(
    n: usize,
    per_rack: usize,
    cpu: u64,
    mem: u64,
    groups: Vec<Group>,
    config: PoolConfig,
) -> Pool {
    let (hosts, racks) = hosts(n, per_rack, cpu, mem);
    Pool::new(hosts, racks, groups, vec![], config).expect("valid pool")
}

pub fn strategy(s: PlacementStrategy) -> PoolConfig {
    PoolConfig {
        strategy: s,
        ..PoolConfig::default()
    }
}

pub fn name(pool: &Pool, h: HostId) -> &str {
    &pool.host(h).name
}
