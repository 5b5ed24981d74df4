//! The WGSL sources, compiled into the binary, with each file's binding list.
//! WGSL has no includes: code shared by several shaders lives in
//! `shaders/shared/` and is appended here with `concat!`, after the including
//! file so that naga's and the drivers' line numbers stay the file's own.
//!
//! [`specialisations`] lists every (entry point, override constants) pipeline
//! the launchers can build; `tests/cpu/shaders.rs` validates each with naga
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
    source: concat!(
        include_str!("../shaders/matmul.wgsl"),
        include_str!("../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // a
        Binding::StorageRead,      // b
        Binding::StorageRead,      // bias, or H for the activation-grad epilogue
        Binding::StorageReadWrite, // c
    ],
};

/// Matmul v6: `matmul.wgsl` with `matmul_vec4.wgsl` appended, which binds A
/// and B a second time as `array<vec4<f32>>` (a binding has one type), so
/// its layout has two more storage buffers than [`MATMUL`]'s; v1..v5 keep
/// the smaller one.
pub static MATMUL_VEC4: Shader = Shader {
    name: "matmul_vec4",
    source: concat!(
        include_str!("../shaders/matmul.wgsl"),
        include_str!("../shaders/shared/activation_grad.wgsl"),
        include_str!("../shaders/matmul_vec4.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // a
        Binding::StorageRead,      // b
        Binding::StorageRead,      // bias, or H for the activation-grad epilogue
        Binding::StorageReadWrite, // c
        Binding::StorageRead,      // a4: a as vec4s (or a placeholder)
        Binding::StorageRead,      // b4: b as vec4s (or a placeholder)
    ],
};

pub static GATHER: Shader = Shader {
    name: "gather",
    source: include_str!("../shaders/gather.wgsl"),
    bindings: &[
        Binding::UniformSlot(crate::kernels::gather::PARAMS_SIZE), // per-step params
        Binding::StorageRead,                                      // order
        Binding::StorageRead,                                      // images (one chunk)
        Binding::StorageRead,                                      // labels
        Binding::StorageReadWrite,                                 // x
        Binding::StorageReadWrite,                                 // y
    ],
};

pub static GATHER_MATMUL: Shader = Shader {
    name: "gather_matmul",
    source: include_str!("../shaders/gather_matmul.wgsl"),
    bindings: &[
        Binding::UniformSlot(crate::kernels::gather::PARAMS_SIZE), // g: the gather's per-step params
        Binding::Uniform,                                          // p: the product's params
        Binding::StorageRead,                                      // order
        Binding::StorageRead,                                      // images (the one chunk)
        Binding::StorageRead,                                      // labels
        Binding::StorageRead,                                      // w
        Binding::StorageRead,                                      // bias
        Binding::StorageReadWrite,                                 // c
        Binding::StorageReadWrite,                                 // x
        Binding::StorageReadWrite,                                 // y
    ],
};

pub static LAYER_BACKWARD: Shader = Shader {
    name: "layer_backward",
    source: concat!(
        include_str!("../shaders/layer_backward.wgsl"),
        include_str!("../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // dz
        Binding::StorageRead,      // h
        Binding::StorageRead,      // w
        Binding::StorageReadWrite, // grads (dw and db)
        Binding::StorageReadWrite, // dz_below
    ],
};

pub static ROW_STEP: Shader = Shader {
    name: "row_step",
    source: concat!(
        include_str!("../shaders/row_step.wgsl"),
        include_str!("../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // params: weights and biases
        Binding::StorageRead,      // labels
        Binding::StorageReadWrite, // arena: h1 in; hidden outputs and deltas out
        Binding::StorageReadWrite, // loss
        Binding::StorageReadWrite, // correct
    ],
};

pub static WEIGHT_STEP: Shader = Shader {
    name: "weight_step",
    source: include_str!("../shaders/weight_step.wgsl"),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // x: the first layer's input rows
        Binding::StorageRead,      // arena: the other inputs and every delta
        Binding::StorageReadWrite, // grads
        Binding::StorageRead,      // loss
        Binding::StorageRead,      // correct
        Binding::StorageReadWrite, // loss_total
        Binding::StorageReadWrite, // correct_total
    ],
};

pub static OPTIM: Shader = Shader {
    name: "optim",
    source: concat!(
        include_str!("../shaders/optim.wgsl"),
        include_str!("../shaders/shared/optim_rules.wgsl")
    ),
    bindings: &[
        Binding::Uniform,                                        // h: hyperparameters
        Binding::StorageSlot(crate::kernels::optim::STEP_BYTES), // st: step scalars, at a per-step offset
        Binding::StorageReadWrite,                               // params
        Binding::StorageRead,                                    // grads
        Binding::StorageReadWrite,                               // s1: first state buffer
        Binding::StorageReadWrite,                               // s2
        Binding::StorageReadWrite,                               // s3
    ],
};

pub static SWEEP_OPTIM: Shader = Shader {
    name: "sweep_optim",
    source: concat!(
        include_str!("../shaders/sweep_optim.wgsl"),
        include_str!("../shaders/shared/optim_rules.wgsl")
    ),
    bindings: &[
        Binding::Uniform,     // sw: the grid and the models' sizes
        Binding::StorageRead, // hypers: one Hyper per model
        // steps: this update's StepScalars, one per model, at a per-step offset
        Binding::StorageSlot(crate::kernels::optim::STEP_BYTES),
        Binding::StorageReadWrite, // params
        Binding::StorageRead,      // grads
        Binding::StorageReadWrite, // s1
        Binding::StorageReadWrite, // s2
        Binding::StorageReadWrite, // s3
    ],
};

pub static SOFTMAX_XENT: Shader = Shader {
    name: "softmax_xent",
    source: include_str!("../shaders/softmax_xent.wgsl"),
    bindings: XENT_BINDINGS,
};

const XENT_BINDINGS: &[Binding] = &[
    Binding::Uniform,          // params
    Binding::StorageRead,      // logits
    Binding::StorageRead,      // labels
    Binding::StorageReadWrite, // loss
    Binding::StorageReadWrite, // correct
    Binding::StorageReadWrite, // dlogits
    Binding::StorageReadWrite, // loss_total (v3)
    Binding::StorageReadWrite, // correct_total (v3)
];

/// softmax_xent.wgsl with the subgroup version (v4) in front: a module of
/// its own because its `enable subgroups;` fails to compile on devices
/// without `wgpu::Features::SUBGROUP`. Same bindings as [`SOFTMAX_XENT`].
pub static SOFTMAX_XENT_SUBGROUP: Shader = Shader {
    name: "softmax_xent_subgroup",
    source: concat!(
        include_str!("../shaders/softmax_xent_subgroup.wgsl"),
        include_str!("../shaders/softmax_xent.wgsl")
    ),
    bindings: XENT_BINDINGS,
};

pub static ACTIVATION: Shader = Shader {
    name: "activation",
    source: concat!(
        include_str!("../shaders/activation.wgsl"),
        include_str!("../shaders/shared/activation_grad.wgsl")
    ),
    bindings: &[
        Binding::Uniform,          // params
        Binding::StorageRead,      // dh
        Binding::StorageRead,      // h
        Binding::StorageReadWrite, // dz
    ],
};

pub static REDUCE: Shader = Shader {
    name: "reduce",
    source: concat!(
        include_str!("../shaders/reduce.wgsl"),
        include_str!("../shaders/shared/activation_grad.wgsl")
    ),
    bindings: REDUCE_BINDINGS,
};

const REDUCE_BINDINGS: &[Binding] = &[
    Binding::Uniform,          // params
    Binding::StorageRead,      // x
    Binding::StorageRead,      // h
    Binding::StorageReadWrite, // dz
    Binding::StorageReadWrite, // sums
    Binding::StorageRead,      // flags
    Binding::StorageReadWrite, // count
];

/// reduce.wgsl with the subgroup column sum (v3) in front, for devices with
/// `wgpu::Features::SUBGROUP` only (see [`SOFTMAX_XENT_SUBGROUP`]).
pub static REDUCE_SUBGROUP: Shader = Shader {
    name: "reduce_subgroup",
    source: concat!(
        include_str!("../shaders/reduce_subgroup.wgsl"),
        include_str!("../shaders/reduce.wgsl"),
        include_str!("../shaders/shared/activation_grad.wgsl")
    ),
    bindings: REDUCE_BINDINGS,
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

/// Workgroup memory of each entry point that uses any, in bytes: wgpu does
/// not check it against the device's limit (it checks workgroup sizes), so
/// [`crate::Gpu::pipeline`] does, from this table. `tests/cpu/shader_writers.rs`
/// recomputes every specialisation's figure with naga, so the table cannot
/// drift from the shaders.
pub const WORKGROUP_MEMORY: &[(&str, &str, u32)] = &[
    ("matmul", "matmul_tiled", 8192),      // two 16×64 f32 tiles
    ("matmul", "matmul_tiled_8x8", 16384), // two double-buffered 8×128 tiles
    ("matmul_vec4", "matmul_vec4", 16384), // v4's tiles
    ("reduce", "column_sum", 1024),
    ("reduce", "loss_correct_sum", 2048),
    ("softmax_xent", "xent_workgroup", 768),
    ("softmax_xent", "xent_totals", 2048),
    ("linalg", "dots", 1024),
    ("row_step", "row_step", 16128), // 4 rows of activations and deltas, partial sums
    ("weight_step", "weight_step", 2048), // the totals' 256 lanes
];

/// Bytes of workgroup memory `entry` of `shader` uses (0: none).
pub fn workgroup_memory(shader: &str, entry: &str) -> u32 {
    WORKGROUP_MEMORY
        .iter()
        .find(|(s, e, _)| *s == shader && *e == entry)
        .map_or(0, |&(_, _, bytes)| bytes)
}

/// The modules that need `wgpu::Features::SUBGROUP` (naga: the SUBGROUP
/// capability), kept out of [`all`] and [`specialisations`] so that the
/// checks and passes for adapters without subgroups never compile them.
pub fn subgroup_shaders() -> Vec<&'static Shader> {
    vec![&SOFTMAX_XENT_SUBGROUP, &REDUCE_SUBGROUP]
}

/// Every pipeline specialisation of [`subgroup_shaders`] the launchers can
/// ask for on a device with subgroups.
pub fn subgroup_specialisations() -> Vec<PipelineKey> {
    let mut keys = crate::kernels::softmax_xent::subgroup_specialisations();
    keys.extend(crate::kernels::reduce::subgroup_specialisations());
    keys
}

/// Every shader file that any device compiles (no optional features).
pub fn all() -> Vec<&'static Shader> {
    vec![
        &MATMUL,
        &MATMUL_VEC4,
        &GATHER,
        &GATHER_MATMUL,
        &LAYER_BACKWARD,
        &ROW_STEP,
        &WEIGHT_STEP,
        &OPTIM,
        &SWEEP_OPTIM,
        &SOFTMAX_XENT,
        &ACTIVATION,
        &REDUCE,
        &LINALG,
    ]
}

/// Every pipeline specialisation the launchers can ask for.
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = crate::kernels::matmul::specialisations();
    keys.extend(crate::kernels::gather::specialisations());
    keys.extend(crate::kernels::gather_matmul::specialisations());
    keys.extend(crate::kernels::layer_backward::specialisations());
    keys.extend(crate::kernels::row_step::specialisations());
    keys.extend(crate::kernels::weight_step::specialisations());
    keys.extend(crate::kernels::optim::specialisations());
    keys.extend(crate::kernels::sweep_optim::specialisations());
    keys.extend(crate::kernels::softmax_xent::specialisations());
    keys.extend(crate::kernels::activation::specialisations());
    keys.extend(crate::kernels::reduce::specialisations());
    keys.extend(crate::kernels::linalg::specialisations());
    keys
}

