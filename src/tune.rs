//! Autotuning: the first time a kernel family meets a shape on an adapter,
//! time every valid version of it there and keep the fastest.
//!
//! Users run this crate on GPUs we never see, so a version chosen by a rule
//! reasoned on one machine ([`MatmulKernel::choose`]) is a guess elsewhere.
//! The tuner replaces the guess with a measurement, as burn/CubeCL do, for
//! the families with several versions and an `Auto`: matmul (v1..v6,
//! [`Tuner::matmul`]), softmax-CE (v1, v2, [`Tuner::softmax_xent`]) and the
//! column sums (v1, v2, [`Tuner::column_sum`]), and the optimizer's
//! elements per thread ([`Tuner::optimizer`], 1 to 16: the same bits at
//! every size).
//! - **when**: the first time a launcher is built with `Auto` for a (shape,
//!   options) key, i.e. while an engine is being built, before the first
//!   training step; the choice is then fixed for the life of the [`Gpu`];
//! - **how**: each version is checked to build (limits), run once to warm
//!   up, then timed over 3 runs (GPU timestamps where the adapter has them,
//!   else the wall clock to device idle) by [`crate::timing`], the helper the
//!   benchmarks use; the median per product decides.
//!   A version whose first run is 20× slower than the best so far is not
//!   timed further, which bounds the cost of a bad version;
//! - **where it is kept**: in memory, and in
//!   `$XDG_CACHE_HOME/wgpu-train/autotune-<adapter hash>.json` (else
//!   `~/.cache/…`), written atomically. The hash covers the adapter's name,
//!   backend, vendor and device ids, driver and driver version, so a driver
//!   update starts a new file, whether the device has subgroups (a
//!   choice of a subgroup version is no use without them) and its limits
//!   (a `WGPU_TRAIN_LIMITS` cap stands for a smaller device, on which some
//!   versions do not build). A relative `XDG_CACHE_HOME` is ignored, as the
//!   XDG specification asks, and the cache creates no directory above
//!   `wgpu-train` (or `.cache/wgpu-train` under an existing `$HOME`). A
//!   corrupt or foreign file is ignored with a warning, never an error, and
//!   is not replaced: the cache writes only over a file it wrote itself
//!   ([`crate::atomic::write_owned`]), whether reached directly or through a
//!   link; it reads at most [`MAX_CACHE_BYTES`]. Two processes tuning at
//!   once each write their whole map: the last writer's choices are kept,
//!   and the other's keys are tuned again by the next run that meets them.
//! - **when a choice does not fit**: a cached or recorded choice
//!   ([`Tuner::pin`]) that this device cannot run (a subgroup version
//!   without subgroups, a version past a capped device's limits) is decided
//!   again, by tuning or by the fixed rule, with a warning naming the key,
//!   both versions and whether the bits may change; never an error.
//!
//! `WGPU_TRAIN_AUTOTUNE=off|on|refresh` (or [`crate::GpuOptions::autotune`]):
//! `off` (the library's default, and the tests') uses the fixed rule and
//! touches no file; `on` (the examples' default) reads the cache and tunes
//! what is missing; `refresh` ignores the cache and tunes everything again.
//!
//! Reproducibility: matmul v1..v4 and v6 accumulate over k in increasing order;
//! whether two of them give the same bits depends on the driver's
//! floating-point contraction (on lavapipe they do). v5 (split-K) adds
//! chunks of K and then the chunks, a different association: its bits
//! differ from the others' (by rounding, within the tolerance the tests
//! hold every version to), though it gives the same bits run after run for
//! one shape, its split depending on the shape alone. The tuner may choose
//! it: the rule is that a run's choices are fixed before its first
//! step, recorded, and reusable, not that every choice gives the same bits.
//! So a run's choices are reported by [`Tuner::choices`] (the examples
//! record them in the run's JSON and the checkpoint's metadata), and
//! [`Tuner::pin`] replays them: `WGPU_TRAIN_AUTOTUNE=off` plus the recorded
//! choices repeats a tuned run bit for bit (`tests/gpu/tune.rs`). A run that
//! must match an untuned one bit for bit runs with tuning off.
//!
//! The subgroup versions (softmax-CE v4, column sums v3) are offered only
//! on devices with `wgpu::Features::SUBGROUP`. Their order is fixed by the
//! shape alone, not by the subgroup size (a quad of 4 lanes combined by
//! shuffle-xor 1 then 2; see `shaders/softmax_xent_subgroup.wgsl`), so a
//! recorded choice of them repeats the same bits on any adapter that has
//! subgroups, whatever its size; replayed on one without, the launcher
//! refuses it with an error rather than run another version.

