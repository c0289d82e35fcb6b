//! Batch normalisation in training mode and ReLU as fused ops: composed
//! from candle's elementwise ops they took a third of a training step
//! (one pass per op, single-threaded reductions over strided axes, a fresh
//! buffer each), where two or three parallel passes suffice.
//!
//! BN forward: per channel, mean and biased variance over (N, H, W), then
//! y = (x - mean) / sqrt(var + eps) * gamma + beta. Backward (the standard
//! closed form): with xhat the normalised input and M = N*H*W,
//! dx = gamma/sqrt(var+eps) * (dy - sum(dy)/M - xhat * sum(dy*xhat)/M),
//! dgamma = sum(dy*xhat), dbeta = sum(dy).

use super::dispatch::{Map1, Map2, Map3};
use super::util::{as_f32, par_map, par_zip_map, relu_of, simd, vectorised, Disjoint, Elem, Simd};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

/// Per-channel batch moments of a training forward pass, for the running averages:
/// mean and biased variance, (C) f64 tensors on the input's device (on a GPU they stay
/// there: no synchronisation per batch norm).
#[derive(Clone, Debug)]
pub struct BatchMoments {
    pub mean: Tensor,
    pub var: Tensor,
}

/// The kernel's per-channel statistics: mean and biased variance.
#[derive(Clone, Debug, Default)]
pub(crate) struct BatchStats {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

/// Training-mode batch norm of `x` (N, C, ...) with per-channel `gamma` and
/// `beta` (C), followed by a ReLU when `relu` (a BN whose only reader is a ReLU: one
/// pass and one tensor fewer forward, and no gradient of the BN's own output to
/// accumulate backward). Returns the output and the batch statistics (for the running
/// averages). Differentiable in all three inputs.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchMoments)> {
    if super::portable::applies(x) {
        return super::portable::batch_norm_train(x, gamma, beta, eps, relu);
    }
    let x = x.contiguous()?;
    let stats = Arc::new(Mutex::new(BatchStats::default()));
    let y = x.apply_op3(
        &gamma.contiguous()?,
        &beta.contiguous()?,
        BnTrain {
            eps,
            relu,
            stats: stats.clone(),
        },
    )?;
    let s = stats.lock().map(|s| s.clone()).unwrap_or_default();
    let moments = BatchMoments {
        mean: Tensor::new(s.mean.as_slice(), x.device())?,
        var: Tensor::new(s.var.as_slice(), x.device())?,
    };
    Ok((y, moments))
}

/// (N, C, S) view of a layout's dims.
fn ncs(dims: &[usize]) -> (usize, usize, usize) {
    let n = dims.first().copied().unwrap_or(1);
    let c = dims.get(1).copied().unwrap_or(1);
    let s = dims.iter().skip(2).product();
    (n, c, s)
}

struct BnTrain {
    eps: f64,
    relu: bool,
    stats: Arc<Mutex<BatchStats>>,
}

/// (Σ f(aᵢ, bᵢ).0, Σ f(aᵢ, bᵢ).1) in f64 with eight partial sums each (a single f64
/// accumulator is a chain of dependent adds: a quarter of the step's BN time). The
/// order is fixed: the same bits every run. For f64 rows and CPUs without AVX-512:
/// f32 rows on AVX-512 take [`row_sums_f32`], since this loop compiles to scalar
/// conversions.
#[inline(always)]
fn lane_sum2<T: Elem>(a: &[T], b: &[T], f: impl Fn(T, T) -> (f64, f64)) -> (f64, f64) {
    let (mut p, mut q) = ([0f64; 8], [0f64; 8]);
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            let (u, v) = f(x[k], y[k]);
            p[k] += u;
            q[k] += v;
        }
    }
    let (mut tp, mut tq) = (0f64, 0f64);
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        let (u, v) = f(x, y);
        tp += u;
        tq += v;
    }
    (p.iter().sum::<f64>() + tp, q.iter().sum::<f64>() + tq)
}

/// (Σ f(aᵢ, bᵢ, cᵢ).0, Σ f(aᵢ, bᵢ, cᵢ).1) in f64, as [`lane_sum2`].
#[inline(always)]
fn lane_sum3<T: Elem>(a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> (f64, f64)) -> (f64, f64) {
    let (mut p, mut q) = ([0f64; 8], [0f64; 8]);
    let (mut ca, mut cb, mut cc) = (a.chunks_exact(8), b.chunks_exact(8), c.chunks_exact(8));
    for ((x, y), z) in (&mut ca).zip(&mut cb).zip(&mut cc) {
        for k in 0..8 {
            let (u, v) = f(x[k], y[k], z[k]);
            p[k] += u;
            q[k] += v;
        }
    }
    let (mut tp, mut tq) = (0f64, 0f64);
    for ((&x, &y), &z) in ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .zip(cc.remainder())
    {
        let (u, v) = f(x, y, z);
        tp += u;
        tq += v;
    }
    (p.iter().sum::<f64>() + tp, q.iter().sum::<f64>() + tq)
}

