// ------------------------------------- v7: register tiles written for the compiler
// A template, not a module: src/kernels/matmul_v7.rs instantiates it once per
// tile candidate (`V7Tile`), replacing the sizes (tile $BM×$BN, thread
// tile $TM×$TN, stage $BK) and the generated blocks, and appends the
// copies to matmul.wgsl + activation_grad.wgsl + matmul_vec4.wgsl (the
// `matmul_v7` module), whose Params, epilogue, `store`, scalar loaders
// (`v4_load_a`, `v4_load_b`), vec4 bindings `a4`/`b4` and constants
// (TRANS_A, TRANS_B, VEC4_A, VEC4_B, ONES_COLUMN, …) it uses.
//
// Why generated rather than override constants: the accumulators must be
// named registers (naga puts a private array in memory: see v4), and their
// number, like the unrolled k loop, follows the tile; an override can size
// a workgroup array but not a list of variables.
//
// One workgroup of $WX×$WY threads computes a $BM×$BN tile of C; each thread
// holds $TM×$TN outputs in named vec4 accumulators (`acc_<row>_<colgroup>`).
// Per stage of $BK k, both operands' tiles are staged through workgroup
// memory, k-major, as vec4s of 4 consecutive rows (A) or columns (B):
// slot (kk, q) holds rows 4q..4q+3 at k0 + kk. Two buffers per operand: the
// next stage's global loads are issued before this stage's products and
// stored after them, one barrier per stage (v4's scheme). The k loop of a
// stage is unrolled: every workgroup index in it is a base plus a constant,
// and every multiply-add is an explicit `fma`, in k order (one running sum
// per output, as v1..v4).
//
// Bank conflicts: within a kk row, vec4 slot q is stored at q ^ sw(kk), with
// sw(kk) = ((kk / 4) · $SWG) mod 8, a permutation of the row (q < $SA, a
// multiple of 8, and sw < 8). Reads of one kk by a warp are distinct slots
// (or one slot, broadcast) either way; the swizzle is for the stores of an
// operand whose contiguous dimension is k (A untransposed, B transposed):
// a thread holds 4 k of one row and writes 4 scalars down 4 kk rows, and
// the 32 threads of a warp then write 128/$BK rows × $BK/4 k-quads; with
// sw the (row / 4, k-quad) pairs fall on 8 different 16-byte bank groups
// instead of piling on one (unpadded, all of a column's kk rows share a
// bank). No padding, so the tiles stay 2 · $BK · ($BM + $BN) · 4 bytes.

var<workgroup> v7_a_$NAME: array<vec4<f32>, $A_SLOTS>;
var<workgroup> v7_b_$NAME: array<vec4<f32>, $B_SLOTS>;

fn v7_sw_$NAME(kk: u32) -> u32 {
    return ((kk / 4u) * $SWGu) & 7u;
}

// Group `e` of A's stage at k0: 4 elements that are consecutive in memory
// where the layout allows (VEC4_A: one vec4 load), else 4 scalar loads of
// the same elements. Untransposed: row e / ($BK/4), k quad e % ($BK/4);
// transposed: kk = e / $SA, rows 4·(e % $SA) to +3. Past the edges the value is
// 0 and the index clamped, so every load is in bounds (K, or M, a multiple
// of 4 under VEC4_A: a vec4 is wholly inside or wholly outside).
fn v7_fetch_a_$NAME(a_base: u32, tile_row: u32, k0: u32, e: u32) -> vec4<f32> {
    if (TRANS_A) {
        let kk = k0 + e / $SAu;
        let row = tile_row + 4u * (e % $SAu);
        if (VEC4_A) {
            let i = a_base + min(kk, p.k - 1u) * p.m + min(row, p.m - 4u);
            return select(vec4<f32>(0.0), a4[i / 4u], kk < p.k && row < p.m);
        }
        return vec4<f32>(
            v4_load_a(a_base, row, kk),
            v4_load_a(a_base, row + 1u, kk),
            v4_load_a(a_base, row + 2u, kk),
            v4_load_a(a_base, row + 3u, kk),
        );
    }
    let row = tile_row + e / $KQu;
    let kk = k0 + 4u * (e % $KQu);
    if (VEC4_A) {
        let i = a_base + min(row, p.m - 1u) * p.k + min(kk, p.k - 4u);
        return select(vec4<f32>(0.0), a4[i / 4u], row < p.m && kk < p.k);
    }
    return vec4<f32>(
        v4_load_a(a_base, row, kk),
        v4_load_a(a_base, row, kk + 1u),
        v4_load_a(a_base, row, kk + 2u),
        v4_load_a(a_base, row, kk + 3u),
    );
}

