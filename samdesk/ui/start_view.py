"""What the window shows before anything is open: open buttons, recent files, the sample."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from samdesk import __version__


class StartView(QWidget):
    open_image = Signal()
    open_folder = Signal()
    open_project = Signal()
    open_sample = Signal()
    open_recent = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        outer.addLayout(column, 2)
        outer.addStretch(1)
        column.addStretch(1)
        title = QLabel("samdesk", self)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        title.setFont(font)
        column.addWidget(title)
        subtitle = QLabel(
            f"Version {__version__}. Click on objects to segment them with Segment Anything; "
            "everything stays on this computer.",
            self,
        )
        subtitle.setWordWrap(True)
        column.addWidget(subtitle)
        column.addSpacing(16)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, text, signal in (
            ("image", "Open image…", self.open_image),
            ("folder", "Open folder…", self.open_folder),
            ("project", "Open project…", self.open_project),
            ("sample", "Try the sample image", self.open_sample),
        ):
            button = QPushButton(text, self)
            button.setMinimumHeight(button.sizeHint().height() * 3 // 2)
            button.clicked.connect(signal)
            row.addWidget(button)
            self.buttons[key] = button
        column.addLayout(row)
        column.addSpacing(16)
        column.addWidget(QLabel("Recent", self))
        self.recent = QListWidget(self)
        self.recent.setMaximumHeight(self.fontMetrics().height() * 12)
        self.recent.itemActivated.connect(lambda item: self.open_recent.emit(item.data(256)))
        column.addWidget(self.recent)
        hint = QLabel("You can also drop images, folders or a project file on this window.", self)
        hint.setWordWrap(True)
        hint.setEnabled(False)
        column.addWidget(hint)
        column.addStretch(2)

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for path in paths:
            p = Path(path)
            item = QListWidgetItem(f"{p.name}    —    {p.parent}")
            item.setData(256, path)
            item.setToolTip(path)
            if not p.exists():
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(f"{path} (not found)")
            self.recent.addItem(item)
        if not paths:
            item = QListWidgetItem("Nothing opened yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)
