//! The backward's timeline, for `cnncost profile --train`: candle runs the
//! backward as one call, so the time of each op's part is read from marks
//! that our ops' backward functions leave while it runs. Each mark names the
//! op by its output tensor (the one the forward showed `profile`), and a
//! weight gradient's own time is marked apart. Off unless
//! [`record_backward`] runs: then a mark costs one atomic load.

use candle_core::{Tensor, TensorId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A moment of the backward.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    /// The backward of the op whose output is this tensor begins.
    Op(TensorId, Instant),
    /// A weight gradient took these seconds, inside the last op begun.
    WeightGrad(f64),
}

static ON: AtomicBool = AtomicBool::new(false);
static MARKS: Mutex<Vec<Mark>> = Mutex::new(Vec::new());

fn push(m: Mark) {
    if let Ok(mut v) = MARKS.lock() {
        v.push(m);
    }
}

/// The backward of the op that made `output` begins.
pub(crate) fn op_backward(output: &Tensor) {
    if ON.load(Ordering::Relaxed) {
        push(Mark::Op(output.id(), Instant::now()));
    }
}

/// Runs `f`, a weight gradient, marking its time when recording.
pub(crate) fn weight_grad<R>(f: impl FnOnce() -> R) -> R {
    if !ON.load(Ordering::Relaxed) {
        return f();
    }
    let t = Instant::now();
    let r = f();
    push(Mark::WeightGrad(t.elapsed().as_secs_f64()));
    r
}

/// Runs `f` (a backward) with marks on: its result and the marks left, in
/// order.
pub fn record_backward<R>(f: impl FnOnce() -> R) -> (R, Vec<Mark>) {
    if let Ok(mut v) = MARKS.lock() {
        v.clear();
    }
    ON.store(true, Ordering::Relaxed);
    let r = f();
    ON.store(false, Ordering::Relaxed);
    let marks = MARKS
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    (r, marks)
}
