//! The fully connected layer `y = x·Wᵀ` (x: (N, I), W: (O, I)) as a custom op.
//!
//! candle's matmul hands the gemm crate W as the operand along the output features,
//! strided by I, and gemm copies such an operand into panels element by element: a
//! third of AlexNet's inference time went there. Run with the batch as gemm's `m` axis
//! (the destination written transposed, then turned), W is read in place.
//!
//! A small batch (up to [`STREAM_MAX_BATCH`] samples: inference, AlexNet's and
//! VGG's classifiers) makes the layer a stream through W, each weight used a few
//! times: there gemm's packing of W (151 MB on AlexNet's first classifier layer)
//! cost 4-5x the stream itself. [`stream_f32`] reads W once, in place, and takes
//! the dot products of a few rows with a few samples at a time.

use super::dispatch::Map2;
use super::matmul::matmul;
use super::util::simd::{simd, Simd};
use super::util::{as_f32, from_f32, num_threads, transpose, Elem};
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `x·Wᵀ` for x (N, I) and W (O, I); differentiable in both.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (Ok((_, i)), Ok((_, wi))) = (x.dims2(), w.dims2()) else {
        bail!(
            "linear: expected x (N, I) and weight (O, I), got {:?} and {:?}",
            x.dims(),
            w.dims()
        )
    };
    if i != wi || x.dtype() != w.dtype() {
        bail!(
            "linear: x {:?} {:?} does not match weight {:?} {:?}",
            x.dims(),
            x.dtype(),
            w.dims(),
            w.dtype()
        )
    }
    if super::portable::applies(x) {
        return super::portable::linear(x, w);
    }
    x.contiguous()?.apply_op2(&w.contiguous()?, LinearOp)
}

struct LinearOp;

impl Map2 for LinearOp {
    /// `[N, I, O]`.
    type Sizes = [usize; 3];

    fn f<T: Elem>(&self, &[n, i, o]: &[usize; 3], x: &[T], w: &[T]) -> Vec<T> {
        linear_fwd(x, w, n, i, o)
    }
}

fn linear_fwd<T: Elem>(x: &[T], w: &[T], n: usize, i: usize, o: usize) -> Vec<T> {
    if n <= STREAM_MAX_BATCH {
        let streamed = as_f32(x)
            .zip(as_f32(w))
            .and_then(|(xf, wf)| stream_f32(xf, wf, n, i, o))
            .and_then(from_f32);
        if let Some(y) = streamed {
            return y;
        }
    }
    // yᵀ (O, N) row-major is the gemm destination (N, O) with the batch contiguous.
    let mut yt = vec![T::ZERO; o * n];
    let par = match num_threads() {
        1 => gemm::Parallelism::None,
        t => gemm::Parallelism::Rayon(t),
    };
    matmul([n, o, i], &mut yt, (1, n), false, (x, i, 1), (w, 1, i), par);
    let mut y = vec![T::ZERO; n * o];
    transpose(&yt, o, n, &mut y);
    y
}

/// Batches up to this size stream W (see the module's comment); larger ones are gemm's.
/// Each weight is used `n` times: at 32 the arithmetic catches up with the reading.
pub(crate) const STREAM_MAX_BATCH: usize = 32;
/// Rows of W per block: their vectors stay in registers while [`SAMPLES`] samples'
/// vectors meet them (6 x 4 accumulators, 6 weights and 1 input: 31 of 32 registers).
const ROWS: usize = 6;
const SAMPLES: usize = 4;
/// Inputs per chunk: a block's rows of one chunk (24 KB) stay in L1 while every group of
/// samples passes over them.
const CHUNK: usize = 1024;
const LANES: usize = 16;

/// `x·Wᵀ` for a small batch, f32 with AVX-512; None elsewhere (gemm runs instead).
fn stream_f32(x: &[f32], w: &[f32], n: usize, i: usize, o: usize) -> Option<Vec<f32>> {
    use rayon::prelude::*;
    if simd() != Simd::Avx512 || n == 0 || o == 0 {
        return None;
    }
    assert!(x.len() >= n * i && w.len() >= o * i);
    // yᵀ (O, N): each block of rows writes its own slice; then turned.
    let mut yt = vec![0f32; o * n];
    let blocks = o.div_ceil(ROWS);
    // A few tasks per thread: rows cost the same, so balance is by count.
    let per_task = blocks.div_ceil(4 * num_threads()).max(1);
    yt.par_chunks_mut(per_task * ROWS * n)
        .enumerate()
        .for_each(|(t, out)| {
            let mut acc = vec![0f32; n.div_ceil(SAMPLES) * ROWS * SAMPLES * LANES];
            for (b, out) in out.chunks_mut(ROWS * n).enumerate() {
                let o0 = (t * per_task + b) * ROWS;
                // SAFETY: AVX-512 was detected above; the extents were asserted (rows and
                // samples past the ends are clamped to the last ones, their sums dropped).
                unsafe { stream_block(x, w, n, i, o, o0, &mut acc, out) };
            }
        });
    let mut y = vec![0f32; n * o];
    transpose(&yt, o, n, &mut y);
    Some(y)
}

