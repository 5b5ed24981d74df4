//! Checkpoints: named `f32` / `u32` tensors plus string metadata, saved as
//! [safetensors](https://github.com/huggingface/safetensors) and written
//! atomically.
//!
//! The file is ordinary safetensors — little-endian, row-major, the metadata
//! in the header's `__metadata__` map — so Python reads it with
//! `safetensors.numpy.load_file` or `safetensors.torch.load_file`.
//!
//! [`save`] never leaves a partial file at the destination: it writes a
//! temporary file beside it, flushes it to disk, then renames it over the
//! target, so a crash or a full disk mid-save keeps the previous checkpoint.
//! [`load`] checks the whole file before handing anything back, and the
//! accessors ([`Checkpoint::f32`], [`Checkpoint::u32`], [`Checkpoint::meta`])
//! check names, dtypes and shapes, so a checkpoint from another model fails
//! with a message that names the tensor and both shapes.
//!
//! ```no_run
//! use wgpu_train::checkpoint::{self, Checkpoint, NamedTensor};
//! # fn main() -> wgpu_train::Result<()> {
//! let mut ckpt = Checkpoint::new();
//! ckpt.push(NamedTensor::f32("fc1.weight", &[2, 3], vec![0.0; 6]));
//! ckpt.push(NamedTensor::u32("adam.step", &[1], vec![469]));
//! ckpt.metadata.insert("epoch".into(), "1".into());
//! checkpoint::save("run.safetensors".as_ref(), &ckpt)?;
//!
//! let back = checkpoint::load("run.safetensors".as_ref())?;
//! let w: &[f32] = back.f32("fc1.weight", &[2, 3])?;
//! let epoch: usize = back.meta("epoch")?.parse().unwrap_or(0);
//! # let _ = (w, epoch);
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// The values of one tensor. Only the two types training needs: `f32` for
/// parameters and optimizer state, `u32` for counters (the step count).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

impl TensorData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::U32(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// "f32" or "u32", as error messages spell it.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            TensorData::F32(_) => "f32",
            TensorData::U32(_) => "u32",
        }
    }
}

/// A tensor with its name and row-major shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl NamedTensor {
    /// An `f32` tensor. The shape is checked against the data in [`save`].
    pub fn f32(name: impl Into<String>, shape: &[usize], data: Vec<f32>) -> Self {
        NamedTensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        }
    }

    /// A `u32` tensor. The shape is checked against the data in [`save`].
    pub fn u32(name: impl Into<String>, shape: &[usize], data: Vec<u32>) -> Self {
        NamedTensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: TensorData::U32(data),
        }
    }
}

