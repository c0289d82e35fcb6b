//! Max / average pooling and adaptive average pooling with PyTorch's semantics, as candle
//! custom ops with their own backward (direct loops, planes split across threads).

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use super::dispatch::{Map1, Map2};
use super::util::simd::vectorised;
use super::util::{par_rows, Elem};

/// Which pooling: max, or average with PyTorch's `count_include_pad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Max,
    Avg { count_include_pad: bool },
}

/// Geometry of a pooling window; every pair is `[h, w]`, padding is symmetric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeometry {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
}

impl Pool2dGeometry {
    /// Output size along one axis as PyTorch's `pooling_output_shape`.
    fn out_len(&self, axis: usize, len: usize) -> Result<usize> {
        let (k, s, p) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
        if k == 0 || s == 0 {
            bail!("pool2d: kernel and stride must be positive, got {self:?}")
        }
        if 2 * p > k {
            bail!("pool2d: padding should be at most half the kernel size, got {self:?}")
        }
        if len + 2 * p < k {
            bail!("pool2d: the window {self:?} does not fit the padded input of size {len}")
        }
        let span = len + 2 * p - k;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        // The last window must start inside the input or the left padding.
        if self.ceil_mode && (out - 1) * s >= len + p {
            out -= 1;
        }
        Ok(out)
    }

    /// Output size `[OH, OW]` for an `[H, W]` input.
    pub fn output_size(&self, input: [usize; 2]) -> Result<[usize; 2]> {
        Ok([self.out_len(0, input[0])?, self.out_len(1, input[1])?])
    }
}

