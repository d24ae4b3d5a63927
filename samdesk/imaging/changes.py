"""Detecting an image replaced on disk after it was annotated (fault 16 of faults-to-try.md).

Annotations are stored in the oriented frame of the image they were drawn on. If the file is
later replaced by one of another size (or rotated by a tool that rewrote its EXIF orientation),
drawing them on the new file would silently misalign them; :func:`check_unchanged` refuses.
"""

from __future__ import annotations

import os
from pathlib import Path

from samdesk.imaging.errors import ImageMismatchError
from samdesk.imaging.files import file_sha256
from samdesk.imaging.loader import probe_image


def check_unchanged(
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    content_hash: str | None = None,
    max_pixels: int | None = None,
) -> None:
    """Raise :class:`ImageMismatchError` (an ``ImageChangedError``) unless the image at ``path``
    still has the oriented size ``width`` x ``height`` and, when ``content_hash`` (SHA-256 hex)
    is given, the same bytes. The size is read from the header only; the hash costs one read of
    the file. Errors reading the file (missing, not an image...) propagate as they are."""
    path = Path(path)
    info = probe_image(path, max_pixels=max_pixels)
    if (info.width, info.height) != (width, height):
        raise ImageMismatchError(path, (width, height), (info.width, info.height))
    if content_hash is not None:
        actual = file_sha256(path)
        if actual.lower() != content_hash.lower():
            raise ImageMismatchError(path, (width, height), (info.width, info.height))
