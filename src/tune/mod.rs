//! `cnncost tune`'s hyper-parameter search. Every trial is a `cnncost train`
//! process with its own config file and run directory under OUT, run
//! `--jobs` at a time; a trial whose metrics hold all its epochs is done,
//! so an interrupted search resumes where it stopped. Ends with a table
//! sorted by test accuracy and a scatter plot per hyper-parameter.
//!
//! `space`: what is searched and the trials drawn from it; `scheduler`: the
//! trials' directories and the pool of processes; `report`: the results.

pub mod report;
pub mod scheduler;
pub mod space;

pub use space::Trial;