#[derive(Clone, Copy, Debug)]
struct PoolDims {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl PoolDims {
    fn new(dims: &[usize], g: &Pool2dGeometry) -> Result<Self> {
        let &[n, c, h, w] = dims else {
            bail!("pool2d: expected an (N, C, H, W) input, got {dims:?}")
        };
        let [oh, ow] = g.output_size([h, w])?;
        Ok(Self {
            planes: n * c,
            h,
            w,
            oh,
            ow,
        })
    }
}

const PAR_MIN: usize = 1 << 14;

/// The window of output `o` along one axis: `(start, end)` in the padded input's
/// coordinates shifted by `-pad` (may be negative), before clipping.
pub(super) fn window(o: usize, k: usize, s: usize, p: usize) -> (isize, isize) {
    let start = (o * s) as isize - p as isize;
    (start, start + k as isize)
}

fn clip(a: isize, b: isize, len: usize) -> (usize, usize) {
    (a.max(0) as usize, b.min(len as isize).max(0) as usize)
}

/// Index (within the plane) of the first maximum of the window, NaN winning as in PyTorch.
#[inline]
fn argmax<T: Elem>(
    plane: &[T],
    w: usize,
    (y0, y1): (usize, usize),
    (x0, x1): (usize, usize),
) -> usize {
    let mut best = T::NEG_INF;
    let mut at = y0 * w + x0;
    for y in y0..y1 {
        for (i, &v) in plane[y * w + x0..y * w + x1].iter().enumerate() {
            if v > best || v.is_nan() {
                best = v;
                at = y * w + x0 + i;
                if v.is_nan() {
                    return at;
                }
            }
        }
    }
    at
}

/// [`argmax`] with a branch-free inner loop (falls back to it when the window holds a NaN).
#[inline]
fn argmax_fast<T: Elem>(
    plane: &[T],
    w: usize,
    (y0, y1): (usize, usize),
    (x0, x1): (usize, usize),
) -> usize {
    let mut best = T::NEG_INF;
    let mut at = y0 * w + x0;
    let mut nan = false;
    for y in y0..y1 {
        let row = y * w;
        for (i, &v) in plane[row + x0..row + x1].iter().enumerate() {
            let gt = v > best;
            best = if gt { v } else { best };
            at = if gt { row + x0 + i } else { at };
            nan |= v.is_nan();
        }
    }
    if nan {
        argmax(plane, w, (y0, y1), (x0, x1))
    } else {
        at
    }
}

/// The window's maximum (NaN if any element is NaN), branch-free in the inner loop.
#[inline]
fn max_value<T: Elem>(
    plane: &[T],
    w: usize,
    (y0, y1): (usize, usize),
    (x0, x1): (usize, usize),
) -> T {
    let mut best = T::NEG_INF;
    let mut nan = false;
    for y in y0..y1 {
        for &v in &plane[y * w + x0..y * w + x1] {
            best = if v > best { v } else { best };
            nan |= v.is_nan();
        }
    }
    if nan {
        plane[argmax(plane, w, (y0, y1), (x0, x1))]
    } else {
        best
    }
}

/// The outputs `(first, end)` along `axis` whose window lies wholly inside an input of
/// `len`: no clipping, no padding.
fn inner_outputs(g: &Pool2dGeometry, axis: usize, len: usize, out_len: usize) -> (usize, usize) {
    let (k, s, p) = (g.kernel[axis], g.stride[axis], g.padding[axis]);
    let first = p.div_ceil(s);
    // Window o ends at o·s − p + k ≤ len.
    let end = if len + p >= k {
        ((len + p - k) / s + 1).min(out_len)
    } else {
        0
    };
    (first.min(end), end)
}

/// Max pooling of one output row's inner outputs (`inner`, see [`inner_outputs`]) over
/// the input rows `ry`, written to `out[inner]`, in two passes: the elementwise maximum
/// of the rows (vectorised) into `cols`, then each output's maximum over its columns.
/// One window at a time, each was a chain of dependent comparisons of single elements
/// (AlexNet's first pool took 4-5 ms, PyTorch's channels-last one 1.4). False where the
/// rows hold a NaN: the caller then computes every output of the row one by one (NaN
/// wins there).
fn max_row_inner<T: Elem>(
    plane: &[T],
    w: usize,
    (y0, y1): (usize, usize),
    g: &Pool2dGeometry,
    (o0, o1): (usize, usize),
    cols: &mut [T],
    out: &mut [T],
) -> bool {
    if o0 >= o1 {
        return true;
    }
    let (kw, s, p) = (g.kernel[1], g.stride[1], g.padding[1]);
    // Columns c0..c1 of the input are read by outputs o0..o1.
    let (c0, c1) = (o0 * s - p, (o1 - 1) * s - p + kw);
    let cols = &mut cols[..c1 - c0];
    cols.fill(T::NEG_INF);
    let mut nan = false;
    for y in y0..y1 {
        nan |= max_into(cols, &plane[y * w + c0..y * w + c1]);
    }
    for (j, o) in out[o0..o1].iter_mut().enumerate() {
        let window = &cols[j * s..j * s + kw];
        *o = window
            .iter()
            .fold(T::NEG_INF, |m, &v| if v > m { v } else { m });
    }
    !nan
}

vectorised! {
    /// acc = max(acc, row) elementwise (NaN dropped); whether `row` holds a NaN.
    fn max_into[T: Elem](acc: &mut [T], row: &[T]) -> bool = max_into_body;
}

#[inline(always)]
fn max_into_body<T: Elem>(acc: &mut [T], row: &[T]) -> bool {
    let mut nan = false;
    for (a, &v) in acc.iter_mut().zip(row) {
        *a = if v > *a { v } else { *a };
        nan |= v.is_nan();
    }
    nan
}

/// The divisor of an average window (its [`window`]s along each axis) over an `[h, w]`
/// input.
pub(super) fn avg_divisor(
    g: &Pool2dGeometry,
    [h, w]: [usize; 2],
    (hy0, hy1): (isize, isize),
    (wx0, wx1): (isize, isize),
    include_pad: bool,
) -> usize {
    if include_pad {
        let ph = (hy1.min((h + g.padding[0]) as isize) - hy0) as usize;
        let pw = (wx1.min((w + g.padding[1]) as isize) - wx0) as usize;
        ph * pw
    } else {
        let (y0, y1) = clip(hy0, hy1, h);
        let (x0, x1) = clip(wx0, wx1, w);
        (y1 - y0) * (x1 - x0)
    }
}

fn pool_fwd<T: Elem>(x: &[T], mode: PoolMode, g: &Pool2dGeometry, d: &PoolDims) -> Vec<T> {
    let (hw, ohw) = (d.h * d.w, d.oh * d.ow);
    let mut y = vec![T::ZERO; d.planes * ohw];
    // Outputs ox_inner.0..ox_inner.1 have their whole window inside the row.
    let ox_inner = inner_outputs(g, 1, d.w, d.ow);
    par_rows(&mut y, ohw, PAR_MIN, |pl, out| {
        let plane = &x[pl * hw..][..hw];
        let mut cols = vec![T::ZERO; d.w];
        for oy in 0..d.oh {
            let wy = window(oy, g.kernel[0], g.stride[0], g.padding[0]);
            let ry = clip(wy.0, wy.1, d.h);
            let row_out = &mut out[oy * d.ow..][..d.ow];
            let fast = mode == PoolMode::Max
                && ry.0 < ry.1
                && max_row_inner(plane, d.w, ry, g, ox_inner, &mut cols, row_out);
            for (ox, o) in row_out.iter_mut().enumerate() {
                if fast && (ox_inner.0..ox_inner.1).contains(&ox) {
                    continue;
                }
                let wx = window(ox, g.kernel[1], g.stride[1], g.padding[1]);
                let rx = clip(wx.0, wx.1, d.w);
                *o = match mode {
                    PoolMode::Max => {
                        if ry.0 >= ry.1 || rx.0 >= rx.1 {
                            T::NEG_INF
                        } else {
                            max_value(plane, d.w, ry, rx)
                        }
                    }
                    PoolMode::Avg { count_include_pad } => {
                        let mut sum = T::ZERO;
                        for yy in ry.0..ry.1 {
                            for &v in &plane[yy * d.w + rx.0..yy * d.w + rx.1] {
                                sum += v;
                            }
                        }
                        let div = avg_divisor(g, [d.h, d.w], wy, wx, count_include_pad);
                        if div == 0 {
                            T::ZERO
                        } else {
                            sum / T::from_f64(div as f64)
                        }
                    }
                };
            }
        }
    });
    y
}

fn pool_bwd<T: Elem>(
    x: &[T],
    dy: &[T],
    mode: PoolMode,
    g: &Pool2dGeometry,
    d: &PoolDims,
) -> Vec<T> {
    let (hw, ohw) = (d.h * d.w, d.oh * d.ow);
    let mut dx = vec![T::ZERO; d.planes * hw];
    par_rows(&mut dx, hw, PAR_MIN, |pl, dplane| {
        let plane = &x[pl * hw..][..hw];
        let dout = &dy[pl * ohw..][..ohw];
        for oy in 0..d.oh {
            let wy = window(oy, g.kernel[0], g.stride[0], g.padding[0]);
            let ry = clip(wy.0, wy.1, d.h);
            for ox in 0..d.ow {
                let wx = window(ox, g.kernel[1], g.stride[1], g.padding[1]);
                let rx = clip(wx.0, wx.1, d.w);
                if ry.0 >= ry.1 || rx.0 >= rx.1 {
                    continue;
                }
                let gr = dout[oy * d.ow + ox];
                match mode {
                    PoolMode::Max => dplane[argmax_fast(plane, d.w, ry, rx)] += gr,
                    PoolMode::Avg { count_include_pad } => {
                        let div = avg_divisor(g, [d.h, d.w], wy, wx, count_include_pad);
                        let v = gr / T::from_f64(div as f64);
                        for yy in ry.0..ry.1 {
                            for o in &mut dplane[yy * d.w + rx.0..yy * d.w + rx.1] {
                                *o += v;
                            }
                        }
                    }
                }
            }
        }
    });
    dx
}

struct PoolOp {
    mode: PoolMode,
    g: Pool2dGeometry,
}

impl CustomOp1 for PoolOp {
    fn name(&self) -> &'static str {
        "cnncost-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = PoolDims::new(l.dims(), &self.g)?;
        let (n, c) = (l.dims()[0], l.dims()[1]);
        let st = self.map(self.name(), &d, (s, l))?;
        Ok((st, Shape::from((n, c, d.oh, d.ow))))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        crate::kernels::timeline::op_backward(y);
        let dy = dy.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(
            &dy,
            &PoolBwdOp {
                mode: self.mode,
                g: self.g,
            },
        )?))
    }
}

