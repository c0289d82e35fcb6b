//! ResNet's parameter-free shortcut ("option A", He et al. 2016, section 4.2): every
//! s-th row and column of the input, with zero channels added before and after to reach
//! the block's width. One pass each way: as an index_select per axis and a concatenation
//! with zeros it cost 3% of a ResNet-20 training step.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::dispatch::Map1;
use super::util::{par_extend_rows, Elem};

/// `x` (N, C, H, W) -> (N, before + C + after, ⌈H/s⌉, ⌈W/s⌉): x[:, :, ::s, ::s] between
/// `before` and `after` zero channels. Differentiable in `x`.
pub fn subsample_pad_channels(
    x: &Tensor,
    stride: usize,
    before: usize,
    after: usize,
) -> Result<Tensor> {
    if stride == 0 {
        bail!("subsample_pad_channels: the stride must be positive")
    }
    x.dims4()?;
    if super::portable::applies(x) {
        return super::portable::subsample_pad_channels(x, stride, before, after);
    }
    x.contiguous()?.apply_op1(SubsamplePad {
        stride,
        before,
        after,
    })
}

#[derive(Clone, Copy)]
struct SubsamplePad {
    stride: usize,
    before: usize,
    after: usize,
}

impl SubsamplePad {
    fn out_dims(&self, [n, c, h, w]: [usize; 4]) -> [usize; 4] {
        let s = self.stride;
        [
            n,
            self.before + c + self.after,
            h.div_ceil(s),
            w.div_ceil(s),
        ]
    }

    fn fwd<T: Elem>(&self, x: &[T], [n, c, h, w]: [usize; 4]) -> Vec<T> {
        let [_, co, oh, ow] = self.out_dims([n, c, h, w]);
        let s = self.stride;
        let mut y = Vec::new();
        // SAFETY: every output plane is written whole (zeros or the subsampled input).
        unsafe {
            par_extend_rows(&mut y, n * co * oh * ow, oh * ow, 1 << 15, |plane, out| {
                let (i, ch) = (plane / co, plane % co);
                if ch < self.before || ch >= self.before + c {
                    for o in out.iter_mut() {
                        o.write(T::ZERO);
                    }
                    return;
                }
                let src = &x[(i * c + ch - self.before) * h * w..][..h * w];
                for (oy, row) in out.chunks_exact_mut(ow).enumerate() {
                    let line = &src[oy * s * w..][..w];
                    for (o, &v) in row.iter_mut().zip(line.iter().step_by(s)) {
                        o.write(v);
                    }
                }
            })
        };
        y
    }

    /// dx (N, C, H, W) from dy: dy's middle channels at every s-th row and column, zero
    /// elsewhere.
    fn bwd<T: Elem>(&self, dy: &[T], [n, c, h, w]: [usize; 4]) -> Vec<T> {
        let [_, co, oh, ow] = self.out_dims([n, c, h, w]);
        let s = self.stride;
        let mut dx = Vec::new();
        // SAFETY: every input plane is written whole.
        unsafe {
            par_extend_rows(&mut dx, n * c * h * w, h * w, 1 << 15, |plane, out| {
                let (i, ch) = (plane / c, plane % c);
                let src = &dy[(i * co + ch + self.before) * oh * ow..][..oh * ow];
                for (iy, row) in out.chunks_exact_mut(w).enumerate() {
                    if iy % s != 0 {
                        for o in row.iter_mut() {
                            o.write(T::ZERO);
                        }
                        continue;
                    }
                    let line = &src[iy / s * ow..][..ow];
                    for (ix, o) in row.iter_mut().enumerate() {
                        o.write(if ix % s == 0 { line[ix / s] } else { T::ZERO });
                    }
                }
            })
        };
        dx
    }
}

fn dims4(l: &Layout) -> Result<[usize; 4]> {
    match *l.dims() {
        [n, c, h, w] => Ok([n, c, h, w]),
        ref d => bail!("subsample_pad_channels: expected (N, C, H, W), got {d:?}"),
    }
}

impl CustomOp1 for SubsamplePad {
    fn name(&self) -> &'static str {
        "cnncost-subsample-pad-channels"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = dims4(l)?;
        let out = self.map(self.name(), &d, (st, l))?;
        Ok((out, Shape::from(self.out_dims(d).to_vec())))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        crate::kernels::timeline::op_backward(y);
        let [n, c, h, w] = [x.dim(0)?, x.dim(1)?, x.dim(2)?, x.dim(3)?];
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(
            &SubsamplePadBwd {
                op: *self,
                x_dims: [n, c, h, w],
            },
        )?))
    }
}

impl Map1 for SubsamplePad {
    /// x's `[N, C, H, W]`.
    type Sizes = [usize; 4];

    fn f<T: Elem>(&self, &d: &[usize; 4], x: &[T]) -> Vec<T> {
        self.fwd(x, d)
    }
}

/// dy -> dx of [`SubsamplePad`].
struct SubsamplePadBwd {
    op: SubsamplePad,
    x_dims: [usize; 4],
}

impl CustomOp1 for SubsamplePadBwd {
    fn name(&self) -> &'static str {
        "cnncost-subsample-pad-channels-backward"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        if dims4(l)? != self.op.out_dims(self.x_dims) {
            bail!("{}: unexpected gradient shape {:?}", self.name(), l.dims())
        }
        let d = self.x_dims;
        let out = self.map(self.name(), &d, (st, l))?;
        Ok((out, Shape::from(d.to_vec())))
    }
}

impl Map1 for SubsamplePadBwd {
    /// x's `[N, C, H, W]`.
    type Sizes = [usize; 4];

    fn f<T: Elem>(&self, &d: &[usize; 4], dy: &[T]) -> Vec<T> {
        self.op.bwd(dy, d)
    }
}
