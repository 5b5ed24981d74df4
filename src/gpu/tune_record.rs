//! The record of kernel choices a [`Gpu`](super::Gpu) keeps ([`TuneRecord`]) and how
//! tuning is configured ([`TuneMode`]); the measuring is [`crate::tune`]'s.

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

    /// `WGPU_TRAIN_AUTOTUNE` when it is set and not empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var("WGPU_TRAIN_AUTOTUNE") {
            Ok(s) if !s.trim().is_empty() => Self::parse(&s).map(Some),
            _ => Ok(None),
        }
    }
}

/// File format tag: a file with another tag is foreign.
const FORMAT: &str = "wgpu-train autotune 1";

#[derive(Default)]
struct State {
    loaded: bool,
    /// Every choice known: cached, pinned or measured (what the file keeps).
    choices: BTreeMap<String, String>,
    /// The choices this tuner has handed out: the run's record.
    used: BTreeMap<String, String>,
    tuned: usize,
    seconds: f64,
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
    adapter_key: String,
    state: Mutex<State>,
}

impl TuneRecord {
    /// A record for the adapter described by `info`, caching in `dir` (or the
    /// platform's cache directory when `None`). A device with subgroups
    /// keeps its own file: its choices may name subgroup versions, which the
    /// same adapter without them (`WGPU_TRAIN_LIMITS`) cannot run.
    pub(crate) fn new(
        mode: TuneMode,
        info: &wgpu::AdapterInfo,
        subgroups: bool,
        dir: Option<PathBuf>,
    ) -> Self {
        let adapter_key = format!(
            "{} | {:?} | vendor {:#x} device {:#x} | {} {}{}",
            info.name,
            info.backend,
            info.vendor,
            info.device,
            info.driver,
            info.driver_info,
            if subgroups { " | subgroups" } else { "" }
        );
        let file = dir.or_else(default_dir).map(|d| {
            use sha2::Digest;
            let hash = sha2::Sha256::digest(adapter_key.as_bytes());
            let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
            d.join(format!("autotune-{hex}.json"))
        });
        TuneRecord {
            mode,
            file,
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

    /// "tuned 9 shapes in 0.4 s (cache …)", once something was tuned.
    pub fn report(&self) -> Option<String> {
        let (n, secs) = self.tuned();
        (n > 0).then(|| {
            format!(
                "autotune: tuned {n} shape{} in {secs:.2} s{}",
                if n == 1 { "" } else { "s" },
                self.file
                    .as_ref()
                    .map_or(String::new(), |f| format!(" (cached in {})", f.display()))
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
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while tuning leaves only a partial map: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The version name for `key`: pinned or cached (a name `known`
    /// accepts), else measured by `measure` when given and tuning is on
    /// (`fixed` if that fails), and recorded as used; `None` when nothing is
    /// recorded and nothing measured (the caller's fixed rule, not recorded).
    pub fn decide(
        &self,
        key: String,
        fixed: &'static str,
        known: &dyn Fn(&str) -> bool,
        measure: Option<&mut dyn FnMut() -> Result<&'static str>>,
    ) -> Option<String> {
        let mut s = self.lock();
        let known = |s: &State| s.choices.get(&key).filter(|n| known(n)).cloned();
        let mut chosen = known(&s);
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
            self.save(&s.choices);
            chosen = Some(name.to_string());
        }
        if let Some(name) = &chosen {
            s.used.insert(key, name.clone());
        }
        chosen
    }

    /// The cached choices, or none (with a warning) when the file is corrupt
    /// or belongs to another adapter or format.
    fn load(&self) -> BTreeMap<String, String> {
        let Some(path) = &self.file else {
            return BTreeMap::new();
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
            Err(e) => {
                warn_ignored(path, &e.to_string());
                return BTreeMap::new();
            }
        };
        let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
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
            Some((FORMAT, adapter, choices)) if adapter == self.adapter_key => choices
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            Some((FORMAT, adapter, _)) => {
                warn_ignored(
                    path,
                    &format!("it was written for another adapter ({adapter})"),
                );
                BTreeMap::new()
            }
            _ => {
                warn_ignored(path, "it is not a wgpu-train autotune file");
                BTreeMap::new()
            }
        }
    }

    /// Writes the choices atomically; a failure only warns (the choices stay
    /// in memory for this run).
    #[cfg(target_arch = "wasm32")]
    fn save(&self, _: &BTreeMap<String, String>) {}

    #[cfg(not(target_arch = "wasm32"))]
    fn save(&self, choices: &BTreeMap<String, String>) {
        let Some(path) = &self.file else { return };
        let doc = serde_json::json!({
            "format": FORMAT,
            "adapter": self.adapter_key,
            "choices": choices,
        });
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
                crate::files::write(path, text.as_bytes()).map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            eprintln!(
                "wgpu-train: warning: cannot write the autotune cache {}: {e}",
                path.display()
            );
        }
    }
}

fn warn_ignored(path: &std::path::Path, why: &str) {
    eprintln!(
        "wgpu-train: warning: ignoring the autotune cache {}: {why}; it will be rewritten",
        path.display()
    );
}

fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("wgpu-train"))
}