/// yᵀ rows o0..o0+ROWS (fewer at the end) of `x·Wᵀ` into `out` ((rows, N)), with `acc`
/// holding every group of samples' ROWS x SAMPLES vector sums across the chunks.
///
/// # Safety
/// AVX-512F must be available; x holds N·I and w O·I values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn stream_block(
    x: &[f32],
    w: &[f32],
    n: usize,
    i: usize,
    o: usize,
    o0: usize,
    acc: &mut [f32],
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let groups = n.div_ceil(SAMPLES);
    debug_assert!(acc.len() >= groups * ROWS * SAMPLES * LANES);
    // SAFETY: every row pointer is clamped inside w (o rows) or x (n rows) and every
    // load inside a row (k + 16 ≤ i, or masked to i); acc and out are indexed in bounds.
    unsafe {
        let wr: [*const f32; ROWS] =
            std::array::from_fn(|r| w.as_ptr().add((o0 + r).min(o - 1) * i));
        for k0 in (0..i).step_by(CHUNK) {
            let k1 = (k0 + CHUNK).min(i);
            for g in 0..groups {
                let xr: [*const f32; SAMPLES] =
                    std::array::from_fn(|s| x.as_ptr().add((g * SAMPLES + s).min(n - 1) * i));
                let a = acc.as_mut_ptr().add(g * ROWS * SAMPLES * LANES);
                let mut sums: [[__m512; SAMPLES]; ROWS] = if k0 == 0 {
                    [[_mm512_setzero_ps(); SAMPLES]; ROWS]
                } else {
                    std::array::from_fn(|r| {
                        std::array::from_fn(|s| _mm512_loadu_ps(a.add((r * SAMPLES + s) * LANES)))
                    })
                };
                let mut k = k0;
                while k < k1 {
                    let m: __mmask16 = if k + LANES <= k1 {
                        !0
                    } else {
                        (1u16 << (k1 - k)) - 1
                    };
                    let xv: [__m512; SAMPLES] =
                        std::array::from_fn(|s| _mm512_maskz_loadu_ps(m, xr[s].add(k)));
                    for (r, sums) in sums.iter_mut().enumerate() {
                        let wv = _mm512_maskz_loadu_ps(m, wr[r].add(k));
                        for (s, sum) in sums.iter_mut().enumerate() {
                            *sum = _mm512_fmadd_ps(wv, xv[s], *sum);
                        }
                    }
                    k += LANES;
                }
                for (r, sums) in sums.iter().enumerate() {
                    for (s, &v) in sums.iter().enumerate() {
                        _mm512_storeu_ps(a.add((r * SAMPLES + s) * LANES), v);
                    }
                }
            }
        }
        let rows = ROWS.min(o - o0);
        for r in 0..rows {
            for b in 0..n {
                let (g, s) = (b / SAMPLES, b % SAMPLES);
                let v = _mm512_loadu_ps(acc.as_ptr().add(((g * ROWS + r) * SAMPLES + s) * LANES));
                out[r * n + b] = _mm512_reduce_add_ps(v);
            }
        }
    }
}

/// Never reached: stream_f32 returns None before (no AVX-512 off x86-64).
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn stream_block(
    _: &[f32],
    _: &[f32],
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: &mut [f32],
    _: &mut [f32],
) {
    unreachable!("the streaming kernel needs AVX-512")
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "cnncost-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (&[n, i], &[o, _]) = (l1.dims(), l2.dims()) else {
            bail!("{}: unexpected shapes {l1:?} {l2:?}", self.name())
        };
        let st = self.map(self.name(), &[n, i, o], (s1, l1), (s2, l2))?;
        Ok((st, Shape::from((n, o))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        crate::kernels::timeline::op_backward(y);
        // Both products keep gemm's large operand contiguous along its `m` axis. On
        // detached operands: a product with the tracked `x` or `w` would record them, and
        // the weight's gradient (kept until the optimiser has run) would keep the whole
        // forward graph alive with it.
        let (xd, wd) = (x.detach(), w.detach());
        let dx = x.track_op().then(|| dy.matmul(&wd)).transpose()?;
        let dw = w
            .track_op()
            .then(|| crate::kernels::timeline::weight_grad(|| dy.t()?.matmul(&xd)))
            .transpose()?;
        Ok((dx, dw))
    }
}
