"""File > Export: choose a format and a destination, then see what was written and dropped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from samdesk.errors import SamdeskError

if TYPE_CHECKING:
    from samdesk.ui.project import ProjectController

#: (format key for Document.export, label, what the destination is, default name)
FORMATS = (
    ("coco", "COCO instances (JSON)", "file", "annotations.coco.json"),
    ("yolo", "YOLO segmentation (txt per image)", "folder", "yolo"),
    ("labelme", "labelme (JSON per image)", "folder", "labelme"),
    ("masks", "Mask images (PNG / TIFF per image)", "folder", "masks"),
)


class ExportDialog(QDialog):
    def __init__(self, project: ProjectController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export annotations")
        self.project = project
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.format = QComboBox(self)
        for key, label, _, _ in FORMATS:
            self.format.addItem(label, key)
        form.addRow("Format", self.format)
        row = QHBoxLayout()
        self.destination = QLineEdit(self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.destination, 1)
        row.addWidget(browse)
        form.addRow("Write to", row)
        self.rle = QCheckBox("Store every mask as RLE (exact; polygons otherwise)", self)
        form.addRow("", self.rle)
        layout.addLayout(form)
        self.summary = QPlainTextEdit(self)
        self.summary.setReadOnly(True)
        self.summary.setPlaceholderText("What was written, and anything left out, shows here.")
        layout.addWidget(self.summary, 1)
        buttons = QDialogButtonBox(self)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.export_button.clicked.connect(self.run_export)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.format.currentIndexChanged.connect(self._format_changed)
        self._format_changed()
        self.resize(640, 420)

    def _spec(self) -> tuple[str, str, str, str]:
        return FORMATS[self.format.currentIndex()]

    def _format_changed(self) -> None:
        key, _, _, default = self._spec()
        self.rle.setEnabled(key == "coco")
        folder = Path(self.project.start_folder())
        self.destination.setText(str(folder / "export" / default))

    def _browse(self) -> None:
        _, label, kind, _ = self._spec()
        start = self.destination.text()
        if kind == "file":
            path, _ = QFileDialog.getSaveFileName(self, label, start, "JSON (*.json)")
        else:
            path = QFileDialog.getExistingDirectory(self, label, start)
        if path:
            self.destination.setText(path)

    def run_export(self) -> bool:
        key, _, _, _ = self._spec()
        text = self.destination.text().strip()
        if not text:
            self.summary.setPlainText("Choose where to write the export first.")
            return False
        options = {"rle": True} if key == "coco" and self.rle.isChecked() else {}
        try:
            summary = self.project.export(key, Path(text), **options)
        except SamdeskError as err:
            self.summary.setPlainText(f"Nothing was exported.\n\n{err}")
            return False
        except OSError as err:
            self.summary.setPlainText(f"Nothing was exported: {err.strerror or err} ({text}).")
            return False
        self.summary.setPlainText(summary)
        return True
