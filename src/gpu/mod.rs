//! The GPU context: adapter choice, device limits, error scopes.
//!
//! A [`Gpu`] is built once and shared (it is `Send + Sync`); every kernel
//! launcher takes `&Gpu`. It owns the pipeline cache, so shaders compile once
//! per process however many launchers are built. On wgpu's GL backend it also
//! serialises device access itself (see [`Gpu::exclusive`] and the `gl_lock`
//! module), so several threads may share one there too.

mod buffer;
mod gl_lock;
mod labels;
mod pipeline;
mod timer;
mod tune_record;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use buffer::read_mapped;
pub use buffer::{Element, GpuTensor};
pub use gl_lock::Deferred;
pub use labels::GpuLabels;
pub use pipeline::{Binding, KernelPipeline, PipelineKey, Shader};
pub use timer::{GpuTimer, TimerKind};
pub use tune_record::{TuneMode, TuneRecord, parse_cache};

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// How to pick an adapter. `GpuOptions::default()` honours the usual wgpu
/// environment variables: `WGPU_BACKEND` (e.g. `vulkan`, `metal`, `dx12`,
/// `gl`; an unknown name is an error rather than, as in wgpu, no backend at
/// all), `WGPU_POWER_PREF` (`low`/`high`) and `WGPU_ADAPTER_NAME` (a
/// substring of the adapter's name, case-insensitive). Every [`Gpu`] also
/// honours `WGPU_TRAIN_LIMITS` (see [`limits_from_env`]).
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Backends to consider. `None` reads `WGPU_BACKEND`, else the primary
    /// backends (Vulkan, Metal, DX12, WebGPU).
    pub backends: Option<wgpu::Backends>,
    /// Power preference when more than one adapter fits.
    pub power_preference: wgpu::PowerPreference,
    /// Only accept a software ("fallback") adapter such as lavapipe.
    pub force_fallback_adapter: bool,
    /// Only accept an adapter whose name contains this (case-insensitive).
    pub adapter_name: Option<String>,
    /// Caps the device's limits: each limit is the worse of the adapter's
    /// and this one's, so a big GPU behaves like a smaller one (e.g.
    /// `wgpu::Limits::default()`, WebGPU's guaranteed limits). Start from
    /// `wgpu::Limits::unlimited()` to cap only some. `None` requests the
    /// adapter's real limits (less any `WGPU_TRAIN_LIMITS` cap).
    pub limits: Option<wgpu::Limits>,
    /// Shorthand for a cap on `max_storage_buffer_binding_size` alone, for
    /// tests that exercise chunking and limit errors (e.g. 1 MiB).
    pub max_storage_buffer_binding_size: Option<u64>,
    /// Kernel autotuning ([`crate::tune`]). `None` reads
    /// `WGPU_TRAIN_AUTOTUNE`, else off.
    pub autotune: Option<TuneMode>,
    /// Where the autotune cache lives; `None`: `$XDG_CACHE_HOME/wgpu-train`.
    pub autotune_dir: Option<std::path::PathBuf>,
    /// Request `wgpu::Features::SUBGROUP` where the adapter offers it (the
    /// default; never in a browser, nor under a `WGPU_TRAIN_LIMITS` cap),
    /// which makes the subgroup versions of softmax-CE and the column sums
    /// available. `false` behaves like an adapter without subgroups.
    pub subgroups: bool,
    /// Keep wgpu's runtime checks (bounds clamping, loop bounding, division
    /// guards) and zero-initialised workgroup memory in every pipeline.
    /// `None` reads `WGPU_TRAIN_CHECKED` ([`checked_from_env`]), else off:
    /// the kernels of a shader marked [`Shader::trusted`] are built without them.
    pub runtime_checks: Option<bool>,
}

