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


def test_fast_and_exact_sections_never_overlap(pretend_available):
    """A holds a fast section; B (exact) waits for it; C (fast), arriving while B waits, waits
    for B. Order: A ends, B runs with the float32 setting, B ends, C runs with bf16."""
    release_a = threading.Event()
    a_in = threading.Event()
    log: list[tuple[str, str]] = []

    def fast_a() -> None:
        with bf16_matmuls() as on:
            log.append(("A in", bf16_matmul._get()))
            a_in.set()
            release_a.wait(10)
            log.append(("A out", str(on)))

    def exact_b() -> None:
        with exact_matmuls():
            log.append(("B in", bf16_matmul._get()))
            time.sleep(0.1)
            log.append(("B out", ""))

    def fast_c() -> None:
        with bf16_matmuls():
            log.append(("C in", bf16_matmul._get()))

    a = threading.Thread(target=fast_a)
    a.start()
    assert a_in.wait(10)
    b = threading.Thread(target=exact_b)
    b.start()
    deadline = time.monotonic() + 10
    while bf16_matmul._exact_waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bf16_matmul._exact_waiting == 1
    c = threading.Thread(target=fast_c)
    c.start()
    time.sleep(0.2)
    assert [name for name, _ in log] == ["A in"]  # B waits for A, C waits for B
    release_a.set()
    for t in (a, b, c):
        t.join(10)
    assert log == [
        ("A in", "bf16"),
        ("A out", "True"),
        ("B in", "none"),
        ("B out", ""),
        ("C in", "bf16"),
    ]


def test_sections_of_the_other_kind_cannot_nest_in_one_thread(pretend_available):
    with exact_matmuls(), pytest.raises(RuntimeError, match="inside an exact"), bf16_matmuls():
        pass
    with bf16_matmuls(), pytest.raises(RuntimeError, match="inside a fast"), exact_matmuls():
        pass
    with bf16_matmuls() as outer, bf16_matmuls() as inner:  # the same kind nests
        assert outer and inner
    with exact_matmuls(), bf16_matmuls(enabled=False) as off:  # a disabled one is no section
        assert off is False


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


def test_int8_embedding_does_not_depend_on_clicks_during_the_encode(tmp_path):
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=4)
    ours = Predictor.from_checkpoint(path, device="cpu", precision="auto", hash_cache_dir=tmp_path)
    exact = Predictor.from_checkpoint(path, device="cpu", precision="fp32", hash_cache_dir=tmp_path)
    image = np.random.default_rng(1).integers(0, 256, (200, 260, 3), dtype=np.uint8)
    alone = ours.compute_embedding(image).features
    exact.set_image(image)
    point = (np.array([[100.0, 80.0]]), np.array([1]))
    _, _, want = exact.predict(*point)
    done = threading.Event()
    clicks: list[np.ndarray] = []

    def click_all_the_time() -> None:
        while not done.is_set():
            clicks.append(exact.predict(*point)[2])

    clicker = threading.Thread(target=click_all_the_time)
    clicker.start()
    try:
        during = ours.compute_embedding(image).features
    finally:
        done.set()
        clicker.join(30)
    assert clicks  # the clicks really ran during the encode
    np.testing.assert_array_equal(during, alone)
    for got in clicks:
        np.testing.assert_array_equal(got, want)


def test_a_paused_exact_encode_does_not_hold_back_fast_sections(tmp_path, pretend_available):
    path = save_random_checkpoint(tmp_path / "small.pth", "small", seed=5)
    exact = Predictor.from_checkpoint(path, device="cpu", precision="fp32", hash_cache_dir=tmp_path)
    image = np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    paused, resume = threading.Event(), threading.Event()

    def hook(done: int, total: int) -> None:  # the worker pauses a prefetch like this
        if done == 1:
            paused.set()
            resume.wait(30)

    encode = threading.Thread(target=lambda: exact.compute_embedding(image, step_hook=hook))
    encode.start()
    try:
        assert paused.wait(30)
        entered = threading.Event()

        def fast() -> None:  # another predictor's int8 attention block
            with bf16_matmuls() as on:
                assert on
                entered.set()

        other = threading.Thread(target=fast)
        other.start()
        assert entered.wait(5)  # not blocked by the paused exact encode
        other.join(5)
    finally:
        resume.set()
        encode.join(30)


def test_unavailable_when_this_torch_has_no_such_setting(monkeypatch):
    def missing() -> str:  # older torch has no torch.backends.mkldnn.matmul
        raise AttributeError("module 'torch.backends.mkldnn' has no attribute 'matmul'")

    monkeypatch.setattr(bf16_matmul, "_available", None)
    monkeypatch.setattr(bf16_matmul, "_cpu_has_amx_bf16", lambda: True)
    monkeypatch.setattr(bf16_matmul, "_get", missing)
    assert bf16_matmuls_available() is False
    with bf16_matmuls() as on:  # and a fast section is then plain float32, waiting for nothing
        assert on is False


def test_release_survives_an_interrupt_while_waiting_for_the_lock(pretend_available, monkeypatch):
    real = bf16_matmul._cond

    class InterruptOnce:  # Ctrl+C arrives while the exit waits for the lock
        interrupted = False

        def acquire(self) -> bool:
            if not self.interrupted:
                self.interrupted = True
                raise KeyboardInterrupt
            return real.acquire()

        def __getattr__(self, name: str):
            return getattr(real, name)

        def __enter__(self):
            return real.__enter__()

        def __exit__(self, *exc):
            return real.__exit__(*exc)

    with pytest.raises(KeyboardInterrupt), bf16_matmuls() as on:
        assert on and bf16_matmul._fast == 1
        monkeypatch.setattr(bf16_matmul, "_cond", InterruptOnce())
    monkeypatch.setattr(bf16_matmul, "_cond", real)
    assert bf16_matmul._fast == 0 and pretend_available["value"] == "none"  # not leaked
