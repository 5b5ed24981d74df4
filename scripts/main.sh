#!/usr/bin/env bash
# The main job. Until the training example lands, this is the GPU-vs-CPU
# matmul demo on the shapes the models need. Extra arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_all

cargo run --release --quiet --example matmul_demo -- "$@"
