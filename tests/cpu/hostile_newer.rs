//! Hostile input, round three (issue 28): the newer surface (`sweep`,
//! `train_linear --optimizer lbfgs|newton-cg`, `second_order`,
//! `gpu_vs_cpu`, the autotune cache and `--kernels`/`--load` replay), from
//! the command line. One test per class of the issue, named for it; the
//! library-level cases (the GPU sweep's batch, the tuner's cache and its
//! replayed choices) are in `tests/gpu/hostile_input.rs`. The helpers are
//! the earlier rounds' (`hostile_cli.rs`).

use crate::data_util::Scratch;
use crate::hostile_cli::{Run, arg, example, finish, run_with, tiny_data};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Runs an example with extra environment (values may be any bytes) and,
/// where given, a working directory and an address-space limit (`prlimit`,
/// util-linux), so that a case that would grow without bound before its
/// fix fails fast instead of taking the machine's memory. Only CPU runs
/// take a limit: a Vulkan driver maps more address space than it uses.
fn run_in(
    name: &str,
    args: &[&str],
    env: &[(&str, &OsStr)],
    dir: Option<&Path>,
    address_space: Option<u64>,
) -> Run {
    let mut cmd = match address_space {
        Some(bytes) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--as={bytes}")).arg(example(name));
            c
        }
        None => Command::new(example(name)),
    };
    cmd.args(args).env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let start = Instant::now();
    let out = cmd.output().expect("the example runs");
    finish(
        out,
        start.elapsed().as_secs_f64(),
        &format!("{name} {args:?}"),
    )
}

const GIB: u64 = 1 << 30;

fn run(name: &str, args: &[&str]) -> Run {
    run_with(name, args, &[])
}

