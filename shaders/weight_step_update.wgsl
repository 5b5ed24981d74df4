// The weight tiles with the optimizer's update (issue 23's D3): appended to
// weight_step.wgsl, then shared/optim_rules.wgsl. Each thread stores a
// gradient element and at once updates that parameter and its state with
// the rule's formula, so the step needs no update dispatch of its own.
//
// Why it is safe: every element of [dW | db] is written by exactly one
// thread of the grid (the tiles partition every layer's outputs), and the
// launcher checks that the layers' gradients cover the optimizer's
// parameters exactly; nothing else in this dispatch reads the parameters
// (the row block that reads them is the dispatch before). The formula is
// the same text as optim.wgsl's, reading the gradient this thread has just
// stored, the same step scalars (the host-planned slot of this step) and
// the same hyperparameters: the same bits as the separate update.

// Which rule (the launcher sets it from the optimizer's config) and its
// variants, as in optim.wgsl.
override RULE: u32 = 0u; // 0 sgd, 1 adagrad, 2 rmsprop, 3 adam
override MOMENTUM: bool = false;
override NESTEROV: bool = false;
override CENTERED: bool = false;
override KERAS: bool = false;
override AMSGRAD: bool = false;
override DECOUPLED: bool = false;

@group(0) @binding(8) var<uniform> h: Hyper;
// Read only; read_write to match the optimizer's slot layout.
@group(0) @binding(9) var<storage, read_write> st: StepScalars;
@group(0) @binding(10) var<storage, read_write> params: array<f32>;
@group(0) @binding(11) var<storage, read_write> s1: array<f32>;
@group(0) @binding(12) var<storage, read_write> s2: array<f32>;
@group(0) @binding(13) var<storage, read_write> s3: array<f32>;

fn store_grad(k: u32, v: f32) {
    grads[k] = v;
    let i = k - h.grad_offset;
    if (RULE == 0u) {
        sgd_at(i);
    } else if (RULE == 1u) {
        adagrad_at(i);
    } else if (RULE == 2u) {
        rmsprop_at(i);
    } else {
        adam_at(i);
    }
}
