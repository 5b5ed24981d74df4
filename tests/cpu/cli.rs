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
