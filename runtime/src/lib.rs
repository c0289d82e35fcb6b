//! The runtime: lowers the cnncost IR to candle tensor ops and trains,
//! evaluates and predicts with it.

pub mod checkpoint;
pub mod init;
pub mod kernels;
pub mod loss;
pub mod model;
pub mod optim;
pub mod schedule;
