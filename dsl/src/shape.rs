//! Shape rules: the output shape of each op from its input shapes.
//!
//! This lives with the elaborator rather than in the analyzer because the
//! language's expressions can read a statement's input shape (`in.c`), so
//! shapes must be known while the network is built. Formulas: docs/costs.md.

use crate::ir::{Op, Pair, Shape};

/// Why an op does not fit its input: the headline, the text beside the caret,
/// and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeError {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

fn err(message: impl Into<String>, label: impl Into<String>, help: Option<&str>) -> ShapeError {
    ShapeError {
        message: message.into(),
        label: label.into(),
        help: help.map(str::to_string),
    }
}

fn image(op: &Op, s: Shape) -> Result<(u64, u64, u64), ShapeError> {
    match s {
        Shape::Image { c, h, w } => Ok((c, h, w)),
        Shape::Flat(n) => Err(err(
            format!(
                "`{}` needs an image input, found a flat vector of {n}",
                op.kind()
            ),
            format!("input is {n} (flat)"),
            Some("spatial ops must come before `flatten`"),
        )),
    }
}

fn too_large() -> ShapeError {
    err(
        "shape arithmetic overflow",
        "a dimension does not fit in 64 bits",
        Some("check the input size and the channel counts"),
    )
}

/// One axis of a sliding window (conv or pooling).
#[derive(Clone, Copy, Debug)]
struct Window {
    k: u64,
    s: u64,
    /// Padding before and after the input.
    pad_begin: u64,
    pad_end: u64,
    d: u64,
    ceil: bool,
}

impl Window {
    /// Output size along the axis: `floor((n + p_begin + p_end - d*(k-1) - 1) / s) + 1`,
    /// or with `ceil` rounded up but never starting a window in the right
    /// padding (PyTorch's rule). `None` when no window fits.
    fn out(self, n: u64) -> Option<u64> {
        let Window {
            k,
            s,
            pad_begin,
            pad_end,
            d,
            ceil,
        } = self;
        let span = d.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
        let padded = n.checked_add(pad_begin)?.checked_add(pad_end)?;
        let room = padded.checked_sub(span)?;
        if s == 0 {
            return None;
        }
        let mut out = if ceil { room.div_ceil(s) } else { room / s } + 1;
        if ceil && pad_begin > 0 && (out - 1).checked_mul(s)? >= n + pad_begin {
            out -= 1;
        }
        Some(out)
    }
}

/// The output size of `win` over `n` along `axis`, or why there is none;
/// `window` names the op's window in the message ("kernel", "window").
fn axis(op: &Op, window: &str, axis: &str, n: u64, win: Window) -> Result<u64, ShapeError> {
    win.out(n).ok_or_else(|| {
        let Window {
            k,
            pad_begin,
            pad_end,
            d,
            ..
        } = win;
        let padded = pad_begin
            .checked_add(pad_end)
            .and_then(|p| n.checked_add(p));
        let pads = if pad_begin == pad_end {
            format!("2*{pad_begin}")
        } else {
            format!("{pad_begin} + {pad_end}")
        };
        let dilated = k.checked_sub(1).and_then(|k1| d.checked_mul(k1));
        if padded.is_none() || dilated.is_none() {
            return err(
                "shape arithmetic overflow",
                if padded.is_none() {
                    format!("the padded input {axis} ({n} + {pads}) does not fit in 64 bits")
                } else {
                    format!("the dilated kernel ({d}*({k} - 1) + 1) does not fit in 64 bits")
                },
                Some("check the kernel, padding and dilation"),
            );
        }
        let span = d.saturating_mul(k.saturating_sub(1)).saturating_add(1);
        let kernel = if d > 1 {
            format!("{window} {k} (dilated to {span})")
        } else {
            format!("{window} {k}")
        };
        err(
            format!("`{}` output {axis} is below 1", op.kind()),
            format!(
                "{kernel} is larger than the padded input {axis} {} ({n} + {pads})",
                n.saturating_add(pad_begin).saturating_add(pad_end)
            ),
            Some("use a smaller kernel or stride, more padding, or a larger input (`--input`)"),
        )
    })
}

