"""Region mode's coordinate math (samdesk.engine.region, ADR 0066): exact offsets, clamping."""

from __future__ import annotations

import numpy as np
import pytest

from samdesk.engine.region import MAX_REGION_SIDE, MIN_REGION_SIDE, Region
from samdesk.engine.worker import Prompt
from samdesk.errors import PromptError


def test_point_is_shifted_by_the_offset_and_back() -> None:
    region = Region(1000, 40, 1600, 300)
    prompt = Prompt(
        point_coords=np.array([[1234, 77], [1000, 40], [1599, 299]], np.float32),
        point_labels=np.array([1, 0, 1], np.int32),
    )
    local = region.to_local(prompt)
    assert local.point_coords.tolist() == [[234, 37], [0, 0], [599, 259]]
    assert local.point_labels is prompt.point_labels
    assert region.point_to_full(234, 37) == (1234, 77)
    assert region.point_to_local(1234, 77) == (234, 37)


def test_mask_pixel_lands_at_the_offset() -> None:
    region = Region(30, 7, 50, 19)
    local = np.zeros((2, 12, 20), bool)
    local[0, 3, 5] = True  # local (u, v) = (5, 3)
    local[1, 11, 19] = True  # the last local pixel
    full = region.to_full(local, (40, 60))
    assert full.shape == (2, 40, 60)
    assert np.argwhere(full[0]).tolist() == [[3 + 7, 5 + 30]]
    assert np.argwhere(full[1]).tolist() == [[18, 49]]
    assert full.sum() == 2
    with pytest.raises(ValueError):
        region.to_full(local[:, :5], (40, 60))
    with pytest.raises(ValueError):
        region.to_full(local, (18, 60))  # the region does not fit


def test_points_outside_are_refused_and_boxes_clamped() -> None:
    region = Region(100, 100, 200, 150)
    with pytest.raises(PromptError, match="outside the region"):
        region.to_local(Prompt(np.array([[200, 120]], np.float32), np.array([1], np.int32)))
    with pytest.raises(PromptError):
        region.to_local(Prompt(np.array([[150, 99.5]], np.float32), np.array([1], np.int32)))
    local = region.to_local(Prompt(box=np.array([90, 110, 250, 149], np.float32)))
    assert local.box.tolist() == [0, 10, 99, 49]
    assert local.point_coords is None


def test_crop_and_cache_key() -> None:
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    region = Region(5, 2, 12, 9)
    crop = region.crop(image)
    assert crop.shape == (7, 7, 3)
    assert np.array_equal(crop, image[2:9, 5:12])
    assert crop.flags.c_contiguous
    a = region.cache_hash("ab" * 32)
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != Region(5, 2, 12, 10).cache_hash("ab" * 32)
    assert a != region.cache_hash("cd" * 32)
    with pytest.raises(ValueError):
        Region(5, 5, 5, 9)


def test_around_takes_the_view_rounded_outwards() -> None:
    region = Region.around((1000.4, 20.6, 1900.2, 700.0), (40_000, 3000))
    assert region.as_tuple() == (1000, 20, 1901, 700)


def test_around_is_clamped_to_the_image_at_its_edges() -> None:
    # a view hanging over the right and bottom edges (fitted, or panned out)
    region = Region.around((39_500.0, -50.0, 40_300.0, 310.0), (40_000, 300))
    assert region.as_tuple() == (39_500, 0, 40_000, 300)
    region = Region.around((-300.0, -300.0, 100.0, 100.0), (40_000, 300))
    assert region.as_tuple() == (0, 0, MIN_REGION_SIDE, MIN_REGION_SIDE)  # widened to the min


def test_around_bounds_the_size() -> None:
    # the whole 40k-wide panorama in view: cut to MAX around the view's centre
    region = Region.around((0, 0, 40_000, 300), (40_000, 300))
    assert region.width == MAX_REGION_SIDE and region.height == 300
    assert region.x0 == 20_000 - MAX_REGION_SIDE // 2
    # ... or around the prompt that asked for it, shifted to stay in the image
    region = Region.around((0, 0, 40_000, 300), (40_000, 300), include=(100, 10, 100, 10))
    assert region.as_tuple() == (0, 0, MAX_REGION_SIDE, 300)
    region = Region.around((0, 0, 40_000, 300), (40_000, 300), include=(39_990, 5, 39_999, 9))
    assert region.as_tuple() == (40_000 - MAX_REGION_SIDE, 0, 40_000, 300)
    region = Region.around((0, 0, 40_000, 300), (40_000, 300), include=(9000, 5, 9000, 5))
    assert region.contains(9000, 5) and region.width == MAX_REGION_SIDE
    # a tiny view (zoomed far in) is widened to MIN around its centre
    region = Region.around((500.0, 100.0, 510.0, 104.0), (40_000, 300))
    assert (region.width, region.height) == (MIN_REGION_SIDE, MIN_REGION_SIDE)
    assert region.contains(505, 102)
    # an image smaller than MIN gives its whole side
    assert Region.around((0, 0, 10, 10), (100, 50)).as_tuple() == (0, 0, 100, 50)


def test_around_shifts_to_hold_a_prompt_just_outside_the_view() -> None:
    region = Region.around((1000, 0, 1500, 300), (40_000, 300), include=(1490, 10, 1520, 20))
    assert region.contains_box((1490, 10, 1520, 20))
    assert region.width == 500  # shifted, not resized
