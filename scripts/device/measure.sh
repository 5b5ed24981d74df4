#!/usr/bin/env bash
# The measurement run on a machine with a real GPU (NVIDIA driver + Vulkan ICD,
# PyTorch with CUDA, no Rust, no network), sized to end within ~8 minutes.
# A copy of ../shared/gpu/measure.sh extended for this crate: the per-version
# matmul table, training on both devices in one run, fused and unfused steps.
#
# Here (build and pack into .device/, which travels to the GPU machine):
#   bash scripts/device/prepare.sh
# There, from the project root:
#   bash .device/measure.sh            # MEASURE_QUICK=1 for a short rehearsal
# Logs land in $OUT (or /tmp/measure-out); a short summary is printed last.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${MEASURE_INNER:-}" != 1 ]; then
  MEASURE_INNER=1 exec bash "$here/run.sh" bash "$here/measure.sh" "$@"
fi
# NVIDIA's manifest names libGLX_nvidia.so.0, whose Vulkan entry points fail
# without an X server ("Could not get 'vkCreateInstance' via
# 'vk_icdGetInstanceProcAddr'"): point the loader at the same driver's
# headless EGL library instead (seen on an H200 container, 2026-11-30).
for egl in /usr/local/nvidia/lib64/libEGL_nvidia.so.0 /usr/lib/x86_64-linux-gnu/libEGL_nvidia.so.0; do
  if [ -e "$egl" ]; then
    mkdir -p /tmp/wgpu-train-icd
    printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$egl" \
      > /tmp/wgpu-train-icd/nvidia_egl_icd.json
    export VK_DRIVER_FILES=/tmp/wgpu-train-icd/nvidia_egl_icd.json
    break
  fi
done
out=${OUT:-/tmp/measure-out}
mkdir -p "$out"
quick=${MEASURE_QUICK:-0}
bin=$here/bin
py=${PEER_PYTHON:-python3}
summary=$out/summary.txt
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
# run LOG SECONDS CMD...: output appended to $out/LOG.log, exit status and time noted.
run() {
  local name=$1 secs=$2; shift 2
  local t0=$SECONDS
  { echo "\$ $*"; timeout "$secs" "$@"; echo "exit $?"; } >> "$out/$name.log" 2>&1
  local rc
  rc=$(tail -1 "$out/$name.log" | awk '{print $2}')
  note "$(printf '%-44s exit %-3s %4ss' "$name: $(basename "$1") ${2:-} ${3:-}" "$rc" $((SECONDS - t0)))"
}
q() { [ "$quick" = 1 ] && echo "$1" || echo "$2"; }

note "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
note "cpu: $(nproc) threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
[ -x "$bin/gpu_info" ] && run info 60 "$bin/gpu_info"
grep -m2 -i "adapter\|name" "$out/info.log" | tee -a "$summary"