/// `WGPU_TRAIN_CHECKED`: `1` (or `true`, `on`) keeps wgpu's runtime checks
/// and zero-initialised workgroup memory in every pipeline, for debugging a
/// kernel; `0`, `false`, `off` or unset builds the kernels of
/// a shader marked [`Shader::trusted`] without them. Any other value is an error.
pub fn checked_from_env() -> Result<Option<bool>> {
    match std::env::var("WGPU_TRAIN_CHECKED") {
        Ok(value) => parse_checked(&value).map(Some),
        Err(_) => Ok(None),
    }
}

fn parse_checked(value: &str) -> Result<bool> {
    match value.trim().to_lowercase().as_str() {
        "" | "0" | "false" | "off" => Ok(false),
        "1" | "true" | "on" => Ok(true),
        other => Err(Error::InvalidArgument {
            name: "WGPU_TRAIN_CHECKED",
            msg: format!("{other:?} is not one of 1, 0 (true/false, on/off)"),
        }),
    }
}

/// The cap named by `WGPU_TRAIN_LIMITS`: `webgpu` is WebGPU's guaranteed
/// limits (`wgpu::Limits::default()`: 8 storage buffers per stage, 256
/// invocations and 16 KiB of workgroup memory, 256 MiB buffers), `downlevel`
/// wgpu's downlevel defaults (4 storage buffers per stage, as on GLES 3.1
/// and many phones), `adapter` or unset no cap. A cap also leaves out the
/// optional subgroups feature. Any other value is an error,
/// so a typo does not silently run uncapped.
pub fn limits_from_env() -> Result<Option<wgpu::Limits>> {
    let Some(value) = crate::error::env_setting("WGPU_TRAIN_LIMITS")? else {
        return Ok(None);
    };
    match value.trim() {
        "adapter" => Ok(None),
        "webgpu" => Ok(Some(wgpu::Limits::default())),
        "downlevel" => Ok(Some(wgpu::Limits::downlevel_defaults())),
        other => Err(Error::InvalidArgument {
            name: "WGPU_TRAIN_LIMITS",
            msg: format!("{other:?} is not one of webgpu, downlevel, adapter"),
        }),
    }
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            backends: None,
            power_preference: wgpu::PowerPreference::from_env()
                .unwrap_or(wgpu::PowerPreference::HighPerformance),
            force_fallback_adapter: false,
            adapter_name: std::env::var("WGPU_ADAPTER_NAME")
                .ok()
                .filter(|s| !s.is_empty()),
            limits: None,
            max_storage_buffer_binding_size: None,
            autotune: None,
            autotune_dir: None,
            subgroups: true,
            runtime_checks: None,
        }
    }
}

/// What the chosen adapter is, for logs and benchmark tables.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: wgpu::Backend,
    pub device_type: wgpu::DeviceType,
    pub driver: String,
    pub driver_info: String,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:?}, {:?}, driver {} {})",
            self.name, self.backend, self.device_type, self.driver, self.driver_info
        )
    }
}

/// The device, its queue and everything built once per process.
pub struct Gpu {
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    limits: wgpu::Limits,
    pipelines: pipeline::PipelineCache,
    /// Bound where a kernel's optional input is absent (e.g. no bias).
    placeholder: wgpu::Buffer,
    /// The same for read-write bindings an entry point does not use. A buffer
    /// may not be bound read-only and read-write in one dispatch, so one
    /// placeholder cannot fill both kinds of slot.
    placeholder_rw: wgpu::Buffer,
    /// One placeholder per binding index, made on first use (see
    /// `bind_group_with`).
    slot_placeholders: Mutex<Vec<wgpu::Buffer>>,
    /// Errors raised outside any error scope. wgpu's default handler panics;
    /// ours keeps them so the next scoped call can return them.
    uncaptured: Arc<Mutex<Vec<String>>>,
    tune_record: TuneRecord,
    /// The adapter's (min, max) subgroup size where the device was created
    /// with `Features::SUBGROUP`; `None` without it.
    subgroup_sizes: Option<(u32, u32)>,
    /// Error-scope pops still in flight (browser only; see `scoped_unlocked`).
    #[cfg(target_arch = "wasm32")]
    pending: Arc<Pending>,
    /// The device lock, on backends whose driver needs calls serialised (GL).
    serial: Option<gl_lock::Serial>,
    /// wgpu's runtime checks kept in every pipeline (`WGPU_TRAIN_CHECKED`).
    checked: bool,
}

