//! 2-D convolution with per-axis stride / dilation, asymmetric padding and groups, as a
//! candle `CustomOp2` with its own backward.
//!
//! Algorithm: the batch is processed in chunks of `nc` samples. For a chunk, im2col builds
//! the column matrix `cols` of shape (C·KH·KW, nc·OH·OW) (row = (channel, ky, kx), column =
//! (sample, oy, ox)); one gemm per group (the `gemm` crate, called directly) gives
//! Y = W·cols of shape (O, nc·OH·OW), scattered into (nc, O, OH, OW).
//! Backward: dcols = Wᵀ·dY then col2im (input gradient), dW = Σ_chunks dY·colsᵀ (weight
//! gradient, cols recomputed rather than stored). Small feature maps (CIFAR) run whole
//! chunks per thread with single-threaded gemms ([`Split::Chunks`]); large ones split each
//! chunk's gemm and copies across the threads ([`Split::Within`]).

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::matmul::matmul;
use super::util::{
    contiguous_slice, dtype_error, num_threads, par_rows, relu_of, transpose, with_scratch, Elem,
};
use super::{direct, winograd};

/// Geometry of a 2-D convolution; every pair is `[h, w]` (padding: `[top, left]` and
/// `[bottom, right]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub stride: [usize; 2],
    pub pad_begin: [usize; 2],
    pub pad_end: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Conv2dGeometry {
    /// The same stride, padding (on all four sides) and dilation on both axes, like
    /// candle's `Tensor::conv2d`.
    pub fn uniform(stride: usize, padding: usize, dilation: usize, groups: usize) -> Self {
        Self {
            stride: [stride; 2],
            pad_begin: [padding; 2],
            pad_end: [padding; 2],
            dilation: [dilation; 2],
            groups,
        }
    }

    /// Output size `[OH, OW]` for an `[H, W]` input and a `[KH, KW]` kernel, or an error when
    /// the (dilated) kernel does not fit in the padded input.
    pub fn output_size(&self, input: [usize; 2], kernel: [usize; 2]) -> Result<[usize; 2]> {
        let mut out = [0; 2];
        for a in 0..2 {
            if self.stride[a] == 0 || self.dilation[a] == 0 || kernel[a] == 0 {
                bail!("conv2d: stride, dilation and kernel size must be positive, got {self:?} and kernel {kernel:?}")
            }
            let padded = input[a] + self.pad_begin[a] + self.pad_end[a];
            let span = self.dilation[a] * (kernel[a] - 1) + 1;
            if padded < span {
                bail!(
                    "conv2d: the kernel {kernel:?} (dilation {:?}) is larger than the padded input {input:?}",
                    self.dilation
                )
            }
            out[a] = (padded - span) / self.stride[a] + 1;
        }
        Ok(out)
    }
}

/// All sizes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    g: Conv2dGeometry,
}

impl Dims {
    fn new(x: &[usize], w: &[usize], g: &Conv2dGeometry) -> Result<Self> {
        let (&[n, c, h, wd], &[o, cg, kh, kw]) = (x, w) else {
            bail!("conv2d: expected x (N, C, H, W) and weight (O, C/groups, KH, KW), got {x:?} and {w:?}")
        };
        if g.groups == 0 || c % g.groups != 0 || o % g.groups != 0 || cg * g.groups != c {
            bail!(
                "conv2d: groups {} do not fit x {x:?} and weight {w:?} (need C and O divisible by groups, weight dim 1 = C/groups)",
                g.groups
            )
        }
        let [oh, ow] = g.output_size([h, wd], [kh, kw])?;
        Ok(Self {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            oh,
            ow,
            g: *g,
        })
    }
    fn p(&self) -> usize {
        self.oh * self.ow
    }
    fn kk(&self) -> usize {
        self.kh * self.kw
    }
    fn chw(&self) -> usize {
        self.c * self.h * self.w
    }
    fn cgkk(&self) -> usize {
        self.c / self.g.groups * self.kk()
    }
    fn og(&self) -> usize {
        self.o / self.g.groups
    }
    /// Samples per chunk: enough columns for an efficient gemm, a bounded column matrix.
    fn chunk(&self) -> usize {
        let p = self.p().max(1);
        let by_cols = 2048usize.div_ceil(p);
        let rows = (self.c * self.kk()).max(1);
        let by_mem = ((4usize << 20) / (rows * p)).max(1);
        by_cols.min(by_mem).clamp(1, self.n.max(1))
    }
}

const PAR_MIN: usize = 1 << 15;

