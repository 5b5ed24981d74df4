// Full-batch linear algebra for the second-order optimizers
// (src/second_order): vectors of n = C·(D+1) weights that stay on the GPU,
// and the one elementwise piece of the softmax cross-entropy's
// Hessian-vector product.
//
//   dots           out[k] = Σ_i a[pair_k.a + i] · b[pair_k.b + i] for K pairs
//                  of n-vectors in one dispatch, one workgroup per pair: lane t
//                  adds i = t, t + 256, t + 512, … in order, then the 256 lanes
//                  are added as a fixed binary tree. The order depends on n
//                  alone, so the same inputs give the same bits on every run
//                  (no atomics). ROOT: out[k] = √out[k] (a norm, with a = b).
//   combine        out[o + i] = Σ_t c_t · v_t[i], terms in order, each v_t a
//                  window of `out`'s own buffer or of `a`. axpy (y ← a·x + y)
//                  and scale (x ← a·x) are its two- and one-term cases; the
//                  optimizers build search directions, steps and curvature
//                  pairs with it. A term may be the output window itself
//                  (each thread reads its element before writing it); the
//                  launcher rejects terms that overlap it otherwise.
//   xent_hvp_rows  r[row, j] = p_j·(u_j − Σ_k p_k u_k)·inv_n with p the softmax
//                  of the row's logits z: row `row` of (diag(p) − p pᵀ)·u / N,
//                  the middle of the Hessian-vector product of the mean
//                  softmax cross-entropy
//                      Hv = Xᵀ·((diag(p) − p pᵀ)·(X·Vᵀ)) / N
//                  (two matmuls around it; no Hessian is ever stored).
//                  Logits and u are read with a row stride, so both can be
//                  halves of one [rows, 2C] product X·[W; V]ᵀ.
//
// Every entry point is validated against its CPU twin in src/cpu/linalg.rs.

struct Params {
    n: u32,          // dots, combine: vector length; xent_hvp_rows: rows
    count: u32,      // dots: pairs; combine: terms; xent_hvp_rows: classes C
    out_offset: u32, // first element written in `out`
    a_offset: u32,   // xent_hvp_rows: logits of row 0 in `a`
    b_offset: u32,   // xent_hvp_rows: u of row 0 in `b`
    a_stride: u32,   // xent_hvp_rows: elements between rows of logits
    b_stride: u32,   // xent_hvp_rows: elements between rows of u
    inv_n: f32,      // xent_hvp_rows: 1 / (examples in the full batch)
}

override ROOT: bool = false; // dots: write the square root (norms)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
// dots: pairs of element offsets (a, b); combine: terms of four words
// (offset, 1 if in `a` else 0, bitcast coefficient, unused).
@group(0) @binding(3) var<storage, read> items: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Dispatches of more than 65,535 workgroups are folded into 2-D by the
// launcher; this recovers the linear workgroup index.
fn group_index(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wid.y * groups.x + wid.x;
}

// ---------------------------------------------------------------------- dots
const LANES: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn dots(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // `k` is the same for the whole workgroup: this return is uniform, and
    // every thread that stays reaches every barrier below.
    let k = group_index(wid, groups);
    if (k >= p.count) {
        return;
    }
    let ao = items[2u * k];
    let bo = items[2u * k + 1u];
    var acc = 0.0;
    for (var i = lid; i < p.n; i = i + LANES) {
        acc = acc + a[ao + i] * b[bo + i];
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var half = LANES / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            partial[lid] = partial[lid] + partial[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var v = partial[0];
        if (ROOT) {
            v = sqrt(v);
        }
        out[p.out_offset + k] = v;
    }
}

// ------------------------------------------------------------------- combine
@compute @workgroup_size(256, 1, 1)
fn combine(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = group_index(wid, groups) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    var acc = 0.0;
    for (var t = 0u; t < p.count; t = t + 1u) {
        let offset = items[4u * t];
        let coef = bitcast<f32>(items[4u * t + 2u]);
        if (items[4u * t + 1u] == 1u) {
            acc = acc + coef * a[offset + i];
        } else {
            acc = acc + coef * out[offset + i];
        }
    }
    out[p.out_offset + i] = acc;
}

// ------------------------------------------------------------- xent_hvp_rows
// One thread per row, three passes over its C logits as in softmax_xent.wgsl's
// v1 (max seeded from element 0, the exp-sum, then the outputs), so that p
// here is the p whose cross-entropy gradient the training kernels compute.
@compute @workgroup_size(64, 1, 1)
fn xent_hvp_rows(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row = group_index(wid, groups) * 64u + lid;
    if (row >= p.n) {
        return;
    }
    let c = p.count;
    let zb = p.a_offset + row * p.a_stride;
    let ub = p.b_offset + row * p.b_stride;
    var m = a[zb];
    for (var j = 1u; j < c; j = j + 1u) {
        m = max(m, a[zb + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < c; j = j + 1u) {
        s = s + exp(a[zb + j] - m);
    }
    var pu = 0.0;
    for (var j = 0u; j < c; j = j + 1u) {
        pu = pu + exp(a[zb + j] - m) / s * b[ub + j];
    }
    let ob = p.out_offset + row * c;
    for (var j = 0u; j < c; j = j + 1u) {
        let pj = exp(a[zb + j] - m) / s;
        out[ob + j] = pj * (b[ub + j] - pu) * p.inv_n;
    }
}
