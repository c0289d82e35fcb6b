//! Winograd's minimal filtering F(4x4, 3x3) for 3x3 stride-1 convolutions (Lavin and
//! Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016): every 4x4
//! output tile comes from a 6x6 input tile with 36 multiplications per pair of input and
//! output channels instead of 144, a quarter of im2col's arithmetic.
//!
//! With `d` a 6x6 input tile and `g` a 3x3 filter, the 4x4 output is
//! `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. Summed over the input channels, the elementwise product
//! becomes 36 matrix products, one per tile position ξ: `M[ξ] (tiles, K) = V[ξ] (tiles, C)
//! · U[ξ] (C, K)`, run by the `gemm` crate. The transforms run with the channels as the
//! vector lanes (the "channels-last" layout inside a call), so they vectorise on any
//! map size, down to ResNet-18's 4x4 maps (one tile per image).
//!
//! The work goes in chunks of tile rows ("bands", 4 output rows of one sample). Per band:
//! the 6 input rows it reads are transposed to (row, column, channel), each tile
//! transformed into V; the 36 products; each tile of M transformed back, with a bias and
//! ReLU when asked, and transposed into the (N, K, OH, OW) output.
//!
//! Accuracy: the transforms' coefficients (up to 5 in Bᵀ, 8 in Aᵀ, 1/24 in G) cost a few
//! bits over direct summation; in f32 the error stays near 1e-6 of the output's magnitude
//! on unit-scale inputs (tested against the naive loop and the PyTorch fixtures).

// The transforms index 6x6 tiles along both axes; iterators over one would hide that.
#![allow(clippy::needless_range_loop)]

use super::geometry::Conv3x3;
use crate::kernels::matmul::matmul;
use crate::kernels::util::{
    num_threads, relu_of, transpose, vectorised, with_scratch, Disjoint, Elem,
};

/// Output tile side.
const TILE: usize = 4;
/// Input tile side: TILE + 3 − 1.
const WIN: usize = 6;
/// Tile positions: the 36 products.
const XI: usize = WIN * WIN;
/// Channels per vector step of the transforms.
const LANES: usize = 16;

impl Conv3x3 {
    /// Tile rows per sample.
    fn th(&self) -> usize {
        self.oh.div_ceil(TILE)
    }
    /// Tiles per band.
    fn tw(&self) -> usize {
        self.ow.div_ceil(TILE)
    }
    /// Columns of a band's input rows: every tile's window, the last one's overhang zero.
    fn band_cols(&self) -> usize {
        TILE * self.tw() + WIN - TILE
    }
    fn bands(&self) -> usize {
        self.n * self.th()
    }
}

