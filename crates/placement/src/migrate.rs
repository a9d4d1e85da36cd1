//! Live migration for DRS: check or propose one move against the state *with the plan in
//! progress applied*, so two moves of one plan cannot together break capacity or a group.

use crate::error::PlacementError;
use crate::explain::Explanation;
use crate::hosts::HostId;
use crate::state::PoolState;
use crate::vm::VmId;

/// One live migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Migration {
    /// The VM moved.
    pub vm: VmId,
    /// Where it runs before.
    pub from: HostId,
    /// Where it runs after.
    pub to: HostId,
}

impl PoolState {
    /// Applies one migration after checking every hard filter on the target.
    pub fn migrate(&mut self, m: Migration) -> Result<(), PlacementError> {
        self.check_host(m.to)?;
        let entry = self
            .entry(m.vm)
            .ok_or(PlacementError::UnknownVm { id: m.vm.0 })?;
        if entry.host != m.from {
            return Err(PlacementError::StalePlan {
                vm: entry.spec.name.clone(),
                from: self.pool.host(m.from).name.clone(),
                actual: self.pool.host(entry.host).name.clone(),
            });
        }
        let Some(mut entry) = self.detach(m.vm) else {
            return Err(PlacementError::UnknownVm { id: m.vm.0 });
        };
        if let Some(reason) = self.admits(m.to, &entry.spec, &entry.footprint, Some(m.from)) {
            let mut explanation = Explanation::new("hosts", 1);
            explanation.reject(reason.to_string());
            let vm = entry.spec.name.clone();
            self.attach(m.vm, entry);
            return Err(PlacementError::Unplaceable { vm, explanation });
        }
        entry.host = m.to;
        let group = entry.spec.group;
        self.attach(m.vm, entry);
        self.note_left(m.from, group);
        Ok(())
    }

    /// Migrates `vm` off `from` onto the first of `targets` that passes every hard filter,
    /// trying them in order: the same outcome as [`PoolState::migrate`] on each target in
    /// turn until one succeeds (the error is the last target's), but the VM is taken out of
    /// the state once instead of once per target.
    pub fn migrate_first(
        &mut self,
        vm: VmId,
        from: HostId,
        targets: impl IntoIterator<Item = HostId>,
    ) -> Result<Migration, Option<PlacementError>> {
        let mut last = None;
        let mut targets = targets.into_iter().peekable();
        if targets.peek().is_none() {
            return Err(None);
        }
        let entry = self
            .entry(vm)
            .ok_or(PlacementError::UnknownVm { id: vm.0 })?;
        if entry.host != from {
            return Err(Some(PlacementError::StalePlan {
                vm: entry.spec.name.clone(),
                from: self.pool.host(from).name.clone(),
                actual: self.pool.host(entry.host).name.clone(),
            }));
        }
        let Some(mut entry) = self.detach(vm) else {
            return Err(Some(PlacementError::UnknownVm { id: vm.0 }));
        };
        // Only the last refusal is reported: keep its host and build the error once, after
        // the loop (most targets of a zone-pinned VM refuse it; formatting each is costly).
        let mut refused: Option<HostId> = None;
        for to in targets {
            if let Err(e) = self.check_host(to) {
                last = Some(e);
                refused = None;
                continue;
            }
            if self
                .reject(to, &entry.spec, &entry.footprint, Some(from))
                .is_some()
            {
                refused = Some(to);
                continue;
            }
            entry.host = to;
            let group = entry.spec.group;
            self.attach(vm, entry);
            self.note_left(from, group);
            return Ok(Migration { vm, from, to });
        }
        if let Some(to) = refused
            && let Some(reason) = self.reject(to, &entry.spec, &entry.footprint, Some(from))
        {
            let mut explanation = Explanation::new("hosts", 1);
            explanation.reject(reason.to_string());
            last = Some(PlacementError::Unplaceable {
                vm: entry.spec.name.clone(),
                explanation,
            });
        }
        self.attach(vm, entry);
        Err(last)
    }

    /// This state with the migrations of `plan` applied in order (each one checked).
    pub fn with_plan(&self, plan: &[Migration]) -> Result<PoolState, PlacementError> {
        let mut state = self.clone();
        for m in plan {
            state.migrate(*m)?;
        }
        Ok(state)
    }

    /// Whether `m` is valid once `plan` has run.
    pub fn check_migration(&self, plan: &[Migration], m: Migration) -> Result<(), PlacementError> {
        self.with_plan(plan)?.migrate(m)
    }

    /// The best target for `vm` other than its host once `plan` has run, by the pool's
    /// strategy and every hard filter.
    pub fn propose_migration(
        &self,
        plan: &[Migration],
        vm: VmId,
    ) -> Result<Migration, PlacementError> {
        let mut state = self.with_plan(plan)?;
        let entry = state
            .detach(vm)
            .ok_or(PlacementError::UnknownVm { id: vm.0 })?;
        let to = state.find_host(&entry.spec, &entry.footprint, Some(entry.host))?;
        Ok(Migration {
            vm,
            from: entry.host,
            to,
        })
    }
}
