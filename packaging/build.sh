#!/usr/bin/env bash
# Build the samdesk app folder with PyInstaller (packaging/samdesk.spec) into packaging/dist/samdesk
# and smoke-test it headless. Usage, from anywhere:
#
#     bash packaging/build.sh            # build + smoke test
#     bash packaging/build.sh --test     # smoke-test an existing packaging/dist/samdesk only
#
# Python: $PYTHON if set, else the checkout's .venv, else python3 on PATH. That environment must
# have samdesk and its dependencies installed (the torch it has is the torch that gets bundled);
# PyInstaller is installed into it here when missing (it is not a samdesk dependency).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
DIST="$HERE/dist"
APP="$DIST/samdesk"
cd "$ROOT"

if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
elif [[ -x "$ROOT/.venv/Scripts/python.exe" ]]; then
    PY="$ROOT/.venv/Scripts/python.exe"
else
    PY="python3"
fi
EXE_SUFFIX=""
[[ "$("$PY" -c 'import os; print(os.name)')" == "nt" ]] && EXE_SUFFIX=".exe"

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'build.sh: FAILED: %s\n' "$*" >&2; exit 1; }

if [[ "${1:-}" != "--test" ]]; then
    step "environment"
    "$PY" -c 'import samdesk' || fail "samdesk is not importable with $PY (pip install -e .)"
    if ! "$PY" -c 'import PyInstaller, sys; sys.exit(int(PyInstaller.__version__.split(".")[0]) < 6)' \
        2>/dev/null; then
        "$PY" -m pip install --quiet 'pyinstaller>=6'
    fi
    "$PY" - <<'EOF'
import platform, sys
import PyInstaller, torch, PySide6, samdesk
cuda = torch.version.cuda
print(f"python {platform.python_version()} on {sys.platform}; PyInstaller {PyInstaller.__version__}")
print(f"samdesk {samdesk.__version__}; PySide6 {PySide6.__version__}; "
      f"torch {torch.__version__} ({'CUDA ' + cuda if cuda else 'CPU build'})")
EOF

    step "pyinstaller packaging/samdesk.spec"
    start=$(date +%s)
    "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
        --distpath "$DIST" --workpath "$HERE/build" "$HERE/samdesk.spec"
    BUILD_SECONDS=$(( $(date +%s) - start ))
fi

[[ -x "$APP/samdesk$EXE_SUFFIX" ]] || fail "no launcher at $APP/samdesk$EXE_SUFFIX"
# Windows gets a console launcher for the subcommands; elsewhere the one launcher prints.
GUI="$APP/samdesk$EXE_SUFFIX"
CLI="$APP/samdesk-cli$EXE_SUFFIX"
[[ -x "$CLI" ]] || CLI="$GUI"

step "smoke test (headless)"
WORKDIR="$(mktemp -d)"
trap 'rm -rf "$WORKDIR"' EXIT
# Keep the user's settings, models and caches out of it.
export HOME="$WORKDIR/home" XDG_CONFIG_HOME="$WORKDIR/home/.config"
export XDG_CACHE_HOME="$WORKDIR/home/.cache" XDG_DATA_HOME="$WORKDIR/home/.local/share"
export SAMDESK_DATA_DIR="$WORKDIR/data" SAMDESK_CACHE_DIR="$WORKDIR/cache"
export QT_QPA_PLATFORM=offscreen
mkdir -p "$HOME"

ok() { printf '  ok   %s\n' "$*"; }

want="samdesk $("$PY" -c 'import samdesk; print(samdesk.__version__)')"
got="$(timeout 60 "$CLI" --version)" || fail "--version exited with $?"
[[ "$got" == "$want" ]] || fail "--version printed '$got', expected '$want'"
ok "$(basename "$CLI") --version: $got"

# Every module in samdesk/cli/commands must be a subcommand of the frozen app too (they are found
# with pkgutil.iter_modules, which works frozen through PyInstaller's pkgutil runtime hook).
commands="$("$PY" -c 'from samdesk.cli import _command_modules as c; print(*[m.NAME for m in c()])')"
help="$(timeout 60 "$CLI" --help)" || fail "--help exited with $?"
for command in $commands; do
    grep -qE "^    $command " <<<"$help" || fail "--help does not list '$command':"$'\n'"$help"
done
ok "$(basename "$CLI") --help lists every command module: $commands"