use crate::error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::GpuTimer;
use crate::gpu::{Gpu, GpuLabels, GpuTensor};
use crate::kernels::optim::DEFAULT_ELEMS_PER_THREAD;
use crate::kernels::{
    ColumnSum, ColumnSumKernel, GpuOptimizer, Matmul, MatmulKernel, SoftmaxXent, SoftmaxXentKernel,
};
use crate::optim::OptimizerConfig;
use crate::shapes::{Activation, MatmulOptions, MatmulShape, SoftmaxXentShape};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use web_time::Instant;

/// Whether and how to tune.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TuneMode {
    /// The fixed rule; no timing, no cache file.
    #[default]
    Off,
    /// Cached choices where there are any, tuning for the rest.
    On,
    /// Tune every key again and rewrite the cache.
    Refresh,
}

impl TuneMode {
    /// Parses `off`, `on` or `refresh`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "0" | "false" => Ok(TuneMode::Off),
            "on" | "1" | "true" => Ok(TuneMode::On),
            "refresh" => Ok(TuneMode::Refresh),
            other => Err(Error::InvalidArgument {
                name: "WGPU_TRAIN_AUTOTUNE",
                msg: format!("{other:?} is not one of off, on, refresh"),
            }),
        }
    }

    /// `WGPU_TRAIN_AUTOTUNE` when it is set and not empty.
    pub fn from_env() -> Result<Option<Self>> {
        crate::error::env_setting("WGPU_TRAIN_AUTOTUNE")?
            .map(|s| Self::parse(&s))
            .transpose()
    }
}

/// File format tag: a file with another tag is foreign.
const FORMAT: &str = "wgpu-train autotune 1";

/// The most bytes of cache file read: thousands of choices, far more than
/// any run makes. A larger file is not ours and is not read.
pub const MAX_CACHE_BYTES: u64 = 1 << 20;

/// The most bytes of a `--kernels` JSON file read (a run's `--json` output).
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// Whether `bytes` is a cache file this crate wrote (any format version,
/// any adapter): the only kind [`Tuner`] replaces.
fn is_cache_file(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("format")?.as_str().map(str::to_string))
        .is_some_and(|f| f.starts_with("wgpu-train autotune"))
}

#[derive(Default)]
struct State {
    loaded: bool,
    /// Every choice known: cached, pinned or measured (what the file keeps).
    choices: BTreeMap<String, String>,
    /// The choices this tuner has handed out: the run's record.
    used: BTreeMap<String, String>,
    tuned: usize,
    seconds: f64,
    /// Keys pinned by [`Tuner::pin`] (for warnings: "recorded" vs "cached").
    pinned: std::collections::BTreeSet<String>,
    /// Why the last save failed; `None` when it succeeded or none was tried.
    save_error: Option<String>,
    saved: bool,
    save_warned: bool,
}

/// The per-[`Gpu`] tuner. Thread-safe; tuning holds its lock, so two
/// threads meeting one new key tune it once.
pub struct Tuner {
    mode: TuneMode,
    /// The cache file; `None` keeps choices in memory only.
    file: Option<PathBuf>,
    /// A directory that must exist already for the cache to create the
    /// rest of the file's path (`$HOME` or `$XDG_CACHE_HOME`): the cache
    /// never creates a directory nobody named. `None` for a directory given
    /// by the caller, which is created whole.
    must_exist: Option<PathBuf>,
    adapter_key: String,
    state: Mutex<State>,
}

