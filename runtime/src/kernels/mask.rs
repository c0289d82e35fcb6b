//! `x · mask` with a gradient for `x` only: inverted dropout's product. candle's own
//! multiplication differentiates both operands, and the mask's gradient (the size of
//! the activations, never read) stayed in the gradient store until the backward
//! ended.

use super::dispatch::Map2;
use super::util::{par_zip_map, Elem};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `x · mask`, element by element; the backward gives `dy · mask` to `x` and
/// nothing to `mask`.
pub fn mul_mask(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    if x.shape() != mask.shape() {
        candle_core::bail!(
            "mul_mask: shapes {:?} and {:?} differ",
            x.dims(),
            mask.dims()
        )
    }
    if super::portable::applies(x) {
        return super::portable::mul_mask(x, mask);
    }
    x.contiguous()?.apply_op2(&mask.contiguous()?, MulMask)
}

struct MulMask;

impl CustomOp2 for MulMask {
    fn name(&self) -> &'static str {
        "cnncost-mul-mask"
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
        _x: &Tensor,
        mask: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        crate::kernels::timeline::op_backward(y);
        let dx = dy.contiguous()?.apply_op2_no_bwd(mask, &MulMask)?;
        Ok((Some(dx), None))
    }
}

impl Map2 for MulMask {
    type Sizes = ();

    fn f<T: Elem>(&self, _: &(), a: &[T], b: &[T]) -> Vec<T> {
        par_zip_map(a, b, |u, v| u * v)
    }
}
