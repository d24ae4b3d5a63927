"""The app's persistent settings (QSettings), validated on every read.

A value of the wrong type or out of range — a hand-edited or damaged settings file — is
replaced by its default and reported once through ``warnings``; it never crashes the app.
Tests pass their own QSettings (an INI file in a temporary folder).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from samdesk.engine.options import DEVICES, PRECISIONS

MAX_RECENT = 10
DEFAULT_LABELS = ("object",)


def default_qsettings() -> QSettings:
    """The user's settings: an INI file in the OS's per-user config folder."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "samdesk", "samdesk")


class Settings:
    """Typed access to the settings the app keeps between runs."""

    def __init__(self, store: QSettings) -> None:
        self.store = store
        self.warnings: list[str] = []
        if store.status() != QSettings.Status.NoError:
            self._warn(
                f"The settings file {store.fileName()} could not be read; samdesk started with "
                "default settings (they will be saved over it when you change something)."
            )

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def _bad(self, key: str, value: object) -> None:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        self._warn(
            f"Setting '{key}' in {self.store.fileName()} has an unusable value {shown}; "
            "the default is used instead."
        )

    def _string_list(self, key: str) -> list[str]:
        value = self.store.value(key)
        if value is None or value == "":
            return []
        if isinstance(value, str):  # INI files return a one-element list as a string
            return [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        self._bad(key, value)
        return []

    def _choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.store.value(key)
        if value is None:
            return default
        if isinstance(value, str) and value in choices:
            return value
        self._bad(key, value)
        return default

    def _number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.store.value(key)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            self._bad(key, value)
            return default
        if not low <= number <= high:
            self._bad(key, value)
            return default
        return number

    # --- recent files -----------------------------------------------------------------------

    def recent(self) -> list[str]:
        """Recently opened images, folders and projects, newest first."""
        return self._string_list("recent")[:MAX_RECENT]

    def add_recent(self, path: str | Path) -> None:
        text = str(Path(path).resolve())
        items = [p for p in self.recent() if p != text]
        self.store.setValue("recent", [text, *items][:MAX_RECENT])

    def remove_recent(self, path: str | Path) -> None:
        texts = {str(Path(path)), str(Path(path).resolve())}
        self.store.setValue("recent", [p for p in self.recent() if p not in texts])

    # --- model ------------------------------------------------------------------------------

    def model(self) -> str | None:
        """The model last used ("classic", a registry name or a checkpoint path), or None."""
        value = self.store.value("model/name")
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        self._bad("model/name", value)
        return None

    def set_model(self, name: str) -> None:
        self.store.setValue("model/name", name)

    def device(self) -> str:
        return self._choice("model/device", DEVICES, "auto")

    def set_device(self, device: str) -> None:
        self.store.setValue("model/device", device)

    def precision(self) -> str:
        return self._choice("model/precision", PRECISIONS, "auto")

    def set_precision(self, precision: str) -> None:
        self.store.setValue("model/precision", precision)

    # --- labels and tools -------------------------------------------------------------------

    def labels(self) -> list[str]:
        labels = [s.strip() for s in self._string_list("labels") if s.strip()]
        return labels or list(DEFAULT_LABELS)

    def set_labels(self, labels: list[str]) -> None:
        self.store.setValue("labels", list(labels))

    def brush_radius(self) -> float:
        return self._number("tools/brush_radius", 8.0, 1.0, 500.0)

    def set_brush_radius(self, radius: float) -> None:
        self.store.setValue("tools/brush_radius", float(radius))

    # --- window layout ----------------------------------------------------------------------

    def _bytes(self, key: str) -> QByteArray | None:
        value = self.store.value(key)
        if value is None:
            return None
        if isinstance(value, QByteArray):
            return value
        self._bad(key, value)
        return None

    def window_geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    def window_state(self) -> QByteArray | None:
        return self._bytes("window/state")

    def set_window_layout(self, geometry: QByteArray, state: QByteArray) -> None:
        self.store.setValue("window/geometry", geometry)
        self.store.setValue("window/state", state)

    def sync(self) -> None:
        self.store.sync()
