//! The runtime: lowers the cnncost IR to candle tensor ops and trains,
//! evaluates and predicts with it.
//!
//! `model` lowers a network (one `match` over the ops) with `init`'s
//! starting values and `kernels`' custom ops; `loss`, `optim` and
//! `schedule` make a training step; `train` runs epochs over `data`'s
//! loaders, writing `checkpoint`s; `evaluate` scores a split or an image;
//! `config` is the YAML of training settings; `error` is the one error
//! type of them all.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod calibrate;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod ema;
pub mod error;
pub mod evaluate;
pub mod init;
pub mod kernels;
pub mod loss;
pub mod model;
pub mod optim;
pub mod run_dir;
pub mod sanity;
pub mod schedule;
pub mod train;
pub mod transfer;

pub use error::Error;
