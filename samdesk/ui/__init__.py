"""The PySide6 desktop app; the only package in samdesk that imports Qt."""

from samdesk.ui.qtcompat import protect_singletons

protect_singletons()
