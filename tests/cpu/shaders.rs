//! Validates every WGSL file, and every specialisation the launchers can
//! build, with naga — no GPU needed, so a broken shader fails here first.

use naga::back::PipelineConstants;
use naga::back::pipeline_constants::process_overrides;
use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpu_train::kernels::shaders;

/// Parses and validates `shader` with naga granting `caps`.
fn parse(
    shader: &wgpu_train::gpu::Shader,
    caps: Capabilities,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(shader.source)
        .unwrap_or_else(|e| panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source)));
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source)));
    (module, info)
}

/// One specialisation: its entry point exists, and the module validates
/// again once its override constants are applied.
fn validate_key(key: &wgpu_train::gpu::PipelineKey, caps: Capabilities) {
    let (module, info) = parse(key.shader, caps);
    assert!(
        module.entry_points.iter().any(|e| e.name == key.entry),
        "{}.wgsl has no entry point {}",
        key.shader.name,
        key.entry
    );
    let constants: PipelineConstants = key
        .constants
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let (resolved, _) = process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, key.entry)),
        &constants,
    )
    .unwrap_or_else(|e| panic!("{key:?}: {e}"));
    Validator::new(ValidationFlags::all(), caps)
        .validate(&resolved)
        .unwrap_or_else(|e| panic!("{key:?} after overrides: {e:?}"));
}

#[test]
fn every_shader_parses_and_validates() {
    for shader in shaders::all() {
        let (module, _) = parse(shader, Capabilities::empty());
        // The declared binding list must match the shader's globals.
        let mut bound: Vec<u32> = module
            .global_variables
            .iter()
            .filter_map(|(_, v)| v.binding.as_ref().map(|b| b.binding))
            .collect();
        bound.sort();
        let declared: Vec<u32> = (0..shader.bindings.len() as u32).collect();
        assert_eq!(bound, declared, "{}.wgsl bindings", shader.name);
    }
}

#[test]
fn every_specialisation_validates() {
    let keys = shaders::specialisations();
    assert!(!keys.is_empty());
    for key in &keys {
        validate_key(key, Capabilities::empty());
    }
    eprintln!("validated {} specialisations", keys.len());
}

/// The subgroup modules: their bindings match the files they extend, every
/// specialisation validates with naga's SUBGROUP capability (what wgpu grants
/// a device with `Features::SUBGROUP`), and none validates without it, which
/// is why they are kept out of `shaders::all()` and `specialisations()`.
#[test]
fn subgroup_specialisations_validate_only_with_the_subgroup_capability() {
    let with = Capabilities::SUBGROUP;
    for shader in shaders::subgroup_shaders() {
        let module = naga::front::wgsl::parse_str(shader.source).unwrap_or_else(|e| {
            panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source))
        });
        assert!(
            Validator::new(ValidationFlags::all(), Capabilities::empty())
                .validate(&module)
                .is_err(),
            "{} validates without subgroups: it need not be a module of its own",
            shader.name
        );
        let bound = module
            .global_variables
            .iter()
            .filter(|(_, v)| v.binding.is_some())
            .count();
        assert_eq!(bound, shader.bindings.len(), "{} bindings", shader.name);
    }
    let keys = shaders::subgroup_specialisations();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(shaders::subgroup_shaders().contains(&key.shader), "{key:?}");
        validate_key(key, with);
    }
    // The modules every device compiles stay free of subgroups.
    for key in shaders::specialisations() {
        assert!(
            !shaders::subgroup_shaders().contains(&key.shader),
            "{key:?}"
        );
    }
}
