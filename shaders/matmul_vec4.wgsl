
// ------------------------------------ v6: v4 with vec4 loads from storage
// Appended to matmul.wgsl (and its shared activation_grad) as a second
// module, `matmul_vec4` in src/shaders.rs, launched by src/kernels/matmul.rs
// like every other version and validated against the same CPU twin.
//
// v4 reads each stage of its tiles from storage as four scalars per thread
// and operand. v6 reads one vec4 instead, for each operand whose contiguous
// dimension is a multiple of 4 and whose window starts on a 16-byte
// boundary (A along K, or along M when TRANS_A; B along N, or along K when
// TRANS_B): the launcher checks that and sets VEC4_A / VEC4_B; an operand
// that fails it keeps v4's scalar loads, so v6 is valid at every shape and
// offset (where neither operand qualifies, K = 3073, the launcher runs v4's
// pipeline, which is what this one would compute). Everything
// else is v4's: 128×128 tiles, 8×8 outputs per thread in 16 named vec4
// accumulators, two tile buffers, one barrier per stage, the sum over k in
// increasing order (the same bits as v1..v4 where the driver does not
// contract differently).
//
// `a4` and `b4` are the buffers bound as `a` and `b`, bound a second time
// as vec4s over their whole size rounded down to 16 bytes: an aligned
// window ends on a multiple of 4 floats, so the dropped tail (1 to 3 floats
// of the buffer, past the window) is never needed. An operand read as
// scalars gets a 16-byte placeholder here. Because a WGSL binding has one
// type, the two extra bindings make this module's layout 6 storage buffers
// (WebGPU's default limit is 8; wgpu's downlevel 4, where v4's 16 KiB of
// tiles are already past the limit): v1..v5 keep their 4.
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;

override VEC4_A: bool = false;
override VEC4_B: bool = false;

// This thread's 4 floats of A for the stage starting at k0 (a multiple of
// V4_BK, so a vec4 along k never straddles two stages). Past the edges the
// vec4 is zero: with K (or M) a multiple of 4 a vec4 is wholly inside or
// wholly outside, and the clamped index keeps the load itself in bounds.
fn v6_fetch_a(a_base: u32, tile_row: u32, k0: u32, t: u32) -> vec4<f32> {
    if (!VEC4_A) {
        var v: vec4<f32>;
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = t + i * 256u;
            let r = select(e / V4_BK, e % V4_BM, TRANS_A);
            let kk = select(e % V4_BK, e / V4_BM, TRANS_A);
            v[i] = v4_load_a(a_base, tile_row + r, k0 + kk);
        }
        return v;
    }
    if (TRANS_A) {
        // A is K×M: rows 4q..4q+3 of the tile at one k.
        let kk = k0 + t / 32u;
        let row = tile_row + 4u * (t % 32u);
        let i = a_base + min(kk, p.k - 1u) * p.m + min(row, p.m - 4u);
        return select(vec4<f32>(0.0), a4[i / 4u], kk < p.k && row < p.m);
    }
    // A is M×K: k0 + 4q..k0 + 4q + 3 of one row.
    let row = tile_row + t / 2u;
    let kk = k0 + 4u * (t % 2u);
    let i = a_base + min(row, p.m - 1u) * p.k + min(kk, p.k - 4u);
    return select(vec4<f32>(0.0), a4[i / 4u], row < p.m && kk < p.k);
}

// Writes what v6_fetch_a returned into tile buffer `buf` (0 or 256), laid
// out as v4's: [kk][vec4 of 4 consecutive rows].
fn v6_stash_a(buf: u32, t: u32, v: vec4<f32>) {
    if (!VEC4_A) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = t + i * 256u;
            let r = select(e / V4_BK, e % V4_BM, TRANS_A);
            let kk = select(e % V4_BK, e / V4_BM, TRANS_A);
            a_tile4[buf + kk * 32u + r / 4u][r % 4u] = v[i];
        }
        return;
    }
    if (TRANS_A) {
        // Already 4 consecutive rows at k = t / 32: one store.
        a_tile4[buf + t] = v;
        return;
    }
    let r = t / 2u;
    let kk = 4u * (t % 2u);
    for (var j = 0u; j < 4u; j = j + 1u) {
        a_tile4[buf + (kk + j) * 32u + r / 4u][r % 4u] = v[j];
    }
}