/// Named tensors plus string metadata (epoch, optimizer, seed, …).
///
/// Build one with [`Checkpoint::new`] and [`Checkpoint::push`], write it with
/// [`save`], read it with [`load`] and take tensors out with the checked
/// accessors.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// The tensors. [`load`] returns them sorted by name: safetensors lays
    /// them out by dtype and name, not in the order they were pushed.
    pub tensors: Vec<NamedTensor>,
    /// Free-form string metadata, stored in the header's `__metadata__`.
    pub metadata: BTreeMap<String, String>,
    /// The file it was loaded from, named in the accessors' errors.
    source: Option<PathBuf>,
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a tensor; returns `self` so calls can be chained.
    pub fn push(&mut self, tensor: NamedTensor) -> &mut Self {
        self.tensors.push(tensor);
        self
    }

    /// The file this checkpoint was loaded from; `None` if built in memory.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The tensor called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The values of the `f32` tensor `name`, which must have exactly `shape`.
    ///
    /// A missing name, another dtype or another shape is an
    /// [`Error::Checkpoint`] naming the tensor with what was expected and
    /// what was found.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let tensor = self.checked(name, shape, "f32")?;
        match &tensor.data {
            TensorData::F32(v) => Ok(v),
            // `checked` compared the dtype already.
            TensorData::U32(_) => Err(self.error(format!("tensor '{name}' is u32, expected f32"))),
        }
    }

    /// The values of the `u32` tensor `name`, which must have exactly `shape`.
    /// Errors as for [`Checkpoint::f32`].
    pub fn u32(&self, name: &str, shape: &[usize]) -> Result<&[u32]> {
        let tensor = self.checked(name, shape, "u32")?;
        match &tensor.data {
            TensorData::U32(v) => Ok(v),
            TensorData::F32(_) => Err(self.error(format!("tensor '{name}' is f32, expected u32"))),
        }
    }

    /// The metadata value for `key`; a missing key is an error listing the
    /// keys that are there.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| {
            let keys: Vec<&str> = self.metadata.keys().map(String::as_str).collect();
            self.error(format!(
                "no metadata key '{key}' (keys present: {})",
                list_or_none(&keys)
            ))
        })
    }

    /// Finds `name` and checks its dtype and shape, and that the data fills
    /// the shape (a checkpoint built in memory may not have been saved yet).
    fn checked(&self, name: &str, shape: &[usize], dtype: &str) -> Result<&NamedTensor> {
        let Some(tensor) = self.get(name) else {
            let names: Vec<&str> = self.tensors.iter().map(|t| t.name.as_str()).collect();
            return Err(self.error(format!(
                "no tensor named '{name}' (tensors present: {})",
                list_or_none(&names)
            )));
        };
        let found = tensor.data.dtype_name();
        if found != dtype {
            return Err(self.error(format!(
                "tensor '{name}' is {found} {:?}, expected {dtype} {shape:?}",
                tensor.shape
            )));
        }
        if tensor.shape != shape {
            return Err(self.error(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?}",
                tensor.shape
            )));
        }
        check_len(tensor).map_err(|msg| self.error(msg))?;
        Ok(tensor)
    }

    fn error(&self, msg: String) -> Error {
        Error::Checkpoint {
            file: self.source.clone(),
            msg,
        }
    }
}

/// Names in an error message: the first 12, then a count, so a big
/// checkpoint does not flood the terminal.
fn list_or_none(names: &[&str]) -> String {
    const SHOWN: usize = 12;
    if names.is_empty() {
        return "none".to_string();
    }
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(", … {} in all", names.len()));
    }
    s
}

/// Checks that the data holds exactly the number of values the shape says.
fn check_len(tensor: &NamedTensor) -> std::result::Result<(), String> {
    let numel = tensor
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format!(
                "tensor '{}': shape {:?} overflows usize",
                tensor.name, tensor.shape
            )
        })?;
    if numel != tensor.data.len() {
        return Err(format!(
            "tensor '{}': shape {:?} holds {numel} values but the data has {}",
            tensor.name,
            tensor.shape,
            tensor.data.len()
        ));
    }
    Ok(())
}

/// Writes `ckpt` to `path` as safetensors, atomically: the previous file at
/// `path`, if any, stays intact unless the whole new file made it to disk.
///
/// Fails, writing nothing, on duplicate or empty tensor names, the reserved
/// name `__metadata__`, or data that does not fill its shape.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    let bytes = to_bytes(ckpt).map_err(|e| match e {
        Error::Checkpoint { file: None, msg } => Error::Checkpoint {
            file: Some(path.to_path_buf()),
            msg,
        },
        e => e,
    })?;
    crate::files::write(path, &bytes).map_err(|e| Error::Checkpoint {
        file: Some(path.to_path_buf()),
        msg: format!("cannot write: {e}"),
    })
}

/// Checks, without writing, that [`save`] could write to `path`: its
/// directory exists and is writable, and `path` is missing or a regular
/// file (see [`crate::files::check_destination`]). Call it before work
/// whose result is to be saved there.
pub fn check_destination(path: &Path) -> Result<()> {
    crate::files::check_destination(path).map_err(|e| Error::Checkpoint {
        file: Some(path.to_path_buf()),
        msg: format!("cannot be written: {e}"),
    })
}

