//! The CPU runner's gradient of every model's training program against the
//! f64 reference (see `common::model_gradient`).

use crate::common::model_gradient::{assert_rejects_bad_batches, check_all};
use wgpu_train::train::{StepProgram, gradient_cpu};

#[test]
fn cpu_runner_gradients_match_the_f64_reference() {
    check_all("cpu", |m, x, y, p| {
        gradient_cpu(m, false, x.view(), y, p).unwrap()
    });
}

#[test]
fn cpu_runner_fused_gradients_match_the_f64_reference() {
    check_all("cpu fused", |m, x, y, p| {
        gradient_cpu(m, true, x.view(), y, p).unwrap()
    });
}

#[test]
fn cpu_runner_row_step_gradients_match_the_f64_reference() {
    check_all("cpu rows", |m, x, y, p| {
        gradient_cpu(m, StepProgram::Rows, x.view(), y, p).unwrap()
    });
}

#[test]
fn cpu_gradient_rejects_bad_batches() {
    assert_rejects_bad_batches(|m, x, y, p| gradient_cpu(m, false, x, y, p));
}