/// `relu(conv(x, w) + bias[k])` (no bias: none; no ReLU: no clamp) of `x` (N, C, H, W)
/// with `w` (K, C, 3, 3), stride 1, dilation 1, one group; (N, K, OH, OW).
pub(super) fn conv3x3<T: Elem>(
    x: &[T],
    w: &[T],
    s: &Conv3x3,
    bias: Option<&[T]>,
    relu: bool,
) -> Vec<T> {
    use rayon::prelude::*;
    // Written once, tile by tile: never zeroed first (a 33 MB memset on ResNet-18's
    // first stage).
    let len = s.n * s.k * s.oh * s.ow;
    let mut y: Vec<T> = Vec::with_capacity(len);
    if len == 0 {
        return y;
    }
    let out = Disjoint::uninit(&mut y, len);
    let u = transform_weights(w, s.k, s.c);
    let (bands, tw) = (s.bands(), s.tw());
    let threads = num_threads();
    // Tiles per chunk: V and M within about 1 MiB (the L2 cache), and at least as many
    // tiles as the larger channel count, or the 36 weight matrices are re-read for too
    // little work. (6 MiB ran ResNet-20's inference 8% slower and VGG-16's 5%; 512 KiB
    // no faster than 1 MiB.)
    let tile_bytes = XI * (s.c + s.k) * std::mem::size_of::<T>();
    let target = ((1usize << 20) / tile_bytes).max(s.c.max(s.k));
    let per_chunk = target.div_ceil(tw).clamp(1, bands);
    let chunks = bands.div_ceil(per_chunk);
    let run = |b0: usize, nb: usize, par: bool| {
        let t = nb * tw;
        with_scratch(0, XI * t * s.c, |v: &mut [T]| {
            let vd = Disjoint::of(v);
            // SAFETY: band i writes the tiles i·tw..(i+1)·tw of each ξ only.
            let input = |i: usize| unsafe { transform_band_input(x, s, b0 + i, i * tw, t, vd) };
            if par {
                (0..nb).into_par_iter().for_each(input);
            } else {
                (0..nb).for_each(input);
            }
            let v: &[T] = v;
            with_scratch(1, XI * t * s.k, |m: &mut [T]| {
                let gemm = |(xi, m): (usize, &mut [T])| {
                    matmul(
                        [t, s.k, s.c],
                        m,
                        (s.k, 1),
                        false,
                        (&v[xi * t * s.c..][..t * s.c], s.c, 1),
                        (&u[xi * s.c * s.k..][..s.c * s.k], s.k, 1),
                        gemm::Parallelism::None,
                    )
                };
                if par {
                    m.par_chunks_mut(t * s.k).enumerate().for_each(gemm);
                } else {
                    m.chunks_mut(t * s.k).enumerate().for_each(gemm);
                }
                let m: &[T] = m;
                let output = |i: usize| {
                    // SAFETY: band b0 + i writes only its own output rows.
                    unsafe { transform_band_output(m, s, b0 + i, i * tw, t, bias, relu, out) }
                };
                if par {
                    (0..nb).into_par_iter().for_each(output);
                } else {
                    (0..nb).for_each(output);
                }
            })
        })
    };
    if threads > 1 && chunks >= 2 * threads {
        (0..chunks).into_par_iter().for_each(|ci| {
            let b0 = ci * per_chunk;
            run(b0, per_chunk.min(bands - b0), false)
        });
    } else {
        for ci in 0..chunks {
            let b0 = ci * per_chunk;
            run(b0, per_chunk.min(bands - b0), threads > 1)
        }
    }
    // SAFETY: the bands 0..N·th cover every (sample, channel, row, column) of y once.
    unsafe { y.set_len(len) };
    y
}

/// U[ξ][c][k] = (G g Gᵀ)[ξ] for every filter g = w[k, c] (K, C, 3, 3): per ξ a (C, K)
/// matrix.
fn transform_weights<T: Elem>(w: &[T], k: usize, c: usize) -> Vec<T> {
    use rayon::prelude::*;
    // (K, C·9) -> (C·9, K): the nine taps of each channel as vectors over K.
    let mut wt = vec![T::ZERO; w.len()];
    transpose(w, k, c * 9, &mut wt);
    let mut u = vec![T::ZERO; XI * c * k];
    let out = Disjoint::of(&mut u);
    let block = 8;
    (0..c.div_ceil(block)).into_par_iter().for_each(|i| {
        let c0 = i * block;
        let nc = block.min(c - c0);
        // SAFETY: block i writes the rows c0..c0 + nc of each ξ only.
        unsafe { weight_block(&wt[c0 * 9 * k..][..nc * 9 * k], k, c, c0, out) }
    });
    u
}

vectorised! {
    /// Input channels c0.. (as many as `taps` holds, nine vectors over K each):
    /// U[ξ][c][·] from taps[c][i·3 + j][·].
    unsafe fn weight_block[T: Elem](
        taps: &[T],
        k: usize,
        c: usize,
        c0: usize,
        u: Disjoint<T>,
    ) = weight_block_body;
}

#[inline(always)]
unsafe fn weight_block_body<T: Elem>(taps: &[T], k: usize, c: usize, c0: usize, u: Disjoint<T>) {
    for (j, taps) in taps.chunks_exact(9 * k).enumerate() {
        let mut k0 = 0;
        while k0 + LANES <= k {
            // SAFETY: channel c0 + j's rows of U are this task's (the caller's contract).
            unsafe { weight_lanes::<T, LANES>(taps, k, k0, (c0 + j) * k, c * k, u) };
            k0 += LANES;
        }
        for l in k0..k {
            // SAFETY: as above.
            unsafe { weight_lanes::<T, 1>(taps, k, l, (c0 + j) * k, c * k, u) };
        }
    }
}

