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

struct Hyper {
    n: u32,             // parameters to update
    row: u32,           // threads per grid row
    param_offset: u32,  // first element of the parameters in `params`
    grad_offset: u32,   // first element of the gradients in `grads`
    lr: f32,            // base learning rate × plateau reductions
    weight_decay: f32,
    momentum: f32,      // SGD / RMSprop μ
    dampening: f32,     // SGD τ
    beta1: f32,         // Adam β₁
    beta2: f32,         // Adam β₂
    eps: f32,
    lr_decay: f32,      // Adagrad
    step_size: u32,     // step-decay schedule: updates per decay
    gamma: f32,         // step-decay schedule: factor
    t_max: u32,         // cosine schedule: updates to reach eta_min
    eta_min: f32,       // cosine schedule: final rate
    alpha: f32,         // RMSprop α
    threads: u32,       // threads in the grid: the stride of each thread's loop
    _pad0: u32,
    _pad1: u32,
}

// The layout of wgpu_train::optim::StepScalars.
struct StepScalars {
    t: u32,                    // update number, 1-based, during update t
    lr: f32,                   // scheduled lr of update t
    decay_factor: f32,         // step decay: γ^⌊(t−1)/step_size⌋ (running product)
    beta1_pow: f32,            // β₁ᵗ (running product)
    beta2_pow: f32,            // β₂ᵗ
    adagrad_lr: f32,           // lr / (1 + (t−1)·lr_decay)
    step_size: f32,            // lr / (1 − β₁ᵗ)
    bias_correction2_sqrt: f32,// √(1 − β₂ᵗ)
    keras_alpha: f32,          // lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)
    decay: f32,                // 1 − lr·wd
    _pad0: u32,
    _pad1: u32,
}

// Specialisation constants (the launcher passes only those an entry uses).
override SCHEDULE: u32 = 0u;  // advance: 0 constant, 1 step decay, 2 cosine
override MOMENTUM: bool = false; // sgd, rmsprop: keep a momentum buffer
override NESTEROV: bool = false; // sgd
override CENTERED: bool = false; // rmsprop
override KERAS: bool = false;    // rmsprop, adam: Keras 3 eps placement
override AMSGRAD: bool = false;  // adam
override DECOUPLED: bool = false;// adam: AdamW's decoupled weight decay

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
// torch.optim.SGD. State s1 = momentum_buffer b (MOMENTUM).
//   g ← g + wd·p
//   MOMENTUM: b ← g at t = 1, else b ← μ·b + (1 − τ)·g
//             NESTEROV: g ← g + μ·b   otherwise: g ← b
//   p ← p − lr·g
fn sgd_at(i: u32) {
    let pi = h.param_offset + i;
    let p = params[pi];
    var g = grads[h.grad_offset + i] + h.weight_decay * p;
    if (MOMENTUM) {
        var b = g;
        if (st.t > 1u) {
            b = h.momentum * s1[i] + (1.0 - h.dampening) * g;
        }
        s1[i] = b;
        if (NESTEROV) {
            g = g + h.momentum * b;
        } else {
            g = b;
        }
    }
    params[pi] = p - st.lr * g;
}

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        sgd_at(i);
    }
}

// ----------------------------------------------------------------- Adagrad
// torch.optim.Adagrad. State s1 = sum s (starts at initial_accumulator_value).
//   g ← g + wd·p
//   clr = lr / (1 + (t − 1)·lr_decay)          (st.adagrad_lr)
//   s ← s + g²
//   p ← p − clr·g / (√s + eps)
fn adagrad_at(i: u32) {
    let pi = h.param_offset + i;
    let p = params[pi];
    let g = grads[h.grad_offset + i] + h.weight_decay * p;
    let s = s1[i] + g * g;
    s1[i] = s;
    params[pi] = p - st.adagrad_lr * (g / (sqrt(s) + h.eps));
}

@compute @workgroup_size(256)
fn adagrad(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        adagrad_at(i);
    }
}

// ----------------------------------------------------------------- RMSprop
// torch.optim.RMSprop. State s1 = square_avg v, s2 = grad_avg ḡ (CENTERED),
// s3 = momentum_buffer b (MOMENTUM).
//   g ← g + wd·p
//   v ← α·v + (1 − α)·g²
//   CENTERED: ḡ ← ḡ + (1 − α)·(g − ḡ);  v' = max(v − ḡ², 0)   else v' = v
//   torch: d = √v' + eps
//          MOMENTUM: b ← μ·b + g/d; p ← p − lr·b      else p ← p − lr·g/d
//   KERAS: d = √(v' + eps)
//          MOMENTUM: b ← μ·b + lr·g/d; p ← p − b      else p ← p − lr·g/d
fn rmsprop_at(i: u32) {
    let pi = h.param_offset + i;
    let p = params[pi];
    let alpha = h.alpha;
    let g = grads[h.grad_offset + i] + h.weight_decay * p;
    let v = alpha * s1[i] + (1.0 - alpha) * (g * g);
    s1[i] = v;
    var vc = v;
    if (CENTERED) {
        let ga = s2[i] + (1.0 - alpha) * (g - s2[i]);
        s2[i] = ga;
        vc = max(v - ga * ga, 0.0);
    }
    var d: f32;
    if (KERAS) {
        d = sqrt(vc + h.eps);
    } else {
        d = sqrt(vc) + h.eps;
    }
    if (MOMENTUM) {
        if (KERAS) {
            let b = h.momentum * s3[i] + st.lr * g / d;
            s3[i] = b;
            params[pi] = p - b;
        } else {
            let b = h.momentum * s3[i] + g / d;
            s3[i] = b;
            params[pi] = p - st.lr * b;
        }
    } else if (KERAS) {
        params[pi] = p - st.lr * g / d;
    } else {
        params[pi] = p - st.lr * (g / d);
    }
}

@compute @workgroup_size(256)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        rmsprop_at(i);
    }
}

// -------------------------------------------------------------------- Adam
// torch.optim.Adam / AdamW. State s1 = exp_avg m, s2 = exp_avg_sq v,
// s3 = max_exp_avg_sq v̂ (AMSGRAD).
//   DECOUPLED (AdamW): p ← p·(1 − lr·wd)       else g ← g + wd·p
//   m ← m + (1 − β₁)·(g − m)                     (torch's lerp)
//   v ← β₂·v + (1 − β₂)·g²
//   AMSGRAD: v̂ ← max(v̂, v) and v̂ replaces v below
//   torch:  p ← p − (lr / (1 − β₁ᵗ))·m / (√v / √(1 − β₂ᵗ) + eps)
//   KERAS:  p ← p − (lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ))·m / (√v + eps)
fn adam_at(i: u32) {
    let pi = h.param_offset + i;
    var p = params[pi];
    var g = grads[h.grad_offset + i];
    if (DECOUPLED) {
        p = p * st.decay;
    } else {
        g = g + h.weight_decay * p;
    }
    let m = s1[i] + (1.0 - h.beta1) * (g - s1[i]);
    s1[i] = m;
    let v = h.beta2 * s2[i] + (1.0 - h.beta2) * (g * g);
    s2[i] = v;
    var vv = v;
    if (AMSGRAD) {
        vv = max(s3[i], v);
        s3[i] = vv;
    }
    if (KERAS) {
        params[pi] = p - st.keras_alpha * (m / (sqrt(vv) + h.eps));
    } else {
        let denom = sqrt(vv) / st.bias_correction2_sqrt + h.eps;
        params[pi] = p - st.step_size * (m / denom);
    }
}

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    for (var i = first(gid); i < h.n; i = i + h.threads) {
        adam_at(i);
    }
}
