#!/usr/bin/env bash
# Builds the page: the crate for wasm32 (dev profile: release would build
# wasm's std a second time) and its JS bindings into web/www/pkg, and links
# Fashion-MNIST ($FASHION_MNIST_DIR, else Debian's
# /usr/share/datasets/fashion-mnist) as web/www/data for the Train part
# (a symlink, ignored by git; without the dataset the page says so). With
# `serve`, then serves web/www on http://localhost:${PORT:-8000}/ (open it
# in Chrome or Edge; ?verify, ?train, ?bench run those parts at once).
# scripts/browser_test.sh installs the tools this needs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wasm_env.sh
(cd web && cargo build --quiet "${WASM_CARGO_ARGS[@]}" --lib)
"${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen" --target web --out-dir web/www/pkg \
    "$WASM_TARGET_DIR/wasm32-unknown-unknown/debug/wgpu_train_web.wasm"
echo "built web/www/pkg ($(du -sh web/www/pkg | cut -f1))"
data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [ -f "$data/train-images-idx3-ubyte.gz" ] && [ -f "$data/t10k-labels-idx1-ubyte.gz" ]; then
    # A link in the served folder, not a copy: 30 MB stay out of the tree.
    if [ -e web/www/data ] && [ ! -L web/www/data ]; then
        echo "web/www/data exists and is not a link; leaving it" >&2
    else
        ln -sfn "$data" web/www/data
        echo "linked web/www/data -> $data"
    fi
else
    # A link left from another dataset directory would serve stale files.
    if [ -L web/www/data ]; then rm web/www/data; fi
    echo "no Fashion-MNIST in $data (bash scripts/common.sh installs it; or set FASHION_MNIST_DIR):" \
        "the page's Train part will say the files are missing" >&2
fi
if [ "${1:-}" = serve ]; then
    port=${PORT:-8000}
    echo "serving web/www on http://localhost:$port/ (Ctrl-C stops)"
    exec python3 -m http.server --bind 127.0.0.1 --directory web/www "$port"
fi
