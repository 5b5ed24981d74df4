//! The training examples under hostile or careless input (issue 12): each
//! case ends in a clear message and the right exit status, never a panic,
//! silent garbage or a clobbered file. These are the CLI's behaviours, so
//! they run the example binaries (built by `cargo test`) on small generated
//! IDX data; GPU cases run on the test machine's adapter (lavapipe in CI).

use crate::data_util::{Scratch, write_idx_set};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;
use wgpu_train::checkpoint;

pub(crate) fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/TEST-HASH → target/<profile>/examples/NAME
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} was not built (cargo test builds examples)",
        path.display()
    );
    path
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) seconds: f64,
}

pub(crate) fn finish(out: Output, seconds: f64, what: &str) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stdout.contains("panicked"),
        "panic for {what}:\n{stderr}"
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
        seconds,
    }
}

pub(crate) fn run_with(name: &str, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut cmd = Command::new(example(name));
    cmd.args(args).env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let start = Instant::now();
    let out = cmd.output().expect("the example runs");
    finish(
        out,
        start.elapsed().as_secs_f64(),
        &format!("{name} {args:?}"),
    )
}

fn train_mlp(args: &[&str]) -> Run {
    run_with("train_mlp", args, &[])
}

/// 256 training and 64 test examples of 28×28: an epoch takes milliseconds.
pub(crate) fn tiny_data() -> Scratch {
    let s = Scratch::new("cli-data");
    write_idx_set(&s, 256, 64);
    s
}

pub(crate) fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The `[device] test accuracy …` line's test loss.
pub(crate) fn test_loss(stdout: &str, device: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("[{device}] test accuracy")))
        .unwrap_or_else(|| panic!("no [{device}] result in:\n{stdout}"));
    let after = line.split("test loss ").nth(1).expect("test loss field");
    after
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

