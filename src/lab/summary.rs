//! How a training run is reported: the human-readable epoch line and the
//! one-line JSON run summary that `--json` prints.
//!
//! The JSON line is meant to be pasted into BENCHMARKS.md and read by
//! scripts: one object per run, the same keys every time (`null` where a
//! value does not apply or is not a number), times rounded to the
//! millisecond and throughputs to 0.1 sample/s so the line stays readable.
//! Losses and accuracies keep full precision.

use serde::{Serialize, Serializer};

use crate::metrics::EpochMetrics;

/// The summary of one training run: what `--json` prints, one line per run.
///
/// Fill it from the trainer's results; [`crate::metrics::History::epoch_seconds`],
/// [`crate::metrics::History::median_samples_per_sec`] and [`crate::metrics::History::final_train_loss`]
/// compute the per-epoch fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// "gpu" or "cpu".
    pub device: String,
    /// The wgpu adapter's name for GPU runs; a description of the CPU
    /// (e.g. "ndarray, 2 threads") for CPU runs.
    pub adapter: String,
    /// The model, e.g. "mlp 784-128-128-10 sigmoid" or "linear 10x785".
    pub model: String,
    /// The optimizer, e.g. "adam".
    pub optimizer: String,
    /// Learning rate.
    pub lr: f64,
    /// Minibatch size.
    pub batch: usize,
    /// Number of epochs trained.
    pub epochs: usize,
    /// Accuracy on the test set after training.
    pub test_accuracy: f64,
    /// Mean loss on the test set after training.
    pub test_loss: f64,
    /// The last epoch's mean training loss.
    pub final_train_loss: f64,
    /// Median over epochs of training samples per second.
    #[serde(serialize_with = "round_1")]
    pub samples_per_sec: f64,
    /// Wall-clock seconds of each epoch.
    #[serde(serialize_with = "round_3_all")]
    pub epoch_seconds: Vec<f64>,
    /// GPU dispatches recorded per training step; `None` on the CPU.
    pub dispatches_per_step: Option<f64>,
    /// Host–device synchronisations (readbacks) per epoch; `None` on the CPU.
    pub host_syncs_per_epoch: Option<f64>,
    /// The seed the run started from.
    pub seed: u64,
    /// Whether the fused training step ran (`TrainConfig::fused`).
    pub fused: bool,
    /// The kernel versions the autotuner chose, by shape ([`crate::tune`]):
    /// fixed before the first step, recorded so a run can be repeated.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kernels: std::collections::BTreeMap<String, String>,
}

impl RunSummary {
    /// The summary of a finished [`crate::train::fit`]: what the engine ran
    /// on, the model, the configuration and the result, as the training
    /// examples print it.
    pub fn from_fit(
        engine: &dyn crate::train::Engine,
        model: &dyn crate::model::Model,
        config: &crate::train::TrainConfig,
        result: &crate::train::FitResult,
    ) -> Self {
        let lr = config.optimizer.lr;
        RunSummary {
            device: engine.device().to_string(),
            adapter: engine.adapter(),
            model: model.name(),
            optimizer: config.optimizer.name(),
            // Through its shortest decimal form, so 1e-3 prints as 0.001,
            // not 0.0010000000474974513.
            lr: lr.to_string().parse().unwrap_or(lr as f64),
            batch: config.batch,
            epochs: config.epochs,
            test_accuracy: result.test_accuracy,
            test_loss: result.test_loss,
            final_train_loss: result.history.final_train_loss(),
            samples_per_sec: result.history.median_samples_per_sec(),
            epoch_seconds: result.history.epoch_seconds(),
            dispatches_per_step: engine.dispatches_per_step(),
            host_syncs_per_epoch: engine.host_syncs_last_epoch().map(|s| s as f64),
            seed: config.seed,
            fused: config.fused,
            kernels: engine.kernel_choices(),
        }
    }

    /// The summary as one line of JSON, without a trailing newline.
    ///
    /// Non-finite numbers (a diverged loss) become `null`, so the line is
    /// always valid JSON.
    pub fn to_json_line(&self) -> String {
        // serde_json writes NaN and ±inf as `null`, and serializing a struct
        // of plain fields cannot fail; the fallback keeps this panic-free
        // should a field type ever change.
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("cannot serialize run summary: {e}") }).to_string()
        })
    }
}

/// Rounds to `decimals` places; non-finite values pass through (to `null`).
fn round(x: f64, decimals: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(decimals);
    let r = (x * scale).round() / scale;
    // Huge values overflow the scaling; keep them as they were.
    if r.is_finite() { r } else { x }
}

fn round_1<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round(*x, 1))
}

fn round_3_all<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|&x| round(x, 3)))
}

/// One human-readable line per epoch, e.g.
///
/// ```text
/// epoch  3/10  loss 0.4123  acc 0.8512  val_loss 0.4301  val_acc 0.8400  2.31 s  26,000 samples/s
/// ```
///
/// The epoch number is padded to the width of `total_epochs` so successive
/// lines align; the validation fields appear only when measured.
pub fn format_epoch_line(m: &EpochMetrics, total_epochs: usize) -> String {
    let width = total_epochs.max(m.epoch).to_string().len();
    let mut line = format!(
        "epoch {:>width$}/{total_epochs}  loss {:.4}  acc {:.4}",
        m.epoch, m.train_loss, m.train_accuracy
    );
    if let Some(v) = m.val_loss {
        line.push_str(&format!("  val_loss {v:.4}"));
    }
    if let Some(v) = m.val_accuracy {
        line.push_str(&format!("  val_acc {v:.4}"));
    }
    line.push_str(&format!(
        "  {:.2} s  {} samples/s",
        m.seconds,
        thousands(m.samples_per_sec)
    ));
    line
}

/// Rounds to a whole number and groups digits by thousands: 26000.4 →
/// "26,000". Non-finite values print as Rust does ("NaN", "inf").
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if x.round() < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(999.6), "1,000");
        assert_eq!(thousands(26_000.4), "26,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(thousands(f64::NAN), "NaN");
    }

    #[test]
    fn round_keeps_non_finite_and_huge_values() {
        assert_eq!(round(2.34567, 3), 2.346);
        assert!(round(f64::NAN, 3).is_nan());
        assert_eq!(round(f64::INFINITY, 1), f64::INFINITY);
        assert_eq!(round(f64::MAX, 3), f64::MAX);
    }
}