/// Lanes k0..k0+N of one channel's 36 vectors: U[ξ] at `row + k0`, ξ apart by `xi_stride`.
#[inline(always)]
unsafe fn weight_lanes<T: Elem, const N: usize>(
    taps: &[T],
    k: usize,
    k0: usize,
    row: usize,
    xi_stride: usize,
    u: Disjoint<T>,
) {
    let g: [[[T; N]; 3]; 3] =
        std::array::from_fn(|i| std::array::from_fn(|j| load(taps, (i * 3 + j) * k + k0)));
    // Columns first: col[j] = G · g[·][j].
    let col: [[[T; N]; WIN]; 3] = std::array::from_fn(|j| g3(&[g[0][j], g[1][j], g[2][j]]));
    for a in 0..WIN {
        let r = g3(&[col[0][a], col[1][a], col[2][a]]);
        for (b, r) in r.iter().enumerate() {
            // SAFETY: lanes k0..k0+N of this channel's row of U[ξ]: the caller's alone.
            unsafe { u.put((a * WIN + b) * xi_stride + row + k0, r) };
        }
    }
}

/// G·g for three vectors g (lane by lane): G = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6;
/// 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1].
#[inline(always)]
fn g3<T: Elem, const N: usize>(g: &[[T; N]; 3]) -> [[T; N]; WIN] {
    let f = |v: f64| T::from_f64(v);
    let (q, s6, t24, t12) = (f(0.25), f(1.0 / 6.0), f(1.0 / 24.0), f(1.0 / 12.0));
    let mut r = [[T::ZERO; N]; WIN];
    for l in 0..N {
        let [g0, g1, g2] = [g[0][l], g[1][l], g[2][l]];
        let (even, odd) = (g0 + g2, g1);
        r[0][l] = g0 * q;
        r[1][l] = T::ZERO - (even + odd) * s6;
        r[2][l] = T::ZERO - (even - odd) * s6;
        r[3][l] = g0 * t24 + g1 * t12 + g2 * s6;
        r[4][l] = g0 * t24 - g1 * t12 + g2 * s6;
        r[5][l] = g2;
    }
    r
}

/// Bᵀ·d for six vectors d (lane by lane): Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0;
/// 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
#[inline(always)]
fn bt6<T: Elem, const N: usize>(d: &[[T; N]; WIN]) -> [[T; N]; WIN] {
    let (c2, c4, c5) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(5.0));
    let mut r = [[T::ZERO; N]; WIN];
    for l in 0..N {
        let [d0, d1, d2, d3, d4, d5] = [d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]];
        r[0][l] = c4 * d0 - c5 * d2 + d4;
        r[1][l] = d3 + d4 - c4 * (d1 + d2);
        r[2][l] = c4 * (d1 - d2) + d4 - d3;
        r[3][l] = c2 * (d3 - d1) + d4 - d2;
        r[4][l] = c2 * (d1 - d3) + d4 - d2;
        r[5][l] = c4 * d1 - c5 * d3 + d5;
    }
    r
}

/// Aᵀ·m for six vectors m: Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
#[inline(always)]
fn at6<T: Elem, const N: usize>(m: &[[T; N]; WIN]) -> [[T; N]; TILE] {
    let (c2, c4, c8) = (T::from_f64(2.0), T::from_f64(4.0), T::from_f64(8.0));
    let mut r = [[T::ZERO; N]; TILE];
    for l in 0..N {
        let [m0, m1, m2, m3, m4, m5] = [m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]];
        let (s12, d12, s34, d34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        r[0][l] = m0 + s12 + s34;
        r[1][l] = d12 + c2 * d34;
        r[2][l] = s12 + c4 * s34;
        r[3][l] = d12 + c8 * d34 + m5;
    }
    r
}

/// Loads `N` lanes at `src[at..]`.
#[inline(always)]
fn load<T: Elem, const N: usize>(src: &[T], at: usize) -> [T; N] {
    src[at..at + N].try_into().expect("N lanes")
}

/// The tiles of band `band` (sample, tile row) into V[ξ][t0 + tx][c] (V holds `t` tiles
/// per ξ).
///
/// # Safety
/// No other task writes those tiles meanwhile.
unsafe fn transform_band_input<T: Elem>(
    x: &[T],
    s: &Conv3x3,
    band: usize,
    t0: usize,
    t: usize,
    v: Disjoint<T>,
) {
    let (c, wp) = (s.c, s.band_cols());
    let (n, ty) = (band / s.th(), band % s.th());
    let plane = s.h * s.w;
    let xs = &x[n * c * plane..][..c * plane];
    with_scratch(2, WIN * wp * c, |rows: &mut [T]| {
        // SAFETY: the band's tiles are the caller's alone (this fn's contract).
        unsafe { band_input(xs, s, ty, rows, t0, t, v) }
    })
}

