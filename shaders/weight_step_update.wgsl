// The weight tiles with the optimizer's update (issue 23's D3): appended to
// weight_step.wgsl, then shared/optim_rules.wgsl. Once a workgroup has
// stored its tile of the gradients, it updates those parameters and their
// state with the rule's formula, so the step needs no update dispatch of
// its own.
//
// Why it is safe: every element of [dW | db] is written by exactly one
// workgroup of the grid (the tiles partition every layer's outputs), and the
// launcher checks that the layers' gradients cover the optimizer's
// parameters exactly; nothing else in this dispatch reads the parameters
// (the row block that reads them is the dispatch before). The formula is
// the same text as optim.wgsl's, reading the gradient this workgroup has
// just stored, the same step scalars (the host-planned slot of this step) and
// the same hyperparameters: the same bits as the separate update.

// Which rule (the launcher sets it from the optimizer's config); its
// variants are shared/optim_rules.wgsl's constants.
override RULE: u32 = 0u; // 0 sgd, 1 adagrad, 2 rmsprop, 3 adam

@group(0) @binding(8) var<uniform> h: Hyper;
// Read only; read_write to match the optimizer's slot layout.
@group(0) @binding(9) var<storage, read_write> st: StepScalars;
@group(0) @binding(10) var<storage, read_write> params: array<f32>;
@group(0) @binding(11) var<storage, read_write> s1: array<f32>;
@group(0) @binding(12) var<storage, read_write> s2: array<f32>;
@group(0) @binding(13) var<storage, read_write> s3: array<f32>;

// The tile's elements, 32 a row, are updated by the workgroup's 64 threads
// in turn, neighbouring threads on neighbouring elements (as the separate
// update's grid does): each thread's own 4×4 block would touch memory four
// elements apart in every instruction. The storage barrier makes every
// thread's gradient stores visible to the workgroup first.
fn after_tile(a: vec4<u32>, b: vec4<u32>, r0: u32, c0: u32, lid: u32) {
    storageBarrier();
    let ins = a.x;
    let outs = a.y;
    for (var e = lid; e < TILE * TILE; e = e + WG_X * WG_Y) {
        let row = r0 + e / TILE;
        let col = c0 + e % TILE;
        if (row < outs && col <= ins) {
            var k = b.z + row; // the bias column
            if (col < ins) {
                k = b.y + row * ins + col;
            }
            update_at(k - h.grad_offset);
        }
    }
}

fn update_at(i: u32) {
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
