//! A stack for the codec's temporary arrays, so that an encode or a decode
//! allocates nothing from the heap.
//!
//! libopus keeps its per-call work arrays on the C stack (variable-length
//! arrays or `alloca`, or its own "pseudostack" when built without them).
//! The c2rust translation turned each of them into a `Vec`, about a hundred
//! heap allocations and frees per call, which the mixer tick must not make.
//! [`ScratchAlloc`] wraps the process's allocator: while a thread is inside
//! a codec call ([`scoped`]), what it allocates comes from a slot of a
//! static region, one slot per thread at a time, as a stack that pops when
//! the top is freed and starts over when nothing in it is live. Outside a
//! codec call, or when the slot is full, the wrapped allocator serves as
//! usual, so this is an optimisation, never a limit.
//!
//! Soundness does not rest on the codec freeing everything before it
//! returns: a slot is only reused from its start once its live count is
//! zero, and a block freed on any thread just lowers that count. Only the
//! thread that holds a slot moves its top.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::{Cell, UnsafeCell};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Threads that can be inside a codec call at once with a slot each; more
/// fall back to the wrapped allocator.
const SLOTS: usize = 32;
/// One slot: encoding 60 ms of 48 kHz stereo at complexity 10 peaks well
/// under this (see the test `a_codec_call_fits_in_one_slot`). The region is
/// zero-initialised static memory: pages never touched are never resident.
const SLOT_BYTES: usize = 256 * 1024;
const NONE: usize = usize::MAX;

#[repr(C, align(4096))]
struct Region(UnsafeCell<[u8; SLOTS * SLOT_BYTES]>);

// SAFETY: bytes of the region are only reached through blocks handed out by
// `ScratchAlloc`, each owned by one holder at a time (the allocator contract).
unsafe impl Sync for Region {}

static REGION: Region = Region(UnsafeCell::new([0; SLOTS * SLOT_BYTES]));

struct Slot {
    /// Held by a thread inside a codec call.
    claimed: AtomicBool,
    /// Blocks handed out and not yet freed.
    live: AtomicUsize,
    /// Offset of the first free byte; written only by the holder.
    top: AtomicUsize,
}

static STATE: [Slot; SLOTS] = [const {
    Slot {
        claimed: AtomicBool::new(false),
        live: AtomicUsize::new(0),
        top: AtomicUsize::new(0),
    }
}; SLOTS];

/// The most any slot held at once, in bytes.
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);
/// Allocations made inside a codec call that the slot could not serve.
static SPILLS: AtomicUsize = AtomicUsize::new(0);

// Const-initialised and without destructors: reading them never allocates,
// which matters inside an allocator.
thread_local! {
    static ACTIVE: Cell<usize> = const { Cell::new(NONE) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static LAST: Cell<usize> = const { Cell::new(0) };
}

fn base() -> *mut u8 {
    REGION.0.get().cast::<u8>()
}

/// The slot a pointer lies in, if it lies in the region at all.
fn slot_of(p: *mut u8) -> Option<usize> {
    let offset = (p as usize).wrapping_sub(base() as usize);
    (offset < SLOTS * SLOT_BYTES).then_some(offset / SLOT_BYTES)
}

fn active() -> Option<usize> {
    ACTIVE.try_with(Cell::get).ok().filter(|&i| i != NONE)
}

/// Runs `f` (one codec call) with this thread's temporary allocations on a
/// scratch slot.
#[cfg_attr(feature = "system-libopus", allow(dead_code))]
pub(crate) fn scoped<R>(f: impl FnOnce() -> R) -> R {
    let _scope = Scope::enter();
    f()
}

struct Scope;

impl Scope {
    fn enter() -> Self {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        if depth == 1 {
            ACTIVE.with(|a| a.set(claim().unwrap_or(NONE)));
        }
        Scope
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            d.set(d.get() - 1);
            d.get()
        });
        if depth == 0 {
            if let Some(i) = active() {
                ACTIVE.with(|a| a.set(NONE));
                STATE[i].claimed.store(false, Ordering::Release);
            }
        }
    }
}

