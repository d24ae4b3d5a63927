"""Masks to polygons and back: exact outlines, holes, parts, degenerate parts counted."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon

from samdesk.annotation import geometry
from samdesk.annotation.geometry import (
    DEFAULT_TOLERANCE,
    mask_to_polygons,
    polygons_to_mask,
    repair,
    rings_to_mask,
)
from samdesk.errors import InputError
from tests.support import masks


@pytest.mark.parametrize("name", sorted(masks.varied()))
def test_exact_outline_reproduces_every_fixture(name: str) -> None:
    mask = masks.varied()[name]
    result = mask_to_polygons(mask, tolerance=0)
    assert result.geometry.is_valid
    assert not result.dropped
    drawn = polygons_to_mask(result.geometry, *mask.shape)
    assert np.array_equal(drawn, mask), f"{name}: {np.count_nonzero(drawn != mask)} pixels differ"
    assert result.iou == 1.0


def test_default_tolerance_keeps_round_trip_iou(capsys: pytest.CaptureFixture[str]) -> None:
    """The figure the ADR quotes: IoU of pycocotools' drawing of the simplified polygons."""
    ious, raw, vertices, exact_vertices = [], [], 0, 0
    for name, mask in masks.varied().items():
        result = mask_to_polygons(mask)
        drawn = polygons_to_mask(result.geometry, *mask.shape)
        ious.append(masks.iou(drawn, mask))
        assert ious[-1] >= 0.98, name
        # What simplification alone would give, before the exact fallback.
        crop = geometry.padded(mask)
        rings = geometry.trace(crop, origin=(0, 0), tolerance=0)
        simplified = [[geometry._simplify(r, DEFAULT_TOLERANCE) for r in g] for g in rings.groups]
        raw.append(geometry._iou(geometry._rings_mask(simplified, crop.shape), crop))
        vertices += sum(len(p.exterior.coords) - 1 for p in result.parts)
        exact_vertices += sum(
            len(p.exterior.coords) - 1 for p in mask_to_polygons(mask, tolerance=0).parts
        )
    with capsys.disabled():
        print(
            f"\n[geometry] tolerance {DEFAULT_TOLERANCE} px over {len(ious)} fixtures: round-trip "
            f"IoU min {min(ious):.4f} mean {np.mean(ious):.4f}; simplification alone: min "
            f"{min(raw):.4f} mean {np.mean(raw):.4f}; outer vertices {vertices} vs {exact_vertices}"
            " exact"
        )
    assert np.mean(ious) >= 0.99


def test_random_masks_are_exact_and_valid() -> None:
    """The construction claim the exporters rely on, on thousands of small random masks."""
    rng = np.random.default_rng(7)
    for trial in range(600):
        height, width = (int(v) for v in rng.integers(1, 16, 2))
        mask = rng.random((height, width)) < rng.random()
        exact = mask_to_polygons(mask, tolerance=0)
        assert exact.geometry.is_valid, trial
        assert not exact.dropped, trial
        assert np.array_equal(polygons_to_mask(exact.geometry, height, width), mask), trial
        simplified = mask_to_polygons(mask)
        assert simplified.geometry.is_valid, trial
        drawn = polygons_to_mask(simplified.geometry, height, width)
        assert masks.iou(drawn, mask) >= geometry.SIMPLIFIED_MIN_IOU, trial


def test_noise_is_reproduced_exactly() -> None:
    mask = masks.noise()
    result = mask_to_polygons(mask, tolerance=0)
    assert result.geometry.is_valid
    assert np.array_equal(polygons_to_mask(result.geometry, *mask.shape), mask)


def test_one_pixel_is_the_unit_square_in_the_corner_frame() -> None:
    mask = masks.one_pixel()  # pixel at row 20, column 30
    (part,) = mask_to_polygons(mask).parts
    assert part.equals(Polygon([(30, 20), (31, 20), (31, 21), (30, 21)]))
    assert part.area == 1.0


def test_full_image_outline_is_the_image_border() -> None:
    height, width = masks.HEIGHT, masks.WIDTH
    (part,) = mask_to_polygons(masks.full()).parts
    assert part.bounds == (0.0, 0.0, float(width), float(height))


def test_holes_become_interior_rings_and_islands_separate_parts() -> None:
    result = mask_to_polygons(masks.nested())
    assert len(result.parts) == 2  # the ring and the island inside its hole
    assert result.hole_count == 2  # the ring's hole and the island's one-pixel hole
    ring, island = sorted(result.parts, key=lambda p: -p.area)
    assert len(ring.interiors) == 1
    assert Polygon(ring.interiors[0]).contains(island)
    assert island.interiors[0].bounds == (48.0, 36.0, 49.0, 37.0)


