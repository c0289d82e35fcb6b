//! Parallel loops over rayon's pool: rows of a buffer, new outputs written once, and
//! the elementwise maps.

use std::mem::MaybeUninit;

use super::elem::Elem;
use super::process::num_threads;
use super::simd::vectorised;

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
