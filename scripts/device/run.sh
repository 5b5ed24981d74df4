#!/usr/bin/env bash
# Runs ON the machine with the GPU, from the project root, once prepare.sh
# has packed .device/:  bash .device/run.sh COMMAND [ARG ...]
# Installs the carried Vulkan loader where the system has none, unpacks the
# binaries, points the loader at NVIDIA's driver where there is one, prints
# the GPU, then runs COMMAND. Without an NVIDIA GPU (a rehearsal here, on
# lavapipe) it only unpacks and runs COMMAND.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
    # The GPU machine has NVIDIA's driver and Vulkan ICD but may lack the loader.
    for f in "$here"/debs/*.deb; do
        [ -e "$f" ] && dpkg -x "$f" /
    done
    ldconfig 2>/dev/null || true
fi
# The binaries travel compressed; unpack once, with Python's tarfile (no xz tool needed).
# Into a fresh directory, renamed into place only when complete, so that an
# interrupted unpack is redone rather than half-used.
if [ -f "$here/bin.tar.xz" ] && [ ! -d "$here/bin" ]; then
    rm -rf "$here/.unpack"
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$here/bin.tar.xz" "$here/.unpack" &&
        mv "$here/.unpack/bin" "$here/bin" && rmdir "$here/.unpack" ||
        { echo "run.sh: could not unpack $here/bin.tar.xz" >&2; exit 1; }
fi
# NVIDIA's manifest names libGLX_nvidia.so.0, whose Vulkan entry points fail
# without an X server ("Could not get 'vkCreateInstance' via
# 'vk_icdGetInstanceProcAddr'"): point the loader at the same driver's
# headless EGL library instead (seen on an H200 container, 2026-11-30).
if [ -z "${VK_DRIVER_FILES:-}" ]; then
    for egl in /usr/local/nvidia/lib64/libEGL_nvidia.so.0 /usr/lib/x86_64-linux-gnu/libEGL_nvidia.so.0; do
        if [ -e "$egl" ]; then
            mkdir -p /tmp/wgpu-train-icd
            printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$egl" \
                > /tmp/wgpu-train-icd/nvidia_egl_icd.json
            export VK_DRIVER_FILES=/tmp/wgpu-train-icd/nvidia_egl_icd.json
            break
        fi
    done
fi
[ -d "$here/data/fashion-mnist" ] && export FASHION_MNIST_DIR="$here/data/fashion-mnist"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-run}
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader || true
fi
ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null || echo "run.sh: no Vulkan loader found after unpacking" >&2
[ $# -gt 0 ] || exit 0
exec "$@"
