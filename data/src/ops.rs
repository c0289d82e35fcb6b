//! Deterministic image operations behind the augmentations: geometry
//! (flip, pad-and-crop, resampling, affine maps), colour adjustments as
//! torchvision's functional API defines them, and the byte-level PIL
//! operations (posterize, solarize, equalize, autocontrast).
//!
//! Every operation works on an [`Image`]: f32 CHW on the pixel scale
//! (0..=255). Colour operations clamp to that range; geometric ones move
//! values unchanged and fill uncovered pixels with 0; the byte operations
//! first round each value to the nearest byte.

/// A CHW image with f32 values on the pixel scale (0 = black, 255 = white).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// C*H*W values, channel planes one after another, rows within a plane.
    pub data: Vec<f32>,
}

impl Image {
    /// All zeros.
    pub fn zeros(c: usize, h: usize, w: usize) -> Image {
        Image {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }

    /// From CHW bytes of `shape` = [C, H, W]. Panics if the length is wrong.
    pub fn from_u8(bytes: &[u8], shape: [usize; 3]) -> Image {
        let [c, h, w] = shape;
        assert_eq!(bytes.len(), c * h * w, "image is not {c}x{h}x{w}");
        Image {
            c,
            h,
            w,
            data: bytes.iter().map(|&b| b as f32).collect(),
        }
    }

    /// CHW bytes: each value rounded to the nearest integer and clamped to 0..=255.
    pub fn to_u8(&self) -> Vec<u8> {
        self.data.iter().map(|&v| to_byte(v)).collect()
    }

    pub fn shape(&self) -> [usize; 3] {
        [self.c, self.h, self.w]
    }

    fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Value at channel `ch`, row `y`, column `x`.
    pub fn at(&self, ch: usize, y: usize, x: usize) -> f32 {
        self.data[(ch * self.h + y) * self.w + x]
    }
}

/// Nearest byte, clamped (NaN becomes 0).
fn to_byte(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        v.round().clamp(0.0, 255.0) as u8
    }
}

/// Mirror left to right.
pub fn flip_h(img: &Image) -> Image {
    let mut out = img.clone();
    for row in out.data.chunks_exact_mut(img.w.max(1)) {
        row.reverse();
    }
    out
}

/// Output (y, x) is input (y + dy, x + dx), or 0 outside the input: the
/// image padded with zeros and cropped at offset (dy, dx) from its origin.
pub fn shift(img: &Image, dy: isize, dx: isize) -> Image {
    let mut out = Image::zeros(img.c, img.h, img.w);
    let (h, w) = (img.h as isize, img.w as isize);
    for ch in 0..img.c {
        for y in 0..h {
            let sy = y + dy;
            if sy < 0 || sy >= h {
                continue;
            }
            for x in 0..w {
                let sx = x + dx;
                if sx >= 0 && sx < w {
                    out.data[(ch * img.h + y as usize) * img.w + x as usize] =
                        img.data[(ch * img.h + sy as usize) * img.w + sx as usize];
                }
            }
        }
    }
    out
}

/// The window of `img` with top-left (top, left) and size out_h x out_w;
/// parts outside the image are 0.
pub fn crop(img: &Image, top: isize, left: isize, out_h: usize, out_w: usize) -> Image {
    let mut out = Image::zeros(img.c, out_h, out_w);
    for ch in 0..img.c {
        for y in 0..out_h {
            let sy = top + y as isize;
            if sy < 0 || sy >= img.h as isize {
                continue;
            }
            for x in 0..out_w {
                let sx = left + x as isize;
                if sx >= 0 && sx < img.w as isize {
                    out.data[(ch * out_h + y) * out_w + x] = img.at(ch, sy as usize, sx as usize);
                }
            }
        }
    }
    out
}

/// Weights of one output coordinate: the first input index and one weight per input.
struct Taps {
    start: usize,
    weights: Vec<f32>,
}

