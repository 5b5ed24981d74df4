// v4 xent_subgroup: softmax-CE with the row's max and sum reduced across
// subgroup lanes. Assembled in front of softmax_xent.wgsl (src/shaders.rs),
// whose bindings, Params and helpers it uses, into a module of its own that
// is compiled only on devices with wgpu::Features::SUBGROUP: wgpu's naga
// rejects the subgroup builtins everywhere else (GL, the WebGPU-limits
// pass), and browsers never get here (the crate does not request the
// feature on wasm). No `enable subgroups;`: the WGSL standard wants it, but
// naga 30 rejects it as "not yet supported" (gfx-rs/wgpu#5555) and gates
// the builtins on the device feature instead.
//
// Determinism: the result must not depend on the subgroup size, which only
// the driver knows (the `subgroup_size` builtin; 4 to 128, and on some GPUs
// it differs between pipelines of one device). So a row is owned by a
// fixed quad of 4 lanes, 4 being the least subgroup size any adapter may
// have (WebGPU's and wgpu's MINIMUM_SUBGROUP_MIN_SIZE), whatever the
// subgroup size is:
//   - lane l of a quad walks the row's columns l, l + 4, l + 8, … in order;
//   - the quad is combined by a butterfly, subgroupShuffleXor with 1 then
//     2: lane l adds lane l ^ 1's value, then lane l ^ 2's. Float addition
//     is commutative (a + b and b + a are the same bits), so after the
//     butterfly every lane holds (p0 + p1) + (p2 + p3), one fixed tree.
// A quad is 4 consecutive lanes of the logical index
// t = subgroup_id · subgroup_size + subgroup_invocation_id, and since every
// subgroup size is a multiple of 4, the lanes t ^ 1 and t ^ 2 are always in
// t's subgroup: the order depends on neither the size nor how the driver
// lays lanes out. subgroupAdd is not used: its order is the driver's.
// The max and argmax are exact (no rounding), ties to the lowest index, so
// their combination order cannot change them at all.
//
// Rows past N still run (on row N − 1, writing nothing), so every lane of a
// subgroup reaches every shuffle: uniform control flow, as subgroup
// operations require.

const QUAD: u32 = 4u;
const QUAD_ROWS: u32 = 16u; // 64 threads / 4 lanes per row

@compute @workgroup_size(64, 1, 1)
fn xent_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
) {
    zb = wid.z;
    let t = sg_id * sg_size + sg_lane;
    let lane = t % QUAD;
    let wanted = group_index(wid, groups) * QUAD_ROWS + t / QUAD;
    let in_range = wanted < p.n;
    let row = min(wanted, p.n - 1u);
    let base = logits_base() + row * p.c;

    // Lanes with no column of their own (C < 4) start from column 0: a real
    // value, no sentinel.
    var m = logits[base];
    var argmax = 0u;
    for (var j = lane; j < p.c; j = j + QUAD) {
        let x = logits[base + j];
        if (x > m) {
            m = x;
            argmax = j;
        }
    }
    for (var o = 1u; o < QUAD; o = o * 2u) {
        let other = subgroupShuffleXor(m, o);
        let other_arg = subgroupShuffleXor(argmax, o);
        if (other > m || (other == m && other_arg < argmax)) {
            m = other;
            argmax = other_arg;
        }
    }

    var s = 0.0;
    for (var j = lane; j < p.c; j = j + QUAD) {
        s = s + exp(logits[base + j] - m);
    }
    for (var o = 1u; o < QUAD; o = o * 2u) {
        s = s + subgroupShuffleXor(s, o);
    }

    let label = label_of(row);
    if (in_range && lane == 0u) {
        write_row(row, label, m, s, argmax);
    }
    if (in_range && WRITE_GRAD) {
        let out = dlogits_base() + row * p.c;
        for (var j = lane; j < p.c; j = j + QUAD) {
            dlogits[out + j] = grad(logits[base + j], m, s, j == label);
        }
    }
}

