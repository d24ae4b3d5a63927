"""Every question the app asks the user goes through :class:`Dialogs`.

The main window never calls QFileDialog / QMessageBox directly: tests replace this object with a
scripted one (answers queued in advance), so no test ever blocks on a modal dialog.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from samdesk.imaging import SUPPORTED_SUFFIXES

IMAGE_FILTER = "Images ({})".format(" ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES)))
PROJECT_FILTER = "samdesk projects (*.json)"


class Dialogs:
    """Modal questions, file choosers and notices (the real, interactive ones)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def open_image(self, start: str = "") -> Path | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, "Open image", start, IMAGE_FILTER)
        return Path(path) if path else None

    def open_folder(self, start: str = "") -> Path | None:
        path = QFileDialog.getExistingDirectory(self.parent, "Open folder of images", start)
        return Path(path) if path else None

    def open_project(self, start: str = "") -> Path | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, "Open project", start, PROJECT_FILTER)
        return Path(path) if path else None

    def open_model_file(self, start: str = "") -> Path | None:
        path, _ = QFileDialog.getOpenFileName(
            self.parent, "Import a SAM checkpoint", start, "Checkpoints (*.pth *.pt);;All (*)"
        )
        return Path(path) if path else None

    def save_project(self, start: str = "") -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, "Save project as", start, PROJECT_FILTER)
        if not path:
            return None
        result = Path(path)
        return result if result.suffix.lower() == ".json" else result.with_suffix(".json")

    def ask(self, title: str, text: str, buttons: list[str], default: str | None = None) -> str:
        """Ask with the given button texts; returns the text of the button pressed (the last
        button — by convention the cancelling one — if the dialog is closed)."""
        box = QMessageBox(self.parent)
        box.setWindowTitle(title)
        box.setText(text)
        box.setIcon(QMessageBox.Icon.Question)
        made = {}
        for label in buttons:
            made[label] = box.addButton(label, QMessageBox.ButtonRole.ActionRole)
        if default in made:
            box.setDefaultButton(made[default])
        box.exec()
        clicked = box.clickedButton()
        box.deleteLater()
        for label, button in made.items():
            if button is clicked:
                return label
        return buttons[-1]

    def text(self, title: str, prompt: str, value: str = "") -> str | None:
        text, ok = QInputDialog.getText(self.parent, title, prompt, text=value)
        return text if ok else None

    def inform(self, title: str, text: str) -> None:
        QMessageBox.information(self.parent, title, text)
