"""The Classic backend's regions of interest (ADR 0061): what GrabCut runs on for a click, a
box and a refinement, and that working on small regions loses nothing the app relies on.

Timings are measured by bench/bench_classic.py; these tests check the work done instead (the
sizes and counts of GrabCut runs), which does not depend on the machine's load."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from samdesk.engine import classic
from samdesk.engine.classic import (
    ClassicBackend,
    _Prior,
    _Roi,
    _work_mask_to_low_res_logits,
    low_res_logits_to_mask,
    mask_to_low_res_logits,
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _disc_scene(h: int, w: int, centre: tuple[int, int], radius: int) -> tuple[np.ndarray, ...]:
    """A noisy orange disc on a green-blue background: (H, W, 3) uint8 and (H, W) bool."""
    truth = np.zeros((h, w), np.uint8)
    cv2.circle(truth, centre, radius, 1, -1)
    image = np.where(truth[..., None] > 0, (200, 120, 50), (50, 110, 120)).astype(np.float32)
    noise = np.random.default_rng(7).normal(0, 12, (h, w, 1)).astype(np.float32)
    return (image + noise).clip(0, 255).astype(np.uint8), truth.astype(bool)


@pytest.fixture
def grabcut_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], int]]:
    """(work image (h, w), iterations) of every cv2.grabCut call."""
    runs: list[tuple[tuple[int, int], int]] = []
    real = cv2.grabCut

    def spy(image, labels, rect, bg, fg, iterations, mode):  # type: ignore[no-untyped-def]
        runs.append((image.shape[:2], iterations))
        return real(image, labels, rect, bg, fg, iterations, mode)

    monkeypatch.setattr(classic.cv2, "grabCut", spy)
    return runs


@pytest.fixture(scope="module")
def large() -> tuple[np.ndarray, np.ndarray]:
    return _disc_scene(3000, 4000, (2600, 1200), 450)


def test_click_on_a_large_image_is_two_small_grabcuts(
    large: tuple[np.ndarray, np.ndarray], grabcut_runs: list
) -> None:
    """A coarse pass on the whole image, then one on the object's region; both small (the
    old code ran 5 iterations on a 512 px image: ~0.5 s per click)."""
    image, truth = large
    backend = ClassicBackend()
    backend.set_image(image)
    masks, _, _ = backend.predict(np.array([[2600.0, 1200.0]]), np.array([1]))
    assert [max(shape) for shape, _ in grabcut_runs] == [backend.click_side] * 2
    assert [n for _, n in grabcut_runs] == [backend.iterations, backend.refine_iterations]
    assert _iou(masks[0], truth) >= 0.95


def test_whole_image_is_downscaled_once_per_image(
    large: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    image, _ = large
    full_size: list[int] = []
    real = cv2.resize

    def spy(src, size, *args, **kwargs):  # type: ignore[no-untyped-def]
        if src.shape[:2] == image.shape[:2]:
            full_size.append(1)
        return real(src, size, *args, **kwargs)

    monkeypatch.setattr(classic.cv2, "resize", spy)
    backend = ClassicBackend()
    backend.set_image(image)
    for x in (2600.0, 2500.0, 2700.0):
        backend.predict(np.array([[x, 1200.0]]), np.array([1]))
    assert len(full_size) == 1
    backend.set_image(image[::-1].copy())  # another image: its own downscaled copy
    backend.predict(np.array([[2600.0, 1800.0]]), np.array([1]))
    assert len(full_size) == 2


def test_box_runs_on_its_region_only(
    large: tuple[np.ndarray, np.ndarray], grabcut_runs: list
) -> None:
    image, truth = large
    backend = ClassicBackend()
    backend.set_image(image)
    masks, _, _ = backend.predict(box=np.array([2150.0, 750.0, 3050.0, 1650.0]))
    assert len(grabcut_runs) == 1 and max(grabcut_runs[0][0]) == backend.max_side
    assert _iou(masks[0], truth) >= 0.95


def test_refinement_uses_fewer_iterations_and_grows_past_the_previous_mask(
    grabcut_runs: list,
) -> None:
    """The previous mask covers only the middle of the object and the user clicks on the
    object's edge: the region around the previous mask is too small, touches its border, and
    doubles until the object fits."""
    image, truth = _disc_scene(480, 640, (320, 240), 150)
    previous = np.zeros((480, 640), bool)
    cv2.circle(previous.view(np.uint8), (320, 240), 40, 1, -1)
    backend = ClassicBackend()
    backend.set_image(image)
    masks, _, _ = backend.predict(
        np.array([[320.0, 240.0], [440.0, 240.0]]),
        np.array([1, 1]),
        mask_input=mask_to_low_res_logits(previous)[None],
    )
    assert len(grabcut_runs) >= 2  # the first region was too small
    assert {n for _, n in grabcut_runs} == {backend.refine_iterations}
    assert _iou(masks[0], truth) >= 0.9  # 0.43 when the region cannot grow


def test_low_res_logits_without_a_full_size_mask() -> None:
    """Computed from the work mask of a region, they equal those of the full-size mask."""
    h, w = 3000, 4000
    roi = _Roi(1000, 500, 2500, 1700, 192, 154)
    work = np.zeros((154, 192), np.uint8)
    cv2.ellipse(work, (96, 77), (70, 50), 30, 0, 360, 1, -1)
    full = np.zeros((h, w), bool)
    full[500:1700, 1000:2500] = cv2.resize(work * 255, (1500, 1200)) >= 128
    mine = _work_mask_to_low_res_logits(work.astype(bool), roi, w, h)
    reference = mask_to_low_res_logits(full)
    assert np.abs(mine - reference).max() <= 2.0  # 0.1 of a cell's coverage, at the edges
    assert ((mine > 0) == (reference > 0)).mean() >= 0.999


def test_previous_logits_are_sampled_like_sams_upscaling() -> None:
    h, w = 900, 1200
    truth = np.zeros((h, w), bool)
    cv2.circle(truth.view(np.uint8), (700, 400), 230, 1, -1)
    logits = mask_to_low_res_logits(truth)
    full = low_res_logits_to_mask(logits, w, h)
    roi = _Roi(300, 100, 1100, 800, 192, 168)
    on_grid = _Prior.from_low_res(logits, w, h).on_work_grid(roi)
    crop = full[100:800, 300:1100].view(np.uint8)
    expected = cv2.resize(crop, (192, 168), interpolation=cv2.INTER_NEAREST) > 0
    assert (on_grid == expected).mean() >= 0.99
    assert _Prior.from_low_res(logits, w, h).bbox() == pytest.approx((470, 170, 930, 630), abs=6)


def test_downscaled_copy_never_serves_another_image_of_the_same_size() -> None:
    """The worker may open the next image (set_embedding) while a click on the previous one
    still runs: that click must keep working on its own image's pixels."""
    first, _ = _disc_scene(300, 400, (200, 150), 60)
    second = np.ascontiguousarray(first[::-1, ::-1])
    backend = ClassicBackend()
    backend.set_image(first)
    pixels = backend._embedding.features  # what a click on the first image reads
    backend.set_image(second)  # the next image arrives meanwhile
    roi = backend._sized(0, 0, 400, 300, backend.click_side)
    expected = cv2.medianBlur(
        cv2.resize(pixels, (roi.work_w, roi.work_h), interpolation=cv2.INTER_AREA), 3
    )
    np.testing.assert_array_equal(backend._work_image(pixels, roi), expected)