// Writes group `e` (from v7_fetch_a) into the A buffer starting at `buf`.
fn v7_stash_a_$NAME(buf: u32, e: u32, v: vec4<f32>) {
    if (TRANS_A) {
        let kk = e / $SAu;
        v7_a_$NAME[buf + kk * $SAu + ((e % $SAu) ^ v7_sw_$NAME(kk))] = v;
        return;
    }
    let r = e / $KQu;
    let kk = 4u * (e % $KQu);
    let q = r / 4u;
    let lane = r % 4u;
    v7_a_$NAME[buf + kk * $SAu + (q ^ v7_sw_$NAME(kk))][lane] = v.x;
    v7_a_$NAME[buf + (kk + 1u) * $SAu + (q ^ v7_sw_$NAME(kk + 1u))][lane] = v.y;
    v7_a_$NAME[buf + (kk + 2u) * $SAu + (q ^ v7_sw_$NAME(kk + 2u))][lane] = v.z;
    v7_a_$NAME[buf + (kk + 3u) * $SAu + (q ^ v7_sw_$NAME(kk + 3u))][lane] = v.w;
}

// B's group `e`: untransposed (K×N), kk = e / $SB and columns 4·(e % $SB)…;
// transposed (N×K), column e / ($BK/4) and a k quad. The ones column
// (ONES_COLUMN, col == N) reads nothing: 1 wherever k < K.
fn v7_fetch_b_$NAME(b_base: u32, tile_col: u32, k0: u32, e: u32) -> vec4<f32> {
    if (!TRANS_B) {
        let kk = k0 + e / $SBu;
        let col = tile_col + 4u * (e % $SBu);
        if (VEC4_B) {
            let i = b_base + min(kk, p.k - 1u) * p.n + min(col, p.n - 4u);
            let one = select(
                vec4<f32>(0.0),
                vec4<f32>(1.0, 0.0, 0.0, 0.0),
                ONES_COLUMN && col == p.n && kk < p.k,
            );
            return select(one, b4[i / 4u], col < p.n && kk < p.k);
        }
        return vec4<f32>(
            v4_load_b(b_base, kk, col),
            v4_load_b(b_base, kk, col + 1u),
            v4_load_b(b_base, kk, col + 2u),
            v4_load_b(b_base, kk, col + 3u),
        );
    }
    let col = tile_col + e / $KQu;
    let kk = k0 + 4u * (e % $KQu);
    if (VEC4_B) {
        let i = b_base + min(col, p.n - 1u) * p.k + min(kk, p.k - 4u);
        let one = select(vec4<f32>(0.0), vec4<f32>(1.0), ONES_COLUMN && col == p.n && kk < p.k);
        return select(one, b4[i / 4u], col < p.n && kk < p.k);
    }
    return vec4<f32>(
        v4_load_b(b_base, kk, col),
        v4_load_b(b_base, kk + 1u, col),
        v4_load_b(b_base, kk + 2u, col),
        v4_load_b(b_base, kk + 3u, col),
    );
}

fn v7_stash_b_$NAME(buf: u32, e: u32, v: vec4<f32>) {
    if (!TRANS_B) {
        let kk = e / $SBu;
        v7_b_$NAME[buf + kk * $SBu + ((e % $SBu) ^ v7_sw_$NAME(kk))] = v;
        return;
    }
    let c = e / $KQu;
    let kk = 4u * (e % $KQu);
    let q = c / 4u;
    let lane = c % 4u;
    v7_b_$NAME[buf + kk * $SBu + (q ^ v7_sw_$NAME(kk))][lane] = v.x;
    v7_b_$NAME[buf + (kk + 1u) * $SBu + (q ^ v7_sw_$NAME(kk + 1u))][lane] = v.y;
    v7_b_$NAME[buf + (kk + 2u) * $SBu + (q ^ v7_sw_$NAME(kk + 2u))][lane] = v.z;
    v7_b_$NAME[buf + (kk + 3u) * $SBu + (q ^ v7_sw_$NAME(kk + 3u))][lane] = v.w;
}

@compute @workgroup_size($WX, $WY, 1)
fn matmul_v7_$NAME(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let t = lid.y * $WXu + lid.x;
    let tile_row = wid.y * $BMu;
    let tile_col = wid.x * $BNu;
    let bz = wid.z;
    let a_base = p.a_offset + bz * p.a_batch_stride;
    let b_base = p.b_offset + bz * p.b_batch_stride;
    // This thread's vec4 slots: row group g is slot g·$WY + lid.y, column
    // group h slot h·$WX + lid.x, so neighbouring threads read neighbouring
    // slots.
//$SLOTS
//$ACCUMULATORS
    let stages = (p.k + $BKu - 1u) / $BKu;
//$FIRST_STAGE
    workgroupBarrier();
    // A uniform trip count and a uniform `more`: every thread reaches every
    // barrier, and none is in non-uniform control flow (Tint checks that).
    for (var s = 0u; s < stages; s = s + 1u) {
        let cur_a = (s % 2u) * $BUF_Au;
        let cur_b = (s % 2u) * $BUF_Bu;
        let more = s + 1u < stages;
        if (more) {
            let k0 = (s + 1u) * $BKu;
//$FETCH
        }
//$PRODUCTS
        if (more) {
            // The other buffers were last read before the previous barrier.
//$STASH
        }
        workgroupBarrier();
    }
    if (bz >= p.batch) {
        return;
    }
//$STORES
}
