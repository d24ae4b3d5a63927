"""The main window's menus, toolbar and keyboard shortcuts, in one table.

Shortcuts (also listed in Help > Keyboard shortcuts):

=========================  ===========================================================
Left click / Shift+click   positive point / negative point (right click: negative)
Left drag                  box
Enter                      accept the mask as an object with the current label
Esc                        clear the object being segmented
Backspace                  remove the last prompt (the mask before it comes back)
Tab                        next candidate mask (ambiguous single click)
1 … 9                      choose label 1 … 9
V / B / E                  prompt tool / brush / eraser
[ and ]                    smaller / bigger brush
G                          edit the selected object's polygon (drag its vertices)
Delete                     delete the selected object
D, PageDown / A, PageUp    next / previous image
F                          fit the image in the window
R                          segment in the visible region (on by itself for huge images)
Ctrl+0, Ctrl++, Ctrl+-     actual pixels, zoom in, zoom out (or the mouse wheel)
Middle drag, Space+drag    pan
Ctrl+Z / Ctrl+Shift+Z      undo / redo (also Ctrl+Y)
Ctrl+D                     mark the image done (again: back to in progress)
Ctrl+S / Ctrl+Shift+S      save / save as
Ctrl+E                     export
Ctrl+O / Ctrl+Shift+O      open image / open folder
=========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

SHORTCUTS_HELP = __doc__.split("Shortcuts (also listed in Help > Keyboard shortcuts):")[1].strip()


@dataclass
class Actions:
    """Every QAction of the main window, by name."""

    by_name: dict[str, QAction]
    recent_menu: QMenu
    model_menu: QMenu
    tool_group: QActionGroup

    def __getitem__(self, name: str) -> QAction:
        return self.by_name[name]


def _action(
    window: QMainWindow,
    text: str,
    slot: Callable[[], object] | None,
    shortcuts: tuple[str | QKeySequence.StandardKey, ...] = (),
    tip: str = "",
    checkable: bool = False,
) -> QAction:
    action = QAction(text, window)
    keys: list[QKeySequence] = []
    for key in shortcuts:
        keys.append(QKeySequence(key))
    if keys:
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        shown = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        tip = f"{tip or text.replace('…', '').replace('&', '')} ({shown})"
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.setCheckable(checkable)
    if slot is not None:
        action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)  # shortcuts work even where no menu shows the action
    return action


def build_actions(window) -> Actions:
    """Create the actions, the menu bar and the toolbar of ``window`` (a MainWindow)."""
    a: dict[str, QAction] = {}
    w = window
    a["open_image"] = _action(w, "Open &image…", w.choose_image, ("Ctrl+O",))
    a["open_folder"] = _action(w, "Open &folder…", w.choose_folder, ("Ctrl+Shift+O",))
    a["open_project"] = _action(w, "Open &project…", w.choose_project)
    a["open_sample"] = _action(w, "Open the sample image", w.open_sample)
    a["save"] = _action(w, "&Save", w.save, ("Ctrl+S",), "Save the project")
    a["save_as"] = _action(w, "Save &as…", w.save_as, ("Ctrl+Shift+S",))
    a["export"] = _action(w, "&Export…", w.export_dialog, ("Ctrl+E",))
    a["close_project"] = _action(w, "&Close project", w.close_project)
    a["quit"] = _action(w, "&Quit", w.close, ("Ctrl+Q",))

    a["undo"] = w.annotator.undo_group.createUndoAction(w, "&Undo")
    a["undo"].setShortcuts([QKeySequence("Ctrl+Z")])
    a["redo"] = w.annotator.undo_group.createRedoAction(w, "&Redo")
    a["redo"].setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    for name in ("undo", "redo"):
        a[name].setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        w.addAction(a[name])
    # toolbar buttons with a fixed text (the menu's actions say what will be undone)
    group = w.annotator.undo_group
    a["undo_button"] = QAction("Undo", w)
    a["undo_button"].triggered.connect(group.undo)
    group.canUndoChanged.connect(a["undo_button"].setEnabled)
    a["undo_button"].setEnabled(False)
    a["redo_button"] = QAction("Redo", w)
    a["redo_button"].triggered.connect(group.redo)
    group.canRedoChanged.connect(a["redo_button"].setEnabled)
    a["redo_button"].setEnabled(False)
    group.undoTextChanged.connect(lambda text: a["undo_button"].setToolTip(f"Undo {text}"))
    group.redoTextChanged.connect(lambda text: a["redo_button"].setToolTip(f"Redo {text}"))
    a["accept"] = _action(w, "&Accept object", w.accept_object, ("Return", "Enter"))
    a["clear"] = _action(w, "&Clear object", w.clear_object, ("Esc",))
    a["remove_prompt"] = _action(
        w, "&Remove last prompt", w.annotator.remove_last_prompt, ("Backspace",)
    )
    a["next_candidate"] = _action(w, "&Next candidate", w.annotator.cycle_candidate, ("Tab",))
    a["delete"] = _action(w, "&Delete selected object", w.delete_selected, ("Delete",))
    a["relabel"] = _action(w, "Re&label selected object", w.relabel_selected)
    a["new_label"] = _action(w, "New &label…", w.new_label)

    a["fit"] = _action(w, "&Fit image", w.canvas.fit, ("F",))
    a["actual"] = _action(w, "&Actual pixels", lambda: w.canvas.set_zoom(1.0), ("Ctrl+0",))
    a["zoom_in"] = _action(
        w, "Zoom &in", lambda: w.canvas.set_zoom(w.canvas.zoom * 1.25), ("Ctrl++", "Ctrl+=")
    )
    a["zoom_out"] = _action(
        w, "Zoom &out", lambda: w.canvas.set_zoom(w.canvas.zoom / 1.25), ("Ctrl+-",)
    )
    a["region_mode"] = _action(
        w,
        "Segment in the visible &region",
        w.region_mode_triggered,
        ("R",),
        "Encode only the part of the image in view, for small objects in huge images",
        checkable=True,
    )

    tools = QActionGroup(w)
    a["tool_prompt"] = _action(
        w, "&Prompt tool", lambda: w.set_tool("prompt"), ("V",), checkable=True
    )
    a["tool_brush"] = _action(w, "&Brush", lambda: w.set_tool("brush"), ("B",), checkable=True)
    a["tool_eraser"] = _action(w, "&Eraser", lambda: w.set_tool("eraser"), ("E",), checkable=True)
    for name in ("tool_prompt", "tool_brush", "tool_eraser"):
        tools.addAction(a[name])
    a["tool_prompt"].setChecked(True)
    a["brush_smaller"] = _action(w, "Smaller brush", lambda: w.resize_brush(1 / 1.25), ("[",))
    a["brush_bigger"] = _action(w, "Bigger brush", lambda: w.resize_brush(1.25), ("]",))
    a["polygon"] = _action(
        w, "Edit &polygon of selected object", w.toggle_polygon_edit, ("G",), checkable=True
    )

    a["next_image"] = _action(w, "&Next image", w.next_image, ("D", "PgDown"))
    a["previous_image"] = _action(w, "&Previous image", w.previous_image, ("A", "PgUp"))
    a["mark_done"] = _action(w, "Mark image &done", w.toggle_done, ("Ctrl+D",))

    a["manage_models"] = _action(w, "&Manage models…", w.manage_models)
    a["import_model"] = _action(w, "&Import model file…", w.import_model)
    a["shortcuts"] = _action(w, "&Keyboard shortcuts", w.show_shortcuts, ("F1",))
    a["about"] = _action(w, "&About samdesk", w.show_about)

    for index in range(9):
        _action(w, f"Label {index + 1}", lambda i=index: w.choose_label_index(i), (str(index + 1),))

    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    for name in ("open_image", "open_folder", "open_project", "open_sample"):
        file_menu.addAction(a[name])
    recent_menu = file_menu.addMenu("Open &recent")
    file_menu.addSeparator()
    for name in ("save", "save_as", "export"):
        file_menu.addAction(a[name])
    file_menu.addSeparator()
    file_menu.addAction(a["close_project"])
    file_menu.addAction(a["quit"])

    edit = bar.addMenu("&Edit")
    for name in ("undo", "redo", None, "accept", "clear", "remove_prompt", "next_candidate"):
        edit.addAction(a[name]) if name else edit.addSeparator()
    edit.addSeparator()
    for name in ("delete", "relabel", "new_label"):
        edit.addAction(a[name])

    view = bar.addMenu("&View")
    for name in ("fit", "actual", "zoom_in", "zoom_out", None, "region_mode"):
        view.addAction(a[name]) if name else view.addSeparator()
    w.view_menu = view

    tools_menu = bar.addMenu("&Tools")
    for name in (
        "tool_prompt",
        "tool_brush",
        "tool_eraser",
        None,
        "brush_smaller",
        "brush_bigger",
        None,
        "polygon",
    ):
        tools_menu.addAction(a[name]) if name else tools_menu.addSeparator()

    image = bar.addMenu("&Image")
    for name in ("next_image", "previous_image", "mark_done"):
        image.addAction(a[name])

    model_menu = bar.addMenu("&Model")
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a["shortcuts"])
    help_menu.addAction(a["about"])

    toolbar = QToolBar("Tools", w)
    toolbar.setObjectName("toolbar")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for name in (
        "open_folder",
        "save",
        None,
        "undo_button",
        "redo_button",
        None,
        "tool_prompt",
        "tool_brush",
        "tool_eraser",
        None,
        "accept",
        "fit",
        None,
        "previous_image",
        "next_image",
    ):
        toolbar.addAction(a[name]) if name else toolbar.addSeparator()
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    return Actions(a, recent_menu, model_menu, tools)
