#!/usr/bin/env bash
# Sweep throughput (BENCHMARKS.md): K = 1, 4, 16, 64 Adam models of the MLP
# 784-128-128-10 (seeds 0…K−1) for one epoch over the first LIMIT Fashion-MNIST
# training images (and LIMIT test images), batch 128, on the GPU in the same
# dispatches, on the GPU one after another, and on the CPU one after another.
# Prints one line per (device, K) with the training throughput in
# models·samples/s (evaluation excluded).
#   bash scripts/bench_sweep.sh [LIMIT] [K…]
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -un)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
limit="${1:-2000}"
shift || true
ks=("${@:-1 4 16 64}")
cargo build --release --example sweep >/dev/null
for k in ${ks[@]}; do
  for device in gpu gpu-sequential cpu; do
    line=$(./target/release/examples/sweep --grid "adam:0.001" --seeds "$k" --epochs 1 \
      --limit "$limit" --validation 0 --device "$device" --quiet | grep -E "^\[$device\] ")
    echo "K=$k $line"
  done
done
