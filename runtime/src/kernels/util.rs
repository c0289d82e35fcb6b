//! Helpers shared by the kernels: the element trait, typed access to CPU storage and a
//! `parallel for` over rayon's pool.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, WithDType};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::thread::LocalKey;

/// The element types the kernels support.
pub(crate) trait Elem: WithDType {
    const ZERO: Self;
    const ONE: Self;
    const NEG_INF: Self;
    fn is_nan(self) -> bool;
    /// This type's per-thread scratch buffers ([`with_scratch`]).
    fn scratch() -> &'static LocalKey<[RefCell<Vec<Self>>; SCRATCH_SLOTS]>;
    /// The direct 3x3 kernel ([`super::direct`]) where it runs for this type on this CPU
    /// (f32 with AVX-512), else None.
    fn direct_conv3x3(
        _x: &[Self],
        _w: &[Self],
        _s: &super::conv::Conv3x3,
        _bias: Option<&[Self]>,
        _relu: bool,
    ) -> Option<Vec<Self>> {
        None
    }
    /// The direct kernel's weight gradient, where it runs (as [`Elem::direct_conv3x3`]).
    fn direct_weight_grad3x3(
        _x: &[Self],
        _dy: &[Self],
        _s: &super::conv::Conv3x3,
    ) -> Option<Vec<Self>> {
        None
    }
}

/// Scratch buffers per thread and element type: the column matrices and staging copies
/// of a convolution (Winograd's: its V and M matrices and the bands it transposes),
/// reused from call to call. As fresh zeroed vectors they cost a
/// tenth of a ResNet-20 training step (memset, page faults, malloc).
const SCRATCH_SLOTS: usize = 4;

thread_local! {
    static SCRATCH_F32: [RefCell<Vec<f32>>; SCRATCH_SLOTS] =
        const { [const { RefCell::new(Vec::new()) }; SCRATCH_SLOTS] };
    static SCRATCH_F64: [RefCell<Vec<f64>>; SCRATCH_SLOTS] =
        const { [const { RefCell::new(Vec::new()) }; SCRATCH_SLOTS] };
}

/// Calls `f` with this thread's scratch buffer `slot` (0 to 3), at least `len` long and
/// holding stale values: `f` must write what it reads. A slot already in use (a nested
/// call on the same thread, through rayon's work stealing) gives a fresh buffer instead.
pub(crate) fn with_scratch<T: Elem, R>(
    slot: usize,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    T::scratch().with(|slots| match slots[slot].try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, T::ZERO);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![T::ZERO; len]),
    })
}

impl Elem for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NEG_INF: f32 = f32::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn scratch() -> &'static LocalKey<[RefCell<Vec<Self>>; SCRATCH_SLOTS]> {
        &SCRATCH_F32
    }
    fn direct_conv3x3(
        x: &[f32],
        w: &[f32],
        s: &super::conv::Conv3x3,
        bias: Option<&[f32]>,
        relu: bool,
    ) -> Option<Vec<f32>> {
        super::direct::conv3x3(x, w, s, bias, relu)
    }
    fn direct_weight_grad3x3(x: &[f32], dy: &[f32], s: &super::conv::Conv3x3) -> Option<Vec<f32>> {
        super::direct::weight_grad3x3(x, dy, s)
    }
}

impl Elem for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NEG_INF: f64 = f64::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn scratch() -> &'static LocalKey<[RefCell<Vec<Self>>; SCRATCH_SLOTS]> {
        &SCRATCH_F64
    }
}

/// The contiguous data of a tensor's storage (the wrappers make every input contiguous).
pub(crate) fn contiguous_slice<'a, T: WithDType>(
    op: &str,
    s: &'a CpuStorage,
    l: &Layout,
) -> Result<&'a [T]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        bail!("{op}: expected a contiguous input, got layout {l:?}")
    };
    Ok(&T::cpu_storage_as_slice(s)?[start..end])
}

pub(crate) fn dtype_error<T>(op: &str, a: &CpuStorage, b: Option<&CpuStorage>) -> Result<T> {
    match b {
        Some(b) => bail!(
            "{op}: expected two f32 or two f64 tensors, got {:?} and {:?}",
            a.dtype(),
            b.dtype()
        ),
        None => bail!("{op}: expected an f32 or f64 tensor, got {:?}", a.dtype()),
    }
}

