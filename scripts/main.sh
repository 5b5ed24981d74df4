#!/usr/bin/env bash
# The main job: train the MLP 784-128-128-10 on Fashion-MNIST on the GPU,
# then on the CPU, and print accuracy, throughput and their speed ratio.
# Installs a Vulkan driver and the dataset when missing. Extra arguments go
# to the example (e.g. --epochs 3, --device gpu, --json, --plot curves.svg).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_all
ensure_fashion_mnist

# The first run compiles wgpu in release mode: say so rather than sit silent.
if [ ! -x target/release/examples/train_mlp ]; then
    echo "setup: building the release binary (a few minutes on a small machine, once)"
fi
# On a machine without a GPU the "GPU" run uses Mesa's lavapipe, on the CPU
# cores: the binary says so before that run, with how to pick --device cpu.
cargo run --release --quiet --example train_mlp -- "$@"