/// A subset of `keys` in which, for each shader entry point, every value of
/// every override constant, and every pair of values of two constants, occurs
/// in at least one key (chosen greedily, most new pairs first). For a
/// compiler whose pipelines are slow to build: the browser test compiles
/// these under Tint, where SwiftShader spends ~2 s on each large matmul
/// pipeline, while the native tests validate and translate every key.
/// An error tied to one constant's value, or to two constants together, is
/// still caught; one needing three at once is not.
pub fn pairwise_cover(keys: &[PipelineKey]) -> Vec<PipelineKey> {
    // What one key covers: its values and pairs of values, as strings.
    fn covers(key: &PipelineKey) -> Vec<String> {
        let c = &key.constants;
        let mut out: Vec<String> = c.iter().map(|(n, v)| format!("{n}={v}")).collect();
        for (i, (n1, v1)) in c.iter().enumerate() {
            for (n2, v2) in &c[i + 1..] {
                out.push(format!("{n1}={v1} {n2}={v2}"));
            }
        }
        if out.is_empty() {
            out.push(String::new()); // no constants: the one pipeline
        }
        out
    }
    let mut chosen = Vec::new();
    let mut entries: Vec<(&str, &str)> = Vec::new();
    for k in keys {
        if !entries.contains(&(k.shader.name, k.entry)) {
            entries.push((k.shader.name, k.entry));
        }
    }
    for (shader, entry) in entries {
        let mut left: Vec<(&PipelineKey, Vec<String>)> = keys
            .iter()
            .filter(|k| k.shader.name == shader && k.entry == entry)
            .map(|k| (k, covers(k)))
            .collect();
        let mut covered = std::collections::HashSet::new();
        loop {
            let new = |c: &Vec<String>| c.iter().filter(|s| !covered.contains(*s)).count();
            // The first key with the most uncovered items (ties: key order).
            let Some((best, n)) = left.iter().enumerate().map(|(i, (_, c))| (i, new(c))).fold(
                None,
                |b: Option<(usize, usize)>, (i, n)| match b {
                    Some((_, bn)) if bn >= n => b,
                    _ => Some((i, n)),
                },
            ) else {
                break;
            };
            if n == 0 {
                break;
            }
            let (key, c) = left.remove(best);
            covered.extend(c);
            chosen.push(key.clone());
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cover keeps every entry point, every value and every pair of
    /// values of the full list, and is much smaller than it.
    #[test]
    fn pairwise_cover_covers_every_value_pair_of_every_entry_point() {
        let all = specialisations();
        let cover = pairwise_cover(&all);
        for k in &all {
            for (i, a) in k.constants.iter().enumerate() {
                for b in &k.constants[i..] {
                    let hit = cover.iter().any(|c| {
                        c.shader.name == k.shader.name
                            && c.entry == k.entry
                            && c.constants.contains(a)
                            && c.constants.contains(b)
                    });
                    assert!(hit, "{}::{} {a:?} with {b:?}", k.shader.name, k.entry);
                }
            }
            let entry = |c: &&PipelineKey| c.shader.name == k.shader.name && c.entry == k.entry;
            assert!(
                cover.iter().any(|c| entry(&c)),
                "{}::{}",
                k.shader.name,
                k.entry
            );
        }
        assert!(cover.iter().all(|c| all.contains(c)));
        assert!(
            cover.len() * 3 < all.len(),
            "{} of {} keys",
            cover.len(),
            all.len()
        );
        eprintln!("pairwise cover: {} of {} keys", cover.len(), all.len());
    }
}
