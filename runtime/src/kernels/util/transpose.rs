//! The blocked matrix transpose that the kernels use to change layouts.

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
