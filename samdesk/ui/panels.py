"""The side panels: file list, labels, instances and the object being segmented."""

from __future__ import annotations

from collections import Counter

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

ID_ROLE = Qt.ItemDataRole.UserRole
FAILED_COLOR = QColor(200, 40, 40)


def swatch(color: tuple[int, int, int], size: int = 14) -> QIcon:
    """A small rounded colour square for a label."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(*color))
    painter.setPen(QColor(0, 0, 0, 90))
    painter.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    painter.end()
    return QIcon(pixmap)


# --- files ------------------------------------------------------------------------------------


class FileList(QTreeWidget):
    """The images of the project with their status and instance count."""

    image_activated = Signal(object)

    COLUMNS = ("Image", "Status", "Objects")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.header().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.header().setStretchLastSection(False)
        self._items: dict[int | str, QTreeWidgetItem] = {}
        self.failed: dict[int | str, str] = {}
        self.itemActivated.connect(self._activated)
        self.itemClicked.connect(self._activated)

    def set_images(self, rows: list[tuple[int, str, str, int]]) -> None:
        """Rows of (image_id, file name, status, instance count), in display order."""
        self.clear()
        self._items = {}
        self.failed = {}
        for image_id, name, status, count in rows:
            item = QTreeWidgetItem([name, status, str(count)])
            item.setData(0, ID_ROLE, image_id)
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.addTopLevelItem(item)
            self._items[image_id] = item

    def add_unreadable(self, key: str, name: str, message: str) -> None:
        """A file that could not even be added (its header is unreadable): listed, marked."""
        item = QTreeWidgetItem([name, "", ""])
        item.setData(0, ID_ROLE, key)
        self.addTopLevelItem(item)
        self._items[key] = item
        self.mark_failed(key, message)

    def ids(self) -> list[int | str]:
        """Row ids in display order: Document image ids, and text keys for unreadable files."""
        return [self.topLevelItem(i).data(0, ID_ROLE) for i in range(self.topLevelItemCount())]

    def update_image(
        self, image_id: int, *, status: str | None = None, count: int | None = None
    ) -> None:
        item = self._items.get(image_id)
        if item is None:
            return
        if status is not None and image_id not in self.failed:
            item.setText(1, status)
        if count is not None:
            item.setText(2, str(count))

    def mark_failed(self, image_id: int, message: str) -> None:
        item = self._items.get(image_id)
        if item is None:
            return
        self.failed[image_id] = message
        item.setText(1, "cannot open")
        for column in range(self.columnCount()):
            item.setForeground(column, QBrush(FAILED_COLOR))
            item.setToolTip(column, message)

    def mark_prefetched(self, image_id: int, ok: bool) -> None:
        item = self._items.get(image_id)
        if item is not None and image_id not in self.failed:
            tip = "Encoded in the background: opens instantly." if ok else ""
            item.setToolTip(0, tip)

    def status_of(self, image_id: int) -> str:
        item = self._items.get(image_id)
        return item.text(1) if item is not None else ""

    def select(self, image_id: int) -> None:
        item = self._items.get(image_id)
        if item is not None:
            self.setCurrentItem(item)
            self.scrollToItem(item)

    def neighbour(self, image_id: int | None, step: int) -> str | None:
        """The image ``step`` rows after (or before) ``image_id``, or None at either end."""
        ids = self.ids()
        if not ids:
            return None
        if image_id not in ids:
            return ids[0] if step > 0 else ids[-1]
        index = ids.index(image_id) + step
        return ids[index] if 0 <= index < len(ids) else None

    def _activated(self, item: QTreeWidgetItem) -> None:
        self.image_activated.emit(item.data(0, ID_ROLE))


# --- labels -----------------------------------------------------------------------------------


class LabelPanel(QWidget):
    """Labels with colours; type to search, Enter on a new name creates it; 1-9 pick."""

    label_chosen = Signal(str)
    label_created = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Type to find or add a label…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self.commit)
        self.list.currentItemChanged.connect(self._current_changed)
        self._labels: list[str] = []

    def set_labels(self, labels: list[tuple[str, tuple[int, int, int]]], current: str) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self._labels = [name for name, _ in labels]
        for index, (name, color) in enumerate(labels):
            key = f"{index + 1}  " if index < 9 else "    "
            item = QListWidgetItem(swatch(color), f"{key}{name}")
            item.setData(ID_ROLE, name)
            self.list.addItem(item)
            if name == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self._filter(self.search.text())

    def labels(self) -> list[str]:
        return list(self._labels)

    def current(self) -> str | None:
        item = self.list.currentItem()
        return item.data(ID_ROLE) if item is not None else None

    def choose(self, name: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(ID_ROLE) == name:
                self.list.setCurrentRow(row)
                return

    def choose_index(self, index: int) -> bool:
        """Keys 1-9: pick the label in that position (0-based index)."""
        if 0 <= index < len(self._labels):
            self.choose(self._labels[index])
            return True
        return False

    def _filter(self, text: str) -> None:
        needle = text.strip().casefold()
        first_match = None
        for row in range(self.list.count()):
            item = self.list.item(row)
            hidden = bool(needle) and needle not in item.data(ID_ROLE).casefold()
            item.setHidden(hidden)
            if not hidden and first_match is None:
                first_match = item
        if needle and first_match is not None:
            self.list.setCurrentItem(first_match)

    def commit(self) -> None:
        """Enter in the search box: choose the label found, or create the one typed."""
        text = " ".join(self.search.text().split())
        if not text:
            return
        exact = [name for name in self._labels if name.casefold() == text.casefold()]
        if exact:
            self.choose(exact[0])
            self.label_chosen.emit(exact[0])
        else:
            visible = [
                self.list.item(r).data(ID_ROLE)
                for r in range(self.list.count())
                if not self.list.item(r).isHidden()
            ]
            if visible and text.casefold() in visible[0].casefold():
                self.choose(visible[0])
                self.label_chosen.emit(visible[0])
            else:
                self.label_created.emit(text)
        self.search.clear()

    def _current_changed(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is not None:
            self.label_chosen.emit(item.data(ID_ROLE))

    @property
    def typing(self) -> bool:
        """The search box has the keyboard (Enter and Esc belong to it then)."""
        return self.search.hasFocus()


# --- instances --------------------------------------------------------------------------------


class InstancePanel(QWidget):
    """The instances of the current image: select, show/hide, relabel, delete; counts."""

    selected = Signal(object)  # instance id or None
    visibility_changed = Signal(object, bool)
    delete_requested = Signal(object)
    relabel_requested = Signal(object, str)  # instance id, new label

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Label", "Score"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        buttons = QHBoxLayout()
        self.relabel_button = QPushButton("Relabel", self)
        self.relabel_button.setToolTip("Give the selected object the current label")
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.setToolTip("Delete the selected object (Delete)")
        buttons.addWidget(self.relabel_button)
        buttons.addWidget(self.delete_button)
        layout.addWidget(self.tree)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self._labels: list[str] = []
        self.current_label = ""
        self._updating = False
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.delete_button.clicked.connect(self._delete_current)
        self.relabel_button.clicked.connect(self._relabel_current)
        self._update_buttons()

    def set_instances(
        self,
        rows: list[tuple[int, str, tuple[int, int, int], float | None, bool]],
        labels: list[str],
        selected: int | None,
    ) -> None:
        """Rows of (instance id, label, colour, score, visible)."""
        self._updating = True
        self._labels = labels
        self.tree.clear()
        for number, (iid, label, color, score, visible) in enumerate(rows, start=1):
            item = QTreeWidgetItem([f"{label}  #{number}", "" if score is None else f"{score:.2f}"])
            item.setData(0, ID_ROLE, iid)
            item.setIcon(0, swatch(color))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
            item.setToolTip(0, "Untick to hide this object on the image")
            self.tree.addTopLevelItem(item)
            if iid == selected:
                self.tree.setCurrentItem(item)
        counts = Counter(label for _, label, _, _, _ in rows)
        if counts:
            parts = ", ".join(f"{n} × {label}" for label, n in sorted(counts.items()))
            total = sum(counts.values())
            self.summary.setText(f"{total} object{'' if total == 1 else 's'}: {parts}")
        else:
            self.summary.setText("No objects yet: click on the image, then press Enter.")
        self._updating = False
        self._update_buttons()

    def current_id(self) -> int | None:
        item = self.tree.currentItem()
        return item.data(0, ID_ROLE) if item is not None else None

    def ids(self) -> list[str]:
        return [
            self.tree.topLevelItem(i).data(0, ID_ROLE) for i in range(self.tree.topLevelItemCount())
        ]

    def select(self, instance_id: int | None) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, ID_ROLE) == instance_id:
                self.tree.setCurrentItem(item)
                return
        self.tree.setCurrentItem(None)

    def _update_buttons(self) -> None:
        has = self.tree.currentItem() is not None
        self.delete_button.setEnabled(has)
        self.relabel_button.setEnabled(has)

    def _current_changed(self, item: QTreeWidgetItem | None, _previous=None) -> None:
        self._update_buttons()
        if not self._updating:
            self.selected.emit(item.data(0, ID_ROLE) if item is not None else None)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._updating or column != 0:
            return
        visible = item.checkState(0) == Qt.CheckState.Checked
        self.visibility_changed.emit(item.data(0, ID_ROLE), visible)

    def _delete_current(self) -> None:
        iid = self.current_id()
        if iid is not None:
            self.delete_requested.emit(iid)

    def _relabel_current(self) -> None:
        iid = self.current_id()
        if iid is not None and self.current_label:
            self.relabel_requested.emit(iid, self.current_label)

    def _menu(self, pos) -> None:
        item = self.tree.itemAt(pos)
        if item is None:
            return
        iid = item.data(0, ID_ROLE)
        menu = QMenu(self)
        relabel = menu.addMenu("Relabel as")
        for label in self._labels:
            relabel.addAction(label, lambda _=False, lb=label: self.relabel_requested.emit(iid, lb))
        menu.addAction("Delete", lambda: self.delete_requested.emit(iid))
        menu.exec(self.tree.viewport().mapToGlobal(pos))
        menu.deleteLater()


# --- the object being segmented ---------------------------------------------------------------


class ObjectPanel(QWidget):
    """SAM's candidates for the current object with their predicted IoU; Accept and Clear."""

    candidate_chosen = Signal(int)
    accept_requested = Signal()
    clear_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.info = QLabel("Click on an object: left = include, right = exclude, drag = box.")
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        row = QHBoxLayout()
        self.buttons: list[QPushButton] = []
        for index in range(3):
            button = QPushButton(self)
            button.setCheckable(True)
            button.setToolTip("SAM's candidate masks for an ambiguous click (Tab cycles)")
            button.clicked.connect(lambda _=False, i=index: self.candidate_chosen.emit(i))
            button.hide()
            row.addWidget(button)
            self.buttons.append(button)
        layout.addLayout(row)
        actions = QHBoxLayout()
        self.accept_button = QPushButton("Accept (Enter)", self)
        self.clear_button = QPushButton("Clear (Esc)", self)
        self.accept_button.clicked.connect(self.accept_requested)
        self.clear_button.clicked.connect(self.clear_requested)
        actions.addWidget(self.accept_button)
        actions.addWidget(self.clear_button)
        layout.addLayout(actions)
        self.show_state(0, None, None, 0, False)

    def show_state(
        self,
        prompts: int,
        scores: list[float] | None,
        chosen: int | None,
        edits: int,
        waiting: bool,
    ) -> None:
        has_mask = scores is not None or edits > 0
        self.accept_button.setEnabled(has_mask)
        self.clear_button.setEnabled(prompts > 0 or has_mask)
        for index, button in enumerate(self.buttons):
            if scores is not None and len(scores) > 1 and index < len(scores):
                button.setText(f"{index + 1}: IoU {scores[index]:.2f}")
                button.setChecked(index == chosen)
                button.show()
            else:
                button.hide()
        if prompts == 0 and not has_mask:
            text = "Click on an object: left = include, right = exclude, drag = box."
        else:
            parts = [f"{prompts} prompt{'s' if prompts != 1 else ''}"]
            if edits:
                parts.append(f"{edits} brush edit{'s' if edits != 1 else ''}")
            if waiting:
                parts.append("segmenting …")
            elif scores is not None and len(scores) == 1 and not edits:
                parts.append(f"predicted IoU {scores[0]:.2f}")
            text = ", ".join(parts)
        self.info.setText(text)
