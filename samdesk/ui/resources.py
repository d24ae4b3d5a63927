"""Icons and other files from the ``resources/`` folder (drawn for samdesk)."""

from __future__ import annotations

from PySide6.QtGui import QIcon

from samdesk.ui.sample import resources_dir


def app_icon() -> QIcon:
    """The window icon (resources/icons/samdesk.svg); a null icon when the file is absent,
    e.g. in an installation without the resources folder."""
    path = resources_dir() / "icons" / "samdesk.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()
