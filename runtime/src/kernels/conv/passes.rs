//! The three passes of a convolution, generic in the element type: the forward (with
//! inference's bias and ReLU), the input gradient and the weight gradient. Each takes a
//! fast 3x3 path where the [plan](super::plan) picks one, else im2col + gemm over chunks
//! of samples.

use super::geometry::{Conv2dGeometry, Dims};
use super::im2col::{col2im, gather_chunk, im2col, scatter_chunk};
use super::plan::{for_chunks, Par, Plan, Split};
use super::{direct, space_to_depth, winograd};
use crate::kernels::matmul::matmul;
use crate::kernels::util::{relu_of, transpose, with_scratch, Elem};

/// The column matrix (C·KH·KW, nc·P) of samples `n0..n0 + nc`, in scratch slot 0.
fn with_chunk_columns<T: Elem, R>(
    x: &[T],
    d: &Dims,
    n0: usize,
    nc: usize,
    par: Par,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    with_scratch(0, d.c * d.kk() * nc * d.p(), |cols| {
        let x = &x[n0 * d.chw()..(n0 + nc) * d.chw()];
        im2col(x, d, nc, cols, par.copies);
        f(cols)
    })
}

/// dY of samples `n0..n0 + nc` as (O, nc·P): one sample's slice as it is, several
/// gathered into scratch slot 1.
fn with_chunk_rows<T: Elem, R>(
    dy: &[T],
    d: &Dims,
    n0: usize,
    nc: usize,
    par: Par,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    let p = d.p();
    let dy = &dy[n0 * d.o * p..(n0 + nc) * d.o * p];
    if nc == 1 {
        return f(dy);
    }
    with_scratch(1, d.o * nc * p, |buf| {
        gather_chunk(dy, d.o, p, nc, buf, par.copies);
        f(buf)
    })
}

/// What inference applies to a convolution's output while it is still in cache: a
/// per-channel bias (a folded batch norm's shift) and ReLU.
#[derive(Clone, Copy)]
pub(super) struct Epilogue<'a, T> {
    pub(super) bias: &'a [T],
    pub(super) relu: bool,
}

impl<T: Elem> Epilogue<'_, T> {
    /// `y` holds whole samples' (O, P) outputs.
    fn apply(&self, y: &mut [T], p: usize) {
        for (q, row) in y.chunks_mut(p.max(1)).enumerate() {
            let b = self.bias[q % self.bias.len()];
            if self.relu {
                for v in row {
                    *v = relu_of(*v + b);
                }
            } else {
                for v in row {
                    *v += b;
                }
            }
        }
    }
}

pub(super) fn conv_fwd<T: Elem>(
    x: &[T],
    w: &[T],
    d: &Dims,
    epilogue: Option<Epilogue<T>>,
) -> Vec<T> {
    if let Some(t) = space_to_depth::transformed(d) {
        let xt = space_to_depth::input(x, d, &t);
        let wt = space_to_depth::weight(w, d, &t);
        return conv_fwd(&xt, &wt, &t, epilogue);
    }
    let (bias, relu) = epilogue.map_or((None, false), |e| (Some(e.bias), e.relu));
    if let Some(s) = d.winograd() {
        return winograd::conv3x3(x, w, &s, bias, relu);
    }
    if let Some(y) = d
        .direct()
        .and_then(|s| direct::conv3x3(x, w, &s, bias, relu))
    {
        return y;
    }
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let mut y = vec![T::ZERO; d.n * d.o * p];
    for_chunks(d, &mut y, d.o * p, |n0, nc, y, par| {
        let ld = nc * p;
        with_chunk_columns(x, d, n0, nc, par, |cols| {
            let product = |out: &mut [T]| {
                for gi in 0..g {
                    matmul(
                        [og, ld, cgkk],
                        &mut out[gi * og * ld..],
                        (ld, 1),
                        false,
                        (&w[gi * og * cgkk..], cgkk, 1),
                        (&cols[gi * cgkk * ld..], ld, 1),
                        par.gemm,
                    );
                }
            };
            // One sample's (O, P) output is already in y's layout.
            if nc == 1 {
                product(y);
            } else {
                with_scratch(1, d.o * ld, |staged| {
                    product(staged);
                    scatter_chunk(staged, d.o, p, nc, y, par.copies);
                });
            }
            if let Some(e) = epilogue {
                e.apply(y, p);
            }
        });
    });
    y
}

