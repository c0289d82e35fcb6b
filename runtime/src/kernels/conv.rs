//! 2-D convolution with per-axis stride / dilation, asymmetric padding and groups, as a
//! candle `CustomOp2` with its own backward.
//!
//! Algorithm: the batch is processed in chunks of `nc` samples. For a chunk, im2col builds
//! the column matrix `cols` of shape (C·KH·KW, nc·OH·OW) (row = (channel, ky, kx), column =
//! (sample, oy, ox)); one gemm per group (candle's CPU matmul, i.e. the `gemm` crate, on
//! the storage level) gives Y = W·cols of shape (O, nc·OH·OW), scattered into (nc, O, OH, OW).
//! Backward: dcols = Wᵀ·dY then col2im (input gradient), dW = Σ_chunks dY·colsᵀ (weight
//! gradient, cols recomputed rather than stored). The chunk is sized so that the gemm's
//! column count is large even for small feature maps while the column matrix stays
//! cache-sized.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::util::{contiguous_slice, dtype_error, par_rows, Elem};

/// Geometry of a 2-D convolution; every pair is `[h, w]` (padding: `[top, left]` and
/// `[bottom, right]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub stride: [usize; 2],
    pub pad_begin: [usize; 2],
    pub pad_end: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Conv2dGeometry {
    /// The same stride, padding (on all four sides) and dilation on both axes, like
    /// candle's `Tensor::conv2d`.
    pub fn uniform(stride: usize, padding: usize, dilation: usize, groups: usize) -> Self {
        Self {
            stride: [stride; 2],
            pad_begin: [padding; 2],
            pad_end: [padding; 2],
            dilation: [dilation; 2],
            groups,
        }
    }

    /// Output size `[OH, OW]` for an `[H, W]` input and a `[KH, KW]` kernel, or an error when
    /// the (dilated) kernel does not fit in the padded input.
    pub fn output_size(&self, input: [usize; 2], kernel: [usize; 2]) -> Result<[usize; 2]> {
        let mut out = [0; 2];
        for a in 0..2 {
            if self.stride[a] == 0 || self.dilation[a] == 0 || kernel[a] == 0 {
                bail!("conv2d: stride, dilation and kernel size must be positive, got {self:?} and kernel {kernel:?}")
            }
            let padded = input[a] + self.pad_begin[a] + self.pad_end[a];
            let span = self.dilation[a] * (kernel[a] - 1) + 1;
            if padded < span {
                bail!(
                    "conv2d: the kernel {kernel:?} (dilation {:?}) is larger than the padded input {input:?}",
                    self.dilation
                )
            }
            out[a] = (padded - span) / self.stride[a] + 1;
        }
        Ok(out)
    }
}

/// All sizes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    g: Conv2dGeometry,
}

impl Dims {
    fn new(x: &[usize], w: &[usize], g: &Conv2dGeometry) -> Result<Self> {
        let (&[n, c, h, wd], &[o, cg, kh, kw]) = (x, w) else {
            bail!("conv2d: expected x (N, C, H, W) and weight (O, C/groups, KH, KW), got {x:?} and {w:?}")
        };
        if g.groups == 0 || c % g.groups != 0 || o % g.groups != 0 || cg * g.groups != c {
            bail!(
                "conv2d: groups {} do not fit x {x:?} and weight {w:?} (need C and O divisible by groups, weight dim 1 = C/groups)",
                g.groups
            )
        }
        let [oh, ow] = g.output_size([h, wd], [kh, kw])?;
        Ok(Self {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            oh,
            ow,
            g: *g,
        })
    }
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    fn kk(&self) -> usize {
        self.kh * self.kw
    }
    fn chw(&self) -> usize {
        self.c * self.h * self.w
    }
    fn cgkk(&self) -> usize {
        self.c / self.g.groups * self.kk()
    }
    fn og(&self) -> usize {
        self.o / self.g.groups
    }
    /// Samples per chunk: enough columns for an efficient gemm, a bounded column matrix.
    fn chunk(&self) -> usize {
        let p = self.p().max(1);
        let by_cols = 2048usize.div_ceil(p);
        let rows = (self.c * self.kk()).max(1);
        let by_mem = ((4usize << 20) / (rows * p)).max(1);
        by_cols.min(by_mem).clamp(1, self.n.max(1))
    }
}

const PAR_MIN: usize = 1 << 15;

