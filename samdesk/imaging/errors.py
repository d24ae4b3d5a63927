"""Image errors with extra facts attached, subclassing the shared ones in :mod:`samdesk.errors`.

Callers may catch the base classes (``ImageTooLargeError``, ``TruncatedImageError``); these
subclasses only add attributes a caller can use (e.g. to offer a region view of a huge image).
"""

from __future__ import annotations

from pathlib import Path

from samdesk.errors import ImageChangedError, ImageTooLargeError, TruncatedImageError


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


class ImageMismatchError(ImageChangedError):
    """The image on disk is not the one the annotations were made on.

    ``expected`` and ``actual`` are (width, height) in the oriented frame; ``size_changed`` is
    False when only the bytes differ (e.g. the image was re-saved or retouched)."""

    def __init__(self, path: Path, expected: tuple[int, int], actual: tuple[int, int]) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        self.size_changed = expected != actual
        if self.size_changed:
            detail = (
                f"it was {expected[0]:,} x {expected[1]:,} pixels when annotated and is now "
                f"{actual[0]:,} x {actual[1]:,}, so the annotations would be misaligned"
            )
        else:
            detail = (
                "its size is the same but its content differs from the annotated file "
                "(it was re-saved, edited or replaced)"
            )
        super().__init__(
            f"{path.name} has changed on disk: {detail}. Restore the original file, or check "
            "the annotations before you keep working on it."
        )


class DamagedImageError(TruncatedImageError):
    """The image data is damaged (not only cut short); samdesk never invents the lost pixels."""


def _suggest(pixels: int) -> int:
    """A round cap just above ``pixels`` for the message (e.g. 400_000_000 -> 500_000_000)."""
    step = 10 ** max(len(str(pixels)) - 1, 0)
    return (pixels // step + 1) * step
