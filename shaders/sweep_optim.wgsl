// The optimizer updates of K models in one dispatch (a sweep, src/train/
// sweep/): models that share a rule and its variant (one pipeline) but not
// their hyperparameters, learning rate or step count.
//
// The models' parameters lie one after another, `per_model` elements each,
// from h.param_offset on (the same in every model's Hyper: the group's first
// element), their gradients likewise, their state buffers s1–s3 hold
// `models × per_model` elements. Workgroup row z of the grid is model z: its
// threads copy its Hyper and this update's StepScalars (planned by the host
// with StepScalars::advance, as optim.wgsl's v2) into the private `h` and
// `st` once, then update its elements z·per_model + j, j < per_model: the formulas are optim.wgsl's own text
// (shaders/shared/optim_rules.wgsl), so each model's update has the bits of
// a one-model update with its hyperparameters.
//
// Per model, a grid-stride loop over its `per_model` elements, folded into
// 2-D past 65,535 workgroups, as in optim.wgsl; the models along z.

struct Sweep {
    models: u32,     // models in this dispatch (the grid's z)
    per_model: u32,  // parameters per model
    row: u32,        // threads per grid row
    threads: u32,    // threads per model: the stride of each thread's loop
}


@group(0) @binding(0) var<uniform> sw: Sweep;
@group(0) @binding(1) var<storage, read> hypers: array<Hyper>;
@group(0) @binding(2) var<storage, read_write> steps: array<StepScalars>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> s1: array<f32>;
@group(0) @binding(6) var<storage, read_write> s2: array<f32>;
@group(0) @binding(7) var<storage, read_write> s3: array<f32>;

// What the formulas read: model m's hyperparameters and step scalars.
var<private> h: Hyper;
var<private> st: StepScalars;

fn load_model(m: u32) {
    h = hypers[m];
    st = steps[m];
}

fn first(gid: vec3<u32>) -> u32 {
    return gid.y * sw.row + gid.x;
}

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_model(gid.z);
    let base = gid.z * sw.per_model;
    for (var j = first(gid); j < sw.per_model; j = j + sw.threads) {
        sgd_at(base + j);
    }
}

@compute @workgroup_size(256)
fn adagrad(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_model(gid.z);
    let base = gid.z * sw.per_model;
    for (var j = first(gid); j < sw.per_model; j = j + sw.threads) {
        adagrad_at(base + j);
    }
}

@compute @workgroup_size(256)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_model(gid.z);
    let base = gid.z * sw.per_model;
    for (var j = first(gid); j < sw.per_model; j = j + sw.threads) {
        rmsprop_at(base + j);
    }
}

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_model(gid.z);
    let base = gid.z * sw.per_model;
    for (var j = first(gid); j < sw.per_model; j = j + sw.threads) {
        adam_at(base + j);
    }
}
