//! What `runtime/benches/conv_phases.rs` times that is not public API: each pass of a
//! convolution alone, unrecorded (no autograd), and the allocator settings of
//! [`crate::kernels::configure_process`]. Hidden from the docs; nothing else should use it.

use candle_core::{Result, Tensor};

use super::{Conv2dBwdData, Conv2dBwdFilter, Conv2dGeometry, Conv2dOp};

pub use crate::kernels::util::process::keep_freed_memory;

/// y of [`super::conv2d`]'s forward op.
pub fn conv_forward(x: &Tensor, w: &Tensor, g: Conv2dGeometry) -> Result<Tensor> {
    x.apply_op2_no_bwd(w, &Conv2dOp(g))
}

/// dx of a convolution with input dims `x_dims`, from dy and w.
pub fn conv_backward_data(
    dy: &Tensor,
    w: &Tensor,
    g: Conv2dGeometry,
    x_dims: (usize, usize, usize, usize),
) -> Result<Tensor> {
    dy.apply_op2_no_bwd(w, &Conv2dBwdData { g, x_dims })
}

/// dw of a convolution with weight dims `w_dims`, from x and dy.
pub fn conv_backward_filter(
    x: &Tensor,
    dy: &Tensor,
    g: Conv2dGeometry,
    w_dims: (usize, usize, usize, usize),
) -> Result<Tensor> {
    x.apply_op2_no_bwd(dy, &Conv2dBwdFilter { g, w_dims })
}
