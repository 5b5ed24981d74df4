// Every layer's weight and bias gradients in one dispatch (D3 of issue 23),
// and the batch's loss and correct totals:
//
//   [dW_l | db_l] = dZ_lᵀ · [H_l | 1]     for every layer l
//
// dZ_l (rows × outs) is the layer's delta and H_l (rows × ins) what it read:
// the minibatch rows `x` for the first layer, else a tensor in the arena the
// row block (row_step.wgsl) wrote, as the deltas are. The grid's workgroups
// are tiles across the layers: layer l owns workgroups first_tile(l) … and
// lays them out over its outs × (ins + 1) outputs, 32×32 a tile; the last
// workgroup adds the batch's loss and correct count to the epoch's totals.
//
// Each tile is matmul.wgsl's v2 with the ONES_COLUMN epilogue (4×4 outputs
// per thread from registers, summed over the rows in increasing order, the
// bias gradient as the virtual ones column): the same arithmetic, the same
// bits as the per-layer WeightGrad products it replaces. The totals are
// softmax_xent.wgsl's v3 sums (256 lanes striding over the rows, then a
// fixed tree), the same bits as that kernel's.
//
// After its tile, each workgroup calls `after_tile`, which the launcher
// appends: nothing (`weight_step`), or the optimizer's update of the tile's
// elements (weight_step_update.wgsl), which makes the update part of this
// dispatch: three dispatches a step in all.

const MAX_LAYERS: u32 = 7u;
const WG_X: u32 = 8u;
const WG_Y: u32 = 8u;
const TILE: u32 = 32u; // 4·WG_X outputs a side
const LANES: u32 = 256u;

struct Params {
    rows: u32,
    layers: u32,
    tiles: u32,          // the layers' tiles in all; the totals' workgroup follows
    loss_offset: u32,
    correct_offset: u32,
    total_offset: u32,
    count_offset: u32,
    _pad0: u32,
    // Per layer, two vec4s: (ins, outs, h_in_x, h_offset), (dz_offset,
    // dw_offset, db_offset, first_tile).
    layer: array<vec4<u32>, 14>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> arena: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;
@group(0) @binding(4) var<storage, read> loss: array<f32>;
@group(0) @binding(5) var<storage, read> correct: array<u32>;
@group(0) @binding(6) var<storage, read_write> loss_total: array<f32>;
@group(0) @binding(7) var<storage, read_write> correct_total: array<u32>;

var<workgroup> part_loss: array<f32, LANES>;
var<workgroup> part_count: array<u32, LANES>;

const OFFS: vec4<u32> = vec4<u32>(0u, 1u, 2u, 3u);

// The 4×4 block of [dW | db] at (row0, col0) of a layer.
fn tile(a: vec4<u32>, b: vec4<u32>, row0: u32, col0: u32) {
    let ins = a.x;
    let outs = a.y;
    let in_x = a.z == 1u;
    let n = ins + 1u;
    if (row0 >= outs || col0 >= n) {
        return;
    }
    let rows = min(vec4<u32>(row0) + OFFS, vec4<u32>(outs - 1u));
    let cols = min(vec4<u32>(col0) + OFFS, vec4<u32>(n - 1u));
    let ones = cols == vec4<u32>(ins);
    let a_base = b.x + rows;
    let b_base = a.w + min(cols, vec4<u32>(ins - 1u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // The same loop twice, one per source of H: a branch per load would
    // cost every k step (lavapipe runs both sides).
    if (in_x) {
        for (var kk = 0u; kk < p.rows; kk = kk + 1u) {
            let ai = a_base + kk * outs;
            let bi = b_base + kk * ins;
            let av = vec4<f32>(arena[ai.x], arena[ai.y], arena[ai.z], arena[ai.w]);
            var bv = vec4<f32>(x[bi.x], x[bi.y], x[bi.z], x[bi.w]);
            bv = select(bv, vec4<f32>(1.0), ones);
            acc0 = acc0 + av.x * bv;
            acc1 = acc1 + av.y * bv;
            acc2 = acc2 + av.z * bv;
            acc3 = acc3 + av.w * bv;
        }
    } else {
        for (var kk = 0u; kk < p.rows; kk = kk + 1u) {
            let ai = a_base + kk * outs;
            let bi = b_base + kk * ins;
            let av = vec4<f32>(arena[ai.x], arena[ai.y], arena[ai.z], arena[ai.w]);
            var bv = vec4<f32>(arena[bi.x], arena[bi.y], arena[bi.z], arena[bi.w]);
            bv = select(bv, vec4<f32>(1.0), ones);
            acc0 = acc0 + av.x * bv;
            acc1 = acc1 + av.y * bv;
            acc2 = acc2 + av.z * bv;
            acc3 = acc3 + av.w * bv;
        }
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + i;
        if (row < outs) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                let col = col0 + j;
                if (col < ins) {
                    grads[b.y + row * ins + col] = accs[i][j];
                } else if (col == ins) {
                    grads[b.z + row] = accs[i][j];
                }
            }
        }
    }
}

// softmax_xent.wgsl's xent_totals sums, 64 threads standing in for its 256.
fn totals(lid: u32) {
    for (var lane = lid; lane < LANES; lane = lane + WG_X * WG_Y) {
        var total = 0.0;
        var n = 0u;
        for (var row = lane; row < p.rows; row = row + LANES) {
            total = total + loss[p.loss_offset + row];
            n = n + correct[p.correct_offset + row];
        }
        part_loss[lane] = total;
        part_count[lane] = n;
    }
    workgroupBarrier();
    for (var half = LANES / 2u; half > 0u; half = half / 2u) {
        for (var lane = lid; lane < half; lane = lane + WG_X * WG_Y) {
            part_loss[lane] = part_loss[lane] + part_loss[lane + half];
            part_count[lane] = part_count[lane] + part_count[lane + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        loss_total[p.total_offset] = loss_total[p.total_offset] + part_loss[0];
        correct_total[p.count_offset] = correct_total[p.count_offset] + part_count[0];
    }
}

@compute @workgroup_size(8, 8, 1)
fn weight_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) index: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let g = wid.y * groups.x + wid.x;
    // Uniform across the workgroup, so the totals' barriers are too.
    if (g == p.tiles) {
        totals(index);
        return;
    }
    if (g > p.tiles) {
        return;
    }
    var l = 0u;
    for (var i = 1u; i < p.layers; i = i + 1u) {
        if (g >= p.layer[2u * i + 1u].w) {
            l = i;
        }
    }
    let a = p.layer[2u * l];
    let b = p.layer[2u * l + 1u];
    let t = g - b.w;
    let tiles_x = (a.x + 1u + TILE - 1u) / TILE;
    let row0 = ((t / tiles_x) * WG_Y + lid.y) * 4u;
    let col0 = ((t % tiles_x) * WG_X + lid.x) * 4u;
    tile(a, b, row0, col0);
    after_tile(a, b, (t / tiles_x) * TILE, (t % tiles_x) * TILE, index);
}