# 1. Correctness on this GPU: every carried test binary (one GPU binary, one CPU binary).
if [ -d "$bin/tests" ]; then
  for t in "$bin"/tests/*; do
    [ -x "$t" ] || continue
    # The CLI tests drive `cargo run --example`: there is no cargo there.
    run tests "$(q 60 150)" "$t" --skip cli::
  done
  note "tests: $(grep -c '^test result: ok' "$out/tests.log") binaries ok, $(grep -c '^test result: FAILED' "$out/tests.log") failed; $(grep -oE '[0-9]+ passed' "$out/tests.log" | awk '{s+=$1} END {print s+0}') passed, $(grep -oE '[0-9]+ failed' "$out/tests.log" | awk '{s+=$1} END {print s+0}') failed"
fi

# 2. Every matmul version at the model shapes, 1024³ and 4096³, as a fraction
#    of the fp32 peak (H100/H200 SXM: ~67 TFLOP/s).
[ -x "$bin/gpu_vs_cpu" ] && run versions "$(q 60 120)" "$bin/gpu_vs_cpu" --versions $(q --quick --big) --peak-gflops 67000

# 2b. The latency floor (issue 23): what a dispatch, a barrier and a submit
#     cost here, and each launch of the MLP's and the linear model's step
#     (fused and unfused) against it.
[ -x "$bin/gpu_vs_cpu" ] && run latency "$(q 60 120)" "$bin/gpu_vs_cpu" --latency $(q --quick "")

# 3. Training: the main job on both devices in one run (accuracy and the GPU/CPU ratio),
#    the unfused step beside it, the linear model; JSON lines for the table.
epochs=$(q 1 10)
if [ -x "$bin/train_mlp" ]; then
  run train "$(q 60 150)" "$bin/train_mlp" --device both --epochs "$epochs" --json --quiet
  "$bin/train_mlp" --help 2>/dev/null | grep -q -- '--fused' &&
    run train "$(q 60 90)" "$bin/train_mlp" --device gpu --epochs "$epochs" --fused off --json --quiet
fi
[ -x "$bin/train_linear" ] && run train "$(q 60 90)" "$bin/train_linear" --device both --epochs "$epochs" --json --quiet

# 4. The PyTorch peer on the same GPU: eager and CUDA-graph replay.
if [ -f "$here/peers/torch_peer.py" ]; then
  run peer 120 "$py" "$here/peers/torch_peer.py" --model mlp --device cuda --epochs "$epochs"
  run peer 120 "$py" "$here/peers/torch_peer.py" --model mlp --device cuda --epochs "$epochs" --cuda-graph
  run peer 90 "$py" "$here/peers/torch_peer.py" --model linear --optimizer sgd --lr 0.1 --device cuda --epochs "$epochs"
fi

# 5. GPU vs CPU, every kernel family and a training step of each model.
[ -x "$bin/gpu_vs_cpu" ] && run gpu_vs_cpu "$(q 90 150)" "$bin/gpu_vs_cpu" $(q --quick --big) --json --peak-gflops 67000 --peak-gbps 4800

# 6. The notebook's random search (100 candidates x 50,000 x 3,073), GPU and CPU.
[ -x "$bin/strategies" ] && run strategies "$(q 60 90)" "$bin/strategies" --strategies 1 $(q --quick "")

# 7. Sweeps (issue 15): K Adam models in the same dispatches against the same K
#    one after another on the GPU and on the CPU (one epoch; K = 1, 4, 16, 64).
if [ -x "$bin/sweep" ]; then
  for k in $(q "4" "1 4 16 64"); do
    for dev in gpu gpu-sequential cpu; do
      run sweep "$(q 60 120)" "$bin/sweep" --grid "adam:0.001" --seeds "$k" --epochs 1 \
        --validation 0 --device "$dev" --quiet
    done
  done
  grep -E "^\[(gpu|gpu-sequential|cpu)\] " "$out/sweep.log" | tee -a "$summary"
fi

note "== figures"
grep -hE '^\{' "$out"/train.log "$out"/peer.log 2>/dev/null > "$out/figures.jsonl"
python3 - "$out/figures.jsonl" <<'PY' | tee -a "$summary"
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    who = d.get("peer") or "wgpu-train"
    mode = d.get("mode", d.get("device", ""))
    acc = d.get("test_accuracy", d.get("test_acc", "-"))
    sps = d.get("samples_per_sec", d.get("samples_per_s", "-"))
    disp = d.get("dispatches_per_step", "")
    print(f"{who:12} {mode:10} {d.get('model', ''):30} acc {acc}  samples/s {sps}  {'dispatches/step ' + str(disp) if disp else ''}")
PY
grep -E "^time:" "$out/strategies.log" 2>/dev/null | head -2 | tee -a "$summary"
tail -n 25 "$out/versions.log" | tee -a "$summary" >/dev/null
grep -E "^(idle|independent|chained|one submit|submits|an empty|a barrier)|whole step|dispatches; floor" "$out/latency.log" 2>/dev/null | tee -a "$summary"
