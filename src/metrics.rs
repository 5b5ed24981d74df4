//! Per-epoch metrics and a run's history of them, as the training engines
//! report them. How a run is printed (the epoch line, the `--json` summary)
//! is the lab's (`lab::summary`).

use serde::Serialize;

use crate::error::{Error, Result};

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

/// The confusion matrix of a classifier: `m[t][p]` counts the samples of
/// true class `t` predicted as class `p` (rows true, columns predicted, as
/// scikit-learn's `confusion_matrix`).
///
/// Errors: `truth` and `predicted` of different lengths, or a label that is
/// not below `classes`.
pub fn confusion_matrix(classes: usize, truth: &[u32], predicted: &[u32]) -> Result<Vec<Vec<u64>>> {
    if truth.len() != predicted.len() {
        return Err(Error::InvalidArgument {
            name: "confusion matrix",
            msg: format!(
                "{} true labels but {} predictions",
                truth.len(),
                predicted.len()
            ),
        });
    }
    let mut m = vec![vec![0u64; classes]; classes];
    for (i, (&t, &p)) in truth.iter().zip(predicted).enumerate() {
        let (t, p) = (t as usize, p as usize);
        if t >= classes || p >= classes {
            return Err(Error::InvalidArgument {
                name: "confusion matrix",
                msg: format!(
                    "sample {i}: label {t} or prediction {p} is not below {classes} classes"
                ),
            });
        }
        m[t][p] += 1;
    }
    Ok(m)
}

/// One class's line of a classification report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub class: usize,
    /// Of the samples predicted as this class, the share that are.
    pub precision: f64,
    /// Of the samples of this class, the share predicted as it.
    pub recall: f64,
    /// The harmonic mean of precision and recall.
    pub f1: f64,
    /// How many samples are of this class.
    pub support: u64,
}

/// Per-class precision, recall and F1 from a [`confusion_matrix`], as
/// scikit-learn's `classification_report`: a ratio whose denominator is 0
/// (a class never predicted, or absent) is 0, scikit-learn's
/// `zero_division` default.
pub fn per_class(confusion: &[Vec<u64>]) -> Vec<ClassMetrics> {
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    (0..confusion.len())
        .map(|c| {
            let tp = confusion[c].get(c).copied().unwrap_or(0);
            let support: u64 = confusion[c].iter().sum();
            let predicted: u64 = confusion
                .iter()
                .map(|row| row.get(c).copied().unwrap_or(0))
                .sum();
            let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                class: c,
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_counts_rows_true_columns_predicted() {
        let m = confusion_matrix(3, &[0, 0, 1, 2, 2, 2], &[0, 1, 1, 2, 0, 2]).unwrap();
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 1, 0], vec![1, 0, 2]]);
        assert!(confusion_matrix(2, &[0, 2], &[0, 1]).is_err());
        assert!(confusion_matrix(2, &[0], &[0, 1]).is_err());
    }

    #[test]
    fn per_class_matches_a_hand_worked_report() {
        // Class 0: tp 1, predicted 2, support 2 → P ½, R ½, F1 ½.
        // Class 1: tp 1, predicted 2, support 1 → P ½, R 1, F1 ⅔.
        // Class 2: tp 2, predicted 2, support 3 → P 1, R ⅔, F1 0.8.
        let m = confusion_matrix(3, &[0, 0, 1, 2, 2, 2], &[0, 1, 1, 2, 0, 2]).unwrap();
        let r = per_class(&m);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(r[0].precision, 0.5) && close(r[0].recall, 0.5) && close(r[0].f1, 0.5));
        assert!(close(r[1].precision, 0.5) && close(r[1].recall, 1.0) && close(r[1].f1, 2.0 / 3.0));
        assert!(close(r[2].precision, 1.0) && close(r[2].recall, 2.0 / 3.0) && close(r[2].f1, 0.8));
        assert_eq!(
            r.iter().map(|c| c.support).collect::<Vec<_>>(),
            vec![2, 1, 3]
        );
        // A class never predicted and absent: all zero, no NaN.
        let z = per_class(&confusion_matrix(2, &[0], &[0]).unwrap());
        assert_eq!((z[1].precision, z[1].recall, z[1].f1), (0.0, 0.0, 0.0));
    }
}
