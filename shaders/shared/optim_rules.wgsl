// The update rules' per-element formulas, appended to shaders/optim.wgsl
// (one model) and shaders/sweep_optim.wgsl (K models in one dispatch). Each
// reads the hyperparameters `h: Hyper` and the step scalars
// `st: StepScalars` (declared by the including file: a uniform and a slot in
// optim.wgsl, private copies of model z's in sweep_optim.wgsl) and updates
// element i of the parameters (at h.param_offset) and of the rule's state
// buffers s1, s2, s3. Formulas and their torch semantics: optim.wgsl.

// The rule's variant (specialisation constants: one pipeline per variant
// present; the launchers pass only those an entry point uses).
override MOMENTUM: bool = false; // sgd, rmsprop: keep a momentum buffer
override NESTEROV: bool = false; // sgd
override CENTERED: bool = false; // rmsprop
override KERAS: bool = false;    // rmsprop, adam: Keras 3 eps placement
override AMSGRAD: bool = false;  // adam
override DECOUPLED: bool = false;// adam: AdamW's decoupled weight decay

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
