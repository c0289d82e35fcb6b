//! Ops candle 0.11 lacks or gets wrong, as candle custom ops with a backward.
//!
//! * [`conv2d`]: per-axis stride, dilation and asymmetric padding, groups; im2col + gemm
//!   (the `gemm` crate) over chunks of samples, with an explicit backward (input gradient:
//!   col2im of Wᵀ·dY, or for stride 1 a convolution with the flipped kernel; weight
//!   gradient: Σₙ dYₙ·colsₙᵀ). 3x3 stride-1 convs take faster paths: Winograd
//!   F(4x4, 3x3) with 32 or more channels (`conv/winograd.rs`), a direct AVX-512 kernel
//!   and weight gradient with fewer (`conv/direct.rs`); `CNNCOST_WINOGRAD=0` switches
//!   both off.
//! * [`pool2d`]: max / average pooling with PyTorch semantics (padding, ceil mode,
//!   `count_include_pad`), overlapping windows in the backward.
//! * [`adaptive_avg_pool2d`]: PyTorch's adaptive average pooling.
//! * [`linear`]: `x·Wᵀ` with the batch as gemm's vectorised axis (candle's matmul
//!   made gemm copy W element by element).
//! * [`shortcut::subsample_pad_channels`]: ResNet's parameter-free shortcut in one pass.
//! * [`gradcheck`]: a finite-difference gradient checker for tests.
//!
//! Our kernels run on the CPU (f32 and f64). On any other device each entry point calls
//! its composition of candle ops in [`portable`] instead (docs/runtime.md, "On a GPU").
//!
//! The modules' imports form a DAG; each uses only those on lines above its own:
//!
//! ```text
//! util        leaf: Elem, scratch, parallel loops, Disjoint, vectorised!, process settings
//! dispatch    util                    the one f32/f64 dispatch of every custom op
//! matmul      util                    the one wrapper over the gemm crate
//! gradcheck   (candle only)           the tests' gradient checker
//! linear      dispatch, matmul, util
//! mask        dispatch, util          dropout's product, no gradient for the mask
//! norm        dispatch, util
//! pool        dispatch, util
//! shortcut    dispatch, util
//! update      util                    the optimisers' updates, in place
//! conv        dispatch, matmul, util  (inside: geometry <- im2col, direct, winograd
//!                                      <- plan <- passes <- the ops in conv/mod.rs
//!                                      <- bench_support, hidden, for benches/)
//! portable    candle only                the ops as candle compositions, for other devices
//! ```
//!
//! The one exception to the order: `portable` reads the ops' plain-data argument
//! types (`Conv2dGeometry`, `Pool2dGeometry`, `PoolMode`, `BatchMoments`) and pooling's
//! window arithmetic (`pool::window`, `avg_divisor`, `bin`), and each op's entry point
//! calls it first when the input is not on the CPU.

pub mod conv;
pub mod gradcheck;
pub mod linear;
pub mod mask;
pub mod norm;
pub mod peak;
pub mod pool;
pub mod portable;
pub mod shortcut;
pub mod update;

mod dispatch;
mod matmul;
mod util;

pub use conv::{conv2d, Conv2dGeometry};
pub use linear::linear;
pub use pool::{adaptive_avg_pool2d, pool2d, Pool2dGeometry, PoolMode};
pub use util::timeline;
pub use util::{configure_process, gemm_slabs, num_threads, scratch_bytes};
