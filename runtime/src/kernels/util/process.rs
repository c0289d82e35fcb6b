//! Process-wide settings for speed: the kernels' thread count and glibc malloc's
//! handling of freed memory.

/// Threads the kernels split work over: candle's count (`RAYON_NUM_THREADS`, else the
/// physical cores), read once. candle re-counts the cores from /proc/cpuinfo on every
/// call without the variable: 7% of a ResNet-20 training step.
pub fn num_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| candle_core::utils::get_num_threads().max(1))
}

/// The `gemm` crate's per-thread packing slabs, allocated on a thread's first
/// gemm and kept: (threads that may hold one, bytes each). The threads are the
/// pool's and the calling thread; a slab is one core's L2 cache as gemm reads it.
pub fn gemm_slabs() -> (usize, usize) {
    (
        num_threads() + 1,
        gemm_common::cache::CACHE_INFO[1].cache_bytes,
    )
}

/// Process settings for speed; call first thing in `main`, before any thread starts.
///
/// * `RAYON_NUM_THREADS` is set to [`num_threads`] when unset, so that candle's own
///   thread count (asked on every matrix product) is an environment lookup, not a parse
///   of /proc/cpuinfo.
/// * glibc's malloc keeps freed memory instead of mapping and unmapping every large
///   buffer (each fresh mapping costs a page fault per 4 KiB on first touch): the
///   settings `../shared/bench/README.md` prescribes for PyTorch, applied in-process
///   unless the user set `MALLOC_MMAP_MAX_` or `MALLOC_TRIM_THRESHOLD_` already.
///   Inference of ResNet-20 at batch 256 ran 1.4x faster with them.
pub fn configure_process() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", num_threads().to_string());
    }
    if std::env::var_os("MALLOC_MMAP_MAX_").is_none()
        && std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none()
    {
        keep_freed_memory();
    }
}

/// glibc's malloc keeps freed memory for reuse instead of unmapping every large buffer
/// (and faulting it in again on the next allocation). No-op elsewhere.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
