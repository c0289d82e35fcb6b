//! The one wrapper over the `gemm` crate that the kernels call.

use super::util::Elem;

/// `dst (m, n) = [dst +] lhs (m, k) · rhs (k, n)` with the `gemm` crate, each matrix given
/// by its row and column strides (a transposed operand is a swap of its strides).
///
/// The gemm crate runs its micro-kernel down the destination's contiguous axis (it
/// transposes the problem to make that axis `m`) and copies the operand along `m`
/// into panels; an operand strided along `m` is copied element by element, which
/// is slow: choose the destination's layout so that the large operand is contiguous
/// along `m` or is the right-hand side.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Elem>(
    [m, n, k]: [usize; 3],
    dst: &mut [T],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[T], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[T], usize, usize),
    par: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    // The gemm reads and writes through raw pointers: every element it touches must
    // lie inside the slices.
    let reach =
        |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
    assert!(
        reach(m, n, dst_rs, dst_cs) <= dst.len(),
        "matmul: dst too short"
    );
    if k > 0 {
        assert!(
            reach(m, k, lhs_rs, lhs_cs) <= lhs.len(),
            "matmul: lhs too short"
        );
        assert!(
            reach(k, n, rhs_rs, rhs_cs) <= rhs.len(),
            "matmul: rhs too short"
        );
    }
    // SAFETY: the extents were checked above; dst does not alias lhs or rhs (&mut).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { T::ONE } else { T::ZERO },
            T::ONE,
            false,
            false,
            false,
            par,
        )
    }
}
