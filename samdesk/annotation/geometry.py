"""Masks to polygons and back, losing as little as a polygon can.

**Coordinate frame.** Every polygon here is in the *pixel-corner* frame, in original-image pixels:
pixel ``(row y, column x)`` is the unit square ``[x, x + 1] x [y, y + 1]`` and its centre is
``(x + 0.5, y + 0.5)``. This is the frame pycocotools rasterises COCO polygons in (a pixel is
inside when its centre is), and the one labelme (Qt, PIL) and YOLO (after multiplying by the image
size) use. The polygons follow the *pixel edges* of the mask, so a polygon of an unsimplified mask
has the mask's area and pycocotools reproduces the mask exactly: pixel centres lie half a pixel
away from every edge, never on one.

**How.** OpenCV traces contours through pixel *centres*, and an object one pixel wide has a contour
of zero area. So the mask is first enlarged twice (every pixel becomes 2 x 2) and traced with its
hierarchy (``RETR_CCOMP``: outer boundaries and their holes; islands inside holes are outer
boundaries again). Each traced ring runs through the centres of the enlarged pixels, a quarter of
an original pixel inside the pixel edges; the corners the 8-connected trace cuts are put back and
the ring is pushed out by that quarter pixel (holes are shrunk by it), which lands it exactly on
the pixel edges. Where two pixels touch only at a corner the ring keeps a band half a pixel wide
between them, so an 8-connected object stays one valid polygon and no neighbouring background
pixel centre is covered. The exact rings are then simplified (Douglas-Peucker,
:data:`DEFAULT_TOLERANCE`) unless that would change the mask (round-trip IoU below
:data:`SIMPLIFIED_MIN_IOU`, then they stay exact), made shapely polygons (holes are interior rings,
several parts a MultiPolygon), repaired with ``make_valid`` if needed, and parts or holes that end
up degenerate (fewer than 3 distinct points, or under 1 px² and covering no pixel centre, so they
would draw nothing) are dropped and counted in :attr:`Polygons.dropped`, never silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import shapely
from pycocotools import mask as coco_mask
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from samdesk.annotation import rle
from samdesk.errors import InputError

#: Douglas-Peucker tolerance in pixels. Polygon edges lie on pixel edges and pixel centres are half
#: a pixel away from them, so moving an edge by less than half a pixel changes no pixel except
#: next to a corner-touch band; tests/test_geometry.py measures and prints the round-trip IoU.
DEFAULT_TOLERANCE = 0.45

#: Parts and holes smaller than this (square pixels) that cover no pixel centre (so draw nothing)
#: are dropped and counted.
MIN_AREA = 1.0

#: Simplification may change this little: if the simplified polygons of a mask reproduce it with
#: a lower IoU (thin diagonal lines can), the exact outline is kept instead.
SIMPLIFIED_MIN_IOU = 0.98

DROP_FEW_POINTS = "polygon part with fewer than 3 distinct points"
DROP_SMALL_PART = "polygon part smaller than 1 px²"
DROP_SMALL_HOLE = "hole smaller than 1 px² (filled)"
DROP_NO_AREA = "polygon part with no area (its points are on one line)"


@dataclass
class Polygons:
    """The polygons of one mask, in the pixel-corner frame (x, y in original-image pixels).

    ``geometry`` is a valid shapely MultiPolygon (empty for an empty mask); ``dropped`` counts
    the parts and holes left out, by reason; ``iou`` says how well the polygons reproduce the mask
    when rasterised as COCO does (1.0: exactly).
    """

    geometry: MultiPolygon
    dropped: Counter[str] = field(default_factory=Counter)
    #: IoU of the mask pycocotools draws from ``geometry`` with the original mask.
    iou: float = 1.0

    @property
    def parts(self) -> list[Polygon]:
        return list(self.geometry.geoms)

    @property
    def has_holes(self) -> bool:
        return any(len(part.interiors) for part in self.geometry.geoms)

    @property
    def hole_count(self) -> int:
        return sum(len(part.interiors) for part in self.geometry.geoms)


def mask_to_polygons(mask: np.ndarray, *, tolerance: float = DEFAULT_TOLERANCE) -> Polygons:
    """Polygons of an ``H x W`` mask (non-zero is foreground), see the module docstring."""
    if mask.ndim != 2:
        raise InputError(f"a mask must be a 2-D array (height x width), got shape {mask.shape}")
    if tolerance < 0:
        raise InputError(f"the simplification tolerance must be >= 0 pixels, got {tolerance}")
    foreground = mask != 0
    rows = np.flatnonzero(foreground.any(axis=1))
    if rows.size == 0:
        return Polygons(MultiPolygon())
    cols = np.flatnonzero(foreground.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return crop_to_polygons(
        padded(foreground[y0:y1, x0:x1]), origin=(int(x0) - 1, int(y0) - 1), tolerance=tolerance
    )


def padded(crop: np.ndarray) -> np.ndarray:
    """``crop`` (bool) with a one-pixel background border (a cheaper ``np.pad(crop, 1)``)."""
    out = np.zeros((crop.shape[0] + 2, crop.shape[1] + 2), dtype=bool)
    out[1:-1, 1:-1] = crop
    return out


def crop_to_polygons(
    crop: np.ndarray, *, origin: tuple[int, int], tolerance: float = DEFAULT_TOLERANCE
) -> Polygons:
    """Like :func:`mask_to_polygons` for a cut-out whose top-left pixel is at ``origin = (x, y)``.

    ``crop`` must have a background border at least one pixel wide (the caller pads it).
    """
    return polygons_many([(crop, origin)], tolerance=tolerance)[0]


def polygons_many(
    crops: Sequence[tuple[np.ndarray, tuple[int, int]]], *, tolerance: float = DEFAULT_TOLERANCE
) -> list[Polygons]:
    """:func:`crop_to_polygons` for many ``(padded crop, origin)`` pairs, traced together."""
    traced = trace_many(crops, tolerance=tolerance)
    return [
        _assemble(rings, crop, origin) for rings, (crop, origin) in zip(traced, crops, strict=True)
    ]


def _assemble(rings: Rings, crop: np.ndarray, origin: tuple[int, int]) -> Polygons:
    """Valid shapely polygons of one mask's traced rings (a simplified group that is not a valid
    polygon is used exact), degenerate parts dropped and counted, the IoU re-measured if the
    geometry changed."""
    dropped: Counter[str] = Counter()
    polygons: list[Polygon] = []
    rebuilt = False
    for simplified, exact in zip(rings.groups, rings.exact, strict=True):
        parts = _polygon(simplified[0], simplified[1:], dropped)
        if parts is None:  # simplifying made it invalid, or the traced rings need repair
            rebuilt = True
            parts = _polygon(exact[0], exact[1:], dropped, repair=True) or []
        polygons.extend(parts)
    geometry = _multipolygon(polygons)
    iou = rings.iou
    if rebuilt or dropped:
        shifted = shapely.transform(geometry, lambda xy: xy - np.asarray(origin))
        iou = _iou(polygons_to_mask(shifted, *crop.shape), crop != 0)
    return Polygons(geometry, dropped, iou)


@dataclass
class Rings:
    """The traced outlines of one mask, before they become shapely polygons.

    ``groups`` holds, per outer boundary, ``[outer ring, *hole rings]`` as ``N x 2`` float arrays
    (pixel-corner frame, image pixels), simplified unless that changed the mask; ``exact`` the
    same rings unsimplified; ``iou`` how well pycocotools reproduces the mask from ``groups``.
    """

    groups: list[list[np.ndarray]]
    exact: list[list[np.ndarray]]
    iou: float
    has_holes: bool


def trace(
    crop: np.ndarray,
    *,
    origin: tuple[int, int],
    tolerance: float = DEFAULT_TOLERANCE,
    stop_at_holes: bool = False,
) -> Rings:
    """Outline rings of a padded cut-out (see :func:`crop_to_polygons`) without shapely.

    With ``stop_at_holes`` a mask with holes returns at once with ``has_holes`` set and no rings
    (for exporters that write such masks another way).
    """
    return trace_many([(crop, origin)], tolerance=tolerance, stop_at_holes=stop_at_holes)[0]


def trace_many(
    crops: Sequence[tuple[np.ndarray, tuple[int, int]]],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    stop_at_holes: bool = False,
) -> list[Rings]:
    """:func:`trace` for many ``(padded crop, origin)`` pairs; the ring arithmetic runs once for
    all of them, which is what makes exporting 10,000 objects take seconds, not minutes."""
    traced = []
    for crop, _ in crops:
        if crop.dtype == np.bool_ and crop.flags.c_contiguous:
            pixels = crop  # as the exporters pass them: no copy
        else:
            pixels = np.ascontiguousarray(crop != 0)
        doubled = cv2.resize(
            pixels.view(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST_EXACT
        )
        contours, hierarchy = cv2.findContours(doubled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        links = hierarchy[0] if contours else np.zeros((0, 4), dtype=np.int32)
        traced.append((pixels, doubled, contours, links))
    batch = _RingBatch()
    plans: list[list[list[int]] | None] = []
    for (pixels, _, contours, links), (_, origin) in zip(traced, crops, strict=True):
        has_holes = bool((links[:, 3] != -1).any())
        if has_holes and stop_at_holes:
            plans.append(None)
            continue
        groups = []
        for index, contour in enumerate(contours):
            if links[index][3] != -1:
                continue  # a hole; handled with its outer boundary
            members = [batch.add(contour, pixels, origin, outer=True)]
            child = links[index][2]
            while child != -1:
                members.append(batch.add(contours[child], pixels, origin, outer=False))
                child = links[child][0]
            groups.append(members)
        plans.append(groups)
    rings = batch.rings()
    results = []
    for (pixels, _, _, links), plan, (_, origin) in zip(traced, plans, crops, strict=True):
        if plan is None:
            results.append(Rings([], [], float("nan"), True))
            continue
        exact = [[rings[i] for i in members] for members in plan]
        # Exact rings reproduce the mask by construction (tests/test_geometry.py checks this on
        # thousands of random masks); simplified ones are measured and fall back to exact.
        groups, iou = exact, 1.0
        if tolerance > 0 and exact:
            simplified = [[_simplify(ring, tolerance) for ring in group] for group in exact]
            shift = np.asarray(origin, dtype=np.float64)
            local = [[ring - shift for ring in group] for group in simplified]
            measured = _rings_iou(local, pixels)
            if measured >= SIMPLIFIED_MIN_IOU:
                groups, iou = simplified, measured
        results.append(Rings(groups, exact, iou, bool((links[:, 3] != -1).any())))
    return results


class _RingBatch:
    """Contours of doubled masks, turned into exact rings on the original pixel edges together.

    OpenCV's 8-connected trace cuts every concave corner diagonally; the pixel it skipped is put
    back so the ring runs along pixel edges. Where two pixels touch only at a corner neither pixel
    beside a diagonal step is foreground: the step stays, and once the ring is pushed out (by a
    quarter pixel, onto the pixel edges) it becomes a band half a pixel wide that keeps clear of
    the neighbouring background pixels' centres.
    """

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []
        self.images: list[np.ndarray] = []
        self.image_of: list[int] = []
        self.outer: list[bool] = []
        self.origins: list[tuple[int, int]] = []

    def add(
        self, contour: np.ndarray, pixels: np.ndarray, origin: tuple[int, int], *, outer: bool
    ) -> int:
        """Queue one contour of the doubled version of ``pixels`` (the padded bool crop whose
        top-left pixel is at ``origin`` in the image)."""
        if not self.images or self.images[-1] is not pixels:
            self.images.append(pixels)
        self.points.append(contour.reshape(-1, 2))
        self.image_of.append(len(self.images) - 1)
        self.outer.append(outer)
        self.origins.append(origin)
        return len(self.points) - 1

    def rings(self) -> list[np.ndarray]:
        if not self.points:
            return []
        lengths = np.array([len(p) for p in self.points], dtype=np.int64)
        points = np.concatenate(self.points)  # int32 from OpenCV: half the memory traffic
        # Every point looks up its own (undoubled) crop in one flat buffer: doubled pixel (x, y)
        # is crop pixel (x // 2, y // 2).
        sizes = np.array([img.size for img in self.images], dtype=np.int64)
        image_base = np.cumsum(sizes) - sizes
        strides = np.array([img.shape[1] for img in self.images], dtype=np.int64)
        flat = np.concatenate([img.ravel() for img in self.images])

        following = points[_successor(lengths)]
        step = following - points
        diagonal = (step[:, 0] != 0) & (step[:, 1] != 0)
        if (diagonal & (np.abs(step[:, 0]) > 1)).any():
            points, lengths = _unit_diagonals(points, lengths)
            following = points[_successor(lengths)]
            step = following - points
            diagonal = (step[:, 0] != 0) & (step[:, 1] != 0)
        # Of the two pixels beside a diagonal step, the foreground one (if any) was skipped.
        at = np.flatnonzero(diagonal)
        which = np.repeat(np.asarray(self.image_of, dtype=np.int64), lengths)[at]
        base, stride = image_base[which], strides[which]
        ahead, here = following[at], points[at]
        across_on = flat[base + (here[:, 1] // 2) * stride + ahead[:, 0] // 2]
        down_on = flat[base + (ahead[:, 1] // 2) * stride + here[:, 0] // 2]
        concave = np.zeros(points.shape[0], dtype=bool)
        concave[at] = across_on | down_on
        pick = (across_on | down_on).nonzero()[0]
        skipped = np.where(
            across_on[pick, None],
            np.stack((ahead[pick, 0], here[pick, 1]), axis=1),
            np.stack((here[pick, 0], ahead[pick, 1]), axis=1),
        )
        # Insert each skipped pixel after the point its diagonal step starts from.
        slots = np.arange(points.shape[0]) + np.cumsum(concave) - concave
        merged = np.empty((points.shape[0] + skipped.shape[0], 2), dtype=np.int64)
        merged[slots] = points
        merged[slots[concave] + 1] = skipped
        lengths = lengths + _segment_sums(concave.astype(np.int64), lengths)

        # Drop vertices where the ring goes straight on.
        before = merged - merged[_predecessor(lengths)]
        after = merged[_successor(lengths)] - merged
        keep = (before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]) != 0
        merged = merged[keep]
        lengths = _segment_sums(keep.astype(np.int64), lengths)

        centres = (merged.astype(np.float64) + 0.5) / 2.0
        distance = np.where(np.asarray(self.outer), 0.25, -0.25)
        rings = _offset_rings(centres, lengths, distance)
        rings += np.repeat(np.asarray(self.origins, dtype=np.float64), lengths, axis=0)
        # Rings on whole pixel corners only (most are) come back as integers: cheaper to write.
        rings = np.round(rings, 6)
        whole = np.floor(rings) == rings
        integral = _segment_sums((~(whole[:, 0] & whole[:, 1])).astype(np.int64), lengths) == 0
        pieces = np.split(rings, np.cumsum(lengths)[:-1])
        return [p.astype(np.int64) if flag else p for p, flag in zip(pieces, integral, strict=True)]


def _unit_diagonals(points: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split diagonal runs longer than one pixel into single steps (``CHAIN_APPROX_SIMPLE`` merges
    collinear steps; on doubled masks diagonal runs have not been seen, but would be handled)."""
    step = points[_successor(lengths)] - points
    run = np.where((step[:, 0] != 0) & (step[:, 1] != 0), np.abs(step[:, 0]), 1)
    if run.max(initial=1) <= 1:
        return points, lengths
    index = np.repeat(np.arange(points.shape[0]), run)
    k = np.arange(index.size) - np.repeat(np.cumsum(run) - run, run)
    expanded = points[index] + np.sign(step[index]) * k[:, None] * (run[index] > 1)[:, None]
    return expanded, _segment_sums(run, lengths)


