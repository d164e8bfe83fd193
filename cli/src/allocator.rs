//! The `weir` process's allocator: mimalloc for small blocks, the C
//! library's for large ones.
//!
//! Wasmtime's component-model machinery allocates and frees small objects
//! at every call between endpoints (a box per host task and per waitable,
//! the dynamic values of each call); with glibc's allocator that was a
//! sixth of the CPU of a job's submission, two threads contending for its
//! arenas and consolidating its fastbins (BENCHMARKS.md, tenth session on
//! issue 11). mimalloc is faster there. But with it alone, the large
//! buffers of bulk data dropped after a flood stayed in the process (most
//! likely because mimalloc keeps a block freed on another thread until
//! the thread that allocated it allocates again, and that thread idled:
//! not confirmed); and jemalloc
//! purges large blocks so eagerly that a 9 MiB ask faulted its pages in
//! again each time. glibc returns a large block at once and reuses it
//! well, so blocks from [`LARGE`] bytes up stay with it.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this many bytes or more go to the C library's allocator.
/// Control-plane objects are far smaller; bulk data's buffers are larger.
const LARGE: usize = 64 * 1024;

/// Routes each block by its size: the size a block is freed or resized
/// with is the one it was allocated with, so both sides agree on whose it
/// is.
#[derive(Debug)]
pub struct SplitBySize;

fn is_large(size: usize) -> bool {
    size >= LARGE
}

// SAFETY: every method hands the block to the allocator its size routes it
// to, and `GlobalAlloc`'s contract gives `dealloc` and `realloc` the layout
// the block was allocated with; a block that changes sides is copied into
// a new one and freed where it came from.
#[allow(unsafe_code, reason = "a global allocator is an unsafe trait; see SAFETY")]
unsafe impl GlobalAlloc for SplitBySize {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as given.
        unsafe {
            match is_large(layout.size()) {
                true => System.alloc(layout),
                false => MiMalloc.alloc(layout),
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as given.
        unsafe {
            match is_large(layout.size()) {
                true => System.alloc_zeroed(layout),
                false => MiMalloc.alloc_zeroed(layout),
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the allocator its size routes it to.
        unsafe {
            match is_large(layout.size()) {
                true => System.dealloc(ptr, layout),
                false => MiMalloc.dealloc(ptr, layout),
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: a block that stays on its side is resized there; one that
        // changes sides is copied (its old size or the new, whichever is
        // smaller) into a block of the new layout, whose size the caller
        // vouches for with the old alignment.
        unsafe {
            match (is_large(layout.size()), is_large(new_size)) {
                (true, true) => System.realloc(ptr, layout, new_size),
                (false, false) => MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    let moved = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(moved);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks that grow and shrink across the line keep their bytes.
    #[test]
    fn a_block_keeps_its_bytes_across_the_line() {
        let mut bytes: Vec<u8> = (0..LARGE - 1).map(|i| i as u8).collect();
        bytes.extend((0..LARGE).map(|i| i as u8));
        assert!(bytes.capacity() >= 2 * LARGE - 1);
        bytes.truncate(100);
        bytes.shrink_to_fit();
        assert_eq!(bytes, (0..100).map(|i| i as u8).collect::<Vec<_>>());
    }
}
