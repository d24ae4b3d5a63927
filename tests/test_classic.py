"""The Classic (GrabCut) backend: accuracy on synthetic scenes, SAM-compatible outputs, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from samdesk.engine import classic
from samdesk.engine.backend import Backend
from samdesk.engine.classic import (
    ClassicBackend,
    low_res_logits_to_mask,
    mask_to_low_res_logits,
)
from samdesk.engine.embedding import Embedding
from samdesk.engine.jobs import CancelToken
from samdesk.errors import CancelledError, InputError, PromptError

SHAPES = ("ellipse", "rect", "triangle", "star")


def _scene(kind: str, seed: int, h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """A textured, noisy object on a textured background: (H, W, 3) uint8 and (H, W) bool truth.

    Object and background differ by 25-45 grey levels per channel; both carry a sinusoidal
    texture (amplitude 15-20) and Gaussian noise (sigma 20), so no single threshold separates
    them.
    """
    rng = np.random.default_rng(seed)
    bg = rng.integers(40, 200, 3)
    fg = (bg + rng.choice([-1, 1], 3) * rng.integers(25, 45, 3)).clip(0, 255)
    yy, xx = np.mgrid[:h, :w]
    img = np.empty((h, w, 3), np.float32)
    img[:] = bg
    img += (20 * np.sin(xx / 7.0 + rng.random() * 6) * np.cos(yy / 11.0))[..., None]
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3))
    s = int(rng.integers(25, 55))
    if kind == "ellipse":
        angle = float(rng.integers(0, 180))
        cv2.ellipse(mask, (cx, cy), (s, int(s * 0.6)), angle, 0, 360, 1, -1)
    elif kind == "rect":
        cv2.rectangle(mask, (cx - s, cy - s // 2), (cx + s, cy + s // 2), 1, -1)
    elif kind == "triangle":
        pts = np.array([[cx, cy - s], [cx - s, cy + s], [cx + s, cy + s // 2]], np.int32)
        cv2.fillPoly(mask, [pts], 1)
    else:
        ang = np.linspace(0, 2 * np.pi, 11)[:-1]
        r = np.where(np.arange(10) % 2 == 0, s, s * 0.45)
        star = np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(mask, [star], 1)
    inside = mask.astype(bool)
    img[inside] = fg + (15 * np.sin((xx + yy) / 5.0))[inside][:, None]
    img += rng.normal(0, 20, img.shape)
    return img.clip(0, 255).astype(np.uint8), inside


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _inner_point(mask: np.ndarray) -> np.ndarray:
    """The (x, y) pixel deepest inside ``mask``, shape (1, 2)."""
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return np.array([[x, y]], dtype=np.float64)


def _bbox(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


def test_accuracy_on_synthetic_shapes() -> None:
    """Mean IoU >= 0.92 for a tight box and for one click, over 8 scenes.

    Why 0.92: on these 50-110 px objects a boundary that is off by one pixel all round costs
    0.03-0.08 IoU (star tips are thinnest), and GrabCut typically lands within a pixel; the
    box drawn as a filled rectangle (the trivial answer) scores about 0.64, a collapse 0.0.
    """
    be = ClassicBackend()
    box_ious, point_ious, box_fill = [], [], []
    for kind in SHAPES:
        for seed in range(2):
            image, truth = _scene(kind, seed)
            be.set_image(image)
            box = _bbox(truth)
            masks, _, _ = be.predict(box=box, multimask_output=False)
            box_ious.append(_iou(masks[0], truth))
            masks, _, _ = be.predict(_inner_point(truth), np.array([1]))
            point_ious.append(_iou(masks[0], truth))
            filled = np.zeros_like(truth)
            x0, y0, x1, y1 = box.astype(int)
            filled[y0 : y1 + 1, x0 : x1 + 1] = True
            box_fill.append(_iou(filled, truth))
    print(
        f"\nClassic IoU over {len(box_ious)} scenes: box mean {np.mean(box_ious):.3f} "
        f"min {np.min(box_ious):.3f}; one point mean {np.mean(point_ious):.3f} "
        f"min {np.min(point_ious):.3f}; filled box (baseline) {np.mean(box_fill):.3f}"
    )
    assert np.mean(box_ious) >= 0.92 and np.min(box_ious) >= 0.75
    assert np.mean(point_ious) >= 0.92 and np.min(point_ious) >= 0.75
    assert np.mean(box_ious) > np.mean(box_fill) + 0.2


def test_outputs_have_sam_shapes_and_dtypes() -> None:
    image, truth = _scene("ellipse", 0, h=200, w=300)
    be = ClassicBackend()
    be.set_image(image)
    masks, scores, low_res = be.predict(_inner_point(truth), np.array([1]), multimask_output=True)
    assert masks.shape == (1, 200, 300) and masks.dtype == bool
    assert scores.shape == (1,) and scores.dtype == np.float32 and scores[0] == 1.0
    assert low_res.shape == (1, 256, 256) and low_res.dtype == np.float32
    logits, _, _ = be.predict(_inner_point(truth), np.array([1]), return_logits=True)
    assert logits.dtype == np.float32 and logits.shape == (1, 200, 300)
    np.testing.assert_array_equal(logits[0] > 0, masks[0])


def test_same_prompt_gives_same_mask() -> None:
    image, truth = _scene("star", 1)
    be = ClassicBackend()
    be.set_image(image)
    first, _, _ = be.predict(box=_bbox(truth))
    cv2.setRNGSeed(1234)  # the backend must not depend on whatever state OpenCV's RNG is in
    second, _, _ = be.predict(box=_bbox(truth))
    np.testing.assert_array_equal(first, second)


def test_low_res_logits_round_trip_as_mask_input() -> None:
    image, truth = _scene("triangle", 2, h=180, w=320)
    be = ClassicBackend()
    be.set_image(image)
    masks, _, low_res = be.predict(box=_bbox(truth))
    again, _, _ = be.predict(mask_input=low_res)
    assert _iou(again[0], masks[0]) >= 0.95
    # the logits alone, scaled back as SAM does, reproduce the mask closely
    assert _iou(low_res_logits_to_mask(low_res[0], 320, 180), masks[0]) >= 0.95
    # a full-size mask (the last mask shown) is accepted as mask_input too
    full, _, _ = be.predict(mask_input=masks[0])
    assert _iou(full[0], masks[0]) >= 0.95


def test_low_res_frame_is_sams() -> None:
    """Longest side 256, padded at the bottom/right, as SAM's low_res_logits."""
    mask = np.zeros((100, 400), dtype=bool)
    mask[:, :200] = True
    logits = mask_to_low_res_logits(mask)
    assert logits.shape == (256, 256)
    assert (logits[64:, :] < 0).all()  # padding below the 256x64 image
    assert (logits[:64, :120] > 0).all() and (logits[:64, 136:] < 0).all()
    np.testing.assert_array_equal(low_res_logits_to_mask(logits, 400, 100), mask)