impl Map1 for PoolOp {
    type Sizes = PoolDims;

    fn f<T: Elem>(&self, d: &PoolDims, x: &[T]) -> Vec<T> {
        pool_fwd(x, self.mode, &self.g, d)
    }
}

/// (x, dy) -> dx
struct PoolBwdOp {
    mode: PoolMode,
    g: Pool2dGeometry,
}

impl CustomOp2 for PoolBwdOp {
    fn name(&self) -> &'static str {
        "cnncost-pool2d-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = PoolDims::new(l1.dims(), &self.g)?;
        if l2.dims() != [l1.dims()[0], l1.dims()[1], d.oh, d.ow] {
            bail!("{}: unexpected shapes {l1:?} {l2:?}", self.name())
        }
        let st = self.map(self.name(), &d, (s1, l1), (s2, l2))?;
        Ok((st, l1.shape().clone()))
    }
}

impl Map2 for PoolBwdOp {
    type Sizes = PoolDims;

    fn f<T: Elem>(&self, d: &PoolDims, x: &[T], dy: &[T]) -> Vec<T> {
        pool_bwd(x, dy, self.mode, &self.g, d)
    }
}

/// Max or average pooling of `x` (N, C, H, W) with PyTorch's semantics
/// (`torch.nn.MaxPool2d` / `AvgPool2d` without `divisor_override`): output size
/// `floor_or_ceil((H + 2p - k) / s) + 1`, minus one in ceil mode when the last window would
/// start in the right padding; max pads with -inf; average divides by the window clipped to
/// the padded input (`count_include_pad`) or by the number of real pixels. Differentiable;
/// the max backward routes each output's gradient to the first maximum in row-major window
/// order, summing over overlapping windows.
pub fn pool2d(x: &Tensor, mode: PoolMode, g: &Pool2dGeometry) -> Result<Tensor> {
    PoolDims::new(x.dims(), g)?;
    if super::portable::applies(x) {
        return super::portable::pool2d(x, mode, g);
    }
    x.contiguous()?.apply_op1(PoolOp { mode, g: *g })
}

