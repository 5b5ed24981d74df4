#!/usr/bin/env bash
# The full test suite: installs a Vulkan driver if none is present, prints the
# adapter the GPU tests will run on, then runs every test. GPU tests never
# skip: without an adapter they fail and say how to install one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_all
ensure_fashion_mnist
# spirv-val and glslangValidator check every shader through naga's writers.
ensure_shader_tools

echo "== adapter"
cargo run --quiet --example gpu_info
echo "== tests"
cargo test "$@"
