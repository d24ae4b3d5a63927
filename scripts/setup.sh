#!/usr/bin/env bash
# Idempotent set-up used by scripts/app.sh and scripts/test.sh: system libraries Qt needs (when
# run as root on Debian/Ubuntu), a virtual environment in .venv, PyTorch (a CPU build unless an
# NVIDIA GPU is present), and samdesk with its test tools. Safe to run again; skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${SAMDESK_VENV:-.venv}
QT_DEBS="libegl1 libgl1 libxkbcommon-x11-0 libxkbcommon0 libxcb-cursor0 libxcb-icccm4 \
libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 \
libxcb-randr0 libxcb-xfixes0 libxcb-xkb1 libfontconfig1 libdbus-1-3 libglib2.0-0"

log() { printf '[samdesk setup] %s\n' "$*" >&2; }

install_system_libs() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing=()
  for pkg in $QT_DEBS $EXTRA_DEBS; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "Qt may need these system packages (ask an administrator): ${missing[*]}"
    return 0
  fi
  log "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_torch() {
  if "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then return 0; fi
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    log "NVIDIA GPU found: installing PyTorch with CUDA"
    "$VENV/bin/pip" install -q torch
    return 0
  fi
  # No NVIDIA GPU: only ever a +cpu build (a plain 'torch' would pull GBs of CUDA libraries).
  log "no NVIDIA GPU: installing the CPU build of PyTorch"
  "$VENV/bin/pip" install -q "torch==2.13.0+cpu" 2>/dev/null \
    || "$VENV/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu
}

EXTRA_DEBS=${EXTRA_DEBS:-}
install_system_libs
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
install_torch
stamp="$VENV/.samdesk-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing samdesk and its test tools into $VENV"
  "$VENV/bin/pip" install -q -e ".[test]"
  touch "$stamp"
fi
