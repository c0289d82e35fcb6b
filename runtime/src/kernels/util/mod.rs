//! What every kernel shares, and nothing kernel-specific: a leaf of the kernels' import
//! graph (no module here names an op, a convolution path or a candle custom op).
//!
//! * [`elem`]: the element trait ([`Elem`], f32 and f64), per-thread scratch buffers
//!   ([`with_scratch`]), [`relu_of`], [`as_f32`] and [`from_f32`] for f32-only kernels.
//! * [`par`]: parallel loops over rayon's pool ([`par_rows`], [`par_extend_rows`],
//!   [`par_map`], [`par_zip_map`]).
//! * [`disjoint`]: [`Disjoint`], a buffer written by parallel tasks in interleaved pieces.
//! * [`simd`]: run-time AVX-512 / AVX2 choice and the [`vectorised!`] macro.
//! * [`process`]: [`configure_process`], [`num_threads`].
//! * [`transpose`](mod@transpose): the blocked [`transpose`] of a matrix.
//! * [`timeline`]: marks the backward's ops leave, for `cnncost profile --train`.
//!
//! Inside: `par` uses `elem`, `process` and `simd`; the others use none of their siblings
//! (`elem` only candle's `WithDType`).

pub(crate) mod disjoint;
pub(crate) mod elem;
pub(crate) mod par;
pub(crate) mod process;
pub(crate) mod simd;
pub mod timeline;
pub(crate) mod transpose;

pub(crate) use disjoint::Disjoint;
pub use elem::scratch_bytes;
pub(crate) use elem::{as_f32, from_f32, relu_of, with_scratch, Elem};
pub(crate) use par::{par_extend_rows, par_map, par_rows, par_zip_map};
pub use process::{configure_process, gemm_slabs, num_threads};
pub(crate) use simd::{simd, vectorised, Simd};
pub(crate) use transpose::transpose;
