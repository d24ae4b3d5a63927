"""Builders for the app tests: generated images, scripted dialogs, a window factory."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Shapes drawn by :func:`make_image`: (centre x, centre y, radius, inner radius (0 = a disc)).
SHAPES = ((60, 60, 35, 0), (170, 90, 45, 18), (90, 170, 25, 0))
SIZE = (256, 224)  # width, height


def make_image(path: Path, seed: int = 0, size: tuple[int, int] = SIZE) -> Path:
    """A noisy dark background with bright discs and a ring (a hole in the middle)."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = rng.normal(40, 6, (height, width, 3))
    yy, xx = np.mgrid[:height, :width]
    colors = ((230, 80, 80), (80, 220, 90), (90, 120, 240))
    for (cx, cy, r, inner), color in zip(SHAPES, colors, strict=True):
        d2 = (xx - cx) ** 2 + (yy - cy) ** 2
        inside = (d2 <= r * r) & (d2 >= inner * inner)
        image[inside] = np.array(color) + rng.normal(0, 6, (int(inside.sum()), 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return path


def shape_mask(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    width, height = size
    cx, cy, r, inner = SHAPES[index]
    yy, xx = np.mgrid[:height, :width]
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    return (d2 <= r * r) & (d2 >= inner * inner)


def make_folder(folder: Path, count: int = 3) -> list[Path]:
    return [make_image(folder / f"img{i + 1}.png", seed=i) for i in range(count)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


class ScriptedDialogs:
    """Stands in for samdesk.ui.dialogs.Dialogs: answers come from queues set by the test.

    ``ask`` pops from ``answers`` (or returns ``default_answer``), file choosers pop from
    ``paths``; every question is recorded in ``asked``.
    """

    def __init__(self) -> None:
        self.answers: deque[str] = deque()
        self.paths: deque[Path | None] = deque()
        self.texts: deque[str | None] = deque()
        self.asked: list[tuple[str, str]] = []
        self.informed: list[tuple[str, str]] = []
        self.default_answer = "Discard"

    def _path(self, *_: Any) -> Path | None:
        return self.paths.popleft() if self.paths else None

    open_image = open_folder = open_project = open_model_file = save_project = _path

    def ask(self, title: str, text: str, buttons: list[str], default: str | None = None) -> str:
        self.asked.append((title, text))
        answer = self.answers.popleft() if self.answers else self.default_answer
        if answer not in buttons:
            raise AssertionError(f"scripted answer {answer!r} is not one of {buttons} ({title})")
        return answer

    def text(self, title: str, prompt: str, value: str = "") -> str | None:
        return self.texts.popleft() if self.texts else None

    def inform(self, title: str, text: str) -> None:
        self.informed.append((title, text))


def settings_at(path: Path):
    from PySide6.QtCore import QSettings

    from samdesk.ui.settings import Settings

    return Settings(QSettings(str(path), QSettings.Format.IniFormat))


WindowFactory = Callable[..., Any]
