// One dense layer's backward in one dispatch: the two products that read the
// layer's output gradient dZ (rows × outs), side by side.
//
//   job 0   [dW | db] = dZᵀ · [H | 1]        weight and bias gradients
//   job 1   dZ_below  = (dZ · W) ⊙ act'(H)   the layer below's dZ
//
// H = act(Z_below) (rows × ins) is what the layer read in the forward pass: job
// 0's B operand and job 1's epilogue; W is outs × ins (nn.Linear). The two
// jobs are independent, so they need no barrier between them: the workgroups
// of one dispatch are split between them (job 0 first), which halves the
// backward's dispatches and lets a large GPU run both at once.
//
// Each job is matmul.wgsl's v2 (4×4 outputs per thread from registers,
// accumulating over k in increasing order) with the fused epilogue of the same
// name there: job 0 is TN with ONES_COLUMN (db = Σ_rows dZ, added in row order),
// job 1 is NN with ACTIVATION_GRAD. Same arithmetic, same bits as those two
// products (tests/fused.rs checks both against the CPU twin,
// src/cpu/layer_backward.rs, and against matmul.wgsl).

struct Params {
    rows: u32,
    outs: u32,
    ins: u32,
    groups0_x: u32,  // job 0's workgroups across its ins + 1 columns
    groups0: u32,    // job 0's workgroups in all; job 1's follow
    groups1_x: u32,  // job 1's workgroups across its ins columns
    dz_offset: u32,
    h_offset: u32,
    w_offset: u32,
    dw_offset: u32,  // in `grads`
    db_offset: u32,  // in `grads`
    dzb_offset: u32, // in `dz_below`
}

override ACTIVATION: u32 = 0u; // the layer below's: 0 identity, 1 sigmoid, 2 ReLU
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> dz_below: array<f32>;

// activation_grad(g, y) is appended from shaders/shared/activation_grad.wgsl.

const OFFS: vec4<u32> = vec4<u32>(0u, 1u, 2u, 3u);

// job 0: C (outs × (ins + 1)) = op(A)·op(B), op(A)[r, k] = dZ[k, r],
// op(B)[k, c] = H[k, c] for c < ins and 1 at c = ins.
fn weight_grad(row0: u32, col0: u32) {
    let n = p.ins + 1u;
    if (row0 >= p.outs || col0 >= n) {
        return;
    }
    let rows = min(vec4<u32>(row0) + OFFS, vec4<u32>(p.outs - 1u));
    let cols = min(vec4<u32>(col0) + OFFS, vec4<u32>(n - 1u));
    let ones = cols == vec4<u32>(p.ins);
    let a_base = p.dz_offset + rows;
    let b_base = p.h_offset + min(cols, vec4<u32>(p.ins - 1u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.rows; kk = kk + 1u) {
        let ai = a_base + kk * p.outs;
        let bi = b_base + kk * p.ins;
        let av = vec4<f32>(dz[ai.x], dz[ai.y], dz[ai.z], dz[ai.w]);
        var bv = vec4<f32>(h[bi.x], h[bi.y], h[bi.z], h[bi.w]);
        bv = select(bv, vec4<f32>(1.0), ones);
        acc0 = acc0 + av.x * bv;
        acc1 = acc1 + av.y * bv;
        acc2 = acc2 + av.z * bv;
        acc3 = acc3 + av.w * bv;
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.outs) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                let col = col0 + j;
                if (col < p.ins) {
                    grads[p.dw_offset + row * p.ins + col] = accs[i][j];
                } else if (col == p.ins) {
                    grads[p.db_offset + row] = accs[i][j];
                }
            }
        }
    }
}

// job 1: C (rows × ins) = (dZ·W) ⊙ act'(H).
fn input_grad(row0: u32, col0: u32) {
    if (row0 >= p.rows || col0 >= p.ins) {
        return;
    }
    let rows = min(vec4<u32>(row0) + OFFS, vec4<u32>(p.rows - 1u));
    let cols = min(vec4<u32>(col0) + OFFS, vec4<u32>(p.ins - 1u));
    let a_base = p.dz_offset + rows * p.outs;
    let b_base = p.w_offset + cols;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.outs; kk = kk + 1u) {
        let ai = a_base + vec4<u32>(kk);
        let bi = b_base + kk * p.ins;
        let av = vec4<f32>(dz[ai.x], dz[ai.y], dz[ai.z], dz[ai.w]);
        let bv = vec4<f32>(w[bi.x], w[bi.y], w[bi.z], w[bi.w]);
        acc0 = acc0 + av.x * bv;
        acc1 = acc1 + av.y * bv;
        acc2 = acc2 + av.z * bv;
        acc3 = acc3 + av.w * bv;
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.rows) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                let col = col0 + j;
                if (col < p.ins) {
                    let at = row * p.ins + col;
                    dz_below[p.dzb_offset + at] = activation_grad(accs[i][j], h[p.h_offset + at]);
                }
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn layer_backward(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // The launcher folds more than 65,535 workgroups into 2-D.
    let g = wid.y * groups.x + wid.x;
    if (g < p.groups0) {
        let gx = g % p.groups0_x;
        let gy = g / p.groups0_x;
        weight_grad((gy * WG_Y + lid.y) * 4u, (gx * WG_X + lid.x) * 4u);
    } else {
        let g1 = g - p.groups0;
        let gx = g1 % p.groups1_x;
        let gy = g1 / p.groups1_x;
        input_grad((gy * WG_Y + lid.y) * 4u, (gx * WG_X + lid.x) * 4u);
    }
}