def test_points_are_respected() -> None:
    image, truth = _scene("rect", 0)
    be = ClassicBackend()
    be.set_image(image)
    pos = _inner_point(truth)
    neg = np.array([[5.0, 5.0]])
    masks, _, _ = be.predict(np.vstack([pos, neg]), np.array([1, 0]))
    assert masks[0, int(pos[0, 1]), int(pos[0, 0])]
    assert not masks[0, 5, 5]
    assert _iou(masks[0], truth) >= 0.9


def test_only_the_clicked_object_is_kept() -> None:
    """Two look-alike discs: a click on one must not select the other."""
    rng = np.random.default_rng(3)
    image = np.full((200, 400, 3), (40, 90, 160), np.float32)
    left, right = np.zeros((200, 400), np.uint8), np.zeros((200, 400), np.uint8)
    cv2.circle(left, (100, 100), 40, 1, -1)
    cv2.circle(right, (300, 100), 40, 1, -1)
    image[(left | right).astype(bool)] = (200, 160, 60)
    image = (image + rng.normal(0, 10, image.shape)).clip(0, 255).astype(np.uint8)
    be = ClassicBackend()
    be.set_image(image)
    masks, _, _ = be.predict(np.array([[100.0, 100.0]]), np.array([1]))
    assert _iou(masks[0], left.astype(bool)) >= 0.9
    assert not masks[0][right.astype(bool)].any()


def test_negative_point_removes_a_part() -> None:
    """A box over an object and a touching look-alike bar; a negative click on the bar drops it."""
    rng = np.random.default_rng(4)
    image = np.full((240, 320, 3), (50, 50, 50), np.float32)
    body = np.zeros((240, 320), np.uint8)
    cv2.circle(body, (140, 120), 50, 1, -1)
    bar = np.zeros((240, 320), np.uint8)
    bar[110:130, 190:250] = 1
    image[body.astype(bool)] = (200, 200, 90)
    image[bar.astype(bool) & ~body.astype(bool)] = (190, 205, 80)
    image = (image + rng.normal(0, 8, image.shape)).clip(0, 255).astype(np.uint8)
    be = ClassicBackend()
    be.set_image(image)
    box = np.array([85.0, 65.0, 252.0, 175.0])
    with_bar, _, _ = be.predict(box=box)
    assert with_bar[0, 120, 230]  # the bar looks like the object: GrabCut keeps it
    masks, _, _ = be.predict(np.array([[230.0, 120.0]]), np.array([0]), box=box)
    assert not masks[0, 120, 230]
    assert _iou(masks[0], body.astype(bool)) >= 0.85


