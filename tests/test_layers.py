"""The layer rule holds, and the check that enforces it really fails when it is broken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which(
    "lint-imports"
)


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS, "import-linter is a test dependency (pip install -e '.[test]')"
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_layer_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.split("Contracts:")[-1].lower().replace("0 broken", "")


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("samdesk/annotation/__init__.py", "import PySide6\n", "annotation imports neither"),
        ("samdesk/annotation/__init__.py", "import torch\n", "annotation imports neither"),
        ("samdesk/engine/__init__.py", "from PySide6 import QtCore\n", "engine builds on model"),
        ("samdesk/model/__init__.py", "import samdesk.engine\n", "model is the bottom layer"),
    ],
)
def test_contract_fails_when_broken(tmp_path: Path, module: str, line: str, contract: str) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT / "samdesk", copy / "samdesk", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / module
    target.write_text(line + target.read_text(encoding="utf-8"), encoding="utf-8")
    result = _lint(copy)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    broken = [ln for ln in result.stdout.splitlines() if "BROKEN" in ln]
    assert any(contract in ln for ln in broken), result.stdout


def test_core_imports_without_qt() -> None:
    """Every non-UI module imports in a process where Qt cannot be imported at all."""
    code = r"""
import importlib, importlib.abc, pkgutil, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6'):
            raise ImportError('Qt blocked')
sys.meta_path.insert(0, Block())
import samdesk
names = [m.name for m in pkgutil.walk_packages(samdesk.__path__, 'samdesk.')
         if not m.name.startswith('samdesk.ui')]
for name in names:
    importlib.import_module(name)
from samdesk.cli import build_parser
build_parser().format_help()
print(len(names))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 6
