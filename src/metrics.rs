//! Per-epoch metrics and a run's history of them, as the training engines
//! report them. How a run is printed (the epoch line, the `--json` summary)
//! is the lab's (`lab::summary`).

use serde::Serialize;

/// What one epoch of training measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f64,
    /// Fraction of training samples classified correctly during the epoch.
    pub train_accuracy: f64,
    /// Loss on the validation set after the epoch, if there is one.
    pub val_loss: Option<f64>,
    /// Accuracy on the validation set after the epoch, if there is one.
    pub val_accuracy: Option<f64>,
    /// Wall-clock seconds the epoch's training took.
    pub seconds: f64,
    /// Training samples per second over the epoch.
    pub samples_per_sec: f64,
}

/// The metrics of every epoch of one run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    pub epochs: Vec<EpochMetrics>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one epoch's metrics.
    pub fn push(&mut self, epoch: EpochMetrics) {
        self.epochs.push(epoch);
    }

    /// Seconds of each epoch, in order.
    pub fn epoch_seconds(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.seconds).collect()
    }

    /// The median of the per-epoch throughputs: one slow first epoch (shader
    /// compilation, page faults) does not drag it down as a mean would.
    /// NaN for an empty history.
    pub fn median_samples_per_sec(&self) -> f64 {
        let v: Vec<f64> = self.epochs.iter().map(|e| e.samples_per_sec).collect();
        median(&v)
    }

    /// The last epoch's training loss; NaN for an empty history.
    pub fn final_train_loss(&self) -> f64 {
        self.epochs.last().map_or(f64::NAN, |e| e.train_loss)
    }
}

/// The median of `values`: the middle one, or the mean of the two middle
/// ones for an even count. NaN for an empty slice. NaNs sort last (by
/// [`f64::total_cmp`]), so a few do not poison the result.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}
