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

from samdesk.errors import InputError

#: Douglas-Peucker tolerance in pixels. Polygon edges lie on pixel edges and pixel centres are half
#: a pixel away from them, so moving an edge by less than half a pixel changes no pixel: at 0.45
#: pycocotools reproduces the test fixtures with IoU >= 0.999 while keeping a third of the vertices
#: (see tests/test_geometry.py, which prints the figures).
DEFAULT_TOLERANCE = 0.45

#: Parts and holes smaller than this (square pixels) that cover no pixel centre (so draw nothing)
#: are dropped and counted.
MIN_AREA = 1.0

#: Simplification may change this little: if the simplified polygons of a mask reproduce it with
#: a lower IoU (thin diagonal lines can), the exact outline is kept instead.
SIMPLIFIED_MIN_IOU = 0.99

DROP_FEW_POINTS = "polygon part with fewer than 3 distinct points"
DROP_SMALL_PART = "polygon part smaller than 1 px²"
DROP_SMALL_HOLE = "hole smaller than 1 px² (filled)"


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
    crop = np.pad(foreground[y0:y1, x0:x1], 1)
    return crop_to_polygons(crop, origin=(int(x0) - 1, int(y0) - 1), tolerance=tolerance)


def crop_to_polygons(
    crop: np.ndarray, *, origin: tuple[int, int], tolerance: float = DEFAULT_TOLERANCE
) -> Polygons:
    """Like :func:`mask_to_polygons` for a cut-out whose top-left pixel is at ``origin = (x, y)``.

    ``crop`` must have a background border at least one pixel wide (the caller pads it).
    """
    pixels = crop != 0
    doubled = np.repeat(np.repeat(pixels, 2, axis=0), 2, axis=1).astype(np.uint8)
    contours, hierarchy = cv2.findContours(doubled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    dropped: Counter[str] = Counter()
    if not contours:
        return Polygons(MultiPolygon(), dropped)
    links = hierarchy[0]
    groups = []  # (outer ring, hole rings) per outer boundary, exact, in crop coordinates
    for index, contour in enumerate(contours):
        if links[index][3] != -1:
            continue  # a hole; handled with its outer boundary
        rings = [_exact_ring(contour, doubled, outer=True)]
        child = links[index][2]
        while child != -1:
            rings.append(_exact_ring(contours[child], doubled, outer=False))
            child = links[child][0]
        groups.append(rings)
    result = _assemble(groups, tolerance, pixels)
    if tolerance > 0 and result.iou < SIMPLIFIED_MIN_IOU:
        result = _assemble(groups, 0.0, pixels)
    result.geometry = shapely.transform(result.geometry, lambda xy: xy + np.asarray(origin))
    return result


def _assemble(groups: list[list[np.ndarray]], tolerance: float, pixels: np.ndarray) -> Polygons:
    """Simplified, valid polygons of traced rings, with their measured round-trip IoU.

    A group whose simplified rings do not form a valid polygon is kept exact instead.
    """
    dropped: Counter[str] = Counter()
    polygons: list[Polygon] = []
    for exact in groups:
        parts = None
        if tolerance > 0:
            simplified = [_simplify(ring, tolerance) for ring in exact]
            parts = _polygon(simplified[0], simplified[1:], dropped)
        if parts is None:
            parts = _polygon(exact[0], exact[1:], dropped, repair=True) or []
        polygons.extend(parts)
    geometry = _multipolygon(polygons)
    drawn = polygons_to_mask(geometry, *pixels.shape)
    union = np.count_nonzero(drawn | pixels)
    iou = np.count_nonzero(drawn & pixels) / union if union else 1.0
    return Polygons(geometry, dropped, float(iou))


def _exact_ring(contour: np.ndarray, doubled: np.ndarray, *, outer: bool) -> np.ndarray:
    """One traced contour of the doubled mask as an ``N x 2`` ring on the original pixel edges.

    OpenCV's 8-connected trace cuts every concave corner diagonally; the pixel it skipped is put
    back so the ring runs along pixel edges. Where two pixels touch only at a corner neither pixel
    beside the diagonal step is foreground: the step stays, and once the ring is pushed out it
    becomes a band half a pixel wide that keeps clear of the neighbouring background centres.
    """
    points = contour.reshape(-1, 2)
    if len(points) > 2:
        following = _next(points)
        step = following - points
        diagonal = np.flatnonzero((step[:, 0] != 0) & (step[:, 1] != 0))
        across = np.stack((following[diagonal, 0], points[diagonal, 1]), axis=1)
        down = np.stack((points[diagonal, 0], following[diagonal, 1]), axis=1)
        across_on = doubled[across[:, 1], across[:, 0]] != 0
        down_on = doubled[down[:, 1], down[:, 0]] != 0
        concave = across_on | down_on
        if concave.any():
            skipped = np.where(across_on[:, None], across, down)[concave]
            points = np.insert(points, diagonal[concave] + 1, skipped, axis=0)
        points = _without_straight_vertices(points)
    centres = (points.astype(np.float64) + 0.5) / 2.0
    return _offset(centres, 0.25 if outer else -0.25)


def _without_straight_vertices(points: np.ndarray) -> np.ndarray:
    before = points - _previous(points)
    after = _next(points) - points
    turn = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    keep = turn != 0
    return points[keep] if keep.sum() >= 3 else points


def _simplify(ring: np.ndarray, tolerance: float) -> np.ndarray:
    if tolerance <= 0 or len(ring) <= 4:
        return ring
    simplified = cv2.approxPolyDP(ring.astype(np.float32), tolerance, True)
    return simplified.reshape(-1, 2).astype(np.float64)


def _offset(ring: np.ndarray, distance: float) -> np.ndarray:
    """Move every edge of a closed ring ``distance`` away from its inside (negative: inwards).

    Vertices move to where the moved edges meet (a mitre join). The rings traced from the doubled
    mask turn by 45, 90 or 135 degrees only, so the mitre stays short.
    """
    if len(ring) < 3:
        return ring
    following = _next(ring)
    edges = following - ring
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    lengths[lengths == 0] = 1.0
    area2 = float(np.sum(ring[:, 0] * following[:, 1] - following[:, 0] * ring[:, 1]))
    # (ey, -ex) is the right-hand side of travel, which is outside for a ring of positive area.
    sign = 1.0 if area2 > 0 else -1.0
    normals = sign * np.stack((edges[:, 1], -edges[:, 0]), axis=1) / lengths[:, None]
    incoming = _previous(normals)
    cosine = np.sum(incoming * normals, axis=1)
    # Cap the mitre at 3x the distance where a ring turns sharply (never on a traced contour).
    scale = distance / np.maximum(1.0 + cosine, 2.0 / 9.0)
    return ring + (incoming + normals) * scale[:, None]


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


def _previous(points: np.ndarray) -> np.ndarray:
    return np.concatenate((points[-1:], points[:-1]))


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
    multi = MultiPolygon(polygons)
    if len(polygons) > 1 and not multi.is_valid:
        multi = MultiPolygon(_polygonal_parts(shapely.make_valid(multi)))
    return multi


def repair(geometry: BaseGeometry) -> tuple[MultiPolygon, Counter[str]]:
    """A valid MultiPolygon from any polygonal geometry (e.g. imported), degenerate parts counted.

    Self-intersecting rings are repaired with ``shapely.make_valid``; parts and holes with fewer
    than 3 distinct points or smaller than 1 px² are dropped and counted.
    """
    dropped: Counter[str] = Counter()
    valid = geometry if geometry.is_valid else shapely.make_valid(geometry)
    kept: list[Polygon] = []
    for part in _polygonal_parts(valid):
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
    return coco_mask.decode(_rings_rle(rings, height, width)).astype(bool)


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
    else:
        points = np.asarray(ring, dtype=np.float64)
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]
    return np.round(points, decimals).ravel().tolist()