/// (Σ uᵢ, Σ uᵢ·eᵢ) in f64 over f32 rows, with uᵢ = aᵢ − sa (0 where `mask`ᵢ is not
/// above 0) and eᵢ = bᵢ − sb: both of batch norm's reductions, the forward's (a = b = x,
/// sa = sb = the shift) and the backward's (a = dy, b = x, sa = 0, sb = the mean), in
/// AVX-512. The generic loops ([`lane_sum2`], [`lane_sum3`]) compile to scalar
/// conversions to f64, and took a sixth of a ResNet-20 training step (perf, 2026-12-03).
/// None for f64 rows and without AVX-512: the generic loops take those.
fn row_sums_f32<T: Elem>(
    a: &[T],
    b: &[T],
    mask: Option<&[T]>,
    sa: f64,
    sb: f64,
) -> Option<(f64, f64)> {
    let (a, b) = (as_f32(a)?, as_f32(b)?);
    let mask = match mask {
        Some(m) => Some(as_f32(m)?),
        None => None,
    };
    if simd() != Simd::Avx512 {
        return None;
    }
    assert!(a.len() == b.len() && mask.is_none_or(|m| m.len() == a.len()));
    // SAFETY: AVX-512 was detected; the lengths are equal (asserted).
    Some(unsafe { row_sums_avx512(a, b, mask, sa, sb) })
}

/// [`row_sums_f32`]'s loop: 16 values per step in two f64 halves, each with its own
/// accumulators (the adds' latency), reduced in a fixed order: the same bits every run.
///
/// # Safety
/// AVX-512F and AVX-512VL must be available; `b` and `mask` are as long as `a`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl")]
unsafe fn row_sums_avx512(
    a: &[f32],
    b: &[f32],
    mask: Option<&[f32]>,
    sa: f64,
    sb: f64,
) -> (f64, f64) {
    use std::arch::x86_64::*;
    let len = a.len();
    let (vsa, vsb) = (_mm512_set1_pd(sa), _mm512_set1_pd(sb));
    let (mut su, mut sp) = ([_mm512_setzero_pd(); 2], [_mm512_setzero_pd(); 2]);
    let mut i = 0;
    // SAFETY: every load reads 8 values at i + 8·h + 8 ≤ len, from slices of len values
    // (the caller's contract for b and mask); the CPU features are the caller's too.
    unsafe {
        while i + 16 <= len {
            for h in 0..2 {
                let at = i + 8 * h;
                let u = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(a.as_ptr().add(at))), vsa);
                let u = match mask {
                    Some(m) => {
                        let y = _mm256_loadu_ps(m.as_ptr().add(at));
                        let above = _mm256_cmp_ps_mask::<_CMP_GT_OQ>(y, _mm256_setzero_ps());
                        _mm512_maskz_mov_pd(above, u)
                    }
                    None => u,
                };
                let e = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(b.as_ptr().add(at))), vsb);
                su[h] = _mm512_add_pd(su[h], u);
                sp[h] = _mm512_fmadd_pd(u, e, sp[h]);
            }
            i += 16;
        }
    }
    let mut tu = _mm512_reduce_add_pd(_mm512_add_pd(su[0], su[1]));
    let mut tp = _mm512_reduce_add_pd(_mm512_add_pd(sp[0], sp[1]));
    for j in i..len {
        if mask.is_none_or(|m| m[j] > 0.0) {
            let u = a[j] as f64 - sa;
            tu += u;
            tp += u * (b[j] as f64 - sb);
        }
    }
    (tu, tp)
}

/// Never reached: row_sums_f32 returns None before (no AVX-512 off x86-64).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn row_sums_avx512(_: &[f32], _: &[f32], _: Option<&[f32]>, _: f64, _: f64) -> (f64, f64) {
    unreachable!("row_sums_avx512 needs AVX-512")
}

vectorised! {
    /// Channel `ch`'s (mean, biased variance) in f64.
    fn channel_moments[T: Elem](x: &[T], n: usize, c: usize, s: usize, ch: usize) -> (f64, f64) =
        channel_moments_body;
}

