#!/usr/bin/env bash
# bench/compare/setup_torch_venv.sh [DIR]: a virtual environment with PyPI's current torch and timm,
# what a user who picks PyTorch today installs (MKL + oneDNN CPU kernels, AVX-512 where the
# processor has it), for compare_train.sh and the interop checks. DIR defaults to
# $EMBER_CACHE/torch-venv (~/.cache/ember/torch-venv); the wheels are several GB (PyPI's Linux
# torch brings its CUDA libraries). Prints the environment's python3 last.
set -euo pipefail
dir="${1:-${EMBER_CACHE:-$HOME/.cache/ember}/torch-venv}"
if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv >/dev/null
fi
[ -x "$dir/bin/python3" ] || python3 -m venv "$dir"
"$dir/bin/python3" -m pip install -q --upgrade pip >&2
"$dir/bin/python3" -m pip install -q torch timm >&2
"$dir/bin/python3" -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__, file=__import__('sys').stderr)"
echo "$dir/bin/python3"