/// The output shape of `op` applied to `inputs` (operand order). A shape
/// whose element count does not fit in 64 bits is an error too: every cost
/// is counted in 64 bits.
pub fn infer(op: &Op, inputs: &[Shape]) -> Result<Shape, ShapeError> {
    let out = infer_shape(op, inputs)?;
    if out.elements().is_none() {
        return Err(err(
            "shape arithmetic overflow",
            format!("the output {out} has more than 2^64 - 1 elements"),
            Some("check the input size and the channel counts"),
        ));
    }
    Ok(out)
}

fn infer_shape(op: &Op, inputs: &[Shape]) -> Result<Shape, ShapeError> {
    let one = || {
        inputs
            .first()
            .copied()
            .ok_or_else(|| err("op has no input", "", None))
    };
    match op {
        Op::Input => one(),
        Op::Conv {
            out,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            ..
        } => {
            let (c, h, w) = image(op, one()?)?;
            if c % groups != 0 || out % groups != 0 {
                let (what, n) = if c % groups != 0 {
                    ("input channels", c)
                } else {
                    ("output channels", *out)
                };
                return Err(err(
                    format!("{what} {n} are not divisible by groups={groups}"),
                    format!("{n} {what} in {groups} groups"),
                    Some("make both input and output channels multiples of `g`"),
                ));
            }
            if padding.same && (stride.h != 1 || stride.w != 1) {
                return Err(err(
                    "`p=same` needs stride 1",
                    format!("stride is {stride}"),
                    Some("PyTorch allows padding='same' only with stride 1; give `p` explicitly"),
                ));
            }
            let along = |begin: u64, end: u64, k: u64, s: u64, d: u64| Window {
                k,
                s,
                pad_begin: begin,
                pad_end: end,
                d,
                ceil: false,
            };
            Ok(Shape::Image {
                c: *out,
                h: axis(
                    op,
                    "kernel",
                    "height",
                    h,
                    along(
                        padding.begin.h,
                        padding.end.h,
                        kernel.h,
                        stride.h,
                        dilation.h,
                    ),
                )?,
                w: axis(
                    op,
                    "kernel",
                    "width",
                    w,
                    along(
                        padding.begin.w,
                        padding.end.w,
                        kernel.w,
                        stride.w,
                        dilation.w,
                    ),
                )?,
            })
        }
        Op::Linear { out, .. } => match one()? {
            Shape::Flat(_) => Ok(Shape::Flat(*out)),
            s @ Shape::Image { .. } => Err(err(
                format!("`linear` needs a flat input, found {s}"),
                format!("input is {s}"),
                Some("add `flatten` (or `gap` then `flatten`) before it"),
            )),
        },
        Op::Pool {
            kernel,
            stride,
            padding,
            ceil,
            ..
        } => {
            let (c, h, w) = image(op, one()?)?;
            check_pool_padding(*kernel, *padding)?;
            let along = |k: u64, s: u64, pad: u64| Window {
                k,
                s,
                pad_begin: pad,
                pad_end: pad,
                d: 1,
                ceil: *ceil,
            };
            Ok(Shape::Image {
                c,
                h: axis(
                    op,
                    "window",
                    "height",
                    h,
                    along(kernel.h, stride.h, padding.h),
                )?,
                w: axis(
                    op,
                    "window",
                    "width",
                    w,
                    along(kernel.w, stride.w, padding.w),
                )?,
            })
        }
        Op::GlobalAvgPool => {
            let (c, _, _) = image(op, one()?)?;
            Ok(Shape::Image { c, h: 1, w: 1 })
        }
        Op::AdaptiveAvgPool { out } => {
            let (c, _, _) = image(op, one()?)?;
            Ok(Shape::Image {
                c,
                h: out.h,
                w: out.w,
            })
        }
        Op::Lrn { .. } => {
            image(op, one()?)?;
            one()
        }
        Op::BatchNorm { .. } | Op::Dropout { .. } | Op::Act(_) | Op::Prelu | Op::Identity => one(),
        Op::Flatten => match one()? {
            s @ Shape::Image { .. } => Ok(Shape::Flat(s.elements().ok_or_else(too_large)?)),
            s @ Shape::Flat(_) => Ok(s),
        },
        Op::Concat => concat(inputs),
        Op::Add => {
            let first = one()?;
            for (i, s) in inputs.iter().enumerate().skip(1) {
                if *s != first {
                    let what = match (first, *s) {
                        (
                            Shape::Image { c, h, w },
                            Shape::Image {
                                c: c2,
                                h: h2,
                                w: w2,
                            },
                        ) => {
                            if (h, w) == (h2, w2) && c != c2 {
                                "channel mismatch in add"
                            } else if c == c2 {
                                "spatial size mismatch in add"
                            } else {
                                "shape mismatch in add"
                            }
                        }
                        _ => "shape mismatch in add",
                    };
                    return Err(err(
                        what,
                        format!("branch 1 gives {first}, branch {} gives {s}", i + 1),
                        Some("every branch of `add` must give the same shape"),
                    ));
                }
            }
            Ok(first)
        }
        Op::ZeroPad { out, stride } => {
            let (c, h, w) = image(op, one()?)?;
            if *out < c {
                return Err(err(
                    "`project zeropad` cannot remove channels",
                    format!("body gives {out} channels, input has {c}"),
                    Some("use `project { conv ... }` to reduce channels"),
                ));
            }
            Ok(Shape::Image {
                c: *out,
                h: h.div_ceil(*stride),
                w: w.div_ceil(*stride),
            })
        }
    }
}

