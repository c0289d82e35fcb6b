//! The runtime: lowers the cnncost IR to candle tensor ops and trains,
//! evaluates and predicts with it.

pub mod kernels;
