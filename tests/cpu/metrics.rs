//! The `--json` run summary and the per-epoch line.

use wgpu_train::lab::summary::{RunSummary, format_epoch_line};
use wgpu_train::metrics::{EpochMetrics, History, median};

fn epoch(epoch: usize, loss: f64, seconds: f64, rate: f64) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: loss,
        train_accuracy: 0.8,
        val_loss: Some(loss + 0.05),
        val_accuracy: Some(0.79),
        seconds,
        samples_per_sec: rate,
    }
}

fn summary(history: &History) -> RunSummary {
    RunSummary {
        device: "gpu".into(),
        adapter: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
        model: "mlp 784-128-128-10 sigmoid".into(),
        optimizer: "adam".into(),
        lr: 1e-3,
        batch: 128,
        epochs: history.epochs.len(),
        test_accuracy: 0.8712,
        test_loss: 0.3581,
        final_train_loss: history.final_train_loss(),
        samples_per_sec: history.median_samples_per_sec(),
        epoch_seconds: history.epoch_seconds(),
        dispatches_per_step: Some(11.0),
        host_syncs_per_epoch: Some(1.0),
        seed: 42,
        fused: true,
        kernels: Default::default(),
    }
}

fn history() -> History {
    let mut h = History::new();
    h.push(epoch(1, 0.61, 3.1234567, 19_000.0));
    h.push(epoch(2, 0.42, 2.31, 26_000.0));
    h.push(epoch(3, 0.38, 2.29, 26_200.123456));
    h
}

#[test]
fn json_line_parses_back_with_every_required_key() {
    let h = history();
    let line = summary(&h).to_json_line();
    assert!(!line.contains('\n'), "one line: {line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    for key in [
        "device",
        "adapter",
        "model",
        "optimizer",
        "lr",
        "batch",
        "epochs",
        "test_accuracy",
        "test_loss",
        "final_train_loss",
        "samples_per_sec",
        "epoch_seconds",
        "dispatches_per_step",
        "host_syncs_per_epoch",
        "seed",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {line}");
    }
    assert_eq!(v["device"], "gpu");
    assert_eq!(v["lr"], 1e-3);
    assert_eq!(v["batch"], 128);
    assert_eq!(v["epochs"], 3);
    assert_eq!(v["final_train_loss"], 0.38);
    // Median of the three rates, rounded to 0.1.
    assert_eq!(v["samples_per_sec"], 26_000.0);
    // Rounded to the millisecond.
    assert_eq!(v["epoch_seconds"], serde_json::json!([3.123, 2.31, 2.29]));
}

#[test]
fn nan_and_infinite_values_serialize_as_null() {
    let mut h = history();
    h.epochs[2].train_loss = f64::NAN;
    h.epochs[1].seconds = f64::INFINITY;
    let mut s = summary(&h);
    s.test_accuracy = f64::NAN;
    s.samples_per_sec = f64::NEG_INFINITY;
    s.dispatches_per_step = None;
    let line = s.to_json_line();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(v["final_train_loss"].is_null(), "{line}");
    assert!(v["test_accuracy"].is_null(), "{line}");
    assert!(v["samples_per_sec"].is_null(), "{line}");
    assert!(v["dispatches_per_step"].is_null(), "{line}");
    assert_eq!(v["epoch_seconds"], serde_json::json!([3.123, null, 2.29]));
}

#[test]
fn empty_history_gives_null_rather_than_invalid_json() {
    let h = History::new();
    let line = summary(&h).to_json_line();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(v["final_train_loss"].is_null());
    assert!(v["samples_per_sec"].is_null());
    assert_eq!(v["epoch_seconds"], serde_json::json!([]));
}

#[test]
fn median_of_odd_even_empty_and_nan() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(median(&[7.0]), 7.0);
    assert!(median(&[]).is_nan());
    // NaN sorts last: one NaN among five does not become the median.
    assert_eq!(median(&[f64::NAN, 1.0, 2.0, 3.0, 4.0]), 3.0);
}

#[test]
fn epoch_line_reads_like_the_example() {
    let line = format_epoch_line(&epoch(3, 0.41234, 2.314, 26_000.4), 10);
    assert_eq!(
        line,
        "epoch  3/10  loss 0.4123  acc 0.8000  val_loss 0.4623  val_acc 0.7900  2.31 s  26,000 samples/s"
    );
}

#[test]
fn epoch_line_omits_missing_validation_and_aligns_numbers() {
    let mut m = epoch(7, 0.5, 1.0, 1_234_567.0);
    m.val_loss = None;
    m.val_accuracy = None;
    let line = format_epoch_line(&m, 100);
    assert_eq!(
        line,
        "epoch   7/100  loss 0.5000  acc 0.8000  1.00 s  1,234,567 samples/s"
    );
    // A NaN loss prints, it does not panic.
    m.train_loss = f64::NAN;
    assert!(format_epoch_line(&m, 100).contains("loss NaN"));
}
