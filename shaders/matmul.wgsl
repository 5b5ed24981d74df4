// Batched matmul with transposed operands and a fused epilogue:
//
//   C[b] = act(op(A[b]) · op(B[b]) + bias)        op ∈ {identity, transpose}
//
// Shapes as stored (row-major): A is M×K, or K×M when TRANS_A; B is K×N, or
// N×K when TRANS_B; C is M×N; bias has N elements. Every operand is a window
// into a bound buffer: `*_offset` is its first element and `*_batch_stride`
// the distance between batches (0 broadcasts one matrix over the batch).
// A sweep (src/train/sweep/) runs K models' products as one batch: each
// batch element computes exactly what the unbatched call would.
// Weights follow nn.Linear (out×in), so a layer's forward is NT, its input
// gradient NN and its weight gradient TN.
//
// Seven versions, numbered as in llm.c; each is validated against the CPU
// twin (src/cpu/matmul.rs) by tests/gpu/matmul.rs:
//   v1 matmul_naive    one output per thread; the reference, easy to read.
//   v2 matmul_blocked  4×4 outputs per thread from registers, no workgroup
//                      memory and no barriers: best on lavapipe, where a
//                      barrier is expensive and a thread runs as SIMD lanes.
//   v3 matmul_tiled    64×64 tiles staged through workgroup memory, 16 k per
//                      stage, 4×4 outputs per thread: the shape real GPUs like.
//   v4 matmul_tiled_8x8  128×128 tiles, 8×8 outputs per thread in named vec4
//                      registers, two tile buffers (global loads overlap the
//                      products): for large products on hardware GPUs.
//   v5 matmul_split_k  K split into chunks over workgroups, partial sums to a
//      + …_reduce      scratch buffer, then added in chunk order: for skinny
//                      products with a long K (256×10×3073), where v1..v4
//                      have too few outputs to fill a large GPU.
//   v6 matmul_vec4     v4 with vec4 loads from storage for the operands
//                      whose layout allows them: in matmul_vec4.wgsl,
//                      appended to this file as a second module, because
//                      it binds A and B a second time as array<vec4<f32>>.
//   v7 matmul_v7_<tile> register tiles written for the compiler (unrolled k,
//                      named accumulators, fma, swizzled double-buffered
//                      tiles, v6's vec4 loads): the template
//                      matmul_v7.wgsl, instantiated per tile candidate by
//                      src/kernels/matmul_v7.rs and appended after v6.
// Accumulation runs over k in increasing order in v1..v4 and v6, one sum from 0;
// v5 sums each chunk from 0 and then the chunks in order, so its bits differ.
//
// Two fused epilogues for the backward pass (off by default; the launcher
// turns one on with an override constant), each validated against its CPU
// twin in src/cpu/matmul.rs by tests/fused.rs:
//   ONES_COLUMN      op(B) gains a virtual trailing column of ones, so C gains
//                    a column Σ_k op(A)[row, k], stored at `extra_offset` in
//                    C's buffer instead of in C: with A = dZ (TN) the weight
//                    gradient's product also yields the bias gradient
//                    db = Σ_rows dZ, added in row order, as reduce.wgsl's
//                    column_sum_serial adds it (the same bits), and no column
//                    sum dispatch is needed.
//   ACTIVATION_GRAD  C = (op(A)·op(B)) ⊙ act'(H): the input gradient of the
//                    layer below, through its activation (ACTIVATION), with
//                    H = act(Z) (M×N) bound where the bias goes. Replaces the
//                    separate activation backward pass over dH.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_offset: u32,
    b_offset: u32,
    c_offset: u32,
    bias_offset: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    c_batch_stride: u32,
    extra_offset: u32, // ONES_COLUMN: where the extra column of C goes
    splits: u32,       // v5: chunks of K
    k_chunk: u32,      // v5: k per chunk (the last may be shorter)
    partial_stride: u32, // v5: floats per chunk in the scratch (batch·M·n_out)
    bias_batch_stride: u32, // 0: one bias for every batch (a sweep: one per model)
}

// Specialisation constants: the launcher builds one pipeline per combination
// it needs, and the branches below fold away at pipeline creation.
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACTIVATION: u32 = 0u; // 0 identity, 1 sigmoid, 2 ReLU
override ONES_COLUMN: bool = false;
override ACTIVATION_GRAD: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>; // or H (ACTIVATION_GRAD)
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Element (row, kk) of op(A) is at a_base + row * a_rs + kk * a_ks.
fn a_row_stride() -> u32 { return select(p.k, 1u, TRANS_A); }
fn a_k_stride() -> u32 { return select(1u, p.m, TRANS_A); }
// Element (kk, col) of op(B) is at b_base + kk * b_ks + col * b_cs.
fn b_k_stride() -> u32 { return select(p.n, 1u, TRANS_B); }
fn b_col_stride() -> u32 { return select(1u, p.k, TRANS_B); }

