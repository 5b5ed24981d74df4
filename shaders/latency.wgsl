// The latency floor (src/latency.rs): dispatches that do next to nothing,
// so that what a chain of them costs is the price of a dispatch, and of the
// barrier wgpu puts before a dispatch whose read-write buffer an earlier one
// used. One workgroup of 64 invocations each.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Bound only by `bump`'s layout: `idle` must have no read-write binding, or
// wgpu would order it (a barrier) against the dispatch before it.
@group(0) @binding(1) var<storage, read_write> data: array<u32>;

// Adds one to each of the first `n` words. Chained on one buffer, each
// dispatch reads what the one before wrote: a read-write hazard, so wgpu
// records a barrier before it. On a buffer of its own, none.
@compute @workgroup_size(64)
fn bump(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i < p.n && i < arrayLength(&data) {
        data[i] = data[i] + 1u;
    }
}

// Reads its uniform and nothing else: the bare cost of a dispatch. Nothing
// it touches is written, so no barrier comes before it.
@compute @workgroup_size(64)
fn idle(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= p.n {
        return;
    }
}
