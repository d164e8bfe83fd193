//! The slot table: which allocation holds each slot, for which job, and
//! whether the job's JobMaster took it (active).

use std::cell::RefCell;

use crate::weir::flink::types::{SlotId, SlotStatus};
use weir_guest::Uuid;

/// A slot's allocation.
#[derive(Clone, Copy, Debug)]
pub struct Allocation {
    pub id: Uuid,
    pub job: Uuid,
    /// Accepted by the job's JobMaster.
    pub active: bool,
}

/// Why a slot cannot be allocated.
pub enum Refused {
    NoSuchSlot(u32),
    Occupied(Uuid),
}

thread_local! {
    static TABLE: RefCell<Vec<Option<Allocation>>> = RefCell::new(vec![None; count() as usize]);
}

/// How many slots this TaskExecutor has.
pub fn count() -> u32 {
    super::setting("slots", 1)
}

/// Every slot and its allocation, as the ResourceManager hears it.
pub fn report() -> Vec<SlotStatus> {
    let (owner, profile) = (super::own_id(), super::profile());
    TABLE.with(|table| {
        (0..)
            .zip(table.borrow().iter())
            .map(|(index, allocation)| SlotStatus {
                slot: SlotId { owner: owner.clone(), index },
                profile,
                allocation: allocation.map(|a| (a.id, a.job)),
            })
            .collect()
    })
}

/// Allocates slot `index` to `id` for `job`; allocating it to the same
/// allocation again changes nothing.
pub fn allocate(index: u32, id: Uuid, job: Uuid) -> Result<(), Refused> {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let slot = table.get_mut(index as usize).ok_or(Refused::NoSuchSlot(index))?;
        match slot {
            Some(held) if held.id != id => Err(Refused::Occupied(held.id)),
            Some(_) => Ok(()),
            None => {
                *slot = Some(Allocation { id, job, active: false });
                Ok(())
            }
        }
    })
}

/// The slots allocated to `job`: index and allocation.
pub fn of_job(job: Uuid) -> Vec<(u32, Allocation)> {
    TABLE.with(|table| {
        (0..).zip(table.borrow().iter()).filter_map(|(i, a)| a.filter(|a| a.job == job).map(|a| (i, a))).collect()
    })
}

/// Marks allocation `id` active (its JobMaster took it).
pub fn activate(id: Uuid) {
    update(|allocation| {
        if allocation.id == id {
            allocation.active = true;
        }
    });
}

/// Marks every slot of `job` inactive again (its JobMaster is gone).
pub fn deactivate(job: Uuid) {
    update(|allocation| {
        if allocation.job == job {
            allocation.active = false;
        }
    });
}

fn update(mut change: impl FnMut(&mut Allocation)) {
    TABLE.with(|table| table.borrow_mut().iter_mut().flatten().for_each(&mut change));
}

/// Frees the slot of allocation `id`; its index and job, if it held it.
pub fn free(id: Uuid) -> Option<(u32, Uuid)> {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let index = table.iter().position(|slot| slot.is_some_and(|a| a.id == id))?;
        let freed = table[index].take()?;
        Some((index as u32, freed.job))
    })
}

/// Marks the slot of allocation `id` active if it is allocated to `job`
/// (Flink's `tryMarkSlotActive`: a task may arrive before the answer to
/// the offer that made its slot active); whether it is.
pub fn try_mark_active(id: Uuid, job: Uuid) -> bool {
    let held = of_job(job).iter().any(|(_, allocation)| allocation.id == id);
    if held {
        activate(id);
    }
    held
}
