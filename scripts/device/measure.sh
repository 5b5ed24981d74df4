#!/usr/bin/env bash
# The measurement run on a machine with a real GPU (NVIDIA driver + Vulkan
# ICD, PyTorch with CUDA, no Rust, no network), sized to end within ~8
# minutes; MEASURE_QUICK=1 is the short rehearsal (a few minutes on lavapipe).
#
# Here (build and pack into .device/, which travels to the GPU machine):
#   bash scripts/device/prepare.sh
# There, from the project root:
#   bash .device/measure.sh
# Rehearsal here, on lavapipe without CUDA (the peers then run on the CPU):
#   MEASURE_QUICK=1 OUT=/tmp/m bash .device/measure.sh
#
# Logs land in $OUT (or /tmp/measure-out), one per step; every JSON line of
# ours and of the peers in figures.jsonl; the summary (summary.txt) is
# printed last: the latency floor, the matmul versions beside torch.mm, the
# training runs (ours: fused on / layers / off and both devices; the peers:
# eager, CUDA graph, torch.compile), and the sweep at K = 1 and 64 beside
# the vmap peer. PEER_PYTHON picks the Python that has torch (default python3).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${MEASURE_INNER:-}" != 1 ]; then
    MEASURE_INNER=1 exec bash "$here/run.sh" bash "$here/measure.sh" "$@"
fi
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
    local what="$(basename "$1") ${*:2}"
    note "$(printf '%-12s exit %-3s %4ss  %.90s' "$name" "$rc" $((SECONDS - t0)) "$what")"
}
q() { [ "$quick" = 1 ] && echo "$1" || echo "$2"; }
have() { [ -x "$bin/$1" ] || { note "skipped: $1 was not carried"; return 1; }; }

gpu_name=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
note "== $(date -u +%FT%TZ) ${gpu_name:-no nvidia-smi (no NVIDIA GPU here)}$( [ "$quick" = 1 ] && echo ' [MEASURE_QUICK]')"
note "cpu: $(nproc) threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
have gpu_info && run info 60 "$bin/gpu_info"
grep -m2 -i "adapter\|name" "$out/info.log" 2>/dev/null | tee -a "$summary"

# A rehearsal trains on the first 2,000 training and 1,000 test images
# (ours and the peers alike), written as IDX files beside the logs.
if [ "$quick" = 1 ]; then
    src=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
    if python3 - "$src" "$out/data-quick" <<'PY'
import gzip, os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for name, n in (("train-images-idx3-ubyte.gz", 2000), ("train-labels-idx1-ubyte.gz", 2000),
                ("t10k-images-idx3-ubyte.gz", 1000), ("t10k-labels-idx1-ubyte.gz", 1000)):
    raw = gzip.open(os.path.join(src, name)).read()
    ndim = raw[3]
    dims = list(struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim]))
    per = 1
    for d in dims[1:]:
        per *= d
    head = raw[:4] + struct.pack(">" + "I" * ndim, n, *dims[1:])
    with gzip.open(os.path.join(dst, name), "wb") as f:
        f.write(head + raw[4 + 4 * ndim:4 + 4 * ndim + n * per])
PY
    then
        export FASHION_MNIST_DIR=$out/data-quick
        note "rehearsal data: the first 2,000 training and 1,000 test images of $src"
    else
        note "rehearsal data: could not cut $src; the full set it is"
    fi
fi

# The peers' device: CUDA where this Python's torch sees it, else the CPU
# (2 threads in a rehearsal, as the CPU figures of BENCHMARKS.md), else none.
peer_dev=""
if ! "$py" -c 'import torch' >/dev/null 2>&1; then
    note "peers: skipped: $py has no torch (set PEER_PYTHON, or: bash peers/setup.sh)"
elif "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    peer_dev=cuda
    note "peers: on CUDA ($("$py" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'))"
else
    peer_dev=cpu
    note "peers: on the CPU: this torch sees no CUDA device ($("$py" -c 'import torch; print("torch", torch.__version__)'))"
fi
peer=("$py" "$here/peers/torch_peer.py" --device "$peer_dev")
[ "$peer_dev" = cpu ] && [ "$quick" = 1 ] && peer+=(--threads 2)

