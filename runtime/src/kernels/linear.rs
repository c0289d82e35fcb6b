//! The fully connected layer `y = x·Wᵀ` (x: (N, I), W: (O, I)) as a custom op.
//!
//! candle's matmul hands the gemm crate W as the operand along the output features,
//! strided by I, and gemm copies such an operand into panels element by element: a
//! third of AlexNet's inference time went there. Run with the batch as gemm's `m` axis
//! (the destination written transposed, then turned), W is read in place.

use super::dispatch::Map2;
use super::matmul::matmul;
use super::util::{num_threads, transpose, Elem};
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
