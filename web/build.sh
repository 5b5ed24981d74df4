#!/usr/bin/env bash
# Builds the page: the crate for wasm32 (dev profile: release would build
# wasm's std a second time) and its JS bindings into web/www/pkg. With
# `serve`, then serves web/www on http://localhost:${PORT:-8000}/ (open it
# in Chrome or Edge; add ?verify to run Verify at once).
# scripts/browser_test.sh installs the tools this needs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm_env.sh
(cd web && cargo build --quiet "${WASM_CARGO_ARGS[@]}" --lib)
"${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen" --target web --out-dir web/www/pkg \
    "$WASM_TARGET_DIR/wasm32-unknown-unknown/debug/wgpu_train_web.wasm"
echo "built web/www/pkg ($(du -sh web/www/pkg | cut -f1))"
if [ "${1:-}" = serve ]; then
    port=${PORT:-8000}
    echo "serving web/www on http://localhost:$port/ (Ctrl-C stops)"
    exec python3 -m http.server --bind 127.0.0.1 --directory web/www "$port"
fi
