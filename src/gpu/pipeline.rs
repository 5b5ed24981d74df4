//! Compute pipelines built once per (shader, entry point, constants) and cached.
//!
//! Every entry point of one shader file shares one bind-group layout, declared
//! beside the shader in its kernel module ([`Shader`]), so launchers can swap kernel
//! versions without rebuilding bind groups.

use super::{Deferred, Gpu};
use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a shader binding is used; the order in [`Shader::bindings`] is the
/// binding index in group 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Uniform,
    /// A uniform read at a per-dispatch dynamic offset: one slot per step,
    /// all written once, so recorded steps need no CPU round trip. The value
    /// is the slot's size in bytes.
    UniformSlot(u64),
    /// A read-write storage window at a per-dispatch dynamic offset (the
    /// optimizer's step scalars: one slot per planned update). The value is
    /// the slot's size in bytes.
    StorageSlot(u64),
    StorageRead,
    StorageReadWrite,
}

/// One WGSL file: a kernel family sharing one bind-group layout. Each
/// kernel module declares its own (e.g. `kernels::matmul::MATMUL`);
/// `kernels::shaders` lists them all.
#[derive(Debug, PartialEq)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Binding `i` of group 0 is `bindings[i]`.
    pub bindings: &'static [Binding],
    /// Bytes of workgroup memory of each entry point that uses any: wgpu
    /// does not check it against the device's limit (it checks workgroup
    /// sizes), so [`Gpu::pipeline`] does, from this list.
    /// `tests/cpu/shader_writers.rs` recomputes every specialisation's
    /// figure with naga, so the list cannot drift from the WGSL.
    pub workgroup_memory: &'static [(&'static str, u32)],
    /// Built without wgpu's runtime checks and with workgroup memory left
    /// unzeroed (unless `WGPU_TRAIN_CHECKED=1`): only for a file whose every
    /// entry point is argued in range in the table of `src/kernels/mod.rs`.
    pub trusted: bool,
}

impl Shader {
    /// Bytes of workgroup memory `entry` uses (0: none).
    pub fn workgroup_memory(&self, entry: &str) -> u32 {
        self.workgroup_memory
            .iter()
            .find(|(e, _)| *e == entry)
            .map_or(0, |&(_, bytes)| bytes)
    }

    /// Storage buffers the layout binds in one stage (what
    /// `max_storage_buffers_per_shader_stage` limits).
    pub fn storage_buffers(&self) -> u32 {
        self.bindings
            .iter()
            .filter(|b| {
                matches!(
                    b,
                    Binding::StorageRead | Binding::StorageReadWrite | Binding::StorageSlot(_)
                )
            })
            .count() as u32
    }
}

/// One specialisation of a kernel: the shader, its entry point and the values
/// of its `override` constants. Tests validate every key a launcher can build.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineKey {
    pub shader: &'static Shader,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, f64)>,
}

impl PipelineKey {
    fn cache_key(&self) -> String {
        let mut k = format!("{}::{}", self.shader.name, self.entry);
        for (name, value) in &self.constants {
            k.push_str(&format!(" {name}={value}"));
        }
        k
    }
}

/// A compiled pipeline and the layout its bind groups must follow.
pub struct KernelPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, (wgpu::ShaderModule, wgpu::BindGroupLayout)>>,
    pipelines: Mutex<HashMap<String, Arc<KernelPipeline>>>,
}

fn layout_entries(bindings: &[Binding]) -> Vec<wgpu::BindGroupLayoutEntry> {
    bindings
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match b {
                Binding::Uniform => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Binding::UniformSlot(size) => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(*size),
                },
                Binding::StorageSlot(size) => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: false },
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(*size),
                },
                Binding::StorageRead | Binding::StorageReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *b == Binding::StorageRead,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            },
            count: None,
        })
        .collect()
}

