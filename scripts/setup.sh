#!/usr/bin/env bash
# Set up a fresh machine: Debian's Fashion-MNIST, Chromium (the MLflow UI browser test)
# and PostgreSQL (the cluster-in-a-box test's database) packages, and a venv with this
# project. As root with apt-get it also installs
# make and python3-venv when they are missing; otherwise it stops, naming them.
# Idempotent; `make sweep` and `make test` run it when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# What this script cannot do without: `make` (every target runs through it) and, to
# create .venv, Python's venv module with ensurepip (Debian ships them in python3-venv).
required_missing() {
  local need=()
  command -v make >/dev/null 2>&1 || need+=(make)
  if [ ! -x .venv/bin/python ] \
    && ! { "$PYTHON" -m venv --help && "$PYTHON" -c "import ensurepip"; } >/dev/null 2>&1; then
    need+=(python3-venv)
  fi
  echo "${need[*]}"
}

missing=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
read -r -a required <<<"$(required_missing)"
packages=("${required[@]}" "${missing[@]}")
if [ ${#packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${packages[@]}" >/dev/null
  elif [ ${#missing[@]} -gt 0 ]; then
    echo "setup: warning: missing Debian packages; run: sudo apt-get install ${missing[*]}" >&2
  fi
fi
read -r -a required <<<"$(required_missing)"
if [ ${#required[@]} -gt 0 ]; then
  echo "setup: error: needs make and Python's venv module with ensurepip (missing:" \
    "${required[*]}); on Debian: sudo apt-get install ${required[*]}" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing dnn-sweep and its dependencies into .venv"
# uv (from PyPI) resolves and installs in parallel: 25 s here against pip's 155 s for the
# same cold install; pip is the fallback when uv cannot be had. Bytecode is compiled at
# install, as pip does: with PYTHONDONTWRITEBYTECODE set, every Ray worker would
# otherwise compile TensorFlow, Ray and MLflow from source at each start.
pip_install() {
  if .venv/bin/python -m uv --version >/dev/null 2>&1; then
    .venv/bin/python -m uv pip install --quiet --compile-bytecode --python .venv/bin/python "$@"
  else
    .venv/bin/python -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
  fi
}
.venv/bin/python -m pip install --quiet --upgrade pip uv 2>&1 | { grep -v "^WARNING: Location" || true; }
pip_install -e ".[test,bench,cluster]"
# searcher=gp needs PyTorch: its CPU wheel (~200 MB; PyPI's default one pulls ~3 GB of
# CUDA libraries). From PyTorch's CPU index, else a CPU wheel in a local wheel folder;
# without either, `searcher=gp` says how to install it and its test is skipped.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  local_cpu_wheel=$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | tail -1 || true)
  UV_HTTP_TIMEOUT=15 UV_HTTP_RETRIES=0 PIP_DEFAULT_TIMEOUT=15 PIP_RETRIES=0 pip_install torch \
      --index-url https://download.pytorch.org/whl/cpu >/dev/null 2>&1 \
    || { [ -n "$local_cpu_wheel" ] && pip_install "$local_cpu_wheel"; } \
    || echo "setup: note: no PyTorch CPU wheel reachable; searcher=gp will not run here"
fi
# fails loudly if the install did (TensorFlow's own start-up lines are not news here)
check_log=$(mktemp)
if ! .venv/bin/python -c "import search.cli, trainables.model, tracking" 2>"$check_log"; then
  cat "$check_log" >&2; rm -f "$check_log"; exit 1
fi
rm -f "$check_log"
echo "setup: done"
