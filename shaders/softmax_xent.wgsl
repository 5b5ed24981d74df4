// Fused softmax cross-entropy, forward and backward, for logits N×C (rows are
// examples) and one u32 label per row:
//
//   m        = max_j x_j                      (seeded from x_0, not a literal)
//   s        = Σ_j exp(x_j − m)               (≥ 1: the max contributes exp(0))
//   loss     = ln(s) − (x_label − m)          (finite for logits of ±1e4)
//   correct  = [argmax_j x_j == label]        (ties go to the lowest index)
//   dlogits  = (exp(x_j − m) / s − [j == label]) / N   (gradient of the mean loss)
//
// WRITE_GRAD = false is the forward-only variant for evaluation: it never
// touches dlogits (the launcher binds a placeholder there).
//
// Labels are checked on the CPU before anything is dispatched (GpuLabels). A
// label ≥ C reaching this shader anyway reads logit 0 instead of another row,
// so it cannot read out of bounds; its row's loss is then meaningless.
//
// Three versions, all validated against the CPU twin (src/cpu/softmax_xent.rs):
//   v1 xent_row        one thread per row, three passes over the row in order:
//                      the reference, and the right shape for C = 10.
//   v2 xent_workgroup  one 64-thread workgroup per row; each thread strides
//                      over the row, then max/argmax and the exp-sum are
//                      combined by fixed-order trees in workgroup memory, so
//                      results are the same bits on every run. For C = 1000.
//   v3 xent_totals     v1's rows and the batch's loss and correct totals in
//                      one dispatch (fused with reduce.wgsl's loss_correct_sum,
//                      same order, same bits): one 256-thread workgroup for the
//                      whole batch, which adds the batch to the epoch totals.
// And v4 xent_subgroup, four lanes per row combined by subgroup shuffles, in
// softmax_xent_subgroup.wgsl: a module of its own (this file appended to it),
// built only on devices with subgroups.

struct Params {
    n: u32,
    c: u32,
    logits_offset: u32,
    labels_offset: u32,
    loss_offset: u32,
    correct_offset: u32,
    dlogits_offset: u32,
    total_offset: u32,  // v3: the epoch's loss total
    count_offset: u32,  // v3: the epoch's correct count
    _pad0: u32,
    _pad1: u32,
}

override WRITE_GRAD: bool = true;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> correct: array<u32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss_total: array<f32>;
@group(0) @binding(7) var<storage, read_write> correct_total: array<u32>;

// A sweep (src/train/sweep/) runs K models' batches in one dispatch of v1 or
// v2: workgroup z is model z, whose logits, losses, flags and dlogits follow
// model z − 1's (N·C, N, N and N·C elements on); the labels are shared. Each
// model's rows compute exactly what an unbatched dispatch computes.
var<private> zb: u32;

fn logits_base() -> u32 {
    return p.logits_offset + zb * p.n * p.c;
}

fn dlogits_base() -> u32 {
    return p.dlogits_offset + zb * p.n * p.c;
}

// Dispatches of more than 65,535 workgroups are folded into 2-D by the
// launcher; this recovers the linear workgroup index.
fn group_index(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wid.y * groups.x + wid.x;
}

fn label_of(row: u32) -> u32 {
    let label = labels[p.labels_offset + row];
    return select(0u, label, label < p.c);
}

fn write_row(row: u32, label: u32, m: f32, s: f32, argmax: u32) -> RowResult {
    let x_label = logits[logits_base() + row * p.c + label];
    let r = RowResult(log(s) - (x_label - m), select(0u, 1u, argmax == label));
    loss[p.loss_offset + zb * p.n + row] = r.loss;
    correct[p.correct_offset + zb * p.n + row] = r.correct;
    return r;
}

fn grad(x: f32, m: f32, s: f32, is_label: bool) -> f32 {
    let onehot = select(0.0, 1.0, is_label);
    return (exp(x - m) / s - onehot) / f32(p.n);
}

// ------------------------------------------------------- v1: thread per row
// Row `row` in full: loss, correct flag and (WRITE_GRAD) dlogits written;
// the loss and the flag returned for v3's totals.
struct RowResult {
    loss: f32,
    correct: u32,
}

