//! The lab: what is built *on* the core library — benchmarks, the verify
//! table, the course's optimisation strategies and second-order demos, plots,
//! run summaries and downloads. The examples (the command-line front ends)
//! and the browser page use it; the core never does (the dependency runs one
//! way, lab → core, which `scripts/import_graph.py --layers` checks and the
//! CI's `cargo check --lib --no-default-features` proves by building the
//! core without it).
//!
//! Why a module behind a default-on cargo feature (`lab`) rather than a
//! second crate of the workspace: the two layers share one version, one
//! set of shaders and one test suite, and the examples, benches and tests
//! of this crate use both; a feature keeps `Cargo.toml`, `src`, `shaders`,
//! `benches`, `tests` and `examples` where users look for them, and a
//! library user who wants only the core builds with
//! `default-features = false`.
//!
//! In a browser (wasm32) only [`verify`] is here: the rest needs files,
//! threads, blocking waits or the network.

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod cli;
#[cfg(all(feature = "plot", not(target_arch = "wasm32")))]
pub mod course;
#[cfg(not(target_arch = "wasm32"))]
pub mod download;
#[cfg(not(target_arch = "wasm32"))]
pub mod latency;
#[cfg(all(feature = "plot", not(target_arch = "wasm32")))]
pub mod plot;
#[cfg(not(target_arch = "wasm32"))]
pub mod report;
#[cfg(not(target_arch = "wasm32"))]
pub mod second_order;
#[cfg(not(target_arch = "wasm32"))]
pub mod strategies;
pub mod summary;
pub mod verify;

pub use summary::RunSummary;
