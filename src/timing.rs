//! The one timing helper, shared by the benchmarks ([`crate::lab::bench`]) and the
//! autotuner ([`crate::tune`]), so that "how fast is this version" means the
//! same thing in the table a user reads and in the choice the tuner keeps.
//!
//! One run of `run(reps)` returns the seconds `reps` repetitions took (GPU
//! timestamps or the wall clock: the caller's timer). A first run of one
//! repetition sizes the rest: short kernels are repeated until a run lasts
//! about [`Plan::target_run_s`], at most [`Plan::max_reps`], so the timer's
//! resolution and a pass's fixed cost do not decide. Then `warmup − 1` more
//! untimed runs, then [`Plan::runs`] timed ones; the figure is the median
//! of (run time / repetitions).

use crate::error::Result;
use serde::Serialize;

/// How many runs, and how long each.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Untimed runs, the sizing run included (at least 1).
    pub warmup: usize,
    /// Timed runs (at least 1); the median is reported.
    pub runs: usize,
    /// Target length of one timed run, in seconds.
    pub target_run_s: f64,
    /// Most repetitions in one run.
    pub max_reps: usize,
}

/// One timing: the median and spread of per-repetition times.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// Median seconds per repetition (one product, one update, one step).
    pub seconds: f64,
    /// Fastest and slowest run, per repetition.
    pub min_seconds: f64,
    pub max_seconds: f64,
    /// Timed runs and repetitions per run.
    pub runs: usize,
    pub reps: usize,
    /// "timestamp" (GPU timestamp queries) or "wall".
    pub timer: &'static str,
}

/// Times `run` as the module docs describe.
pub fn measure(
    plan: &Plan,
    timer: &'static str,
    mut run: impl FnMut(usize) -> Result<f64>,
) -> Result<Measurement> {
    let first = run(1)?;
    measure_after(plan, timer, first, run)
}

/// [`measure`] after its sizing run took `first` seconds, for callers that
/// look at that run before deciding to go on (the tuner drops a version
/// whose first run is far slower than the best so far).
pub fn measure_after(
    plan: &Plan,
    timer: &'static str,
    first: f64,
    mut run: impl FnMut(usize) -> Result<f64>,
) -> Result<Measurement> {
    let reps = reps_for(plan, first);
    for _ in 1..plan.warmup {
        run(reps)?;
    }
    // Not `with_capacity(plan.runs)`: a huge --runs must not abort here.
    let mut times = Vec::new();
    for _ in 0..plan.runs.max(1) {
        times.push(run(reps)? / reps as f64);
    }
    Ok(summarise(times, reps, timer))
}

/// [`measure`] with an awaited `run` (a browser cannot block on the GPU).
pub async fn measure_async(
    plan: &Plan,
    timer: &'static str,
    mut run: impl AsyncFnMut(usize) -> Result<f64>,
) -> Result<Measurement> {
    let reps = reps_for(plan, run(1).await?);
    for _ in 1..plan.warmup {
        run(reps).await?;
    }
    let mut times = Vec::new();
    for _ in 0..plan.runs.max(1) {
        times.push(run(reps).await? / reps as f64);
    }
    Ok(summarise(times, reps, timer))
}

/// Repetitions per run, from the sizing run's `first` seconds.
fn reps_for(plan: &Plan, first: f64) -> usize {
    ((plan.target_run_s / first.max(1e-9)).ceil() as usize).clamp(1, plan.max_reps.max(1))
}

/// Median, min and max of per-repetition times (`per_rep` not empty).
fn summarise(mut per_rep: Vec<f64>, reps: usize, timer: &'static str) -> Measurement {
    per_rep.sort_by(f64::total_cmp);
    let n = per_rep.len();
    let median = if n % 2 == 1 {
        per_rep[n / 2]
    } else {
        0.5 * (per_rep[n / 2 - 1] + per_rep[n / 2])
    };
    Measurement {
        seconds: median,
        min_seconds: per_rep[0],
        max_seconds: per_rep[n - 1],
        runs: n,
        reps,
        timer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake clock: each repetition "takes" the next of `costs`.
    #[test]
    fn sizes_the_runs_and_reports_the_median_per_repetition() {
        let plan = Plan {
            warmup: 2,
            runs: 3,
            target_run_s: 0.01,
            max_reps: 100,
        };
        let mut calls = Vec::new();
        let mut timed = [0.004, 0.003, 0.006].into_iter();
        let m = measure(&plan, "wall", |reps| {
            calls.push(reps);
            Ok(match calls.len() {
                1 => 0.001,                               // sizing: 1 ms per repetition
                2 => 1.0,                                 // warm-up, ignored
                _ => timed.next().unwrap() * reps as f64, // per-rep times
            })
        })
        .unwrap();
        assert_eq!(calls, vec![1, 10, 10, 10, 10]);
        assert_eq!(m.reps, 10);
        assert_eq!(m.runs, 3);
        assert!((m.seconds - 0.004).abs() < 1e-12, "{m:?}");

        // The awaited form (the browser's) sizes and reports the same way.
        let mut calls = Vec::new();
        let mut timed = [0.004, 0.003, 0.006].into_iter();
        let m = pollster::block_on(measure_async(&plan, "wall", async |reps| {
            calls.push(reps);
            Ok(match calls.len() {
                1 => 0.001,
                2 => 1.0,
                _ => timed.next().unwrap() * reps as f64,
            })
        }))
        .unwrap();
        assert_eq!(calls, vec![1, 10, 10, 10, 10]);
        assert!((m.seconds - 0.004).abs() < 1e-12, "{m:?}");
        assert!((m.min_seconds - 0.003).abs() < 1e-12);
        assert!((m.max_seconds - 0.006).abs() < 1e-12);
    }

    #[test]
    fn repetitions_are_capped() {
        let plan = Plan {
            warmup: 1,
            runs: 2,
            target_run_s: 1.0,
            max_reps: 4,
        };
        let m = measure_after(&plan, "wall", 0.0, |reps| Ok(reps as f64)).unwrap();
        assert_eq!(m.reps, 4);
        assert_eq!(m.seconds, 1.0);
    }
}
