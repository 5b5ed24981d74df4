// The losses beside softmax cross-entropy (softmax_xent.wgsl), each the mean
// over the batch, per row, with the gradient of that mean:
//
// mse_row: mean squared error of predictions P (N×K) against targets T (N×K)
//   loss_i  = Σ_k (p_ik − t_ik)² / K
//   grad_ik = 2·(p_ik − t_ik) / (N·K)           torch.nn.MSELoss('mean')
//
// hinge_row: the multiclass SVM loss of CS231n on scores S (N×C), one u32
//   label y_i per row, margin 1:
//   m_ij    = s_ij − s_iy + 1                   (j ≠ y)
//   loss_i  = Σ_{j≠y} max(0, m_ij)
//   grad_ij = [m_ij > 0] / N  (j ≠ y),  grad_iy = −#{j ≠ y : m_ij > 0} / N
//   correct = [argmax_j s_ij == y]              (ties to the lowest index)
//   At m = 0 the subgradient taken is 0 (strictly greater), as in CS231n.
//
// logistic_row: binary cross-entropy on a sigmoid, logits Z (N×K) against
//   targets T (N×K) in [0, 1] (torch.nn.BCEWithLogitsLoss('mean')):
//   l_ik    = max(z, 0) − z·t + ln(1 + exp(−|z|))   (no overflow for any z)
//   loss_i  = Σ_k l_ik / K
//   grad_ik = (σ(z_ik) − t_ik) / (N·K)
//   correct = [every k: (z_ik > 0) == (t_ik > 0.5)]
//   With t = (y + 1)/2 for y ∈ {−1, 1} this is the course's log(1 + exp(−y·z)).
//
// One thread per row, its columns in order, so the CPU twin (src/cpu/loss.rs)
// does the same operations in the same order: hinge is then the same bits on
// both sides; mse and logistic as well up to the GPU's exp/ln (and any fused
// multiply-add the driver forms). Per-row losses are summed by the caller in
// a fixed order (reduce.wgsl's loss_correct_sum): nothing here is atomic.
//
// WRITE_GRAD = false is the forward-only variant (evaluation): the gradient
// binding is a placeholder and never touched. Labels are checked on the CPU
// (GpuLabels); one ≥ C reaching the shader anyway is clamped to 0 so that it
// cannot index outside its row.

struct Params {
    n: u32,
    k: u32,
    x_offset: u32,      // predictions, scores or logits
    labels_offset: u32, // hinge
    targets_offset: u32,// mse, logistic
    loss_offset: u32,
    correct_offset: u32,// hinge, logistic
    grad_offset: u32,
}

override WRITE_GRAD: bool = true;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<u32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;

// Grids of more than 65,535 workgroups are folded into 2-D by the launcher.
fn row_index(lid: u32, wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wid.y * groups.x + wid.x) * 64u + lid;
}

@compute @workgroup_size(64, 1, 1)
fn mse_row(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row = row_index(lid, wid, groups);
    if (row >= p.n) {
        return;
    }
    let base = row * p.k;
    let nk = f32(p.n * p.k);
    var s = 0.0;
    for (var j = 0u; j < p.k; j = j + 1u) {
        let d = x[p.x_offset + base + j] - targets[p.targets_offset + base + j];
        s = s + d * d;
        if (WRITE_GRAD) {
            grad[p.grad_offset + base + j] = (2.0 * d) / nk;
        }
    }
    loss[p.loss_offset + row] = s / f32(p.k);
}

@compute @workgroup_size(64, 1, 1)
fn hinge_row(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row = row_index(lid, wid, groups);
    if (row >= p.n) {
        return;
    }
    let base = p.x_offset + row * p.k;
    let raw = labels[p.labels_offset + row];
    let y = select(0u, raw, raw < p.k);
    let sy = x[base + y];
    let n = f32(p.n);
    var s = 0.0;
    var positive = 0u;
    var best = x[base];
    var argmax = 0u;
    for (var j = 0u; j < p.k; j = j + 1u) {
        let sj = x[base + j];
        if (sj > best) {
            best = sj;
            argmax = j;
        }
        if (j == y) {
            continue;
        }
        let m = (sj - sy) + 1.0;
        let on = m > 0.0;
        if (on) {
            s = s + m;
            positive = positive + 1u;
        }
        if (WRITE_GRAD) {
            grad[p.grad_offset + row * p.k + j] = select(0.0, 1.0, on) / n;
        }
    }
    if (WRITE_GRAD) {
        grad[p.grad_offset + row * p.k + y] = -f32(positive) / n;
    }
    loss[p.loss_offset + row] = s;
    correct[p.correct_offset + row] = select(0u, 1u, argmax == y);
}

@compute @workgroup_size(64, 1, 1)
fn logistic_row(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row = row_index(lid, wid, groups);
    if (row >= p.n) {
        return;
    }
    let base = row * p.k;
    let nk = f32(p.n * p.k);
    var s = 0.0;
    var right = 1u;
    for (var j = 0u; j < p.k; j = j + 1u) {
        let z = x[p.x_offset + base + j];
        let t = targets[p.targets_offset + base + j];
        // exp of a non-positive number only: never overflows.
        let e = exp(-abs(z));
        s = s + ((max(z, 0.0) - z * t) + log(1.0 + e));
        if ((z > 0.0) != (t > 0.5)) {
            right = 0u;
        }
        if (WRITE_GRAD) {
            let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
            grad[p.grad_offset + base + j] = (sig - t) / nk;
        }
    }
    loss[p.loss_offset + row] = s / f32(p.k);
    correct[p.correct_offset + row] = right;
}
