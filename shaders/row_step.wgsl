// The row block of the training step (D2 of issue 23): everything in one
// step of an MLP that is local to a batch row, in one dispatch.
//
// A workgroup owns R = 4 consecutive rows of the batch. From h1 (the first
// layer's output, which the gather's product wrote) it runs, for the layers
// 2..L of the block (weights W_i, out×in as nn.Linear, biases b_i):
//
//   forward   h_i = act(h_{i−1}·W_iᵀ + b_i), the last layer without act: logits
//   loss      softmax cross-entropy per row (softmax_xent.wgsl's v1
//             arithmetic): loss, correct flag, dz_L = (softmax − onehot)/N
//   backward  dz_{i−1} = (dz_i·W_i) ⊙ act'(h_{i−1}), down to dz_1
//
// keeping every row's activations and deltas in workgroup memory, and
// writing to the arena the tensors the weight gradients need: the hidden
// h_2..h_{L−1} and every dz_1..dz_L. Only the weight gradients reduce over
// the batch; they are the next dispatch's.
//
// Each product out[r][j] = Σ_k x[r][k]·m(j, k) is shaped for latency: task
// (cb, c) of the workgroup's threads sums a 4-row × 4-column block over the
// k ≡ c (mod s) only (s = `splits`, a power of two fixed by the shape on the
// host, so that nearly every thread has work: s = 16 for the 10 logits),
// into partials part[c][r][j]; the s partials of each output are then added
// by a fixed tree (c ← c + c + s/2, …), and the epilogue adds the bias and the
// activation. Every sum's order is fixed by the shape, and the CPU twin
// (src/cpu/row_step.rs) adds in the same order.
//
// Rows past the batch's end load the last row (so every value in workgroup
// memory is a real one) and store nothing.

const MAX_LAYERS: u32 = 6u;
const WG: u32 = 64u;
const R: u32 = 4u;
// 4,032 floats of workgroup memory: 16,128 bytes, under the 16,352 of
// wgpu's downlevel limits. The launcher checks that the block's rows fit.
const SM: u32 = 3008u;
const PART: u32 = 1024u;

struct Layer {
    ins: u32,
    outs: u32,
    w_offset: u32,   // in `params`
    b_offset: u32,   // in `params`
    h_out: u32,      // in `arena`: this layer's output rows, if hidden
    dz_out: u32,     // in `arena`: this layer's dz rows
    act_sm: u32,     // in `sm`: this layer's output, R rows
    dz_sm: u32,      // in `sm`: this layer's dz, R rows
    fwd_splits: u32, // s of the forward product
    bwd_splits: u32, // s of the product into the layer below
    _pad0: u32,
    _pad1: u32,
}

struct Params {
    rows: u32,
    layers: u32,     // in the block: the MLP's layers after the first
    h_offset: u32,   // in `arena`: h1, `h_width` wide
    h_width: u32,
    dz0_offset: u32, // in `arena`: dz1, `h_width` wide
    labels_offset: u32,
    loss_offset: u32,
    correct_offset: u32,
    layer: array<vec4<u32>, 18>, // MAX_LAYERS Layers, 3 vec4s each
}

fn layer_of(i: u32) -> Layer {
    let a = p.layer[3u * i];
    let b = p.layer[3u * i + 1u];
    let c = p.layer[3u * i + 2u];
    return Layer(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w, c.x, c.y, c.z, c.w);
}

override ACTIVATION: u32 = 1u; // the hidden layers': 1 sigmoid, 2 ReLU

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> arena: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<u32>;

var<workgroup> sm: array<f32, SM>;
var<workgroup> part: array<f32, PART>;

// activation_grad(g, y) is appended from shaders/shared/activation_grad.wgsl.

const OFFS: vec4<u32> = vec4<u32>(0u, 1u, 2u, 3u);

var<private> row0: u32;

fn valid(r: u32) -> bool {
    return row0 + r < p.rows;
}

// matmul.wgsl's sigmoid: both branches exact for large |v|.
fn activate(v: f32) -> f32 {
    if (ACTIVATION == 2u) {
        return select(0.0, v, v > 0.0);
    }
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// part[(c·R + r)·n + j] = Σ_{k ≡ c (mod s)} x[r][k]·m(j, k), k increasing,
// with x[r][k] = sm[x_base + r·k_len + k] and m(j, k) = params[w_base +
// j·w_j + k·w_k]. Then the tree, which leaves the sums in part[r·n + j].
fn product(lid: u32, x_base: u32, k_len: u32, n: u32, w_base: u32, w_j: u32, w_k: u32, s: u32) {
    let nb = (n + 3u) / 4u;
    for (var u = lid; u < nb * s; u = u + WG) {
        let c = u % s;
        let col0 = (u / s) * 4u;
        let cols = min(vec4<u32>(col0) + OFFS, vec4<u32>(n - 1u));
        let wb = w_base + cols * w_j;
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        for (var kk = c; kk < k_len; kk = kk + s) {
            let wi = wb + vec4<u32>(kk * w_k);
            let bv = vec4<f32>(params[wi.x], params[wi.y], params[wi.z], params[wi.w]);
            acc0 = acc0 + sm[x_base + kk] * bv;
            acc1 = acc1 + sm[x_base + k_len + kk] * bv;
            acc2 = acc2 + sm[x_base + 2u * k_len + kk] * bv;
            acc3 = acc3 + sm[x_base + 3u * k_len + kk] * bv;
        }
        let base = c * R * n + col0;
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (col0 + j < n) {
                part[base + j] = acc0[j];
                part[base + n + j] = acc1[j];
                part[base + 2u * n + j] = acc2[j];
                part[base + 3u * n + j] = acc3[j];
            }
        }
    }
    workgroupBarrier();
    for (var half = s / 2u; half > 0u; half = half / 2u) {
        let m = half * R * n;
        for (var e = lid; e < m; e = e + WG) {
            part[e] = part[e] + part[e + m];
        }
        workgroupBarrier();
    }
}