impl Tuner {
    /// A tuner for the adapter described by `info`, caching in `dir` (or the
    /// platform's cache directory when `None`). A device with subgroups
    /// keeps its own file: its choices may name subgroup versions, which the
    /// same adapter without them (`WGPU_TRAIN_LIMITS`) cannot run; so does
    /// a device with other `limits` (a cap), on which some versions do not
    /// build.
    pub(crate) fn new(
        mode: TuneMode,
        info: &wgpu::AdapterInfo,
        subgroups: bool,
        limits: &wgpu::Limits,
        dir: Option<PathBuf>,
    ) -> Self {
        use sha2::Digest;
        let short = |text: &str| -> String {
            let hash = sha2::Sha256::digest(text.as_bytes());
            hash[..8].iter().map(|b| format!("{b:02x}")).collect()
        };
        let adapter_key = format!(
            "{} | {:?} | vendor {:#x} device {:#x} | {} {}{} | limits {}",
            info.name,
            info.backend,
            info.vendor,
            info.device,
            info.driver,
            info.driver_info,
            if subgroups { " | subgroups" } else { "" },
            short(&format!("{limits:?}"))
        );
        let (dir, must_exist) = match dir {
            Some(d) => (Some(d), None),
            None => match default_dir() {
                Some((d, base)) => (Some(d), Some(base)),
                None => (None, None),
            },
        };
        let file = dir.map(|d| d.join(format!("autotune-{}.json", short(&adapter_key))));
        Tuner {
            mode,
            file,
            must_exist,
            adapter_key,
            state: Mutex::new(State::default()),
        }
    }

    pub fn mode(&self) -> TuneMode {
        self.mode
    }

    /// The cache file, where there is one.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// The choices handed out so far (measured, cached or pinned), by key:
    /// what the kernels built on this [`Gpu`] run, for the run's record.
    /// Empty when tuning is off and nothing is pinned (the fixed rule).
    pub fn choices(&self) -> BTreeMap<String, String> {
        self.lock().used.clone()
    }

    /// Keys tuned (timed) by this tuner, and the seconds it spent.
    pub fn tuned(&self) -> (usize, f64) {
        let s = self.lock();
        (s.tuned, s.seconds)
    }

    /// "tuned 9 shapes in 0.4 s (cache …)", once something was tuned. It
    /// names the cache file only when the choices were written there.
    pub fn report(&self) -> Option<String> {
        let s = self.lock();
        let (n, secs) = (s.tuned, s.seconds);
        (n > 0).then(|| {
            let cached = match (&self.file, &s.save_error) {
                (Some(f), None) if s.saved => format!(" (cached in {})", f.display()),
                (Some(_), Some(e)) => format!(" (not cached: {e})"),
                _ => " (not cached)".to_string(),
            };
            format!(
                "autotune: tuned {n} shape{} in {secs:.2} s{cached}",
                if n == 1 { "" } else { "s" },
            )
        })
    }

