"""bf16 products in float32 matmuls: fast where the CPU has AMX-BF16, never inside exact work."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from samdesk.engine import Predictor
from samdesk.model import bf16_matmul
from samdesk.model.attention import blocked_attention, reference_attention
from samdesk.model.bf16_matmul import bf16_matmuls, bf16_matmuls_available, exact_matmuls
from samdesk.model.testing import save_random_checkpoint


def _setting() -> str:
    return str(torch.backends.mkldnn.matmul.fp32_precision)


@pytest.fixture
def pretend_available(monkeypatch):
    """The section bookkeeping is the same on every CPU: pretend AMX-BF16 is there, with the
    process-wide setting replaced by a variable (torch may refuse "bf16" without the hardware)."""
    state = {"value": "none"}
    monkeypatch.setattr(bf16_matmul, "_available", True)
    monkeypatch.setattr(bf16_matmul, "_get", lambda: state["value"])
    monkeypatch.setattr(bf16_matmul, "_set", lambda value: state.update(value=value))
    yield state
    assert bf16_matmul._fast == 0 and bf16_matmul._exact == 0


def _operands() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(128, 64, generator=gen), torch.randn(64, 96, generator=gen)


def test_fast_section_uses_bf16_products_only_where_available():
    a, b = _operands()
    before = _setting()
    want = a @ b
    with bf16_matmuls() as on:
        assert on == bf16_matmuls_available()
        assert _setting() == ("bf16" if on else before)
        got = a @ b
    assert _setting() == before
    rel = float((got - want).norm() / want.norm())
    if on:  # bf16 inputs, float32 accumulation: about 2e-3, never 0
        assert 1e-4 < rel < 1e-2, rel
    else:
        assert rel == 0.0
    with bf16_matmuls(enabled=False) as off:
        assert off is False and _setting() == before


def test_sections_nest_and_restore_the_users_setting(pretend_available):
    pretend_available["value"] = "tf32"  # whatever the user chose is put back afterwards
    with bf16_matmuls() as first:
        with bf16_matmuls() as second:
            assert first and second and pretend_available["value"] == "bf16"
        assert pretend_available["value"] == "bf16"  # the other section still runs
    assert pretend_available["value"] == "tf32"


def test_exact_section_waits_for_fast_sections_and_keeps_new_ones_off(pretend_available):
    entered, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def fast_worker() -> None:
        with bf16_matmuls() as on:
            seen["fast_on"] = on
            entered.set()
            release.wait(10)

    def exact_worker() -> None:
        with exact_matmuls():
            seen["exact_setting"] = bf16_matmul._get()
            seen["exact_at"] = time.monotonic()

    fast = threading.Thread(target=fast_worker)
    fast.start()
    assert entered.wait(10)
    exact = threading.Thread(target=exact_worker)
    exact.start()
    time.sleep(0.2)
    assert "exact_setting" not in seen  # waiting for the fast section
    with bf16_matmuls() as late:  # an exact section is waiting: this one runs plain float32
        assert late is False
    released_at = time.monotonic()
    release.set()
    fast.join(10)
    exact.join(10)
    assert seen["fast_on"] is True
    assert seen["exact_setting"] == "none" and seen["exact_at"] >= released_at


def test_blocked_attention_with_bf16_products_stays_close():
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(6, 256, 32, generator=gen) for _ in range(3))
    rel = (torch.randn(31, 32, generator=gen) * 0.3, torch.randn(31, 32, generator=gen) * 0.3)
    ref = reference_attention(q, k, v, 32**-0.5, rel, (16, 16))
    got = blocked_attention(q, k, v, 32**-0.5, rel, (16, 16), None, bf16_products=True)
    err = float((got - ref).norm() / ref.norm())
    assert err < 1e-2, err
    if bf16_matmuls_available():
        assert err > 1e-5  # the bf16 products really ran
    else:
        assert err < 1e-5


def test_fp32_click_is_exact_while_another_encode_holds_a_fast_section(tmp_path):
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=3)
    exact = Predictor.from_checkpoint(path, device="cpu", precision="fp32", hash_cache_dir=tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    exact.set_image(image)
    point = (np.array([[60.0, 45.0]]), np.array([1]))
    _, _, want = exact.predict(*point)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:  # what an int8 encode on an AMX CPU does for one attention head
        with bf16_matmuls():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)
    result: list[np.ndarray] = []
    clicker = threading.Thread(target=lambda: result.append(exact.predict(*point)[2]))
    clicker.start()
    time.sleep(0.3)
    waited = not result if bf16_matmuls_available() else True
    release.set()
    holder.join(10)
    clicker.join(10)
    assert waited  # with bf16 products on, the exact click waited for the section to end
    np.testing.assert_array_equal(result[0], want)