// softmax_xent.wgsl's v1 on row r of the logits in workgroup memory.
fn xent(r: u32, top: Layer) {
    let c = top.outs;
    let base = top.act_sm + r * c;
    var m = sm[base];
    var argmax = 0u;
    for (var j = 1u; j < c; j = j + 1u) {
        let x = sm[base + j];
        if (x > m) {
            m = x;
            argmax = j;
        }
    }
    var s = 0.0;
    for (var j = 0u; j < c; j = j + 1u) {
        s = s + exp(sm[base + j] - m);
    }
    let row = row0 + r;
    let stored = labels[p.labels_offset + row];
    let label = select(0u, stored, stored < c);
    loss[p.loss_offset + row] = log(s) - (sm[base + label] - m);
    correct[p.correct_offset + row] = select(0u, 1u, argmax == label);
    for (var j = 0u; j < c; j = j + 1u) {
        let onehot = select(0.0, 1.0, j == label);
        let g = (exp(sm[base + j] - m) / s - onehot) / f32(p.rows);
        sm[top.dz_sm + r * c + j] = g;
        arena[top.dz_out + row * c + j] = g;
    }
}

@compute @workgroup_size(64, 1, 1)
fn row_step(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // Uniform across the workgroup: every thread that stays reaches every
    // barrier below.
    // A `let` from the builtins, not the private `row0`: WGSL's uniformity
    // analysis (Tint's, in browsers) treats a private variable as
    // non-uniform, so an early return on it before a barrier is refused.
    let block_row = (wid.y * groups.x + wid.x) * R;
    row0 = block_row;
    if (block_row >= p.rows) {
        return;
    }
    // Loops over (row, column) pairs run as one loop per row: no integer
    // division per element (lavapipe scalarises vector division).
    let w0 = p.h_width;
    for (var r = 0u; r < R; r = r + 1u) {
        let row = min(row0 + r, p.rows - 1u);
        for (var k = lid; k < w0; k = k + WG) {
            sm[r * w0 + k] = arena[p.h_offset + row * w0 + k];
        }
    }
    workgroupBarrier();

    var x_base = 0u;
    var k_len = w0;
    for (var i = 0u; i < p.layers; i = i + 1u) {
        let l = layer_of(i);
        let hidden = i + 1u < p.layers;
        product(lid, x_base, k_len, l.outs, l.w_offset, l.ins, 1u, l.fwd_splits);
        for (var r = 0u; r < R; r = r + 1u) {
            for (var j = lid; j < l.outs; j = j + WG) {
                let e = r * l.outs + j;
                var v = part[e] + params[l.b_offset + j];
                if (hidden) {
                    v = activate(v);
                    if (valid(r)) {
                        arena[l.h_out + (row0 + r) * l.outs + j] = v;
                    }
                }
                sm[l.act_sm + e] = v;
            }
        }
        workgroupBarrier();
        x_base = l.act_sm;
        k_len = l.outs;
    }

    let top = layer_of(p.layers - 1u);
    if (lid < R && valid(lid)) {
        xent(lid, top);
    }
    workgroupBarrier();

    for (var i = p.layers; i > 0u; i = i - 1u) {
        let l = layer_of(i - 1u);
        // Into the layer below: n = its width (l.ins), summed over l.outs.
        product(lid, l.dz_sm, l.outs, l.ins, l.w_offset, 1u, l.ins, l.bwd_splits);
        let first = i == 1u;
        let below = layer_of(max(i, 2u) - 2u);
        let h_sm = select(below.act_sm, 0u, first);
        let dz_out = select(below.dz_out, p.dz0_offset, first);
        for (var r = 0u; r < R; r = r + 1u) {
            for (var k = lid; k < l.ins; k = k + WG) {
                let e = r * l.ins + k;
                let v = activation_grad(part[e], sm[h_sm + e]);
                if (!first) {
                    sm[below.dz_sm + e] = v;
                }
                if (valid(r)) {
                    arena[dz_out + (row0 + r) * l.ins + k] = v;
                }
            }
        }
        workgroupBarrier();
    }
}
