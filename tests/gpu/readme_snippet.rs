//! The README's library snippet reproduces the main job's numbers exactly:
//! the snippet's code (checked to be the README's, character for character,
//! but for the data directory and the epoch count a short test needs) and
//! `train_mlp --device gpu` on the same data end with bit-identical
//! parameters and the same test loss.

use crate::data_util::{Scratch, write_idx_set};
use std::path::Path;
use wgpu_train::optim::OptimizerConfig;
use wgpu_train::train::{FitResult, GpuEngine, TrainConfig, TrainData, fit};
use wgpu_train::{Activation, Gpu, data, model::Mlp};

/// The README's snippet between the markers; only `data::load(None)` (the
/// usual places) and `epochs: 10` differ, as [`readme_block`] checks.
#[rustfmt::skip]
fn snippet(dir: &Path, epochs: usize) -> wgpu_train::Result<(FitResult, Vec<f32>)> {
    // README BEGIN
let gpu = Gpu::new()?;                                   // once per process
let splits = data::load(Some(dir))?;                          // Fashion-MNIST from the usual places
let data = TrainData::new(splits.train, splits.test, 0, 0)?;
let model = Mlp::mnist(Activation::Sigmoid);
let config = TrainConfig { epochs, optimizer: OptimizerConfig::preset("adam", 1e-3)?, ..TrainConfig::default() };
let mut engine = GpuEngine::new(&gpu, &model, &data, &config)?;   // or CpuEngine::new(&model, &data, &config)
let result = fit(&mut engine, &data, &config, 0, &mut |_| {})?;
println!("test accuracy {:.4}", result.test_accuracy);
    // README END
    use wgpu_train::train::Engine;
    let params = engine.state()?.params;
    Ok((result, params))
}

/// The ```rust block under "### Using the library", its `use` lines and
/// blank lines dropped.
fn readme_block() -> String {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Using the library")
        .nth(1)
        .expect("README has a 'Using the library' section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a rust block in that section");
    block
        .lines()
        .filter(|l| !l.starts_with("use ") && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snippet_here_is_the_readme_snippet() {
    let source = include_str!("readme_snippet.rs");
    let here = source
        .split("    // README BEGIN\n")
        .nth(1)
        .and_then(|s| s.split("    // README END").next())
        .expect("markers");
    // Spacing before the comments aside, line for line.
    let words = |s: &str| {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let expected = readme_block()
        .replace("data::load(None)", "data::load(Some(dir))")
        .replace("epochs: 10,", "epochs,");
    assert_eq!(
        words(here.trim_end()),
        words(&expected),
        "the README's snippet and this test's copy differ"
    );
}

#[test]
fn readme_snippet_and_train_mlp_give_bit_identical_parameters() {
    let data = Scratch::new("readme-data");
    write_idx_set(&data, 300, 70);
    let out = Scratch::new("readme-out");
    let ckpt = out.path().join("main-job.safetensors");
    let epochs = 2;

    let (result, params) = snippet(data.path(), epochs).unwrap();

    let exe = std::env::current_exe().expect("test executable path");
    let train_mlp = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples/train_mlp");
    assert!(train_mlp.exists(), "{} was not built", train_mlp.display());
    // Tuning off, as in the library: a tuned run may choose versions whose
    // bits differ (matmul v5, softmax-CE v2, column-sum v2); the same bits
    // with tuning on need its recorded choices (tests/gpu/tune.rs).
    let cli = std::process::Command::new(&train_mlp)
        .env("WGPU_TRAIN_AUTOTUNE", "off")
        .args(["--device", "gpu", "--json", "--quiet", "--epochs"])
        .arg(epochs.to_string())
        .arg("--data")
        .arg(data.path())
        .arg("--save")
        .arg(&ckpt)
        .output()
        .expect("train_mlp runs");
    let stdout = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("a JSON line")).unwrap();
    assert_eq!(
        json["test_loss"].as_f64(),
        Some(result.test_loss),
        "{stdout}"
    );
    assert_eq!(
        json["final_train_loss"].as_f64(),
        Some(result.history.final_train_loss())
    );
    assert_eq!(json["test_accuracy"].as_f64(), Some(result.test_accuracy));

    let saved = wgpu_train::checkpoint::load(&ckpt).unwrap();
    let model = Mlp::mnist(Activation::Sigmoid);
    let mut cli_params = Vec::new();
    for p in wgpu_train::model::Model::parameters(&model) {
        cli_params.extend_from_slice(saved.f32(&p.name, &p.shape).unwrap());
    }
    assert_eq!(cli_params.len(), params.len());
    let differ = cli_params
        .iter()
        .zip(&params)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differ, 0, "{differ} of {} parameters differ", params.len());
}