/// Fewer channels than this (in or out) run im2col even where Winograd applies: with
/// 16 channels its 36 products are too thin for the gemm and the transforms dominate
/// (ResNet-20's first stage ran at 0.75x im2col's speed; 32 channels at 1.1-1.2x, 64 at
/// 1.8x; `conv_phases`).
const WINOGRAD_MIN_CHANNELS: usize = 32;

/// The sizes of a 3x3, stride-1, undilated, single-group convolution: what the fast 3x3
/// paths ([`winograd`], [`direct`]) take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conv3x3 {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub oh: usize,
    pub ow: usize,
    /// Padding at the top and left (the bottom and right follow from OH, OW).
    pub pad: [usize; 2],
}

impl Dims {
    /// This convolution as a [`Conv3x3`], if it is one and the fast paths are on.
    fn conv3x3(&self) -> Option<Conv3x3> {
        let g = &self.g;
        let applies = [self.kh, self.kw] == [3, 3]
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && g.groups == 1
            && !winograd::disabled();
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

    /// Winograd F(4x4, 3x3): a 3x3 conv with at least [`WINOGRAD_MIN_CHANNELS`] channels
    /// in and out.
    fn winograd(&self) -> Option<Conv3x3> {
        self.conv3x3()
            .filter(|s| s.c.min(s.k) >= WINOGRAD_MIN_CHANNELS)
    }

    /// The direct kernel (f32 with AVX-512 only): a 3x3 conv with fewer channels (in or
    /// out) than Winograd takes, on rows that fill its strips of 32 outputs.
    fn direct(&self) -> Option<Conv3x3> {
        self.conv3x3()
            .filter(|s| s.c.min(s.k) < WINOGRAD_MIN_CHANNELS && direct::fills_strips(s.ow))
    }
}

/// The output positions `[lo, hi)` along one axis whose input index
/// `o*stride + k_off - pad` lies in `[0, len)`.
fn valid_range(k_off: usize, pad: usize, stride: usize, len: usize, out: usize) -> (usize, usize) {
    let lo = if pad > k_off {
        (pad - k_off).div_ceil(stride)
    } else {
        0
    };
    let hi = if len + pad > k_off {
        (len + pad - k_off).div_ceil(stride)
    } else {
        0
    };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

/// A stride-1 convolution whose output rows are as wide as its input rows ("same"
/// padding, the 3x3 convs of every ResNet): a column-matrix row is then the input plane
/// shifted by one offset, so im2col copies it in one run and col2im adds it in one run,
/// fixing up only the padding columns, instead of a short copy per output row (a
/// tenth of a ResNet-20 training step went to those copies and their border fills).
fn is_shift(d: &Dims) -> bool {
    d.g.stride == [1, 1] && d.w == d.ow
}

/// For the column-matrix row of kernel offset (`ki`, `kj`): the output rows `[ylo, yhi)`
/// and columns `[lo, hi)` that read inside the input, and (shift layouts) the offset
/// from an output position `oy·OW + ox` to its input position.
struct RowMap {
    ylo: usize,
    yhi: usize,
    lo: usize,
    hi: usize,
    offset: isize,
}

impl RowMap {
    /// Every kernel offset's map, indexed `ki·KW + kj`.
    fn all(d: &Dims) -> Vec<RowMap> {
        (0..d.kk())
            .map(|r| RowMap::of(d, r / d.kw, r % d.kw))
            .collect()
    }

    fn of(d: &Dims, ki: usize, kj: usize) -> RowMap {
        let (top, left) = (d.g.pad_begin[0], d.g.pad_begin[1]);
        let (dh, dw) = (d.g.dilation[0], d.g.dilation[1]);
        let (lo, hi) = valid_range(kj * dw, left, d.g.stride[1], d.w, d.ow);
        let (ylo, yhi) = valid_range(ki * dh, top, d.g.stride[0], d.h, d.oh);
        let dy = (ki * dh) as isize - top as isize;
        let dx = (kj * dw) as isize - left as isize;
        RowMap {
            ylo,
            yhi,
            lo,
            hi,
            offset: dy * d.w as isize + dx,
        }
    }

    /// The output positions `[a, b)` of the one run (shift layouts): the valid rows,
    /// clipped where the offset would leave the plane (a padding column there).
    fn run(&self, d: &Dims) -> (usize, usize) {
        let hw = (d.h * d.w) as isize;
        let a = ((self.ylo * d.ow) as isize).max(-self.offset);
        let b = ((self.yhi * d.ow) as isize).min(hw - self.offset);
        (a as usize, (b.max(a)) as usize)
    }

    /// Positions `oy·OW + ox` of the valid rows whose column reads padding.
    fn pad_columns(&self, d: &Dims) -> impl Iterator<Item = usize> + '_ {
        let ow = d.ow;
        (0..self.lo)
            .chain(self.hi..ow)
            .flat_map(move |ox| (self.ylo..self.yhi).map(move |oy| oy * ow + ox))
    }
}

/// im2col of `nc` samples `x` (nc, C, H, W) into `cols` (C·KH·KW, nc·OH·OW).
fn im2col<T: Elem>(x: &[T], d: &Dims, nc: usize, cols: &mut [T], min_par: usize) {
    let (p, kk, hw) = (d.p(), d.kk(), d.h * d.w);
    let (sh, sw) = (d.g.stride[0], d.g.stride[1]);
    let (dh, dw) = (d.g.dilation[0], d.g.dilation[1]);
    let (top, left) = (d.g.pad_begin[0], d.g.pad_begin[1]);
    let shift = is_shift(d);
    let maps = RowMap::all(d);
    par_rows(cols, nc * p, min_par, |r, row| {
        let (ci, ki, kj) = (r / kk, (r % kk) / d.kw, r % d.kw);
        let m = &maps[r % kk];
        let (lo, hi, ylo, yhi) = (m.lo, m.hi, m.ylo, m.yhi);
        for s in 0..nc {
            let plane = &x[(s * d.c + ci) * hw..][..hw];
            let dst = &mut row[s * p..][..p];
            dst[..ylo * d.ow].fill(T::ZERO);
            dst[yhi * d.ow..].fill(T::ZERO);
            if shift {
                let (a, b) = m.run(d);
                let from = (a as isize + m.offset) as usize;
                dst[ylo * d.ow..a].fill(T::ZERO);
                dst[a..b].copy_from_slice(&plane[from..from + (b - a)]);
                dst[b..(yhi * d.ow).max(b)].fill(T::ZERO);
                for q in m.pad_columns(d) {
                    dst[q] = T::ZERO;
                }
                continue;
            }
            for oy in ylo..yhi {
                let iy = oy * sh + ki * dh - top;
                let src = &plane[iy * d.w..][..d.w];
                let out = &mut dst[oy * d.ow..][..d.ow];
                out[..lo].fill(T::ZERO);
                out[hi..].fill(T::ZERO);
                if lo < hi {
                    let ix0 = lo * sw + kj * dw - left;
                    if sw == 1 {
                        out[lo..hi].copy_from_slice(&src[ix0..ix0 + hi - lo]);
                    } else {
                        for (k, o) in out[lo..hi].iter_mut().enumerate() {
                            *o = src[ix0 + k * sw];
                        }
                    }
                }
            }
        }
    });
}

/// col2im: accumulates `dcols` (C·KH·KW, nc·OH·OW) into `dx` (nc, C, H, W). In shift
/// layouts the padding columns of `dcols` are zeroed first (they are scratch).
fn col2im<T: Elem>(dcols: &mut [T], d: &Dims, nc: usize, dx: &mut [T], min_par: usize) {
    let (p, kk, hw) = (d.p(), d.kk(), d.h * d.w);
    let (sh, sw) = (d.g.stride[0], d.g.stride[1]);
    let (dh, dw) = (d.g.dilation[0], d.g.dilation[1]);
    let (top, left) = (d.g.pad_begin[0], d.g.pad_begin[1]);
    let ld = nc * p;
    let shift = is_shift(d);
    let maps = RowMap::all(d);
    if shift {
        par_rows(dcols, ld, min_par, |r, row| {
            let m = &maps[r % kk];
            for s in 0..nc {
                let seg = &mut row[s * p..][..p];
                for q in m.pad_columns(d) {
                    seg[q] = T::ZERO;
                }
            }
        });
    }
    let dcols = &*dcols;
    par_rows(dx, hw, min_par, |q, plane| {
        let (s, ci) = (q / d.c, q % d.c);
        for ki in 0..d.kh {
            for kj in 0..d.kw {
                let row = &dcols[(ci * kk + ki * d.kw + kj) * ld + s * p..][..p];
                let m = &maps[ki * d.kw + kj];
                if shift {
                    let (a, b) = m.run(d);
                    let from = (a as isize + m.offset) as usize;
                    for (o, &v) in plane[from..from + (b - a)].iter_mut().zip(&row[a..b]) {
                        *o += v;
                    }
                    continue;
                }
                let (lo, hi, ylo, yhi) = (m.lo, m.hi, m.ylo, m.yhi);
                if lo >= hi {
                    continue;
                }
                let ix0 = lo * sw + kj * dw - left;
                for oy in ylo..yhi {
                    let iy = oy * sh + ki * dh - top;
                    let dst = &mut plane[iy * d.w..][..d.w];
                    let src = &row[oy * d.ow + lo..oy * d.ow + hi];
                    if sw == 1 {
                        for (o, &v) in dst[ix0..ix0 + (hi - lo)].iter_mut().zip(src) {
                            *o += v;
                        }
                    } else {
                        for (k, &v) in src.iter().enumerate() {
                            dst[ix0 + k * sw] += v;
                        }
                    }
                }
            }
        }
    });
}

/// (nc, O, P) -> (O, nc·P)
fn gather_chunk<T: Elem>(src: &[T], o: usize, p: usize, nc: usize, dst: &mut [T], min_par: usize) {
    par_rows(dst, nc * p, min_par, |oi, row| {
        for s in 0..nc {
            row[s * p..][..p].copy_from_slice(&src[(s * o + oi) * p..][..p]);
        }
    });
}

/// (O, nc·P) -> (nc, O, P)
fn scatter_chunk<T: Elem>(src: &[T], o: usize, p: usize, nc: usize, dst: &mut [T], min_par: usize) {
    par_rows(dst, p, min_par, |q, row| {
        let (s, oi) = (q / o, q % o);
        row.copy_from_slice(&src[oi * nc * p + s * p..][..p]);
    });
}

/// How a convolution spreads over the threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
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
struct Par {
    gemm: gemm::Parallelism,
    /// `min_par_len` of the copies (im2col, col2im, gather, scatter).
    copies: usize,
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
struct Plan {
    threads: usize,
    split: Split,
    /// Samples per chunk.
    chunk: usize,
    par: Par,
}

impl Plan {
    fn of<T>(d: &Dims) -> Plan {
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
fn for_chunks<T: Elem>(
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

/// The column matrix (C·KH·KW, nc·P) of samples `n0..n0 + nc`, in scratch slot 0.
fn with_chunk_columns<T: Elem, R>(
    x: &[T],
    d: &Dims,
    n0: usize,
    nc: usize,
    par: Par,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    with_scratch(0, d.c * d.kk() * nc * d.p(), |cols| {
        let x = &x[n0 * d.chw()..(n0 + nc) * d.chw()];
        im2col(x, d, nc, cols, par.copies);
        f(cols)
    })
}

/// dY of samples `n0..n0 + nc` as (O, nc·P): one sample's slice as it is, several
/// gathered into scratch slot 1.
fn with_chunk_rows<T: Elem, R>(
    dy: &[T],
    d: &Dims,
    n0: usize,
    nc: usize,
    par: Par,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    let p = d.p();
    let dy = &dy[n0 * d.o * p..(n0 + nc) * d.o * p];
    if nc == 1 {
        return f(dy);
    }
    with_scratch(1, d.o * nc * p, |buf| {
        gather_chunk(dy, d.o, p, nc, buf, par.copies);
        f(buf)
    })
}

/// What inference applies to a convolution's output while it is still in cache: a
/// per-channel bias (a folded batch norm's shift) and ReLU.
#[derive(Clone, Copy)]
struct Epilogue<'a, T> {
    bias: &'a [T],
    relu: bool,
}

impl<T: Elem> Epilogue<'_, T> {
    /// `y` holds whole samples' (O, P) outputs.
    fn apply(&self, y: &mut [T], p: usize) {
        for (q, row) in y.chunks_mut(p.max(1)).enumerate() {
            let b = self.bias[q % self.bias.len()];
            if self.relu {
                for v in row {
                    *v = relu_of(*v + b);
                }
            } else {
                for v in row {
                    *v += b;
                }
            }
        }
    }
}

fn conv_fwd<T: Elem>(x: &[T], w: &[T], d: &Dims, epilogue: Option<Epilogue<T>>) -> Vec<T> {
    let (bias, relu) = epilogue.map_or((None, false), |e| (Some(e.bias), e.relu));
    if let Some(s) = d.winograd() {
        return winograd::conv3x3(x, w, &s, bias, relu);
    }
    if let Some(y) = d
        .direct()
        .and_then(|s| T::direct_conv3x3(x, w, &s, bias, relu))
    {
        return y;
    }
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let mut y = vec![T::ZERO; d.n * d.o * p];
    for_chunks(d, &mut y, d.o * p, |n0, nc, y, par| {
        let ld = nc * p;
        with_chunk_columns(x, d, n0, nc, par, |cols| {
            let product = |out: &mut [T]| {
                for gi in 0..g {
                    matmul(
                        [og, ld, cgkk],
                        &mut out[gi * og * ld..],
                        (ld, 1),
                        false,
                        (&w[gi * og * cgkk..], cgkk, 1),
                        (&cols[gi * cgkk * ld..], ld, 1),
                        par.gemm,
                    );
                }
            };
            // One sample's (O, P) output is already in y's layout.
            if nc == 1 {
                product(y);
            } else {
                with_scratch(1, d.o * ld, |staged| {
                    product(staged);
                    scatter_chunk(staged, d.o, p, nc, y, par.copies);
                });
            }
            if let Some(e) = epilogue {
                e.apply(y, p);
            }
        });
    });
    y
}

/// The input gradient of a stride-1 convolution is itself a convolution: of dY with the
/// kernel flipped and its channel axes swapped (per group), padded by
/// `dilation·(k − 1) − pad` on each side. Run as one, it takes the forward's path
/// (im2col of dY, one gemm per chunk, straight into dX) instead of a gemm into a column
/// matrix and a col2im over it: 2.4x faster on ResNet-18's first stage, where that
/// column matrix outgrows the L2 cache. None where the flip does not apply.
fn bwd_data_as_conv<T: Elem>(dy: &[T], w: &[T], d: &Dims) -> Option<Vec<T>> {
    let dil = d.g.dilation;
    let reach = [dil[0] * (d.kh - 1), dil[1] * (d.kw - 1)];
    let (pb, pe) = (d.g.pad_begin, d.g.pad_end);
    if d.g.stride != [1, 1] || (0..2).any(|a| pb[a] > reach[a] || pe[a] > reach[a]) {
        return None;
    }
    let g = Conv2dGeometry {
        stride: [1, 1],
        pad_begin: [reach[0] - pb[0], reach[1] - pb[1]],
        pad_end: [reach[0] - pe[0], reach[1] - pe[1]],
        dilation: dil,
        groups: d.g.groups,
    };
    let (og, cg, kk) = (d.og(), d.c / d.g.groups, d.kk());
    // w (O, C/g, KH, KW) -> flipped (C, O/g, KH, KW), group by group.
    let mut flipped = vec![T::ZERO; w.len()];
    for gi in 0..d.g.groups {
        for o in 0..og {
            for c in 0..cg {
                let src = &w[((gi * og + o) * cg + c) * kk..][..kk];
                let dst = &mut flipped[((gi * cg + c) * og + o) * kk..][..kk];
                for (k, v) in dst.iter_mut().enumerate() {
                    *v = src[kk - 1 - k];
                }
            }
        }
    }
    let dd = Dims::new(&[d.n, d.o, d.oh, d.ow], &[d.c, og, d.kh, d.kw], &g).ok()?;
    if [dd.oh, dd.ow] != [d.h, d.w] {
        return None;
    }
    Some(conv_fwd(dy, &flipped, &dd, None))
}

fn conv_bwd_data<T: Elem>(dy: &[T], w: &[T], d: &Dims) -> Vec<T> {
    if let Some(dx) = bwd_data_as_conv(dy, w, d) {
        return dx;
    }
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let mut dx = vec![T::ZERO; d.n * d.chw()];
    for_chunks(d, &mut dx, d.chw(), |n0, nc, dx, par| {
        let ld = nc * p;
        with_chunk_rows(dy, d, n0, nc, par, |dyb| {
            with_scratch(0, d.c * d.kk() * ld, |dcols| {
                for gi in 0..g {
                    // Wᵀ per group: the (CgKK, Og) view of the (Og, CgKK) block.
                    matmul(
                        [cgkk, ld, og],
                        &mut dcols[gi * cgkk * ld..],
                        (ld, 1),
                        false,
                        (&w[gi * og * cgkk..], 1, cgkk),
                        (&dyb[gi * og * ld..], ld, 1),
                        par.gemm,
                    );
                }
                col2im(dcols, d, nc, dx, par.copies);
            })
        })
    });
    dx
}

fn conv_bwd_filter<T: Elem>(x: &[T], dy: &[T], d: &Dims) -> Vec<T> {
    use rayon::prelude::*;
    if let Some(dw) = d.direct().and_then(|s| T::direct_weight_grad3x3(x, dy, &s)) {
        return dw;
    }
    let (p, g, og, cgkk) = (d.p(), d.g.groups, d.og(), d.cgkk());
    let Plan {
        threads,
        split,
        chunk,
        par,
    } = Plan::of::<T>(d);
    // dWᵀ += cols·dYᵀ over the samples n0..n0+nc, per group a (CgKK, Og) block. Both
    // operands run along the reduced axis (the columns), so the gemm must gather one of
    // them into panels element by element: written as dWᵀ, that one is dY (Og rows), not
    // the K·K times larger column matrix (the gather took a seventh of a ResNet-20 step).
    let add_chunk = |n0: usize, dwt: &mut [T]| {
        let nc = chunk.min(d.n - n0);
        let ld = nc * p;
        with_chunk_columns(x, d, n0, nc, par, |cols| {
            with_chunk_rows(dy, d, n0, nc, par, |dyb| {
                for gi in 0..g {
                    // dYᵀ per group: the (nc·P, Og) view of the (Og, nc·P) block.
                    matmul(
                        [cgkk, og, ld],
                        &mut dwt[gi * og * cgkk..],
                        (og, 1),
                        true,
                        (&cols[gi * cgkk * ld..], ld, 1),
                        (&dyb[gi * og * ld..], 1, ld),
                        par.gemm,
                    );
                }
            })
        })
    };
    let starts: Vec<usize> = (0..d.n).step_by(chunk).collect();
    let len = d.o * cgkk;
    let dwt = match split {
        // A fixed block of chunks per thread, the blocks' sums added in order: the
        // same bits every run (rayon's fold would split where work-stealing falls).
        Split::Chunks => {
            let blocks: Vec<Vec<T>> = starts
                .par_chunks(starts.len().div_ceil(threads))
                .map(|block| {
                    let mut dw = vec![T::ZERO; len];
                    for &n0 in block {
                        add_chunk(n0, &mut dw);
                    }
                    dw
                })
                .collect();
            let mut blocks = blocks.into_iter();
            let mut dw = blocks.next().unwrap_or_else(|| vec![T::ZERO; len]);
            for b in blocks {
                for (a, b) in dw.iter_mut().zip(b) {
                    *a += b;
                }
            }
            dw
        }
        Split::Within => {
            let mut dw = vec![T::ZERO; len];
            for &n0 in &starts {
                add_chunk(n0, &mut dw);
            }
            dw
        }
    };
    // (CgKK, Og) blocks back to the weights' (Og, CgKK).
    let mut dw = vec![T::ZERO; len];
    let block = og * cgkk;
    for (src, dst) in dwt.chunks(block.max(1)).zip(dw.chunks_mut(block.max(1))) {
        transpose(src, cgkk, og, dst);
    }
    dw
}

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
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let x = contiguous_slice::<f32>(self.name(), s1, l1)?;
                CpuStorage::F32(conv_fwd(
                    x,
                    contiguous_slice(self.name(), s2, l2)?,
                    &d,
                    None,
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let x = contiguous_slice::<f64>(self.name(), s1, l1)?;
                CpuStorage::F64(conv_fwd(
                    x,
                    contiguous_slice(self.name(), s2, l2)?,
                    &d,
                    None,
                ))
            }
            _ => return dtype_error(self.name(), s1, Some(s2)),
        };
        Ok((st, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
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
            Some(x.apply_op2_no_bwd(
                &dy,
                &Conv2dBwdFilter {
                    g: self.0,
                    w_dims: w.dims4()?,
                },
            )?)
        } else {
            None
        };
        Ok((dx, dw))
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
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let dy = contiguous_slice::<f32>(self.name(), s1, l1)?;
                CpuStorage::F32(conv_bwd_data(
                    dy,
                    contiguous_slice(self.name(), s2, l2)?,
                    &d,
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let dy = contiguous_slice::<f64>(self.name(), s1, l1)?;
                CpuStorage::F64(conv_bwd_data(
                    dy,
                    contiguous_slice(self.name(), s2, l2)?,
                    &d,
                ))
            }
            _ => return dtype_error(self.name(), s1, Some(s2)),
        };
        Ok((st, Shape::from(self.x_dims)))
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
        let st = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let x = contiguous_slice::<f32>(self.name(), s1, l1)?;
                let dy = contiguous_slice::<f32>(self.name(), s2, l2)?;
                CpuStorage::F32(conv_bwd_filter(x, dy, &d))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let x = contiguous_slice::<f64>(self.name(), s1, l1)?;
                let dy = contiguous_slice::<f64>(self.name(), s2, l2)?;
                CpuStorage::F64(conv_bwd_filter(x, dy, &d))
            }
            _ => return dtype_error(self.name(), s1, Some(s2)),
        };
        Ok((st, Shape::from(self.w_dims)))
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
    let x = x.contiguous()?;
    let weight = weight.contiguous()?;
    x.apply_op2(&weight, Conv2dOp(*g))
}

/// Inference's convolution: `relu(conv(x, w) + bias[o])` (without `relu`, no clamp) in
/// one pass, bias and ReLU applied to each chunk as the gemm leaves it. No gradient: the
/// model calls it only when nothing is recorded (a batch norm in evaluation mode folded
/// into `w` and `bias`).
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
    x.contiguous()?.apply_op3_no_bwd(
        &weight.contiguous()?,
        &bias.contiguous()?,
        &Conv2dBiasRelu { g: *g, relu },
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
        let relu = self.relu;
        let st = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let x = contiguous_slice::<f32>(self.name(), s1, l1)?;
                let w = contiguous_slice(self.name(), s2, l2)?;
                let bias = contiguous_slice(self.name(), s3, l3)?;
                CpuStorage::F32(conv_fwd(x, w, &d, Some(Epilogue { bias, relu })))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let x = contiguous_slice::<f64>(self.name(), s1, l1)?;
                let w = contiguous_slice(self.name(), s2, l2)?;
                let bias = contiguous_slice(self.name(), s3, l3)?;
                CpuStorage::F64(conv_fwd(x, w, &d, Some(Epilogue { bias, relu })))
            }
            _ => return dtype_error(self.name(), s1, Some(s2)),
        };
        Ok((st, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_range;

    #[test]
    fn valid_range_matches_brute_force() {
        for k_off in 0..6 {
            for pad in 0..4 {
                for stride in 1..4 {
                    for len in 1..7 {
                        for out in 0..8 {
                            let ok: Vec<usize> = (0..out)
                                .filter(|&o| {
                                    let i = (o * stride + k_off) as isize - pad as isize;
                                    i >= 0 && i < len as isize
                                })
                                .collect();
                            let (lo, hi) = valid_range(k_off, pad, stride, len, out);
                            let got: Vec<usize> = (lo..hi).collect();
                            assert_eq!(
                                ok, got,
                                "k_off {k_off} pad {pad} s {stride} len {len} out {out}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use candle_core::Device;
    use std::time::Instant;

    /// Times the three phases of ResNet-18's 3x3 stride-1 convs (64 channels on 32x32 ...
    /// 512 on 4x4, the CIFAR variant; other CxHW shapes from CNNCOST_BENCH_SHAPES)
    /// separately, as GFLOP/s against the machine's ceiling (release, --ignored
    /// --nocapture; CNNCOST_BENCH_BATCH, default 128).
    #[test]
    #[ignore]
    fn conv_phases() -> Result<()> {
        let n: usize = std::env::var("CNNCOST_BENCH_BATCH")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(128);
        // The runtime's allocator settings (configure_process).
        crate::kernels::util::keep_freed_memory();
        let ceiling = fma_ceiling();
        println!(
            "fp32 FMA ceiling, {} threads: {ceiling:.0} GFLOP/s",
            num_threads()
        );
        // CNNCOST_BENCH_SHAPES=16x32,32x16,64x8 for ResNet-20's.
        let shapes: Vec<(usize, usize)> = std::env::var("CNNCOST_BENCH_SHAPES")
            .ok()
            .map(|v| {
                v.split(',')
                    .filter_map(|s| s.split_once('x'))
                    .filter_map(|(c, hw)| Some((c.parse().ok()?, hw.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_else(|| vec![(64, 32), (128, 16), (256, 8), (512, 4)]);
        for (c, hw) in shapes {
            println!("3x3 conv {c}->{c} on {hw}x{hw}, batch {n}:");
            conv_phases_of(n, c, hw, ceiling)?;
        }
        Ok(())
    }

    /// This machine's fp32 FMA ceiling in GFLOP/s, measured: every thread runs twelve
    /// independent chains of fused multiply-adds at the widest vector width it has
    /// (AVX-512, else AVX2). The 230 GFLOP/s is a Zen 4, whose AVX-512 runs on
    /// half-width datapaths; a Zen 5 has full-width ones.
    fn fma_ceiling() -> f64 {
        const ITERS: u64 = 20_000_000;
        /// Twelve named chains (an array made the compiler rotate registers).
        macro_rules! chains {
            ($fmadd:ident, $set1:ident, $add:ident, $ty:ty) => {{
                let (a, b, one) = ($set1(0.999_999), $set1(1e-7), $set1(1.0));
                let (mut c0, mut c1, mut c2, mut c3) = (one, one, one, one);
                let (mut c4, mut c5, mut c6, mut c7) = (one, one, one, one);
                let (mut c8, mut c9, mut c10, mut c11) = (one, one, one, one);
                for _ in 0..ITERS {
                    c0 = $fmadd(c0, a, b);
                    c1 = $fmadd(c1, a, b);
                    c2 = $fmadd(c2, a, b);
                    c3 = $fmadd(c3, a, b);
                    c4 = $fmadd(c4, a, b);
                    c5 = $fmadd(c5, a, b);
                    c6 = $fmadd(c6, a, b);
                    c7 = $fmadd(c7, a, b);
                    c8 = $fmadd(c8, a, b);
                    c9 = $fmadd(c9, a, b);
                    c10 = $fmadd(c10, a, b);
                    c11 = $fmadd(c11, a, b);
                }
                let s: $ty = [c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11]
                    .into_iter()
                    .fold(c0, |s, v| $add(s, v));
                std::mem::transmute::<$ty, [f32; std::mem::size_of::<$ty>() / 4]>(s)
                    .iter()
                    .sum::<f32>()
            }};
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512() -> f32 {
            use std::arch::x86_64::*;
            chains!(_mm512_fmadd_ps, _mm512_set1_ps, _mm512_add_ps, __m512)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2() -> f32 {
            use std::arch::x86_64::*;
            chains!(_mm256_fmadd_ps, _mm256_set1_ps, _mm256_add_ps, __m256)
        }
        #[cfg(target_arch = "x86_64")]
        let run: Option<(fn() -> f32, f64)> = if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected at run time.
            Some((|| unsafe { avx512() }, 12.0 * 16.0 * 2.0))
        } else if std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            Some((|| unsafe { avx2() }, 12.0 * 8.0 * 2.0))
        } else {
            None
        };
        #[cfg(not(target_arch = "x86_64"))]
        let run: Option<(fn() -> f32, f64)> = None;
        let Some((f, flops_per_iter)) = run else {
            return f64::NAN;
        };
        let threads = num_threads();
        let t = Instant::now();
        let sink: f32 = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads).map(|_| sc.spawn(f)).collect();
            hs.into_iter().map(|h| h.join().unwrap_or(f32::NAN)).sum()
        });
        let secs = t.elapsed().as_secs_f64();
        assert!(sink.is_finite());
        threads as f64 * ITERS as f64 * flops_per_iter / secs / 1e9
    }

    fn conv_phases_of(n: usize, ch: usize, hw: usize, ceiling: f64) -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (n, ch, hw, hw), &dev)?;
        let w = Tensor::randn(0f32, 0.05, (ch, ch, 3, 3), &dev)?;
        let g = Conv2dGeometry::uniform(1, 1, 1, 1);
        let flops = 2.0 * (n * ch * hw * hw * ch * 9) as f64;
        // CPU seconds of this process (utime + stime, 100 Hz ticks): robust against other
        // processes sharing the cores, unlike the wall time.
        let cpu = || -> f64 {
            let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let f: Vec<&str> = s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (t(11) + t(12)) / 100.0
        };
        let time = |what: &str, f: &dyn Fn() -> Result<Tensor>| -> Result<()> {
            f()?;
            let mut best = f64::INFINITY;
            let (c0, t0) = (cpu(), Instant::now());
            let reps = 8;
            for _ in 0..reps {
                let t = Instant::now();
                f()?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            let (c, wall) = (
                (cpu() - c0) / reps as f64,
                t0.elapsed().as_secs_f64() / reps as f64,
            );
            println!(
                "{what:<12} best {:7.1} ms {:6.1} GFLOP/s ({:3.0}% of {ceiling:.0}) | mean wall {:7.1} ms, cpu {:7.1} ms: {:6.1} GFLOP per cpu-second",
                best * 1e3,
                flops / best / 1e9,
                100.0 * flops / best / 1e9 / ceiling,
                wall * 1e3,
                c * 1e3,
                flops / c / 1e9
            );
            Ok(())
        };
        let a = Tensor::randn(0f32, 1., (ch, ch * 9), &dev)?;
        let b = Tensor::randn(0f32, 1., (n, ch * 9, hw * hw), &dev)?;
        time("raw gemm", &|| a.broadcast_left(n)?.matmul(&b))?;
        let y = x.apply_op2_no_bwd(&w, &Conv2dOp(g))?;
        time("forward", &|| x.apply_op2_no_bwd(&w, &Conv2dOp(g)))?;
        let data = Conv2dBwdData {
            g,
            x_dims: x.dims4()?,
        };
        time("bwd data", &|| y.apply_op2_no_bwd(&w, &data))?;
        let filt = Conv2dBwdFilter {
            g,
            w_dims: w.dims4()?,
        };
        time("bwd filter", &|| x.apply_op2_no_bwd(&y, &filt))?;
        Ok(())
    }
}