/// PIL's separable bilinear ("triangle") resampling of the input span
/// [lo, lo + len) onto `out` samples: each output sample covers
/// len/out inputs; the filter widens with that ratio when shrinking
/// (antialiasing), and is plain bilinear interpolation with half-pixel
/// centres when enlarging. Equal sizes give the identity.
fn taps(lo: usize, len: usize, out: usize, size: usize) -> Vec<Taps> {
    let scale = len as f64 / out as f64;
    let fscale = scale.max(1.0);
    let support = fscale; // triangle support 1, widened
    (0..out)
        .map(|i| {
            let centre = lo as f64 + (i as f64 + 0.5) * scale;
            let x0 = ((centre - support).floor().max(0.0)) as usize;
            let x1 = ((centre + support).ceil() as usize).min(size);
            let mut w: Vec<f64> = (x0..x1)
                .map(|j| {
                    let t = ((j as f64 + 0.5 - centre) / fscale).abs();
                    (1.0 - t).max(0.0)
                })
                .collect();
            let sum: f64 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            }
            Taps {
                start: x0,
                weights: w.into_iter().map(|v| v as f32).collect(),
            }
        })
        .collect()
}

/// Crops the box (top, left, h, w), which must lie inside the image, and
/// resizes it to out_h x out_w with antialiased bilinear resampling (as
/// PIL's BILINEAR, which torchvision's resized crops use on images).
#[allow(clippy::too_many_arguments)]
pub fn resized_crop(
    img: &Image,
    top: usize,
    left: usize,
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
) -> Image {
    assert!(
        top + h <= img.h && left + w <= img.w && h > 0 && w > 0,
        "crop box outside the image"
    );
    let tx = taps(left, w, out_w, img.w);
    let ty = taps(top, h, out_h, img.h);
    // Horizontal pass over the rows the vertical taps need (all of them, simply).
    let mut mid = vec![0f32; img.c * img.h * out_w];
    for ch in 0..img.c {
        for y in 0..img.h {
            let row = &img.data[(ch * img.h + y) * img.w..(ch * img.h + y + 1) * img.w];
            let orow = &mut mid[(ch * img.h + y) * out_w..(ch * img.h + y + 1) * out_w];
            for (o, t) in orow.iter_mut().zip(&tx) {
                *o = t
                    .weights
                    .iter()
                    .zip(&row[t.start..])
                    .map(|(a, b)| a * b)
                    .sum();
            }
        }
    }
    let mut out = Image::zeros(img.c, out_h, out_w);
    for ch in 0..img.c {
        for (y, t) in ty.iter().enumerate() {
            for x in 0..out_w {
                let mut s = 0f32;
                for (k, wt) in t.weights.iter().enumerate() {
                    s += wt * mid[(ch * img.h + t.start + k) * out_w + x];
                }
                out.data[(ch * out_h + y) * out_w + x] = s;
            }
        }
    }
    out
}

/// Resizes the whole image to out_h x out_w (see [`resized_crop`]).
pub fn resize(img: &Image, out_h: usize, out_w: usize) -> Image {
    resized_crop(img, 0, 0, img.h, img.w, out_h, out_w)
}

/// An inverse affine map, as PIL takes it: output pixel (x, y) takes the
/// input pixel containing point (a*u + b*v + c, d*u + e*v + f), where
/// (u, v) = (x + 0.5, y + 0.5) is the output pixel's centre; nearest
/// neighbour; outside the input is 0.
pub fn affine_inverse(img: &Image, m: [f64; 6]) -> Image {
    let mut out = Image::zeros(img.c, img.h, img.w);
    let plane = img.plane();
    for y in 0..img.h {
        let v = y as f64 + 0.5;
        for x in 0..img.w {
            let u = x as f64 + 0.5;
            let sx = m[0] * u + m[1] * v + m[2];
            let sy = m[3] * u + m[4] * v + m[5];
            if sx < 0.0 || sy < 0.0 {
                continue;
            }
            let (ix, iy) = (sx.floor() as usize, sy.floor() as usize);
            if ix >= img.w || iy >= img.h {
                continue;
            }
            for ch in 0..img.c {
                out.data[ch * plane + y * img.w + x] = img.data[ch * plane + iy * img.w + ix];
            }
        }
    }
    out
}

