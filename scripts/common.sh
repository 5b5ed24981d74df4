# Sourced by the other scripts: installs what wgpu-train needs when it is
# missing, so that each top-level command works on a fresh Debian machine.

# Root installs directly; anyone else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Where apt-get is missing: what this system needs instead, and a non-zero
# status so the caller decides whether to go on.
no_apt() {
    case "$(uname -s)" in
        Darwin)
            echo "setup: no apt-get (macOS): wgpu uses Metal, nothing to install for the GPU;" \
                "for the rest install $* yourself (e.g. with Homebrew), or skip what needs it" >&2 ;;
        MINGW* | MSYS* | CYGWIN*)
            echo "setup: no apt-get (Windows): wgpu uses DX12 (or Vulkan with your GPU's driver)," \
                "nothing to install for the GPU; for the rest install $* yourself, or skip what needs it" >&2 ;;
        *)
            echo "setup: no apt-get: please install $* with your system's package manager" \
                "(these scripts install only on Debian/Ubuntu)" >&2 ;;
    esac
    return 1
}

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        local pkgs=()
        for p in "$@"; do [ "${p#-}" = "$p" ] && pkgs+=("$p"); done
        no_apt "${pkgs[*]}"
        return 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# A Vulkan loader plus at least one driver (ICD). With a GPU, its vendor
# driver provides one; without, Mesa's lavapipe runs the shaders on the CPU.
ensure_vulkan() {
    case "$(uname -s)" in
        Darwin | MINGW* | MSYS* | CYGWIN*) return 0 ;; # Metal / DX12
    esac
    local loader=0 icd=0
    # grep without -q reads all of ldconfig's output: with -q, ldconfig can
    # die of SIGPIPE and pipefail would call the loader missing.
    if ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then loader=1; fi
    if compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null \
        || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null \
        || [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then icd=1; fi
    if [ "$loader" = 1 ] && [ "$icd" = 1 ]; then return 0; fi
    echo "setup: no Vulkan driver found; installing mesa-vulkan-drivers (lavapipe) and the Vulkan loader"
    apt_install mesa-vulkan-drivers libvulkan1
}

# wgpu's GL backend, the suite's second backend: EGL without a display
# (Mesa's surfaceless platform) and, without a GPU, Mesa's llvmpipe. wgpu
# loads libEGL.so.1 (libegl1, the GLVND loader), which loads Mesa's EGL
# vendor library (libegl-mesa0), which loads swrast_dri.so (libgl1-mesa-dri);
# no libGL or libGLESv2 is needed.
ensure_gl() {
    [ "$(uname -s)" = Linux ] || return 0
    local egl=0 vendor=0 dri=0
    if ldconfig -p 2>/dev/null | grep 'libEGL\.so\.1' >/dev/null; then egl=1; fi
    if compgen -G '/usr/share/glvnd/egl_vendor.d/*.json' >/dev/null \
        || compgen -G '/etc/glvnd/egl_vendor.d/*.json' >/dev/null; then vendor=1; fi
    if compgen -G '/usr/lib/*/dri/swrast_dri.so' >/dev/null \
        || compgen -G '/usr/lib*/dri/swrast_dri.so' >/dev/null; then dri=1; fi
    if [ "$egl" = 1 ] && [ "$vendor" = 1 ] && [ "$dri" = 1 ]; then return 0; fi
    echo "setup: no EGL driver found; installing libegl1, libegl-mesa0 and libgl1-mesa-dri (llvmpipe)"
    apt_install libegl1 libegl-mesa0 libgl1-mesa-dri
}

# Independent validators for the shader translation test
# (tests/shader_writers.rs): spirv-val and glslangValidator.
ensure_shader_tools() {
    local missing=()
    command -v spirv-val >/dev/null 2>&1 || missing+=(spirv-tools)
    command -v glslangValidator >/dev/null 2>&1 || missing+=(glslang-tools)
    [ "${#missing[@]}" = 0 ] && return 0
    echo "setup: installing ${missing[*]} (SPIR-V and GLSL validators)"
    # Elsewhere (macOS: brew install spirv-tools glslang) the shader
    # translation test says what is missing; the rest of the suite runs.
    apt_install "${missing[@]}" || [ "$(uname -s)" != Linux ]
}

# Mesa's window-system code warns on every device when XDG_RUNTIME_DIR is
# unset (as under CI or sudo); give it a private directory.
ensure_runtime_dir() {
    if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
        export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/wgpu-train-runtime-$(id -u)"
        mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
    fi
}

# Real Fashion-MNIST for the data tests and the training examples: Debian's
# dataset-fashion-mnist package (the four .gz files, 30 MB), unless
# FASHION_MNIST_DIR points elsewhere. Where apt-get is missing, the tests fail
# with the message that says how to get the data.
ensure_fashion_mnist() {
    if [ -n "${FASHION_MNIST_DIR:-}" ] || [ -d /usr/share/datasets/fashion-mnist ]; then return 0; fi
    echo "setup: installing dataset-fashion-mnist (Fashion-MNIST in /usr/share/datasets/fashion-mnist)"
    apt_install dataset-fashion-mnist || echo "setup: could not install dataset-fashion-mnist;" \
        "the examples' --download fetches it into ./data/fashion-mnist (SHA-256 checked)," \
        "or set FASHION_MNIST_DIR to a directory holding its four .gz files" >&2
}

# The cross-target type-check (.ci/cross-check.sh): Debian's rustc-web and
# the std source it builds for another target (rust-web-src, also the
# browser build's), and mingw-w64's C compiler for ring on Windows (GNU).
ensure_cross_toolchain() {
    local need=()
    for p in rustc-web rust-web-src gcc-mingw-w64-x86-64; do
        dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || need+=("$p")
    done
    [ ${#need[@]} = 0 ] && return 0
    echo "setup: installing ${need[*]} (type-checks for Windows and macOS)"
    apt_install --no-install-recommends "${need[@]}"
}

ensure_all() {
    ensure_vulkan
    ensure_runtime_dir
}