#[inline(always)]
fn channel_moments_body<T: Elem>(x: &[T], n: usize, c: usize, s: usize, ch: usize) -> (f64, f64) {
    let m = (n * s).max(1) as f64;
    let row = |i: usize| &x[(i * c + ch) * s..(i * c + ch + 1) * s];
    // One pass over the data (memory-bound: a second pass cost a quarter of BN's
    // forward) with the sums shifted by one of the channel's values, so that
    // Σd² − (Σd)²/m does not cancel when the mean is large against the spread.
    let shift = if n * s > 0 { row(0)[0].to_f64() } else { 0.0 };
    let (mut sum, mut sq) = (0f64, 0f64);
    for i in 0..n {
        let r = row(i);
        let (a, b) = row_sums_f32(r, r, None, shift, shift).unwrap_or_else(|| {
            lane_sum2(r, r, |v, _| {
                let d = v.to_f64() - shift;
                (d, d * d)
            })
        });
        sum += a;
        sq += b;
    }
    let mean_d = sum / m;
    (shift + mean_d, ((sq - sum * mean_d) / m).max(0.0))
}

vectorised! {
    /// out = src·a + b, clamped at 0 with `relu`; writes all of `out` (as long as `src`).
    fn affine_row[T: Elem](
        out: &mut [MaybeUninit<T>],
        src: &[T],
        a: T,
        b: T,
        relu: bool,
    ) = affine_row_body;
}

#[inline(always)]
fn affine_row_body<T: Elem>(out: &mut [MaybeUninit<T>], src: &[T], a: T, b: T, relu: bool) {
    assert_eq!(out.len(), src.len());
    if relu {
        for (o, &v) in out.iter_mut().zip(src) {
            o.write(relu_of(v * a + b));
        }
    } else {
        for (o, &v) in out.iter_mut().zip(src) {
            o.write(v * a + b);
        }
    }
}

