"""``samdesk embed IMAGE_OR_FOLDER... --model M``: precompute embeddings into the disk cache.

Run it overnight on a folder and every image then opens in the app (or ``samdesk segment``)
without waiting for the encoder. Images already cached for this model are skipped; unreadable
images are listed at the end with the reason, and the exit status is 1 if there were any. A
cache folder that cannot be written stops the command (before the model is loaded, or as soon as
writing fails), since keeping the embeddings is its only purpose.

Progress is plain text on stderr: one line rewritten in place (``\\r``) on a terminal, one line
per image otherwise (logs, CI). :class:`ProgressLine` is shared with ``samdesk models``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from samdesk.engine.options import DEVICES, PRECISIONS

NAME = "embed"
HELP = "precompute image embeddings into the cache so images open instantly later"
ORDER = 25


class ProgressLine:
    """A status line: rewritten in place on a terminal, printed only when final otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._width = 0

    def update(self, text: str) -> None:
        """Show transient ``text`` (terminals only)."""
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
            self._width = len(text)

    def done(self, text: str) -> None:
        """Show ``text`` as a permanent line."""
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width) + "\n")
            self._width = 0
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def bar(done: int, total: int, width: int = 24) -> str:
    """``[#####-----]`` for done/total."""
    filled = width if total <= 0 else min(width, width * done // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="IMAGE_OR_FOLDER", help="images, or folders of images"
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="PATH_OR_NAME",
        help="a model name (vit_b, mobile_sam, ...), an imported custom name or a checkpoint",
    )
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from samdesk.engine.cache import DiskCache, EmbeddingCache, MemoryCache
    from samdesk.engine.loading import load_backend
    from samdesk.errors import CacheError, InputError, SamdeskError
    from samdesk.imaging import file_sha256, list_images, load_image

    images: list[Path] = []
    for given in args.paths:
        path = Path(given)
        images.extend(list_images(path) if os.path.isdir(path) else [path])
    if not images:
        raise InputError("no images found in " + ", ".join(args.paths))

    disk = DiskCache()
    disk.check_writable()  # storing is the only purpose: stop before loading anything
    backend = load_backend(args.model, device=args.device, precision=args.precision)
    key = backend.cache_key
    if key is None:
        raise InputError(
            f"{backend.name} computes nothing ahead of time; choose a SAM model to precompute"
        )
    cache = EmbeddingCache(MemoryCache(max_bytes=0), disk)  # nothing to keep in memory here
    print(f"model: {backend.name} on {backend.device}; cache: {disk.folder}", file=sys.stderr)

    line = ProgressLine()
    failed: list[tuple[Path, str]] = []
    encoded = cached = 0
    start = time.perf_counter()
    for n, path in enumerate(images, 1):
        prefix = f"{bar(n - 1, len(images))} {n}/{len(images)} {path.name}"
        line.update(f"{prefix}: reading")
        try:
            if disk.get(file_sha256(path), key) is not None:
                cached += 1
                line.done(f"{prefix}: already cached")
                continue
            image = load_image(path)
            line.update(f"{prefix}: encoding")
            t = time.perf_counter()
            embedding = backend.compute_embedding(image.rgb)
            cache.put(image.content_hash, embedding)
            if disk.warning:  # the cache folder became unwritable: precomputing is pointless
                line.done(f"{prefix}: not stored")
                raise CacheError(
                    f"stopped after {encoded} image(s): the embedding cache folder "
                    f"{disk.folder} can no longer be written. Free some disk space, or set "
                    "SAMDESK_CACHE_DIR to a writable folder, and run the command again (images "
                    "already stored are skipped)."
                )
            encoded += 1
            line.done(f"{prefix}: encoded in {time.perf_counter() - t:.1f} s")
        except CacheError:
            raise
        except SamdeskError as err:
            failed.append((path, str(err)))
            line.done(f"{prefix}: FAILED")
        except OSError as err:
            failed.append((path, err.strerror or str(err)))
            line.done(f"{prefix}: FAILED")

    elapsed = time.perf_counter() - start
    print(
        f"{encoded} encoded, {cached} already cached, {len(failed)} failed "
        f"({len(images)} images, {elapsed:.1f} s)"
    )
    if failed:
        print("could not be embedded:", file=sys.stderr)
        for path, reason in failed:
            shown = reason if path.name in reason else f"{path}: {reason}"
            print(f"  {shown}", file=sys.stderr)
        return 1
    return 0
