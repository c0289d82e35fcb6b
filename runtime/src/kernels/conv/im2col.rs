//! The column matrix of im2col and its inverse: [`im2col`] copies each output
//! position's input window into a column, [`col2im`] adds columns back into an input
//! gradient; [`gather_chunk`] and [`scatter_chunk`] move a chunk of samples between the
//! (samples, channels, positions) layout and the gemm's (channels, samples·positions).

use super::geometry::{valid_range, Dims};
use crate::kernels::util::{par_rows, Elem};

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
pub(super) fn im2col<T: Elem>(x: &[T], d: &Dims, nc: usize, cols: &mut [T], min_par: usize) {
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
pub(super) fn col2im<T: Elem>(dcols: &mut [T], d: &Dims, nc: usize, dx: &mut [T], min_par: usize) {
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
pub(super) fn gather_chunk<T: Elem>(
    src: &[T],
    o: usize,
    p: usize,
    nc: usize,
    dst: &mut [T],
    min_par: usize,
) {
    par_rows(dst, nc * p, min_par, |oi, row| {
        for s in 0..nc {
            row[s * p..][..p].copy_from_slice(&src[(s * o + oi) * p..][..p]);
        }
    });
}

/// (O, nc·P) -> (nc, O, P)
pub(super) fn scatter_chunk<T: Elem>(
    src: &[T],
    o: usize,
    p: usize,
    nc: usize,
    dst: &mut [T],
    min_par: usize,
) {
    par_rows(dst, p, min_par, |q, row| {
        let (s, oi) = (q / o, q % o);
        row.copy_from_slice(&src[oi * nc * p + s * p..][..p]);
    });
}