/// Counter-clockwise rotation by `degrees` about the image centre,
/// nearest neighbour, zero fill (PIL's `Image.rotate`, as torchvision's
/// `F.rotate` on images).
pub fn rotate(img: &Image, degrees: f64) -> Image {
    let a = -degrees.to_radians();
    // PIL rounds the matrix to 15 decimals so that right angles are exact.
    let r = |v: f64| (v * 1e15).round() / 1e15;
    let (cos, sin) = (r(a.cos()), r(a.sin()));
    let (cx, cy) = (img.w as f64 * 0.5, img.h as f64 * 0.5);
    let c = cos * -cx + sin * -cy + cx;
    let f = -sin * -cx + cos * -cy + cy;
    affine_inverse(img, [cos, sin, c, -sin, cos, f])
}

/// Horizontal shear about the top-left corner: output (x, y) takes input
/// (x + m*y, y) (pixel centres): torchvision's `F.affine(shear=[atan(m) in
/// degrees, 0], center=[0, 0])`, RandAugment's ShearX.
pub fn shear_x(img: &Image, m: f64) -> Image {
    affine_inverse(img, [1.0, m, 0.0, 0.0, 1.0, 0.0])
}

/// Vertical shear: output (x, y) takes input (x, y + m*x).
pub fn shear_y(img: &Image, m: f64) -> Image {
    affine_inverse(img, [1.0, 0.0, 0.0, m, 1.0, 0.0])
}

/// Moves the content right by `t` pixels (left if negative), zero fill.
pub fn translate_x(img: &Image, t: isize) -> Image {
    shift(img, 0, -t)
}

/// Moves the content down by `t` pixels (up if negative), zero fill.
pub fn translate_y(img: &Image, t: isize) -> Image {
    shift(img, -t, 0)
}

/// ITU-R 601-2 luma, torchvision's `rgb_to_grayscale` weights.
fn gray_plane(img: &Image) -> Vec<f32> {
    let p = img.plane();
    if img.c < 3 {
        return img.data[..p].to_vec();
    }
    (0..p)
        .map(|k| 0.2989 * img.data[k] + 0.587 * img.data[p + k] + 0.114 * img.data[2 * p + k])
        .collect()
}

/// clamp(ratio*a + (1-ratio)*b) elementwise, in place on `a`.
fn blend_into(a: &mut [f32], b: impl Fn(usize) -> f32, ratio: f32) {
    for (k, v) in a.iter_mut().enumerate() {
        *v = (ratio * *v + (1.0 - ratio) * b(k)).clamp(0.0, 255.0);
    }
}

/// Multiplies every value by `factor`, clamped (torchvision `adjust_brightness`).
pub fn adjust_brightness(img: &Image, factor: f32) -> Image {
    let mut out = img.clone();
    blend_into(&mut out.data, |_| 0.0, factor);
    out
}

/// Blends with the mean of the grayscale image (torchvision `adjust_contrast`).
pub fn adjust_contrast(img: &Image, factor: f32) -> Image {
    let g = gray_plane(img);
    let mean = if g.is_empty() {
        0.0
    } else {
        (g.iter().map(|&v| v as f64).sum::<f64>() / g.len() as f64) as f32
    };
    let mut out = img.clone();
    blend_into(&mut out.data, |_| mean, factor);
    out
}

/// Blends with the grayscale image (torchvision `adjust_saturation`;
/// RandAugment's Color). A no-op on images with fewer than 3 channels.
pub fn adjust_saturation(img: &Image, factor: f32) -> Image {
    if img.c < 3 {
        return img.clone();
    }
    let g = gray_plane(img);
    let p = img.plane();
    let mut out = img.clone();
    blend_into(&mut out.data, |k| g[k % p], factor);
    out
}

