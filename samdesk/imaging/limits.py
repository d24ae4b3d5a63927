"""The decompression-bomb cap: how many pixels samdesk decodes into memory in one call.

The cap is checked against the size an image's HEADER declares, before any pixel is decoded, so a
20-byte PNG claiming 100,000 x 100,000 pixels is refused without allocating anything. Pillow's own
global guard (``PIL.Image.MAX_IMAGE_PIXELS``) is never changed; samdesk opens files through the
plugin that matches their signature and applies its own per-call cap instead (ADR 0031).
"""

from __future__ import annotations

import os
from pathlib import Path

from samdesk.errors import InputError
from samdesk.imaging.errors import DamagedImageError, TooManyPixelsError

DEFAULT_MAX_PIXELS: int = 178_956_970
"""The default cap, the same number as Pillow's ``MAX_IMAGE_PIXELS`` (about 179 MP)."""

ENV_VAR = "SAMDESK_MAX_IMAGE_PIXELS"


def resolve_max_pixels(max_pixels: int | None = None) -> int:
    """The cap in force: ``max_pixels`` if given, else ``$SAMDESK_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`. Raises :class:`InputError` for a cap that is not a positive
    whole number (the message names the environment variable when that is the culprit)."""
    if max_pixels is not None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
            raise InputError(f"max_pixels must be a positive whole number, not {max_pixels!r}")
        return max_pixels
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(
            f"The environment variable {ENV_VAR}={text!r} is not a positive whole number of "
            f"pixels. Set it to e.g. 500000000, or unset it to use the default "
            f"({DEFAULT_MAX_PIXELS:,})."
        )
    return value


def check_size(path: Path, width: int, height: int) -> None:
    """Raise :class:`DamagedImageError` when a header declares a width or height below 1 (such
    a file holds nothing to show, and sizes derived from it would divide by zero)."""
    if width < 1 or height < 1:
        raise DamagedImageError(
            f"{path.name}: the header declares an image of {width} x {height} pixels, which "
            "holds nothing to show. The file is damaged; copy it again from its source or "
            "re-export it."
        )


def check_pixels(path: Path, width: int, height: int, limit: int, *, planes: int = 1) -> None:
    """Raise :class:`TooManyPixelsError` when ``width * height * planes`` exceeds ``limit``
    (and :class:`DamagedImageError` for an empty size, see :func:`check_size`).

    ``planes`` counts extra 2-D planes decoded together (e.g. the pages of a volume); it is 1 for
    an ordinary image."""
    check_size(path, width, height)
    pixels = width * height * max(planes, 1)
    if pixels > limit:
        raise TooManyPixelsError(path, width, height, pixels, limit)
