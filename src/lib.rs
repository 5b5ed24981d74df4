//! # wgpu-train
//!
//! Train small neural networks with WGSL compute shaders on any GPU that wgpu
//! reaches — Vulkan, Metal, DX12, or Mesa's software Vulkan (lavapipe) where
//! there is no GPU — with every kernel verified against an ndarray CPU twin.
//!
//! The pieces:
//! - [`Gpu`]: the context (adapter, device, limits, error scopes, pipeline
//!   cache), built once and shared, across threads too (on wgpu's GL
//!   backend it serialises device access itself).
//! - [`GpuTensor`]: typed storage buffers with a shape; uploads, readbacks.
//! - [`GpuLabels`]: class labels, checked against the class count on the
//!   CPU whenever they are written.
//! - [`kernels`]: one launcher per shader in `shaders/`, e.g.
//!   [`kernels::matmul`], [`kernels::softmax_xent`],
//!   [`kernels::activation_bias_backward`], [`kernels::column_sum`].
//! - [`cpu`]: the ndarray twin of every kernel, with the same names, the
//!   tolerance check the tests use, and the f64 finite-difference
//!   [`cpu::gradcheck`].
//! - [`options`]: options shared by both sides ([`MatmulOptions`], [`Activation`]).
//! - [`optim`]: optimizer rules (SGD, momentum, Nesterov, Adagrad, RMSprop,
//!   Adam, AdamW, with torch.optim's semantics and Keras variants), their
//!   formulas, schedules and validation; run by
//!   [`kernels::optim::GpuOptimizer`] (one fused dispatch per step) and
//!   [`cpu::optim::CpuOptimizer`].
//! - [`files`]: file writes that are atomic, follow symbolic links, refuse
//!   devices and directories, keep permissions and clean up after killed runs.
//! - [`checkpoint`]: named tensors and metadata as safetensors, written
//!   atomically, loaded with checked names and shapes.
//! - [`metrics`]: per-epoch metrics and a run's history.
//! - [`second_order`]: L-BFGS and Newton-CG on the linear classifier's
//!   full-batch loss, with vectors on the GPU (or the CPU twin) and only
//!   scalars read back; built on [`kernels::linalg`] (dot products, linear
//!   combinations, the softmax-CE Hessian-vector product).
//! - [`tune`]: the autotuner, above the kernels: the engines call it before
//!   building their launchers; it keeps its choices in the [`Gpu`]'s
//!   [`gpu::TuneRecord`], which launchers built with `Auto` read.
//!
//! Everything above is the *core*. The *lab* (`lab`, behind the default-on
//! cargo feature `lab`) is built on it and never the other way round:
//! benchmarks, the verify table (every kernel family against its CPU twin,
//! async: what the browser page runs), the course notebook's optimisation
//! strategies and second-order demos, run summaries (`--json`), plots
//! (feature `plot`) and downloads (feature `download`: without it the
//! checksums and readers stay, and fetching is an error saying what to do).
//!
//! The crate also builds for `wasm32-unknown-unknown` (wgpu's WebGPU
//! backend, in a browser): there the blocking helpers (`Gpu::new`,
//! `GpuTensor::read`, `Gpu::wait`), files, downloads, checkpoints, plots,
//! benchmarks, the second-order and strategy drivers and the autotuner's
//! timing and disk cache are left out; the kernels, CPU twins, models,
//! optimizers, the training engines (async epochs) and the lab's `verify` remain.
//! See `web/`.
//!
//! Errors are values: bad shapes, oversized buffers, missing adapters and
//! wgpu validation errors all come back as [`Error`].

#[cfg(not(target_arch = "wasm32"))]
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod files;
pub mod gpu;
pub mod kernels;
#[cfg(feature = "lab")]
pub mod lab;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod options;
#[cfg(not(target_arch = "wasm32"))]
pub mod second_order;
pub mod timing;
pub mod train;
pub mod tune;

pub use data::Dataset;
pub use error::{Error, Result};
pub use gpu::{AdapterSummary, Gpu, GpuLabels, GpuOptions, GpuTensor};
pub use kernels::{ColumnSumKernel, GpuOptimizer, MatmulKernel, SoftmaxXentKernel};
pub use metrics::{EpochMetrics, History};
pub use optim::{OptimizerConfig, Schedule};
pub use options::{Activation, MatmulOptions, MatmulShape, SoftmaxXentShape};
