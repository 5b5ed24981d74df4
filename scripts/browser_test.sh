#!/usr/bin/env bash
# The browser tests: the library built for wasm32-unknown-unknown (wgpu's
# WebGPU backend) and web/tests/browser.rs run by wasm-bindgen-test-runner in
# headless Chromium (Dawn; SwiftShader where there is no GPU), then the page's
# end-to-end test (web/e2e.sh: Verify all pass, Train's loss falls on
# Fashion-MNIST, the Benchmark table fills; screenshot).
# Installs what is missing, idempotently: Debian's rustc-web and its source
# (wasm's std is built with -Zbuild-std; rustup cannot fetch it everywhere),
# lld's wasm-ld, Chromium and chromedriver, and wasm-bindgen-cli at the
# version in Cargo.lock, cached in ~/.cargo/bin. Extra arguments go to
# `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
start=$SECONDS

if [ "$(uname -s)" != Linux ]; then
    echo "browser tests: Linux (Debian/Ubuntu) only; elsewhere see README.md (web/)" >&2
    exit 1
fi
need=()
for p in rustc-web rust-web-src lld-22 chromium chromium-driver; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    apt_install --no-install-recommends "${need[@]}"
fi
# The page's Train part fetches Fashion-MNIST from the local server.
ensure_fashion_mnist

# The runner must be the wasm-bindgen version the crate links. Installed
# with the ordinary toolchain (before scripts/wasm_env.sh switches rustc).
runner="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen-test-runner"
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
have=$("$runner" --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$version" ]; then
    echo "setup: installing wasm-bindgen-cli $version into ${CARGO_HOME:-$HOME/.cargo}/bin (once; 10-20 min)"
    # Not --locked: one of its locked dependencies is gone from crates.io.
    cargo install --quiet wasm-bindgen-cli --version "$version"
fi
. scripts/wasm_env.sh
echo "== browser setup: $((SECONDS - start)) s"

t=$SECONDS
echo "== browser tests (wasm32, headless Chromium)"
# The runner reads web/webdriver.json (Chromium with --enable-unsafe-webgpu:
# without it Linux has no WebGPU adapter).
(cd web && WASM_BINDGEN_TEST_TIMEOUT=600 cargo test "${WASM_CARGO_ARGS[@]}" --test browser "$@")
echo "== browser tests: $((SECONDS - t)) s"

t=$SECONDS
echo "== page end to end (web/e2e.sh)"
bash web/e2e.sh
echo "== page end to end: $((SECONDS - t)) s"
echo "== browser total: $((SECONDS - start)) s"
