"""Image errors with extra facts attached, subclassing the shared ones in :mod:`samdesk.errors`.

Callers may catch the base classes (``ImageTooLargeError``, ``TruncatedImageError``); these
subclasses only add attributes a caller can use (e.g. to offer a region view of a huge image).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from samdesk.errors import (
    ImageChangedError,
    ImageError,
    ImageTooLargeError,
    SamdeskError,
    TruncatedImageError,
)

log = logging.getLogger(__name__)


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


@contextmanager
def decoder_errors(path: Path) -> Iterator[None]:
    """Turn any exception a decoder library raises while reading ``path`` into a typed
    :class:`~samdesk.errors.ImageError` naming the file (ADR 0060).

    Pillow, tifffile, pydicom, zlib and numpy raise dozens of exception types on malformed
    files (IndexError, ZeroDivisionError, zlib.error, TypeError on a tag holding a tuple, ...);
    the readers map the ones they expect, and this boundary catches the rest, so a damaged file
    never reaches the user as a traceback. Errors samdesk raised on purpose pass unchanged; the
    original exception stays attached as ``__cause__`` and is logged at DEBUG level."""
    try:
        yield
    except SamdeskError:
        raise
    except MemoryError:
        raise ImageError(
            f"{path.name}: not enough memory to decode this image. Close other programs, or "
            "open only a region of it."
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{path.name}: Pillow refuses to decode this image ({exc}); this limit of Pillow's "
            "cannot be raised for this format. Convert the image to PNG or TIFF to open it."
        ) from exc
    except Exception as exc:
        log.debug("decoding %s failed", path, exc_info=True)
        raise unexpected_decoder_error(path, exc) from exc


def unexpected_decoder_error(path: Path, exc: Exception) -> ImageError:
    """The typed error for an exception no reader anticipated: "truncated" when the decoder
    says the data ended early, else "damaged"."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else ""
    if len(reason) < 12:  # e.g. IndexError("0"): the type says more than the text
        reason = f"{type(exc).__name__} {reason}".strip()
    lowered = reason.lower()
    if isinstance(exc, EOFError) or "truncat" in lowered or "incomplete" in lowered:
        return TruncatedImageError(
            f"{path.name}: the file is truncated ({reason}). Copy it again from its source; "
            "samdesk never fills in missing pixels."
        )
    return DamagedImageError(
        f"{path.name}: the image data is damaged and cannot be decoded ({reason}). Copy it "
        "again from its source or re-export it."
    )
