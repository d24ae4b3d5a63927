"""Reading images of every kind into numpy arrays (imports neither torch nor Qt).

Public API (others code against these names):

- :func:`probe_image` -> :class:`ImageInfo` from the header only (oriented size, format, mode,
  frames); :func:`load_image` -> :class:`LoadedImage` with ``rgb`` (H, W, 3) uint8 in the
  oriented frame, ``raw`` original samples, ``content_hash`` and ``notes``.
- :func:`read_region` (RGB of a box of the oriented frame) and :func:`thumbnail`, decoding only
  what the format allows (see :mod:`samdesk.imaging.region`).
- :func:`check_unchanged`: refuses an image replaced on disk since it was annotated.
- :func:`file_sha256`, :data:`SUPPORTED_SUFFIXES`, :func:`list_images`.
- :data:`DEFAULT_MAX_PIXELS`: the decompression-bomb cap, raised per call with ``max_pixels`` or
  for the whole process with the environment variable ``SAMDESK_MAX_IMAGE_PIXELS``.

Errors are those of :mod:`samdesk.errors` (NotAnImageError, TruncatedImageError,
ImageTooLargeError, CodecMissingError, ImageError), each naming the file.
"""

from samdesk.imaging.changes import check_unchanged
from samdesk.imaging.errors import DamagedImageError, ImageMismatchError, TooManyPixelsError
from samdesk.imaging.files import SUPPORTED_SUFFIXES, file_sha256, list_images
from samdesk.imaging.info import ImageInfo, LoadedImage
from samdesk.imaging.limits import DEFAULT_MAX_PIXELS
from samdesk.imaging.loader import load_image, probe_image
from samdesk.imaging.region import read_region, thumbnail

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "DamagedImageError",
    "ImageInfo",
    "ImageMismatchError",
    "LoadedImage",
    "TooManyPixelsError",
    "check_unchanged",
    "file_sha256",
    "list_images",
    "load_image",
    "probe_image",
    "read_region",
    "thumbnail",
]
