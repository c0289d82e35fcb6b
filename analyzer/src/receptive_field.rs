//! Receptive fields: for each op, the size of the input window one output
//! unit sees, the effective stride (the jump in input pixels between
//! neighbouring outputs) and the centre of the first output's window, in
//! input pixel indices (it can be negative or fractional where padding
//! shifts it). The recurrence is the standard one:
//! `size' = size + (k_eff - 1) * jump`, `jump' = jump * s`,
//! `start' = start + ((k_eff - 1)/2 - p) * jump`, with `k_eff = d*(k-1) + 1`.

use dsl::ir::{Op, Shape};

/// One axis of a receptive field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    pub size: f64,
    pub stride: f64,
    pub start: f64,
}

/// Height and width axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReceptiveField {
    pub h: Axis,
    pub w: Axis,
}

impl ReceptiveField {
    /// One input pixel.
    pub const PIXEL: ReceptiveField = ReceptiveField {
        h: Axis {
            size: 1.0,
            stride: 1.0,
            start: 0.0,
        },
        w: Axis {
            size: 1.0,
            stride: 1.0,
            start: 0.0,
        },
    };
}

fn window(a: Axis, k: f64, s: f64, p: f64) -> Axis {
    Axis {
        size: a.size + (k - 1.0) * a.stride,
        stride: a.stride * s,
        start: a.start + ((k - 1.0) / 2.0 - p) * a.stride,
    }
}

/// The receptive field of an op's output from its inputs' fields and shapes.
pub fn propagate(op: &Op, inputs: &[(ReceptiveField, Shape)]) -> ReceptiveField {
    let Some(&(rf, shape)) = inputs.first() else {
        return ReceptiveField::PIXEL;
    };
    let (h, w) = match shape {
        Shape::Image { h, w, .. } => (h as f64, w as f64),
        Shape::Flat(_) => (1.0, 1.0),
    };
    // A window over the whole input: global pooling and flatten.
    let whole = || ReceptiveField {
        h: window(rf.h, h, h, 0.0),
        w: window(rf.w, w, w, 0.0),
    };
    match op {
        Op::Conv {
            kernel,
            stride,
            padding,
            dilation,
            ..
        } => {
            // The mean of the two pads: the centre of a `same` window with
            // an odd total padding sits half a pixel before the first one.
            let ph = (padding.begin.h + padding.end.h) as f64 / 2.0;
            let pw = (padding.begin.w + padding.end.w) as f64 / 2.0;
            let kh = (dilation.h * (kernel.h - 1) + 1) as f64;
            let kw = (dilation.w * (kernel.w - 1) + 1) as f64;
            ReceptiveField {
                h: window(rf.h, kh, stride.h as f64, ph),
                w: window(rf.w, kw, stride.w as f64, pw),
            }
        }
        Op::Pool {
            kernel,
            stride,
            padding,
            ..
        } => ReceptiveField {
            h: window(rf.h, kernel.h as f64, stride.h as f64, padding.h as f64),
            w: window(rf.w, kernel.w as f64, stride.w as f64, padding.w as f64),
        },
        Op::AdaptiveAvgPool { out } => {
            // The widest window and the mean stride: exact when the input
            // divides evenly, as in torchvision's nets.
            let (oh, ow) = (out.h as f64, out.w as f64);
            ReceptiveField {
                h: window(rf.h, (h / oh).ceil(), h / oh, 0.0),
                w: window(rf.w, (w / ow).ceil(), w / ow, 0.0),
            }
        }
        Op::GlobalAvgPool => whole(),
        Op::Flatten => match shape {
            Shape::Image { .. } => whole(),
            Shape::Flat(_) => rf,
        },
        Op::ZeroPad { stride, .. } => ReceptiveField {
            h: window(rf.h, 1.0, *stride as f64, 0.0),
            w: window(rf.w, 1.0, *stride as f64, 0.0),
        },
        Op::Concat | Op::Add => {
            let widest = inputs
                .iter()
                .max_by(|a, b| (a.0.h.size * a.0.w.size).total_cmp(&(b.0.h.size * b.0.w.size)))
                .map_or(rf, |x| x.0);
            widest
        }
        // Element-wise ops and the input see what their input sees.
        Op::Input
        | Op::Linear { .. }
        | Op::BatchNorm { .. }
        | Op::Lrn { .. }
        | Op::Dropout { .. }
        | Op::Act(_)
        | Op::Prelu
        | Op::Identity => rf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dsl::ir::{Init, Padding, Pair, PoolKind};

    fn conv(k: u64, s: u64, p: u64) -> Op {
        Op::Conv {
            out: 1,
            kernel: Pair::square(k),
            stride: Pair::square(s),
            padding: Padding::explicit(Pair::square(p)),
            dilation: Pair::square(1),
            groups: 1,
            bias: false,
            init: Init::Kaiming,
        }
    }

    #[test]
    fn two_3x3_convs_see_5x5_and_vgg_stem() {
        let img = Shape::Image { c: 1, h: 32, w: 32 };
        let a = propagate(&conv(3, 1, 1), &[(ReceptiveField::PIXEL, img)]);
        let b = propagate(&conv(3, 1, 1), &[(a, img)]);
        assert_eq!(b.h.size, 5.0);
        // A 2x2/2 pool after them: 6 wide, jump 2, first centre at 0.5.
        let pool = Op::Pool {
            kind: PoolKind::Max,
            kernel: Pair::square(2),
            stride: Pair::square(2),
            padding: Pair::square(0),
            ceil: false,
            exclude_pad: false,
        };
        let c = propagate(&pool, &[(b, img)]);
        assert_eq!((c.h.size, c.h.stride, c.h.start), (6.0, 2.0, 0.5));
    }

    #[test]
    fn alexnet_conv1() {
        // 11x11/4 pad 2: size 11, jump 4, first window centred on pixel 3.
        let img = Shape::Image {
            c: 3,
            h: 227,
            w: 227,
        };
        let r = propagate(&conv(11, 4, 2), &[(ReceptiveField::PIXEL, img)]);
        assert_eq!((r.h.size, r.h.stride, r.h.start), (11.0, 4.0, 3.0));
    }
}
