"""samdesk: desktop image annotation with Segment Anything.

Layers (enforced by ``tests/test_layers.py`` through import-linter):

* ``samdesk.imaging``    reading images of every kind into arrays (numpy, OpenCV, Pillow).
* ``samdesk.model``      torch networks and checkpoint loading.
* ``samdesk.engine``     predictor, caches, model registry, downloads, background jobs (no Qt).
* ``samdesk.annotation`` document, geometry, formats (no torch, no Qt).
* ``samdesk.ui``         the PySide6 application, the only package that imports Qt.
* ``samdesk.cli``        headless commands.
"""

__version__ = "0.1.0"
