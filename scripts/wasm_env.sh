# Sourced: the environment of the browser build (wasm32-unknown-unknown).
# Debian's rustc-web builds wasm's std from rust-web-src (-Zbuild-std; rustup
# cannot fetch a wasm32 std on every machine), linked by lld's wasm-ld. Every
# variable here is part of cargo's fingerprint: change one and std rebuilds,
# so scripts/browser_test.sh and web/build.sh both take them from here.
export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen-test-runner"
export CHROMEDRIVER=/usr/bin/chromedriver
# One wasm target directory for tests and page, apart from the native one
# (another compiler: its artefacts would evict the native ones).
WASM_TARGET_DIR="${WASM_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/wasm}"
export WASM_TARGET_DIR
WASM_CARGO_ARGS=(--target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --target-dir "$WASM_TARGET_DIR")