// Split so that both branches are exact: exp never sees a large positive
// argument, so ±1e3 gives 0 or 1 rather than inf/inf.
fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// activation_grad(g, y) is appended from shaders/shared/activation_grad.wgsl.

// Columns of C the dispatch covers: N, plus the ones column.
fn n_out() -> u32 {
    return p.n + select(0u, 1u, ONES_COLUMN);
}

fn epilogue(acc: f32, bz: u32, row: u32, col: u32) -> f32 {
    if (ACTIVATION_GRAD) {
        let h = bias[p.bias_offset + bz * p.c_batch_stride + row * p.n + col];
        return activation_grad(acc, h);
    }
    var x = acc;
    if (HAS_BIAS) {
        x = x + bias[p.bias_offset + bz * p.bias_batch_stride + col];
    }
    if (ACTIVATION == 1u) {
        x = sigmoid(x);
    } else if (ACTIVATION == 2u) {
        x = select(0.0, x, x > 0.0);
    }
    return x;
}

fn store(bz: u32, row: u32, col: u32, acc: f32) {
    if (ONES_COLUMN && col == p.n) {
        c[p.extra_offset + bz * p.m + row] = acc;
        return;
    }
    c[p.c_offset + bz * p.c_batch_stride + row * p.n + col] = epilogue(acc, bz, row, col);
}

// ---------------------------------------------------------------- v1: naive
@compute @workgroup_size(16, 16, 1)
fn matmul_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    let bz = gid.z;
    if (row >= p.m || col >= n_out() || bz >= p.batch) {
        return;
    }
    let ones = ONES_COLUMN && col == p.n;
    let a_base = p.a_offset + bz * p.a_batch_stride + row * a_row_stride();
    let b_base = p.b_offset + bz * p.b_batch_stride + min(col, p.n - 1u) * b_col_stride();
    let aks = a_k_stride();
    let bks = b_k_stride();
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        let bv = select(b[b_base + kk * bks], 1.0, ones);
        acc = acc + a[a_base + kk * aks] * bv;
    }
    store(bz, row, col, acc);
}

// ------------------------------------------------- v2: register-blocked 4×4
// Each thread owns a 4×4 block of C. Rows and columns past the edge are
// clamped for loading (always in bounds, no branch in the k loop) and skipped
// when storing. The workgroup's shape is a specialisation constant so that a
// narrow C (N = 10: three 4-column blocks) does not leave lanes idle.
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

// The 4×4 block of op(A)·op(B) at (row0, col0), summed over k0 ≤ k < k1 in
// increasing order: v2's body, and v5's per chunk. `row0`, `col0` in range.
struct Block4 {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

fn block4(bz: u32, row0: u32, col0: u32, k0: u32, k1: u32) -> Block4 {
    let rows = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u));
    let cols = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(n_out() - 1u));
    // The ones column reads nothing: its lanes load column N − 1, then take 1.
    let ones = cols == vec4<u32>(p.n);
    let a_base = p.a_offset + bz * p.a_batch_stride + rows * a_row_stride();
    let b_base = p.b_offset + bz * p.b_batch_stride + min(cols, vec4<u32>(p.n - 1u)) * b_col_stride();
    let aks = a_k_stride();
    let bks = b_k_stride();

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = k0; kk < k1; kk = kk + 1u) {
        let ai = a_base + kk * aks;
        let bi = b_base + kk * bks;
        let av = vec4<f32>(a[ai.x], a[ai.y], a[ai.z], a[ai.w]);
        var bv = vec4<f32>(b[bi.x], b[bi.y], b[bi.z], b[bi.w]);
        if (ONES_COLUMN) {
            bv = select(bv, vec4<f32>(1.0), ones);
        }
        acc0 = acc0 + av.x * bv;
        acc1 = acc1 + av.y * bv;
        acc2 = acc2 + av.z * bv;
        acc3 = acc3 + av.w * bv;
    }
    return Block4(acc0, acc1, acc2, acc3);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_blocked(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    let bz = gid.z;
    let ncols = n_out();
    if (row0 >= p.m || col0 >= ncols || bz >= p.batch) {
        return;
    }
    let blk = block4(bz, row0, col0, 0u, p.k);
    let accs = array<vec4<f32>, 4>(blk.r0, blk.r1, blk.r2, blk.r3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.m) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                if (col0 + j < ncols) {
                    store(bz, row, col0 + j, accs[i][j]);
                }
            }
        }
    }
}

