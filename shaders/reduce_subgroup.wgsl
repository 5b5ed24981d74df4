// v3 column_sum_subgroup: column sums (and the fused activation backward)
// with each column's rows split among 4 lanes and the lanes combined by
// subgroup shuffles instead of a tree in workgroup memory with barriers.
// Assembled in front of reduce.wgsl (src/shaders.rs), whose bindings,
// Params and column_term it uses, into a module compiled only on devices
// with wgpu::Features::SUBGROUP.
//
// The order is fixed by the shape alone, not by the subgroup size (the
// reasoning is softmax_xent_subgroup.wgsl's): lane l of a column's quad adds
// rows l, l + 4, l + 8, … in order, then the butterfly (shuffle-xor 1, then
// 2) leaves (a0 + a1) + (a2 + a3) in every lane. tests/gpu/reduce_subgroup.rs
// checks those exact bits against the same order on the CPU.
//
// Threads past the last column add nothing but still reach the shuffles.

const COL_LANES: u32 = 4u;
const SUBGROUP_COLS: u32 = 16u; // 64 threads / 4 lanes per column

@compute @workgroup_size(64, 1, 1)
fn column_sum_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
) {
    zb = wid.z;
    let t = sg_id * sg_size + sg_lane;
    let lane = t % COL_LANES;
    let col = (wid.y * groups.x + wid.x) * SUBGROUP_COLS + t / COL_LANES;
    let in_range = col < p.cols;
    var acc = 0.0;
    if (in_range) {
        for (var r = lane; r < p.rows; r = r + COL_LANES) {
            acc = acc + column_term(r * p.cols + col);
        }
    }
    for (var o = 1u; o < COL_LANES; o = o * 2u) {
        acc = acc + subgroupShuffleXor(acc, o);
    }
    if (in_range && lane == 0u) {
        sums[p.sums_offset + zb * p.sums_batch_stride + col] = acc;
    }
}