    /// Fixes choices recorded by an earlier run ([`Tuner::choices`], kept
    /// in the run's JSON and its checkpoint), whatever the mode: call it
    /// before building the engine, since kernels are chosen when built.
    pub fn pin(&self, choices: &BTreeMap<String, String>) {
        let mut s = self.lock();
        s.loaded = true;
        s.choices
            .extend(choices.iter().map(|(k, v)| (k.clone(), v.clone())));
        s.pinned.extend(choices.keys().cloned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while tuning leaves only a partial map: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The matmul version for `shape`: the fixed rule when tuning is off,
    /// else the cached or newly measured fastest.
    pub fn matmul(
        &self,
        gpu: &Gpu,
        shape: &MatmulShape,
        opts: &MatmulOptions,
        bias: bool,
    ) -> MatmulKernel {
        let key = matmul_key(shape, opts, bias);
        let fixed = MatmulKernel::choose(gpu, shape);
        let fits = |name: &str| match kernel_named(name) {
            Some(k) => k
                .check_fits(gpu, shape, opts, bias)
                .map_err(|e| e.to_string()),
            None => Err("no such version".into()),
        };
        let name = self.decide(key, fixed.name(), true, fits, || {
            tune_matmul(gpu, shape, opts, bias).map(MatmulKernel::name)
        });
        name.and_then(|n| kernel_named(&n)).unwrap_or(fixed)
    }

    /// The softmax-CE version for `shape` (with or without dlogits), as
    /// [`Tuner::matmul`] chooses a matmul's. v1 and v2 add a row's terms in
    /// different orders (v2 in a tree), so, as for matmul v5, the record of
    /// the choice is what makes a tuned run repeatable.
    pub fn softmax_xent(
        &self,
        gpu: &Gpu,
        shape: &SoftmaxXentShape,
        with_grad: bool,
    ) -> SoftmaxXentKernel {
        let key = softmax_xent_key(shape, with_grad);
        let fixed = SoftmaxXentKernel::choose(gpu, shape);
        let offered: Vec<_> = SoftmaxXentKernel::available(gpu)
            .into_iter()
            .map(SoftmaxXentKernel::name)
            .collect();
        let fits = |name: &str| available(name, &offered);
        let name = self.decide(key, fixed.name(), true, fits, || {
            tune_softmax_xent(gpu, shape, with_grad).map(SoftmaxXentKernel::name)
        });
        name.and_then(|n| SoftmaxXentKernel::EVERY.into_iter().find(|k| k.name() == n))
            .unwrap_or(fixed)
    }

    /// The column-sum version for an R×C sum (with the fused activation
    /// backward when `activation` is given). v1 adds each column's rows in
    /// order, v2 in a tree: their bits differ, as softmax-CE's do.
    pub fn column_sum(
        &self,
        gpu: &Gpu,
        rows: usize,
        cols: usize,
        activation: Option<Activation>,
    ) -> ColumnSumKernel {
        let key = column_sum_key(rows, cols, activation);
        let fixed = ColumnSumKernel::choose(gpu);
        let offered: Vec<_> = ColumnSumKernel::available(gpu)
            .into_iter()
            .map(ColumnSumKernel::name)
            .collect();
        let fits = |name: &str| available(name, &offered);
        let name = self.decide(key, fixed.name(), true, fits, || {
            tune_column_sum(gpu, rows, cols, activation).map(ColumnSumKernel::name)
        });
        name.and_then(|n| ColumnSumKernel::EVERY.into_iter().find(|k| k.name() == n))
            .unwrap_or(fixed)
    }

    /// The optimizer's elements per thread for `config` over `n` parameters
    /// (one of [`OPTIMIZER_ELEMS`]). The update is elementwise, so every
    /// choice gives the same bits: only the speed differs.
    pub fn optimizer(&self, gpu: &Gpu, config: &OptimizerConfig, n: usize) -> u32 {
        let key = format!("optimizer {} {n}", config.name());
        let fixed = elems_name(DEFAULT_ELEMS_PER_THREAD);
        // Every size builds and gives the same bits.
        let name = self.decide(
            key,
            fixed,
            false,
            |_| Ok(()),
            || tune_optimizer(gpu, config, n).map(elems_name),
        );
        name.and_then(|n| OPTIMIZER_ELEMS.into_iter().find(|&e| elems_name(e) == n))
            .unwrap_or(DEFAULT_ELEMS_PER_THREAD)
    }

    /// The version name for `key`: pinned or cached, else measured by
    /// `tune` (`fixed` if that fails), and recorded as used; `None` when
    /// tuning is off and nothing is pinned (the caller's fixed rule, not
    /// recorded). A pinned or cached name that `fits` refuses on this
    /// device is decided again, with a warning that says whether the bits
    /// may change (`bits_vary`: the family's versions round differently).
    fn decide(
        &self,
        key: String,
        fixed: &'static str,
        bits_vary: bool,
        fits: impl Fn(&str) -> std::result::Result<(), String>,
        tune: impl FnOnce() -> Result<&'static str>,
    ) -> Option<String> {
        let mut s = self.lock();
        let known = |s: &State| s.choices.get(&key).filter(|n| known(&key, n)).cloned();
        let mut chosen = known(&s);
        let mut refused = None;
        // A browser has no disk cache and cannot block on timings: pinned
        // choices or the fixed rule there, whatever the mode.
        let mode = if cfg!(target_arch = "wasm32") {
            TuneMode::Off
        } else {
            self.mode
        };
        if chosen.is_none() && mode != TuneMode::Off && !s.loaded {
            s.loaded = true;
            if self.mode == TuneMode::On {
                for (k, v) in self.load() {
                    s.choices.entry(k).or_insert(v);
                }
                chosen = known(&s);
            }
        }
        if let Some(name) = chosen.clone()
            && let Err(why) = fits(&name)
        {
            s.choices.remove(&key);
            refused = Some((name, why));
            chosen = None;
        }
        if chosen.is_none() && mode != TuneMode::Off {
            let start = Instant::now();
            let name = tune().unwrap_or_else(|e| {
                eprintln!(
                    "wgpu-train: warning: autotuning {key} failed ({e}); using the fixed rule"
                );
                fixed
            });
            s.tuned += 1;
            s.seconds += start.elapsed().as_secs_f64();
            s.choices.insert(key.clone(), name.to_string());
            let choices = s.choices.clone();
            self.save(&choices, &mut s);
            chosen = Some(name.to_string());
        }
        if let Some((old, why)) = refused {
            // The run's record must say what ran instead.
            let new = chosen.get_or_insert_with(|| fixed.to_string()).clone();
            eprintln!(
                "wgpu-train: warning: the {} choice {old} for '{key}' cannot run on this device \
                 ({why}); running {new} instead{}",
                if s.pinned.contains(&key) {
                    "recorded"
                } else {
                    "cached"
                },
                if bits_vary {
                    ": this product's bits may differ from the recorded run's"
                } else {
                    " (the same bits)"
                }
            );
        }
        if let Some(name) = &chosen {
            s.used.insert(key, name.clone());
        }
        chosen
    }

    /// The cached choices, or none (with a warning) when the file is corrupt,
    /// too large, not a file, or belongs to another adapter or format.
    fn load(&self) -> BTreeMap<String, String> {
        let Some(path) = &self.file else {
            return BTreeMap::new();
        };
        let bytes = match crate::atomic::read_bounded(path, MAX_CACHE_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
            Err(e) => {
                warn_ignored(path, &e.to_string(), false);
                return BTreeMap::new();
            }
        };
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        let fields = parsed.as_ref().and_then(|v| {
            Some((
                v.get("format")?.as_str()?,
                v.get("adapter")?.as_str()?,
                v.get("choices")?.as_object()?,
            ))
        });
        match fields {
            Some((FORMAT, adapter, choices)) if adapter == self.adapter_key => choices
                .iter()
                .filter_map(|(k, v)| {
                    let name = v.as_str()?;
                    known(k, name).then(|| (k.clone(), name.to_string()))
                })
                .collect(),
            Some((FORMAT, adapter, _)) => {
                warn_ignored(
                    path,
                    &format!("it was written for another adapter ({adapter})"),
                    true,
                );
                BTreeMap::new()
            }
            _ => {
                warn_ignored(
                    path,
                    "it is not a wgpu-train autotune file",
                    is_cache_file(&bytes),
                );
                BTreeMap::new()
            }
        }
    }

    /// Writes the choices atomically; a failure only warns (the choices stay
    /// in memory for this run).
    #[cfg(target_arch = "wasm32")]
    fn save(&self, _: &BTreeMap<String, String>, state: &mut State) {
        let _ = state;
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn save(&self, choices: &BTreeMap<String, String>, state: &mut State) {
        let Some(path) = &self.file else { return };
        let doc = serde_json::json!({
            "format": FORMAT,
            "adapter": self.adapter_key,
            "choices": choices,
        });
        let result = (|| -> std::result::Result<(), String> {
            if let Some(base) = &self.must_exist
                && !base.is_dir()
            {
                return Err(format!(
                    "{} does not exist, and the cache creates no directory above its own",
                    base.display()
                ));
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            crate::atomic::write_owned(path, text.as_bytes(), MAX_CACHE_BYTES, is_cache_file)
                .map_err(|e| e.to_string())
        })();
        state.saved = result.is_ok();
        state.save_error = result.as_ref().err().cloned();
        // Warned once: the next keys would only repeat it.
        if let Err(e) = result
            && !state.save_warned
        {
            state.save_warned = true;
            eprintln!(
                "wgpu-train: warning: cannot write the autotune cache {}: {e}; \
                 the choices are kept in memory for this run",
                path.display()
            );
        }
    }
}

/// Says why the cache file is not used, and whether it will be replaced
/// (`ours`: it is a cache file this crate wrote) or left alone.
fn warn_ignored(path: &std::path::Path, why: &str, ours: bool) {
    eprintln!(
        "wgpu-train: warning: ignoring the autotune cache {}: {why}; {}",
        path.display(),
        if ours {
            "it will be rewritten"
        } else {
            "it will not be replaced (remove it to let the cache use that name)"
        }
    );
}

/// The cache directory and the directory that must already exist for the
/// cache to create it: `$XDG_CACHE_HOME/wgpu-train` (an absolute
/// `XDG_CACHE_HOME` only: the XDG specification says to ignore a relative
/// one), else `$HOME/.cache/wgpu-train` below an absolute `$HOME`.
fn default_dir() -> Option<(PathBuf, PathBuf)> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(base) = absolute("XDG_CACHE_HOME") {
        return Some((base.join("wgpu-train"), base));
    }
    let home = absolute("HOME")?;
    Some((home.join(".cache").join("wgpu-train"), home))
}

/// The cache key of one matmul: exact sizes and the options that select a
/// pipeline.
pub fn matmul_key(shape: &MatmulShape, opts: &MatmulOptions, bias: bool) -> String {
    let t = |b: bool| if b { 't' } else { 'n' };
    format!(
        "matmul {}x{}x{} batch {} {}{}{} {:?}",
        shape.m,
        shape.n,
        shape.k,
        shape.batch,
        t(opts.trans_a),
        t(opts.trans_b),
        if bias { " +bias" } else { "" },
        opts.activation
    )
}

/// The kernel choices an earlier run recorded, to replay with
/// [`Tuner::pin`]: from a checkpoint (`.safetensors`, its `kernels`
/// metadata) or from the JSON the training examples print with `--json`
/// (the first line with a `kernels` object; a GPU run's line has one when
/// it was tuned).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_recorded(path: &std::path::Path) -> Result<BTreeMap<String, String>> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        return crate::train::recorded_kernels(&crate::checkpoint::load(path)?);
    }
    let bad = |msg: String| Error::InvalidArgument {
        name: "recorded kernel choices",
        msg: format!("{}: {msg}", path.display()),
    };
    let bytes =
        crate::atomic::read_bounded(path, MAX_RECORD_BYTES).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(k) = v.get("kernels") {
            let choices: BTreeMap<String, String> = serde_json::from_value(k.clone())
                .map_err(|e| bad(format!("'kernels' is not an object of kernel names: {e}")))?;
            check_choices(&choices)?;
            return Ok(choices);
        }
    }
    Err(bad(
        "no JSON line with a 'kernels' object (only tuned GPU runs record one)".into(),
    ))
}

