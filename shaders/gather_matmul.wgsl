// The minibatch gather fused into the first layer's forward product:
//
//   X[r, c] = byte(order[start + r], c) * scale + shift     (c < dim)
//   X[r, dim] = 1                                           (append_one)
//   C = act(X · Wᵀ + bias)                                  (NT, W is N×K)
//
// The product reads its A operand straight from the packed bytes resident on
// the GPU, by index through the epoch's order, instead of from an f32 batch
// that a separate gather dispatch wrote. The backward pass still needs X (the
// first layer's weight gradient reads it) and the labels, so the threads that
// share a group of rows, which all read every byte of them, each write a
// share of them to X (and one writes y): one dispatch where there were two,
// the same values, and X's f32 read by the product replaced by its bytes.
//
// The gather's per-step slot (start, rows, ...; shaders/gather.wgsl's Params)
// comes at a dynamic offset, so an epoch is recorded without a CPU round trip.
// One bound chunk only: datasets split into several chunks (CIFAR-10 under a
// 128 MiB binding limit) keep the separate gather.
//
// The product is matmul.wgsl's v2 (4×4 outputs per thread from registers,
// workgroup shaped by N), accumulating over k in increasing order, and X is
// computed with gather.wgsl's arithmetic: the same bits as the gather followed
// by matmul_blocked (tests/fused.rs checks both against the CPU twin,
// src/cpu/gather_matmul.rs, and against each other).

struct Step {
    start: u32,
    rows: u32,
    dim: u32,
    stride_words: u32,
    chunk_first: u32,
    chunk_len: u32,
    out_stride: u32,
    append_one: u32,
    x_offset: u32,
    y_offset: u32,
    scale: f32,
    shift: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

struct Params {
    m: u32,        // rows of the batch (the program's; the slot's `rows` agrees)
    n: u32,        // outputs of the layer
    k: u32,        // inputs per row: dim, or dim + 1 with the bias column
    w_offset: u32,
    bias_offset: u32,
    c_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

override HAS_BIAS: bool = false;
override ACTIVATION: u32 = 0u; // 0 identity, 1 sigmoid, 2 ReLU
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

@group(0) @binding(0) var<uniform> g: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> images: array<u32>;
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> c: array<f32>;
@group(0) @binding(8) var<storage, read_write> x: array<f32>;
@group(0) @binding(9) var<storage, read_write> y: array<u32>;

fn sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

fn epilogue(acc: f32, col: u32) -> f32 {
    var v = acc;
    if (HAS_BIAS) {
        v = v + bias[p.bias_offset + col];
    }
    if (ACTIVATION == 1u) {
        v = sigmoid(v);
    } else if (ACTIVATION == 2u) {
        v = select(0.0, v, v > 0.0);
    }
    return v;
}

// Byte j (0..3) of each of four words, normalised as gather.wgsl does.
fn unpack(words: vec4<u32>, j: u32) -> vec4<f32> {
    let bytes = (words >> vec4<u32>(8u * j)) & vec4<u32>(0xffu);
    return vec4<f32>(
        f32(bytes.x) * g.scale + g.shift,
        f32(bytes.y) * g.scale + g.shift,
        f32(bytes.z) * g.scale + g.shift,
        f32(bytes.w) * g.scale + g.shift,
    );
}

// Column kk of the four rows whose examples start at word `base`; 1 in the
// bias column.
fn x_at(base: vec4<u32>, kk: u32) -> vec4<f32> {
    if (kk >= g.dim) {
        return vec4<f32>(1.0);
    }
    let wi = base + vec4<u32>(kk / 4u);
    return unpack(vec4<u32>(images[wi.x], images[wi.y], images[wi.z], images[wi.w]), kk % 4u);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gather_matmul(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    if (row0 >= p.m) {
        return;
    }
    let rows = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.m - 1u));
    let cols = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.n - 1u));
    // Clamped into the bound chunk: a valid order is left as it is, and an
    // order written past `write_order`'s check (the buffer is a public
    // tensor) cannot reach outside the images, as this module is built
    // without wgpu's bounds checks (src/kernels/mod.rs).
    let ex = clamp(
        vec4<u32>(
            order[g.start + rows.x],
            order[g.start + rows.y],
            order[g.start + rows.z],
            order[g.start + rows.w],
        ),
        vec4<u32>(g.chunk_first),
        vec4<u32>(g.chunk_first + g.chunk_len - 1u),
    );
    let base = (ex - vec4<u32>(g.chunk_first)) * g.stride_words;
    let b_base = p.w_offset + cols * p.k;

    // Every thread of a row group writes a share of its rows of X: words
    // gid.x, gid.x + nx, … (neighbouring threads, neighbouring words), so
    // the writing is spread evenly instead of lengthening one column block.
    let live = vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.m);
    let out = g.x_offset + rows * g.out_stride;
    let nx = groups.x * WG_X;
    for (var kw = gid.x; kw < g.stride_words; kw = kw + nx) {
        let wi = base + vec4<u32>(kw);
        let words = vec4<u32>(images[wi.x], images[wi.y], images[wi.z], images[wi.w]);
        for (var j = 0u; j < 4u; j = j + 1u) {
            let kk = kw * 4u + j;
            if (kk < g.dim) {
                let av = unpack(words, j);
                for (var i = 0u; i < 4u; i = i + 1u) {
                    if (live[i]) {
                        x[out[i] + kk] = av[i];
                    }
                }
            }
        }
    }
    if (gid.x == 0u) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            if (live[i]) {
                y[g.y_offset + rows[i]] = labels[ex[i]];
                if (g.append_one == 1u) {
                    x[out[i] + g.dim] = 1.0;
                }
            }
        }
    }
    if (col0 >= p.n) {
        return;
    }

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Whole words first: one load per row gives four columns. Then the last
    // partial word and the bias column, a column at a time. k still runs in
    // increasing order, as in matmul_blocked.
    let whole = g.dim / 4u;
    for (var kw = 0u; kw < whole; kw = kw + 1u) {
        let wi = base + vec4<u32>(kw);
        let words = vec4<u32>(images[wi.x], images[wi.y], images[wi.z], images[wi.w]);
        for (var j = 0u; j < 4u; j = j + 1u) {
            let av = unpack(words, j);
            let bi = b_base + vec4<u32>(kw * 4u + j);
            let bv = vec4<f32>(w[bi.x], w[bi.y], w[bi.z], w[bi.w]);
            acc0 = acc0 + av.x * bv;
            acc1 = acc1 + av.y * bv;
            acc2 = acc2 + av.z * bv;
            acc3 = acc3 + av.w * bv;
        }
    }
    for (var kk = whole * 4u; kk < p.k; kk = kk + 1u) {
        let av = x_at(base, kk);
        let bi = b_base + vec4<u32>(kk);
        let bv = vec4<f32>(w[bi.x], w[bi.y], w[bi.z], w[bi.w]);
        acc0 = acc0 + av.x * bv;
        acc1 = acc1 + av.y * bv;
        acc2 = acc2 + av.z * bv;
        acc3 = acc3 + av.w * bv;
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.m) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                if (col0 + j < p.n) {
                    c[p.c_offset + row * p.n + col0 + j] = epilogue(accs[i][j], col0 + j);
                }
            }
        }
    }
}
