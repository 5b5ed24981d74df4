//! The record of kernel choices a [`Gpu`](super::Gpu) keeps ([`TuneRecord`]) and how
//! tuning is configured ([`TuneMode`]); the measuring is [`crate::tune`]'s.
//!
//! The cache file (issue 28): its name covers the adapter, driver,
//! subgroups and the device's limits (a `WGPU_TRAIN_LIMITS` cap stands for
//! a smaller device, on which some versions do not build). A relative
//! `XDG_CACHE_HOME` is ignored, as the XDG specification asks, and the
//! cache creates no directory above `wgpu-train` (or `.cache/wgpu-train`
//! under an existing `$HOME`). It reads at most [`MAX_CACHE_BYTES`]
//! ([`crate::files::read_bounded`]), and replaces only a file it wrote
//! itself ([`crate::files::write_owned`]), whether reached directly or
//! through a link: a corrupt or foreign file is ignored with a warning and
//! kept. Two processes tuning at once each write their whole map: the last
//! writer's choices are kept, and the other's keys are tuned again by the
//! next run that meets them. A pinned or cached choice that this device
//! cannot run is decided again with a warning ([`TuneRecord::decide`]),
//! never an error.

// In a browser there is no cache file: what reads and writes it is unused.
#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

use crate::error::{Error, Result};
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

    /// `WGPU_TRAIN_AUTOTUNE` when it is set and not empty (a value that
    /// is not UTF-8 is an error, as any other bad value is).
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

/// The choices a cache file's `bytes` hold for the adapter `adapter_key`,
/// or why they are not used and whether the file is ours (to be rewritten)
/// or another's (to be kept). The cache reader's parsing, in memory: the
/// `tune_cache` fuzz target drives it.
#[doc(hidden)]
pub fn parse_cache(
    bytes: &[u8],
    adapter_key: &str,
) -> std::result::Result<BTreeMap<String, String>, (String, bool)> {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let fields = parsed.as_ref().and_then(|v| {
        Some((
            v.get("format")?.as_str()?,
            v.get("adapter")?.as_str()?,
            v.get("choices")?.as_object()?,
        ))
    });
    match fields {
        // Names are checked where they are used (`decide`'s `known`):
        // one this build does not know is measured again and replaced.
        Some((FORMAT, adapter, choices)) if adapter == adapter_key => Ok(choices
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect()),
        Some((FORMAT, adapter, _)) => Err((
            format!("it was written for another adapter ({adapter})"),
            true,
        )),
        _ => Err((
            "it is not a wgpu-train autotune file".to_string(),
            is_cache_file(bytes),
        )),
    }
}

/// Whether `bytes` is a cache file this crate wrote (any format version,
/// any adapter): the only kind [`TuneRecord`] replaces.
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
    /// Keys pinned by [`TuneRecord::pin`] (for warnings: "recorded" vs "cached").
    pinned: std::collections::BTreeSet<String>,
    /// Why the last save failed; `None` when it succeeded or none was tried.
    save_error: Option<String>,
    saved: bool,
    save_warned: bool,
}

/// The per-[`Gpu`](super::Gpu) record of kernel choices: what was pinned, read from the
/// cache file or measured, and which of them this run used. Plain data and
/// file I/O, with no knowledge of the kernels: the launchers read it when
/// built with `Auto` (the recorded version, else their fixed rule), and the
/// tuner ([`crate::tune`], which the engines call before building their
/// launchers) measures what is missing and writes it here. Thread-safe;
/// measuring holds its lock, so two threads meeting one new key tune it once.
pub struct TuneRecord {
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

impl TuneRecord {
    /// A record for the adapter described by `info`, caching in `dir` (or the
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
        TuneRecord {
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
    /// what the kernels built on this [`Gpu`](super::Gpu) run, for the run's record.
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

    /// Fixes choices recorded by an earlier run ([`TuneRecord::choices`], kept
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

    /// The version name for `key`: pinned or cached (a name `known`
    /// accepts), else measured by `measure` when given and tuning is on
    /// (`fixed` if that fails), and recorded as used; `None` when nothing is
    /// recorded and nothing measured (the caller's fixed rule, not recorded).
    /// A pinned or cached name that `fits` refuses on this device (a
    /// subgroup version without subgroups, a version past a capped device's
    /// limits) is decided again as if it were not there, with a warning
    /// naming the key, both versions and why; the record then holds what
    /// runs instead.
    pub fn decide(
        &self,
        key: String,
        fixed: &'static str,
        known: &dyn Fn(&str) -> bool,
        fits: &dyn Fn(&str) -> std::result::Result<(), String>,
        measure: Option<&mut dyn FnMut() -> Result<&'static str>>,
    ) -> Option<String> {
        let mut s = self.lock();
        let known = |s: &State| s.choices.get(&key).filter(|n| known(n)).cloned();
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
        if let (None, TuneMode::On | TuneMode::Refresh, Some(measure)) = (&chosen, mode, measure) {
            let start = Instant::now();
            let name = measure().unwrap_or_else(|e| {
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
            // The run's record must say what ran instead; the launchers
            // built after this read it from the choices.
            let new = chosen.get_or_insert_with(|| fixed.to_string()).clone();
            s.choices.insert(key.clone(), new.clone());
            eprintln!(
                "wgpu-train: warning: the {} choice {old} for '{key}' cannot run on this device \
                 ({why}); running {new} instead: this product's bits may differ from the \
                 recorded run's",
                if s.pinned.contains(&key) {
                    "recorded"
                } else {
                    "cached"
                },
            );
        }
        if let Some(name) = &chosen {
            s.used.insert(key, name.clone());
        }
        chosen
    }

    /// No cache in a browser (no files): nothing is loaded.
    #[cfg(target_arch = "wasm32")]
    fn load(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// The cached choices, or none (with a warning) when the file is corrupt,
    /// too large, not a file, or belongs to another adapter or format.
    #[cfg(not(target_arch = "wasm32"))]
    fn load(&self) -> BTreeMap<String, String> {
        let Some(path) = &self.file else {
            return BTreeMap::new();
        };
        let bytes = match crate::files::read_bounded(path, MAX_CACHE_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
            Err(e) => {
                warn_ignored(path, &e.to_string(), false);
                return BTreeMap::new();
            }
        };
        parse_cache(&bytes, &self.adapter_key).unwrap_or_else(|(why, ours)| {
            warn_ignored(path, &why, ours);
            BTreeMap::new()
        })
    }

    /// Writes the choices atomically over nothing or over a cache file of
    /// ours (never over another file, even through a link); a failure only
    /// warns, once (the choices stay in memory for this run).
    #[cfg(target_arch = "wasm32")]
    fn save(&self, _: &BTreeMap<String, String>, _: &mut State) {}

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
            crate::files::write_owned(path, text.as_bytes(), MAX_CACHE_BYTES, is_cache_file)
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