/// Checks recorded choices (a checkpoint's, a run's JSON): every value must
/// name a kernel version this build has, or replaying them would silently
/// fall back to another version.
pub fn check_choices(choices: &BTreeMap<String, String>) -> Result<()> {
    match choices.iter().find(|(k, v)| !known(k, v)) {
        None => Ok(()),
        Some((k, v)) => Err(Error::InvalidArgument {
            name: "recorded kernel choices",
            msg: format!(
                "'{k}' is recorded as '{v}', which is not a version of that kernel in this build ({})",
                versions(k).join(", ")
            ),
        }),
    }
}

/// The version names of the family a key belongs to (by its first word).
fn versions(key: &str) -> Vec<&'static str> {
    if key.starts_with("softmax_xent ") {
        SoftmaxXentKernel::EVERY
            .map(SoftmaxXentKernel::name)
            .to_vec()
    } else if key.starts_with("column_sum ") {
        ColumnSumKernel::EVERY.map(ColumnSumKernel::name).to_vec()
    } else if key.starts_with("optimizer ") {
        OPTIMIZER_ELEMS.map(elems_name).to_vec()
    } else {
        MatmulKernel::ALL.map(MatmulKernel::name).to_vec()
    }
}

/// Whether `name` is a version of `key`'s family.
fn known(key: &str, name: &str) -> bool {
    versions(key).contains(&name)
}