/// Threads the kernels split work over: candle's count (`RAYON_NUM_THREADS`, else the
/// physical cores), read once. candle re-counts the cores from /proc/cpuinfo on every
/// call without the variable: 7% of a ResNet-20 training step.
pub fn num_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| candle_core::utils::get_num_threads().max(1))
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
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Calls `f(i, row)` for every `row_len`-long row of `data`, rows split across rayon's
/// pool in contiguous blocks (one thread when the work is below `min_par_len` elements).
/// The pool's threads live for the whole run: spawning threads per call cost a third of
/// a training step in the kernel (clone, scheduling, stack unmapping).
pub(crate) fn par_rows<T, F>(data: &mut [T], row_len: usize, min_par_len: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    use rayon::prelude::*;
    if row_len == 0 || data.is_empty() {
        return;
    }
    let rows = data.len().div_ceil(row_len);
    let nt = num_threads().min(rows);
    if nt <= 1 || data.len() < min_par_len {
        for (i, r) in data.chunks_mut(row_len).enumerate() {
            f(i, r)
        }
        return;
    }
    let per = rows.div_ceil(nt);
    data.par_chunks_mut(per * row_len)
        .enumerate()
        .for_each(|(t, block)| {
            for (i, r) in block.chunks_mut(row_len).enumerate() {
                f(t * per + i, r)
            }
        });
}

/// Elements per parallel block of the elementwise maps: large enough to amortise the
/// hand-off, small enough to balance two threads.
const MAP_BLOCK: usize = 1 << 14;

/// A new vector of `len` elements written in parallel, block by block: `fill(i, block)`
/// gets the elements `i·MAP_BLOCK..` (up to `MAP_BLOCK` of them) and must write every
/// one. The output is never zeroed first.
fn par_new<T: Elem>(len: usize, fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    // SAFETY: the callers below zip each block with input slices at least as long and
    // write every element.
    unsafe { par_extend_rows(&mut out, len, MAP_BLOCK, 1 << 15, fill) };
    out
}

/// Appends `len` elements to `out`, written in parallel rows of `row_len` by
/// `fill(i, row)` as [`par_rows`] splits them: a new output written once, never zeroed
/// first (the zeroing was a twentieth of a ResNet-20 training step).
///
/// # Safety
/// `fill` must write every element of every row it gets.
pub(crate) unsafe fn par_extend_rows<T: Elem>(
    out: &mut Vec<T>,
    len: usize,
    row_len: usize,
    min_par_len: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) {
    out.reserve(len);
    let old = out.len();
    par_rows(
        &mut out.spare_capacity_mut()[..len],
        row_len,
        min_par_len,
        fill,
    );
    // SAFETY: the rows cover old..old+len and the caller's `fill` wrote all of them.
    unsafe { out.set_len(old + len) };
}

/// `f` of every element of `x`, in parallel: the output is written once, never zeroed
/// first, and the loop is branch-free so it vectorises (`f` should be a select, not a
/// conditional store).
pub(crate) fn par_map<T: Elem>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    par_new(x.len(), |i, o| map_block(o, &x[i * MAP_BLOCK..], &f))
}

vectorised! {
    fn map_block[T: Elem, F: Fn(T) -> T](o: &mut [MaybeUninit<T>], x: &[T], f: &F) = map_block_body;
}

#[inline(always)]
fn map_block_body<T: Elem, F: Fn(T) -> T>(o: &mut [MaybeUninit<T>], x: &[T], f: &F) {
    for (o, &v) in o.iter_mut().zip(x) {
        o.write(f(v));
    }
}

/// `f` of every pair of elements of `a` and `b` (equal lengths), as [`par_map`].
pub(crate) fn par_zip_map<T: Elem>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "par_zip_map: lengths differ");
    par_new(a.len(), |i, o| {
        zip_block(o, &a[i * MAP_BLOCK..], &b[i * MAP_BLOCK..], &f)
    })
}

vectorised! {
    fn zip_block[T: Elem, F: Fn(T, T) -> T](
        o: &mut [MaybeUninit<T>],
        a: &[T],
        b: &[T],
        f: &F,
    ) = zip_block_body;
}

#[inline(always)]
fn zip_block_body<T: Elem, F: Fn(T, T) -> T>(o: &mut [MaybeUninit<T>], a: &[T], b: &[T], f: &F) {
    for ((o, &u), &v) in o.iter_mut().zip(a).zip(b) {
        o.write(f(u, v));
    }
}

/// max(v, 0) as a select (it vectorises), 0 for NaN.
pub(crate) fn relu_of<T: Elem>(v: T) -> T {
    if v > T::ZERO {
        v
    } else {
        T::ZERO
    }
}