// B's share, as v6_fetch_a's. The ones column (ONES_COLUMN, col == N) reads
// nothing: with N a multiple of 4 it is lane 0 of the vec4 just past B.
fn v6_fetch_b(b_base: u32, tile_col: u32, k0: u32, t: u32) -> vec4<f32> {
    if (!VEC4_B) {
        var v: vec4<f32>;
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = t + i * 256u;
            let c = select(e % V4_BM, e / V4_BK, TRANS_B);
            let kk = select(e / V4_BM, e % V4_BK, TRANS_B);
            v[i] = v4_load_b(b_base, k0 + kk, tile_col + c);
        }
        return v;
    }
    if (TRANS_B) {
        // B is N×K: k0 + 4q..k0 + 4q + 3 of one column.
        let col = tile_col + t / 2u;
        let kk = k0 + 4u * (t % 2u);
        let i = b_base + min(col, p.n - 1u) * p.k + min(kk, p.k - 4u);
        let one = select(vec4<f32>(0.0), vec4<f32>(1.0), ONES_COLUMN && col == p.n && kk < p.k);
        return select(one, b4[i / 4u], col < p.n && kk < p.k);
    }
    // B is K×N: columns 4q..4q+3 of the tile at one k.
    let kk = k0 + t / 32u;
    let col = tile_col + 4u * (t % 32u);
    let i = b_base + min(kk, p.k - 1u) * p.n + min(col, p.n - 4u);
    let one = select(
        vec4<f32>(0.0),
        vec4<f32>(1.0, 0.0, 0.0, 0.0),
        ONES_COLUMN && col == p.n && kk < p.k,
    );
    return select(one, b4[i / 4u], col < p.n && kk < p.k);
}

fn v6_stash_b(buf: u32, t: u32, v: vec4<f32>) {
    if (!VEC4_B) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = t + i * 256u;
            let c = select(e % V4_BM, e / V4_BK, TRANS_B);
            let kk = select(e / V4_BM, e % V4_BK, TRANS_B);
            b_tile4[buf + kk * 32u + c / 4u][c % 4u] = v[i];
        }
        return;
    }
    if (!TRANS_B) {
        // Already 4 consecutive columns at k = t / 32: one store.
        b_tile4[buf + t] = v;
        return;
    }
    let c = t / 2u;
    let kk = 4u * (t % 2u);
    for (var j = 0u; j < 4u; j = j + 1u) {
        b_tile4[buf + (kk + j) * 32u + c / 4u][c % 4u] = v[j];
    }
}

@compute @workgroup_size(16, 16, 1)
fn matmul_vec4(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let t = lid.y * 16u + lid.x;
    let tile_row = wid.y * V4_BM;
    let tile_col = wid.x * V4_BM;
    let bz = wid.z;
    let a_base = p.a_offset + bz * p.a_batch_stride;
    let b_base = p.b_offset + bz * p.b_batch_stride;

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
    v6_stash_a(0u, t, v6_fetch_a(a_base, tile_row, 0u, t));
    v6_stash_b(0u, t, v6_fetch_b(b_base, tile_col, 0u, t));
    workgroupBarrier();

    // v4's loop: uniform trip count and `more`, so every thread reaches
    // every barrier; the next stage's loads are issued before this stage's
    // products and stashed after them.
    var a_reg: vec4<f32>;
    var b_reg: vec4<f32>;
    for (var s = 0u; s < stages; s = s + 1u) {
        let cur = (s % 2u) * 256u;
        let next = 256u - cur;
        let more = s + 1u < stages;
        if (more) {
            let k0 = (s + 1u) * V4_BK;
            a_reg = v6_fetch_a(a_base, tile_row, k0, t);
            b_reg = v6_fetch_b(b_base, tile_col, k0, t);
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
            v6_stash_a(next, t, a_reg);
            v6_stash_b(next, t, b_reg);
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
