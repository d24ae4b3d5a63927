"""Typed errors for everything samdesk reports to a user or a calling script.

Every error samdesk raises on purpose derives from :class:`SamdeskError`. Its message is written
for the person at the keyboard: it says what went wrong and what to do about it. Callers (the
app, the CLI) catch ``SamdeskError`` and show ``str(err)``; anything else is a bug and is
reported as such.

This module imports nothing but the standard library, so every layer may use it.
"""

from __future__ import annotations


class SamdeskError(Exception):
    """Base class of every error samdesk raises deliberately."""


# --- input given by a caller ------------------------------------------------------------------


class InputError(SamdeskError, ValueError):
    """An argument has the wrong shape, dtype, range or combination."""


class PromptError(InputError):
    """A prompt (points, labels, box, mask input) cannot be used as given."""


class CancelledError(SamdeskError):
    """A long operation (encoding, download, export) was cancelled by the caller."""


# --- images -----------------------------------------------------------------------------------


class ImageError(SamdeskError):
    """An image cannot be read. The message names the file."""


class NotAnImageError(ImageError):
    """The file is empty or is not an image in any format samdesk knows."""


class TruncatedImageError(ImageError):
    """The file is an image but ends early; samdesk never invents the missing pixels."""


class ImageTooLargeError(ImageError):
    """The image is larger than the configured pixel cap (a guard against decompression bombs)."""


class CodecMissingError(ImageError):
    """The image needs a decoder or an optional package that is not installed."""


class ImageChangedError(ImageError):
    """The image on disk no longer matches the one the annotations were made on."""


# --- models -----------------------------------------------------------------------------------


class ModelError(SamdeskError):
    """A model cannot be used (unknown name, wrong device, out of memory, ...)."""


class CheckpointError(ModelError):
    """A checkpoint file is not a valid SAM-family checkpoint. The message names the file."""


class DeviceError(ModelError):
    """The requested device (e.g. CUDA) is not available or ran out of memory."""


class DownloadError(SamdeskError):
    """A download failed; the message says why (no network, proxy, hash mismatch, disk full)."""


class CacheError(SamdeskError):
    """The embedding cache cannot be used (e.g. its folder is not writable)."""


# --- projects and formats ---------------------------------------------------------------------


class ProjectError(SamdeskError):
    """A project file cannot be opened or saved."""


class ProjectVersionError(ProjectError):
    """The project was written by a newer samdesk and is refused rather than misread."""


class CorruptProjectError(ProjectError):
    """The project file is damaged; it is never overwritten."""


class SaveError(ProjectError):
    """Saving failed; the previous file on disk is unchanged."""


class FormatError(SamdeskError):
    """An import or export file is malformed. ``problems`` lists JSON paths and messages."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems: list[str] = list(problems or [])
        if self.problems:
            shown = "\n".join(f"  - {p}" for p in self.problems[:10])
            more = len(self.problems) - 10
            if more > 0:
                shown += f"\n  ... and {more} more"
            message = f"{message}\n{shown}"
        super().__init__(message)


class SettingsError(SamdeskError):
    """The settings cannot be read; samdesk falls back to defaults and says so."""
