#!/usr/bin/env bash
# Builds in release and packs .device/ for a run on a machine with a real GPU
# (see ../shared/gpu/README.md), with this crate's measure.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${SHARED:-../shared}
cargo build --release --examples
cargo test --release --no-run
bash "$shared/gpu/prepare.sh" --tests --data --peers \
  target/release/examples/{gpu_info,gpu_vs_cpu,train_mlp,train_linear,strategies,second_order,sweep}
cp scripts/device/measure.sh .device/measure.sh
chmod +x .device/measure.sh
