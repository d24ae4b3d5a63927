"""The PySide6 desktop app; the only package in samdesk that imports Qt."""
