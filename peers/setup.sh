#!/usr/bin/env bash
# Makes the peers' Python environment in one command (not part of the test
# command: PyPI's Linux torch wheel brings the CUDA libraries, ~5 GB and a
# few minutes):
#
#   bash peers/setup.sh [VENV]       (default VENV: ./.peers-venv, git-ignored)
#
# then run a peer with VENV/bin/python peers/torch_peer.py --help. A machine
# that already has PyTorch (the GPU machine) needs none of this.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.peers-venv}
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    case "$(uname -s)" in
        Linux) echo "setup: python3 lacks venv/ensurepip: apt-get install python3-venv (Debian/Ubuntu)" >&2 ;;
        *) echo "setup: python3 lacks venv/ensurepip: install Python 3 from python.org or your package manager" >&2 ;;
    esac
    exit 1
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
echo "setup: installing peers/requirements.txt into $venv (torch with its CUDA libraries: several GB)"
"$venv/bin/python" -m pip install --quiet -r peers/requirements.txt
"$venv/bin/python" -c 'import torch; print("setup: torch", torch.__version__, "CUDA" if torch.cuda.is_available() else "(no CUDA device here: the peers run with --device cpu)")'
echo "setup: done; e.g. $venv/bin/python peers/torch_peer.py --model mlp --epochs 1 --threads 2"