impl Gpu {
    /// The pipeline for `key`, compiled on first use and cached afterwards.
    pub fn pipeline(&self, key: &PipelineKey) -> Result<Arc<KernelPipeline>> {
        let cache_key = key.cache_key();
        let cache = &self.pipelines;
        if let Some(p) = lock(&cache.pipelines).get(&cache_key) {
            return Ok(Arc::clone(p));
        }
        self.check_bindings(key.shader)?;
        self.check_workgroup_memory(key)?;
        let (module, layout) = {
            let mut modules = lock(&cache.modules);
            match modules.get(key.shader.name) {
                Some(m) => m.clone(),
                None => {
                    let built =
                        self.scoped(&format!("compiling {}.wgsl", key.shader.name), || {
                            let desc = wgpu::ShaderModuleDescriptor {
                                label: Some(key.shader.name),
                                source: wgpu::ShaderSource::Wgsl(key.shader.source.into()),
                            };
                            let module = if self.trusts(key.shader) {
                                // SAFETY: the shader is marked `trusted`,
                                // whose table (src/kernels/mod.rs) argues for
                                // each of its kernels that every index is in
                                // range given its launcher's checks, every
                                // loop ends and no divisor is zero.
                                unsafe {
                                    self.device().create_shader_module_trusted(
                                        desc,
                                        wgpu::ShaderRuntimeChecks::unchecked(),
                                    )
                                }
                            } else {
                                self.device().create_shader_module(desc)
                            };
                            let layout = self.device().create_bind_group_layout(
                                &wgpu::BindGroupLayoutDescriptor {
                                    label: Some(key.shader.name),
                                    entries: &layout_entries(key.shader.bindings),
                                },
                            );
                            (module, layout)
                        })?;
                    modules.insert(key.shader.name, built.clone());
                    built
                }
            }
        };
        let pipeline = self.scoped(&format!("building pipeline {cache_key}"), || {
            let pl = self
                .device()
                .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some(key.shader.name),
                    bind_group_layouts: &[Some(&layout)],
                    immediate_size: 0,
                });
            self.device()
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&cache_key),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(key.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &key.constants,
                        zero_initialize_workgroup_memory: self.zero_initialises_workgroup_memory()
                            && !self.trusts(key.shader),
                    },
                    cache: None,
                })
        })?;
        let kp = Arc::new(KernelPipeline { pipeline, layout });
        lock(&cache.pipelines).insert(cache_key, Arc::clone(&kp));
        Ok(kp)
    }

    /// Checks a shader's binding list against the device's per-stage limits,
    /// so a smaller device (wgpu's downlevel defaults allow 4 storage buffers
    /// per stage) gets an error that names the kernel and the limit rather
    /// than a bind-group-layout validation error. (Workgroup sizes: wgpu
    /// checks them, and `tests/cpu/shader_writers.rs` keeps every
    /// specialisation within WebGPU's defaults.)
    fn check_bindings(&self, shader: &Shader) -> Result<()> {
        let limits = self.limits();
        let count = |f: fn(&Binding) -> bool| shader.bindings.iter().filter(|b| f(b)).count();
        let storage = shader.storage_buffers() as usize;
        let uniform = count(|b| matches!(b, Binding::Uniform | Binding::UniformSlot(_)));
        let dynamic_uniform = count(|b| matches!(b, Binding::UniformSlot(_)));
        let dynamic_storage = count(|b| matches!(b, Binding::StorageSlot(_)));
        for (n, limit, what, limit_name) in [
            (
                storage,
                limits.max_storage_buffers_per_shader_stage,
                "storage buffers",
                "max_storage_buffers_per_shader_stage",
            ),
            (
                uniform,
                limits.max_uniform_buffers_per_shader_stage,
                "uniform buffers",
                "max_uniform_buffers_per_shader_stage",
            ),
            (
                dynamic_uniform,
                limits.max_dynamic_uniform_buffers_per_pipeline_layout,
                "uniform buffers with dynamic offsets",
                "max_dynamic_uniform_buffers_per_pipeline_layout",
            ),
            (
                dynamic_storage,
                limits.max_dynamic_storage_buffers_per_pipeline_layout,
                "storage buffers with dynamic offsets",
                "max_dynamic_storage_buffers_per_pipeline_layout",
            ),
            (
                shader.bindings.len(),
                limits.max_bindings_per_bind_group,
                "bindings in one bind group",
                "max_bindings_per_bind_group",
            ),
        ] {
            if n > limit as usize {
                return Err(crate::Error::TooLarge {
                    what: format!("{}.wgsl", shader.name),
                    needed: format!("{n} {what}"),
                    limit: limit.to_string(),
                    limit_name,
                });
            }
        }
        Ok(())
    }

    /// Checks an entry point's workgroup memory against the device's limit:
    /// wgpu validates workgroup sizes but not this, and a device with less
    /// (wgpu's downlevel defaults: 16,352 bytes, Metal's least) would fail in
    /// the driver instead.
    fn check_workgroup_memory(&self, key: &PipelineKey) -> Result<()> {
        let bytes = key.shader.workgroup_memory(key.entry);
        let limit = self.limits().max_compute_workgroup_storage_size;
        if bytes > limit {
            return Err(crate::Error::TooLarge {
                what: format!("{}.wgsl's {}", key.shader.name, key.entry),
                needed: format!("{bytes} bytes of workgroup memory"),
                limit: limit.to_string(),
                limit_name: "max_compute_workgroup_storage_size",
            });
        }
        Ok(())
    }

    /// Binds `buffers` (whole) in order, matching the shader's binding list.
    pub fn bind_group(
        &self,
        kp: &KernelPipeline,
        buffers: &[&wgpu::Buffer],
    ) -> Result<Deferred<wgpu::BindGroup>> {
        let resources: Vec<_> = buffers.iter().map(|b| b.as_entire_binding()).collect();
        self.bind_group_with(kp, resources)
    }

    /// Binds arbitrary resources in order (e.g. a uniform slot of a given size).
    pub fn bind_group_with(
        &self,
        kp: &KernelPipeline,
        resources: Vec<wgpu::BindingResource<'_>>,
    ) -> Result<Deferred<wgpu::BindGroup>> {
        // WebGPU forbids one buffer range in two writable bindings of a
        // dispatch, even an unused one (Dawn rejects the dispatch; wgpu's
        // native validation does not check it): each slot left to a
        // placeholder gets a placeholder of its own.
        let own: Vec<Option<wgpu::Buffer>> = self.exclusive(|| {
            resources
                .iter()
                .enumerate()
                .map(|(i, r)| match r {
                    wgpu::BindingResource::Buffer(b)
                        if *b.buffer == self.placeholder || *b.buffer == self.placeholder_rw =>
                    {
                        Some(self.placeholder_for_slot(i))
                    }
                    _ => None,
                })
                .collect()
        });
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .into_iter()
            .zip(&own)
            .enumerate()
            .map(|(i, (resource, own))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: own.as_ref().map_or(resource, |b| b.as_entire_binding()),
            })
            .collect();
        // Deferred: dropping a bind group may drop the last handle of the
        // buffers it binds.
        let group = self.scoped("creating a bind group", || {
            self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &kp.layout,
                entries: &entries,
            })
        })?;
        Ok(self.defer(group))
    }
}

/// A poisoned cache only means another thread panicked mid-insert; the map
/// itself is still consistent, so keep going.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
