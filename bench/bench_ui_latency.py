"""Click -> overlay-painted latency of the real samdesk window, and GUI stalls during encodes.

Drives the real MainWindow offscreen with the real inference worker and the real Predictor on a
ViT-B-format network with random weights (``samdesk.model.testing.save_random_checkpoint``):

1. **idle**: >= 50 clicks with no encode running (the next images already prefetched);
2. **during a prefetch**: >= 50 clicks while the worker encodes other images in the background;
3. **GUI stall**: a 5 ms QTimer measures its own lateness while an image is encoded, both when
   the user opens an image (interactive encode) and during the prefetch phase.

A click's latency runs from the mouse event being sent to the viewport until the object's
overlay has been painted with the answer (MaskItem.on_painted). Clicks alternate between a new
object (one point, three candidates) and a refinement (a second point with the previous
low-res logits as mask prompt).

Run on a quiet machine:  flock -x /tmp/samdesk-cpu.lock python bench/bench_ui_latency.py
Targets: idle median <= 40 ms and p95 <= 80 ms; median <= 60 ms during a prefetch; no GUI
stall over 50 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np


def _images(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    """``count`` distinct images (the sample scene, shifted and recoloured) of ``size``."""
    import cv2

    from samdesk.ui.sample import make_sample

    base = cv2.resize(make_sample(), size, interpolation=cv2.INTER_LINEAR)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = np.roll(base, index * 97, axis=1)
        image = np.roll(image, index * 53, axis=0)[:, :, [(index + k) % 3 for k in range(3)]]
        path = folder / f"bench{index:02d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def _checkpoint(folder: Path, arch: str) -> Path:
    from samdesk.model.testing import save_random_checkpoint

    path = folder / f"random_{arch}.pth"
    if not path.is_file():
        print(f"writing a random {arch} checkpoint to {path} …", flush=True)
        save_random_checkpoint(path, arch=arch, seed=0)
    return path


class StallMeter:
    """A 5 ms timer measuring how late the GUI thread runs it (the longest stall)."""

    def __init__(self, interval_ms: int = 5) -> None:
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.timer = QTimer()
        self.timer.setObjectName("stall-meter")
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.worst = 0.0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.worst = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last - self.interval)
        self.last = now


class StallWatchdog:
    """Prints every thread's stack when the GUI thread misses its 5 ms beat by more than
    ``threshold`` seconds (``--diagnose-stalls``): shows what blocks the GUI."""

    def __init__(self, threshold: float = 0.1) -> None:
        import threading

        from PySide6.QtCore import QTimer

        self.threshold = threshold
        self.beat = time.perf_counter()
        self.main = threading.get_ident()
        self.timer = QTimer()
        self.timer.setObjectName("stall-watchdog")
        self.timer.timeout.connect(self._beat)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)

    def _beat(self) -> None:
        self.beat = time.perf_counter()

    def start(self) -> None:
        self.timer.start(5)
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        self.timer.stop()
        self.thread.join(1.0)

    def _watch(self) -> None:
        import threading
        import traceback

        reported = 0.0
        while not self.stop_flag.wait(0.01):
            beat = self.beat
            late = time.perf_counter() - beat
            if late < self.threshold or beat == reported:
                continue
            reported = beat
            lines = [f"--- GUI thread {late * 1000:.0f} ms late; stacks:"]
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                name = "GUI" if ident == self.main else str(ident)
                stack = "".join(traceback.format_stack(frame)[-4:])
                lines.append(f"[{name}]\n{stack}")
            print("\n".join(lines), flush=True)


class Bench:
    def __init__(self, window, app) -> None:
        self.window = window
        self.app = app
        self.painted_at = 0.0
        self.answered_at = 0.0
        self.decoder = 0.0
        self.decoder_times: list[float] = []
        window.canvas.object_item.on_painted = self._painted
        window.annotator.prompt_answered.connect(self._answered)

    def _painted(self, when: float) -> None:
        self.painted_at = when

    def _answered(self, _latency: float, decoder: float) -> None:
        self.answered_at = time.perf_counter()  # the answer is on the overlay item now
        self.decoder = decoder

    def pump(self, seconds: float = 0.0) -> None:
        end = time.perf_counter() + seconds
        while True:
            self.app.processEvents()
            if time.perf_counter() >= end:
                return
            time.sleep(0.001)

    def wait_for(self, condition, timeout: float, what: str) -> None:
        end = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > end:
                raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
            self.app.processEvents()
            time.sleep(0.001)

    def click(self, x: int, y: int) -> float:
        """Click pixel (x, y); seconds until the overlay with the answer was painted."""
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        window = self.window
        canvas = window.canvas
        session = window.annotator.session
        seq_before = window.annotator._seq
        pos = canvas.viewport_pos_of_pixel(x, y)
        start = time.perf_counter()
        self.painted_at = self.answered_at = 0.0
        QTest.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)

        def done() -> bool:
            answered = window.annotator._seq > seq_before and session.pending_seq is None
            return answered and self.answered_at > start and self.painted_at > self.answered_at

        self.wait_for(done, 60, "a click's overlay")
        self.decoder_times.append(self.decoder)
        return self.painted_at - start

    def clicks(self, count: int, rng: np.random.Generator, keep_going=None) -> list[float]:
        """``count`` clicks on random pixels, alternating new objects and refinements."""
        width, height = self.window.canvas.image_size
        times = []
        while len(times) < count and (keep_going is None or keep_going()):
            if len(times) % 2 == 0:
                self.window.annotator.clear_object()
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            times.append(self.click(x, y))
        return times


def summary(name: str, times: list[float], decoder: list[float]) -> str:
    ms = np.array(times) * 1000
    return (
        f"{name:<28} n={len(ms):3d}  median {np.median(ms):6.1f} ms  p95 "
        f"{np.percentile(ms, 95):6.1f} ms  max {ms.max():6.1f} ms  "
        f"(of which predict() on the worker: median {np.median(decoder) * 1000:5.1f} ms)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="vit_b", help="random checkpoint architecture")
    parser.add_argument("--clicks", type=int, default=60, help="clicks per phase (>= 50)")
    parser.add_argument("--size", default="1024x768", help="image size WxH")
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "samdesk-bench",
        help="where the random checkpoint is kept between runs",
    )
    parser.add_argument(
        "--diagnose-stalls",
        action="store_true",
        help="print every thread's stack when the GUI thread stalls for more than 100 ms",
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="samdesk-ui-bench-"))
    os.environ["SAMDESK_CACHE_DIR"] = str(work / "cache")
    os.environ["SAMDESK_DATA_DIR"] = str(work / "data")
    args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = _checkpoint(args.checkpoint_dir, args.arch)
    first = _images(work / "images", 3, (width, height))
    extra = _images(work / "more", 12, (width, height))

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from samdesk.ui.main_window import MainWindow
    from samdesk.ui.settings import Settings

    app = QApplication.instance() or QApplication(sys.argv[:1])

    class NoQuestions:
        def ask(self, title, text, buttons, default=None):
            return "Discard" if "Discard" in buttons else buttons[-1]

    settings = Settings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings, dialogs=NoQuestions())
    window.resize(1400, 900)
    window.show()
    bench = Bench(window, app)
    rng = np.random.default_rng(0)
    stall = StallMeter()
    watchdog = StallWatchdog() if args.diagnose_stalls else None
    try:
        if watchdog is not None:
            watchdog.start()
        started = time.perf_counter()
        window.models.request(str(checkpoint))
        bench.wait_for(lambda: window.models.pending is None, 600, "the model to load")
        if window.models.active != str(checkpoint):
            raise SystemExit(f"the model did not load: {window.messages.history[-1:]}")
        print(
            f"model: {window.status_model.text()} (loaded in {time.perf_counter() - started:.1f} s)"
        )

        # opening an image: the interactive encode, with the GUI stall meter running
        started = time.perf_counter()
        window.open_paths([str(first[0].parent)])
        open_call = time.perf_counter() - started
        stall.start()
        bench.wait_for(lambda: window.annotator.ready, 600, "the first embedding")
        encode_seconds = time.perf_counter() - started
        stall_open = stall.stop()
        print(f"open_paths() returned after {open_call * 1000:.0f} ms (GUI thread)")
        print(
            f"open + encode {first[0].name}: {encode_seconds:.2f} s; {window.status_encoder.text()}"
        )

        # idle: wait until the next images are prefetched, so nothing encodes meanwhile
        prefetched: set = set()
        window.annotator.prefetched.connect(lambda iid, state, _s: prefetched.add(iid))
        bench.wait_for(lambda: len(prefetched) >= 2, 900, "the prefetch of the next 2 images")
        bench.pump(0.5)
        bench.decoder_times = []
        idle = bench.clicks(args.clicks, rng)
        print(summary("idle (no encode running)", idle, bench.decoder_times))

        # during a prefetch: keep the worker busy encoding other images, click meanwhile
        window.annotator.clear_object()
        done_extra: set = set()
        window.annotator.prefetched.connect(lambda iid, state, _s: done_extra.add(iid))
        queue = [(f"extra{i}", p) for i, p in enumerate(extra)]
        window.worker.prefetch(queue)
        bench.pump(1.0)  # let the background encode start
        stall.start()
        bench.decoder_times = []
        busy = []
        while len(busy) < args.clicks and len(done_extra) < len(queue):
            busy += bench.clicks(min(10, args.clicks - len(busy)), rng)
        stall_prefetch = stall.stop()
        window.worker.prefetch([])
        if len(busy) < args.clicks:
            print(f"(the prefetch queue ran out after {len(busy)} clicks; add images)")
        print(summary("during a prefetch encode", busy, bench.decoder_times))
        print(f"{'GUI stall, encoding (open)':<28} longest {stall_open * 1000:6.1f} ms")
        print(f"{'GUI stall, during prefetch':<28} longest {stall_prefetch * 1000:6.1f} ms")
        ok = (
            statistics.median(idle) <= 0.040
            and float(np.percentile(idle, 95)) <= 0.080
            and statistics.median(busy) <= 0.060
            and max(stall_open, stall_prefetch) <= 0.050
        )
        print("targets met" if ok else "targets NOT met")
    finally:
        if watchdog is not None:
            watchdog.stop()
        window.dialogs = NoQuestions()
        window.shutdown()
        window.close()
        window.deleteLater()
        app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
