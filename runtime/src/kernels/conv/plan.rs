//! Which path a convolution takes and how it spreads over the threads: the fast 3x3
//! paths (Winograd with 32 or more channels, the direct kernel with fewer) where they
//! apply, else im2col + gemm over chunks of samples, [`Split`] whole chunks per thread
//! or each chunk's gemm across the threads.

use super::direct;
use super::geometry::{Conv3x3, Dims};
use crate::kernels::util::{num_threads, Elem};

const PAR_MIN: usize = 1 << 15;

/// Whether the 3x3 fast paths (Winograd and the direct kernel) are switched off
/// (`CNNCOST_WINOGRAD=0`): im2col runs instead, for A/B runs and for comparing paths.
fn fast_paths_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("CNNCOST_WINOGRAD").is_ok_and(|v| v == "0"))
}

impl Dims {
    /// This convolution as a [`Conv3x3`], if it is one and the fast paths are on.
    fn conv3x3(&self) -> Option<Conv3x3> {
        let g = &self.g;
        let applies = [self.kh, self.kw] == [3, 3]
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.groups == 1
            && !fast_paths_disabled();
        applies.then_some(Conv3x3 {
            n: self.n,
            c: self.c,
            h: self.h,
            w: self.w,
            k: self.o,
            oh: self.oh,
            ow: self.ow,
            pad: g.pad_begin,
        })
    }

    /// Winograd F(4x4, 3x3): a 3x3 conv with at least [`dsl::plan::WINOGRAD_MIN_CHANNELS`] channels
    /// in and out.
    pub(super) fn winograd(&self) -> Option<Conv3x3> {
        let g = &self.g;
        self.conv3x3().filter(|_| {
            dsl::plan::winograd_applies(
                [self.kh, self.kw].map(|v| v as u64),
                g.stride.map(|v| v as u64),
                g.dilation.map(|v| v as u64),
                g.groups as u64,
                [self.c, self.o].map(|v| v as u64),
            )
        })
    }

    /// The direct kernel (f32 with AVX-512 only): a 3x3 conv with fewer channels (in or
    /// out) than Winograd takes, on rows that fill its strips of 32 outputs.
    pub(super) fn direct(&self) -> Option<Conv3x3> {
        self.conv3x3().filter(|s| {
            (s.c.min(s.k) as u64) < dsl::plan::WINOGRAD_MIN_CHANNELS && direct::fills_strips(s.ow)
        })
    }
}

/// How a convolution spreads over the threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Split {
    /// Whole chunks per thread, every gemm and copy single-threaded: one
    /// synchronisation per call. For small feature maps and weights (the CIFAR
    /// networks), whose per-chunk gemms are too small to split: splitting them
    /// cost more in hand-offs between threads than the arithmetic.
    Chunks,
    /// Chunk after chunk, each gemm and copy split across the threads: large
    /// images (VGG's at 224) and large weights (late ResNet stages).
    Within,
}

/// One image's column matrix above this many bytes runs [`Split::Within`]. AlexNet's
/// first two convs (4.4 and 4.7 MB per image) run whole images per thread under 8 MB:
/// its inference ran 1.12x faster than with 4 MB, splitting each image's gemm.
const CHUNKS_MAX_IMAGE_BYTES: usize = 8 << 20;

impl Dims {
    /// Samples per chunk of [`Split::Within`]: enough columns for an efficient gemm, a bounded column matrix.
    fn chunk(&self) -> usize {
        dsl::plan::im2col_chunk(self.n, self.c * self.kk(), self.p())
    }

    fn split<T>(&self, threads: usize) -> Split {
        let image_cols = self.c * self.kk() * self.p();
        let chunk_cols = image_cols * self.chunk_of(Split::Chunks, threads);
        if threads > 1
            && self.n >= 2 * threads
            && image_cols * std::mem::size_of::<T>() <= CHUNKS_MAX_IMAGE_BYTES
            // Every chunk re-packs the weights: they must not outweigh the columns.
            && self.o * self.cgkk() <= chunk_cols
        {
            Split::Chunks
        } else {
            Split::Within
        }
    }

    /// Samples per chunk.
    fn chunk_of(&self, split: Split, threads: usize) -> usize {
        match split {
            // >= 256 gemm columns, and at least two chunks per thread.
            Split::Chunks => 256usize
                .div_ceil(self.p().max(1))
                .min(self.n.div_ceil(2 * threads))
                .max(1),
            Split::Within => self.chunk(),
        }
    }
}

/// How the pieces of one chunk run: single-threaded inside a [`Split::Chunks`] task, or
/// split across the threads.
#[derive(Clone, Copy)]
pub(super) struct Par {
    pub(super) gemm: gemm::Parallelism,
    /// `min_par_len` of the copies (im2col, col2im, gather, scatter).
    pub(super) copies: usize,
}

impl Par {
    fn of(split: Split, threads: usize) -> Par {
        match split {
            Split::Chunks => Par {
                gemm: gemm::Parallelism::None,
                copies: usize::MAX,
            },
            Split::Within if threads > 1 => Par {
                gemm: gemm::Parallelism::Rayon(threads),
                copies: PAR_MIN,
            },
            Split::Within => Par {
                gemm: gemm::Parallelism::None,
                copies: usize::MAX,
            },
        }
    }
}

/// How one convolution call runs: derived from its sizes and the thread count.
pub(super) struct Plan {
    pub(super) threads: usize,
    pub(super) split: Split,
    /// Samples per chunk.
    pub(super) chunk: usize,
    pub(super) par: Par,
}

impl Plan {
    pub(super) fn of<T>(d: &Dims) -> Plan {
        let threads = num_threads();
        let split = d.split::<T>(threads);
        Plan {
            threads,
            split,
            chunk: d.chunk_of(split, threads),
            par: Par::of(split, threads),
        }
    }
}

/// Calls `f(n0, nc, out_chunk, par)` for the chunks of `out` (`row` elements per sample),
/// in parallel or in turn as `d.split` says.
pub(super) fn for_chunks<T: Elem>(
    d: &Dims,
    out: &mut [T],
    row: usize,
    f: impl Fn(usize, usize, &mut [T], Par) + Sync,
) {
    use rayon::prelude::*;
    let Plan {
        split, chunk, par, ..
    } = Plan::of::<T>(d);
    let body = |(i, c): (usize, &mut [T])| f(i * chunk, c.len() / row, c, par);
    match split {
        Split::Chunks => out.par_chunks_mut(chunk * row).enumerate().for_each(body),
        Split::Within => out.chunks_mut(chunk * row).enumerate().for_each(body),
    }
}