resources="$(find "$APP" -path '*/samdesk/resources/sample-cells.jpg' -o \
    -path '*/samdesk/resources/icons/samdesk.svg' | wc -l)"
[[ "$resources" == 2 ]] || fail "samdesk/resources (sample, icon) is missing from the bundle"
ok "resources bundled as samdesk/resources"

timeout 60 "$CLI" models list >"$WORKDIR/models.txt" || fail "models list exited with $?"
ok "models list ($(wc -l <"$WORKDIR/models.txt") lines)"

# A test picture (a bright rectangle with a hole on a noisy background) and a tiny random SAM
# network, both made with the build environment's Python.
"$PY" - "$WORKDIR" <<'EOF'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from samdesk.model.testing import save_random_checkpoint
work = Path(sys.argv[1])
rng = np.random.default_rng(0)
image = rng.normal(30, 8, (240, 320, 3))
image[60:180, 80:240] = rng.normal(210, 8, (120, 160, 3))
Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(work / "picture.png")
save_random_checkpoint(work / "tiny-sam.pth", "small", seed=4)
EOF

check_mask() {  # check_mask FILE MIN_FRACTION_IN_BOX
    "$PY" - "$@" <<'EOF'
import sys
import numpy as np
from PIL import Image
mask = np.asarray(Image.open(sys.argv[1]))
assert mask.shape == (240, 320), mask.shape
assert set(np.unique(mask)) <= {0, 255}, np.unique(mask)
inside = (mask[60:180, 80:240] > 0).mean()
assert inside >= float(sys.argv[2]), f"only {inside:.2f} of the object is in the mask"
print(f"{(mask > 0).mean():.2f} of the image, {inside:.2f} of the object")
EOF
}

timeout 120 "$CLI" segment "$WORKDIR/picture.png" --model classic --box 70,50,250,190 \
    --out "$WORKDIR/classic.png" || fail "segment --model classic exited with $?"
ok "segment --model classic --box: PNG mask, $(check_mask "$WORKDIR/classic.png" 0.9)"

# torch inside the bundle (it imports torch._dynamo and sympy on the way), at the default and the
# int8 precision: the random network's mask is noise, so only its form is checked.
for precision in auto int8; do
    timeout 300 "$CLI" segment "$WORKDIR/picture.png" --model "$WORKDIR/tiny-sam.pth" \
        --point 160,120 --device cpu --precision "$precision" --no-cache \
        --out "$WORKDIR/sam-$precision.png" || fail "segment with a SAM network ($precision)"
    ok "segment, tiny random SAM checkpoint, torch $precision: PNG mask," \
        "$(check_mask "$WORKDIR/sam-$precision.png" 0)"
done

# The GUI: open the bundled sample offscreen, let it run, then SIGTERM (the app saves and quits
# on it) and expect exit status 0, no traceback, and the sample among the recent files.
sample="$(find "$APP" -path '*/samdesk/resources/sample-cells.jpg' | head -1)"
"$GUI" "$sample" >"$WORKDIR/gui.log" 2>&1 &
gui_pid=$!
sleep "${GUI_SECONDS:-15}"
kill -0 "$gui_pid" 2>/dev/null || { cat "$WORKDIR/gui.log"; fail "the app exited by itself"; }
kill -TERM "$gui_pid"
for _ in $(seq 60); do kill -0 "$gui_pid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$gui_pid" 2>/dev/null; then
    kill -KILL "$gui_pid"
    fail "the app did not quit within 30 s of SIGTERM"
fi
status=0
wait "$gui_pid" || status=$?
if grep -qE 'Traceback|unexpected error|Internal error' "$WORKDIR/gui.log" || [[ $status != 0 ]]; then
    cat "$WORKDIR/gui.log"
    fail "the app exited with status $status or printed an error"
fi
grep -rqF "sample-cells.jpg" "$XDG_CONFIG_HOME" || fail "the app did not open the sample image"
ok "app started offscreen on the sample, ran ${GUI_SECONDS:-15} s, quit cleanly on SIGTERM"

step "result"
echo "bundle: $APP"
echo "size:   $(du -sh "$APP" | cut -f1) ($(find "$APP" -type f | wc -l) files)"
[[ -n "${BUILD_SECONDS:-}" ]] && echo "build:  ${BUILD_SECONDS} s (pyinstaller --clean)"
echo "smoke test passed"