# 1. Correctness on this GPU: every carried test binary.
if [ -d "$bin/tests" ]; then
    for t in "$bin"/tests/*; do
        [ -x "$t" ] || continue
        # The CLI tests drive `cargo run --example`: there is no cargo there.
        # A rehearsal runs one family (softmax_xent) of each binary, to see them run.
        run tests "$(q 120 240)" "$t" $(q softmax_xent "") --skip cli::
    done
    note "tests: $(grep -c '^test result: ok' "$out/tests.log") binaries ok, $(grep -c '^test result: FAILED' "$out/tests.log") failed; $(grep -oE '[0-9]+ passed' "$out/tests.log" | awk '{s+=$1} END {print s+0}') passed, $(grep -oE '[0-9]+ failed' "$out/tests.log" | awk '{s+=$1} END {print s+0}') failed"
fi

# 2. The latency floor: a dispatch, a barrier, a submit, and each launch of
#    the models' steps against it.
have gpu_vs_cpu && run latency "$(q 60 120)" "$bin/gpu_vs_cpu" --latency $(q --quick "")

# 3. Every matmul version at the model shapes, 1024³ and 4096³, as a
#    fraction of the fp32 peak (H100/H200 SXM: ~67 TFLOP/s); torch.mm at the
#    same shapes.
have gpu_vs_cpu && run versions "$(q 90 150)" "$bin/gpu_vs_cpu" --versions --json $(q --quick --big) --peak-gflops 67000
have gpu_vs_cpu && run matmul "$(q 90 150)" "$bin/gpu_vs_cpu" --filter matmul --json $(q --quick --big) --peak-gflops 67000
# The training steps side by side (mlp: layers, unfused, rows = 3 dispatches,
# rows-apart = 4; the linear model fused and not), each beside the CPU.
have gpu_vs_cpu && run steps "$(q 60 120)" "$bin/gpu_vs_cpu" --filter train_step --json $(q --quick "")
[ -n "$peer_dev" ] && run peer_mm "$(q 90 150)" "${peer[@]}" --model mm $(q --quick "") --peak-gflops 67000

# 4. Training, 10 epochs (1 in a rehearsal): the main job on both devices,
#    the GPU step every way (on: 3 dispatches, on-update-apart: 4, layers: 8,
#    off: 16, auto: timed here), the linear model; the peers beside them.
epochs=$(q 1 10)
if have train_mlp; then
    run train "$(q 120 150)" "$bin/train_mlp" --device both --epochs "$epochs" --json --quiet
    for fused in on on-update-apart layers off auto; do
        run train "$(q 90 90)" "$bin/train_mlp" --device gpu --fused "$fused" --epochs "$epochs" --json --quiet
    done
fi
have train_linear && run train "$(q 90 90)" "$bin/train_linear" --device both --epochs "$epochs" --json --quiet
if [ -n "$peer_dev" ]; then
    run peer "$(q 60 120)" "${peer[@]}" --model mlp --epochs "$epochs"
    if [ "$peer_dev" = cuda ]; then
        run peer 120 "${peer[@]}" --model mlp --epochs "$epochs" --cuda-graph
    else
        note "peer: --cuda-graph skipped: no CUDA here"
    fi
    # torch.compile needs a C++ compiler (inductor) and minutes on the first run.
    run peer "$(q 240 180)" "${peer[@]}" --model mlp --epochs "$epochs" --compile
    run peer "$(q 60 90)" "${peer[@]}" --model linear --optimizer sgd --lr 0.1 --epochs "$epochs"
fi

# 5. Sweeps: K Adam models of the MLP in the same dispatches, against the
#    same K one after another on the CPU, over the first LIMIT images (one
#    epoch; the test pass is not in the throughput); the vmap peer beside it.
limit=$(q 1000 10000)
for k in 1 $(q 8 64); do
    if have sweep; then
        for dev in gpu cpu; do
            run sweep "$(q 90 120)" "$bin/sweep" --grid "adam:0.001" --seeds "$k" --epochs 1 --limit "$limit" \
                --validation 0 --device "$dev" --json
        done
    fi
    [ -n "$peer_dev" ] && run peer_many "$(q 90 120)" "${peer[@]}" --model many --models "$k" --epochs 1 --limit "$limit"
done

note "== figures"
cat "$out"/*.log 2>/dev/null | grep -E '^\{' > "$out/figures.jsonl"
python3 - "$out/figures.jsonl" <<'PY' | tee -a "$summary"
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        rows.append(json.loads(line))
    except ValueError:
        pass
who = lambda d: d.get("peer", "wgpu-train")
# Training runs: ours (RunSummary) and the peers' (the same keys).
train = [d for d in rows if "samples_per_sec" in d]
if train:
    print(f"{'who':18} {'mode':11} {'device':6} {'model':28} {'epochs':>6} {'test acc':>8} {'samples/s':>10} {'disp/step':>9}")
for d in train:
    # Ours: fused or not; the dispatches per step tell on (3), on-update-apart (4) and layers (8).
    mode = d.get("mode") or ("fused" if d.get("fused") else "unfused")
    acc = d.get("test_accuracy")
    print(f"{who(d):18} {mode[:11]:11} {d.get('device', ''):6} {d.get('model', ''):28} {d.get('epochs', ''):>6} "
          f"{acc if acc is None else round(acc, 4)!s:>8} {d.get('samples_per_sec', 0):>10.0f} {d.get('dispatches_per_step') or '':>9}")
# Matmul: our fastest version and what auto picks, beside torch.mm.
ours = {d["name"]: d for d in rows if d.get("family") == "matmul" and "times" in d}
torch_mm = {d["name"]: d for d in rows if d.get("family") == "matmul" and "peer" in d}
if ours or torch_mm:
    print(f"\n{'matmul case':20} {'shape':28} {'ours best ms':>12} {'GFLOP/s':>9} {'version':>8} {'torch.mm ms':>11} {'GFLOP/s':>9} {'torch/ours':>10}")
for name in list(dict.fromkeys(list(ours) + list(torch_mm))):
    o, t = ours.get(name), torch_mm.get(name)
    best = None
    if o:
        times = [(v, s) for v, s in o.get("times", []) if s]
        if times:
            best = min(times, key=lambda x: x[1])
    ts = None
    if t:
        ts = (t.get("gpu") or t.get("cpu") or {}).get("seconds")
    flops = (o or t).get("flops", 0)
    detail = (o or t).get("detail", "")
    c = lambda s: f"{s * 1e3:12.4f} {flops / s / 1e9:9.1f}" if s else f"{'-':>12} {'-':>9}"
    ratio = f"{best[1] / ts:10.2f}" if best and ts else f"{'-':>10}"
    print(f"{name:20} {detail[:28]:28} {c(best[1] if best else None)} {best[0] if best else '-':>8} {c(ts)[1:]} {ratio}")
# Sweeps: models·samples/s. Ours and the peer print one line per model, each
# carrying the run's throughput: one run is the lines with the same figure.
sweeps = {}
for d in rows:
    if "models_samples_per_sec" in d:
        key = (f"{who(d)} {d.get('mode', '')}".strip(), d.get("device"), d["models_samples_per_sec"])
        sweeps[key] = sweeps.get(key, 0) + 1
if sweeps:
    print(f"\n{'sweep (1 epoch, adam 1e-3)':30} {'device':6} {'K':>4} {'models·samples/s':>17}")
for (w, dev, tput), k in sweeps.items():
    print(f"{w:30} {dev:6} {k:>4} {tput:>17.0f}")
# The peers' lines must carry every key ours carry for the same work.
kinds = {"training (RunSummary)": lambda d: "samples_per_sec" in d,
         "sweep": lambda d: "models_samples_per_sec" in d,
         "matmul rows": lambda d: d.get("family") == "matmul" and "times" not in d}
for kind, pick in kinds.items():
    o = [set(d) for d in rows if pick(d) and "peer" not in d]
    p = [set(d) for d in rows if pick(d) and "peer" in d]
    if kind == "matmul rows":  # ours: gpu_vs_cpu's Comparison rows, when that ran with --json
        o = [set(d) for d in rows if "gpu_speedup" in d and "peer" not in d]
    if not o or not p:
        print(f"fields, {kind}: not compared (ours {len(o)} lines, peers {len(p)})")
        continue
    missing = set.union(*o) - set.intersection(*p)
    print(f"fields, {kind}: " + ("the peers carry every key of ours" if not missing
                                  else "MISSING in the peers: " + ", ".join(sorted(missing))))
PY
grep -E "^(idle|independent|chained|one submit|submits|an empty|a barrier)|whole step|dispatches; floor" "$out/latency.log" 2>/dev/null | tee -a "$summary"
note "logs: $out"
