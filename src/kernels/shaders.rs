//! Every kernel family's shader and every pipeline specialisation the
//! launchers can build, gathered from the kernel modules (each owns its
//! [`Shader`]: the WGSL source, compiled into the binary, its bind-group
//! layout and its workgroup memory). `tests/cpu/shaders.rs` and
//! `tests/cpu/shader_writers.rs` validate each key with naga without a GPU;
//! the browser test compiles a [`pairwise_cover`] of them under Tint.
//!
//! WGSL has no includes: code shared by several shaders lives in
//! `shaders/shared/` and is appended with `concat!` after the including file,
//! so that naga's and the drivers' line numbers stay the file's own.

use crate::gpu::{PipelineKey, Shader};

/// The modules that need `wgpu::Features::SUBGROUP` (naga: the SUBGROUP
/// capability), kept out of [`all`] and [`specialisations`] so that the
/// checks and passes for adapters without subgroups never compile them.
pub fn subgroup_shaders() -> Vec<&'static Shader> {
    vec![
        &super::softmax_xent::SOFTMAX_XENT_SUBGROUP,
        &super::reduce::REDUCE_SUBGROUP,
    ]
}

/// Every pipeline specialisation of [`subgroup_shaders`] the launchers can
/// ask for on a device with subgroups.
pub fn subgroup_specialisations() -> Vec<PipelineKey> {
    let mut keys = super::softmax_xent::subgroup_specialisations();
    keys.extend(super::reduce::subgroup_specialisations());
    keys
}

/// Every shader file that any device compiles (no optional features).
pub fn all() -> Vec<&'static Shader> {
    vec![
        &super::matmul::MATMUL,
        &super::matmul::MATMUL_VEC4,
        &*super::matmul_v7::MATMUL_V7,
        &super::gather::GATHER,
        &super::gather_matmul::GATHER_MATMUL,
        &super::layer_backward::LAYER_BACKWARD,
        &super::row_step::ROW_STEP,
        &super::weight_step::WEIGHT_STEP,
        &super::weight_step::WEIGHT_STEP_UPDATE,
        &super::optim::OPTIM,
        &super::sweep_optim::SWEEP_OPTIM,
        &super::softmax_xent::SOFTMAX_XENT,
        &super::activation::ACTIVATION,
        &super::reduce::REDUCE,
        &super::linalg::LINALG,
        &super::loss::LOSS,
        &super::descent::DESCENT,
    ]
}

/// Every pipeline specialisation the launchers can ask for.
pub fn specialisations() -> Vec<PipelineKey> {
    let mut keys = super::matmul::specialisations();
    keys.extend(super::gather::specialisations());
    keys.extend(super::gather_matmul::specialisations());
    keys.extend(super::layer_backward::specialisations());
    keys.extend(super::row_step::specialisations());
    keys.extend(super::weight_step::specialisations());
    keys.extend(super::optim::specialisations());
    keys.extend(super::sweep_optim::specialisations());
    keys.extend(super::softmax_xent::specialisations());
    keys.extend(super::activation::specialisations());
    keys.extend(super::reduce::specialisations());
    keys.extend(super::linalg::specialisations());
    keys.extend(super::loss::specialisations());
    keys.extend(super::descent::specialisations());
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
