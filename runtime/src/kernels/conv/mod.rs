//! 2-D convolution with per-axis stride / dilation, asymmetric padding and groups, as
//! candle custom ops with their own backward: the public API ([`conv2d`],
//! [`conv2d_bias_relu`], [`Conv2dGeometry`]) and the ops' glue to candle.
//!
//! Algorithm: the batch is processed in chunks of `nc` samples. For a chunk, im2col builds
//! the column matrix `cols` of shape (C·KH·KW, nc·OH·OW) (row = (channel, ky, kx), column =
//! (sample, oy, ox)); one gemm per group (the `gemm` crate, called directly) gives
//! Y = W·cols of shape (O, nc·OH·OW), scattered into (nc, O, OH, OW).
//! Backward: dcols = Wᵀ·dY then col2im (input gradient), dW = Σ_chunks dY·colsᵀ (weight
//! gradient, cols recomputed rather than stored). Small feature maps (CIFAR) run whole
//! chunks per thread with single-threaded gemms ([`plan::Split::Chunks`]); large ones
//! split each chunk's gemm and copies across the threads ([`plan::Split::Within`]).
//! 3x3 stride-1 convs take faster paths: Winograd F(4x4, 3x3) with 32 or more channels
//! ([`winograd`]), a direct AVX-512 kernel and weight gradient with fewer ([`direct`]).
//! AlexNet's 11x11 stride-4 stem runs its forward as such a 3x3 conv ([`space_to_depth`]).
//!
//! Modules, each using only those listed before it (and `kernels::util`, `matmul`):
//! [`geometry`] (sizes), [`im2col`] (column matrices), [`direct`] and [`winograd`] (the
//! fast 3x3 paths), [`plan`] (which path, how the threads split), [`space_to_depth`]
//! (a strided conv as a 3x3 one), [`passes`] (forward, input gradient, weight
//! gradient), then this file's custom ops; `bench_support` (hidden)
//! hands them to `runtime/benches/conv_phases.rs`.

#[doc(hidden)]
pub mod bench_support;
mod direct;
mod geometry;
mod im2col;
mod passes;
mod plan;
mod space_to_depth;
mod winograd;

pub use geometry::Conv2dGeometry;

use geometry::Dims;
use passes::{conv_bwd_data, conv_bwd_filter, conv_fwd, Epilogue};

use super::dispatch::{Map2, Map3};
use super::util::Elem;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

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
        let st = self.map(self.name(), &d, (s1, l1), (s2, l2))?;
        Ok((st, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        crate::kernels::timeline::op_backward(y);
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
            let w_dims = w.dims4()?;
            Some(crate::kernels::timeline::weight_grad(|| {
                x.apply_op2_no_bwd(&dy, &Conv2dBwdFilter { g: self.0, w_dims })
            })?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

impl Map2 for Conv2dOp {
    type Sizes = Dims;

    fn f<T: Elem>(&self, d: &Dims, x: &[T], w: &[T]) -> Vec<T> {
        conv_fwd(x, w, d, None)
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
        let st = self.map(self.name(), &d, (s1, l1), (s2, l2))?;
        Ok((st, Shape::from(self.x_dims)))
    }
}

impl Map2 for Conv2dBwdData {
    type Sizes = Dims;

    fn f<T: Elem>(&self, d: &Dims, dy: &[T], w: &[T]) -> Vec<T> {
        conv_bwd_data(dy, w, d)
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
        let st = self.map(self.name(), &d, (s1, l1), (s2, l2))?;
        Ok((st, Shape::from(self.w_dims)))
    }
}

impl Map2 for Conv2dBwdFilter {
    type Sizes = Dims;

    fn f<T: Elem>(&self, d: &Dims, x: &[T], dy: &[T]) -> Vec<T> {
        conv_bwd_filter(x, dy, d)
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
    if crate::kernels::portable::applies(x) {
        return crate::kernels::portable::conv2d(x, weight, g);
    }
    let x = x.contiguous()?;
    let weight = weight.contiguous()?;
    x.apply_op2(&weight, Conv2dOp(*g))
}

/// `relu(conv(x, w) + bias[o])` (without `relu`, no clamp) in one pass, bias and ReLU
/// applied to each chunk as the gemm leaves it. Inference calls it with a batch norm in
/// evaluation mode folded into `w` and `bias`; training calls it for a convolution with
/// a bias and/or the ReLU after it. Differentiable in all three (dbias = Σ dY over the
/// samples and positions, dY masked by the ReLU): one tensor kept for the backward
/// where the graph kept the product, its biased copy and the ReLU's output.
pub fn conv2d_bias_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    relu: bool,
    g: &Conv2dGeometry,
) -> Result<Tensor> {
    if x.dtype() != weight.dtype() || bias.dtype() != weight.dtype() {
        bail!(
            "conv2d: x is {:?}, the weight {:?}, the bias {:?}",
            x.dtype(),
            weight.dtype(),
            bias.dtype()
        )
    }
    if bias.dims() != [weight.dim(0)?] {
        bail!(
            "conv2d: a bias of shape {:?} for {} output channels",
            bias.dims(),
            weight.dim(0)?
        )
    }
    Dims::new(x.dims(), weight.dims(), g)?;
    if crate::kernels::portable::applies(x) {
        return crate::kernels::portable::conv2d_bias_relu(x, weight, bias, relu, g);
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        Conv2dBiasRelu { g: *g, relu },
    )
}

struct Conv2dBiasRelu {
    g: Conv2dGeometry,
    relu: bool,
}

impl CustomOp3 for Conv2dBiasRelu {
    fn name(&self) -> &'static str {
        "cnncost-conv2d-bias-relu"
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
        let d = Dims::new(l1.dims(), l2.dims(), &self.g)?;
        let shape = Shape::from((d.n, d.o, d.oh, d.ow));
        let st = self.map(self.name(), &d, (s1, l1), (s2, l2), (s3, l3))?;
        Ok((st, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        crate::kernels::timeline::op_backward(y);
        // Through the ReLU first: dY where the output is positive.
        let masked;
        let dy = if self.relu {
            masked = crate::kernels::norm::relu_grad(y, dy)?;
            &masked
        } else {
            dy
        };
        let (dx, dw) = Conv2dOp(self.g).bwd(x, w, y, dy)?;
        // As candle's gradient of a broadcast add: the same sums in the same order.
        let db = if bias.track_op() {
            Some(crate::kernels::timeline::weight_grad(|| {
                dy.sum_keepdim(vec![0, 2, 3])?.reshape(bias.shape())
            })?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

impl Map3 for Conv2dBiasRelu {
    type Sizes = Dims;

    fn f<T: Elem>(&self, d: &Dims, x: &[T], w: &[T], bias: &[T]) -> Vec<T> {
        let relu = self.relu;
        conv_fwd(x, w, d, Some(Epilogue { bias, relu }))
    }
}