/// `dst` (cols, rows) = the transpose of `src` (rows, cols), both row-major, in 16x16
/// blocks: a block's source rows and destination rows stay in the L1 cache (a plain
/// column walk misses on every element once a row outgrows a page).
pub(crate) fn transpose<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    const B: usize = 16;
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for c in c0..(c0 + B).min(cols) {
                for r in r0..(r0 + B).min(rows) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// A buffer that parallel tasks write in disjoint pieces that interleave (a Winograd
/// band's tiles of every ξ, a BN channel's rows of every sample), so that it cannot be
/// split into one slice per task: raw pointer writes, each checked against the length.
#[derive(Clone, Copy)]
pub(crate) struct Disjoint<T> {
    ptr: *mut T,
    len: usize,
}
// SAFETY: the tasks write disjoint elements (each caller says which) and nothing reads
// the buffer until they have all finished.
unsafe impl<T> Send for Disjoint<T> {}
unsafe impl<T> Sync for Disjoint<T> {}

impl<T: Copy> Disjoint<T> {
    pub fn of(buf: &mut [T]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// The first `len` elements of `out`'s spare capacity, to be written.
    pub fn uninit(out: &mut Vec<T>, len: usize) -> Self {
        assert!(out.capacity() >= len, "Disjoint::uninit: capacity");
        Self {
            ptr: out.as_mut_ptr(),
            len,
        }
    }

    /// buf[at..at + vals.len()] = vals.
    ///
    /// # Safety
    /// No other task touches these elements meanwhile.
    #[inline(always)]
    pub unsafe fn put(self, at: usize, vals: &[T]) {
        assert!(at + vals.len() <= self.len, "Disjoint::put out of bounds");
        std::ptr::copy_nonoverlapping(vals.as_ptr(), self.ptr.add(at), vals.len())
    }

    /// buf[at..at + len], to be written.
    ///
    /// # Safety
    /// No other task touches these elements while the slice lives.
    #[inline(always)]
    pub unsafe fn slice<'a>(self, at: usize, len: usize) -> &'a mut [MaybeUninit<T>] {
        assert!(at + len <= self.len, "Disjoint::slice out of bounds");
        std::slice::from_raw_parts_mut(self.ptr.add(at).cast(), len)
    }
}

/// The widest vector instructions this CPU has, of those the kernels are compiled for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    Avx512,
    Avx2,
    Baseline,
}

pub(crate) fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// `vectorised! { fn name[T: Elem](args) -> R = body; }` defines `name`, which calls
/// `body` (an `#[inline(always)]` fn with the same generics, in brackets here, and
/// arguments) compiled for AVX-512, or AVX2 with FMA, where this CPU has it. The crate is
/// built for baseline x86-64, whose loops vectorise 4 lanes wide (2 in f64); inlined
/// into these wrappers they run 16 wide. (A closure handed to such a wrapper is not
/// inlined when it is large, and then runs at SSE2 width: named functions only; small
/// closures inside the body are inlined with it.) `unsafe fn` keeps the body's contract.
macro_rules! vectorised {
    ($(#[$meta:meta])* $vis:vis fn $name:ident[$($g:tt)*]($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$($g)*>($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: `$body` is safe; the wrappers only need the CPU features.
            unsafe { $crate::kernels::util::vectorised!(@dispatch [$($g)*] $body($($arg: $ty),*) $(-> $ret)?) }
        }
    };
    ($(#[$meta:meta])* $vis:vis unsafe fn $name:ident[$($g:tt)*]($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name<$($g)*>($($arg: $ty),*) $(-> $ret)? {
            $crate::kernels::util::vectorised!(@dispatch [$($g)*] $body($($arg: $ty),*) $(-> $ret)?)
        }
    };
    (@dispatch [$($g:tt)*] $body:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments, unused_unsafe)]
            unsafe fn avx512<$($g)*>($($arg: $ty),*) $(-> $ret)? {
                unsafe { $body($($arg),*) }
            }
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments, unused_unsafe)]
            unsafe fn avx2<$($g)*>($($arg: $ty),*) $(-> $ret)? {
                unsafe { $body($($arg),*) }
            }
            match $crate::kernels::util::simd() {
                // The features were detected at run time.
                $crate::kernels::util::Simd::Avx512 => avx512($($arg),*),
                $crate::kernels::util::Simd::Avx2 => avx2($($arg),*),
                $crate::kernels::util::Simd::Baseline => $body($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body($($arg),*)
        }
    }};
}
pub(crate) use vectorised;
