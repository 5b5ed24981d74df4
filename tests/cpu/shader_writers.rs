//! Every shipped specialisation (the list `tests/shaders.rs` validates:
//! entry points × override constants) through the four naga writers that
//! wgpu's native backends use, no GPU needed:
//!
//! - SPIR-V (Vulkan), checked by `spirv-val` (Debian `spirv-tools`) for the
//!   Vulkan 1.1 and 1.2 environments, at the SPIR-V versions wgpu writes for
//!   those API versions (1.3 and 1.5);
//! - GLSL compute (GL / GLES), checked by `glslangValidator` (Debian
//!   `glslang-tools`) as GLSL ES 3.10 (the least GLES with compute), GLSL
//!   4.30 and 4.50 (what wgpu writes for a GL 4.5 context, e.g. llvmpipe);
//! - MSL (Metal) and HLSL (DX12): written without error with the options
//!   wgpu uses (bounds checks, zero-initialised workgroup memory, explicit
//!   binding maps). No Metal or DirectX compiler runs on Linux, so their
//!   output is not compiled here.
//!
//! And the limits the shaders fix: every specialisation's workgroup size and
//! workgroup memory fit WebGPU's defaults, the memory matches
//! each `Shader::workgroup_memory` (which `Gpu::pipeline` checks at run time,
//! wgpu does not), and only the listed entry points need more than wgpu's
//! downlevel defaults.
//!
//! The tools are installed by `scripts/test.sh`; when one is missing this
//! test fails and says which package to install (it never skips).

use naga::back::pipeline_constants::process_overrides;
use naga::back::{PipelineConstants, glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::{AddressSpace, Module, ResourceBinding, ShaderStage};
use std::path::{Path, PathBuf};
use std::process::Command;
use wgpu_train::gpu::PipelineKey;
use wgpu_train::kernels::shaders;

/// One specialisation, overrides resolved as a backend resolves them.
struct Spec {
    shader: &'static str,
    /// The workgroup memory the shader's table declares for this entry point.
    declared_workgroup_memory: u32,
    name: String,
    entry: String,
    module: Module,
    info: ModuleInfo,
}

fn validate(module: &Module, what: &str) -> ModuleInfo {
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(module)
        .unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

fn resolve(key: &PipelineKey) -> Spec {
    let module = naga::front::wgsl::parse_str(key.shader.source).unwrap_or_else(|e| {
        panic!(
            "{}.wgsl: {}",
            key.shader.name,
            e.emit_to_string(key.shader.source)
        )
    });
    let info = validate(&module, key.shader.name);
    let constants: PipelineConstants = key
        .constants
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let (module, _) = process_overrides(
        &module,
        &info,
        Some((ShaderStage::Compute, key.entry)),
        &constants,
    )
    .unwrap_or_else(|e| panic!("{key:?}: {e}"));
    let module = module.into_owned();
    let name = format!(
        "{}-{}-{}",
        key.shader.name,
        key.entry,
        key.constants
            .iter()
            .map(|(k, v)| format!("{k}{v}"))
            .collect::<Vec<_>>()
            .join("-")
    );
    let info = validate(&module, &name);
    Spec {
        shader: key.shader.name,
        declared_workgroup_memory: key.shader.workgroup_memory(key.entry),
        name,
        entry: key.entry.to_string(),
        module,
        info,
    }
}

/// The specialisations, with a file-name-safe unique name each.
fn specs() -> Vec<Spec> {
    let keys = shaders::specialisations();
    assert!(!keys.is_empty());
    keys.iter().map(resolve).collect()
}

/// Runs a validator; a missing tool is a failure that names its package.
fn run(tool: &str, package: &str, args: &[&str]) -> std::process::Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {tool} ({e}): install Debian's {package} \
             (scripts/test.sh installs it)"
        )
    })
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-train-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The (group, binding) and address space of each bound global, in order.
fn bindings(module: &Module) -> Vec<(ResourceBinding, AddressSpace)> {
    module
        .global_variables
        .iter()
        .filter_map(|(_, v)| v.binding.map(|b| (b, v.space)))
        .collect()
}

fn is_uniform(space: AddressSpace) -> bool {
    matches!(space, AddressSpace::Uniform)
}