/// `ckpt` as the bytes of a safetensors file; the checks of [`save`].
pub fn to_bytes(ckpt: &Checkpoint) -> Result<Vec<u8>> {
    let err = |msg: String| Error::Checkpoint { file: None, msg };

    let mut seen = std::collections::HashSet::new();
    for t in &ckpt.tensors {
        if t.name.is_empty() {
            return Err(err("a tensor has an empty name".to_string()));
        }
        // safetensors keeps the metadata under this key in the same JSON map.
        if t.name == "__metadata__" {
            return Err(err(
                "'__metadata__' is reserved and cannot name a tensor".to_string()
            ));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(err(format!("two tensors are named '{}'", t.name)));
        }
        check_len(t).map_err(err)?;
    }

    // Explicit little-endian bytes, as the format requires, whatever the host.
    let encoded: Vec<(&NamedTensor, Dtype, Vec<u8>)> = ckpt
        .tensors
        .iter()
        .map(|t| {
            let (dtype, bytes) = match &t.data {
                TensorData::F32(v) => {
                    (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                TensorData::U32(v) => {
                    (Dtype::U32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
            };
            (t, dtype, bytes)
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(t, dtype, bytes)| {
            TensorView::new(*dtype, t.shape.clone(), bytes)
                .map(|view| (t.name.as_str(), view))
                .map_err(|e| err(format!("tensor '{}': {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = (!ckpt.metadata.is_empty()).then(|| {
        ckpt.metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>()
    });
    safetensors::serialize(views, metadata)
        .map_err(|e| err(format!("cannot encode as safetensors: {e}")))
}

/// The largest checkpoint [`load`] reads: 4 GiB, the parameters and two
/// optimizer states of a billion-parameter model and more than any device
/// binding this crate fills. Larger files, and anything that is not a
/// regular file (`/dev/zero`), are refused before a byte is read.
pub const MAX_BYTES: u64 = 4 << 30;

/// Reads a checkpoint written by [`save`] (or any safetensors file whose
/// tensors are all F32 or U32).
///
/// A missing, truncated or corrupt file, or one with other dtypes, is an
/// [`Error::Checkpoint`] naming the file.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = crate::files::read_bounded(path, MAX_BYTES).map_err(|e| Error::Checkpoint {
        file: Some(path.to_path_buf()),
        msg: format!("cannot read: {e}"),
    })?;
    let mut ckpt = parse(&bytes).map_err(|e| match e {
        Error::Checkpoint { file: None, msg } => Error::Checkpoint {
            file: Some(path.to_path_buf()),
            msg,
        },
        e => e,
    })?;
    ckpt.source = Some(path.to_path_buf());
    Ok(ckpt)
}

/// Reads a checkpoint from the bytes of a safetensors file, with the checks
/// of [`load`] (which the fuzz target drives through this).
pub fn parse(bytes: &[u8]) -> Result<Checkpoint> {
    let err = |msg: String| Error::Checkpoint { file: None, msg };
    // `read_metadata` validates the header, every tensor's offsets against
    // its dtype and shape, and that the data exactly fills the file — so a
    // truncated file is caught here and the slicing below stays in bounds.
    let (header_len, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
        err(format!(
            "not a valid safetensors file (truncated or corrupt?): {e}"
        ))
    })?;
    let data = bytes
        .get(header_len.saturating_add(8)..)
        .ok_or_else(|| err("not a valid safetensors file: no data section".to_string()))?;

    let mut tensors = Vec::new();
    for (name, info) in header.tensors() {
        let (start, end) = info.data_offsets;
        let raw = data
            .get(start..end)
            .ok_or_else(|| err(format!("tensor '{name}': data offsets out of bounds")))?;
        let data = match info.dtype {
            Dtype::F32 => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            Dtype::U32 => TensorData::U32(
                raw.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            other => {
                return Err(err(format!(
                    "tensor '{name}' has dtype {other}; wgpu-train reads only F32 and U32"
                )));
            }
        };
        tensors.push(NamedTensor {
            name,
            shape: info.shape.clone(),
            data,
        });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));

    let metadata = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Checkpoint {
        tensors,
        metadata,
        source: None,
    })
}