const NO_ADAPTER_HELP: &str = "\
no GPU adapter found. wgpu-train needs a Vulkan, Metal or DX12 driver:
  - with a GPU: install its vendor driver (NVIDIA, AMD, Intel) with Vulkan support;
  - without one (CI, servers), use Mesa's software Vulkan driver, lavapipe:
      Debian/Ubuntu:  sudo apt-get install mesa-vulkan-drivers libvulkan1
      Fedora:         sudo dnf install mesa-vulkan-drivers vulkan-loader
  Check with `vulkaninfo --summary` (package vulkan-tools), then run
  `cargo run --example gpu_info`. WGPU_BACKEND and WGPU_ADAPTER_NAME restrict the choice.";

impl Gpu {
    /// Builds a context with [`GpuOptions::default()`] (honouring `WGPU_BACKEND`).
    /// Native only: in a browser use [`Gpu::new_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default())
    }

    /// As [`Gpu::new`], but with kernel autotuning on unless
    /// `WGPU_TRAIN_AUTOTUNE` says otherwise: what the examples use. The
    /// library's own default (and the tests') is off, a fixed choice.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_tuned() -> Result<Self> {
        let mode = TuneMode::from_env()?.unwrap_or(TuneMode::On);
        Self::with_options(GpuOptions {
            autotune: Some(mode),
            ..GpuOptions::default()
        })
    }

    /// Builds a context with explicit options, blocking on the async setup.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options(options: GpuOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    /// Builds a context asynchronously (the only way on WebGPU).
    pub async fn new_async(options: GpuOptions) -> Result<Self> {
        // Vulkan, Metal, DX12 (and WebGPU in a browser) unless WGPU_BACKEND
        // or the caller says otherwise: compute needs no GL.
        let backends = match options.backends {
            Some(b) => b,
            None => backends_from_env()?.unwrap_or(wgpu::Backends::PRIMARY),
        };
        ensure_runtime_dir();
        ignore_relative_cache_home();
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
        desc.backends = backends;
        let checked = match options.runtime_checks {
            Some(c) => c,
            None => checked_from_env()?.unwrap_or(false),
        };
        let tune_mode = match options.autotune {
            Some(m) => m,
            None => TuneMode::from_env()?.unwrap_or_default(),
        };
        let instance = wgpu::Instance::new(desc);
        let adapter = Self::pick_adapter(&instance, backends, &options).await?;
        let info = adapter.get_info();
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: info.backend,
            device_type: info.device_type,
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        };

        // The adapter's real limits, not wgpu's conservative defaults (128 MiB
        // bindings): MNIST and CIFAR need more.
        // Caps (WGPU_TRAIN_LIMITS, then the options) only ever lower them.
        let mut limits = adapter.limits();
        let env_cap = limits_from_env()?;
        for cap in [env_cap.clone(), options.limits.clone()]
            .into_iter()
            .flatten()
        {
            limits = limits.or_worse_values_from(&cap);
        }
        if let Some(max) = options.max_storage_buffer_binding_size {
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(max);
        }
        // Timestamps are optional: benchmarks use them where the adapter has
        // them. Subgroups too: only the subgroup kernel versions need them,
        // and those are offered only where the device has the feature. Not
        // in a browser, whose subgroups wgpu still treats as experimental,
        // nor under a WGPU_TRAIN_LIMITS cap, which stands for a smaller
        // device: WebGPU's guaranteed limits come without optional features.
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY;
        if options.subgroups && env_cap.is_none() && !cfg!(target_arch = "wasm32") {
            wanted |= wgpu::Features::SUBGROUP;
        }
        let features = adapter.features() & wanted;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-train"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|source| Error::RequestDevice {
                adapter: summary.name.clone(),
                source,
            })?;

        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("placeholder"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let placeholder_rw = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("placeholder (read-write)"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        // The subgroup kernels combine quads of 4 lanes, so they need
        // subgroups of at least 4 (wgpu reports no fewer; this keeps it so).
        let subgroup_sizes = (features.contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size >= 4)
            .then_some((info.subgroup_min_size, info.subgroup_max_size));
        let tune_record = TuneRecord::new(
            tune_mode,
            &info,
            subgroup_sizes.is_some(),
            &limits,
            options.autotune_dir.clone(),
        );
        // GL: one context per device behind a lock that panics after 6 s.
        let serial = (summary.backend == wgpu::Backend::Gl).then(gl_lock::Serial::new);
        Ok(Gpu {
            adapter,
            device,
            queue,
            summary,
            limits,
            pipelines: pipeline::PipelineCache::default(),
            placeholder,
            placeholder_rw,
            slot_placeholders: Mutex::new(Vec::new()),
            uncaptured,
            tune_record,
            subgroup_sizes,
            #[cfg(target_arch = "wasm32")]
            pending: Arc::default(),
            serial,
            checked,
        })
    }

    async fn pick_adapter(
        instance: &wgpu::Instance,
        backends: wgpu::Backends,
        options: &GpuOptions,
    ) -> Result<wgpu::Adapter> {
        let wanted = |a: &wgpu::Adapter| {
            let info = a.get_info();
            let name_ok = options
                .adapter_name
                .as_ref()
                .is_none_or(|n| info.name.to_lowercase().contains(&n.to_lowercase()));
            let fallback_ok =
                !options.force_fallback_adapter || info.device_type == wgpu::DeviceType::Cpu;
            name_ok && fallback_ok
        };
        let all = instance.enumerate_adapters(backends).await;
        if let Some(name) = &options.adapter_name {
            let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
            return all.into_iter().find(wanted).ok_or_else(|| {
                // Adapters exist: the name is what to change, not the drivers.
                if names.is_empty() {
                    Error::NoAdapter(format!(
                        "{NO_ADAPTER_HELP}\n(backends searched: {})",
                        backend_names(backends)
                    ))
                } else {
                    Error::NoAdapter(format!(
                        "no adapter's name contains {name:?} (WGPU_ADAPTER_NAME); the adapters \
                         found are: {}. Set WGPU_ADAPTER_NAME to part of one of these names, or \
                         unset it to let wgpu choose.",
                        names
                            .iter()
                            .map(|n| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            });
        }
        let requested = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                force_fallback_adapter: options.force_fallback_adapter,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await;
        match requested {
            Ok(a) if wanted(&a) => Ok(a),
            _ => all.into_iter().find(wanted).ok_or_else(|| {
                Error::NoAdapter(format!(
                    "{NO_ADAPTER_HELP}\n(backends searched: {})",
                    backend_names(backends)
                ))
            }),
        }
    }

    /// The wgpu device, for callers who record their own work.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue that every submission goes through.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter the device came from.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    /// Name, backend and device type of the adapter.
    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The record of kernel choices on this device: pinned, cached or
    /// measured by the tuner ([`crate::tune`]); launchers built with `Auto`
    /// run what it holds, else their fixed rule.
    pub fn tune_record(&self) -> &TuneRecord {
        &self.tune_record
    }

    /// The adapter's smallest and largest subgroup size, where the device
    /// has `wgpu::Features::SUBGROUP` (lavapipe: 8 and 8); `None` where it
    /// has not, and the subgroup kernel versions are not offered.
    pub fn subgroup_sizes(&self) -> Option<(u32, u32)> {
        self.subgroup_sizes
    }

    /// The limits the device was created with: the adapter's own, less any
    /// cap ([`GpuOptions::limits`], `WGPU_TRAIN_LIMITS`).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// True for software adapters (lavapipe/llvmpipe, SwiftShader, WARP),
    /// which favour different kernel shapes than real GPUs.
    pub fn is_software(&self) -> bool {
        self.summary.device_type == wgpu::DeviceType::Cpu
    }

    /// Whether this `Gpu` serialises device access itself: true on wgpu's GL
    /// backend, whose single context cannot be waited for across threads.
    pub fn serialises(&self) -> bool {
        self.serial.is_some()
    }

    /// Runs `f` with exclusive use of the device where the backend needs it
    /// (GL), else simply runs it. Every call of this crate that may touch the
    /// GL context goes through here; wrap your own calls on [`Gpu::device`]
    /// and [`Gpu::queue`] (buffer creation, mapping, polling, submits) the
    /// same way when other threads share the `Gpu`. [`Gpu::scoped`] already
    /// does.
    pub fn exclusive<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.serial {
            Some(s) => s.run(f),
            None => f(),
        }
    }

    /// Whether pipelines ask wgpu to zero workgroup memory before each
    /// workgroup starts: everywhere but GL, for the kernels it does not
    /// trust ([`Gpu::trusts`]; all of them with `WGPU_TRAIN_CHECKED=1`).
    /// The trusted kernels do not need it (each writes every element of its
    /// workgroup arrays before its first barrier and reads only after it:
    /// matmul's tiles, the reduction trees; src/kernels/mod.rs), and on
    /// GL it is costly: naga's GLSL has one thread store every element
    /// (2,048 stores for matmul's tiles), which llvmpipe took 25–77 s to
    /// compile per tiled-matmul pipeline, against 0.3–0.5 s without.
    pub fn zero_initialises_workgroup_memory(&self) -> bool {
        self.summary.backend != wgpu::Backend::Gl
    }

    /// Whether every pipeline keeps wgpu's runtime checks and zeroed
    /// workgroup memory ([`GpuOptions::runtime_checks`], `WGPU_TRAIN_CHECKED`).
    pub fn runtime_checks(&self) -> bool {
        self.checked
    }

    /// Whether `shader`'s module is built without wgpu's runtime checks and
    /// its pipelines without zeroed workgroup memory: a kernel of
    /// a shader marked [`Shader::trusted`], unless the checks were asked for. Native
    /// only, the one seam: in a browser wgpu passes WGSL to the browser,
    /// which applies its own robustness and zeroes workgroup memory whatever
    /// is asked, so nothing would change but an `unsafe` call. (On GL,
    /// wgpu's GLSL has neither bounds clamping nor loop bounding to remove,
    /// and workgroup memory is not zeroed already; see
    /// [`Gpu::zero_initialises_workgroup_memory`].)
    pub fn trusts(&self, shader: &Shader) -> bool {
        !cfg!(target_arch = "wasm32") && !self.checked && shader.trusted
    }

    /// How the pipelines are built, in words (for `gpu_info` and logs).
    pub fn checks_summary(&self) -> String {
        if cfg!(target_arch = "wasm32") {
            "checked by the browser (WebGPU applies its own bounds checks and zeroes workgroup memory)".into()
        } else if self.checked {
            "wgpu's runtime checks in every kernel (WGPU_TRAIN_CHECKED=1)".into()
        } else {
            "unchecked in the kernels proven in range (each shader marked `trusted`), checked in the rest; WGPU_TRAIN_CHECKED=1 checks all".into()
        }
    }

    /// Wraps an object the crate keeps so that its destruction waits for the
    /// device lock (GL); elsewhere it drops as usual.
    pub(crate) fn defer<T: Send + 'static>(&self, value: T) -> Deferred<T> {
        Deferred::new(value, self.serial.as_ref().map(|s| s.graveyard().clone()))
    }

    /// A buffer initialised with `contents` (uniforms, parameter slots).
    pub(crate) fn buffer_init(
        &self,
        label: &str,
        contents: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<Deferred<wgpu::Buffer>> {
        use wgpu::util::DeviceExt;
        let buffer = self.scoped(&format!("creating {label}"), || {
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents,
                    usage,
                })
        })?;
        Ok(self.defer(buffer))
    }

    pub(crate) fn placeholder(&self) -> &wgpu::Buffer {
        &self.placeholder
    }

    pub(crate) fn placeholder_rw(&self) -> &wgpu::Buffer {
        &self.placeholder_rw
    }

    /// The placeholder bound at binding index `slot` (its own buffer).
    pub(crate) fn placeholder_for_slot(&self, slot: usize) -> wgpu::Buffer {
        let mut all = self
            .slot_placeholders
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while all.len() <= slot {
            let label = format!("placeholder (binding {})", all.len());
            all.push(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&label),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }));
        }
        all[slot].clone()
    }

    /// Runs `f` inside wgpu error scopes (validation, out-of-memory, internal)
    /// and turns any error raised by the wgpu calls it makes into an [`Err`].
    /// `during` names the work for the message. `f` runs with exclusive use
    /// of the device where the backend needs it ([`Gpu::exclusive`]).
    pub fn scoped<R>(&self, during: &str, f: impl FnOnce() -> R) -> Result<R> {
        self.exclusive(|| self.scoped_unlocked(during, f))
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn scoped_unlocked<R>(&self, during: &str, f: impl FnOnce() -> R) -> Result<R> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        // Pop in reverse order of pushing; report the first error found.
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
            pollster::block_on(internal.pop()),
        ];
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(Error::from_wgpu(during, e));
        }
        self.check_uncaptured(during)?;
        Ok(value)
    }

    /// In a browser a scope's errors arrive later (a promise) and blocking
    /// on them would freeze the page: the pops run as local tasks that file
    /// their errors with the uncaptured ones, and the next awaited point
    /// ([`Gpu::settle`], which every readback passes) returns them. A
    /// synchronous call still returns the errors already delivered.
    #[cfg(target_arch = "wasm32")]
    fn scoped_unlocked<R>(&self, during: &str, f: impl FnOnce() -> R) -> Result<R> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let pops = [validation.pop(), oom.pop(), internal.pop()];
        let sink = Arc::clone(&self.uncaptured);
        let pending = Arc::clone(&self.pending);
        let during_owned = during.to_string();
        pending.started();
        wasm_bindgen_futures::spawn_local(async move {
            for pop in pops {
                if let Some(e) = pop.await {
                    if let Ok(mut v) = sink.lock() {
                        v.push(Error::from_wgpu(&during_owned, e).to_string());
                    }
                    break;
                }
            }
            pending.finished();
        });
        self.check_uncaptured(during)?;
        Ok(value)
    }

    /// Waits until every error scope opened so far has reported, then
    /// returns (and clears) the errors they and the device raised. On
    /// native, scopes report before [`Gpu::scoped`] returns, so this only
    /// checks the uncaptured errors.
    pub async fn settle(&self, during: &str) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        self.pending.idle().await;
        self.check_uncaptured(during)
    }

    /// Returns (and clears) errors that wgpu raised outside any scope.
    fn check_uncaptured(&self, during: &str) -> Result<()> {
        let mut errors = match self.uncaptured.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if errors.is_empty() {
            return Ok(());
        }
        let description = errors.join("\n");
        errors.clear();
        Err(Error::GpuValidation {
            during: during.to_string(),
            description,
        })
    }

    /// A command encoder for recording many dispatches before one submit.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Finishes and submits `encoder`; errors in what it recorded come back here.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<wgpu::SubmissionIndex> {
        self.scoped("submit", || self.queue.submit([encoder.finish()]))
    }

    /// Blocks until all submitted work has finished (native only; on WebGPU
    /// await a readback instead).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&self) -> Result<()> {
        self.poll_until_done(None)
    }

    /// Blocks until the submission `index` has finished (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        self.poll_until_done(Some(index))
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn poll_until_done(&self, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        loop {
            let polled = self.exclusive(|| {
                self.device.poll(wgpu::PollType::Wait {
                    submission_index: index.clone(),
                    timeout: None,
                })
            });
            match polled {
                Ok(_) => return Ok(()),
                // "No timeout" still times out on GL: wgpu-hal caps its
                // glClientWaitSync at i32::MAX ns (2.1 s). Wait again, letting
                // other threads in between.
                Err(wgpu::PollError::Timeout) => continue,
                Err(e) => return Err(Error::Device(e.to_string())),
            }
        }
    }

    /// Checks that a buffer of `bytes` may be created and bound as storage.
    pub(crate) fn check_storage_binding(&self, what: &str, bytes: u64) -> Result<()> {
        let limit = self.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::TooLarge {
                what: format!("binding {what} as a storage buffer"),
                needed: crate::error::bytes(bytes),
                limit: crate::error::bytes(limit),
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        Ok(())
    }

    /// Checks a dispatch's workgroup counts against the per-dimension limit.
    pub(crate) fn check_dispatch(&self, what: &str, groups: [u32; 3]) -> Result<()> {
        let limit = self.limits.max_compute_workgroups_per_dimension;
        if let Some(&g) = groups.iter().find(|&&g| g > limit) {
            return Err(Error::TooLarge {
                what: format!("dispatching {what} ({groups:?} workgroups)"),
                needed: format!("{g} workgroups in one dimension"),
                limit: limit.to_string(),
                limit_name: "max_compute_workgroups_per_dimension",
            });
        }
        Ok(())
    }
}

