"""Helpers shared by the format modules: strict JSON reading, problem lists with JSON paths,
per-image output names, finding imported images, and writing many files all-or-nothing."""

from __future__ import annotations

import codecs
import contextlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

import numpy as np

from samdesk.annotation import rle
from samdesk.annotation.geometry import Polygons, padded, polygons_many
from samdesk.annotation.project_file import looks_like_project
from samdesk.annotation.records import ImageRecord, InstanceRecord
from samdesk.annotation.safe_io import atomic_write
from samdesk.errors import FormatError, InputError, SaveError

T = TypeVar("T")
R = TypeVar("R")

#: Imported coordinates may stray this far (pixels) outside the image before they are refused.
OUTSIDE_TOLERANCE = 1.0

#: Largest image (width x height) an import accepts: COCO RLE run lengths are 32-bit numbers in
#: pycocotools, so a larger mask cannot be held (about 65,000 x 65,000 pixels).
MAX_PIXELS = 2**32 - 1

_UNICODE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose mark it starts with
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def read_json(path: Path, what: str) -> Any:
    """Parse a UTF-8 JSON file or raise FormatError saying what is wrong: the byte offset of the
    first non-UTF-8 byte, or the line and column of a syntax error. A byte-order mark is
    accepted, and with it UTF-16 and UTF-32 (Windows PowerShell writes UTF-16 by default)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FormatError(f"Cannot read {path}: {err.strerror or err}.") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    encoding = next((name for bom, name in _UNICODE_BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        if encoding != "utf-8":
            raise FormatError(
                f"{path} starts with a {encoding.upper()} byte-order mark but byte {err.start} "
                f"is not valid {encoding.upper()}; re-save it as UTF-8 and import again.",
                [f"byte {err.start}: {err.reason}"],
            ) from None
        raise FormatError(
            f"{path} is not UTF-8 text, so it cannot be a {what} file as written: byte "
            f"{err.start} (0x{data[err.start]:02x}) is not valid UTF-8. It may be in a legacy "
            "encoding such as GBK, Shift-JIS or Latin-1; re-save it as UTF-8 and import again.",
            [f"byte {err.start}: {err.reason}"],
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(
            f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.",
            [f"line {err.lineno}, column {err.colno}: {err.msg}"],
        ) from None
    except RecursionError:
        raise FormatError(f"{path} is nested too deeply to be a {what} file.") from None


class Problems:
    """Collects ``"<json path>: <what is wrong>"`` lines and raises them together."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, path: Path, what: str) -> None:
        if self.items:
            raise FormatError(
                f"{path} is not a valid {what} file ({len(self.items)} problem(s)); nothing "
                "was imported and the project is unchanged.",
                self.items,
            )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def too_large(width: int, height: int) -> str | None:
    """Why an image of this size cannot be imported, or None."""
    if width * height > MAX_PIXELS:
        return (
            f"{width} x {height} pixels is more than COCO run-length masks can hold "
            f"({MAX_PIXELS:,} pixels)"
        )
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_points(
    problems: Problems, where: str, xs: np.ndarray, ys: np.ndarray, width: int, height: int
) -> bool:
    """Refuse coordinates outside the image (beyond :data:`OUTSIDE_TOLERANCE`)."""
    t = OUTSIDE_TOLERANCE
    inside_x = xs.min() >= -t and xs.max() <= width + t
    if xs.size and not (inside_x and ys.min() >= -t and ys.max() <= height + t):
        problems.add(
            where,
            f"coordinates reach x {xs.min():g}..{xs.max():g}, y {ys.min():g}..{ys.max():g}, "
            f"outside the {width} x {height} image",
        )
        return False
    return True


def instance_polygons(instances: Sequence[InstanceRecord], tolerance: float) -> list[Polygons]:
    """Polygons of objects with non-empty masks, each traced on its box only (pixel-corner
    frame, image pixels), all in one batch."""
    boxes = [i.crop_box() for i in instances]
    pixels = rle.paint_crops(
        [i.run_lengths() for i in instances], [i.height for i in instances], boxes
    )
    crops = [(padded(p), (b[0] - 1, b[1] - 1)) for p, b in zip(pixels, boxes, strict=True)]
    return polygons_many(crops, tolerance=tolerance)


#: Objects traced together in one batch.
CHUNK = 256


def chunk_results(
    items: Sequence[T], work: Callable[[list[T]], list[R]], size: int = CHUNK
) -> Iterator[tuple[list[T], list[R]]]:
    """``(chunk, work(chunk))`` for consecutive chunks of ``items``, in order.

    Chunks are worked on in two threads while the caller consumes earlier results: the heavy
    parts (OpenCV, large numpy operations) release the GIL, so a second core shortens an export;
    with one core nothing is lost.
    """
    chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
    workers = min(2, os.cpu_count() or 1, max(1, len(chunks)))
    if workers == 1:
        for chunk in chunks:
            yield chunk, work(chunk)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="samdesk-export") as pool:
        yield from zip(chunks, pool.map(work, chunks), strict=True)