// ------------------------------------------------------------ class 1: counts
#[test]
fn counts_from_flags_are_bounded_before_anything_is_allocated() {
    let data = tiny_data();
    let d = arg(data.path());
    // Before: the run list grew until the allocation aborted the process.
    for seeds in ["18446744073709551615", "70000"] {
        let r = run_in(
            "sweep",
            &[
                "--data", d, "--grid", "sgd:0.1", "--seeds", seeds, "--device", "cpu",
            ],
            &[],
            None,
            Some(2 * GIB),
        );
        assert_eq!(r.code, 1, "--seeds {seeds}: {}", r.stderr);
        assert!(
            r.stderr.contains("invalid seeds") && r.stderr.contains("65535"),
            "{}",
            r.stderr
        );
    }
    // The largest first seed: the seeds wrap instead of overflowing.
    let r = run(
        "sweep",
        &[
            "--data",
            d,
            "--grid",
            "sgd:0.1",
            "--seeds",
            "2",
            "--seed",
            "18446744073709551615",
            "--epochs",
            "1",
            "--validation",
            "32",
            "--device",
            "cpu",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("\"seed\":18446744073709551615") && r.stdout.contains("\"seed\":0"),
        "{}",
        r.stdout
    );
    // gpu_vs_cpu's counts: refused at once instead of running for ever.
    for flag in ["--runs", "--warmup", "--train-steps"] {
        let r = run(
            "gpu_vs_cpu",
            &["--quick", flag, "18446744073709551615", "--filter", "mlp"],
        );
        assert_eq!(r.code, 1, "{flag}: {}", r.stderr);
        assert!(
            r.stderr.contains("more than the 10000 allowed"),
            "{}",
            r.stderr
        );
        assert!(r.seconds < 30.0, "{flag} ran first ({} s)", r.seconds);
    }
}

// ------------------------------------------------------------ class 3: outputs first
#[test]
fn second_order_runs_check_their_plot_path_before_training() {
    let data = tiny_data();
    let d = arg(data.path());
    let missing = "/nonexistent/wgpu-train/x.svg";
    for (name, args) in [
        (
            "train_linear",
            vec![
                "--data",
                d,
                "--optimizer",
                "lbfgs",
                "--device",
                "cpu",
                "--plot",
                missing,
            ],
        ),
        (
            "second_order",
            vec![
                "--data",
                d,
                "--methods",
                "lbfgs",
                "--device",
                "cpu",
                "--no-demos",
                "--plot",
                missing,
            ],
        ),
    ] {
        let r = run(name, &args);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert!(r.stderr.contains("does not exist"), "{name}: {}", r.stderr);
        assert!(
            !r.stderr.contains("iter") && !r.stdout.contains("optimum"),
            "{name} trained first:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
}

// ------------------------------------------------------------ class 4: failed stops
/// λ = 1e30 makes ‖∇L‖² overflow f32 at the start: a non-finite stop.
#[test]
fn a_failed_second_order_stop_exits_non_zero_and_its_json_says_how_it_stopped() {
    let data = tiny_data();
    let d = arg(data.path());
    for method in ["lbfgs", "newton-cg"] {
        let r = run(
            "train_linear",
            &[
                "--data",
                d,
                "--optimizer",
                method,
                "--l2",
                "1e30",
                "--device",
                "cpu",
                "--json",
            ],
        );
        assert_eq!(r.code, 1, "{method}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("\"stop\":\"non-finite value"),
            "{method}: {}",
            r.stdout
        );
        assert!(r.stderr.contains("error: [cpu]"), "{}", r.stderr);
        // A run that ends as asked exits 0 and says so too.
        let r = run(
            "train_linear",
            &[
                "--data",
                d,
                "--optimizer",
                method,
                "--iterations",
                "3",
                "--device",
                "cpu",
                "--json",
            ],
        );
        assert_eq!(r.code, 0, "{method}: {}", r.stderr);
        assert!(
            r.stdout.contains("\"stop\":\"iteration limit reached\"")
                || r.stdout.contains("\"stop\":\"converged\""),
            "{}",
            r.stdout
        );
    }
}

// ------------------------------------------------------------ class 5: numbers
#[test]
fn second_order_numbers_are_validated_before_any_run() {
    let data = tiny_data();
    let d = arg(data.path());
    let base = ["--data", d, "--device", "cpu", "--no-demos"];
    for (flag, value, needle) in [
        ("--target", "inf", "invalid --target"),
        ("--target", "-1", "invalid --target"),
        ("--target", "NaN", "invalid --target"),
        ("--target", "0", "invalid --target"),
        ("--l2", "0", "invalid --l2"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        let r = run("second_order", &args);
        assert_eq!(r.code, 1, "{flag} {value}: {}", r.stdout);
        assert!(r.stderr.contains(needle), "{flag} {value}: {}", r.stderr);
        assert!(
            !r.stdout.contains("optimum") && !r.stderr.contains("iteration"),
            "{flag} {value} ran first:\n{}",
            r.stdout
        );
    }
    // λ = 0 for train_linear's second-order runs too (no minimum to reach).
    let r = run(
        "train_linear",
        &[
            "--data",
            d,
            "--optimizer",
            "lbfgs",
            "--l2",
            "0",
            "--device",
            "cpu",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("needs λ > 0"), "{}", r.stderr);
    // gtol 0 cannot be met in f32: the run stops once the loss stalls, long
    // before its 5,000 iterations, and says so with a non-zero exit.
    let r = run(
        "train_linear",
        &[
            "--data",
            d,
            "--optimizer",
            "lbfgs",
            "--gtol",
            "0",
            "--iterations",
            "5000",
            "--device",
            "cpu",
            "--json",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("\"stop\":\"stalled"), "{}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON line");
    let iterations = v["epochs"].as_u64().expect("iterations");
    assert!(iterations < 1000, "{iterations} iterations at gtol 0");
}

// ------------------------------------------------------------ class 8: read bounds
#[test]
fn kernels_and_load_of_a_device_are_refused_before_reading() {
    let data = tiny_data();
    let d = arg(data.path());
    for flag in ["--kernels", "--load"] {
        let r = run_in(
            "train_mlp",
            &["--data", d, "--device", "cpu", flag, "/dev/zero"],
            &[],
            None,
            Some(2 * GIB),
        );
        assert_eq!(r.code, 1, "{flag}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("/dev/zero is a character device, not a regular file"),
            "{flag}: {}",
            r.stderr
        );
        assert!(r.seconds < 30.0, "{flag}: {} s", r.seconds);
    }
    // A --kernels file over the bound is refused by its size, unread.
    let s = Scratch::new("kernels-big");
    let big = s.path().join("run.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(wgpu_train::train::MAX_RECORD_BYTES + 1)
        .unwrap();
    let r = run(
        "train_mlp",
        &["--data", d, "--device", "cpu", "--kernels", arg(&big)],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("more than the"), "{}", r.stderr);
}

// ------------------------------------------------------------ class 9: directories
/// A tuned GPU run (it writes the autotune cache) with the given cache
/// environment, in `cwd`.
fn tuned_run(data: &Path, env: &[(&str, &OsStr)], cwd: &Path) -> Run {
    let mut all = vec![("WGPU_TRAIN_AUTOTUNE", OsStr::new("on"))];
    all.extend_from_slice(env);
    run_in(
        "train_mlp",
        &[
            "--data",
            arg(data),
            "--epochs",
            "1",
            "--device",
            "gpu",
            "--quiet",
        ],
        &all,
        Some(cwd),
        None,
    )
}

#[test]
fn the_cache_creates_no_directory_that_nobody_named() {
    let data = tiny_data();
    let s = Scratch::new("cache-dirs");
    // A HOME that does not exist is not created.
    let home = s.path().join("no-such-home");
    let r = tuned_run(
        data.path(),
        &[
            ("HOME", home.as_os_str()),
            ("XDG_CACHE_HOME", OsStr::new("")),
        ],
        s.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!home.exists(), "the cache created {}", home.display());
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    assert!(!r.stdout.contains("cached in"), "{}", r.stdout);
    // A relative XDG_CACHE_HOME is ignored (the XDG specification): the
    // cache goes under $HOME, nothing appears in the working directory.
    let home = s.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let cwd = s.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let r = tuned_run(
        data.path(),
        &[
            ("HOME", home.as_os_str()),
            ("XDG_CACHE_HOME", OsStr::new("relative-cache")),
        ],
        &cwd,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "in {}",
        cwd.display()
    );
    assert!(home.join(".cache/wgpu-train").is_dir(), "{}", r.stderr);
}

// ------------------------------------------------------------ class 10: exit codes
#[test]
fn exit_codes_say_what_happened() {
    // A version this capped device cannot build is skipped with its
    // reason; only a disagreement with the CPU is a failure (exit 2).
    let r = run_with(
        "gpu_vs_cpu",
        &["--versions", "--quick", "--filter", "mlp"],
        &[("WGPU_TRAIN_LIMITS", Some("downlevel"))],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("skipped on this device"), "{}", r.stdout);
    assert!(!r.stdout.contains("FAILED"), "{}", r.stdout);
    // A sweep in which every model diverged is a failure.
    let data = tiny_data();
    let r = run(
        "sweep",
        &[
            "--data",
            arg(data.path()),
            "--grid",
            "sgd:1e36",
            "--epochs",
            "2",
            "--validation",
            "32",
            "--device",
            "cpu",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("every model of the sweep diverged"),
        "{}",
        r.stderr
    );
}

// ------------------------------------------------------------ class 11: messages
#[test]
fn messages_name_the_real_cause() {
    let data = tiny_data();
    let d = arg(data.path());
    // A divergence from the weight decay names --l2, not --lr.
    let r = run(
        "train_linear",
        &[
            "--data", d, "--l2", "1e30", "--epochs", "2", "--device", "cpu",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("diverged") && r.stderr.contains("(--l2)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("smaller learning rate"), "{}", r.stderr);
    // A negative number is a value (then refused by its check), not a flag.
    let r = run(
        "train_linear",
        &["--data", d, "--l2", "-1e-3", "--device", "cpu"],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(!r.stderr.contains("unexpected argument"), "{}", r.stderr);
    assert!(r.stderr.contains("-0.001"), "{}", r.stderr);
    // Flags that a second-order run would ignore are refused.
    for flag in [["--epochs", "3"], ["--batch", "7"], ["--lr", "0.5"]] {
        let mut args = vec!["--data", d, "--optimizer", "lbfgs", "--device", "cpu"];
        args.extend(flag);
        let r = run("train_linear", &args);
        assert_eq!(r.code, 1, "{flag:?}: {}", r.stdout);
        assert!(
            r.stderr.contains(&format!("{} does not apply", flag[0])),
            "{}",
            r.stderr
        );
    }
    // Non-UTF-8 settings are errors naming the variable, as ASCII nonsense is.
    #[cfg(unix)]
    for var in ["WGPU_TRAIN_AUTOTUNE", "WGPU_TRAIN_LIMITS"] {
        use std::os::unix::ffi::OsStrExt;
        let r = run_in(
            "train_mlp",
            &["--data", d, "--epochs", "1", "--device", "gpu"],
            &[(var, OsStr::from_bytes(b"o\xffn"))],
            None,
            None,
        );
        assert_eq!(r.code, 1, "{var}: {}", r.stdout);
        assert!(
            r.stderr.contains(var) && r.stderr.contains("not UTF-8"),
            "{}",
            r.stderr
        );
    }
    // With --device both, a GPU that cannot be opened does not skip the CPU.
    for (name, extra) in [
        ("train_mlp", vec![]),
        (
            "train_linear",
            vec!["--optimizer", "lbfgs", "--iterations", "3"],
        ),
    ] {
        let mut args = vec!["--data", d, "--epochs", "1", "--device", "both"];
        if !extra.is_empty() {
            args = vec!["--data", d, "--device", "both"];
            args.extend(extra);
        }
        let r = run_with(name, &args, &[("WGPU_ADAPTER_NAME", Some("doesnotexist"))]);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert!(r.stderr.contains("error: [gpu]"), "{name}: {}", r.stderr);
        assert!(
            r.stdout.contains("[cpu] test accuracy") || r.stdout.contains("test accuracy"),
            "{name}: the CPU did not run:\n{}",
            r.stdout
        );
        assert!(r.stdout.contains("[cpu]"), "{name}: {}", r.stdout);
    }
}