// ------------------------------------------------------------ class 1: sizes
#[test]
fn batch_larger_than_memory_trains_one_full_batch_on_gpu_and_cpu() {
    let data = tiny_data();
    for batch in ["4000000000", "18446744073709551615"] {
        let r = train_mlp(&[
            "--data",
            arg(data.path()),
            "--epochs",
            "1",
            "--batch",
            batch,
            "--device",
            "both",
            "--quiet",
        ]);
        assert_eq!(r.code, 0, "--batch {batch}:\n{}", r.stderr);
        // One batch of all 256 examples on each device: the same result.
        let (g, c) = (test_loss(&r.stdout, "gpu"), test_loss(&r.stdout, "cpu"));
        assert!((g - c).abs() < 1e-3, "gpu {g} cpu {c}");
    }
    let full = train_mlp(&[
        "--data",
        arg(data.path()),
        "--epochs",
        "1",
        "--batch",
        "256",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let huge = train_mlp(&[
        "--data",
        arg(data.path()),
        "--epochs",
        "1",
        "--batch",
        "18446744073709551615",
        "--device",
        "cpu",
        "--quiet",
    ]);
    assert_eq!(
        test_loss(&full.stdout, "cpu"),
        test_loss(&huge.stdout, "cpu")
    );
}

// ------------------------------------------------------------ class 2: divergence
#[test]
fn diverging_run_names_device_and_epoch_exits_non_zero_and_the_cpu_still_runs() {
    let data = tiny_data();
    let out = Scratch::new("cli-diverge");
    let save = out.path().join("ckpt.safetensors");
    let r = train_mlp(&[
        "--data",
        arg(data.path()),
        "--epochs",
        "3",
        "--optimizer",
        "sgd",
        "--lr",
        "1e36",
        "--device",
        "both",
        "--save",
        arg(&save),
    ]);
    assert_ne!(r.code, 0, "a diverged run exited 0:\n{}", r.stdout);
    for device in ["gpu", "cpu"] {
        assert!(
            r.stderr
                .contains(&format!("[{device}] diverged: the training loss became")),
            "{}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("try a smaller learning rate (--lr)"));
    // The epoch in which it happened is named and its line was printed.
    assert!(r.stderr.contains("in epoch "), "{}", r.stderr);
    assert!(r.stderr.contains("[cpu] epoch "), "{}", r.stderr);
    assert!(!r.stdout.contains("GPU/CPU speed"), "{}", r.stdout);
    assert!(!r.stdout.contains("test loss inf"), "{}", r.stdout);
    // Nothing of the diverged state was saved.
    assert!(out.listing().is_empty(), "{:?}", out.listing());
}

#[test]
fn relu_divergence_is_reported_as_divergence_not_as_a_schedule_error() {
    let data = tiny_data();
    for device in ["gpu", "cpu"] {
        let r = train_mlp(&[
            "--data",
            arg(data.path()),
            "--epochs",
            "2",
            "--lr",
            "1e30",
            "--activation",
            "relu",
            "--validation",
            "32",
            "--device",
            device,
        ]);
        assert_ne!(r.code, 0);
        assert!(
            r.stderr.contains(&format!("[{device}] diverged: the")) && r.stderr.contains("epoch 1"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("invalid metric"), "{}", r.stderr);
    }
}

// ------------------------------------------------------------ class 3: resume
fn epochs_done(path: &Path) -> usize {
    checkpoint::load(path)
        .unwrap()
        .meta("epochs_done")
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn resume_with_nothing_left_to_train_is_a_clear_error_and_the_checkpoint_is_kept() {
    let data = tiny_data();
    let out = Scratch::new("cli-resume-none");
    let ck = out.path().join("ckpt.safetensors");
    let d = arg(data.path());
    let r = train_mlp(&[
        "--data",
        d,
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--quiet",
        "--save",
        arg(&ck),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(epochs_done(&ck), 3);
    for device in ["cpu", "gpu", "both"] {
        let r = train_mlp(&[
            "--data",
            d,
            "--epochs",
            "1",
            "--device",
            device,
            "--load",
            arg(&ck),
            "--save",
            arg(&ck),
        ]);
        assert_ne!(r.code, 0);
        assert!(
            r.stderr.contains("already trained 3 epochs") && r.stderr.contains("nothing to do"),
            "{}",
            r.stderr
        );
        assert!(!r.stdout.contains("NaN"), "{}", r.stdout);
        // epochs_done never goes backwards.
        assert_eq!(epochs_done(&ck), 3);
    }
}

#[test]
fn both_devices_resume_from_the_same_state_when_saving_over_the_checkpoint() {
    let data = tiny_data();
    let out = Scratch::new("cli-resume-both");
    let ck = out.path().join("ckpt.safetensors");
    let d = arg(data.path());
    let r = train_mlp(&[
        "--data",
        d,
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--save",
        arg(&ck),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = train_mlp(&[
        "--data",
        d,
        "--epochs",
        "3",
        "--device",
        "both",
        "--quiet",
        "--load",
        arg(&ck),
        "--save",
        arg(&ck),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("[cpu] resumed from") && r.stdout.contains("after epoch 2"));
    // The CPU resumed from epoch 2 (not from the GPU's new file at epoch 3)
    // and trained one epoch, as the GPU did: the same result.
    let (g, c) = (test_loss(&r.stdout, "gpu"), test_loss(&r.stdout, "cpu"));
    assert!((g - c).abs() < 1e-3, "gpu {g} cpu {c}\n{}", r.stdout);
    assert_eq!(epochs_done(&ck), 3);
    assert_eq!(epochs_done(&out.path().join("ckpt.cpu.safetensors")), 3);
    // Both measured something, so the ratio is a real number.
    let ratio = r
        .stdout
        .split("GPU/CPU speed: ")
        .nth(1)
        .and_then(|s| s.split('x').next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no speed ratio in:\n{}", r.stdout));
    assert!(ratio.is_finite() && ratio > 0.0 && ratio < 1e6, "{ratio}");
}

// ------------------------------------------------------------ class 5: outputs first
#[test]
fn unwritable_save_or_plot_paths_fail_before_any_training() {
    let data = tiny_data();
    let out = Scratch::new("cli-outputs");
    fs_write(&out.path().join("file"));
    let not_a_dir = out.path().join("file/x.safetensors");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--save", "/nonexistent/wgpu-train/x.safetensors"],
            "does not exist",
        ),
        (vec!["--save", arg(&not_a_dir)], "ot a directory"),
        (vec!["--save", "/dev/null"], "character device"),
        (vec!["--plot", "curves.bmp"], ".svg or .png"),
        #[cfg(target_os = "linux")]
        (
            vec!["--plot", "/proc/wgpu-train-curves.svg"],
            "cannot be written",
        ),
    ];
    for (flags, needle) in cases {
        for device in ["cpu", "both"] {
            let mut args = vec![
                "--data",
                arg(data.path()),
                "--epochs",
                "50",
                "--device",
                device,
            ];
            args.extend(&flags);
            let r = train_mlp(&args);
            assert_ne!(r.code, 0, "{args:?}");
            assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
            assert!(
                !r.stdout.contains("test accuracy") && !r.stderr.contains("epoch  1/50"),
                "{args:?} trained first:\n{}{}",
                r.stdout,
                r.stderr
            );
        }
    }
    assert!(
        std::fs::metadata("/dev/null")
            .map(|m| !m.is_file())
            .unwrap_or(false)
    );
}

fn fs_write(p: &Path) {
    std::fs::write(p, b"x").expect("write");
}

// ------------------------------------------------------------ class 6: messages
#[test]
fn wgpu_backend_that_names_no_backend_is_named_with_the_valid_ones() {
    for value in ["bogus", "vulkan,bogus", ""] {
        let r = run_with("gpu_info", &[], &[("WGPU_BACKEND", Some(value))]);
        assert_ne!(r.code, 0, "WGPU_BACKEND={value:?}");
        assert!(
            r.stderr.contains("WGPU_BACKEND") && r.stderr.contains("vulkan"),
            "{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("install its vendor driver"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("Backends(0x0)"), "{}", r.stderr);
    }
    // A valid value still works.
    let r = run_with("gpu_info", &[], &[("WGPU_BACKEND", Some("Vulkan"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn wgpu_adapter_name_that_matches_nothing_lists_the_adapters_without_driver_advice() {
    let data = tiny_data();
    let r = run_with(
        "train_mlp",
        &["--data", arg(data.path()), "--device", "gpu"],
        &[("WGPU_ADAPTER_NAME", Some("doesnotexist"))],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("\"doesnotexist\"") && r.stderr.contains("adapters found are"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("install its vendor driver"),
        "{}",
        r.stderr
    );
}

#[test]
fn gpu_binaries_without_xdg_runtime_dir_print_no_mesa_warning() {
    // A fresh TMPDIR, so the private directory is made here, not found.
    let tmp = Scratch::new("cli-xdg");
    let r = run_with(
        "gpu_info",
        &[],
        &[("XDG_RUNTIME_DIR", None), ("TMPDIR", Some(arg(tmp.path())))],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("XDG_RUNTIME_DIR"), "{}", r.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let made: Vec<String> = tmp.listing();
        assert_eq!(made.len(), 1, "{made:?}");
        assert!(made[0].starts_with("wgpu-train-runtime-"), "{made:?}");
        let mode = std::fs::metadata(tmp.path().join(&made[0]))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[cfg(unix)]
#[test]
fn symlink_loop_as_data_is_reported_as_a_loop_not_as_missing() {
    let s = Scratch::new("cli-loop");
    let a = s.path().join("a");
    let b = s.path().join("b");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let r = train_mlp(&["--data", arg(&a), "--device", "cpu"]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot be read") && r.stderr.contains("symbolic links"),
        "{}",
        r.stderr
    );
}

/// Root reads any directory, so as root the binary runs as `nobody`
/// (setpriv, util-linux) to meet the permission check a user meets.
#[cfg(target_os = "linux")]
#[test]
fn unreadable_data_dir_is_reported_as_permission_denied_not_as_missing() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let data = tiny_data();
    let locked = Scratch::new("cli-locked");
    std::fs::set_permissions(locked.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Unreadable itself, and a data directory inside an unsearchable one.
    let closed = locked.path().join("closed");
    let inner_parent = locked.path().join("noexec");
    let inner = inner_parent.join("fashion");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::create_dir_all(&closed).unwrap();
    for f in std::fs::read_dir(data.path()).unwrap().flatten() {
        std::fs::copy(f.path(), closed.join(f.file_name())).unwrap();
        std::fs::copy(f.path(), inner.join(f.file_name())).unwrap();
    }
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&inner_parent, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap();
    let as_nobody = |exe: &Path| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(exe);
        c
    };
    // `nobody` may not reach the build directory (a checkout under a
    // private home): then run a copy from a directory it can reach.
    let copy = Scratch::new("cli-exe");
    let mut exe = example("train_mlp");
    if root
        && !as_nobody(&exe)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        let to = copy.path().join("train_mlp");
        std::fs::copy(&exe, &to).unwrap();
        exe = to;
    }
    for dir in [&closed, &inner] {
        let mut cmd = if root {
            as_nobody(&exe)
        } else {
            Command::new(&exe)
        };
        cmd.args(["--data", arg(dir), "--device", "cpu"])
            .env("RUST_BACKTRACE", "0");
        let r = finish(cmd.output().expect("runs"), 0.0, "unreadable data");
        assert_ne!(r.code, 0);
        assert!(
            r.stderr.contains("permission denied"),
            "{}: {}",
            dir.display(),
            r.stderr
        );
        assert!(!r.stderr.contains("does not exist"), "{}", r.stderr);
        assert!(!r.stderr.contains("holds neither"), "{}", r.stderr);
    }
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&inner_parent, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn gpu_vs_cpu_filter_that_matches_nothing_is_an_error_listing_the_cases() {
    let r = run_with("gpu_vs_cpu", &["--quick", "--filter", "nonexistent"], &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("'nonexistent' matches no case") && r.stderr.contains("train_step/mlp"),
        "{}",
        r.stderr
    );
    assert!(
        r.seconds < 30.0,
        "it ran the benchmarks first ({} s)",
        r.seconds
    );
}

// ------------------------------------------------------------ issue 11: no GPU
#[test]
fn software_adapter_is_announced_before_the_gpu_run() {
    let data = tiny_data();
    let r = train_mlp(&[
        "--data",
        arg(data.path()),
        "--epochs",
        "1",
        "--device",
        "gpu",
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // This suite's adapter is lavapipe (CI) or a real GPU: the notice must
    // appear exactly when the adapter is a software one.
    let software = r.stdout.contains(", Cpu, ");
    assert_eq!(
        r.stderr.contains("is a software renderer") && r.stderr.contains("--device cpu"),
        software,
        "{}\n{}",
        r.stdout,
        r.stderr
    );
}