/// The output positions `[lo, hi)` along one axis whose input index
/// `o*stride + k_off - pad` lies in `[0, len)`.
fn valid_range(k_off: usize, pad: usize, stride: usize, len: usize, out: usize) -> (usize, usize) {
    let lo = if pad > k_off {
        (pad - k_off).div_ceil(stride)
    } else {
        0
    };
    let hi = if len + pad > k_off {
        (len + pad - k_off).div_ceil(stride)
    } else {
        0
    };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

/// im2col of `nc` samples `x` (nc, C, H, W) into `cols` (C·KH·KW, nc·OH·OW).
fn im2col<T: Elem>(x: &[T], d: &Dims, nc: usize, cols: &mut [T]) {
    let (p, kk, hw) = (d.p(), d.kk(), d.h * d.w);
    let (sh, sw) = (d.g.stride[0], d.g.stride[1]);
    let (dh, dw) = (d.g.dilation[0], d.g.dilation[1]);
    let (top, left) = (d.g.pad_begin[0], d.g.pad_begin[1]);
    par_rows(cols, nc * p, PAR_MIN, |r, row| {
        let (ci, ki, kj) = (r / kk, (r % kk) / d.kw, r % d.kw);
        let (lo, hi) = valid_range(kj * dw, left, sw, d.w, d.ow);
        let (ylo, yhi) = valid_range(ki * dh, top, sh, d.h, d.oh);
        for s in 0..nc {
            let plane = &x[(s * d.c + ci) * hw..][..hw];
            let dst = &mut row[s * p..][..p];
            dst[..ylo * d.ow].fill(T::ZERO);
            dst[yhi * d.ow..].fill(T::ZERO);
            for oy in ylo..yhi {
                let iy = oy * sh + ki * dh - top;
                let src = &plane[iy * d.w..][..d.w];
                let out = &mut dst[oy * d.ow..][..d.ow];
                out[..lo].fill(T::ZERO);
                out[hi..].fill(T::ZERO);
                if lo < hi {
                    let ix0 = lo * sw + kj * dw - left;
                    if sw == 1 {
                        out[lo..hi].copy_from_slice(&src[ix0..ix0 + hi - lo]);
                    } else {
                        for (k, o) in out[lo..hi].iter_mut().enumerate() {
                            *o = src[ix0 + k * sw];
                        }
                    }
                }
            }
        }
    });
}

/// col2im: accumulates `dcols` (C·KH·KW, nc·OH·OW) into `dx` (nc, C, H, W).
fn col2im<T: Elem>(dcols: &[T], d: &Dims, nc: usize, dx: &mut [T]) {
    let (p, kk, hw) = (d.p(), d.kk(), d.h * d.w);
    let (sh, sw) = (d.g.stride[0], d.g.stride[1]);
    let (dh, dw) = (d.g.dilation[0], d.g.dilation[1]);
    let (top, left) = (d.g.pad_begin[0], d.g.pad_begin[1]);
    let ld = nc * p;
    par_rows(dx, hw, PAR_MIN, |q, plane| {
        let (s, ci) = (q / d.c, q % d.c);
        for ki in 0..d.kh {
            let (ylo, yhi) = valid_range(ki * dh, top, sh, d.h, d.oh);
            for kj in 0..d.kw {
                let (lo, hi) = valid_range(kj * dw, left, sw, d.w, d.ow);
                if lo >= hi {
                    continue;
                }
                let row = &dcols[(ci * kk + ki * d.kw + kj) * ld + s * p..][..p];
                let ix0 = lo * sw + kj * dw - left;
                for oy in ylo..yhi {
                    let iy = oy * sh + ki * dh - top;
                    let dst = &mut plane[iy * d.w..][..d.w];
                    let src = &row[oy * d.ow + lo..oy * d.ow + hi];
                    if sw == 1 {
                        for (o, &v) in dst[ix0..ix0 + (hi - lo)].iter_mut().zip(src) {
                            *o += v;
                        }
                    } else {
                        for (k, &v) in src.iter().enumerate() {
                            dst[ix0 + k * sw] += v;
                        }
                    }
                }
            }
        }
    });
}

/// (nc, O, P) -> (O, nc·P)
fn gather_chunk<T: Elem>(src: &[T], o: usize, p: usize, nc: usize, dst: &mut [T]) {
    par_rows(dst, nc * p, PAR_MIN, |oi, row| {
        for s in 0..nc {
            row[s * p..][..p].copy_from_slice(&src[(s * o + oi) * p..][..p]);
        }
    });
}

/// (O, nc·P) -> (nc, O, P)
fn scatter_chunk<T: Elem>(src: &[T], o: usize, p: usize, nc: usize, dst: &mut [T]) {
    par_rows(dst, p, PAR_MIN, |q, row| {
        let (s, oi) = (q / o, q % o);
        row.copy_from_slice(&src[oi * nc * p + s * p..][..p]);
    });
}

/// Matrix layouts of the grouped operands of the per-chunk gemms.
fn layout(shape: (usize, usize, usize), stride: [usize; 3], offset: usize) -> Layout {
    Layout::new(Shape::from(shape), stride.to_vec(), offset)
}

fn conv_fwd<T: Elem>(x: &[T], w_st: &CpuStorage, w_l: &Layout, d: &Dims) -> Result<Vec<T>> {
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let mut y = vec![T::ZERO; d.n * d.o * p];
    let chunk = d.chunk();
    let w_lay = layout((g, og, cgkk), [og * cgkk, cgkk, 1], w_l.start_offset());
    let mut cols = vec![T::ZERO; d.c * d.kk() * chunk * p];
    let mut n0 = 0;
    while n0 < d.n {
        let nc = chunk.min(d.n - n0);
        let cols_len = d.c * d.kk() * nc * p;
        cols.truncate(cols_len);
        im2col(&x[n0 * d.chw()..(n0 + nc) * d.chw()], d, nc, &mut cols);
        let cols_st = T::to_cpu_storage_owned(std::mem::take(&mut cols));
        let c_lay = layout((g, cgkk, nc * p), [cgkk * nc * p, nc * p, 1], 0);
        let out = w_st.matmul(&cols_st, (g, og, nc * p, cgkk), &w_lay, &c_lay)?;
        cols = T::cpu_storage_data(cols_st)?;
        let out = T::cpu_storage_as_slice(&out)?;
        scatter_chunk(out, d.o, p, nc, &mut y[n0 * d.o * p..(n0 + nc) * d.o * p]);
        n0 += nc;
    }
    Ok(y)
}

fn conv_bwd_data<T: Elem>(dy: &[T], w_st: &CpuStorage, w_l: &Layout, d: &Dims) -> Result<Vec<T>> {
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let mut dx = vec![T::ZERO; d.n * d.chw()];
    let chunk = d.chunk();
    // Wᵀ per group: (CgKK, Og) views of the (Og, CgKK) blocks.
    let wt_lay = layout((g, cgkk, og), [og * cgkk, 1, cgkk], w_l.start_offset());
    let mut dyb = vec![T::ZERO; d.o * chunk * p];
    let mut n0 = 0;
    while n0 < d.n {
        let nc = chunk.min(d.n - n0);
        dyb.truncate(d.o * nc * p);
        gather_chunk(&dy[n0 * d.o * p..(n0 + nc) * d.o * p], d.o, p, nc, &mut dyb);
        let dy_st = T::to_cpu_storage_owned(std::mem::take(&mut dyb));
        let dy_lay = layout((g, og, nc * p), [og * nc * p, nc * p, 1], 0);
        let dcols = w_st.matmul(&dy_st, (g, cgkk, nc * p, og), &wt_lay, &dy_lay)?;
        dyb = T::cpu_storage_data(dy_st)?;
        let dcols = T::cpu_storage_as_slice(&dcols)?;
        col2im(dcols, d, nc, &mut dx[n0 * d.chw()..(n0 + nc) * d.chw()]);
        n0 += nc;
    }
    Ok(dx)
}

fn conv_bwd_filter<T: Elem>(x: &[T], dy: &[T], d: &Dims) -> Result<Vec<T>> {
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let mut dw = vec![T::ZERO; d.o * cgkk];
    let chunk = d.chunk();
    let mut cols = vec![T::ZERO; d.c * d.kk() * chunk * p];
    let mut dyb = vec![T::ZERO; d.o * chunk * p];
    let mut n0 = 0;
    while n0 < d.n {
        let nc = chunk.min(d.n - n0);
        cols.truncate(d.c * d.kk() * nc * p);
        dyb.truncate(d.o * nc * p);
        im2col(&x[n0 * d.chw()..(n0 + nc) * d.chw()], d, nc, &mut cols);
        gather_chunk(&dy[n0 * d.o * p..(n0 + nc) * d.o * p], d.o, p, nc, &mut dyb);
        let cols_st = T::to_cpu_storage_owned(std::mem::take(&mut cols));
        let dy_st = T::to_cpu_storage_owned(std::mem::take(&mut dyb));
        let ld = nc * p;
        let dy_lay = layout((g, og, ld), [og * ld, ld, 1], 0);
        // colsᵀ per group: (nc·P, CgKK) views of the (CgKK, nc·P) blocks.
        let ct_lay = layout((g, ld, cgkk), [cgkk * ld, 1, ld], 0);
        let part = dy_st.matmul(&cols_st, (g, og, cgkk, ld), &dy_lay, &ct_lay)?;
        cols = T::cpu_storage_data(cols_st)?;
        dyb = T::cpu_storage_data(dy_st)?;
        for (a, &b) in dw.iter_mut().zip(T::cpu_storage_as_slice(&part)?) {
            *a += b;
        }
        n0 += nc;
    }
    Ok(dw)
}

/// Forward op: (x, weight) -> y.
struct Conv2dOp(Conv2dGeometry);

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "cnncost-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::new(l1.dims(), l2.dims(), &self.0)?;
        let shape = Shape::from((d.n, d.o, d.oh, d.ow));
        if !l2.is_contiguous() {
            bail!("conv2d: expected a contiguous weight")
        }
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let x = contiguous_slice::<f32>(self.name(), s1, l1)?;
                CpuStorage::F32(conv_fwd(x, s2, l2, &d)?)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let x = contiguous_slice::<f64>(self.name(), s1, l1)?;
                CpuStorage::F64(conv_fwd(x, s2, l2, &d)?)
            }
            _ => return dtype_error(self.name(), s1, Some(s2)),
        };
        Ok((st, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(
                w,
                &Conv2dBwdData {
                    g: self.0,
                    x_dims: x.dims4()?,
                },
            )?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(
                &dy,
                &Conv2dBwdFilter {
                    g: self.0,
                    w_dims: w.dims4()?,
                },
            )?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

/// Input gradient: (dy, weight) -> dx.
struct Conv2dBwdData {
    g: Conv2dGeometry,
    x_dims: (usize, usize, usize, usize),
}

impl CustomOp2 for Conv2dBwdData {
    fn name(&self) -> &'static str {
        "cnncost-conv2d-bwd-data"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = self.x_dims;
        let d = Dims::new(&[n, c, h, w], l2.dims(), &self.g)?;
        if l1.dims() != [d.n, d.o, d.oh, d.ow] || !l2.is_contiguous() {
            bail!("{}: unexpected shapes {l1:?} {l2:?}", self.name())
        }
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let dy = contiguous_slice::<f32>(self.name(), s1, l1)?;
                CpuStorage::F32(conv_bwd_data(dy, s2, l2, &d)?)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let dy = contiguous_slice::<f64>(self.name(), s1, l1)?;
                CpuStorage::F64(conv_bwd_data(dy, s2, l2, &d)?)
            }
            _ => return dtype_error(self.name(), s1, Some(s2)),
        };
        Ok((st, Shape::from(self.x_dims)))
    }
}

