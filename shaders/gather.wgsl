// Minibatch gather: builds the f32 input rows and u32 labels of one training
// step from the dataset resident on the GPU as packed bytes.
//
//   x[row, c] = byte(order[start + row], c) * scale + shift    (c < dim)
//   x[row, dim] = 1                                            (append_one)
//   y[row]    = label(order[start + row])
//
// Images are stored four pixels per u32 (little-endian), each example padded
// to a whole number of words, split into chunks that each fit one storage
// binding. One dispatch per chunk writes the rows whose example lives in that
// chunk, so a 153.6 MB CIFAR-10 train set works under a 128 MiB binding limit.
// One thread per (row, word): four pixels.
//
// Per-step values (start, rows) come from a uniform slot chosen by dynamic
// offset, so a whole epoch of gathers is recorded without a CPU round trip;
// only the permutation in `order` changes between epochs.

struct Params {
    start: u32,        // first position in `order` for this step
    rows: u32,         // examples in this step (the last step may be short)
    dim: u32,          // pixels per example
    stride_words: u32, // u32 words per example in `images`
    chunk_first: u32,  // first example held by the bound chunk
    chunk_len: u32,    // examples held by the bound chunk
    out_stride: u32,   // f32 values per row of x (dim, or dim + 1)
    append_one: u32,   // 1: write the bias-trick column x[row, dim] = 1
    x_offset: u32,
    y_offset: u32,
    scale: f32,        // 1 / (255 · std)
    shift: f32,        // −mean / std
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> images: array<u32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;

const WG: u32 = 64u;

@compute @workgroup_size(64, 1, 1)
fn gather(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // Large batches are dispatched as a 2-D grid (65,535 workgroups per
    // dimension at most); recover the linear thread index.
    let t = gid.y * groups.x * WG + gid.x;
    let row = t / p.stride_words;
    let w = t % p.stride_words;
    if (row >= p.rows) {
        return;
    }
    let ex = order[p.start + row];
    if (ex < p.chunk_first || ex - p.chunk_first >= p.chunk_len) {
        return; // another chunk's dispatch writes this row
    }
    let word = images[(ex - p.chunk_first) * p.stride_words + w];
    let out = p.x_offset + row * p.out_stride;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let col = w * 4u + j;
        if (col < p.dim) {
            let byte = (word >> (8u * j)) & 0xffu;
            x[out + col] = f32(byte) * p.scale + p.shift;
        }
    }
    if (w == 0u) {
        y[p.y_offset + row] = labels[ex];
        if (p.append_one == 1u) {
            x[out + p.dim] = 1.0;
        }
    }
}