def test_large_image_is_downscaled_and_mapped_back(monkeypatch: pytest.MonkeyPatch) -> None:
    h, w = 1500, 2000
    rng = np.random.default_rng(5)
    image = np.full((h, w, 3), (60, 120, 60), np.uint8)
    truth = np.zeros((h, w), np.uint8)
    cv2.circle(image, (1250, 600), 300, (200, 80, 60), -1)
    cv2.circle(truth, (1250, 600), 300, 1, -1)
    image = (image + rng.normal(0, 12, image.shape)).clip(0, 255).astype(np.uint8)
    seen: list[tuple[int, ...]] = []
    real = cv2.grabCut

    def spy(img, *args):  # type: ignore[no-untyped-def]
        seen.append(img.shape)
        return real(img, *args)

    monkeypatch.setattr(classic.cv2, "grabCut", spy)
    be = ClassicBackend(max_side=256)
    be.set_image(image)
    masks, _, _ = be.predict(box=np.array([940.0, 290.0, 1560.0, 910.0]))
    assert seen and max(seen[0][:2]) <= 256
    ys, xs = np.nonzero(masks[0])
    # the circle spans x 950..1550, y 300..900; one work pixel is about 4 image pixels here
    assert abs(xs.min() - 950) <= 6 and abs(xs.max() - 1550) <= 6
    assert abs(ys.min() - 300) <= 6 and abs(ys.max() - 900) <= 6
    assert _iou(masks[0], truth.astype(bool)) >= 0.97


def test_embedding_is_the_image_and_not_cached() -> None:
    be = ClassicBackend()
    assert isinstance(be, Backend)
    assert be.cache_key is None and be.device == "cpu"
    gray = np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)
    steps: list[tuple[int, int]] = []
    emb = be.compute_embedding(gray, step_hook=lambda d, t: steps.append((d, t)))
    assert emb.features.shape == (12, 20, 3) and emb.features.dtype == np.uint8
    np.testing.assert_array_equal(emb.features[..., 1], gray)
    assert emb.original_size == (12, 20) and emb.input_size == (12, 20)
    assert steps == [(1, 1)] and not be.is_image_set
    be.set_embedding(emb)
    assert be.is_image_set
    be.reset_image()
    assert not be.is_image_set
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        be.compute_embedding(gray, cancel=token)


def test_bgr_input_is_converted() -> None:
    be = ClassicBackend()
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 255
    be.set_image(np.ascontiguousarray(rgb[..., ::-1]), image_format="BGR")
    masks, _, _ = be.predict(box=np.array([0.0, 0.0, 4.0, 3.0]))
    assert masks.shape == (1, 4, 5)
    with pytest.raises(InputError, match="image_format"):
        be.set_image(rgb, image_format="HSV")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs a box, a positive point"),
        ({"point_coords": np.array([[5.0, 5.0]]), "point_labels": np.array([0])}, "negative"),
        ({"point_coords": np.array([[500.0, 5.0]]), "point_labels": np.array([1])}, "outside"),
        ({"point_coords": np.array([[5.0, 5.0]]), "point_labels": np.array([1, 0])}, "shape"),
        ({"point_coords": np.array([[5.0, 5.0]])}, "together"),
        ({"point_coords": np.array([[np.nan, 5.0]]), "point_labels": np.array([1])}, "NaN"),
        ({"point_coords": np.array([[5.0, 5.0]]), "point_labels": np.array([2])}, "labels"),
        ({"box": np.array([50.0, 10.0, 20.0, 40.0])}, "x1 < x0"),
        ({"box": np.array([1.0, 2.0, 3.0])}, "4 finite numbers"),
        ({"box": np.array([200.0, 200.0, 300.0, 300.0])}, "inside the image"),
        ({"mask_input": np.zeros((1, 64, 64), np.float32)}, "mask_input must be"),
    ],
)
def test_bad_prompts_are_refused(kwargs: dict, message: str) -> None:
    be = ClassicBackend()
    be.set_image(np.zeros((60, 80, 3), np.uint8))
    with pytest.raises(PromptError, match=message):
        be.predict(**kwargs)


def test_bad_images_and_state_are_refused() -> None:
    be = ClassicBackend()
    with pytest.raises(PromptError, match="set_image"):
        be.predict(box=np.array([0.0, 0.0, 5.0, 5.0]))
    with pytest.raises(InputError, match="uint8"):
        be.set_image(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        be.set_image(np.zeros((10, 10, 4), np.uint8))
    foreign = Embedding(np.zeros((256, 64, 64), np.float32), (10, 10), (1024, 1024), "sam-x")
    with pytest.raises(InputError, match="another model"):
        be.set_embedding(foreign)
    with pytest.raises(InputError, match="max_side"):
        ClassicBackend(max_side=4)
