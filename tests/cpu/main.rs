//! Every check that needs no GPU, in one binary: the CPU reference and its
//! finite-difference proof, the CPU runner's gradients, shader validation
//! with naga, data readers and downloads, checkpoints, metrics, plots, and
//! the examples' command-line errors (`cli` runs the example binaries that
//! `cargo test` builds). The GPU tests are in `tests/gpu`.

#[path = "../common/mod.rs"]
mod common;
use common::data_util;

mod atomic_writes;
mod checkpoint;
mod cli;
#[cfg(feature = "plot")]
mod course;
mod cpu_reference;
mod data_readers;
// A local HTTP server and real fetches: only with the `download` feature.
#[cfg(feature = "download")]
mod download;
mod fashion_mnist;
mod gradcheck;
mod hostile_cli;
mod hostile_newer;
mod loss;
mod metrics;
mod model_gradient;
#[cfg(feature = "plot")]
mod plot;
mod shader_writers;
mod shaders;
#[cfg(feature = "cli")]
mod tool;