// ------------------------------------------- v3: workgroup-memory tiles 64×64
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const THREADS: u32 = 256u; // 16×16, each computing 4×4 of the 64×64 tile

// Tiles are stored k-major, so the inner loop reads 4 consecutive rows of A
// and 4 consecutive columns of B for one k.
var<workgroup> a_tile: array<f32, 1024>; // BK × BM
var<workgroup> b_tile: array<f32, 1024>; // BK × BN

@compute @workgroup_size(16, 16, 1)
fn matmul_tiled(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tid = lid.y * 16u + lid.x;
    let tile_row = wid.y * BM;
    let tile_col = wid.x * BN;
    let bz = wid.z;
    let a_base = p.a_offset + bz * p.a_batch_stride;
    let b_base = p.b_offset + bz * p.b_batch_stride;
    let ars = a_row_stride();
    let aks = a_k_stride();
    let bks = b_k_stride();
    let bcs = b_col_stride();

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Uniform trip count: every thread reaches every barrier.
    let stages = (p.k + BK - 1u) / BK;
    for (var s = 0u; s < stages; s = s + 1u) {
        let k0 = s * BK;
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = tid + i * THREADS;
            // Walk memory in its contiguous direction so neighbouring threads
            // read neighbouring addresses.
            var r = e / BK;
            var kk = e % BK;
            if (TRANS_A) {
                r = e % BM;
                kk = e / BM;
            }
            let gr = tile_row + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.m && gk < p.k) {
                v = a[a_base + gr * ars + gk * aks];
            }
            a_tile[kk * BM + r] = v;
        }
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = tid + i * THREADS;
            var col = e % BN;
            var kk = e / BN;
            if (TRANS_B) {
                col = e / BK;
                kk = e % BK;
            }
            let gc = tile_col + col;
            let gk = k0 + kk;
            var v = 0.0;
            if (gc < p.n && gk < p.k) {
                v = b[b_base + gk * bks + gc * bcs];
            } else if (ONES_COLUMN && gc == p.n && gk < p.k) {
                v = 1.0;
            }
            b_tile[kk * BN + col] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk = kk + 1u) {
            let ar = kk * BM + lid.y * 4u;
            let bc = kk * BN + lid.x * 4u;
            let av = vec4<f32>(a_tile[ar], a_tile[ar + 1u], a_tile[ar + 2u], a_tile[ar + 3u]);
            let bv = vec4<f32>(b_tile[bc], b_tile[bc + 1u], b_tile[bc + 2u], b_tile[bc + 3u]);
            acc0 = acc0 + av.x * bv;
            acc1 = acc1 + av.y * bv;
            acc2 = acc2 + av.z * bv;
            acc3 = acc3 + av.w * bv;
        }
        workgroupBarrier();
    }
    if (bz >= p.batch) {
        return;
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let row0 = tile_row + lid.y * 4u;
    let col0 = tile_col + lid.x * 4u;
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (row0 + i < p.m) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                if (col0 + j < n_out()) {
                    store(bz, row0 + i, col0 + j, accs[i][j]);
                }
            }
        }
    }
}

// ------------------------------- v4: 128×128 tiles, 8×8 per thread, 2 buffers
// For hardware GPUs, after the public WGSL matmuls that reach a third of fp32
// peak (wgpu-mm, gpu.cpp): a 128×128 output tile per workgroup of 16×16
// threads, each thread holding 8×8 outputs in 16 *named* vec4 accumulators
// (naga spills an array of accumulators to memory), reading the tiles from
// workgroup memory as vec4s, and two tile buffers so that one global load
// and one barrier per k-stage overlap the products of the previous stage.
// A thread's rows are 4·ty..4·ty+3 and 64+4·ty..64+4·ty+3 (its columns
// likewise in tx), so neighbouring threads read neighbouring vec4s.
// 2 × 2 × 8 × 128 floats = 16 KiB of workgroup memory: WebGPU's default limit.
const V4_BM: u32 = 128u;
const V4_BK: u32 = 8u;
// [buffer][kk][vec4 of 4 rows or columns]: 2 × 8 × 32 vec4s each.
var<workgroup> a_tile4: array<vec4<f32>, 512>;
var<workgroup> b_tile4: array<vec4<f32>, 512>;

