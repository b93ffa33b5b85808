//! Heap accounting: a counting global allocator and the bound reads are checked against.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fixed part of the heap bound. The reader owns a 64 KiB read buffer; without a size limit
/// its key and value buffers first grow by a 64 KiB step each even for a 1-byte input
/// (they grow as bytes arrive, never to a length prefix). `MakWriter::open_append` adds
/// the writer's 64 KiB append buffer. The measured maximum over all targets is
/// 4 x 64 KiB + under 1 KiB of small allocations (see README.md); the rest is headroom.
pub const HEAP_BOUND_FIXED: usize = 320 * 1024;
/// Proportional part of the heap bound, per byte of real input. With a size limit a
/// payload buffer is sized at once to a length prefix already checked against the file
/// size; key, value and header buffers together hold at most the file once, and `Vec`'s
/// amortised growth can double one of them. Without a limit the buffers double as bytes
/// arrive, so a buffer is at most twice the bytes it was filled with. Measured maximum: 2.
pub const HEAP_BOUND_PER_BYTE: usize = 4;

/// The most heap one read (or one `open_append`) of `input_len` real bytes may take at once.
pub fn heap_bound(input_len: usize) -> usize {
    HEAP_BOUND_FIXED.saturating_add(HEAP_BOUND_PER_BYTE.saturating_mul(input_len))
}

/// `System`, counting live bytes and their high-water mark. Fuzz targets run the input on
/// one thread, so the global counters describe the code under test (libFuzzer itself
/// allocates with C `malloc`, which does not pass through here).
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_ptr = System.realloc(ptr, layout, new_size);
        if !new_ptr.is_null() {
            // A moving realloc holds old and new block at once: count that moment.
            grew(new_size);
            shrank(layout.size());
        }
        new_ptr
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the most heap it held at once beyond what was live
/// when it started.
pub fn measure_peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = f();
    (result, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

static WORST_PEAK: AtomicUsize = AtomicUsize::new(0);
static WORST_SHARE: AtomicUsize = AtomicUsize::new(0);

/// Panics (a libFuzzer finding) when `peak` breaks the bound for `input_len` real bytes.
/// With `MAK_FUZZ_REPORT_PEAK` set, prints every new maximum so the bound can be chosen
/// from measurement: of the peak itself, and of the peak as a share of its bound.
pub fn check_heap(what: &str, peak: usize, input_len: usize) {
    let bound = heap_bound(input_len);
    assert!(peak <= bound, "{what}: peak heap {peak} bytes for {input_len} input bytes, bound {bound}");
    if std::env::var_os("MAK_FUZZ_REPORT_PEAK").is_none() {
        return;
    }
    if WORST_PEAK.fetch_max(peak, Ordering::Relaxed) < peak {
        eprintln!("mak-fuzz peak: {what}: new max peak heap {peak} bytes (input {input_len} bytes, bound {bound})");
    }
    let share = peak.saturating_mul(1000) / bound;
    if WORST_SHARE.fetch_max(share, Ordering::Relaxed) < share {
        eprintln!(
            "mak-fuzz peak: {what}: new max share of bound {}.{:03} (peak {peak}, input {input_len}, bound {bound})",
            share / 1000,
            share % 1000
        );
    }
}
