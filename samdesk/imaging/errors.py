"""Image errors with extra facts attached, subclassing the shared ones in :mod:`samdesk.errors`.

Callers may catch the base classes (``ImageTooLargeError``, ``TruncatedImageError``); these
subclasses only add attributes a caller can use (e.g. to offer a region view of a huge image).
"""

from __future__ import annotations

from pathlib import Path

from samdesk.errors import ImageTooLargeError, TruncatedImageError


class TooManyPixelsError(ImageTooLargeError):
    """The header declares more pixels than the cap allows; nothing was decoded.

    ``width`` and ``height`` are the size the header declares (stored frame), ``pixels`` the
    number that would have been decoded, ``limit`` the cap that refused them.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        pixels: int,
        limit: int,
        *,
        subject: str = "the image",
    ) -> None:
        self.path = path
        self.width = width
        self.height = height
        self.pixels = pixels
        self.limit = limit
        super().__init__(
            f"{path.name}: {subject} is {width:,} x {height:,} pixels ({pixels / 1e6:,.0f} MP), "
            f"more than samdesk's limit of {limit:,} pixels ({limit / 1e6:,.0f} MP), a guard "
            "against decompression bombs. If you trust this file, raise the limit: set the "
            f"environment variable SAMDESK_MAX_IMAGE_PIXELS={_suggest(pixels)} (or pass "
            "max_pixels=... when calling from a script), or open only a region of it."
        )


class DamagedImageError(TruncatedImageError):
    """The image data is damaged (not only cut short); samdesk never invents the lost pixels."""


def _suggest(pixels: int) -> int:
    """A round cap just above ``pixels`` for the message (e.g. 400_000_000 -> 500_000_000)."""
    step = 10 ** max(len(str(pixels)) - 1, 0)
    return (pixels // step + 1) * step
