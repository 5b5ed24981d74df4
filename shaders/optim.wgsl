// Fused optimizer updates over one flat f32 parameter buffer.
//
// v1: one optimizer step is two dispatches:
//   advance   one thread: t ← t + 1, then the per-update scalars (scheduled
//             lr, βᵗ, bias corrections, Adagrad's decayed lr, AdamW's decay
//             factor) into the step buffer `st`.
//   <rule>    one thread per parameter: reads `st`, updates the parameter
//             and its state.
// Splitting them is what makes every workgroup of an update see the same t:
// within one dispatch there is no ordering between workgroups, but between
// two dispatches there is. Nothing changes per step on the host, so any
// number of steps can be recorded into one command encoder.
//
// v2 (the fused training step): the same <rule> kernels, alone. `st` is bound
// at a dynamic offset into a buffer of per-step slots that the host fills once
// per epoch with the scalars of each update (computed by the CPU twin's own
// StepScalars::advance, src/optim.rs), so step s reads slot s and nothing on
// the GPU needs to advance: one dispatch per step.
//
// The per-element formulas (`sgd_at`, …) live in shaders/shared/
// optim_rules.wgsl, appended here and to sweep_optim.wgsl (K models' updates
// in one dispatch): one text of each formula for both. They read the
// globals `h` and `st`, which each including file declares.
//
// Semantics and defaults are torch.optim's (2.x); `p` parameter, `g`
// gradient, `lr` the scheduled rate of update t, `wd` weight decay. Each
// formula is written beside its kernel; src/optim.rs documents them all and
// src/cpu/optim.rs is the CPU twin (same formulas, same order, f32).
//
// Each update kernel is a grid-stride loop: thread k of the grid's h.threads
// updates elements k, k + h.threads, k + 2·h.threads, … (neighbouring threads
// touch neighbouring elements, as GPUs like). The launcher sizes the grid for
// about 4 elements per thread: on lavapipe that ran ~2× faster than one
// element per thread (fewer workgroups to schedule); 1 per thread is the
// same code with a bigger grid. Past 65,535 workgroups the grid folds into
// 2-D: thread k = gid.y · h.row + gid.x, h.row being threads per grid row.

// Hyper (the uniform block), StepScalars and the rules' variant constants
// (MOMENTUM, KERAS, …) are appended from shaders/shared/optim_rules.wgsl, as
// the formulas are.

// Specialisation constants (the launcher passes only those an entry uses).
override SCHEDULE: u32 = 0u;  // advance: 0 constant, 1 step decay, 2 cosine

@group(0) @binding(0) var<uniform> h: Hyper;
@group(0) @binding(1) var<storage, read_write> st: StepScalars;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
// Per-parameter state; which is which depends on the rule (see each kernel).
@group(0) @binding(4) var<storage, read_write> s1: array<f32>;
@group(0) @binding(5) var<storage, read_write> s2: array<f32>;
@group(0) @binding(6) var<storage, read_write> s3: array<f32>;

const PI: f32 = 3.14159265358979323846;

// ----------------------------------------------------------------- advance
// One thread. The running products βᵗ ← βᵗ·β and γᵏ ← γᵏ·γ are exact twins
// of the CPU's (no pow), and start at 1 (written by the launcher).
@compute @workgroup_size(1)
fn advance() {
    var s = st;
    s.t = s.t + 1u;
    let t = s.t;
    // Schedules.
    if (SCHEDULE == 1u && t > 1u && (t - 1u) % h.step_size == 0u) {
        s.decay_factor = s.decay_factor * h.gamma;
    }
    if (SCHEDULE == 1u) {
        // lr·γ^⌊(t−1)/step_size⌋
        s.lr = h.lr * s.decay_factor;
    } else if (SCHEDULE == 2u) {
        // eta_min + (lr − eta_min)·(1 + cos(π·min(t−1, t_max)/t_max))/2
        let k = f32(min(t - 1u, h.t_max));
        let c = cos(PI * k / f32(h.t_max));
        s.lr = h.eta_min + (h.lr - h.eta_min) * (0.5 * (1.0 + c));
    } else {
        s.lr = h.lr;
    }
    // Rule scalars (β = 0 for the rules other than Adam: harmless).
    s.beta1_pow = s.beta1_pow * h.beta1;
    s.beta2_pow = s.beta2_pow * h.beta2;
    let bc1 = 1.0 - s.beta1_pow;
    let bc2 = 1.0 - s.beta2_pow;
    s.adagrad_lr = s.lr / (1.0 + f32(t - 1u) * h.lr_decay);
    s.step_size = s.lr / bc1;
    s.bias_correction2_sqrt = sqrt(bc2);
    s.keras_alpha = s.lr * sqrt(bc2) / bc1;
    s.decay = 1.0 - s.lr * h.weight_decay;
    st = s;
}

fn first(gid: vec3<u32>) -> u32 {
    return gid.y * h.row + gid.x;
}

// --------------------------------------------------------------------- SGD
// sgd_at(i), the formula, is appended from shaders/shared/optim_rules.wgsl.

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        sgd_at(i);
    }
}

// ----------------------------------------------------------------- Adagrad
// adagrad_at(i), the formula, is appended from shaders/shared/optim_rules.wgsl.

@compute @workgroup_size(256)
fn adagrad(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        adagrad_at(i);
    }
}

// ----------------------------------------------------------------- RMSprop
// rmsprop_at(i), the formula, is appended from shaders/shared/optim_rules.wgsl.

@compute @workgroup_size(256)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        rmsprop_at(i);
    }
}

// -------------------------------------------------------------------- Adam
// adam_at(i), the formula, is appended from shaders/shared/optim_rules.wgsl.

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        adam_at(i);
    }
}