fn bn_fwd<T: Elem>(
    x: &[T],
    gamma: &[T],
    beta: &[T],
    dims: &[usize],
    eps: f64,
    relu: bool,
) -> (Vec<T>, BatchStats) {
    use rayon::prelude::*;
    let (n, c, s) = ncs(dims);
    let mut y = Vec::with_capacity(x.len());
    let out = Disjoint::uninit(&mut y, x.len());
    // Channel by channel, statistics then output, so that the second read of a channel
    // (N·S values, 0.5 MB on ResNet-20's first stage) comes from the cache: the forward
    // is memory-bound.
    let moments: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mean, var) = channel_moments(x, n, c, s, ch);
            // Statistics in f64, the per-element affine map in the tensor's type (as
            // PyTorch).
            let scale = gamma[ch].to_f64() / (var + eps).sqrt();
            let shift = T::from_f64(beta[ch].to_f64() - mean * scale);
            let scale = T::from_f64(scale);
            for i in 0..n {
                let at = (i * c + ch) * s;
                // SAFETY: the rows of channel ch are this task's alone; affine_row writes
                // all of each.
                affine_row(
                    unsafe { out.slice(at, s) },
                    &x[at..at + s],
                    scale,
                    shift,
                    relu,
                );
            }
            (mean, var)
        })
        .collect();
    // SAFETY: the channels' rows cover all of y.
    unsafe { y.set_len(x.len()) };
    let st = BatchStats {
        mean: moments.iter().map(|m| m.0).collect(),
        var: moments.iter().map(|m| m.1).collect(),
    };
    (y, st)
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "cnncost-batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = self.map(self.name(), l1.dims(), (s1, l1), (s2, l2), (s3, l3))?;
        Ok((y, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        crate::kernels::timeline::op_backward(y);
        let st = self.stats.lock().map(|s| s.clone()).unwrap_or_default();
        let dy = dy.contiguous()?;
        // With the ReLU, its gradient (dy where y > 0) is taken inside the backward's
        // passes, which read y instead of a masked copy of dy.
        let mask = if self.relu {
            y.contiguous()?
        } else {
            dy.clone()
        };
        let packed = x.apply_op3_no_bwd(
            &dy,
            &mask,
            &BnTrainBwd {
                eps: self.eps,
                stats: st,
                gamma: gamma.to_dtype(candle_core::DType::F64)?.to_vec1()?,
                relu: self.relu,
            },
        )?;
        let total = x.elem_count();
        let c = gamma.elem_count();
        let dx = packed.narrow(0, 0, total)?.reshape(x.shape())?;
        // Compact copies, not views: a weight's gradient outlives the backward pass
        // (the optimiser reads it), and a view would keep the whole packed buffer, the
        // size of an activation, alive with it (`copy` would clone all of it).
        let compact = |start: usize| packed.narrow(0, start, c)?.affine(1.0, 0.0);
        let dgamma = compact(total)?.reshape(gamma.shape())?;
        let dbeta = compact(total + c)?.reshape(gamma.shape())?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

impl Map3 for BnTrain {
    /// x's dims (N, C, ...).
    type Sizes = [usize];

    /// y; the batch statistics go to `self.stats`.
    fn f<T: Elem>(&self, dims: &[usize], x: &[T], gamma: &[T], beta: &[T]) -> Vec<T> {
        let (y, st) = bn_fwd(x, gamma, beta, dims, self.eps, self.relu);
        if let Ok(mut s) = self.stats.lock() {
            *s = st;
        }
        y
    }
}

/// (x, dy, y) -> [dx (flat), dgamma, dbeta] packed in one vector; y (the forward's
/// output) is read only with `relu`, whose gradient it masks.
struct BnTrainBwd {
    eps: f64,
    stats: BatchStats,
    gamma: Vec<f64>,
    relu: bool,
}

vectorised! {
    /// Channel `ch`'s (Σ dy, Σ dy·(x − mean)) in f64, dy masked to y > 0 with `mask`.
    fn bn_bwd_sums[T: Elem](
        x: &[T],
        dy: &[T],
        mask: Option<&[T]>,
        n: usize,
        c: usize,
        s: usize,
        ch: usize,
        mean: f64,
    ) -> (f64, f64) = bn_bwd_sums_body;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bn_bwd_sums_body<T: Elem>(
    x: &[T],
    dy: &[T],
    mask: Option<&[T]>,
    n: usize,
    c: usize,
    s: usize,
    ch: usize,
    mean: f64,
) -> (f64, f64) {
    let (mut sd, mut sdc) = (0f64, 0f64);
    for i in 0..n {
        let r = (i * c + ch) * s..(i * c + ch + 1) * s;
        let fast = row_sums_f32(
            &dy[r.clone()],
            &x[r.clone()],
            mask.map(|y| &y[r.clone()]),
            0.0,
            mean,
        );
        let (a, b) = fast.unwrap_or_else(|| match mask {
            None => lane_sum2(&dy[r.clone()], &x[r], |g, v| {
                let g = g.to_f64();
                (g, g * (v.to_f64() - mean))
            }),
            Some(y) => lane_sum3(&dy[r.clone()], &x[r.clone()], &y[r], |g, v, y| {
                let g = relu_grad_of(y, g).to_f64();
                (g, g * (v.to_f64() - mean))
            }),
        });
        sd += a;
        sdc += b;
    }
    (sd, sdc)
}

vectorised! {
    /// One row of dx = k·(dy − sd − (x − mean)·slope); writes all of `o` (as long as dy).
    fn bn_bwd_row[T: Elem](
        o: &mut [MaybeUninit<T>],
        dy: &[T],
        x: &[T],
        mask: Option<&[T]>,
        coef: [T; 4],
    ) = bn_bwd_row_body;
}

#[inline(always)]
fn bn_bwd_row_body<T: Elem>(
    o: &mut [MaybeUninit<T>],
    dy: &[T],
    x: &[T],
    mask: Option<&[T]>,
    [k, sd, slope, mean]: [T; 4],
) {
    assert!(o.len() == dy.len() && x.len() == dy.len());
    match mask {
        None => {
            for ((o, &g), &v) in o.iter_mut().zip(dy).zip(x) {
                o.write(k * (g - sd - (v - mean) * slope));
            }
        }
        Some(y) => {
            assert_eq!(y.len(), dy.len());
            for (((o, &g), &v), &y) in o.iter_mut().zip(dy).zip(x).zip(y) {
                o.write(k * (relu_grad_of(y, g) - sd - (v - mean) * slope));
            }
        }
    }
}

fn bn_bwd<T: Elem>(
    x: &[T],
    dy: &[T],
    mask: Option<&[T]>,
    gamma: &[f64],
    dims: &[usize],
    eps: f64,
    st: &BatchStats,
) -> Vec<T> {
    use rayon::prelude::*;
    let (n, c, s) = ncs(dims);
    let m = (n * s).max(1) as f64;
    let total = x.len();
    let mut out = Vec::with_capacity(total + 2 * c);
    let dst = Disjoint::uninit(&mut out, total);
    // Channel by channel, sums then dx, so that the second read of a channel's x and dy
    // comes from the cache (the backward is memory-bound: two passes over the whole
    // tensors took 1.6x as long on ResNet-20).
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let invstd = 1.0 / (st.var[ch] + eps).sqrt();
            // Σdy and Σ(dy·xhat).
            let (sd, sdc) = bn_bwd_sums(x, dy, mask, n, c, s, ch, st.mean[ch]);
            let sdc = sdc * invstd;
            // dx = k·(dy − Σdy/M − (x − μ)·invstd·Σ(dy·xhat)/M), per element in the
            // tensor's type.
            let k = T::from_f64(gamma[ch] * invstd);
            let coef = [
                k,
                T::from_f64(sd / m),
                T::from_f64(invstd * sdc / m),
                T::from_f64(st.mean[ch]),
            ];
            for i in 0..n {
                let r = (i * c + ch) * s..(i * c + ch + 1) * s;
                // SAFETY: the rows of channel ch are this task's alone; bn_bwd_row writes
                // all of each.
                let o = unsafe { dst.slice(r.start, s) };
                let y = mask.map(|y| &y[r.clone()]);
                bn_bwd_row(o, &dy[r.clone()], &x[r], y, coef);
            }
            (sd, sdc)
        })
        .collect();
    // SAFETY: the channels' rows cover 0..total.
    unsafe { out.set_len(total) };
    out.extend(sums.iter().map(|p| T::from_f64(p.1)));
    out.extend(sums.iter().map(|p| T::from_f64(p.0)));
    out
}

impl CustomOp3 for BnTrainBwd {
    fn name(&self) -> &'static str {
        "cnncost-batch-norm-train-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = l1.dims();
        let c = self.gamma.len();
        let storage = self.map(self.name(), dims, (s1, l1), (s2, l2), (s3, l3))?;
        Ok((storage, Shape::from(l1.shape().elem_count() + 2 * c)))
    }
}

