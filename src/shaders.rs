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

/// Every shader file.
pub fn all() -> Vec<&'static Shader> {
    vec![&MATMUL]
}

/// Every pipeline specialisation the launchers can ask for.
pub fn specialisations() -> Vec<PipelineKey> {
    crate::kernels::matmul::specialisations()
}