/// The names `WGPU_BACKEND` accepts (as wgpu reads it), with their aliases.
const BACKEND_NAMES: [(&str, &[&str]); 5] = [
    ("vulkan", &["vulkan", "vk"]),
    ("metal", &["metal", "mtl"]),
    ("dx12", &["dx12", "d3d12"]),
    ("gl", &["gl", "gles", "opengl"]),
    ("webgpu", &["webgpu"]),
];

/// `WGPU_BACKEND`, checked. wgpu itself skips names it does not know, and
/// with none left it searches no backend at all and reports no adapter, as
/// if no driver were installed; here a bad value is an error that names it.
pub(crate) fn backends_from_env() -> Result<Option<wgpu::Backends>> {
    let Some(value) = std::env::var_os("WGPU_BACKEND") else {
        return Ok(None);
    };
    let valid = || {
        BACKEND_NAMES
            .iter()
            .map(|(name, aliases)| match aliases {
                [_] => name.to_string(),
                _ => format!("{name} ({})", aliases[1..].join(", ")),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let invalid = |msg: String| Error::InvalidArgument {
        name: "WGPU_BACKEND",
        msg: format!(
            "{msg}; use a comma-separated list of {}, or unset it",
            valid()
        ),
    };
    let text = value
        .to_str()
        .ok_or_else(|| invalid(format!("{value:?} is not valid UTF-8")))?;
    for item in text.split(',') {
        let item = item.trim().to_lowercase();
        if !BACKEND_NAMES
            .iter()
            .any(|(_, aliases)| aliases.contains(&item.as_str()))
        {
            return Err(invalid(if item.is_empty() {
                format!("{text:?} names no backend")
            } else {
                format!("'{item}' (in {text:?}) is not a backend")
            }));
        }
    }
    Ok(Some(wgpu::Backends::from_comma_list(text)))
}

/// "vulkan, metal, dx12" rather than wgpu's bit pattern.
fn backend_names(backends: wgpu::Backends) -> String {
    let names: Vec<&str> = [
        (wgpu::Backends::VULKAN, "vulkan"),
        (wgpu::Backends::METAL, "metal"),
        (wgpu::Backends::DX12, "dx12"),
        (wgpu::Backends::GL, "gl"),
        (wgpu::Backends::BROWSER_WEBGPU, "webgpu"),
    ]
    .into_iter()
    .filter(|(b, _)| backends.contains(*b))
    .map(|(_, n)| n)
    .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not
/// set in the environment" for every device when it is missing, as under
/// CI, sudo or a service. When it is unset or not a directory, point it at
/// a private directory (`$TMPDIR/wgpu-train-runtime-UID`, mode 0700, ours)
/// before the instance is created; an existing one that is not ours and
/// private is left alone (the warning is better than a shared directory).
///
/// This sets an environment variable, which is only sound while no other
/// thread reads the environment: it runs at most once per process, in the
/// first [`Gpu::new`], which programs call before they start threads. A
/// program that creates its first `Gpu` from a multi-threaded context and
/// cares should set `XDG_RUNTIME_DIR` itself.
fn ensure_runtime_dir() {
    #[cfg(all(unix, not(target_vendor = "apple")))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
            let current = std::env::var_os("XDG_RUNTIME_DIR");
            if current
                .as_ref()
                .is_some_and(|d| std::path::Path::new(d).is_dir())
            {
                return;
            }
            let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
                return;
            };
            let dir = std::env::temp_dir().join(format!("wgpu-train-runtime-{uid}"));
            let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
            let Ok(m) = std::fs::symlink_metadata(&dir) else {
                return;
            };
            if !m.is_dir() || m.uid() != uid || m.permissions().mode() & 0o077 != 0 {
                return;
            }
            // SAFETY: see above: once per process, before the instance (and
            // its driver threads) exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        });
    }
}

/// A relative `XDG_CACHE_HOME` must be ignored (the XDG Base Directory
/// specification), but Mesa's shader cache takes it as it is and creates
/// folders in the working directory. So, once per process before the
/// instance exists, a relative value is removed from the environment: the
/// driver then uses `$HOME/.cache`, as the autotune cache does
/// ([`crate::tune`]). Sound for the reasons [`ensure_runtime_dir`] gives.
fn ignore_relative_cache_home() {
    #[cfg(all(unix, not(target_vendor = "apple")))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let relative = std::env::var_os("XDG_CACHE_HOME")
                .is_some_and(|v| !v.is_empty() && !std::path::Path::new(&v).is_absolute());
            if relative {
                // SAFETY: as in ensure_runtime_dir: once per process, before
                // the instance (and its driver threads) exists.
                unsafe { std::env::remove_var("XDG_CACHE_HOME") };
            }
        });
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // Destroy what was dropped since the last locked call, while the
        // device still exists.
        self.exclusive(|| ());
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.summary)
            .finish()
    }
}