/// Blends with a 3x3-smoothed copy (kernel 1 1 1 / 1 5 1 / 1 1 1, over 13,
/// rounded; border pixels unsmoothed), as PIL's and torchvision's
/// `adjust_sharpness`.
pub fn adjust_sharpness(img: &Image, factor: f32) -> Image {
    let (h, w) = (img.h, img.w);
    let mut degenerate = img.data.clone();
    if h >= 3 && w >= 3 {
        for ch in 0..img.c {
            let base = ch * h * w;
            for y in 1..h - 1 {
                for x in 1..w - 1 {
                    let mut s = 0f32;
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let k = if dy == 1 && dx == 1 { 5.0 } else { 1.0 };
                            s += k * img.data[base + (y + dy - 1) * w + x + dx - 1];
                        }
                    }
                    degenerate[base + y * w + x] = (s / 13.0).round();
                }
            }
        }
    }
    let mut out = img.clone();
    blend_into(&mut out.data, |k| degenerate[k], factor);
    out
}

/// Rotates the hue by `shift` turns (in -0.5..=0.5) in HSV space
/// (torchvision `adjust_hue`). A no-op on images with fewer than 3 channels.
pub fn adjust_hue(img: &Image, shift: f32) -> Image {
    if img.c < 3 {
        return img.clone();
    }
    let p = img.plane();
    let mut out = img.clone();
    for k in 0..p {
        let r = (img.data[k] / 255.0).clamp(0.0, 1.0);
        let g = (img.data[p + k] / 255.0).clamp(0.0, 1.0);
        let b = (img.data[2 * p + k] / 255.0).clamp(0.0, 1.0);
        let (h, s, v) = rgb_to_hsv(r, g, b);
        let h = (h + shift).rem_euclid(1.0);
        let (r, g, b) = hsv_to_rgb(h, s, v);
        out.data[k] = r * 255.0;
        out.data[p + k] = g * 255.0;
        out.data[2 * p + k] = b * 255.0;
    }
    out
}

fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let cr = maxc - minc;
    if cr == 0.0 {
        return (0.0, 0.0, maxc);
    }
    let s = cr / maxc;
    let (rc, gc, bc) = ((maxc - r) / cr, (maxc - g) / cr, (maxc - b) / cr);
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    ((h / 6.0 + 1.0).rem_euclid(1.0), s, maxc)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (i as i64).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// Values at or above `threshold` become 255 - value (PIL `solarize`).
pub fn solarize(img: &Image, threshold: f32) -> Image {
    let mut out = img.clone();
    for v in &mut out.data {
        if *v >= threshold {
            *v = 255.0 - *v;
        }
    }
    out
}

/// Keeps the top `bits` bits of each (rounded) byte (PIL `posterize`).
pub fn posterize(img: &Image, bits: u32) -> Image {
    let bits = bits.min(8);
    let mask: u8 = if bits == 0 { 0 } else { 0xFFu8 << (8 - bits) };
    let mut out = img.clone();
    for v in &mut out.data {
        *v = (to_byte(*v) & mask) as f32;
    }
    out
}

/// Stretches each channel so its minimum is 0 and maximum 255; a constant
/// channel is left alone (PIL `autocontrast` without cutoff).
pub fn auto_contrast(img: &Image) -> Image {
    let mut out = img.clone();
    let p = img.plane();
    if p == 0 {
        return out;
    }
    for plane in out.data.chunks_exact_mut(p) {
        let lo = plane.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = plane.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if hi > lo {
            let scale = 255.0 / (hi - lo);
            for v in plane.iter_mut() {
                *v = ((*v - lo) * scale).clamp(0.0, 255.0);
            }
        }
    }
    out
}

/// Histogram equalisation per channel on the rounded bytes, with PIL's
/// (and torchvision's) lookup table: step = (count of all pixels but those
/// of the highest occupied value) / 255; value v maps to
/// (pixels below v + step/2) / step. A channel with step 0 is unchanged.
pub fn equalize(img: &Image) -> Image {
    let mut out = img.clone();
    let p = img.plane();
    if p == 0 {
        return out;
    }
    for plane in out.data.chunks_exact_mut(p) {
        let bytes: Vec<u8> = plane.iter().map(|&v| to_byte(v)).collect();
        let mut hist = [0usize; 256];
        for &b in &bytes {
            hist[b as usize] += 1;
        }
        let last = hist.iter().rposition(|&n| n > 0).unwrap_or(0);
        let step = (p - hist[last]) / 255;
        if step == 0 {
            for (v, &b) in plane.iter_mut().zip(&bytes) {
                *v = b as f32;
            }
            continue;
        }
        let mut lut = [0f32; 256];
        let mut below = 0usize;
        for (v, l) in lut.iter_mut().enumerate() {
            *l = ((below + step / 2) / step).min(255) as f32;
            below += hist[v];
        }
        for (v, &b) in plane.iter_mut().zip(&bytes) {
            *v = lut[b as usize];
        }
    }
    out
}

