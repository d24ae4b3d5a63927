#!/usr/bin/env bash
# Set up on first use (see scripts/setup.sh), then open the samdesk app. Arguments are passed on:
#   bash scripts/app.sh [IMAGE_OR_FOLDER_OR_PROJECT] [--model PATH_OR_NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$(uname)" = Linux ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "[samdesk] no display found (DISPLAY is unset): starting on a virtual screen with xvfb-run." >&2
  if ! command -v xvfb-run >/dev/null 2>&1; then
    EXTRA_DEBS="xvfb xauth" bash scripts/setup.sh
  fi
  exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/samdesk "$@"
fi
exec .venv/bin/samdesk "$@"