def _successor(lengths: np.ndarray) -> np.ndarray:
    """Index of the next point of each point, rings of ``lengths`` stored one after another."""
    index = np.arange(int(lengths.sum())) + 1
    ends = np.cumsum(lengths)
    index[ends - 1] = ends - lengths
    return index


def _predecessor(lengths: np.ndarray) -> np.ndarray:
    index = np.arange(int(lengths.sum())) - 1
    starts = np.cumsum(lengths) - lengths
    index[starts] = starts + lengths - 1
    return index


def _segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    starts = np.cumsum(lengths) - lengths
    return np.add.reduceat(values, starts)


def _offset_rings(points: np.ndarray, lengths: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Move every edge of each closed ring ``distance`` (per ring) away from its inside
    (negative: inwards); vertices go where the moved edges meet (a mitre join).

    The rings traced from the doubled mask turn by 45, 90 or 135 degrees only, so mitres stay
    short; they are capped at 3x the distance regardless.
    """
    following = points[_successor(lengths)]
    edges = following - points
    norms = np.hypot(edges[:, 0], edges[:, 1])
    norms[norms == 0] = 1.0
    cross = points[:, 0] * following[:, 1] - following[:, 0] * points[:, 1]
    # (ey, -ex) is the right-hand side of travel, which is outside for a ring of positive area.
    sign = np.where(_segment_sums(cross, lengths) > 0, 1.0, -1.0)
    per_point = np.repeat(sign * distance, lengths)
    normals = np.stack((edges[:, 1], -edges[:, 0]), axis=1) / norms[:, None]
    incoming = normals[_predecessor(lengths)]
    cosine = np.sum(incoming * normals, axis=1)
    scale = per_point / np.maximum(1.0 + cosine, 2.0 / 9.0)
    return points + (incoming + normals) * scale[:, None]


def _rings_mask(groups: list[list[np.ndarray]], shape: tuple[int, ...]) -> np.ndarray:
    """What pycocotools draws from ring groups (outer ring minus its holes, all united)."""
    height, width = shape
    drawn = np.zeros((height, width), dtype=bool)
    for rings in groups:
        filled = rings_to_mask([rings[0].ravel().tolist()], height, width)
        if len(rings) > 1:
            filled &= ~rings_to_mask([r.ravel().tolist() for r in rings[1:]], height, width)
        drawn |= filled
    return drawn


def _rings_iou(groups: list[list[np.ndarray]], pixels: np.ndarray) -> float:
    """IoU of what pycocotools draws from ring groups with ``pixels``, counted on RLEs (no
    pixel arrays): a group draws its outer ring minus its holes; groups do not overlap."""
    height, width = pixels.shape
    target = coco_mask.encode(np.asfortranarray(pixels, dtype=np.uint8))

    def area(*parts: dict) -> int:
        merged = parts[0] if len(parts) == 1 else coco_mask.merge(list(parts), intersect=True)
        return int(coco_mask.area(merged))

    inside = drawn = 0
    for group in groups:
        outer = coco_mask.frPyObjects([group[0].ravel().tolist()], height, width)[0]
        inside += area(outer, target)
        drawn += area(outer)
        if len(group) > 1:
            holes = coco_mask.merge(
                coco_mask.frPyObjects([r.ravel().tolist() for r in group[1:]], height, width)
            )
            inside -= area(outer, holes, target)
            drawn -= area(outer, holes)
    union = drawn + int(coco_mask.area(target)) - inside
    return inside / union if union else 1.0


def _iou(drawn: np.ndarray, pixels: np.ndarray) -> float:
    union = np.count_nonzero(drawn | pixels)
    return float(np.count_nonzero(drawn & pixels) / union) if union else 1.0


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a closed ring; a ring that would collapse below 3 points stays."""
    if tolerance <= 0 or len(ring) <= 4:
        return ring
    simplified = cv2.approxPolyDP(ring.astype(np.float32), tolerance, True).reshape(-1, 2)
    return simplified.astype(np.float64) if len(simplified) >= 3 else ring


def _polygon(
    shell: np.ndarray, holes: list[np.ndarray], dropped: Counter[str], *, repair: bool = False
) -> list[Polygon] | None:
    """Valid polygons of one outer ring and its holes, degenerate bits dropped and counted.

    Returns None when the rings do not form a valid polygon and ``repair`` is False.
    """
    if _too_few_points(shell):
        dropped[DROP_FEW_POINTS] += 1
        return []
    kept_holes = []
    for hole in holes:
        if _too_few_points(hole) or _draws_nothing(hole):
            dropped[DROP_SMALL_HOLE] += 1
        else:
            kept_holes.append(hole)
    polygon = Polygon(shell, kept_holes)
    if polygon.is_valid:
        parts = [polygon]
    elif repair:
        parts = _polygonal_parts(shapely.make_valid(polygon))
        if not parts:
            dropped[DROP_NO_AREA] += 1
    else:
        return None
    kept = []
    for part in parts:
        if _draws_nothing(shapely.get_coordinates(part.exterior)[:-1]):
            dropped[DROP_SMALL_PART] += 1
        else:
            kept.append(part)
    return kept


def _next(points: np.ndarray) -> np.ndarray:
    """The following point of every point of a closed ring (a cheaper ``np.roll(points, -1)``)."""
    return np.concatenate((points[1:], points[:1]))


def _ring_area(ring: np.ndarray) -> float:
    following = _next(ring)
    return 0.5 * float(np.sum(ring[:, 0] * following[:, 1] - following[:, 0] * ring[:, 1]))


def _too_few_points(ring: np.ndarray) -> bool:
    """Fewer than 3 distinct points (a ring with any area has at least 3)."""
    return len(ring) < 3 or (_ring_area(ring) == 0 and len(np.unique(ring, axis=0)) < 3)


def _draws_nothing(ring: np.ndarray) -> bool:
    """True for a ring smaller than :data:`MIN_AREA` whose inside holds no pixel centre."""
    if abs(_ring_area(ring)) >= MIN_AREA:
        return False
    low = np.floor(ring.min(axis=0))
    high = np.ceil(ring.max(axis=0))
    width, height = (int(v) + 1 for v in high - low)
    local = (ring - low).ravel().tolist()
    drawn = coco_mask.area(coco_mask.frPyObjects([local], height, width))
    return int(drawn.sum()) == 0


def _polygonal_parts(geometry: BaseGeometry) -> list[Polygon]:
    """The polygons in any geometry (make_valid may return lines and points next to them)."""
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    if hasattr(geometry, "geoms"):
        return [p for g in geometry.geoms for p in _polygonal_parts(g)]
    return []


def _multipolygon(polygons: list[Polygon]) -> MultiPolygon:
    """The parts as one valid MultiPolygon; overlapping parts (possible in imported data) are
    merged."""
    multi = MultiPolygon(polygons)
    if len(polygons) > 1 and not multi.is_valid:
        multi = MultiPolygon(_polygonal_parts(shapely.union_all(polygons)))
    return multi


def repair(geometry: BaseGeometry) -> tuple[MultiPolygon, Counter[str]]:
    """A valid MultiPolygon from any polygonal geometry (e.g. imported), degenerate parts counted.

    Self-intersecting rings are repaired with ``shapely.make_valid``; parts and holes with fewer
    than 3 distinct points or smaller than 1 px² are dropped and counted.
    """
    dropped: Counter[str] = Counter()
    kept: list[Polygon] = []
    for part in _polygonal_parts(geometry):
        shell = shapely.get_coordinates(part.exterior)[:-1]
        holes = [shapely.get_coordinates(r)[:-1] for r in part.interiors]
        kept.extend(_polygon(shell, holes, dropped, repair=True) or [])
    return _multipolygon(kept), dropped


# --- polygons to masks (the pycocotools rasteriser, as every COCO consumer uses) ---------------


def rings_to_rle(rings: Sequence[Sequence[float]], height: int, width: int) -> str:
    """Compressed RLE of the union of flat rings ``[x1, y1, x2, y2, ...]`` (pixel-corner frame)."""
    return _rings_rle(rings, height, width)["counts"].decode("ascii")


def _rings_rle(rings: Sequence[Sequence[float]], height: int, width: int) -> dict:
    if not rings:
        return coco_mask.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    parts = coco_mask.frPyObjects([list(map(float, r)) for r in rings], height, width)
    return coco_mask.merge(parts)


def rings_to_mask(rings: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """``H x W`` bool mask of the union of flat rings (pixel-corner frame), as pycocotools draws."""
    return rle.decode(rings_to_rle(rings, height, width), height, width)


def polygons_to_mask(geometry: BaseGeometry, height: int, width: int) -> np.ndarray:
    """``H x W`` bool mask of a (Multi)Polygon with holes, rasterised like pycocotools does."""
    mask = np.zeros((height, width), dtype=bool)
    for part in _polygonal_parts(geometry):
        filled = rings_to_mask([flat_ring(part.exterior)], height, width)
        if part.interiors:
            holes = [flat_ring(r) for r in part.interiors]
            filled &= ~rings_to_mask(holes, height, width)
        mask |= filled
    return mask


def flat_ring(ring: BaseGeometry | np.ndarray, decimals: int = 3) -> list[float]:
    """``[x1, y1, x2, y2, ...]`` of a ring without its closing point, rounded to ``decimals``.

    ``ring`` is a shapely ring or an ``N x 2`` array of points.
    """
    if isinstance(ring, BaseGeometry):
        points = shapely.get_coordinates(ring)
    elif np.issubdtype(np.asarray(ring).dtype, np.integer):
        return np.asarray(ring).ravel().tolist()
    else:
        points = np.asarray(ring, dtype=np.float64)
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]
    rounded = np.round(points, decimals).ravel()
    whole = rounded.astype(np.int64)
    # Whole numbers are written as such (most exact outline vertices are pixel corners).
    return whole.tolist() if np.array_equal(whole, rounded) else rounded.tolist()
