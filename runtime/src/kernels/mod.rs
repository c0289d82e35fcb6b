//! Ops candle 0.11 lacks or gets wrong, as candle custom ops with a backward.
//! TEMPORARY SHIM over candle's own ops (square geometry only) until the
//! kernels land.

use candle_core::{Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub stride: [usize; 2],
    pub pad_begin: [usize; 2],
    pub pad_end: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

pub fn conv2d(x: &Tensor, weight: &Tensor, g: &Conv2dGeometry) -> Result<Tensor> {
    x.conv2d(weight, g.pad_begin[0], g.stride[0], g.dilation[0], g.groups)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Max,
    Avg { count_include_pad: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeometry {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
}

pub fn pool2d(x: &Tensor, mode: PoolMode, g: &Pool2dGeometry) -> Result<Tensor> {
    match mode {
        PoolMode::Max => x.max_pool2d_with_stride((g.kernel[0], g.kernel[1]), (g.stride[0], g.stride[1])),
        PoolMode::Avg { .. } => x.avg_pool2d_with_stride((g.kernel[0], g.kernel[1]), (g.stride[0], g.stride[1])),
    }
}

pub fn adaptive_avg_pool2d(x: &Tensor, out: [usize; 2]) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    x.avg_pool2d((h / out[0], w / out[1]))
}
