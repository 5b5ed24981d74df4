//! The second-order drivers of the lab: one whole L-BFGS or Newton-CG run of
//! the linear classifier on a dataset ([`fit_linear`], what `train_linear
//! --optimizer lbfgs|newton-cg` and `src/lab/cli/second_order.rs` (the `second_order` example) run), and the
//! course's small f64 demonstrations ([`demos`]). The algorithms themselves
//! are the core's [`crate::second_order`].

pub mod demos;
mod run;

pub use run::{Device, LinearRun, fit_linear};
