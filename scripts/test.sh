#!/usr/bin/env bash
# The full test suite: installs what is missing (a Vulkan driver, on Linux
# Mesa's EGL/GL driver, the SPIR-V and GLSL validators, Fashion-MNIST),
# then runs every test on the default backend (Vulkan, Metal or DX12), and
# on Linux runs the GPU tests again on wgpu's GL backend and once more with
# the device limits capped at WebGPU's defaults. GPU tests never skip: without
# an adapter they fail and say how to install one. Extra arguments go to
# every `cargo test` (e.g. a filter, or `-- --nocapture`). With WGPU_BACKEND
# set, only that backend runs. On Linux it ends with the browser tests
# (scripts/browser_test.sh: wasm32 + WebGPU in headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_all
ensure_fashion_mnist
# spirv-val and glslangValidator check every shader through naga's writers.
ensure_shader_tools

pass() {
    local name="$1"
    shift
    local start=$SECONDS
    echo "== adapter ($name)"
    env "$@" cargo run --quiet --example gpu_info
    echo "== tests ($name)"
    env "$@" cargo test "${cargo_args[@]}"
    echo "== $name: $((SECONDS - start)) s"
}

cargo_args=("$@")
if [ -n "${WGPU_BACKEND:-}" ] || [ "$(uname -s)" != Linux ]; then
    pass "${WGPU_BACKEND:-default backend}"
    exit 0
fi

ensure_gl
pass "default backend"
# The second backend and the capped limits run the GPU tests again (one
# binary, tests/gpu); the CPU-only tests would only repeat themselves.
cargo_args=(--test gpu "$@")
pass "GL (EGL, surfaceless)" WGPU_BACKEND=gl
# WGPU_TRAIN_CHECKED=1 rides on this pass rather than a pass of its own (CI
# time matters): the two passes above build the trusted kernels without
# wgpu's runtime checks and workgroup zeroing (src/kernels/mod.rs), this one
# with them everywhere, so both ways are tested.
pass "WebGPU default limits, runtime checks on" WGPU_TRAIN_LIMITS=webgpu WGPU_TRAIN_CHECKED=1
# The same kernels in headless Chromium (WebGPU, wasm32): scripts/browser_test.sh.
echo "== browser (wasm32 + WebGPU in headless Chromium)"
start=$SECONDS
bash scripts/browser_test.sh
echo "== browser: $((SECONDS - start)) s"
