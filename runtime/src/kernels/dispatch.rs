//! The one dtype dispatch of the custom ops (candle's `Map1`/`Map2` pattern): an op's
//! kernel is a method generic in the element type ([`Map1::f`], [`Map2::f`],
//! [`Map3::f`], by the op's number of inputs), and the trait's `map` matches the
//! storages once per call, takes their contiguous data and calls it for f32 or f64.
//! Any other dtype, or inputs of two dtypes, is the op's [`dtype_error`].
//!
//! `Sizes` is what the op's `cpu_fwd` read from the layouts (and checked) before
//! dispatching: the kernel gets it as it is.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, WithDType};

use super::util::Elem;

/// An op's kernel on one input.
pub(crate) trait Map1 {
    type Sizes: ?Sized;

    fn f<T: Elem>(&self, sizes: &Self::Sizes, a: &[T]) -> Vec<T>;

    /// [`Map1::f`] of `a`'s data, as storage of `a`'s dtype.
    fn map(
        &self,
        op: &str,
        sizes: &Self::Sizes,
        (a, la): (&CpuStorage, &Layout),
    ) -> Result<CpuStorage> {
        Ok(match a {
            CpuStorage::F32(_) => {
                CpuStorage::F32(self.f(sizes, contiguous_slice::<f32>(op, a, la)?))
            }
            CpuStorage::F64(_) => {
                CpuStorage::F64(self.f(sizes, contiguous_slice::<f64>(op, a, la)?))
            }
            _ => return dtype_error(op, a, None),
        })
    }
}

/// An op's kernel on two inputs of one dtype.
pub(crate) trait Map2 {
    type Sizes: ?Sized;

    fn f<T: Elem>(&self, sizes: &Self::Sizes, a: &[T], b: &[T]) -> Vec<T>;

    /// [`Map2::f`] of `a`'s and `b`'s data, as storage of their dtype.
    fn map(
        &self,
        op: &str,
        sizes: &Self::Sizes,
        (a, la): (&CpuStorage, &Layout),
        (b, lb): (&CpuStorage, &Layout),
    ) -> Result<CpuStorage> {
        Ok(match (a, b) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => CpuStorage::F32(self.f(
                sizes,
                contiguous_slice::<f32>(op, a, la)?,
                contiguous_slice::<f32>(op, b, lb)?,
            )),
            (CpuStorage::F64(_), CpuStorage::F64(_)) => CpuStorage::F64(self.f(
                sizes,
                contiguous_slice::<f64>(op, a, la)?,
                contiguous_slice::<f64>(op, b, lb)?,
            )),
            _ => return dtype_error(op, a, Some(b)),
        })
    }
}

/// An op's kernel on three inputs of one dtype.
pub(crate) trait Map3 {
    type Sizes: ?Sized;

    fn f<T: Elem>(&self, sizes: &Self::Sizes, a: &[T], b: &[T], c: &[T]) -> Vec<T>;

    /// [`Map3::f`] of the three inputs' data, as storage of their dtype. A dtype error
    /// names the first two inputs' dtypes.
    fn map(
        &self,
        op: &str,
        sizes: &Self::Sizes,
        (a, la): (&CpuStorage, &Layout),
        (b, lb): (&CpuStorage, &Layout),
        (c, lc): (&CpuStorage, &Layout),
    ) -> Result<CpuStorage> {
        Ok(match (a, b, c) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(self.f(
                    sizes,
                    contiguous_slice::<f32>(op, a, la)?,
                    contiguous_slice::<f32>(op, b, lb)?,
                    contiguous_slice::<f32>(op, c, lc)?,
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(self.f(
                    sizes,
                    contiguous_slice::<f64>(op, a, la)?,
                    contiguous_slice::<f64>(op, b, lb)?,
                    contiguous_slice::<f64>(op, c, lc)?,
                ))
            }
            _ => return dtype_error(op, a, Some(b)),
        })
    }
}

/// The contiguous data of a tensor's storage (the wrappers make every input contiguous).
fn contiguous_slice<'a, T: WithDType>(op: &str, s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        bail!("{op}: expected a contiguous input, got layout {l:?}")
    };
    Ok(&T::cpu_storage_as_slice(s)?[start..end])
}

/// The error of an op given a dtype other than f32 and f64, or two dtypes.
fn dtype_error<T>(op: &str, a: &CpuStorage, b: Option<&CpuStorage>) -> Result<T> {
    match b {
        Some(b) => bail!(
            "{op}: expected two f32 or two f64 tensors, got {:?} and {:?}",
            a.dtype(),
            b.dtype()
        ),
        None => bail!("{op}: expected an f32 or f64 tensor, got {:?}", a.dtype()),
    }
}