impl Map3 for BnTrainBwd {
    /// x's dims (N, C, ...).
    type Sizes = [usize];

    fn f<T: Elem>(&self, dims: &[usize], x: &[T], dy: &[T], mask: &[T]) -> Vec<T> {
        let mask = self.relu.then_some(mask);
        bn_bwd(x, dy, mask, &self.gamma, dims, self.eps, &self.stats)
    }
}

/// ReLU with PyTorch's gradient (zero where the input is not positive),
/// forward and backward one parallel pass each.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if super::portable::applies(x) {
        return super::portable::relu(x);
    }
    x.contiguous()?.apply_op1(Relu)
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "cnncost-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let st = self.map(self.name(), &(), (s, l))?;
        Ok((st, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        crate::kernels::timeline::op_backward(y);
        Ok(Some(relu_grad(y, dy)?))
    }
}

impl Map1 for Relu {
    type Sizes = ();

    fn f<T: Elem>(&self, _: &(), x: &[T]) -> Vec<T> {
        par_map(x, relu_of)
    }
}

/// `relu(a + b)` in one pass (a residual block's sum and its ReLU), for two tensors
/// of one shape; the gradient, dy where the output is positive, goes to both.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() {
        candle_core::bail!("add_relu: shapes {:?} and {:?} differ", a.dims(), b.dims())
    }
    if super::portable::applies(a) {
        return super::portable::add_relu(a, b);
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "cnncost-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let st = self.map(self.name(), &(), (s1, l1), (s2, l2))?;
        Ok((st, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        crate::kernels::timeline::op_backward(y);
        let g = relu_grad(y, dy)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

impl Map2 for AddRelu {
    type Sizes = ();

    fn f<T: Elem>(&self, _: &(), a: &[T], b: &[T]) -> Vec<T> {
        par_zip_map(a, b, |u, v| relu_of(u + v))
    }
}

/// The gradient through a ReLU (or an op ending in one) with output `y`: `dy` where
/// `y > 0`, else 0 (PyTorch's choice at 0).
pub(crate) fn relu_grad(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    y.apply_op2_no_bwd(&dy.contiguous()?, &ReluBwd)
}

/// (y, dy) -> dy where y > 0, else 0.
struct ReluBwd;

fn relu_bwd<T: Elem + PartialOrd>(y: &[T], dy: &[T]) -> Vec<T> {
    par_zip_map(y, dy, relu_grad_of)
}

/// ReLU's gradient at one element: `g` where the output `y` is positive, else 0.
#[inline(always)]
fn relu_grad_of<T: Elem>(y: T, g: T) -> T {
    if y > T::ZERO {
        g
    } else {
        T::ZERO
    }
}

impl CustomOp2 for ReluBwd {
    fn name(&self) -> &'static str {
        "cnncost-relu-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let st = self.map(self.name(), &(), (s1, l1), (s2, l2))?;
        Ok((st, l1.shape().clone()))
    }
}

impl Map2 for ReluBwd {
    type Sizes = ();

    fn f<T: Elem>(&self, _: &(), y: &[T], dy: &[T]) -> Vec<T> {
        relu_bwd(y, dy)
    }
}