/// Weight gradient: (x, dy) -> dw.
struct Conv2dBwdFilter {
    g: Conv2dGeometry,
    w_dims: (usize, usize, usize, usize),
}

impl CustomOp2 for Conv2dBwdFilter {
    fn name(&self) -> &'static str {
        "cnncost-conv2d-bwd-filter"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (o, cg, kh, kw) = self.w_dims;
        let d = Dims::new(l1.dims(), &[o, cg, kh, kw], &self.g)?;
        if l2.dims() != [d.n, d.o, d.oh, d.ow] {
            bail!("{}: unexpected shapes {l1:?} {l2:?}", self.name())
        }
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let x = contiguous_slice::<f32>(self.name(), s1, l1)?;
                let dy = contiguous_slice::<f32>(self.name(), s2, l2)?;
                CpuStorage::F32(conv_bwd_filter(x, dy, &d)?)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let x = contiguous_slice::<f64>(self.name(), s1, l1)?;
                let dy = contiguous_slice::<f64>(self.name(), s2, l2)?;
                CpuStorage::F64(conv_bwd_filter(x, dy, &d)?)
            }
            _ => return dtype_error(self.name(), s1, Some(s2)),
        };
        Ok((st, Shape::from(self.w_dims)))
    }
}

/// 2-D convolution (cross-correlation, as PyTorch and candle) of `x` (N, C, H, W) with
/// `weight` (O, C/groups, KH, KW), both f32 or both f64, giving (N, O, OH, OW) with
/// `OH = (H + top + bottom - dil_h·(KH-1) - 1) / stride_h + 1` (likewise OW). No bias.
/// Differentiable with respect to `x` and `weight`. Inputs may be non-contiguous views.
pub fn conv2d(x: &Tensor, weight: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    if x.dtype() != weight.dtype() {
        bail!(
            "conv2d: x is {:?} but the weight is {:?}",
            x.dtype(),
            weight.dtype()
        )
    }
    // Validate before running the op, for an error that names the shapes.
    Dims::new(x.dims(), weight.dims(), g)?;
    let x = x.contiguous()?;
    let weight = weight.contiguous()?;
    x.apply_op2(&weight, Conv2dOp(*g))
}