/// Takes a free slot, this thread's last one first (its pages are warm).
fn claim() -> Option<usize> {
    let last = LAST.with(Cell::get);
    (0..SLOTS).map(|k| (last + k) % SLOTS).find(|&i| {
        let slot = &STATE[i];
        if slot
            .claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Acquire pairs with the Release of the last free: every block is
        // done with, so the slot starts over.
        if slot.live.load(Ordering::Acquire) == 0 {
            slot.top.store(0, Ordering::Relaxed);
        }
        LAST.with(|l| l.set(i));
        true
    })
}

/// A [`GlobalAlloc`] that serves the codec's temporary arrays from scratch
/// slots and everything else from `A`. Install it as the global allocator
/// (around jemalloc, the system allocator, or a counting one in tests).
pub struct ScratchAlloc<A> {
    inner: A,
}

impl<A> ScratchAlloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

/// What the scratch slots have done so far in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScratchStats {
    /// The most one slot held at once, in bytes.
    pub high_water: usize,
    /// Allocations inside a codec call that went to the wrapped allocator
    /// (no free slot, or a full one).
    pub spills: usize,
}

/// Reads the scratch figures (meaningful when [`ScratchAlloc`] is the
/// global allocator).
pub fn scratch_stats() -> ScratchStats {
    ScratchStats {
        high_water: HIGH_WATER.load(Ordering::Relaxed),
        spills: SPILLS.load(Ordering::Relaxed),
    }
}

