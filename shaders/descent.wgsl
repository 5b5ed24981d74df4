// Gradient descent on a function of one or two variables from many starts
// at once (the course's notebook 003): one thread per start runs every step
// in one dispatch, with the notebook's centred differences
// (f(x+h) − f(x−h)) / 2h for the derivative, and writes its whole path
// (the start, then the point after each step) so that paths can be drawn.
//
//   descent_1d: f(x) = (x − 1)²
//   descent_2d: f(x, y) = x⁴ + y⁴ − 2(x − y)², x stepped first, then y from
//               the new x (the notebook's order)
//
// Each thread reads only its start and writes only its own path, so there
// are no reductions and the result is the same whatever the scheduling.
// The CPU twin is src/cpu/descent.rs (same operations in the same order).

struct Params {
    starts: u32,
    steps: u32,
    gamma: f32,
    h: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// starts × dims values, one start after another.
@group(0) @binding(1) var<storage, read> start: array<f32>;
// starts × (steps + 1) × dims values: start s's path at s·(steps+1)·dims.
@group(0) @binding(2) var<storage, read_write> path: array<f32>;

fn f1(x: f32) -> f32 {
    let d = x - 1.0;
    return d * d;
}

fn f2(x: f32, y: f32) -> f32 {
    let xx = x * x;
    let yy = y * y;
    let d = x - y;
    return xx * xx + yy * yy - 2.0 * (d * d);
}

fn thread_index(lid: u32, wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wid.y * groups.x + wid.x) * 64u + lid;
}

@compute @workgroup_size(64, 1, 1)
fn descent_1d(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let s = thread_index(lid, wid, groups);
    if (s >= p.starts) {
        return;
    }
    let base = s * (p.steps + 1u);
    var x = start[s];
    path[base] = x;
    for (var k = 1u; k <= p.steps; k++) {
        let d = (f1(x + p.h) - f1(x - p.h)) / (2.0 * p.h);
        x = x - p.gamma * d;
        path[base + k] = x;
    }
}

@compute @workgroup_size(64, 1, 1)
fn descent_2d(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let s = thread_index(lid, wid, groups);
    if (s >= p.starts) {
        return;
    }
    let base = 2u * s * (p.steps + 1u);
    var x = start[2u * s];
    var y = start[2u * s + 1u];
    path[base] = x;
    path[base + 1u] = y;
    for (var k = 1u; k <= p.steps; k++) {
        let dx = (f2(x + p.h, y) - f2(x - p.h, y)) / (2.0 * p.h);
        x = x - p.gamma * dx;
        let dy = (f2(x, y + p.h) - f2(x, y - p.h)) / (2.0 * p.h);
        y = y - p.gamma * dy;
        path[base + 2u * k] = x;
        path[base + 2u * k + 1u] = y;
    }
}