/// Bin `i` of `out` bins over `len`: `[floor(i·len/out), ceil((i+1)·len/out))`.
pub(super) fn bin(i: usize, len: usize, out: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

fn adaptive_fwd<T: Elem>(x: &[T], planes: usize, h: usize, w: usize, out: [usize; 2]) -> Vec<T> {
    let (hw, ohw) = (h * w, out[0] * out[1]);
    let mut y = vec![T::ZERO; planes * ohw];
    par_rows(&mut y, ohw, PAR_MIN, |pl, o| {
        let plane = &x[pl * hw..][..hw];
        for oy in 0..out[0] {
            let (y0, y1) = bin(oy, h, out[0]);
            for ox in 0..out[1] {
                let (x0, x1) = bin(ox, w, out[1]);
                let mut sum = T::ZERO;
                for yy in y0..y1 {
                    for &v in &plane[yy * w + x0..yy * w + x1] {
                        sum += v;
                    }
                }
                o[oy * out[1] + ox] = sum / T::from_f64(((y1 - y0) * (x1 - x0)) as f64);
            }
        }
    });
    y
}

fn adaptive_bwd<T: Elem>(dy: &[T], planes: usize, h: usize, w: usize, out: [usize; 2]) -> Vec<T> {
    let (hw, ohw) = (h * w, out[0] * out[1]);
    let mut dx = vec![T::ZERO; planes * hw];
    par_rows(&mut dx, hw, PAR_MIN, |pl, d| {
        let g = &dy[pl * ohw..][..ohw];
        for oy in 0..out[0] {
            let (y0, y1) = bin(oy, h, out[0]);
            for ox in 0..out[1] {
                let (x0, x1) = bin(ox, w, out[1]);
                let v = g[oy * out[1] + ox] / T::from_f64(((y1 - y0) * (x1 - x0)) as f64);
                for yy in y0..y1 {
                    for e in &mut d[yy * w + x0..yy * w + x1] {
                        *e += v;
                    }
                }
            }
        }
    });
    dx
}

struct AdaptiveAvgOp {
    out: [usize; 2],
}

impl CustomOp1 for AdaptiveAvgOp {
    fn name(&self) -> &'static str {
        "cnncost-adaptive-avg-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let st = self.map(self.name(), &[n * c, h, w], (s, l))?;
        Ok((st, Shape::from((n, c, self.out[0], self.out[1]))))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        crate::kernels::timeline::op_backward(y);
        let (_, _, h, w) = x.dims4()?;
        let dy = dy.contiguous()?;
        Ok(Some(dy.apply_op1_no_bwd(&AdaptiveAvgBwdOp {
            out: self.out,
            input: [h, w],
        })?))
    }
}

