"""The Model menu: which backend segments (Classic until a SAM model is available), on which
device and at which precision, loaded on the worker so the window never waits.

A model that fails to load leaves the previous one active (the worker keeps it) and says why.
The choice is remembered in the settings once it has loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from samdesk.engine.options import DEVICES, PRECISIONS
from samdesk.errors import SamdeskError

if TYPE_CHECKING:
    from samdesk.engine.backend import Backend
    from samdesk.ui.main_window import MainWindow

log = logging.getLogger(__name__)

CLASSIC = "classic"
CLASSIC_TITLE = "Classic (GrabCut, no model)"


def backend_loader(name: str, device: str, precision: str) -> Callable[[], Backend]:
    """A function the worker calls (on its thread) to load ``name`` — "classic", a registered
    model name or a checkpoint path — on ``device`` ("auto" = CUDA when present)."""

    def load() -> Backend:
        from samdesk.engine.loading import load_backend

        backend = load_backend(
            name, device=None if device == "auto" else device, precision=precision
        )
        # The cache key hashes the checkpoint on first use (0.3 s for ViT-B, seconds for ViT-H).
        # Here it runs on the worker thread before the worker takes the backend; read later
        # under the worker's lock it would block the GUI thread's open_image / submit_prompt.
        _ = backend.cache_key
        return backend

    return load


def model_title(name: str) -> str:
    if name == CLASSIC:
        return CLASSIC_TITLE
    path = Path(name)
    return path.name if path.suffix else name


class ModelController:
    """Owns the Model menu and the status-bar model text of a MainWindow."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.active = CLASSIC
        self.active_text = f"{CLASSIC_TITLE} · cpu"
        self.pending: str | None = None
        self.device = window.settings.device()
        self.precision = window.settings.precision()
        self.menu: QMenu | None = None
        self._model_group: QActionGroup | None = None
        self._show_status()

    # --- menu -------------------------------------------------------------------------------

    def build_menu(self, menu: QMenu) -> None:
        self.menu = menu
        menu.aboutToShow.connect(self._populate)
        self._populate()

    def _populate(self) -> None:
        menu = self.menu
        if menu is None:
            return
        menu.clear()
        group = QActionGroup(menu)
        self._model_group = group
        for name, title, available, tip in self._choices():
            action = QAction(title, menu, checkable=True)
            action.setChecked(name == (self.pending or self.active))
            action.setEnabled(available)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, n=name: self.request(n))
            group.addAction(action)
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.window.actions["import_model"])
        menu.addAction(self.window.actions["manage_models"])
        menu.addSeparator()
        device_menu = menu.addMenu("Device")
        devices = QActionGroup(device_menu)
        for device in DEVICES:
            action = QAction(
                {"auto": "Auto (CUDA when present)"}.get(device, device.upper()),
                device_menu,
                checkable=True,
            )
            action.setChecked(device == self.device)
            action.triggered.connect(lambda _=False, d=device: self.set_device(d))
            devices.addAction(action)
            device_menu.addAction(action)
        precision_menu = menu.addMenu("Precision")
        precisions = QActionGroup(precision_menu)
        for precision in PRECISIONS:
            text = {
                "auto": "Auto (fastest that keeps the masks)",
                "fp32": "fp32 (exact)",
                "bf16": "bf16 (faster on recent CPUs and GPUs)",
                "int8": "int8 (fastest on CPUs with VNNI; masks within IoU 0.98)",
            }[precision]
            action = QAction(text, precision_menu, checkable=True)
            action.setChecked(precision == self.precision)
            action.triggered.connect(lambda _=False, p=precision: self.set_precision(p))
            precisions.addAction(action)
            precision_menu.addAction(action)

    def _choices(self) -> list[tuple[str, str, bool, str]]:
        """(name, menu text, selectable, tooltip) for every model the menu offers."""
        from samdesk.ui.model_manager import installed_models

        choices = [(CLASSIC, CLASSIC_TITLE, True, "Works without any model file")]
        for name, title, installed, note in installed_models():
            tip = note if installed else f"{note} Not installed: use Manage models… to get it."
            choices.append(
                (name, title if installed else f"{title} (not installed)", installed, tip)
            )
        if self.active not in {c[0] for c in choices}:
            choices.append((self.active, model_title(self.active), True, self.active))
        return choices

    # --- loading ----------------------------------------------------------------------------

    def start(self, model: str | None) -> None:
        """At start-up: load ``model`` (the command line's), else the last one used, else the
        first installed one; the Classic backend is active meanwhile (and when there is none)."""
        name = model or self.window.settings.model() or self._first_installed()
        if name and name != CLASSIC:
            self.request(name)
        else:
            self.window.messages.show_message(
                "Using the Classic backend (GrabCut, no model) until a SAM model is chosen in "
                "the Model menu.",
                "info",
            )

    def request(self, name: str) -> None:
        """Load ``name`` on the worker; the current model stays active until it has loaded."""
        self.pending = name
        self.window.status_model.setText(f"Loading {model_title(name)} …")
        self.window.worker.set_backend(backend_loader(name, self.device, self.precision))

    def set_device(self, device: str) -> None:
        self.device = device
        self.window.settings.set_device(device)
        self.request(self.active)

    def set_precision(self, precision: str) -> None:
        self.precision = precision
        self.window.settings.set_precision(precision)
        self.request(self.active)

    def on_backend_ready(self, name: str, device: str, precision: str) -> None:
        if self.pending is not None:
            self.active = self.pending
            self.window.settings.set_model(self.active)
        self.pending = None
        classic = self.active == CLASSIC
        self.active_text = f"{name} · {device}" + ("" if classic else f" · {precision}")
        self._show_status()
        self.window.annotator.model_switched()
        if classic:
            self.window.messages.show_message(
                "Using the Classic backend (GrabCut, no model): fine for clear-cut objects. "
                "Install a SAM model with Model > Manage models… for better masks.",
                "info",
            )

    def on_backend_failed(self, message: str) -> None:
        failed = self.pending
        self.pending = None
        self._show_status()
        what = model_title(failed) if failed else "The model"
        self.window.messages.show_message(
            f"{what} could not be loaded: {message}\n{model_title(self.active)} stays active.",
            "error",
        )

    def _first_installed(self) -> str | None:
        """With no model chosen yet: the first installed SAM model (registry order, then
        imported ones), so that the Classic backend is only used until one is available."""
        from samdesk.engine.store import ModelStore

        try:
            rows = ModelStore().list_models()
        except SamdeskError as err:
            log.info("cannot list the installed models: %s", err)
            return None
        usable = [r.name for r in rows if r.installed and r.state != "damaged"]
        return usable[0] if usable else None

    # --- model manager ----------------------------------------------------------------------

    def open_manager(self, import_path: Path | None = None) -> None:
        """The model manager dialog (modal); with ``import_path``, importing it right away."""
        from samdesk.engine.store import ModelStore
        from samdesk.ui.model_manager import ModelManager

        dialog = ModelManager(
            ModelStore(),
            lambda: self.window.dialogs.open_model_file(),
            self.request,
            self.window,
        )
        if import_path is not None:
            dialog.import_file(import_path)
        dialog.exec()
        dialog.deleteLater()

    def import_file(self) -> None:
        """Model > Import model file…: copy a checkpoint into the models folder (checked)."""
        path = self.window.dialogs.open_model_file()
        if path is not None:
            self.open_manager(import_path=path)

    def _show_status(self) -> None:
        self.window.status_model.setText(f"Model: {self.active_text}")