/// The cache key of one column sum: its sizes and the fused activation.
pub fn column_sum_key(rows: usize, cols: usize, activation: Option<Activation>) -> String {
    match activation {
        None => format!("column_sum {rows}x{cols}"),
        Some(a) => format!("column_sum {rows}x{cols} {a:?} backward"),
    }
}

/// The cache key of one softmax-CE: exact sizes and whether it writes the
/// gradient.
pub fn softmax_xent_key(shape: &SoftmaxXentShape, with_grad: bool) -> String {
    format!(
        "softmax_xent {}x{}{}",
        shape.n,
        shape.c,
        if with_grad { " +dlogits" } else { "" }
    )
}

/// `Ok` when `name` is one of the versions this device offers.
fn available(name: &str, offered: &[&'static str]) -> std::result::Result<(), String> {
    if offered.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "this device offers {} (no subgroups, or a capped device)",
            offered.join(", ")
        ))
    }
}

fn kernel_named(name: &str) -> Option<MatmulKernel> {
    MatmulKernel::ALL.into_iter().find(|k| k.name() == name)
}

/// The tuner's timing: the sizing run, then 3 timed runs of about 2 ms each
/// (so the timer's resolution and a pass's fixed cost do not decide).
#[cfg(not(target_arch = "wasm32"))]
const PLAN: crate::timing::Plan = crate::timing::Plan {
    warmup: 1,
    runs: 3,
    target_run_s: 0.002,
    max_reps: 64,
};