/// Sets the square of side `size` with top-left (top, left), clipped to
/// the image, to `fill[ch]` in every channel `ch`. Returns how many pixels
/// (per channel) it covered.
pub fn fill_box(
    img: &mut Image,
    top: isize,
    left: isize,
    size_h: usize,
    size_w: usize,
    fill: &[f32],
) -> usize {
    let y0 = top.clamp(0, img.h as isize) as usize;
    let y1 = (top + size_h as isize).clamp(0, img.h as isize) as usize;
    let x0 = left.clamp(0, img.w as isize) as usize;
    let x1 = (left + size_w as isize).clamp(0, img.w as isize) as usize;
    for ch in 0..img.c {
        let f = fill.get(ch).copied().unwrap_or(0.0);
        for y in y0..y1 {
            let row = (ch * img.h + y) * img.w;
            img.data[row + x0..row + x1].fill(f);
        }
    }
    (y1 - y0) * (x1 - x0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 x h x w image with pixel (y, x) = y*w + x + 1.
    fn ramp(h: usize, w: usize) -> Image {
        Image {
            c: 1,
            h,
            w,
            data: (0..h * w).map(|k| (k + 1) as f32).collect(),
        }
    }

    fn rgb(pixels: &[[f32; 3]], h: usize, w: usize) -> Image {
        let p = h * w;
        let mut data = vec![0.0; 3 * p];
        for (k, px) in pixels.iter().enumerate() {
            for ch in 0..3 {
                data[ch * p + k] = px[ch];
            }
        }
        Image { c: 3, h, w, data }
    }

    #[test]
    fn flip_mirrors_rows() {
        let f = flip_h(&ramp(2, 3));
        assert_eq!(f.data, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        assert_eq!(flip_h(&f), ramp(2, 3));
    }

    #[test]
    fn shift_and_crop_zero_fill() {
        let s = shift(&ramp(3, 3), -1, 1);
        // Output (y, x) = input (y - 1, x + 1).
        assert_eq!(s.data, vec![0.0, 0.0, 0.0, 2.0, 3.0, 0.0, 5.0, 6.0, 0.0]);
        let c = crop(&ramp(3, 3), 1, -1, 2, 2);
        assert_eq!(c.data, vec![0.0, 4.0, 0.0, 7.0]);
    }

    #[test]
    fn resize_same_size_is_identity_and_constant_stays_constant() {
        let img = ramp(5, 7);
        assert_eq!(resize(&img, 5, 7), img);
        let flat = Image {
            c: 2,
            h: 6,
            w: 9,
            data: vec![77.0; 108],
        };
        for (h, w) in [(3, 4), (12, 13), (6, 2)] {
            let r = resize(&flat, h, w);
            assert!(r.data.iter().all(|&v| (v - 77.0).abs() < 1e-3), "{h}x{w}");
        }
        // Doubling a 1x2 row [0, 100]: bilinear with half-pixel centres.
        let row = Image {
            c: 1,
            h: 1,
            w: 2,
            data: vec![0.0, 100.0],
        };
        let r = resize(&row, 1, 4);
        assert_eq!(r.data, vec![0.0, 25.0, 75.0, 100.0]);
        // Halving widens the triangle to support 2 (PIL's antialiasing):
        // output 0 is centred at 1.0 with weights 3/4, 3/4, 1/4 on inputs
        // 0..3 (normalised), output 1 at 3.0 with 1/4, 3/4, 3/4 on 1..4.
        let row = Image {
            c: 1,
            h: 1,
            w: 4,
            data: vec![0.0, 100.0, 50.0, 50.0],
        };
        let r = resize(&row, 1, 2);
        let want = [(75.0 + 12.5) / 1.75, (25.0 + 37.5 + 37.5) / 1.75];
        assert!((r.data[0] - want[0]).abs() < 1e-4, "{:?}", r.data);
        assert!((r.data[1] - want[1]).abs() < 1e-4, "{:?}", r.data);
    }

    #[test]
    fn rotate_zero_is_identity_and_ninety_is_transpose_flip() {
        for n in [4, 5] {
            let img = ramp(n, n);
            assert_eq!(rotate(&img, 0.0), img);
            let r = rotate(&img, 90.0);
            // Counter-clockwise: out[y][x] = in[x][n-1-y].
            for y in 0..n {
                for x in 0..n {
                    assert_eq!(r.at(0, y, x), img.at(0, x, n - 1 - y), "n={n} ({y},{x})");
                }
            }
            // Four quarter turns are the identity.
            let full = (0..4).fold(img.clone(), |a, _| rotate(&a, 90.0));
            assert_eq!(full, img);
        }
    }

    #[test]
    fn shear_and_translate_move_a_pixel() {
        // A single bright pixel at (y=2, x=1) in a 4x6 image.
        let mut img = Image::zeros(1, 4, 6);
        img.data[2 * 6 + 1] = 200.0;
        // ShearX m=1: output (x, y) takes input (x + y + 1, y) by centres:
        // u + v = x + 0.5 + y + 0.5 -> floor = x + y + 1. Input x=1 at y=2
        // comes from output x = 1 - 2 - 1 < 0: off-image. Use m = -1 instead:
        // x + 0.5 - (y + 0.5) = x - y -> input 1 at output x = 3.
        let s = shear_x(&img, -1.0);
        assert_eq!(s.at(0, 2, 3), 200.0);
        assert_eq!(s.data.iter().filter(|&&v| v != 0.0).count(), 1);
        // ShearY m=0.5: output (x, y) takes input y = floor(y + 0.5 + 0.5*(x + 0.5)).
        // At x=1: floor(y + 1.25) = y + 1 -> input y=2 shows at output y=1.
        let s = shear_y(&img, 0.5);
        assert_eq!(s.at(0, 1, 1), 200.0);
        let t = translate_x(&img, 3);
        assert_eq!(t.at(0, 2, 4), 200.0);
        assert_eq!(t.data.iter().filter(|&&v| v != 0.0).count(), 1);
        let t = translate_x(&img, -2);
        assert!(t.data.iter().all(|&v| v == 0.0), "moved off the left edge");
        let t = translate_y(&img, -1);
        assert_eq!(t.at(0, 1, 1), 200.0);
        assert_eq!(shear_x(&img, 0.0), img);
    }

    #[test]
    fn solarize_zero_inverts_and_posterize_one_bit() {
        let img = ramp(4, 4);
        let s = solarize(&img, 0.0);
        assert!(s.data.iter().zip(&img.data).all(|(a, b)| a + b == 255.0));
        let s = solarize(&img, 10.0);
        assert_eq!(s.data[8], 9.0);
        assert_eq!(s.data[9], 245.0);
        assert_eq!(solarize(&img, 256.0), img);
        let bytes = Image {
            c: 1,
            h: 1,
            w: 6,
            data: vec![0.0, 1.0, 127.0, 128.0, 200.0, 255.0],
        };
        assert_eq!(
            posterize(&bytes, 1).data,
            vec![0.0, 0.0, 0.0, 128.0, 128.0, 128.0]
        );
        assert_eq!(
            posterize(&bytes, 4).data,
            vec![0.0, 0.0, 112.0, 128.0, 192.0, 240.0]
        );
        assert_eq!(posterize(&bytes, 8), bytes);
    }

    #[test]
    fn equalize_uniform_histogram_is_identity() {
        // 16x16: every byte value exactly once, per channel, shuffled positions.
        let mut data = Vec::new();
        for ch in 0..3 {
            data.extend((0..256).map(|k| ((k * 97 + ch * 31) % 256) as f32));
        }
        let img = Image {
            c: 3,
            h: 16,
            w: 16,
            data,
        };
        assert_eq!(equalize(&img), img);
        // A two-valued image spreads to the extremes' LUT: values 10 and 20,
        // half each: step = 128/255 = 0 -> unchanged.
        let two = Image {
            c: 1,
            h: 1,
            w: 256,
            data: (0..256)
                .map(|k| if k < 128 { 10.0 } else { 20.0 })
                .collect(),
        };
        assert_eq!(equalize(&two), two);
        // A skewed 4-value image: 255 pixels of 0..=254 spread, checked to be
        // monotone and to reach high values.
        let skew = Image {
            c: 1,
            h: 1,
            w: 512,
            data: (0..512).map(|k| (k / 128) as f32).collect(),
        };
        let e = equalize(&skew);
        // hist: 128 each of 0..=3; step = 384/255 = 1; lut[v] = (128 v + 0) / 1.
        assert_eq!(e.data[0], 0.0);
        assert_eq!(e.data[128], 128.0);
        assert_eq!(e.data[256], 255.0);
        assert_eq!(e.data[511], 255.0);
    }

    #[test]
    fn auto_contrast_stretches() {
        let img = Image {
            c: 2,
            h: 1,
            w: 3,
            data: vec![50.0, 100.0, 150.0, 7.0, 7.0, 7.0],
        };
        let a = auto_contrast(&img);
        assert_eq!(a.data, vec![0.0, 127.5, 255.0, 7.0, 7.0, 7.0]);
    }

    #[test]
    fn colour_adjustments() {
        let img = rgb(&[[100.0, 50.0, 200.0], [10.0, 250.0, 0.0]], 1, 2);
        let b = adjust_brightness(&img, 1.5);
        assert_eq!(b.data, vec![150.0, 15.0, 75.0, 255.0, 255.0, 0.0]);
        assert_eq!(adjust_brightness(&img, 1.0), img);
        assert_eq!(adjust_contrast(&img, 1.0), img);
        assert_eq!(adjust_saturation(&img, 1.0), img);
        assert_eq!(adjust_sharpness(&img, 1.0), img);
        // Contrast 0: every value becomes the grayscale mean.
        let c = adjust_contrast(&img, 0.0);
        let g0 = 0.2989 * 100.0 + 0.587 * 50.0 + 0.114 * 200.0;
        let g1 = 0.2989 * 10.0 + 0.587 * 250.0;
        let mean: f32 = (g0 + g1) / 2.0;
        assert!(c.data.iter().all(|&v| (v - mean).abs() < 1e-3));
        // Saturation 0: each pixel becomes gray in all channels.
        let s = adjust_saturation(&img, 0.0);
        assert!((s.data[0] - g0).abs() < 1e-3 && (s.data[4] - g0).abs() < 1e-3);
        // Hue by a full turn (or 0) is the identity up to rounding; by 1/3
        // it cycles R -> G -> B for a pure colour.
        let h = adjust_hue(&img, 0.0);
        assert!(h
            .data
            .iter()
            .zip(&img.data)
            .all(|(a, b)| (a - b).abs() < 1e-3));
        let red = rgb(&[[255.0, 0.0, 0.0]], 1, 1);
        let g = adjust_hue(&red, 1.0 / 3.0);
        assert!((g.data[0]).abs() < 1e-3 && (g.data[1] - 255.0).abs() < 1e-3);
        assert!(g.data[2].abs() < 1e-3);
    }

    #[test]
    fn sharpness_zero_is_the_smoothed_image() {
        let mut img = Image::zeros(1, 3, 3);
        img.data[4] = 130.0;
        let s = adjust_sharpness(&img, 0.0);
        assert_eq!(s.data[4], 50.0); // 5 * 130 / 13
        assert_eq!(s.data[0], 0.0); // border unsmoothed
    }

    #[test]
    fn fill_box_clips() {
        let mut img = Image::zeros(2, 5, 5);
        img.data.fill(1.0);
        assert_eq!(fill_box(&mut img, 1, 1, 2, 2, &[0.0, 0.0]), 4);
        assert_eq!(img.data.iter().filter(|&&v| v == 0.0).count(), 8);
        assert_eq!(fill_box(&mut img, -1, 4, 2, 2, &[0.0, 0.0]), 1);
    }
}
