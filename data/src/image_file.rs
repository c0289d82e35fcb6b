//! Decoding single image files: shared by the folder loader and prediction.

use std::io::Cursor;
use std::path::Path;

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageReader};

use crate::DataError;

/// Decodes by content (not extension): JPEG or PNG.
pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<DynamicImage, DataError> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::at(path, format!("cannot decode image: {e}")))?
        .decode()
        .map_err(|e| DataError::at(path, format!("cannot decode image: {e}")))
}

pub(crate) fn is_grayscale(img: &DynamicImage) -> bool {
    !img.color().has_color()
}

/// Writes `img` (already `w`x`h`) as CHW bytes with `c` channels (1 or 3) into `out`.
pub(crate) fn write_chw(img: DynamicImage, c: usize, out: &mut [u8]) {
    match c {
        1 => out.copy_from_slice(img.into_luma8().as_raw()),
        _ => {
            let rgb = img.into_rgb8();
            let plane = out.len() / 3;
            let (r, rest) = out.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            for (k, px) in rgb.as_raw().chunks_exact(3).enumerate() {
                r[k] = px[0];
                g[k] = px[1];
                b[k] = px[2];
            }
        }
    }
}

/// Resizes to exactly `w`x`h` (no aspect preservation) unless already that size.
pub(crate) fn fit_exact(img: DynamicImage, c: usize, w: u32, h: u32) -> DynamicImage {
    if img.width() == w && img.height() == h {
        return img;
    }
    if c == 1 {
        DynamicImage::ImageLuma8(imageops::resize(
            &img.into_luma8(),
            w,
            h,
            FilterType::Triangle,
        ))
    } else {
        DynamicImage::ImageRgb8(imageops::resize(
            &img.into_rgb8(),
            w,
            h,
            FilterType::Triangle,
        ))
    }
}

/// One image file for prediction: decoded, converted to `shape`'s channel
/// count (1 or 3), resized so its short side is max(H, W), centre-cropped
/// to HxW, as CHW bytes.
pub fn load_image(path: &Path, shape: [usize; 3]) -> Result<Vec<u8>, DataError> {
    let [c, h, w] = shape;
    if c != 1 && c != 3 {
        return Err(DataError::at(
            path,
            format!("the model takes {c}-channel images; only 1 (grayscale) or 3 (RGB) can be made from an image file"),
        ));
    }
    if h == 0 || w == 0 {
        return Err(DataError::at(path, format!("cannot resize to {h}x{w}")));
    }
    let bytes =
        std::fs::read(path).map_err(|e| DataError::at(path, format!("cannot read: {e}")))?;
    let img = decode(path, &bytes)?;
    let img = if c == 1 {
        DynamicImage::ImageLuma8(img.into_luma8())
    } else {
        DynamicImage::ImageRgb8(img.into_rgb8())
    };
    let (iw, ih) = (img.width() as u64, img.height() as u64);
    if iw == 0 || ih == 0 {
        return Err(DataError::at(path, "image has no pixels"));
    }
    let side = h.max(w) as u64;
    // Scale the short side to `side`, rounding the long side; both stay >= side >= H, W.
    let (nw, nh) = if iw <= ih {
        (side, ((ih * side + iw / 2) / iw).max(side))
    } else {
        (((iw * side + ih / 2) / ih).max(side), side)
    };
    let img = fit_exact(img, c, nw as u32, nh as u32);
    let x0 = ((nw - w as u64) / 2) as u32;
    let y0 = ((nh - h as u64) / 2) as u32;
    let img = img.crop_imm(x0, y0, w as u32, h as u32);
    let mut out = vec![0u8; c * h * w];
    write_chw(img, c, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Rgb, RgbImage};

    fn tmp(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("cnncost-data-img-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn same_size_png_is_exact_chw() {
        let d = tmp("exact");
        let mut img = RgbImage::new(2, 2);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let v = (10 * (y * 2 + x)) as u8;
            *p = Rgb([v, v + 1, v + 2]);
        }
        let path = d.join("a.png");
        img.save(&path).unwrap();
        let got = load_image(&path, [3, 2, 2]).unwrap();
        assert_eq!(got, vec![0, 10, 20, 30, 1, 11, 21, 31, 2, 12, 22, 32]);
        // To grayscale: one plane.
        assert_eq!(load_image(&path, [1, 2, 2]).unwrap().len(), 4);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn resize_short_side_then_centre_crop() {
        // 8x4 gray: column 0 is 0, column 7 is 200, columns 1..7 hold 100.
        // Target 2x2: short side 4 -> 2, so 4x2, then the centre 2 columns,
        // whose triangle filters reach source columns 1..7 only; an
        // off-centre crop would pick up the 0 or the 200.
        let d = tmp("crop");
        let img = GrayImage::from_fn(8, 4, |x, _| {
            image::Luma([if (1..7).contains(&x) {
                100
            } else if x < 1 {
                0
            } else {
                200
            }])
        });
        let path = d.join("b.png");
        img.save(&path).unwrap();
        let got = load_image(&path, [1, 2, 2]).unwrap();
        assert_eq!(got, vec![100; 4]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn errors_name_the_file() {
        let d = tmp("bad");
        let path = d.join("not-an-image.jpg");
        std::fs::write(&path, b"hello, world").unwrap();
        let e = load_image(&path, [3, 32, 32]).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(e.contains("cannot decode image"), "{e}");
        let missing = d.join("missing.png");
        let e = load_image(&missing, [3, 32, 32]).unwrap_err().to_string();
        assert!(e.contains("missing.png: cannot read"), "{e}");
        let e = load_image(&path, [4, 32, 32]).unwrap_err().to_string();
        assert!(e.contains("4-channel"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
