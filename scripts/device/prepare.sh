#!/usr/bin/env bash
# Builds in release and packs .device/ (git-ignored) for a run on a machine
# with a real GPU that has NVIDIA's driver and PyTorch with CUDA but no Rust
# and no network. Everything comes from this repository (and Debian's
# libvulkan1 and dataset-fashion-mnist packages).
#
#   bash scripts/device/prepare.sh [--no-tests] [--no-data] [--no-build] [--debug]
#
#   --no-build  take what target/ holds (the newest test executables) instead
#               of building first
#   --debug     the dev profile instead of release: a rehearsal here without
#               waiting for a release build (too slow to measure with, and
#               larger: LIMIT_MIB may need raising for it)
#
# It carries: the examples (stripped), the two test binaries and the
# library's unit tests (release, stripped), all as one .tar.xz; Fashion-MNIST's
# four .gz files; peers/ (the PyTorch peers); Debian's Vulkan loader; and
# run.sh and measure.sh from scripts/device/. The device tool carries at most
# 64 MiB: the script checks the total (LIMIT_MIB to change it) and fails
# above it.
#
# Rehearse here (lavapipe, no CUDA: the peers run on the CPU):
#   MEASURE_QUICK=1 OUT=/tmp/m bash .device/measure.sh
# There, from the project root with .device/ beside it:
#   bash .device/measure.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
limit=${LIMIT_MIB:-64}
want_tests=1 want_data=1 build=1 profile=release
for a in "$@"; do
    case "$a" in
        --no-tests) want_tests=0 ;;
        --no-data) want_data=0 ;;
        --no-build) build=0 ;;
        --debug) profile=debug ;;
        -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "prepare: unknown argument $a (see --help)" >&2; exit 2 ;;
    esac
done
examples=(gpu_info gpu_vs_cpu train_mlp train_linear strategies second_order sweep)

cargo_profile=()
[ "$profile" = release ] && cargo_profile=(--release)
if ((build)); then
    echo "prepare: cargo build ${cargo_profile[*]} --examples"
    cargo build "${cargo_profile[@]}" --quiet --examples
fi
tests=()
if ((want_tests)) && ((build)); then
    # The test executables, by cargo's own account (the file names carry hashes).
    while IFS= read -r exe; do tests+=("$exe"); done < <(
        cargo test "${cargo_profile[@]}" --no-run --message-format=json 2>/dev/null |
            python3 -c 'import sys, json
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m.get("profile", {}).get("test"):
        print(m["executable"])')
elif ((want_tests)); then
    # Not building: the newest executable of each test binary (the library's
    # unit tests, tests/gpu, tests/cpu).
    for t in wgpu_train gpu cpu; do
        exe=$(ls -t target/"$profile"/deps/"$t"-* 2>/dev/null | grep -E -- "/$t-[0-9a-f]{16}$" | head -1 || true)
        [ -n "$exe" ] && tests+=("$exe")
    done
fi
if ((want_tests)) && [ ${#tests[@]} = 0 ]; then
    echo "prepare: no test executable in target/$profile (build them: cargo test ${cargo_profile[*]} --no-run)" >&2
    exit 2
fi

rm -rf .device/bin .device/bin.tar.xz .device/peers .device/data
mkdir -p .device/debs .device/bin/tests

# The GPU machine may lack the Vulkan loader (libvulkan.so.1): carry Debian's.
if ! ls .device/debs/libvulkan1_*.deb >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        lists=/tmp/device-apt-amd64
        mkdir -p "$lists/partial"
        o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
        apt-get "${o[@]}" update -qq
        (cd .device/debs && apt-get "${o[@]}" download -qq libvulkan1)
    else
        echo "prepare: no apt-get: not carrying a Vulkan loader (the GPU machine must have libvulkan.so.1)" >&2
    fi
fi

# take BINARY DIR: a stripped copy of BINARY in DIR
take() {
    [ -x "$1" ] || { echo "prepare: $1 is not an executable (build it first)" >&2; exit 2; }
    cp "$1" "$2/$(basename "$1")"
    strip "$2/$(basename "$1")" 2>/dev/null || true
}
for e in "${examples[@]}"; do take "target/$profile/examples/$e" .device/bin; done
for t in "${tests[@]}"; do take "$t" .device/bin/tests; done

if ((want_data)); then
    src=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
    for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
        [ -f "$src/$f" ] || {
            echo "prepare: $src/$f missing: apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR" >&2
            exit 2
        }
    done
    mkdir -p .device/data/fashion-mnist
    cp "$src"/{train,t10k}-*-ubyte.gz .device/data/fashion-mnist/
fi

mkdir -p .device/peers
cp peers/*.py peers/requirements.txt peers/README.md .device/peers/

# Binaries compress ~4x: carry them as one .tar.xz, unpacked by run.sh on
# arrival. xz's default level took 20 minutes on the loaded 2-core VM; -3
# on every core is a little larger and several times faster.
XZ_OPT=${XZ_OPT:--3 -T0} tar -cJf .device/bin.tar.xz -C .device bin
rm -rf .device/bin
cp scripts/device/run.sh scripts/device/measure.sh .device/
chmod +x .device/run.sh .device/measure.sh

kib=$(du -sk .device | cut -f1)
echo "prepared .device/ ($profile build): $((kib / 1024)) MiB of the $limit MiB the device tool carries"
du -sh .device/* | sed 's/^/  /'
tar -tvJf .device/bin.tar.xz | awk '$6 !~ /\/$/ {printf "  %8.1f MiB  %s\n", $3 / 1048576, $6}'
if ((kib > limit * 1024)); then
    echo "prepare: .device/ is over $limit MiB: carry less (--no-tests, --no-data)" >&2
    exit 3
fi
echo "next, on the GPU machine: bash .device/measure.sh  (rehearse here: MEASURE_QUICK=1 OUT=/tmp/m bash .device/measure.sh)"
