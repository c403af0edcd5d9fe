//! What the bench process (the server's) costs: allocation calls and live heap bytes
//! counted by the global allocator, resident memory from `/proc/self/statm`, and CPU time
//! of any process from `/proc/PID/stat`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The system allocator, counting.
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocation calls (alloc, alloc_zeroed, realloc) since the process started.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Heap bytes allocated and not yet freed.
pub fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

unsafe extern "C" {
    fn sysconf(name: i32) -> i64;
    fn malloc_trim(pad: usize) -> i32;
}

/// `_SC_CLK_TCK` and `_SC_PAGESIZE` on Linux.
const SC_CLK_TCK: i32 = 2;
const SC_PAGESIZE: i32 = 30;

/// Resident memory of this process, bytes.
pub fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf only reads a constant of the system.
    pages * unsafe { sysconf(SC_PAGESIZE) } as u64
}

/// Gives freed heap pages back to the system, so a resident-memory difference measured
/// after it counts what was allocated since, not pages the allocator had kept.
pub fn trim() {
    // SAFETY: malloc_trim only releases memory the allocator does not use.
    unsafe {
        malloc_trim(0);
    }
}

/// Whose CPU time is counted.
#[derive(Debug, Clone, Copy)]
pub enum Cpu {
    /// A process, all its threads.
    Process(u32),
    /// One thread of this process.
    Thread(u32),
}

impl Cpu {
    fn stat(self) -> String {
        match self {
            Cpu::Process(pid) => format!("/proc/{pid}/stat"),
            Cpu::Thread(tid) => format!("/proc/self/task/{tid}/stat"),
        }
    }
}

/// CPU seconds (user and system) `who` has used; `None` when it is gone.
pub fn cpu_seconds(who: Cpu) -> Option<f64> {
    let stat = std::fs::read_to_string(who.stat()).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    Some((utime + stime) / unsafe { sysconf(SC_CLK_TCK) } as f64)
}

/// CPU use of processes and threads over a span, as a share of one core.
pub struct CpuMeter {
    who: Vec<Cpu>,
    start: Vec<f64>,
    at: std::time::Instant,
}

impl CpuMeter {
    pub fn start(who: &[Cpu]) -> CpuMeter {
        CpuMeter {
            who: who.to_vec(),
            start: who.iter().map(|w| cpu_seconds(*w).unwrap_or(0.0)).collect(),
            at: std::time::Instant::now(),
        }
    }

    /// For each, its CPU time since [`CpuMeter::start`] over the wall time (1.0 is one
    /// core busy).
    pub fn shares(&self) -> Vec<f64> {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        self.who
            .iter()
            .zip(&self.start)
            .map(|(w, s)| (cpu_seconds(*w).unwrap_or(*s) - s) / wall)
            .collect()
    }
}
