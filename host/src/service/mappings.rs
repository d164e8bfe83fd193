//! Whether the kernel lets this process map what `max-endpoints` endpoints
//! need, checked when a service starts.
//!
//! Linux caps the memory mappings of a process at `vm.max_map_count`
//! (65,530 by default). The concurrent engine's pools are mapped when the
//! engine is made (two mappings per fiber stack: the stack and its guard
//! page); after that, each endpoint adds a few: its linear memory (the part
//! it may use, and the rest of its reservation), and, for a sync-only
//! endpoint, the fiber stack it keeps between calls. Past the cap, the
//! kernel refuses the next mapping and an endpoint fails to start with an
//! allocation error that names no cause; the check names it up front.

/// Mappings an endpoint of a component that uses async adds: its memory
/// in the pool.
const POOLED: u64 = 2;
/// Mappings a sync-only endpoint adds: its memory reservation, its fiber
/// stack and guard page, and its instance.
const ON_DEMAND: u64 = 5;
/// Mappings left for everything else: threads, sockets, files, the
/// allocator's arenas.
const HEADROOM: u64 = 1024;

/// The kernel's cap, and what this process maps now.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mappings {
    pub limit: u64,
    pub used: u64,
}

impl Mappings {
    /// Reads both from `/proc`; `None` where there is no such cap to read.
    pub(super) fn read() -> Option<Self> {
        let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()?;
        let used = std::fs::read_to_string("/proc/self/maps").ok()?.lines().count() as u64;
        Some(Self { limit, used })
    }

    /// How many endpoints fit, each adding `per_endpoint` mappings.
    fn room(self, per_endpoint: u64) -> u64 {
        self.limit.saturating_sub(self.used + HEADROOM) / per_endpoint
    }

    /// Whether `endpoints` endpoints fit: `Err` with how many do if not
    /// even async ones do; `Ok(Some(n))` if only `n` sync-only ones do.
    pub(super) fn check(self, endpoints: u64) -> Result<Option<u64>, u64> {
        if self.room(POOLED) < endpoints {
            return Err(self.room(POOLED));
        }
        let sync_only = self.room(ON_DEMAND);
        Ok((sync_only < endpoints).then_some(sync_only))
    }

    /// The `vm.max_map_count` that `endpoints` sync-only endpoints need.
    pub(super) fn needed(self, endpoints: u64) -> u64 {
        self.used + HEADROOM + endpoints * ON_DEMAND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_fit_as_their_mappings_do() {
        let linux_default = Mappings { limit: 65_530, used: 20_500 };
        assert_eq!(linux_default.check(10_000), Ok(Some(8_801)), "async ones fit, sync-only ones top out earlier");
        assert_eq!(linux_default.check(5_000), Ok(None));
        assert_eq!(linux_default.check(30_000), Err(22_003));
        let raised = Mappings { limit: 262_144, used: 20_500 };
        assert_eq!(raised.check(10_000), Ok(None));
        assert!(raised.needed(10_000) <= 262_144);
    }
}