/// The input gradient of a stride-1 convolution is itself a convolution: of dY with the
/// kernel flipped and its channel axes swapped (per group), padded by
/// `dilation·(k − 1) − pad` on each side. Run as one, it takes the forward's path
/// (im2col of dY, one gemm per chunk, straight into dX) instead of a gemm into a column
/// matrix and a col2im over it: 2.4x faster on ResNet-18's first stage, where that
/// column matrix outgrows the L2 cache. None where the flip does not apply.
fn bwd_data_as_conv<T: Elem>(dy: &[T], w: &[T], d: &Dims) -> Option<Vec<T>> {
    let dil = d.g.dilation;
    let reach = [dil[0] * (d.kh - 1), dil[1] * (d.kw - 1)];
    let (pb, pe) = (d.g.pad_begin, d.g.pad_end);
    if d.g.stride != [1, 1] || (0..2).any(|a| pb[a] > reach[a] || pe[a] > reach[a]) {
        return None;
    }
    let g = Conv2dGeometry {
        stride: [1, 1],
        pad_begin: [reach[0] - pb[0], reach[1] - pb[1]],
        pad_end: [reach[0] - pe[0], reach[1] - pe[1]],
        dilation: dil,
        groups: d.g.groups,
    };
    let (og, cg, kk) = (d.og(), d.c / d.g.groups, d.kk());
    // w (O, C/g, KH, KW) -> flipped (C, O/g, KH, KW), group by group.
    let mut flipped = vec![T::ZERO; w.len()];
    for gi in 0..d.g.groups {
        for o in 0..og {
            for c in 0..cg {
                let src = &w[((gi * og + o) * cg + c) * kk..][..kk];
                let dst = &mut flipped[((gi * cg + c) * og + o) * kk..][..kk];
                for (k, v) in dst.iter_mut().enumerate() {
                    *v = src[kk - 1 - k];
                }
            }
        }
    }
    let dd = Dims::new(&[d.n, d.o, d.oh, d.ow], &[d.c, og, d.kh, d.kw], &g).ok()?;
    if [dd.oh, dd.ow] != [d.h, d.w] {
        return None;
    }
    Some(conv_fwd(dy, &flipped, &dd, None))
}

pub(super) fn conv_bwd_data<T: Elem>(dy: &[T], w: &[T], d: &Dims) -> Vec<T> {
    if let Some(dx) = bwd_data_as_conv(dy, w, d) {
        return dx;
    }
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let mut dx = vec![T::ZERO; d.n * d.chw()];
    for_chunks(d, &mut dx, d.chw(), |n0, nc, dx, par| {
        let ld = nc * p;
        with_chunk_rows(dy, d, n0, nc, par, |dyb| {
            with_scratch(0, d.c * d.kk() * ld, |dcols| {
                for gi in 0..g {
                    // Wᵀ per group: the (CgKK, Og) view of the (Og, CgKK) block.
                    matmul(
                        [cgkk, ld, og],
                        &mut dcols[gi * cgkk * ld..],
                        (ld, 1),
                        false,
                        (&w[gi * og * cgkk..], 1, cgkk),
                        (&dyb[gi * og * ld..], ld, 1),
                        par.gemm,
                    );
                }
                col2im(dcols, d, nc, dx, par.copies);
            })
        })
    });
    dx
}

pub(super) fn conv_bwd_filter<T: Elem>(x: &[T], dy: &[T], d: &Dims) -> Vec<T> {
    use rayon::prelude::*;
    if let Some(dw) = d.direct().and_then(|s| direct::weight_grad3x3(x, dy, &s)) {
        return dw;
    }
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let Plan {
        threads,
        split,
        chunk,
        par,
    } = Plan::of::<T>(d);
    // dWᵀ += cols·dYᵀ over the samples n0..n0+nc, per group a (CgKK, Og) block. Both
    // operands run along the reduced axis (the columns), so the gemm must gather one of
    // them into panels element by element: written as dWᵀ, that one is dY (Og rows), not
    // the K·K times larger column matrix (the gather took a seventh of a ResNet-20 step).
    let add_chunk = |n0: usize, dwt: &mut [T]| {
        let nc = chunk.min(d.n - n0);
        let ld = nc * p;
        with_chunk_columns(x, d, n0, nc, par, |cols| {
            with_chunk_rows(dy, d, n0, nc, par, |dyb| {
                for gi in 0..g {
                    // dYᵀ per group: the (nc·P, Og) view of the (Og, nc·P) block.
                    matmul(
                        [cgkk, og, ld],
                        &mut dwt[gi * og * cgkk..],
                        (og, 1),
                        true,
                        (&cols[gi * cgkk * ld..], ld, 1),
                        (&dyb[gi * og * ld..], 1, ld),
                        par.gemm,
                    );
                }
            })
        })
    };
    let starts: Vec<usize> = (0..d.n).step_by(chunk).collect();
    let len = d.o * cgkk;
    let dwt = match split {
        // A fixed block of chunks per thread, the blocks' sums added in order: the
        // same bits every run (rayon's fold would split where work-stealing falls).
        Split::Chunks => {
            let blocks: Vec<Vec<T>> = starts
                .par_chunks(starts.len().div_ceil(threads))
                .map(|block| {
                    let mut dw = vec![T::ZERO; len];
                    for &n0 in block {
                        add_chunk(n0, &mut dw);
                    }
                    dw
                })
                .collect();
            let mut blocks = blocks.into_iter();
            let mut dw = blocks.next().unwrap_or_else(|| vec![T::ZERO; len]);
            for b in blocks {
                for (a, b) in dw.iter_mut().zip(b) {
                    *a += b;
                }
            }
            dw
        }
        Split::Within => {
            let mut dw = vec![T::ZERO; len];
            for &n0 in &starts {
                add_chunk(n0, &mut dw);
            }
            dw
        }
    };
    // (CgKK, Og) blocks back to the weights' (Og, CgKK).
    let mut dw = vec![T::ZERO; len];
    let block = og * cgkk;
    for (src, dst) in dwt.chunks(block.max(1)).zip(dw.chunks_mut(block.max(1))) {
        transpose(src, cgkk, og, dst);
    }
    dw
}