def polygons_per_image(
    doc: Any, images: Sequence[ImageRecord], tolerance: float
) -> Iterator[tuple[ImageRecord, list[InstanceRecord], int, list[Polygons]]]:
    """For each image: its objects with a non-empty mask, how many were empty, and their
    polygons (traced in worker threads, a few images at a time)."""

    def work(chunk: list[ImageRecord]) -> list[tuple[list[InstanceRecord], int, list[Polygons]]]:
        out = []
        for image in chunk:
            instances = doc.instances_of(image.id)
            drawable = [i for i in instances if i.bbox is not None]
            polygons = instance_polygons(drawable, tolerance) if drawable else []
            out.append((drawable, len(instances) - len(drawable), polygons))
        return out

    for chunk, results in chunk_results(images, work, size=4):
        for image, (drawable, empty, polygons) in zip(chunk, results, strict=True):
            yield image, drawable, empty, polygons


def per_image_names(images: list[ImageRecord], suffix: str) -> dict[int, PurePosixPath]:
    """An output file name per image: ``<stem><suffix>`` when stems are unique (ignoring case);
    else the images' folders below their common folder are kept. Two images that would still
    share a name (``a.png`` and ``a.tif`` side by side) are refused before anything is written."""
    if not images:
        return {}
    stems = Counter(i.path.stem.casefold() for i in images)
    if max(stems.values()) == 1:
        return {i.id: PurePosixPath(i.path.stem + suffix) for i in images}
    try:
        common: Path | None = Path(os.path.commonpath([str(i.path.parent) for i in images]))
    except ValueError:  # Windows: images on several drives have no common folder
        common = None
    names = {i.id: _folder_name(i.path.parent, common) / (i.path.stem + suffix) for i in images}
    seen: dict[str, ImageRecord] = {}
    clashes = []
    for image in images:
        key = str(names[image.id]).casefold()
        if key in seen:
            clashes.append(f"{seen[key].path} and {image.path}")
        seen[key] = image
    if clashes:
        raise InputError(
            "These images would get the same output file name, so one would overwrite the "
            f"other: {'; '.join(clashes[:5])}. Rename one of them, or export them separately."
        )
    return names


def _folder_name(folder: PurePath, common: Path | None) -> PurePosixPath:
    """``folder`` below ``common``; without one, the whole path with the drive as a folder
    (``D:\\scans\\a`` -> ``D/scans/a``)."""
    if common is not None:
        return PurePosixPath(Path(os.path.relpath(folder, common)).as_posix())
    drive = folder.drive.replace(":", "").replace("\\", "/").strip("/")
    return PurePosixPath(*([drive] if drive else []), *folder.parts[1:])


def find_image(name: str, source_dir: Path, images_dir: Path | None) -> Path | None:
    """The image an import refers to by ``name``: tried in ``images_dir`` (the full relative
    name, then the bare file name), next to the imported file, and as an absolute path."""
    if "\\" in name:
        name = PureWindowsPath(name).as_posix()
    relative = Path(name)
    candidates: list[Path] = []
    if relative.is_absolute():
        candidates.append(relative)
    for base in (images_dir, source_dir):
        if base is not None:
            candidates += [base / relative, base / relative.name]
    for candidate in candidates:
        try:
            if candidate.is_file():
                return Path(os.path.abspath(candidate))
        except OSError:  # a name too long for the file system, a folder we may not read, ...
            continue
    return None


def expected_image_path(name: str, source_dir: Path, images_dir: Path | None) -> Path:
    """Where a missing image is recorded: where it would be found first."""
    if "\\" in name:
        name = PureWindowsPath(name).as_posix()
    relative = Path(name)
    if relative.is_absolute():
        return relative
    return Path(os.path.abspath((images_dir or source_dir) / relative))


class OutputFiles:
    """Files an export writes: all prepared in memory first, then each written atomically. If a
    write fails, the files this export newly created are removed again and SaveError is raised.
    Nothing is written if any of the files would replace a samdesk project."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, bytes]] = []

    def add(self, path: Path, data: bytes | str) -> None:
        if isinstance(data, str):  # as atomic_write does: lone surrogates become \\udcXX
            data = data.encode("utf-8", "backslashreplace")
        self._pending.append((path, data))

    def commit(self) -> list[Path]:
        for path, _ in self._pending:
            if looks_like_project(path):
                raise SaveError(
                    f"{path} is a samdesk project; an export never replaces one. Choose another "
                    "output file or folder."
                )
        created: list[Path] = []
        written: list[Path] = []
        try:
            for path, data in self._pending:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except (OSError, ValueError) as err:
                    reason = getattr(err, "strerror", None) or err
                    raise SaveError(
                        f"Could not create the folder {path.parent}: {reason}."
                    ) from err
                existed = os.path.lexists(path)  # False, not an error, for an impossible name
                atomic_write(path, data)
                written.append(path)
                if not existed:
                    created.append(path)
        except BaseException:  # SaveError, and Ctrl+C (KeyboardInterrupt) half-way
            for path in created:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return written