fn check_pool_padding(kernel: Pair, padding: Pair) -> Result<(), ShapeError> {
    if padding.h.saturating_mul(2) > kernel.h || padding.w.saturating_mul(2) > kernel.w {
        return Err(err(
            "pooling padding is more than half the kernel",
            format!("p={padding} with k={kernel}"),
            Some("PyTorch requires p <= k/2 for pooling"),
        ));
    }
    Ok(())
}

fn concat(inputs: &[Shape]) -> Result<Shape, ShapeError> {
    let mut iter = inputs.iter().enumerate();
    let Some((_, &first)) = iter.next() else {
        return Err(err("`concat` has no branches", "", None));
    };
    let mut total = first.channels();
    for (i, &s) in iter {
        match (first, s) {
            (Shape::Image { h, w, .. }, Shape::Image { h: h2, w: w2, c }) => {
                if (h, w) != (h2, w2) {
                    return Err(err(
                        "spatial size mismatch in concat",
                        format!("branch 1 gives {first}, branch {} gives {s}", i + 1),
                        Some("concat joins along channels: every branch must keep the same height and width"),
                    ));
                }
                total = total.checked_add(c).ok_or_else(too_large)?;
            }
            (Shape::Flat(_), Shape::Flat(n)) => {
                total = total.checked_add(n).ok_or_else(too_large)?;
            }
            _ => {
                return Err(err(
                    "concat of an image and a flat vector",
                    format!("branch 1 gives {first}, branch {} gives {s}", i + 1),
                    Some("flatten every branch, or none"),
                ))
            }
        }
    }
    Ok(match first {
        Shape::Image { h, w, .. } => Shape::Image { c: total, h, w },
        Shape::Flat(_) => Shape::Flat(total),
    })
}

#[cfg(test)]
mod tests {
    use super::Window;

    fn window_out(n: u64, k: u64, s: u64, pad: u64, d: u64, ceil: bool) -> Option<u64> {
        Window {
            k,
            s,
            pad_begin: pad,
            pad_end: pad,
            d,
            ceil,
        }
        .out(n)
    }

    #[test]
    fn pytorch_window_rules() {
        // AlexNet conv1: (227 + 4 - 11) / 4 + 1 = 56
        assert_eq!(window_out(227, 11, 4, 2, 1, false), Some(56));
        // 3x3/2 pool of 55 -> 27; ceil mode on 112 -> 56 (GoogLeNet)
        assert_eq!(window_out(55, 3, 2, 0, 1, false), Some(27));
        assert_eq!(window_out(112, 3, 2, 0, 1, true), Some(56));
        // ceil mode drops a window starting in the right padding:
        // PyTorch MaxPool2d(2, 2, padding=1, ceil_mode=True) on 4 gives 3.
        assert_eq!(window_out(4, 2, 2, 1, 1, true), Some(3));
        // ZFNet: 110 -> 55 with 3x3/2 ceil
        assert_eq!(window_out(110, 3, 2, 0, 1, true), Some(55));
        assert_eq!(window_out(2, 3, 1, 0, 1, false), None);
    }
}
