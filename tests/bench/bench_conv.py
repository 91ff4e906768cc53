"""Convolution tab speed: from a knob change to the redrawn maps, on a 512x512 RGB image with K = 3
3x3 filters (target: median <= 30 ms on CPU), plus the engine's conv2d alone.

    python -m tests.bench.bench_conv [--repeats 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import numpy as np  # noqa: E402

from tests.bench._common import isolate_settings  # noqa: E402

from engine import conv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from gui.tabs.conv_tab import ConvTab

    app = QApplication.instance() or QApplication([])
    isolate_settings()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    tab = ConvTab()
    tab.resize(1500, 950)
    tab.show()
    tab.colour_combo.setCurrentIndex(1)
    tab._set_image(image, "random 512 x 512 RGB")
    tab.filters_spin.setValue(3)
    for _ in range(5):
        app.processEvents()
    assert tab.x.shape == (3, 512, 512) and tab.w.shape == (3, 3, 3, 3), (tab.x.shape, tab.w.shape)

    knob_times = []
    for n in range(args.repeats):
        t0 = time.perf_counter()
        tab.padding_spin.setValue(n % 3)  # a knob change...
        app.processEvents()  # ...the coalesced recomputation runs...
        tab.repaint()  # ...and the maps are painted
        app.processEvents()
        knob_times.append(time.perf_counter() - t0)

    engine_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        conv.conv2d(tab.x, tab.w, tab.bias, padding=1, dtype=np.float32)  # as the tab does for images
        engine_times.append(time.perf_counter() - t0)
    ms = lambda v: statistics.median(v) * 1000  # noqa: E731
    print(f"512x512 RGB, K=3, 3x3: knob change -> redrawn maps median {ms(knob_times):.1f} ms "
          f"(p90 {np.percentile(knob_times, 90) * 1000:.1f} ms)  target <= 30 ms")
    print(f"engine conv2d alone: median {ms(engine_times):.1f} ms")
    tab.shutdown()


if __name__ == "__main__":
    main()
