"""A non-modal message bar above the canvas: errors and notices without blocking the user."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

_STYLES = {
    "info": ("#e8f1fb", "#1b4f8a", "#9cc1ea"),
    "warning": ("#fff6df", "#6b4b00", "#f0cf72"),
    "error": ("#fdecec", "#8a1b1b", "#eaa0a0"),
}
#: At most this many messages are shown at once; older ones are dropped from view.
MAX_SHOWN = 3


class _Message(QFrame):
    closed = Signal(object)

    def __init__(self, text: str, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        background, foreground, border = _STYLES.get(kind, _STYLES["info"])
        self.kind = kind
        self.setObjectName("message")
        self.setStyleSheet(
            f"#message {{ background: {background}; border: 1px solid {border};"
            f" border-radius: 4px; }} #message QLabel {{ color: {foreground}; }}"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        close = QPushButton("Dismiss", self)
        close.setFlat(True)
        close.clicked.connect(lambda: self.closed.emit(self))
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

    @property
    def text(self) -> str:
        return self.label.text()


class MessageBar(QWidget):
    """Shows up to :data:`MAX_SHOWN` messages, newest at the bottom, each with Dismiss."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(6, 4, 6, 0)
        self._layout.setSpacing(4)
        self._messages: list[_Message] = []
        self.history: list[tuple[str, str]] = []  # (kind, text) of everything shown
        self.hide()

    def show_message(self, text: str, kind: str = "info") -> None:
        self.history.append((kind, text))
        for shown in self._messages:
            if shown.text == text and shown.kind == kind:  # already on screen: move it last
                self._layout.removeWidget(shown)
                self._layout.addWidget(shown)
                self._messages.remove(shown)
                self._messages.append(shown)
                return
        message = _Message(text, kind, self)
        message.closed.connect(self._remove)
        self._messages.append(message)
        self._layout.addWidget(message)
        while len(self._messages) > MAX_SHOWN:
            self._remove(self._messages[0])
        self.show()

    def texts(self) -> list[str]:
        return [m.text for m in self._messages]

    def clear(self) -> None:
        for message in list(self._messages):
            self._remove(message)

    def _remove(self, message: _Message) -> None:
        if message in self._messages:
            self._messages.remove(message)
            self._layout.removeWidget(message)
            message.deleteLater()
        if not self._messages:
            self.hide()