/// A count of error-scope pops in flight, and a way to await zero (browser
/// only: one thread, so no check can race a decrement).
#[cfg(target_arch = "wasm32")]
struct Pending {
    count: std::sync::atomic::AtomicUsize,
    idle: futures_intrusive::sync::ManualResetEvent,
}

#[cfg(target_arch = "wasm32")]
impl Default for Pending {
    fn default() -> Self {
        Pending {
            count: std::sync::atomic::AtomicUsize::new(0),
            idle: futures_intrusive::sync::ManualResetEvent::new(true),
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl Pending {
    fn started(&self) {
        use std::sync::atomic::Ordering;
        self.count.fetch_add(1, Ordering::SeqCst);
        self.idle.reset();
    }

    fn finished(&self) {
        use std::sync::atomic::Ordering;
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.set();
        }
    }

    async fn idle(&self) {
        self.idle.wait().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wgpu_train_checked_takes_on_and_off_and_refuses_the_rest() {
        for (v, want) in [("1", true), (" On ", true), ("true", true)] {
            assert_eq!(super::parse_checked(v).unwrap(), want, "{v:?}");
        }
        for v in ["0", "", "off", "FALSE"] {
            assert!(!super::parse_checked(v).unwrap(), "{v:?}");
        }
        let e = super::parse_checked("yes").unwrap_err().to_string();
        assert!(e.contains("WGPU_TRAIN_CHECKED") && e.contains("yes"), "{e}");
    }
}