/// Carves `layout` from the active slot, if there is one with room.
fn take(layout: Layout) -> Option<*mut u8> {
    let i = active()?;
    let slot = &STATE[i];
    let top = slot.top.load(Ordering::Relaxed);
    let slot_start = i * SLOT_BYTES;
    let addr = base() as usize + slot_start + top;
    let start = top + (addr.wrapping_neg() & (layout.align() - 1));
    let end = start.checked_add(layout.size())?;
    if end > SLOT_BYTES {
        SPILLS.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    slot.top.store(end, Ordering::Relaxed);
    slot.live.fetch_add(1, Ordering::Relaxed);
    HIGH_WATER.fetch_max(end, Ordering::Relaxed);
    // SAFETY: `slot_start + start + size <= (i + 1) * SLOT_BYTES`, inside the
    // region; nothing else owns these bytes (they are above the top).
    Some(unsafe { base().add(slot_start + start) })
}

/// Frees a block of slot `i`.
fn give_back(i: usize, p: *mut u8, size: usize) {
    let slot = &STATE[i];
    let offset = p as usize - base() as usize - i * SLOT_BYTES;
    let held = active() == Some(i);
    // Only the holder moves the top: pop when this was the top block.
    if held && offset + size == slot.top.load(Ordering::Relaxed) {
        slot.top.store(offset, Ordering::Relaxed);
    }
    // Release pairs with the Acquire in `claim`: our use of the block is over
    // before the slot is reused.
    if slot.live.fetch_sub(1, Ordering::Release) == 1 && held {
        slot.top.store(0, Ordering::Relaxed);
    }
}

// SAFETY: blocks from a slot are disjoint (the top only moves past a block
// while it is live, and a slot starts over only with no live block), aligned
// as asked, and inside the region; every other request goes to `inner`, and
// pointers of the region never reach `inner` (it never hands them out).
unsafe impl<A: GlobalAlloc> GlobalAlloc for ScratchAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match take(layout) {
            Some(p) => p,
            // SAFETY: the caller's contract for `layout` is passed on.
            None => unsafe { self.inner.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match take(layout) {
            Some(p) => {
                // SAFETY: `p` is a fresh block of `layout.size()` bytes; a
                // slot's bytes are reused, so they are cleared here.
                unsafe { ptr::write_bytes(p, 0, layout.size()) };
                p
            }
            // SAFETY: as for `alloc`.
            None => unsafe { self.inner.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match slot_of(p) {
            Some(i) => give_back(i, p, layout.size()),
            // SAFETY: `p` came from `inner` with this layout.
            None => unsafe { self.inner.dealloc(p, layout) },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(i) = slot_of(p) else {
            // SAFETY: `p` came from `inner` with this layout.
            return unsafe { self.inner.realloc(p, layout, new_size) };
        };
        let slot = &STATE[i];
        let offset = p as usize - base() as usize - i * SLOT_BYTES;
        // The top block of the held slot grows or shrinks in place.
        if active() == Some(i)
            && offset + layout.size() == slot.top.load(Ordering::Relaxed)
            && offset + new_size <= SLOT_BYTES
        {
            slot.top.store(offset + new_size, Ordering::Relaxed);
            HIGH_WATER.fetch_max(offset + new_size, Ordering::Relaxed);
            return p;
        }
        // SAFETY: the caller guarantees `new_size` is non-zero and, rounded
        // to the alignment, does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid non-zero layout, as above.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live, disjoint, and at least this long.
            unsafe { ptr::copy_nonoverlapping(p, q, layout.size().min(new_size)) };
            give_back(i, p, layout.size());
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    static A: ScratchAlloc<System> = ScratchAlloc::new(System);
    // The tests look at slot state that another of them could share.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alloc(size: usize, align: usize) -> (*mut u8, Layout) {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero size.
        (unsafe { A.alloc(layout) }, layout)
    }

    fn free((p, layout): (*mut u8, Layout)) {
        // SAFETY: `p` came from `A` with `layout`.
        unsafe { A.dealloc(p, layout) }
    }

    #[test]
    fn outside_a_call_the_wrapped_allocator_serves() {
        let _serial = serial();
        let b = alloc(64, 8);
        assert_eq!(slot_of(b.0), None);
        free(b);
    }

    #[test]
    fn inside_a_call_blocks_are_a_stack_that_starts_over() {
        let _serial = serial();
        scoped(|| {
            let i = active().expect("a slot");
            let a = alloc(100, 8);
            let b = alloc(10, 64);
            assert_eq!(slot_of(a.0), Some(i));
            assert_eq!(b.0 as usize % 64, 0, "aligned as asked");
            assert!(b.0 as usize >= a.0 as usize + 100, "disjoint");
            let top = STATE[i].top.load(Ordering::Relaxed);
            free(b);
            assert!(STATE[i].top.load(Ordering::Relaxed) < top, "the top popped");
            let c = alloc(8, 8);
            free(a);
            assert_eq!(STATE[i].live.load(Ordering::Relaxed), 1, "c is live");
            free(c);
            assert_eq!(
                STATE[i].top.load(Ordering::Relaxed),
                0,
                "empty: starts over"
            );
        });
    }

    #[test]
    fn a_block_that_outlives_the_call_keeps_its_bytes() {
        let _serial = serial();
        let kept = scoped(|| {
            let b = alloc(32, 8);
            // SAFETY: 32 bytes of a live block.
            unsafe { ptr::write_bytes(b.0, 0xAB, 32) };
            b
        });
        let i = slot_of(kept.0).unwrap();
        // Other threads' calls may take this slot meanwhile: they must not
        // reuse the bytes of a live block.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        scoped(|| {
                            let b = alloc(64, 8);
                            // SAFETY: 64 bytes of a live block.
                            unsafe { ptr::write_bytes(b.0, 0, 64) };
                            free(b);
                        });
                    }
                });
            }
        });
        // SAFETY: the block is still live.
        let bytes = unsafe { std::slice::from_raw_parts(kept.0, 32) };
        assert!(bytes.iter().all(|&x| x == 0xAB));
        // Freed from another thread: the count falls, the slot can start over.
        let sent = kept.0 as usize;
        std::thread::spawn(move || free((sent as *mut u8, kept.1)))
            .join()
            .unwrap();
        assert_eq!(STATE[i].live.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_full_slot_spills_and_realloc_moves_between_both() {
        let _serial = serial();
        scoped(|| {
            let big = alloc(SLOT_BYTES + 1, 8);
            assert_eq!(slot_of(big.0), None, "too big for a slot");
            free(big);
            let (p, layout) = alloc(16, 8);
            // SAFETY: 16 bytes of a live block.
            unsafe { ptr::write_bytes(p, 7, 16) };
            // SAFETY: p is live with `layout`; the new size is non-zero.
            let q = unsafe { A.realloc(p, layout, 64) };
            assert_eq!(q, p, "the top block grows in place");
            // SAFETY: as above; too big for the slot now.
            let r =
                unsafe { A.realloc(q, Layout::from_size_align(64, 8).unwrap(), SLOT_BYTES + 1) };
            assert_eq!(slot_of(r), None);
            // SAFETY: the first 16 bytes were copied over.
            assert_eq!(unsafe { std::slice::from_raw_parts(r, 16) }, &[7; 16]);
            free((r, Layout::from_size_align(SLOT_BYTES + 1, 8).unwrap()));
        });
    }
}