fn store4(bz: u32, row: u32, col_lo: u32, col_hi: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (col_lo + j < n_out()) {
            store(bz, row, col_lo + j, lo[j]);
        }
        if (col_hi + j < n_out()) {
            store(bz, row, col_hi + j, hi[j]);
        }
    }
}

// Element `i` (0..4) of this thread's share of stage `k0`, zero past the
// edges; the index is clamped so the load itself is always in bounds.
fn v4_load_a(a_base: u32, row: u32, kk: u32) -> f32 {
    let v = a[a_base + min(row, p.m - 1u) * a_row_stride() + min(kk, p.k - 1u) * a_k_stride()];
    return select(0.0, v, row < p.m && kk < p.k);
}

fn v4_load_b(b_base: u32, kk: u32, col: u32) -> f32 {
    let v = b[b_base + min(kk, p.k - 1u) * b_k_stride() + min(col, p.n - 1u) * b_col_stride()];
    // The ones column (ONES_COLUMN) reads nothing: it is 1 wherever k is.
    let one = select(0.0, 1.0, ONES_COLUMN && col == p.n && kk < p.k);
    return select(one, v, col < p.n && kk < p.k);
}

@compute @workgroup_size(16, 16, 1)
fn matmul_tiled_8x8(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tid = lid.y * 16u + lid.x;
    let tile_row = wid.y * V4_BM;
    let tile_col = wid.x * V4_BM;
    let bz = wid.z;
    let a_base = p.a_offset + bz * p.a_batch_stride;
    let b_base = p.b_offset + bz * p.b_batch_stride;

    // This thread's 4 elements of each 8×128 stage, walked in the direction
    // memory is contiguous: A along k (along rows when TRANS_A), B along
    // columns (along k when TRANS_B).
    var a_r: array<u32, 4>;
    var a_k: array<u32, 4>;
    var b_c: array<u32, 4>;
    var b_k: array<u32, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let e = tid + i * 256u;
        a_r[i] = select(e / V4_BK, e % V4_BM, TRANS_A);
        a_k[i] = select(e % V4_BK, e / V4_BM, TRANS_A);
        b_c[i] = select(e % V4_BM, e / V4_BK, TRANS_B);
        b_k[i] = select(e / V4_BM, e % V4_BK, TRANS_B);
    }
    var a_reg: vec4<f32>;
    var b_reg: vec4<f32>;

    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    var acc40 = vec4<f32>(0.0);
    var acc41 = vec4<f32>(0.0);
    var acc50 = vec4<f32>(0.0);
    var acc51 = vec4<f32>(0.0);
    var acc60 = vec4<f32>(0.0);
    var acc61 = vec4<f32>(0.0);
    var acc70 = vec4<f32>(0.0);
    var acc71 = vec4<f32>(0.0);

    let stages = (p.k + V4_BK - 1u) / V4_BK;
    // Stage 0 into buffer 0.
    for (var i = 0u; i < 4u; i = i + 1u) {
        a_reg[i] = v4_load_a(a_base, tile_row + a_r[i], a_k[i]);
        b_reg[i] = v4_load_b(b_base, b_k[i], tile_col + b_c[i]);
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        a_tile4[a_k[i] * 32u + a_r[i] / 4u][a_r[i] % 4u] = a_reg[i];
        b_tile4[b_k[i] * 32u + b_c[i] / 4u][b_c[i] % 4u] = b_reg[i];
    }
    workgroupBarrier();

    // Uniform trip count and uniform `more`: every thread reaches every barrier.
    for (var s = 0u; s < stages; s = s + 1u) {
        let cur = (s % 2u) * 256u;
        let next = 256u - cur;
        let more = s + 1u < stages;
        if (more) {
            // Issue the next stage's global loads before this stage's products.
            let k0 = (s + 1u) * V4_BK;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a_reg[i] = v4_load_a(a_base, tile_row + a_r[i], k0 + a_k[i]);
                b_reg[i] = v4_load_b(b_base, k0 + b_k[i], tile_col + b_c[i]);
            }
        }
        for (var kk = 0u; kk < V4_BK; kk = kk + 1u) {
            let base = cur + kk * 32u;
            let a_lo = a_tile4[base + lid.y];
            let a_hi = a_tile4[base + 16u + lid.y];
            let b_lo = b_tile4[base + lid.x];
            let b_hi = b_tile4[base + 16u + lid.x];
            acc00 = acc00 + a_lo.x * b_lo;
            acc01 = acc01 + a_lo.x * b_hi;
            acc10 = acc10 + a_lo.y * b_lo;
            acc11 = acc11 + a_lo.y * b_hi;
            acc20 = acc20 + a_lo.z * b_lo;
            acc21 = acc21 + a_lo.z * b_hi;
            acc30 = acc30 + a_lo.w * b_lo;
            acc31 = acc31 + a_lo.w * b_hi;
            acc40 = acc40 + a_hi.x * b_lo;
            acc41 = acc41 + a_hi.x * b_hi;
            acc50 = acc50 + a_hi.y * b_lo;
            acc51 = acc51 + a_hi.y * b_hi;
            acc60 = acc60 + a_hi.z * b_lo;
            acc61 = acc61 + a_hi.z * b_hi;
            acc70 = acc70 + a_hi.w * b_lo;
            acc71 = acc71 + a_hi.w * b_hi;
        }
        if (more) {
            // The other buffer was last read before the previous barrier.
            for (var i = 0u; i < 4u; i = i + 1u) {
                a_tile4[next + a_k[i] * 32u + a_r[i] / 4u][a_r[i] % 4u] = a_reg[i];
                b_tile4[next + b_k[i] * 32u + b_c[i] / 4u][b_c[i] % 4u] = b_reg[i];
            }
        }
        workgroupBarrier();
    }
    if (bz >= p.batch) {
        return;
    }
    let row_lo = tile_row + lid.y * 4u;
    let row_hi = row_lo + 64u;
    let col_lo = tile_col + lid.x * 4u;
    let col_hi = col_lo + 64u;
    store4(bz, row_lo + 0u, col_lo, col_hi, acc00, acc01);
    store4(bz, row_lo + 1u, col_lo, col_hi, acc10, acc11);
    store4(bz, row_lo + 2u, col_lo, col_hi, acc20, acc21);
    store4(bz, row_lo + 3u, col_lo, col_hi, acc30, acc31);
    store4(bz, row_hi + 0u, col_lo, col_hi, acc40, acc41);
    store4(bz, row_hi + 1u, col_lo, col_hi, acc50, acc51);
    store4(bz, row_hi + 2u, col_lo, col_hi, acc60, acc61);
    store4(bz, row_hi + 3u, col_lo, col_hi, acc70, acc71);
}

