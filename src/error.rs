//! One error type for the whole crate.
//!
//! Every failure a caller can cause — a bad shape, a buffer past the device's
//! limits, a missing adapter, a wgpu validation error — comes back as an
//! [`Error`] with a message that says what to change. Nothing on those paths
//! panics.

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `wgpu_train`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No wgpu adapter matched the request. The message says how to get one.
    #[error("{0}")]
    NoAdapter(String),

    /// The adapter refused to create a device.
    #[error("the adapter '{adapter}' refused to create a device: {source}")]
    RequestDevice {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },

    /// Operands whose shapes do not fit together, or an invalid shape.
    #[error("shape error in {op}: {msg}")]
    Shape { op: &'static str, msg: String },

    /// A buffer, binding or dispatch larger than the device allows.
    #[error("{what} needs {needed} but the device allows at most {limit} ({limit_name})")]
    TooLarge {
        what: String,
        needed: String,
        limit: String,
        limit_name: &'static str,
    },

    /// A class label that is not a valid index into the logits' columns: at
    /// least the class count, or not representable as a `u32` (e.g. negative).
    /// Raised on the CPU before anything is dispatched, so a bad label can
    /// never become an out-of-bounds read on the GPU.
    #[error(
        "label {label} at row {row} is not a class index: labels must be integers in 0..{classes}"
    )]
    Label {
        row: usize,
        label: String,
        classes: usize,
    },

    /// An invalid argument (hyperparameter, option) named by `name`.
    #[error("invalid {name}: {msg}")]
    InvalidArgument { name: &'static str, msg: String },

    /// wgpu reported a validation error (a bug in how wgpu was called).
    #[error("GPU validation error during {during}: {description}")]
    GpuValidation { during: String, description: String },

    /// The device ran out of memory.
    #[error("GPU out of memory during {during}")]
    GpuOutOfMemory { during: String },

    /// An internal error from the driver or wgpu.
    #[error("GPU internal error during {during}: {description}")]
    GpuInternal { during: String, description: String },

    /// Waiting for the device or mapping a buffer failed (device lost, timeout).
    #[error("GPU readback or wait failed: {0}")]
    Device(String),

    /// A data file (or directory) that is missing, unreadable or malformed.
    /// `file` is the path the user gave or the file found for them, so the
    /// message always says which file to look at.
    #[error("{}: {msg}", file.display())]
    Data { file: PathBuf, msg: String },

    /// No dataset anywhere we looked; the message lists the places and says
    /// how to get one.
    #[error("{0}")]
    NoData(String),

    /// A download failed: network, HTTP status, size or checksum. Nothing is
    /// left at the destination when this is returned.
    #[error("download of {url} failed: {msg}")]
    Download { url: String, msg: String },

    /// A checkpoint could not be written or read, or does not hold the tensor
    /// asked for. `file` is `None` for a checkpoint built in memory.
    #[error("checkpoint{}: {msg}", in_file(.file.as_deref()))]
    Checkpoint { file: Option<PathBuf>, msg: String },

    /// Training diverged: a loss became NaN or infinite. `device` is "gpu"
    /// or "cpu", `epoch` 1-based, `what` the loss that showed it ("training
    /// loss", "validation loss", "test loss").
    /// `advice` names the setting to change ([`divergence_advice`]).
    #[error("[{device}] diverged: the {what} became {value} in epoch {epoch}; {advice}")]
    Diverged {
        device: &'static str,
        epoch: usize,
        what: &'static str,
        value: f64,
        advice: String,
    },

    /// A plot could not be drawn or written.
    #[error("plot '{}': {msg}", .file.display())]
    Plot { file: PathBuf, msg: String },
}

impl Error {
    pub(crate) fn shape(op: &'static str, msg: impl fmt::Display) -> Self {
        Error::Shape {
            op,
            msg: msg.to_string(),
        }
    }

    pub(crate) fn data(file: impl Into<PathBuf>, msg: impl fmt::Display) -> Self {
        Error::Data {
            file: file.into(),
            msg: msg.to_string(),
        }
    }

    pub(crate) fn from_wgpu(during: &str, err: wgpu::Error) -> Self {
        let during = during.to_string();
        match err {
            wgpu::Error::OutOfMemory { .. } => Error::GpuOutOfMemory { during },
            wgpu::Error::Validation { description, .. } => Error::GpuValidation {
                during,
                description,
            },
            wgpu::Error::Internal { description, .. } => Error::GpuInternal {
                during,
                description,
            },
        }
    }
}

/// " 'path'" for a file, "" for none: the checkpoint error names its file
/// when there is one.
fn in_file(file: Option<&Path>) -> String {
    file.map(|f| format!(" '{}'", f.display()))
        .unwrap_or_default()
}

/// `Ok` when a count is at least 1, else an [`Error::InvalidArgument`]
/// naming it.
pub(crate) fn positive(name: &'static str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(Error::InvalidArgument {
            name,
            msg: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// Formats a byte count the way people read them ("129.0 MiB (135266304 bytes)").
pub(crate) fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n >= 1 << 20 {
        format!("{:.1} MiB ({n} bytes)", n as f64 / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// The value of the crate's environment variable `name`, `None` when it is
/// unset or blank. A value that is not UTF-8 is an error naming the
/// variable, as ASCII nonsense is where the caller parses it: a setting
/// must never be silently dropped for its encoding.
pub fn env_setting(name: &'static str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::InvalidArgument {
            name,
            msg: format!("{v:?} is not UTF-8"),
        }),
    }
}

/// `Ok` when a count taken from the user is at most `max`: checked before
/// anything is allocated from it, so an absurd value is a clear error
/// rather than an allocation that aborts the process.
pub fn at_most(name: &'static str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(Error::InvalidArgument {
            name,
            msg: format!("{value} is more than the {max} allowed"),
        });
    }
    Ok(())
}

/// What to change after a divergence with learning rate `lr` and weight
/// decay `weight_decay` (λ, added to the gradient): where lr·λ ≥ 2 each step
/// multiplies the weights by |1 − lr·λ| ≥ 1 whatever the data, so the decay
/// is the cause and a smaller learning rate is not the first thing to try.
pub fn divergence_advice(lr: f32, weight_decay: f32) -> String {
    let product = f64::from(lr) * f64::from(weight_decay);
    if weight_decay > 0.0 && (product >= 2.0 || product.is_nan()) {
        format!(
            "the weight decay (λ = {weight_decay}) times the learning rate ({lr}) is {product:e}, \
             at least 2, so every step grows the weights: try a much smaller weight decay (--l2)"
        )
    } else {
        "try a smaller learning rate (--lr)".to_string()
    }
}
