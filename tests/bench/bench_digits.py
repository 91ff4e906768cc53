"""Digit tab speed: predict() from a 280x280 canvas, and the GUI's longest stall while retraining.

    python -m tests.bench.bench_digits [--data ../shared/data/mnist] [--seconds 20]

Targets (issue 2): predict median <= 3 ms on CPU; longest event-loop stall <= 50 ms while
the digit CNN retrains on the CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import numpy as np  # noqa: E402

from tests.bench._common import isolate_settings  # noqa: E402
from tests.gui_helpers import StallMeter  # noqa: E402
import torch  # noqa: E402

from engine import digits  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def canvas_with_digit() -> np.ndarray:  # (280, 280) uint8, a thick "7" on white
    from PIL import Image, ImageDraw

    im = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(im)
    draw.line([(70, 50), (210, 50), (120, 240)], fill=0, width=18, joint="curve")
    return np.asarray(im)


def bench_predict(repeats: int = 300) -> None:
    model = digits.load_pretrained("cpu")
    canvas = canvas_with_digit()
    x = torch.from_numpy(digits.preprocess(canvas))[None, None]
    for _ in range(20):
        digits.predict(model, canvas)
    times, forward, prep = [], [], []
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            digits.predict(model, canvas)
            t1 = time.perf_counter()
            model(x)
            t2 = time.perf_counter()
            digits.preprocess(canvas)
            t3 = time.perf_counter()
            times.append(t1 - t0)
            forward.append(t2 - t1)
            prep.append(t3 - t2)
    ms = lambda v: statistics.median(v) * 1000  # noqa: E731
    print(f"predict(280x280 canvas) median {ms(times):.2f} ms  (p90 {np.percentile(times, 90) * 1000:.2f} ms)"
          f"  [bare forward {ms(forward):.2f} ms, preprocess {ms(prep):.2f} ms]  target <= 3 ms"
          f"  torch threads={torch.get_num_threads()}")


def bench_stall(data: str, seconds: float) -> None:
    from PySide6.QtWidgets import QApplication

    from gui.tabs import spec_for
    from gui.tabs.digits_tab import DigitsTab

    for module in spec_for("digits").preload:  # as the app does while its window shows "loading"
        __import__(module)

    app = QApplication.instance() or QApplication([])
    isolate_settings()
    tab = DigitsTab()
    tab.resize(1300, 850)
    tab.show()
    tab.data_edit.setText(data)
    tab.epochs_spin.setValue(50)
    tab.start_training()
    deadline = time.perf_counter() + 3
    while tab.train_runner.state != "running" and time.perf_counter() < deadline:
        app.processEvents()
    records = [0]
    tab.train_runner.record.connect(lambda _r: records.__setitem__(0, records[0] + 1))
    g = StallMeter().watch(app, seconds)
    tab.shutdown()
    print(f"retraining on CPU for {seconds:.0f} s: longest event-loop stall {g.max():.0f} ms, "
          f"p99 {np.percentile(g, 99):.0f} ms, median {np.median(g):.0f} ms over {len(g)} ticks of 5 ms; "
          f"{records[0]} progress records drawn  target <= 50 ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    bench_predict()
    bench_stall(args.data, args.seconds)


if __name__ == "__main__":
    main()