// ------------------------------------------------------------ v5: split-K
// A skinny product with a long K (the linear model's 256×10×3073: 2,560
// outputs, each a 3,073-term sum) gives v1..v4 a few thousand threads, each
// running the whole of K: a large GPU sits mostly idle (29 GFLOP/s on an
// H200). v5 splits K into `splits` chunks of `k_chunk` and runs them in
// parallel, in two dispatches:
//   matmul_split_k         chunk s's 4×4 blocks (v2's body over the chunk)
//                          into scratch[s] — the scratch is bound as C;
//   matmul_split_k_reduce  per output, scratch[0] + scratch[1] + … in chunk
//                          order, then the epilogue — the scratch is bound
//                          as A, the real C as C.
// No atomics, a fixed order: the launcher derives `splits` from the shape
// alone, so the same shape gives the same bits on every run and adapter
// (up to the driver's contraction, as for every version). The association
// differs from v1..v4's single running sum: v5's bits differ from theirs
// (docs in BENCHMARKS.md and src/tune.rs).

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_split_k(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    let s = gid.z / p.batch;
    let bz = gid.z % p.batch;
    let ncols = n_out();
    if (row0 >= p.m || col0 >= ncols || s >= p.splits) {
        return;
    }
    let k0 = s * p.k_chunk;
    let blk = block4(bz, row0, col0, k0, min(k0 + p.k_chunk, p.k));
    let accs = array<vec4<f32>, 4>(blk.r0, blk.r1, blk.r2, blk.r3);
    let base = s * p.partial_stride + bz * p.m * ncols;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.m) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                if (col0 + j < ncols) {
                    c[base + row * ncols + col0 + j] = accs[i][j];
                }
            }
        }
    }
}

@compute @workgroup_size(64, 1, 1)
fn matmul_split_k_reduce(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // A 1-D grid folded into 2-D past 65,535 workgroups (kernels::fold).
    let i = gid.y * groups.x * 64u + gid.x;
    if (i >= p.partial_stride) {
        return;
    }
    // Seeded with chunk 0, not 0.0 + chunk 0, so that one chunk is exactly
    // v2's sum (a −0.0 stays −0.0).
    var acc = a[i];
    for (var s = 1u; s < p.splits; s = s + 1u) {
        acc = acc + a[s * p.partial_stride + i];
    }
    let ncols = n_out();
    let col = i % ncols;
    let row = (i / ncols) % p.m;
    let bz = i / (ncols * p.m);
    store(bz, row, col, acc);
}