/// Times every version on scratch tensors of `shape` and returns the fastest.
fn tune_matmul(
    gpu: &Gpu,
    shape: &MatmulShape,
    opts: &MatmulOptions,
    bias: bool,
) -> Result<MatmulKernel> {
    let sa = if opts.trans_a {
        [shape.batch, shape.k, shape.m]
    } else {
        [shape.batch, shape.m, shape.k]
    };
    let sb = if opts.trans_b {
        [shape.n, shape.k]
    } else {
        [shape.k, shape.n]
    };
    let fill = |n: usize| -> Vec<f32> { (0..n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect() };
    let a_shape: &[usize] = if shape.batch == 1 { &sa[1..] } else { &sa };
    let a = GpuTensor::from_slice(gpu, a_shape, &fill(sa.iter().product()))?;
    let b = GpuTensor::from_slice(gpu, &sb, &fill(sb.iter().product()))?;
    let bias_t = GpuTensor::from_slice(gpu, &[shape.n], &fill(shape.n))?;
    let c = GpuTensor::<f32>::zeros(gpu, &shape.output_shape())?;
    fastest(
        gpu,
        MatmulKernel::ALL
            .into_iter()
            .filter(|k| k.worth_timing(shape, opts)),
        |kernel| Matmul::new(gpu, &a, &b, bias.then_some(&bias_t), &c, *opts, kernel),
        |mm, pass| mm.record(pass),
    )
}

/// Times every softmax-CE version on scratch tensors of `shape`.
fn tune_softmax_xent(
    gpu: &Gpu,
    shape: &SoftmaxXentShape,
    with_grad: bool,
) -> Result<SoftmaxXentKernel> {
    let (n, c) = (shape.n, shape.c);
    let logits: Vec<f32> = (0..n * c).map(|i| ((i % 13) as f32 - 6.0) / 2.0).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i * 7 % c) as u32).collect();
    let logits = GpuTensor::from_slice(gpu, &[n, c], &logits)?;
    let labels = GpuLabels::new(gpu, &labels, c)?;
    let loss = GpuTensor::<f32>::zeros(gpu, &[n])?;
    let correct = GpuTensor::<u32>::zeros(gpu, &[n])?;
    let dlogits = GpuTensor::<f32>::zeros(gpu, &[n, c])?;
    fastest(
        gpu,
        SoftmaxXentKernel::available(gpu).into_iter(),
        |kernel| {
            SoftmaxXent::new(
                gpu,
                &logits,
                &labels,
                &loss,
                &correct,
                with_grad.then_some(&dlogits),
                kernel,
            )
        },
        |sx, pass| sx.record(pass),
    )
}

