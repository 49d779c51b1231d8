//! An allocator wrapper that counts, for the tests and benches that measure
//! allocation (nothing allocated in a mixer tick or a codec call; memory
//! held per participant). It is here, not in the test trees, because an
//! allocator is `unsafe` to implement and this crate is the one place of
//! unsafe code.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Bytes allocated and not freed, over all threads.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Counts what reaches `A`: heap calls per thread while armed by
/// [`count_heap_calls`], and live bytes over all threads
/// ([`live_heap_bytes`]). Meaningful only as the global allocator.
pub struct CountingAlloc<A> {
    inner: A,
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

/// Runs `f` and returns what it returned with the heap calls (allocations,
/// reallocations and frees) this thread made meanwhile.
pub fn count_heap_calls<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let (was_armed, before) = (ARMED.with(Cell::get), CALLS.with(Cell::get));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(was_armed));
    (r, CALLS.with(Cell::get) - before)
}

/// Bytes allocated through [`CountingAlloc`] and not freed yet.
pub fn live_heap_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn note() {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = CALLS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is passed to `inner` unchanged; the counting touches
// only atomics and const-initialised thread-locals, which never allocate.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `layout` is passed on.
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `p` came from `inner` with `layout`, as the caller guarantees.
        unsafe { self.inner.realloc(p, layout, new_size) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        note();
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `realloc`.
        unsafe { self.inner.dealloc(p, layout) }
    }
}
