#!/usr/bin/env bash
# Type-checks the crate for Windows and macOS from Linux (for Windows with
# MinGW: the library, examples, tests and benches; for MSVC and macOS the
# library, see below), so that wgpu's DX12 and Metal paths
# (and every cfg(windows)/cfg(target_os = "macos") line of ours) at least
# compile on every change. No linking, nothing runs.
#
#   bash .ci/cross-check.sh [TARGET ...]    (default: all three below)
#
# How: Debian's rustc-web with its std source (rust-web-src) builds each
# target's std from source (-Zbuild-std; rustup cannot fetch a std for
# another target on every machine, and RUSTC_BOOTSTRAP lets the stable
# compiler take the unstable flag). x86_64-pc-windows-gnu checks the default
# features, ring's C code included, with Debian's mingw-w64 compiler. For
# x86_64-pc-windows-msvc and aarch64-apple-darwin there is no C compiler here
# (ring wants MSVC's lib.exe, or a cc that targets Apple), and ring is only
# there for HTTPS downloads: their library is checked without the `download`
# feature.
# A target directory of its own (target/cross) keeps the main build's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
ensure_cross_toolchain

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-pc-windows-gnu x86_64-pc-windows-msvc aarch64-apple-darwin)
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
# Any host-side C in a build script is still compiled for Linux.
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
for target in "${targets[@]}"; do
    # Where there is no C compiler for the target, only the library: the
    # examples, tests and benches bring the dev-dependencies, and criterion's
    # `alloca` compiles C too (seen: msvc fails in its build script).
    features=(--lib --examples --tests --benches)
    case "$target" in
        *-windows-gnu) ;;
        *) features=(--lib --no-default-features --features lab,plot) ;;
    esac
    start=$SECONDS
    echo "== cross-check $target ${features[*]}"
    cargo check --quiet --target "$target" -Zbuild-std=std,panic_abort \
        --target-dir target/cross "${features[@]}"
    echo "== cross-check $target: $((SECONDS - start)) s"
done
