"""Model manager: the registered and imported models with their install and verification state;
download (progress bar, cancel, resumable), import a checkpoint file, verify, use.

Every long step runs on a background thread (:class:`samdesk.ui.jobs.BackgroundJob`), so the
window stays responsive; one job at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from samdesk.engine.store import ModelStatus, ModelStore
from samdesk.ui.jobs import BackgroundJob

ROLE = Qt.ItemDataRole.UserRole


def installed_models(store: ModelStore | None = None) -> list[tuple[str, str, bool, str]]:
    """(name, title, installed, note) for every registered or imported model."""
    rows = (store or ModelStore()).list_models()
    return [(r.name, r.display_name, r.installed, r.note) for r in rows]


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


class ModelManager(QDialog):
    """Lists models; downloads, imports and verifies them on a background thread."""

    def __init__(
        self,
        store: ModelStore,
        choose_file: Callable[[], Path | None],
        use: Callable[[str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.store = store
        self.choose_file = choose_file
        self.use = use
        self.job: BackgroundJob | None = None
        layout = QVBoxLayout(self)
        self.table = QTreeWidget(self)
        self.table.setHeaderLabels(["Model", "Architecture", "Size", "State"])
        self.table.setRootIsDecorated(False)
        self.table.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            self.table.header().setSectionResizeMode(
                column, QHeaderView.ResizeMode.ResizeToContents
            )
        self.table.setMinimumWidth(self.fontMetrics().horizontalAdvance("M") * 48)
        layout.addWidget(self.table, 1)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details)
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        row = QHBoxLayout()
        self.download_button = QPushButton("Download", self)
        self.cancel_button = QPushButton("Cancel download", self)
        self.import_button = QPushButton("Import file…", self)
        self.verify_button = QPushButton("Verify", self)
        self.use_button = QPushButton("Use this model", self)
        close = QPushButton("Close", self)
        for button in (
            self.download_button,
            self.cancel_button,
            self.import_button,
            self.verify_button,
            self.use_button,
        ):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button.clicked.connect(self.cancel_job)
        self.import_button.clicked.connect(lambda: self.import_file())
        self.verify_button.clicked.connect(self.verify_selected)
        self.use_button.clicked.connect(self.use_selected)
        close.clicked.connect(self.close)
        self.table.currentItemChanged.connect(lambda *_: self._update())
        self.refresh()

    # --- listing ----------------------------------------------------------------------------

    def rows(self) -> list[ModelStatus]:
        return [
            self.table.topLevelItem(i).data(0, ROLE) for i in range(self.table.topLevelItemCount())
        ]

    def refresh(self, select: str | None = None) -> None:
        current = select or (self.selected().name if self.selected() else None)
        self.table.clear()
        for status in self.store.list_models():
            item = QTreeWidgetItem(
                [status.display_name, status.arch, _size(status.size), status.state]
            )
            item.setData(0, ROLE, status)
            item.setToolTip(0, status.note)
            self.table.addTopLevelItem(item)
            if status.name == current:
                self.table.setCurrentItem(item)
        if self.table.currentItem() is None and self.table.topLevelItemCount():
            self.table.setCurrentItem(self.table.topLevelItem(0))
        self._update()

    def select(self, name: str) -> bool:
        for i in range(self.table.topLevelItemCount()):
            item = self.table.topLevelItem(i)
            if item.data(0, ROLE).name == name:
                self.table.setCurrentItem(item)
                return True
        return False

    def selected(self) -> ModelStatus | None:
        item = self.table.currentItem()
        return item.data(0, ROLE) if item is not None else None

    def _update(self) -> None:
        status = self.selected()
        busy = self.job is not None
        self.cancel_button.setVisible(busy)
        self.import_button.setEnabled(not busy)
        if status is None:
            for button in (self.download_button, self.verify_button, self.use_button):
                button.setEnabled(False)
            self.details.setText("")
            return
        self.download_button.setEnabled(
            not busy and status.kind == "registry" and not status.installed
        )
        self.verify_button.setEnabled(not busy and status.installed)
        self.use_button.setEnabled(status.installed and status.state != "damaged")
        where = f"\nFile: {status.path}" if status.path else ""
        partial = 0 if status.kind != "registry" else self.store.partial_download(status.name)
        resume = f"\n{_size(partial)} already downloaded: Download resumes." if partial else ""
        self.details.setText(f"{status.note}{where}{resume}")

    # --- jobs ---------------------------------------------------------------------------------

    def _start(self, job: BackgroundJob, text: str, on_success: Callable[[object], None]) -> None:
        self.job = job
        self.status.setText(text)
        self.progress.setRange(0, 0)
        self.progress.show()
        job.progress.connect(self._progress)
        job.succeeded.connect(on_success)
        job.failed.connect(self._failed)
        job.finished.connect(self._finished)
        self._update()
        job.start()

    def _progress(self, done: int, total: int | None) -> None:
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.status.setText(f"Downloading … {_size(done)} of {_size(total)}")
        else:
            self.progress.setRange(0, 0)
            self.status.setText(f"Downloading … {_size(done)}")

    def _failed(self, message: str) -> None:
        self.status.setText(message)

    def _finished(self) -> None:
        job, self.job = self.job, None
        self.progress.hide()
        if job is not None:
            job.deleteLater()
        self.refresh()

    def cancel_job(self) -> None:
        if self.job is not None:
            self.job.cancel.cancel("cancelled by the user")

    def download_selected(self) -> None:
        status = self.selected()
        if status is None or self.job is not None:
            return
        name = status.name

        def work(progress, cancel):
            return self.store.download(name, progress=progress, cancel=cancel)

        self._start(
            BackgroundJob(work, f"download {name}", self),
            f"Downloading {status.display_name} …",
            lambda record: self._done(name, f"{status.display_name} downloaded: {record.state}."),
        )

    def import_file(self, path: Path | None = None) -> None:
        if self.job is not None:
            return
        path = path or self.choose_file()
        if path is None:
            return

        def work(progress, cancel):
            return self.store.import_model(path)

        self._start(
            BackgroundJob(work, "import model", self),
            f"Checking {path.name} (reading the whole file) …",
            lambda record: self._done(
                record.name, f"Imported {path.name} as {record.name!r}: {record.state}."
            ),
        )

    def verify_selected(self) -> None:
        status = self.selected()
        if status is None or self.job is not None:
            return
        name = status.name

        def work(progress, cancel):
            return self.store.verify(name)

        self._start(
            BackgroundJob(work, f"verify {name}", self),
            f"Verifying {status.display_name} …",
            lambda rows: self._done(name, f"{status.display_name}: {rows[0].state}."),
        )

    def _done(self, name: str, text: str) -> None:
        self.status.setText(text)
        self.refresh(select=name)

    def use_selected(self) -> None:
        status = self.selected()
        if status is not None and status.installed:
            self.use(status.name)
            self.status.setText(f"Loading {status.display_name} …")

    def closeEvent(self, event) -> None:
        if self.job is not None:
            self.job.stop(2.0)
        super().closeEvent(event)
