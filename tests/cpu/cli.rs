//! Bad command-line input to the training examples exits non-zero with a
//! clear message and no panic. Runs the example binaries that `cargo test`
//! builds beside the test executables.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/cli-HASH → target/<profile>/examples/NAME
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

/// Runs `train_mlp` with `args`; returns (exit code, stderr).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(example("train_mlp"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the example runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "panic for {args:?}:\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

fn fails_with(args: &[&str], needle: &str) {
    let (code, stderr) = run(args);
    assert_ne!(code, 0, "{args:?} succeeded");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected {needle:?} in:\n{stderr}"
    );
}

#[test]
fn unknown_optimizer_is_rejected() {
    fails_with(&["--optimizer", "adadelta"], "invalid value 'adadelta'");
}

#[test]
fn second_order_optimizer_is_for_the_linear_model_only() {
    fails_with(
        &["--optimizer", "lbfgs", "--device", "cpu"],
        "train the linear model only",
    );
}

#[test]
fn batch_zero_is_rejected() {
    fails_with(&["--batch", "0", "--device", "cpu"], "batch");
}

#[test]
fn nan_learning_rate_is_rejected() {
    fails_with(&["--lr", "NaN", "--device", "cpu"], "lr");
}

#[test]
fn negative_learning_rate_is_rejected() {
    fails_with(&["--lr=-0.1", "--device", "cpu"], "lr");
}

#[test]
fn missing_data_directory_is_reported() {
    fails_with(
        &["--data", "/nonexistent/wgpu-train-data", "--device", "cpu"],
        "/nonexistent/wgpu-train-data",
    );
}

#[test]
fn corrupt_data_is_reported_with_the_file() {
    let dir = std::env::temp_dir().join(format!("wgpu-train-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(dir.join(name), b"definitely not an IDX file").unwrap();
    }
    let (code, stderr) = run(&["--data", dir.to_str().unwrap(), "--device", "cpu"]);
    std::fs::remove_dir_all(&dir).ok();
    assert_ne!(code, 0);
    assert!(stderr.contains("idx") || stderr.contains("IDX"), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
}

#[test]
fn checkpoint_that_does_not_exist_is_reported() {
    fails_with(
        &[
            "--load",
            "/nonexistent/ckpt.safetensors",
            "--device",
            "cpu",
            "--epochs",
            "1",
        ],
        "ckpt.safetensors",
    );
}

#[test]
fn unknown_flag_is_rejected() {
    fails_with(&["--epochz", "3"], "unexpected argument");
}

/// Runs `sweep` with `args`; (exit code, stdout, stderr), no panic.
fn sweep(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(example("sweep"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the example runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "panic for {args:?}:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn sweep_grid_errors_are_clear() {
    for (grid, needle) in [
        ("sgd", "expected rule:lr"),
        ("sgd:fast", "`fast` in `sgd:fast` is not a number"),
        ("adadelta:0.1", "adadelta"),
        (";", "names no configuration"),
        ("sgd:-1", "lr"),
    ] {
        let (code, _, stderr) = sweep(&["--grid", grid, "--device", "cpu"]);
        assert_ne!(code, 0, "--grid {grid} succeeded");
        assert!(
            stderr.contains(needle),
            "--grid {grid}: expected {needle:?} in:\n{stderr}"
        );
    }
    let (code, _, stderr) = sweep(&["--seeds", "0", "--device", "cpu"]);
    assert!(code != 0 && stderr.contains("invalid seeds"), "{stderr}");
}

/// A small CPU sweep over two rules and two seeds on Fashion-MNIST: one
/// JSON object per model, in the order of the grid, each with its epochs.
#[test]
fn sweep_json_is_one_object_per_model() {
    let (code, stdout, stderr) = sweep(&[
        "--grid",
        "sgd:0.1;adam:0.001",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--limit",
        "600",
        "--validation",
        "100",
        "--device",
        "cpu",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let labels: Vec<&str> = lines.iter().map(|l| l["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "sgd lr 0.1 seed 0",
            "sgd lr 0.1 seed 1",
            "adam lr 0.001 seed 0",
            "adam lr 0.001 seed 1"
        ]
    );
    for l in &lines {
        assert_eq!(l["epochs"].as_array().unwrap().len(), 1);
        assert!(l["test_accuracy"].as_f64().unwrap() > 0.1, "{l}");
        assert!(l["diverged"].is_null());
    }
}
