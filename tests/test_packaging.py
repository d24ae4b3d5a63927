"""The wheel holds every module of the source tree, the resources and the entry points."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_every_module_resources_and_entry_points(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("samdesk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "samdesk").rglob("*.py")}
    assert modules - names == set(), "modules missing from the wheel (pyproject packages list)"
    resources = [p for p in (ROOT / "resources").rglob("*") if p.suffix in {".jpg", ".svg"}]
    assert resources
    for resource in resources:
        rel = resource.relative_to(ROOT / "resources").as_posix()
        assert f"samdesk/resources/{rel}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[gui_scripts]" in text and "samdesk = samdesk.cli:main" in text
