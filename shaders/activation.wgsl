// Activation backward from the stored activations h = act(z):
//
//   sigmoid:  dz = dh · h(1 − h)
//   ReLU:     dz = dh · [h > 0]      (h > 0 exactly when z > 0; 0 at z = 0)
//   identity: dz = dh
//
// The forward pass is a matmul epilogue and keeps only h, so the derivative is
// written in terms of h. One element per thread over a flat range; the shape
// does not matter. When the bias gradient is wanted too, reduce.wgsl's
// column_sum does this same product in the pass that sums the columns, saving
// a read of dz; this kernel is the plain version, for layers without a bias
// and as the reference for the fused one.

struct Params {
    len: u32,
    dh_offset: u32,
    h_offset: u32,
    dz_offset: u32,
}

override ACTIVATION: u32 = 0u; // 0 identity, 1 sigmoid, 2 ReLU (ops::Activation)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dh: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;

// activation_grad(g, y) is appended from shaders/shared/activation_grad.wgsl.

@compute @workgroup_size(256, 1, 1)
fn activation_backward(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = (wid.y * groups.x + wid.x) * 256u + lid;
    if (i >= p.len) {
        return;
    }
    dz[p.dz_offset + i] = activation_grad(dh[p.dh_offset + i], h[p.h_offset + i]);
}