impl Map1 for AdaptiveAvgOp {
    /// `[planes (N·C), H, W]`.
    type Sizes = [usize; 3];

    fn f<T: Elem>(&self, &[planes, h, w]: &[usize; 3], x: &[T]) -> Vec<T> {
        adaptive_fwd(x, planes, h, w, self.out)
    }
}

/// dy -> dx
struct AdaptiveAvgBwdOp {
    out: [usize; 2],
    input: [usize; 2],
}

impl CustomOp1 for AdaptiveAvgBwdOp {
    fn name(&self) -> &'static str {
        "cnncost-adaptive-avg-pool2d-bwd"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, oh, ow) = l.shape().dims4()?;
        if [oh, ow] != self.out {
            bail!("{}: unexpected gradient shape {l:?}", self.name())
        }
        let [h, w] = self.input;
        let st = self.map(self.name(), &[n * c, h, w], (s, l))?;
        Ok((st, Shape::from((n, c, h, w))))
    }
}

impl Map1 for AdaptiveAvgBwdOp {
    /// `[planes (N·C), H, W]` of the input.
    type Sizes = [usize; 3];

    fn f<T: Elem>(&self, &[planes, h, w]: &[usize; 3], dy: &[T]) -> Vec<T> {
        adaptive_bwd(dy, planes, h, w, self.out)
    }
}

/// PyTorch's `AdaptiveAvgPool2d(out)` of `x` (N, C, H, W): output bin `i` averages input
/// rows `[floor(i·H/out), ceil((i+1)·H/out))` (bins overlap when H is not a multiple of out),
/// likewise for columns. Differentiable.
pub fn adaptive_avg_pool2d(x: &Tensor, out: [usize; 2]) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if out[0] == 0 || out[1] == 0 || h == 0 || w == 0 {
        bail!(
            "adaptive_avg_pool2d: empty input {:?} or output {out:?}",
            x.dims()
        )
    }
    // Every bin is one element (AlexNet's 6x6 pool on a 6x6 map): the input itself,
    // gradient included.
    if [h, w] == out {
        return Ok(x.clone());
    }
    if super::portable::applies(x) {
        return super::portable::adaptive_avg_pool2d(x, out);
    }
    x.contiguous()?.apply_op1(AdaptiveAvgOp { out })
}