vectorised! {
    unsafe fn band_input[T: Elem](
        xs: &[T],
        s: &Conv3x3,
        ty: usize,
        rows: &mut [T],
        t0: usize,
        t: usize,
        v: Disjoint<T>,
    ) = band_input_body;
}

#[inline(always)]
unsafe fn band_input_body<T: Elem>(
    xs: &[T],
    s: &Conv3x3,
    ty: usize,
    rows: &mut [T],
    t0: usize,
    t: usize,
    v: Disjoint<T>,
) {
    band_rows(xs, s, ty, rows);
    // SAFETY: the tiles t0..t0 + tw are the caller's alone.
    unsafe { band_input_tiles(rows, s, t0, t, v) }
}

/// rows[r][q][c] = x[c][4·ty + r − pad_top][q − pad_left] of one sample, zero outside.
#[inline(always)]
fn band_rows<T: Elem>(xs: &[T], s: &Conv3x3, ty: usize, rows: &mut [T]) {
    let (c, wp) = (s.c, s.band_cols());
    let plane = s.h * s.w;
    // Columns q = ix + pad_left for ix in 0..cols hold data, the rest zero.
    let lead = s.pad[1].min(wp);
    let cols = s.w.min(wp - lead);
    for r in 0..WIN {
        let dst = &mut rows[r * wp * c..][..wp * c];
        let iy = (TILE * ty + r) as isize - s.pad[0] as isize;
        if iy < 0 || iy >= s.h as isize {
            dst.fill(T::ZERO);
            continue;
        }
        let iy = iy as usize;
        dst[..lead * c].fill(T::ZERO);
        dst[(lead + cols) * c..].fill(T::ZERO);
        let data = &mut dst[lead * c..(lead + cols) * c];
        // Channel by channel: each source row is read in order, the band (a few KiB)
        // takes the strided writes in L1. (Pixel by pixel, every read was a new page.)
        for ci in 0..c {
            let src = &xs[ci * plane + iy * s.w..][..cols];
            for (ix, &v) in src.iter().enumerate() {
                data[ix * c + ci] = v;
            }
        }
    }
}

#[inline(always)]
unsafe fn band_input_tiles<T: Elem>(rows: &[T], s: &Conv3x3, t0: usize, t: usize, v: Disjoint<T>) {
    let (c, wp) = (s.c, s.band_cols());
    for tx in 0..s.tw() {
        let ti = t0 + tx;
        let mut c0 = 0;
        while c0 + LANES <= c {
            // SAFETY: tile ti is among the caller's.
            unsafe { input_tile::<T, LANES>(rows, wp, c, tx, c0, ti, t, v) };
            c0 += LANES;
        }
        for ci in c0..c {
            // SAFETY: as above.
            unsafe { input_tile::<T, 1>(rows, wp, c, tx, ci, ti, t, v) };
        }
    }
}

/// One tile's lanes c0..c0+N: V[ξ][ti][c0..] = (Bᵀ d B)[ξ].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn input_tile<T: Elem, const N: usize>(
    rows: &[T],
    wp: usize,
    c: usize,
    tx: usize,
    c0: usize,
    ti: usize,
    t: usize,
    v: Disjoint<T>,
) {
    // Columns first: col[j][a] = Σ_r Bᵀ[a][r] d[r][j].
    let mut col = [[[T::ZERO; N]; WIN]; WIN];
    for (j, col) in col.iter_mut().enumerate() {
        let q = TILE * tx + j;
        let d: [[T; N]; WIN] = std::array::from_fn(|r| load(rows, (r * wp + q) * c + c0));
        *col = bt6(&d);
    }
    // Then rows: V[a][b] = Σ_j Bᵀ[b][j] col[j][a].
    for a in 0..WIN {
        let d: [[T; N]; WIN] = std::array::from_fn(|j| col[j][a]);
        let r = bt6(&d);
        for (b, r) in r.iter().enumerate() {
            // SAFETY: tile ti's lanes c0..c0+N of V[ξ]: the caller's alone.
            unsafe { v.put(((a * WIN + b) * t + ti) * c + c0, r) };
        }
    }
}

