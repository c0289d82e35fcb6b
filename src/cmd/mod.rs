//! One module per command: its arguments (clap `Args`), its long help where
//! it has one, and its `run`. Commands use `crate::common` and the
//! libraries, never each other.

pub mod analyze;
pub mod augment;
pub mod calibrate;
pub mod check;
pub mod compare;
pub mod diff;
pub mod ensemble;
pub mod eval;
pub mod graph;
pub mod lr_find;
pub mod plot;
pub mod predict;
pub mod profile;
pub mod sweep;
pub mod train;
pub mod tune;
pub mod weights;
pub mod zoo;
