//! The WGSL sources, compiled into the binary, with each file's binding list.
//!
//! [`specialisations`] lists every (entry point, override constants) pipeline
//! the launchers can build; `tests/shaders.rs` validates each with naga
//! without a GPU.

use crate::gpu::{Binding, PipelineKey};

/// One WGSL file: a kernel family sharing one bind-group layout.
#[derive(Debug, PartialEq)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Binding `i` of group 0 is `bindings[i]`.
    pub bindings: &'static [Binding],
}

pub static MATMUL: Shader = Shader {
    name: "matmul",
    source: include_str!("../shaders/matmul.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // a
        Binding::StorageRead,      // b
        Binding::StorageRead,      // bias
        Binding::StorageReadWrite, // c
    ],
};

pub static DATA: Shader = Shader {
    name: "data",
    source: include_str!("../shaders/data.wgsl"),
    bindings: &[
        Binding::UniformSlot(crate::kernels::data::PARAMS_SIZE), // per-step params
        Binding::StorageRead,                                    // order
        Binding::StorageRead,                                    // images (one chunk)
        Binding::StorageRead,                                    // labels
        Binding::StorageReadWrite,                               // x
        Binding::StorageReadWrite,                               // y
    ],
};

pub static OPTIM: Shader = Shader {
    name: "optim",
    source: include_str!("../shaders/optim.wgsl"),
    bindings: &[
        Binding::Uniform,          // h: hyperparameters
        Binding::StorageReadWrite, // st: step scalars (t, scheduled lr, ...)
        Binding::StorageReadWrite, // params
        Binding::StorageRead,      // grads
        Binding::StorageReadWrite, // s1: first state buffer
        Binding::StorageReadWrite, // s2
        Binding::StorageReadWrite, // s3
    ],
};

pub static SOFTMAX_XENT: Shader = Shader {
    name: "softmax_xent",
    source: include_str!("../shaders/softmax_xent.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // logits
        Binding::StorageRead,      // labels
        Binding::StorageReadWrite, // loss
        Binding::StorageReadWrite, // correct
        Binding::StorageReadWrite, // dlogits
    ],
};

pub static ACTIVATION: Shader = Shader {
    name: "activation",
    source: include_str!("../shaders/activation.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // dh
        Binding::StorageRead,      // h
        Binding::StorageReadWrite, // dz
    ],
};

pub static REDUCE: Shader = Shader {
    name: "reduce",
    source: include_str!("../shaders/reduce.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // x
        Binding::StorageRead,      // h
        Binding::StorageReadWrite, // dz
        Binding::StorageReadWrite, // sums
        Binding::StorageRead,      // flags
        Binding::StorageReadWrite, // count
    ],
};

pub static LINALG: Shader = Shader {
    name: "linalg",
    source: include_str!("../shaders/linalg.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // a
        Binding::StorageRead,      // b
        Binding::StorageRead,      // items: dot pairs or combine terms
        Binding::StorageReadWrite, // out
    ],
};

/// Every shader file.
pub fn all() -> Vec<&'static Shader> {
    vec![
        &MATMUL,
        &DATA,
        &OPTIM,
        &SOFTMAX_XENT,
        &ACTIVATION,
        &REDUCE,
        &LINALG,
    ]
}

/// Every pipeline specialisation the launchers can ask for.
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = crate::kernels::matmul::specialisations();
    keys.extend(crate::kernels::data::specialisations());
    keys.extend(crate::kernels::optim::specialisations());
    keys.extend(crate::kernels::softmax_xent::specialisations());
    keys.extend(crate::kernels::activation::specialisations());
    keys.extend(crate::kernels::reduce::specialisations());
    keys.extend(crate::kernels::linalg::specialisations());
    keys
}