#[cfg(test)]
mod tests {
    use super::valid_range;

    #[test]
    fn valid_range_matches_brute_force() {
        for k_off in 0..6 {
            for pad in 0..4 {
                for stride in 1..4 {
                    for len in 1..7 {
                        for out in 0..8 {
                            let ok: Vec<usize> = (0..out)
                                .filter(|&o| {
                                    let i = (o * stride + k_off) as isize - pad as isize;
                                    i >= 0 && i < len as isize
                                })
                                .collect();
                            let (lo, hi) = valid_range(k_off, pad, stride, len, out);
                            let got: Vec<usize> = (lo..hi).collect();
                            assert_eq!(
                                ok, got,
                                "k_off {k_off} pad {pad} s {stride} len {len} out {out}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use candle_core::Device;
    use std::time::Instant;

    /// Times the three phases separately (release, --ignored --nocapture).
    #[test]
    #[ignore]
    fn conv_phases() -> Result<()> {
        let n: usize = std::env::var("CNNCOST_BENCH_BATCH")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(32);
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (n, 64, 32, 32), &dev)?;
        let w = Tensor::randn(0f32, 0.05, (64, 64, 3, 3), &dev)?;
        let g = Conv2dGeometry::uniform(1, 1, 1, 1);
        let flops = 2.0 * (n * 64 * 1024 * 576) as f64;
        // CPU seconds of this process (utime + stime, 100 Hz ticks): robust against other
        // processes sharing the cores, unlike the wall time.
        let cpu = || -> f64 {
            let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let f: Vec<&str> = s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (t(11) + t(12)) / 100.0
        };
        let time = |what: &str, f: &dyn Fn() -> Result<Tensor>| -> Result<()> {
            f()?;
            let mut best = f64::INFINITY;
            let (c0, t0) = (cpu(), Instant::now());
            let reps = 8;
            for _ in 0..reps {
                let t = Instant::now();
                f()?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            let (c, wall) = (
                (cpu() - c0) / reps as f64,
                t0.elapsed().as_secs_f64() / reps as f64,
            );
            println!(
                "{what:<12} best {:7.1} ms {:6.1} GFLOP/s | mean wall {:7.1} ms, cpu {:7.1} ms: {:6.1} GFLOP per cpu-second",
                best * 1e3,
                flops / best / 1e9,
                wall * 1e3,
                c * 1e3,
                flops / c / 1e9
            );
            Ok(())
        };
        let a = Tensor::randn(0f32, 1., (64, 576), &dev)?;
        let b = Tensor::randn(0f32, 1., (n, 576, 1024), &dev)?;
        time("raw gemm", &|| a.broadcast_left(n)?.matmul(&b))?;
        let y = x.apply_op2_no_bwd(&w, &Conv2dOp(g))?;
        time("forward", &|| x.apply_op2_no_bwd(&w, &Conv2dOp(g)))?;
        let data = Conv2dBwdData {
            g,
            x_dims: x.dims4()?,
        };
        time("bwd data", &|| y.apply_op2_no_bwd(&w, &data))?;
        let filt = Conv2dBwdFilter {
            g,
            w_dims: w.dims4()?,
        };
        time("bwd filter", &|| x.apply_op2_no_bwd(&y, &filt))?;
        Ok(())
    }
}