def test_several_parts_make_a_multipolygon_with_exact_areas() -> None:
    mask = masks.parts()
    result = mask_to_polygons(mask, tolerance=0)
    assert isinstance(result.geometry, MultiPolygon)
    assert len(result.parts) == 3
    assert result.geometry.area == pytest.approx(mask.sum())


def test_diagonal_line_stays_one_part_and_covers_no_neighbour() -> None:
    mask = masks.diagonal_line()
    result = mask_to_polygons(mask, tolerance=0)
    assert len(result.parts) == 1
    assert np.array_equal(polygons_to_mask(result.geometry, *mask.shape), mask)
    # The corner bands add a little area but no pixel: 60 pixels, 59 bands.
    assert mask.sum() < result.geometry.area < mask.sum() + 59 * 0.5


def test_border_touching_mask_stays_inside_the_image() -> None:
    result = mask_to_polygons(masks.border())
    minx, miny, maxx, maxy = result.geometry.bounds
    assert (minx, miny) == (0.0, 0.0)
    assert (maxx, maxy) == (float(masks.WIDTH), float(masks.HEIGHT))


def test_empty_mask_gives_empty_geometry() -> None:
    result = mask_to_polygons(masks.blank())
    assert result.geometry.is_empty
    assert not result.dropped


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InputError, match="2-D"):
        mask_to_polygons(np.zeros((3, 4, 2), dtype=bool))
    with pytest.raises(InputError, match="tolerance"):
        mask_to_polygons(masks.disk(10, 10, 5), tolerance=-1)


def test_repair_fixes_a_bow_tie_and_counts_degenerate_parts() -> None:
    bow_tie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    assert not bow_tie.is_valid
    fixed, dropped = repair(bow_tie)
    assert fixed.is_valid
    assert fixed.area == pytest.approx(50.0)
    assert not dropped

    sliver = Polygon([(10.1, 0.1), (10.4, 0.1), (10.4, 0.3)])  # covers no pixel centre
    fixed, dropped = repair(MultiPolygon([Polygon([(0, 0), (4, 0), (4, 4)]), sliver]))
    assert len(fixed.geoms) == 1
    assert dropped == {geometry.DROP_SMALL_PART: 1}

    flat = Polygon([(0, 0), (2, 2), (5, 5), (1, 1)])  # every point on one line
    fixed, dropped = repair(flat)
    assert fixed.is_empty
    assert dropped == {geometry.DROP_NO_AREA: 1}

    doubled_point = Polygon([(3, 3), (3, 3), (3, 3), (7, 7)])
    fixed, dropped = repair(doubled_point)
    assert fixed.is_empty
    assert dropped == {geometry.DROP_FEW_POINTS: 1}


def test_small_hole_covering_a_pixel_centre_is_kept() -> None:
    shell = [(0, 0), (10, 0), (10, 10), (0, 10)]
    tiny_hole = [(4.3, 4.3), (4.7, 4.3), (4.7, 4.7), (4.3, 4.7)]  # holds the centre (4.5, 4.5)
    fixed, dropped = repair(Polygon(shell, [tiny_hole]))
    assert len(fixed.geoms[0].interiors) == 1 and not dropped
    drawn = polygons_to_mask(fixed, 10, 10)
    assert not drawn[4, 4] and drawn.sum() == 99

    no_centre = [(4.6, 4.6), (4.9, 4.6), (4.9, 4.9)]
    fixed, dropped = repair(Polygon(shell, [no_centre]))
    assert dropped[geometry.DROP_SMALL_HOLE] == 1
    assert polygons_to_mask(fixed, 10, 10).all()


def test_rings_use_the_pycocotools_corner_frame() -> None:
    # A square from corner (2, 3) to (5, 7) covers columns 2..4 and rows 3..6.
    drawn = rings_to_mask([[2, 3, 5, 3, 5, 7, 2, 7]], 10, 10)
    expected = np.zeros((10, 10), dtype=bool)
    expected[3:7, 2:5] = True
    assert np.array_equal(drawn, expected)


def test_long_diagonal_runs_are_split_into_single_steps() -> None:
    """CHAIN_APPROX_SIMPLE could merge a diagonal run; the batch splits it before fixing corners."""
    ring = np.array([[0, 0], [4, 0], [4, 4], [2, 4], [0, 2]])
    points, lengths = geometry._unit_diagonals(ring, np.array([5]))
    assert points.tolist() == [[0, 0], [4, 0], [4, 4], [2, 4], [1, 3], [0, 2]]
    assert lengths.tolist() == [6]