/// The tiles of band `band` from M[ξ][t0 + tx][k] into y (N, K, OH, OW), cropped, with
/// the bias and ReLU.
///
/// # Safety
/// `y` points at the whole (N, K, OH, OW) output; no other thread writes this band's rows.
#[allow(clippy::too_many_arguments)]
unsafe fn transform_band_output<T: Elem>(
    m: &[T],
    s: &Conv3x3,
    band: usize,
    t0: usize,
    t: usize,
    bias: Option<&[T]>,
    relu: bool,
    y: Disjoint<T>,
) {
    with_scratch(3, TILE * TILE * s.tw() * s.k, |rows: &mut [T]| {
        // SAFETY: this band's output rows are the caller's alone (this fn's contract).
        unsafe { band_output(m, s, band, t0, t, bias, relu, y, rows) }
    })
}

vectorised! {
    /// [`transform_band_output`]'s body; writes through `y` as it says.
    unsafe fn band_output[T: Elem](
        m: &[T],
        s: &Conv3x3,
        band: usize,
        t0: usize,
        t: usize,
        bias: Option<&[T]>,
        relu: bool,
        y: Disjoint<T>,
        rows: &mut [T],
    ) = band_output_body;
}

/// rows[a][q][k]: the band's 4 output rows, channels last, then transposed into y.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn band_output_body<T: Elem>(
    m: &[T],
    s: &Conv3x3,
    band: usize,
    t0: usize,
    t: usize,
    bias: Option<&[T]>,
    relu: bool,
    y: Disjoint<T>,
    rows: &mut [T],
) {
    let (k, tw) = (s.k, s.tw());
    let wo = TILE * tw;
    let (n, ty) = (band / s.th(), band % s.th());
    for tx in 0..tw {
        let ti = t0 + tx;
        let mut k0 = 0;
        while k0 + LANES <= k {
            output_tile::<T, LANES>(m, wo, k, tx, k0, ti, t, bias, relu, rows);
            k0 += LANES;
        }
        for ki in k0..k {
            output_tile::<T, 1>(m, wo, k, tx, ki, ti, t, bias, relu, rows);
        }
    }
    let plane = s.oh * s.ow;
    let y0 = TILE * ty;
    let nrows = TILE.min(s.oh - y0);
    for ki in 0..k {
        // SAFETY: rows y0..y0+nrows of channel ki of sample n are this band's alone (the
        // caller's contract).
        let dst = unsafe { y.slice((n * k + ki) * plane + y0 * s.ow, nrows * s.ow) };
        for (a, dst) in dst.chunks_exact_mut(s.ow).enumerate() {
            for (ox, d) in dst.iter_mut().enumerate() {
                d.write(rows[(a * wo + ox) * k + ki]);
            }
        }
    }
}

/// One tile's lanes k0..k0+N: rows[a][4·tx + b][k0..] = relu((Aᵀ M A)[a][b] + bias).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_tile<T: Elem, const N: usize>(
    m: &[T],
    wo: usize,
    k: usize,
    tx: usize,
    k0: usize,
    ti: usize,
    t: usize,
    bias: Option<&[T]>,
    relu: bool,
    rows: &mut [T],
) {
    // Columns first: col[b][a] = Σ_r Aᵀ[a][r] M[r][b].
    let mut col = [[[T::ZERO; N]; TILE]; WIN];
    for (b, col) in col.iter_mut().enumerate() {
        let d: [[T; N]; WIN] = std::array::from_fn(|r| load(m, ((r * WIN + b) * t + ti) * k + k0));
        *col = at6(&d);
    }
    let add: [T; N] = match bias {
        Some(bias) => load(bias, k0),
        None => [T::ZERO; N],
    };
    for a in 0..TILE {
        let d: [[T; N]; WIN] = std::array::from_fn(|b| col[b][a]);
        let r = at6(&d);
        for (b, r) in r.iter().enumerate() {
            let at = (a * wo + TILE * tx + b) * k + k0;
            let dst = &mut rows[at..at + N];
            for l in 0..N {
                let v = r[l] + add[l];
                dst[l] = if relu { relu_of(v) } else { v };
            }
        }
    }
}