#[test]
fn spirv_is_valid_for_vulkan_1_1_and_1_2() {
    let specs = specs();
    let dir = scratch_dir("spirv");
    // wgpu writes SPIR-V 1.3 for Vulkan 1.1 devices and 1.5 for Vulkan 1.2.
    let targets = [((1, 3), "vulkan1.1"), ((1, 5), "vulkan1.2")];
    let mut checked = 0;
    for spec in &specs {
        for (lang_version, env) in targets {
            // As wgpu-hal's Vulkan backend sets them for a device without
            // optional features or robust buffer access 2.
            let options = spv::Options {
                lang_version,
                flags: spv::WriterFlags::LABEL_VARYINGS | spv::WriterFlags::FORCE_POINT_SIZE,
                capabilities: Some(
                    [
                        spv::Capability::Shader,
                        spv::Capability::Matrix,
                        spv::Capability::Sampled1D,
                        spv::Capability::Image1D,
                        spv::Capability::ImageQuery,
                        spv::Capability::DerivativeControl,
                        spv::Capability::StorageImageExtendedFormats,
                    ]
                    .into_iter()
                    .collect(),
                ),
                bounds_check_policies: naga::proc::BoundsCheckPolicies {
                    index: naga::proc::BoundsCheckPolicy::Restrict,
                    buffer: naga::proc::BoundsCheckPolicy::Restrict,
                    image_load: naga::proc::BoundsCheckPolicy::Restrict,
                    binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
                },
                zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::Polyfill,
                fake_missing_bindings: false,
                // wgpu-hal numbers a layout's bindings in order; ours are
                // already 0, 1, 2, ...
                binding_map: bindings(&spec.module)
                    .into_iter()
                    .map(|(b, _)| {
                        let info = spv::BindingInfo {
                            descriptor_set: b.group,
                            binding: b.binding,
                            binding_array_size: None,
                        };
                        (b, info)
                    })
                    .collect(),
                ..spv::Options::default()
            };
            let pipeline = spv::PipelineOptions {
                shader_stage: ShaderStage::Compute,
                entry_point: spec.entry.clone(),
            };
            let words = spv::write_vec(&spec.module, &spec.info, &options, Some(&pipeline))
                .unwrap_or_else(|e| panic!("{}: SPIR-V writer: {e}", spec.name));
            let path = dir.join(format!("{}-{env}.spv", spec.name));
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            std::fs::write(&path, bytes).expect("write .spv");
            let out = run(
                "spirv-val",
                "spirv-tools",
                &["--target-env", env, path.to_str().expect("utf-8 path")],
            );
            assert!(
                out.status.success(),
                "{}: spirv-val --target-env {env} rejects it:\n{}{}",
                spec.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "spirv-val accepted {checked} modules ({} specialisations × {} targets)",
        specs.len(),
        targets.len()
    );
}

/// wgpu's GL backend numbers uniform and storage blocks separately, in
/// binding order within a group.
fn glsl_binding_map(module: &Module) -> glsl::BindingMap {
    let (mut uniforms, mut storage) = (0u8, 0u8);
    bindings(module)
        .into_iter()
        .map(|(b, space)| {
            let counter = if is_uniform(space) {
                &mut uniforms
            } else {
                &mut storage
            };
            let slot = *counter;
            *counter += 1;
            (b, slot)
        })
        .collect()
}

fn write_glsl(spec: &Spec, version: glsl::Version) -> String {
    let options = glsl::Options {
        version,
        writer_flags: glsl::WriterFlags::ADJUST_COORDINATE_SPACE
            | glsl::WriterFlags::FORCE_POINT_SIZE,
        binding_map: glsl_binding_map(&spec.module),
        zero_initialize_workgroup_memory: true,
    };
    let pipeline = glsl::PipelineOptions {
        shader_stage: ShaderStage::Compute,
        entry_point: spec.entry.clone(),
        multiview: None,
    };
    // wgpu's GL backend leaves buffer and index bounds to GLSL.
    let policies = naga::proc::BoundsCheckPolicies {
        index: naga::proc::BoundsCheckPolicy::Unchecked,
        buffer: naga::proc::BoundsCheckPolicy::Unchecked,
        image_load: naga::proc::BoundsCheckPolicy::Unchecked,
        binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
    };
    let mut source = String::new();
    glsl::Writer::new(
        &mut source,
        &spec.module,
        &spec.info,
        &options,
        &pipeline,
        policies,
    )
    .and_then(|mut w| w.write())
    .unwrap_or_else(|e| panic!("{}: GLSL writer ({version}): {e}", spec.name));
    source
}

fn glslang_accepts(dir: &Path, label: &str, files: &[PathBuf]) {
    // Validation only (no SPIR-V output); the stage comes from `.comp` and
    // the profile from each file's `#version` line.
    let args: Vec<&str> = files
        .iter()
        .map(|p| p.to_str().expect("utf-8 path"))
        .collect();
    let out = run("glslangValidator", "glslang-tools", &args);
    assert!(
        out.status.success(),
        "glslangValidator rejects GLSL {label} (sources in {}):\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn glsl_compute_is_valid_for_gles_3_1_and_gl_4_3_and_4_5() {
    let specs = specs();
    let dir = scratch_dir("glsl");
    let versions = [
        (
            "310 es",
            glsl::Version::Embedded {
                version: 310,
                is_webgl: false,
            },
        ),
        ("430", glsl::Version::Desktop(430)),
        ("450", glsl::Version::Desktop(450)),
    ];
    for (label, version) in versions {
        let files: Vec<PathBuf> = specs
            .iter()
            .map(|spec| {
                let path = dir.join(format!("{}-{}.comp", spec.name, label.replace(' ', "")));
                std::fs::write(&path, write_glsl(spec, version)).expect("write .comp");
                path
            })
            .collect();
        glslang_accepts(&dir, label, &files);
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "glslangValidator accepted {} specialisations × {} GLSL versions",
        specs.len(),
        versions.len()
    );
}

#[test]
fn msl_is_written_for_metal_2_and_3() {
    let specs = specs();
    for spec in &specs {
        // wgpu-hal's Metal backend: one buffer slot per binding in order,
        // then the sizes buffer for runtime-sized arrays.
        let globals = bindings(&spec.module);
        let resources: msl::BindingMap = globals
            .iter()
            .enumerate()
            .map(|(slot, (b, space))| {
                let target = msl::BindTarget {
                    buffer: Some(slot as u8),
                    mutable: matches!(
                        space,
                        AddressSpace::Storage {
                            access
                        } if access.contains(naga::StorageAccess::STORE)
                    ),
                    ..msl::BindTarget::default()
                };
                (*b, target)
            })
            .collect();
        let map = msl::EntryPointResourceMap::from([(
            spec.entry.clone(),
            msl::EntryPointResources {
                resources,
                immediates_buffer: None,
                sizes_buffer: Some(globals.len() as u8),
            },
        )]);
        for lang_version in [(2, 0), (3, 0)] {
            let options = msl::Options {
                lang_version,
                per_entry_point_map: map.clone(),
                fake_missing_bindings: false,
                bounds_check_policies: naga::proc::BoundsCheckPolicies {
                    index: naga::proc::BoundsCheckPolicy::ReadZeroSkipWrite,
                    buffer: naga::proc::BoundsCheckPolicy::ReadZeroSkipWrite,
                    image_load: naga::proc::BoundsCheckPolicy::ReadZeroSkipWrite,
                    binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
                },
                zero_initialize_workgroup_memory: true,
                force_loop_bounding: true,
                ..msl::Options::default()
            };
            let pipeline = msl::PipelineOptions {
                entry_point: Some((ShaderStage::Compute, spec.entry.clone())),
                ..msl::PipelineOptions::default()
            };
            let (source, _) = msl::write_string(&spec.module, &spec.info, &options, &pipeline)
                .unwrap_or_else(|e| panic!("{}: MSL {lang_version:?} writer: {e:?}", spec.name));
            assert!(
                source.contains("kernel void"),
                "{}: no kernel in the MSL",
                spec.name
            );
        }
    }
    eprintln!(
        "MSL 2.0 and 3.0 written for {} specialisations",
        specs.len()
    );
}

#[test]
fn hlsl_is_written_for_shader_models_5_1_and_6_0() {
    let specs = specs();
    for spec in &specs {
        // wgpu-hal's DX12 backend: uniforms in b registers, read-only storage
        // in t, read-write storage in u, space = bind group.
        let (mut b, mut t, mut u) = (0, 0, 0);
        let binding_map: hlsl::BindingMap = bindings(&spec.module)
            .into_iter()
            .map(|(rb, space)| {
                let counter = match space {
                    AddressSpace::Uniform => &mut b,
                    AddressSpace::Storage { access }
                        if !access.contains(naga::StorageAccess::STORE) =>
                    {
                        &mut t
                    }
                    _ => &mut u,
                };
                let register = *counter;
                *counter += 1;
                let target = hlsl::BindTarget {
                    space: rb.group as u8,
                    register,
                    binding_array_size: None,
                    dynamic_storage_buffer_offsets_index: None,
                    restrict_indexing: true,
                };
                (rb, target)
            })
            .collect();
        for shader_model in [hlsl::ShaderModel::V5_1, hlsl::ShaderModel::V6_0] {
            let options = hlsl::Options {
                shader_model,
                binding_map: binding_map.clone(),
                fake_missing_bindings: false,
                zero_initialize_workgroup_memory: true,
                restrict_indexing: true,
                force_loop_bounding: true,
                ..hlsl::Options::default()
            };
            let pipeline = hlsl::PipelineOptions {
                entry_point: Some((ShaderStage::Compute, spec.entry.clone())),
            };
            let mut source = String::new();
            let info = hlsl::Writer::new(&mut source, &options, &pipeline)
                .write(&spec.module, &spec.info, None)
                .unwrap_or_else(|e| {
                    panic!("{}: HLSL {} writer: {e}", spec.name, shader_model.to_str())
                });
            assert_eq!(info.entry_point_names.len(), 1, "{}", spec.name);
            if let Err(e) = &info.entry_point_names[0] {
                panic!("{}: HLSL entry point: {e}", spec.name);
            }
            assert!(source.contains("[numthreads("), "{}", spec.name);
        }
    }
    eprintln!(
        "HLSL SM 5.1 and 6.0 written for {} specialisations",
        specs.len()
    );
}

#[test]
fn workgroups_fit_webgpu_defaults_and_the_memory_table() {
    let webgpu = wgpu::Limits::default();
    let downlevel = wgpu::Limits::downlevel_defaults();
    let mut past_downlevel = std::collections::BTreeSet::new();
    let mut past_webgpu = std::collections::BTreeSet::new();
    let mut worst = (0u32, 0u32);
    for spec in specs() {
        let (index, ep) = spec
            .module
            .entry_points
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == spec.entry)
            .expect("entry point");
        let [x, y, z] = ep.workgroup_size;
        assert!(
            x <= webgpu.max_compute_workgroup_size_x
                && y <= webgpu.max_compute_workgroup_size_y
                && z <= webgpu.max_compute_workgroup_size_z,
            "{}: workgroup size {x}×{y}×{z}",
            spec.name
        );
        let invocations = x * y * z;
        assert!(
            invocations <= webgpu.max_compute_invocations_per_workgroup,
            "{}: {invocations} invocations per workgroup",
            spec.name
        );
        // The workgroup memory the entry point uses.
        let usage = spec.info.get_entry_point(index);
        let bytes: u32 = spec
            .module
            .global_variables
            .iter()
            .filter(|(h, v)| v.space == AddressSpace::WorkGroup && !usage[*h].is_empty())
            .map(|(_, v)| spec.module.types[v.ty].inner.size(spec.module.to_ctx()))
            .sum();
        assert_eq!(
            spec.declared_workgroup_memory, bytes,
            "{}: the workgroup_memory of {}'s Shader must list {} at {bytes} bytes",
            spec.name, spec.shader, spec.entry
        );
        if bytes > webgpu.max_compute_workgroup_storage_size {
            past_webgpu.insert(format!("{}::{}", spec.shader, spec.entry));
        }
        if bytes > downlevel.max_compute_workgroup_storage_size {
            past_downlevel.insert(format!("{}::{}", spec.shader, spec.entry));
        }
        worst = (worst.0.max(invocations), worst.1.max(bytes));
    }
    // Past wgpu's downlevel defaults (16,352 bytes, Metal's least), a device
    // gets a TooLarge error for these (tests/gpu/backend_paths.rs); a new
    // entry here is a decision, not an accident. Matmul v6 keeps v4's tiles
    // (and its 6 storage buffers are past downlevel's 4 anyway).
    // v7's tiles are 16 KiB, and 32 KiB for the one candidate that needs
    // an adapter offering more than WebGPU's default (the device asks for
    // the adapter's limits; elsewhere that pipeline is a TooLarge error
    // and the tuner skips it): again a decision.
    assert_eq!(
        past_downlevel.into_iter().collect::<Vec<_>>(),
        [
            "matmul::matmul_tiled_8x8",
            "matmul_v7::matmul_v7_128x128_8x8_k16",
            "matmul_v7::matmul_v7_128x128_8x8_k8",
            "matmul_v7::matmul_v7_64x64_4x4_k16",
            "matmul_vec4::matmul_vec4"
        ]
    );
    assert_eq!(
        past_webgpu.into_iter().collect::<Vec<_>>(),
        ["matmul_v7::matmul_v7_128x128_8x8_k16"]
    );
    eprintln!(
        "largest workgroup: {} invocations, {} bytes of workgroup memory",
        worst.0, worst.1
    );
}