fn xent_one_row(row: u32) -> RowResult {
    let base = logits_base() + row * p.c;
    var m = logits[base];
    var argmax = 0u;
    for (var j = 1u; j < p.c; j = j + 1u) {
        let x = logits[base + j];
        if (x > m) {
            m = x;
            argmax = j;
        }
    }
    var s = 0.0;
    for (var j = 0u; j < p.c; j = j + 1u) {
        s = s + exp(logits[base + j] - m);
    }
    let label = label_of(row);
    let r = write_row(row, label, m, s, argmax);
    if (WRITE_GRAD) {
        let out = dlogits_base() + row * p.c;
        for (var j = 0u; j < p.c; j = j + 1u) {
            dlogits[out + j] = grad(logits[base + j], m, s, j == label);
        }
    }
    return r;
}

@compute @workgroup_size(64, 1, 1)
fn xent_row(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    zb = wid.z;
    let row = group_index(wid, groups) * 64u + lid;
    if (row >= p.n) {
        return;
    }
    xent_one_row(row);
}

// -------------------------------------------------- v2: workgroup per row
const WG: u32 = 64u;

var<workgroup> tree_max: array<f32, WG>;
var<workgroup> tree_arg: array<u32, WG>;
var<workgroup> tree_sum: array<f32, WG>;

@compute @workgroup_size(64, 1, 1)
fn xent_workgroup(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // `row` is the same for the whole workgroup, so this return is uniform
    // and every thread that stays reaches every barrier below.
    zb = wid.z;
    let row = group_index(wid, groups);
    if (row >= p.n) {
        return;
    }
    let base = logits_base() + row * p.c;

    // Every thread starts from element 0, so threads with no elements of
    // their own (C < 64) hold a real value and need no sentinel.
    var m = logits[base];
    var argmax = 0u;
    for (var j = lid; j < p.c; j = j + WG) {
        let x = logits[base + j];
        if (x > m) {
            m = x;
            argmax = j;
        }
    }
    tree_max[lid] = m;
    tree_arg[lid] = argmax;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            let other = tree_max[lid + half];
            let other_arg = tree_arg[lid + half];
            let mine = tree_max[lid];
            if (other > mine || (other == mine && other_arg < tree_arg[lid])) {
                tree_max[lid] = other;
                tree_arg[lid] = other_arg;
            }
        }
        workgroupBarrier();
    }
    m = tree_max[0];
    argmax = tree_arg[0];

    var s = 0.0;
    for (var j = lid; j < p.c; j = j + WG) {
        s = s + exp(logits[base + j] - m);
    }
    tree_sum[lid] = s;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            tree_sum[lid] = tree_sum[lid] + tree_sum[lid + half];
        }
        workgroupBarrier();
    }
    s = tree_sum[0];

    let label = label_of(row);
    if (lid == 0u) {
        write_row(row, label, m, s, argmax);
    }
    if (WRITE_GRAD) {
        let out = dlogits_base() + row * p.c;
        for (var j = lid; j < p.c; j = j + WG) {
            dlogits[out + j] = grad(logits[base + j], m, s, j == label);
        }
    }
}

// ------------------------------------------- v3: rows and the batch totals
// One workgroup for the whole batch: thread t runs v1 on rows t, t + 256, …
// in order, keeping its running loss and correct count exactly as
// reduce.wgsl's loss_correct_sum adds them (same start, same order), then the
// same tree, then thread 0 adds the batch's sums to the epoch's totals. So the
// bits are those of v1 followed by loss_correct_sum with ACCUMULATE, one
// dispatch instead of two. A batch of 128 rows of 10 classes is ~40 k flops:
// far too little to need more than one workgroup, even at 1,000 rows.
const TOTAL_WG: u32 = 256u;

var<workgroup> part_loss: array<f32, TOTAL_WG>;
var<workgroup> part_count: array<u32, TOTAL_WG>;

@compute @workgroup_size(256, 1, 1)
fn xent_totals(@builtin(local_invocation_index) lid: u32) {
    var total = 0.0;
    var n = 0u;
    for (var row = lid; row < p.n; row = row + TOTAL_WG) {
        let r = xent_one_row(row);
        total = total + r.loss;
        n = n + r.correct;
    }
    part_loss[lid] = total;
    part_count[lid] = n;
    workgroupBarrier();
    for (var half = TOTAL_WG / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            part_loss[lid] = part_loss[lid] + part_loss[lid + half];
            part_count[lid] = part_count[lid] + part_count[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        loss_total[p.total_offset] = loss_total[p.total_offset] + part_loss[0];
        correct_total[p.count_offset] = correct_total[p.count_offset] + part_count[0];
    }
}
