//! The element types the kernels support (f32, f64), each with its per-thread scratch
//! buffers, the ReLU of one element, and the f32 view ([`as_f32`], [`from_f32`]) through
//! which f32-only kernels take any of them.

use candle_core::{CpuStorage, CpuStorageRef, WithDType};
use std::cell::RefCell;
use std::thread::LocalKey;

/// The element types the kernels support.
pub(crate) trait Elem: WithDType {
    const ZERO: Self;
    const ONE: Self;
    const NEG_INF: Self;
    fn is_nan(self) -> bool;
    fn sqrt(self) -> Self;
    /// This type's per-thread scratch buffers ([`with_scratch`]).
    fn scratch() -> &'static LocalKey<[RefCell<Vec<Self>>; SCRATCH_SLOTS]>;
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

/// Bytes held by every thread's scratch buffers (they grow and stay): the
/// workspace that `cnncost NET --train` predicts.
static SCRATCH_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn scratch_bytes() -> usize {
    SCRATCH_BYTES.load(std::sync::atomic::Ordering::Relaxed)
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
                let before = buf.capacity();
                buf.resize(len, T::ZERO);
                SCRATCH_BYTES.fetch_add(
                    (buf.capacity() - before) * std::mem::size_of::<T>(),
                    std::sync::atomic::Ordering::Relaxed,
                );
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
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    fn scratch() -> &'static LocalKey<[RefCell<Vec<Self>>; SCRATCH_SLOTS]> {
        &SCRATCH_F32
    }
}

impl Elem for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NEG_INF: f64 = f64::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    fn scratch() -> &'static LocalKey<[RefCell<Vec<Self>>; SCRATCH_SLOTS]> {
        &SCRATCH_F64
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

/// `v` as f32 data if `T` is f32: how an f32-only kernel (written with intrinsics) takes
/// an [`Elem`] slice, through candle's `CpuStorageRef` (no specialisation, no unsafe casts).
pub(crate) fn as_f32<T: Elem>(v: &[T]) -> Option<&[f32]> {
    match T::cpu_storage_ref(v) {
        CpuStorageRef::F32(v) => Some(v),
        _ => None,
    }
}

/// An f32-only kernel's output as `T`'s: reached only where [`as_f32`] let the inputs
/// through, so `T` is f32 and this is a move.
pub(crate) fn from_f32<T: Elem>(v: Vec<f32>) -> Option<Vec<T>> {
    T::cpu_storage_data(CpuStorage::F32(v)).ok()
}
