// Deterministic reductions: every sum runs in an order fixed by the shape
// alone (a sequential pass per thread over a fixed stride of the input, then,
// in the tree versions, a binary tree in workgroup memory), never by
// scheduling, and without atomics. The same inputs therefore give the same
// bits on every run of the same version.
//
//   column_sum        sums[c] = Σ_r x[r, c] over an R×C matrix: the bias
//                     gradient db = Σ_rows dZ. With WRITE_DZ it first turns
//                     x = dH into dZ = dH ⊙ act'(h) (ACTIVATION), writes dZ,
//                     and sums that: the activation backward and the bias
//                     gradient in one pass, instead of writing dZ in one
//                     kernel and reading it all back in the next. (The
//                     fused training step goes further: act'(h) in the
//                     epilogue of the product that makes dH, and db from a
//                     ones column in the weight-gradient product; see
//                     matmul.wgsl and layer_backward.wgsl. This pair stays
//                     the unfused reference.)
//                     Two versions, column_sum_serial (v1) and column_sum (v2
//                     tree), validated against src/cpu/reduce.rs; a third,
//                     column_sum_subgroup (v3), is in reduce_subgroup.wgsl, a
//                     module of its own (this file appended to it) built only
//                     on devices with subgroups.
//   loss_correct_sum  the batch's total loss (Σ of per-row losses in x) and
//                     correct count (Σ of per-row flags), from
//                     softmax_xent.wgsl's outputs. ACCUMULATE adds them to
//                     the totals already there, so an epoch's sums can stay on
//                     the GPU and be read back once.
//
// Bindings an entry point does not use are filled with placeholders by the
// launcher.
//
// A sweep (src/train/sweep/) runs K models in one dispatch: workgroup z is
// model z. Its x, h and dz follow model z − 1's (R·C elements on), its sums
// are `sums_batch_stride` on (the bias gradients in a [K, P] gradient
// buffer); loss_correct_sum's per-row inputs are R on and its totals 1 on.
// Each model's sums add exactly what an unbatched dispatch adds.
var<private> zb: u32;

struct Params {
    rows: u32,
    cols: u32,
    x_offset: u32,
    h_offset: u32,
    dz_offset: u32,
    sums_offset: u32,
    flags_offset: u32,
    count_offset: u32,
    sums_batch_stride: u32, // column sums of a sweep: model z's sums are this far on
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override ACTIVATION: u32 = 0u; // column_sum: 0 none, 1 sigmoid, 2 ReLU
override WRITE_DZ: bool = false; // column_sum: write x ⊙ act'(h) to dz
override ACCUMULATE: bool = false; // loss_correct_sum

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;
@group(0) @binding(5) var<storage, read> flags: array<u32>;
@group(0) @binding(6) var<storage, read_write> count: array<u32>;

// activation_grad(g, y) is appended from shaders/shared/activation_grad.wgsl.

// ---------------------------------------------------------------- column_sum
// Element i = r·C + c of x, as the column sums add it: with ACTIVATION, dH is
// first turned into dZ = dH ⊙ act'(h); with WRITE_DZ, that is stored.
fn column_term(i: u32) -> f32 {
    let z = zb * p.rows * p.cols;
    var g = x[p.x_offset + z + i];
    if (ACTIVATION != 0u) {
        g = activation_grad(g, h[p.h_offset + z + i]);
    }
    if (WRITE_DZ) {
        dz[p.dz_offset + z + i] = g;
    }
    return g;
}

// v1 column_sum_serial: one thread per column adds rows 0, 1, 2, … in order.
// No workgroup memory, no barriers: the reference, and the fastest on
// lavapipe, where a barrier costs more than the whole sum (BENCHMARKS.md).
// Neighbouring threads read neighbouring columns of one row.
@compute @workgroup_size(64, 1, 1)
fn column_sum_serial(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    zb = wid.z;
    let col = (wid.y * groups.x + wid.x) * 64u + lid;
    if (col >= p.cols) {
        return;
    }
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r = r + 1u) {
        acc = acc + column_term(r * p.cols + col);
    }
    sums[p.sums_offset + zb * p.sums_batch_stride + col] = acc;
}

// v2 column_sum: a workgroup owns 16 adjacent columns (x, so that
// neighbouring threads read neighbouring addresses) and splits the rows among
// 16 lanes (y): lane l sums rows l, l + 16, l + 32, … in order, then the
// lanes are added as a tree. Sixteen times the threads of v1, for GPUs that
// need them (C = 10 is 10 threads in v1), and a shallower sum for long columns.
const TILE_COLS: u32 = 16u;
const LANES: u32 = 16u;

var<workgroup> partial: array<f32, 256>; // [lane][column]

@compute @workgroup_size(16, 16, 1)
fn column_sum(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    zb = wid.z;
    let col = (wid.y * groups.x + wid.x) * TILE_COLS + lid.x;
    let lane = lid.y;
    // Threads past the last column still take part (adding 0): no thread may
    // leave before the barriers.
    var acc = 0.0;
    if (col < p.cols) {
        for (var r = lane; r < p.rows; r = r + LANES) {
            acc = acc + column_term(r * p.cols + col);
        }
    }
    partial[lane * TILE_COLS + lid.x] = acc;
    workgroupBarrier();
    for (var half = LANES / 2u; half > 0u; half = half / 2u) {
        if (lane < half) {
            partial[lane * TILE_COLS + lid.x] = partial[lane * TILE_COLS + lid.x]
                + partial[(lane + half) * TILE_COLS + lid.x];
        }
        workgroupBarrier();
    }
    if (lane == 0u && col < p.cols) {
        sums[p.sums_offset + zb * p.sums_batch_stride + col] = partial[lid.x];
    }
}

// ---------------------------------------------------------- loss_correct_sum
// One workgroup for the whole batch: thread t sums rows t, t + 256, … in
// order, then a tree. Even 60,000 rows are only 235 adds per thread, so one
// workgroup is enough and no second pass is needed.
const SUM_WG: u32 = 256u;

var<workgroup> partial_count: array<u32, 256>;

@compute @workgroup_size(256, 1, 1)
fn loss_correct_sum(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let z = wid.z;
    var total = 0.0;
    var n = 0u;
    for (var r = lid; r < p.rows; r = r + SUM_WG) {
        total = total + x[p.x_offset + z * p.rows + r];
        n = n + flags[p.flags_offset + z * p.rows + r];
    }
    partial[lid] = total;
    partial_count[lid] = n;
    workgroupBarrier();
    for (var half = SUM_WG / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            partial[lid] = partial[lid] + partial[lid + half];
            partial_count[lid] = partial_count[lid] + partial_count[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var base_total = 0.0;
        var base_count = 0u;
        if (ACCUMULATE) {
            base_total = sums[p.sums_offset + z];
            base_count = count[p.count_offset + z];
        }
        sums[p.sums_offset + z] = base_total + partial[0];
        count[p.count_offset + z] = base_count + partial_count[0];
    }
}
