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
//! - [`shapes`]: options shared by both sides ([`MatmulOptions`], [`Activation`]).
//! - [`optim`]: optimizer rules (SGD, momentum, Nesterov, Adagrad, RMSprop,
//!   Adam, AdamW, with torch.optim's semantics and Keras variants), their
//!   formulas, schedules and validation; run by
//!   [`kernels::optim::GpuOptimizer`] (one fused dispatch per step) and
//!   [`cpu::optim::CpuOptimizer`].
//! - [`atomic`]: file writes that are atomic, follow symbolic links, refuse
//!   devices and directories, keep permissions and clean up after killed runs.
//! - [`checkpoint`]: named tensors and metadata as safetensors, written
//!   atomically, loaded with checked names and shapes.
//! - [`metrics`]: per-epoch metrics, the epoch line and the `--json` run
//!   summary.
//! - `plot` (default-on cargo feature `plot`): loss and accuracy curves per
//!   epoch as SVG or PNG.
//!
//! - [`second_order`]: L-BFGS and Newton-CG on the linear classifier's
//!   full-batch loss, with vectors on the GPU (or the CPU twin) and only
//!   scalars read back; built on [`kernels::linalg`] (dot products, linear
//!   combinations, the softmax-CE Hessian-vector product).
//!
//! - [`strategies`]: the course notebook's four optimisation strategies
//!   (random search, random local search, numerical vs analytic gradient,
//!   minibatch descent) on the linear classifier, on the GPU and the CPU.
//!
//! - [`verify`]: every kernel family against its CPU twin as a table of
//!   worst errors and timings (async; what the browser page and the browser
//!   tests run).
//!
//! The crate also builds for `wasm32-unknown-unknown` (wgpu's WebGPU
//! backend, in a browser): there the blocking helpers (`Gpu::new`,
//! `GpuTensor::read`, `Gpu::wait`), files, downloads, checkpoints, plots,
//! benchmarks, the second-order and strategy drivers and the autotuner's
//! timing and disk cache are left out; the kernels, CPU twins, models,
//! optimizers, the training engines (async epochs) and [`verify`] remain.
//! See `web/`.
//!
//! Errors are values: bad shapes, oversized buffers, missing adapters and
//! wgpu validation errors all come back as [`Error`].

#[cfg(not(target_arch = "wasm32"))]
pub mod atomic;
#[cfg(not(target_arch = "wasm32"))]
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod error;
pub mod gpu;
pub mod kernels;
#[cfg(feature = "lab")]
pub mod lab;
pub mod metrics;
pub mod model;
pub mod optim;
#[cfg(not(target_arch = "wasm32"))]
pub mod second_order;
pub mod shapes;
pub mod timing;
pub mod train;
pub mod tune;

pub use data::Dataset;
pub use error::{Error, Result};
pub use gpu::{AdapterSummary, Gpu, GpuLabels, GpuOptions, GpuTensor};
pub use kernels::{ColumnSumKernel, GpuOptimizer, MatmulKernel, SoftmaxXentKernel};
pub use metrics::{EpochMetrics, History};
pub use optim::{OptimizerConfig, Schedule};
pub use shapes::{Activation, MatmulOptions, MatmulShape, SoftmaxXentShape};
