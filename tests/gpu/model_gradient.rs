//! The GPU runner's gradient of every model's training program against the
//! f64 reference (see `common::model_gradient`).

use crate::common::gpu;
use crate::common::model_gradient::{assert_rejects_bad_batches, check_all};
use wgpu_train::train::{StepProgram, gradient_gpu};

#[test]
fn gpu_runner_gradients_match_the_f64_reference() {
    check_all("gpu", |m, x, y, p| {
        gradient_gpu(gpu(), m, false, x.view(), y, p).unwrap()
    });
}

#[test]
fn gpu_runner_fused_gradients_match_the_f64_reference() {
    check_all("gpu fused", |m, x, y, p| {
        gradient_gpu(gpu(), m, true, x.view(), y, p).unwrap()
    });
}

#[test]
fn gpu_runner_row_step_gradients_match_the_f64_reference() {
    check_all("gpu rows", |m, x, y, p| {
        gradient_gpu(gpu(), m, StepProgram::Rows, x.view(), y, p).unwrap()
    });
}

#[test]
fn gpu_gradient_rejects_bad_batches() {
    assert_rejects_bad_batches(|m, x, y, p| gradient_gpu(gpu(), m, false, x, y, p));
}
