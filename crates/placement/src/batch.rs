//! Atomic placement of a batch (a new cluster's control plane): reserve every member, then
//! commit or abort. Reserved members count against capacity, groups and admission, so a
//! second batch reserved meanwhile cannot break a placement group the first one relies on.

use crate::error::PlacementError;
use crate::hosts::HostId;
use crate::place_all::placement_order;
use crate::state::PoolState;
use crate::vm::{VmId, VmSpec};

/// An open reservation: capacity held for a batch until [`PoolState::commit`] or
/// [`PoolState::abort`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a reservation holds capacity until committed or aborted"]
pub struct Reservation {
    id: u64,
    placements: Vec<(VmId, HostId)>,
}

impl Reservation {
    /// The reservation's id in its state.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where each member of the batch goes, in the batch's order.
    pub fn placements(&self) -> &[(VmId, HostId)] {
        &self.placements
    }
}

impl PoolState {
    /// Reserves a host for every VM of `batch` or, if any cannot be placed, changes nothing
    /// and returns that VM's error.
    pub fn reserve(&mut self, batch: Vec<VmSpec>) -> Result<Reservation, PlacementError> {
        let base = self.vms.len();
        let n = batch.len();
        if u32::try_from(base + n).is_err() {
            return Err(PlacementError::Invalid {
                reason: "too many VMs".into(),
            });
        }
        let order = placement_order(&self.pool, &batch);
        let mut specs: Vec<Option<VmSpec>> = batch.into_iter().map(Some).collect();
        let mut placements = vec![(VmId(0), HostId(0)); n];
        for i in order {
            let Some(spec) = specs[i].take() else {
                continue;
            };
            let id = VmId((base + i) as u32);
            match self.place_as(id, spec, true) {
                Ok(h) => placements[i] = (id, h),
                Err(e) => {
                    for j in 0..n {
                        self.detach(VmId((base + j) as u32));
                    }
                    self.vms.truncate(base);
                    return Err(e);
                }
            }
        }
        let id = self.next_reservation;
        self.next_reservation += 1;
        self.reservations
            .insert(id, placements.iter().map(|(v, _)| *v).collect());
        Ok(Reservation { id, placements })
    }

    /// Turns a reservation into running VMs; returns where each one runs now (a member
    /// whose host failed meanwhile may have been restarted elsewhere or stranded).
    pub fn commit(
        &mut self,
        reservation: Reservation,
    ) -> Result<Vec<(VmId, HostId)>, PlacementError> {
        let vms = self
            .reservations
            .remove(&reservation.id)
            .ok_or(PlacementError::UnknownReservation { id: reservation.id })?;
        let mut placed = Vec::with_capacity(vms.len());
        for v in vms {
            if let Some(Some(e)) = self.vms.get_mut(v.index()) {
                e.reserved = false;
                placed.push((v, e.host));
            }
        }
        Ok(placed)
    }

    /// Releases a reservation's capacity.
    pub fn abort(&mut self, reservation: Reservation) -> Result<(), PlacementError> {
        let vms = self
            .reservations
            .remove(&reservation.id)
            .ok_or(PlacementError::UnknownReservation { id: reservation.id })?;
        for v in vms {
            if let Some(e) = self.detach(v) {
                self.note_left(e.host, e.spec.group);
            }
        }
        Ok(())
    }

    /// Reserve-then-commit in one call: every VM of `batch` is placed, or none is.
    pub fn place_batch(
        &mut self,
        batch: Vec<VmSpec>,
    ) -> Result<Vec<(VmId, HostId)>, PlacementError> {
        let reservation = self.reserve(batch)?;
        self.commit(reservation)
    }

    /// How many copies of `spec` could be placed now, up to `max`: each is placed as
    /// [`PoolState::place`] would place it after the ones before (capacity, admission,
    /// placement groups and host rules decide), then every copy is removed again, so the
    /// state is left exactly as it was. No clone of the state: a rollout asks this at every
    /// step.
    pub fn copies_fit(&mut self, spec: &VmSpec, max: u32) -> u32 {
        let base = self.vms.len();
        let mut fits: u32 = 0;
        while fits < max {
            let Ok(id) = u32::try_from(base + fits as usize) else {
                break;
            };
            if self.place_as(VmId(id), spec.clone(), true).is_err() {
                break;
            }
            fits += 1;
        }
        for i in 0..fits as usize {
            self.detach(VmId((base + i) as u32));
        }
        self.vms.truncate(base);
        fits
    }

    /// Whether a VM is held by an open reservation.
    pub fn is_reserved(&self, vm: VmId) -> bool {
        self.entry(vm).is_some_and(|e| e.reserved)
    }
}