/// The optimizer's elements per thread the tuner chooses between.
pub const OPTIMIZER_ELEMS: [u32; 5] = [1, 2, 4, 8, 16];

fn elems_name(elems: u32) -> &'static str {
    match elems {
        1 => "elems_1",
        2 => "elems_2",
        4 => "elems_4",
        8 => "elems_8",
        16 => "elems_16",
        _ => "elems_other",
    }
}

/// Times the optimizer's update over `n` scratch parameters at each size.
fn tune_optimizer(gpu: &Gpu, config: &OptimizerConfig, n: usize) -> Result<u32> {
    let fill: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 1e-3).collect();
    let params = GpuTensor::from_slice(gpu, &[n], &fill)?;
    let grads = GpuTensor::from_slice(gpu, &[n], &fill)?;
    fastest(
        gpu,
        OPTIMIZER_ELEMS.into_iter(),
        |elems| GpuOptimizer::with_elems_per_thread(gpu, *config, &params, &grads, elems),
        |opt, pass| opt.record(pass),
    )
}

/// Times every column-sum version on scratch tensors.
fn tune_column_sum(
    gpu: &Gpu,
    rows: usize,
    cols: usize,
    activation: Option<Activation>,
) -> Result<ColumnSumKernel> {
    let fill: Vec<f32> = (0..rows * cols).map(|i| ((i % 11) as f32) / 11.0).collect();
    let x = GpuTensor::from_slice(gpu, &[rows, cols], &fill)?;
    let h = GpuTensor::from_slice(gpu, &[rows, cols], &fill)?;
    let dz = GpuTensor::<f32>::zeros(gpu, &[rows, cols])?;
    let sums = GpuTensor::<f32>::zeros(gpu, &[cols])?;
    fastest(
        gpu,
        ColumnSumKernel::available(gpu).into_iter(),
        |kernel| match activation {
            None => ColumnSum::new(gpu, &x, &sums, kernel),
            Some(a) => ColumnSum::with_activation(gpu, &x, &h, &dz, &sums, a, kernel),
        },
        |sum, pass| sum.record(pass),
    )
}

/// The fastest of `versions` by the median of [`PLAN`]'s runs. A version
/// that cannot be built (past this device's limits) is skipped, and one
/// whose first run is 20× slower than the best so far is not timed further,
/// which bounds the cost of a bad version.
#[cfg(target_arch = "wasm32")]
fn fastest<K: Copy, L>(
    _: &Gpu,
    _: impl Iterator<Item = K>,
    _: impl Fn(K) -> Result<L>,
    _: impl Fn(&L, &mut wgpu::ComputePass<'_>),
) -> Result<K> {
    Err(Error::InvalidArgument {
        name: "autotune",
        msg: "kernels are not timed in a browser".into(),
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn fastest<K: Copy, L>(
    gpu: &Gpu,
    versions: impl Iterator<Item = K>,
    build: impl Fn(K) -> Result<L>,
    record: impl Fn(&L, &mut wgpu::ComputePass<'_>),
) -> Result<K> {
    let timer = GpuTimer::new(gpu)?;
    let mut best: Option<(f64, f64, K)> = None; // (median, first, version)
    for version in versions {
        let Ok(launcher) = build(version) else {
            continue;
        };
        let run = |reps: usize| {
            timer.time(gpu, |pass| {
                for _ in 0..reps {
                    record(&launcher, pass);
                }
            })
        };
        let first = run(1)?;
        if best.is_some_and(|(_, f, _)| first > 20.0 * f) {
            continue;
        }
        let median = crate::timing::measure_after(&PLAN, timer.kind().name(), first, run)?.seconds;
        if best.is_none_or(|(m, _, _)| median < m) {
            best = Some((median, first, version));
        }
    }
    best.map(|(_, _, k)| k).ok_or_else(|| {
        Error::shape(
            "autotune",
            "no version of the kernel could be built for this shape".to_string(),
        )
    })
}
