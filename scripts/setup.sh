#!/usr/bin/env bash
# Set up a fresh machine: Debian's Fashion-MNIST and Chromium (the MLflow UI browser
# test) packages, and a venv with this project.
# Idempotent; `make sweep` and `make test` run it when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: warning: missing Debian packages; run: sudo apt-get install ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing dnn-sweep and its dependencies into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
.venv/bin/python -m pip install --quiet -e ".[test,bench]" 2>&1 | { grep -v "^WARNING: Location" || true; }
.venv/bin/python -c "import search.cli, trainables.model, tracking" # fails loudly if the install did
echo "setup: done"
