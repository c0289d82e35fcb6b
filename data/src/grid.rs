//! Tiling images into one picture, to look at what augmentation does.

use std::path::Path;

use crate::DataError;

/// Pixels between tiles and around the edge.
const GAP: usize = 2;
/// Gray of the gaps.
const BACKGROUND: u8 = 128;

/// Tiles CHW byte images of `shape` (1 or 3 channels; with 1 the gray is
/// copied to R, G and B; with more than 3 the first three are shown) into
/// rows of `cols`, separated by a 2-pixel gray border. Returns interleaved
/// RGB bytes, width and height. Panics if an image has the wrong length.
pub fn grid(images: &[Vec<u8>], shape: [usize; 3], cols: usize) -> (Vec<u8>, usize, usize) {
    let [c, h, w] = shape;
    let cols = cols.max(1).min(images.len().max(1));
    let rows = images.len().div_ceil(cols);
    let width = cols * w + (cols + 1) * GAP;
    let height = rows * h + (rows + 1) * GAP;
    let mut rgb = vec![BACKGROUND; width * height * 3];
    let plane = h * w;
    for (k, img) in images.iter().enumerate() {
        assert_eq!(img.len(), c * plane, "image {k} is not {c}x{h}x{w}");
        let (oy, ox) = (GAP + (k / cols) * (h + GAP), GAP + (k % cols) * (w + GAP));
        for y in 0..h {
            for x in 0..w {
                let o = ((oy + y) * width + ox + x) * 3;
                for ch in 0..3 {
                    let src = if c >= 3 { ch } else { 0 };
                    rgb[o + ch] = if c == 0 {
                        0
                    } else {
                        img[src * plane + y * w + x]
                    };
                }
            }
        }
    }
    (rgb, width, height)
}

/// Writes interleaved RGB bytes as a PNG.
pub fn save_png(path: &Path, rgb: &[u8], width: usize, height: usize) -> Result<(), DataError> {
    if rgb.len() != width * height * 3 {
        return Err(DataError::at(
            path,
            format!("{} bytes are not a {width}x{height} RGB image", rgb.len()),
        ));
    }
    image::save_buffer(
        path,
        rgb,
        width as u32,
        height as u32,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| DataError::at(path, format!("cannot write PNG: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_in_rows_with_gaps() {
        // Three 1x1x2 gray images in 2 columns: 2 rows.
        let imgs = vec![vec![10, 11], vec![20, 21], vec![30, 31]];
        let (rgb, w, h) = grid(&imgs, [1, 1, 2], 2);
        assert_eq!((w, h), (2 * 2 + 3 * GAP, 2 + 3 * GAP));
        let px = |x: usize, y: usize| &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
        assert_eq!(px(GAP, GAP), [10, 10, 10]);
        assert_eq!(px(GAP + 1, GAP), [11, 11, 11]);
        assert_eq!(px(2 * GAP + 2, GAP), [20, 20, 20]);
        assert_eq!(px(GAP, 2 * GAP + 1), [30, 30, 30]);
        assert_eq!(px(0, 0), [BACKGROUND; 3]);
        assert_eq!(px(2 * GAP + 2, 2 * GAP + 1), [BACKGROUND; 3]);
        // RGB keeps channels apart.
        let (rgb, w, _) = grid(&[vec![1, 2, 3]], [3, 1, 1], 4);
        assert_eq!(w, 1 + 2 * GAP);
        let o = (GAP * w + GAP) * 3;
        assert_eq!(rgb[o..o + 3], [1, 2, 3]);
    }

    #[test]
    fn png_round_trips() {
        let dir = std::env::temp_dir().join(format!("data-grid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.png");
        let (rgb, w, h) = grid(&[vec![0, 255, 9, 7, 100, 200], vec![5; 6]], [3, 1, 2], 2);
        save_png(&path, &rgb, w, h).unwrap();
        let back = image::open(&path).unwrap().into_rgb8();
        assert_eq!((back.width() as usize, back.height() as usize), (w, h));
        assert_eq!(back.as_raw(), &rgb);
        assert!(save_png(&path, &rgb[1..], w, h).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
