"""RNN tab speed: the T x T BPTT maps, the Jacobian curve, heatmap redraws, slider coalescing.

    python -m tests.bench.bench_rnn [--repeats 30] [--autograd]

Targets (issue 4): T = 200, d = 64: the full T x T map in <= 30 ms median on the CPU (one backward
sweep of batched Jacobian products); redrawing a heatmap <= 16 ms; slider moves coalesce.
``--autograd`` also times the slow way (one torch autograd call per loss L_t) for comparison;
``--blas-threads 1`` runs numpy's BLAS single-threaded (these products are small: on a busy
machine extra BLAS threads mostly wait for each other).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if "--blas-threads" in sys.argv:  # must be set before numpy loads its BLAS
    _threads = sys.argv[sys.argv.index("--blas-threads") + 1]
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import numpy as np  # noqa: E402

from engine import rnn
from tests.bench._common import isolate_settings  # noqa: E402


def _median_ms(func, repeats: int) -> tuple[float, float]:
    func()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, float(np.percentile(times, 90)) * 1000


def problem(T: int = 200, d: int = 64, vocab: int = 30):
    rng = np.random.default_rng(0)
    model = rnn.VanillaRNN.random(vocab, d, vocab, scale=1.0, seed=0, init="orthogonal")
    return model, rng.integers(0, vocab, T), rng.integers(0, vocab, T)


def bench_engine(repeats: int) -> None:
    model, inputs, targets = problem()
    for label, kwargs in (("bptt with T x T maps", {"maps": True}),
                          ("bptt with maps, truncate=20", {"maps": True, "truncate": 20}),
                          ("bptt gradients only (training)", {"maps": False})):
        med, p90 = _median_ms(lambda kw=kwargs: rnn.bptt(model, inputs, targets, **kw), repeats)
        target = "  target <= 30 ms" if kwargs == {"maps": True} else ""
        print(f"T=200 d=64 {label}: median {med:.1f} ms (p90 {p90:.1f} ms){target}")
    med, p90 = _median_ms(lambda: rnn.jacobian_curve(model, inputs, max_points=100), repeats)
    print(f"T=200 d=64 jacobian_curve (100 spectral norms): median {med:.1f} ms (p90 {p90:.1f} ms)")
    rng = np.random.default_rng(1)
    task = rnn.make_task("".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz "), 200)))
    n = len(task.vocab)
    big = rnn.VanillaRNN.random(n, 256, n, scale=1.0, seed=0, init="orthogonal")
    med, _ = _median_ms(lambda: list(rnn.analyse(big, task)), max(3, repeats // 10))
    print(f"T=200 d=256 full analysis (maps + curve + clipping), run off the GUI thread: median {med:.0f} ms")


def bench_autograd() -> None:
    import torch

    model, inputs, targets = problem()
    P = {name: torch.tensor(v, requires_grad=True) for name, v in model.params().items()}
    x = torch.nn.functional.one_hot(torch.tensor(inputs), model.n).double()
    t0 = time.perf_counter()
    states, h = [], torch.zeros(model.d, dtype=torch.float64)
    for t in range(len(inputs)):
        h = torch.tanh(x[t] @ P["U"] + h @ P["W"] + P["b"])
        states.append(h)
    for t in range(len(inputs)):  # one call per loss: the way the issue says not to do it
        loss_t = torch.nn.functional.cross_entropy((states[t] @ P["V"] + P["c"])[None],
                                                   torch.tensor([int(targets[t])]), reduction="sum")
        torch.autograd.grad(loss_t, states[: t + 1], retain_graph=True)
    print(f"for comparison, one autograd call per loss L_t: {(time.perf_counter() - t0) * 1000:.0f} ms")


def bench_gui(repeats: int) -> None:
    from PySide6.QtWidgets import QApplication

    from gui.widgets.heatmap import LogHeatmapPlot

    app = QApplication.instance() or QApplication([])
    isolate_settings()
    model, inputs, targets = problem()
    result = rnn.bptt(model, inputs, targets, truncate=50)
    plot = LogHeatmapPlot("bench", "||dL_t/dh_k||")
    plot.resize(420, 360)
    plot.show()
    app.processEvents()
    cut = result.cut_mask()

    def redraw():
        plot.set_matrix(result.dL_dh_norms, cut)
        plot.repaint()  # paint now, not at the next event-loop turn

    med, p90 = _median_ms(redraw, repeats)
    print(f"heatmap redraw 200 x 200 (log scale, cut layer, painted): median {med:.1f} ms "
          f"(p90 {p90:.1f} ms)  target <= 16 ms")

    from gui.tabs.rnn_tab import RNNTab

    tab = RNNTab()
    tab.resize(1500, 950)
    tab.show()
    tab.preset_combo.setCurrentText("a few sentences")
    tab.hidden_spin.setValue(64)
    deadline = time.perf_counter() + 20
    while not tab.is_idle() and time.perf_counter() < deadline:
        app.processEvents()
    runs = [0]
    tab.analysis_runner.record.connect(lambda _a: runs.__setitem__(0, runs[0] + 1))
    t0 = time.perf_counter()
    turns = []
    for value in np.linspace(0.2, 3.0, 60):  # a drag: one move every ~10 ms
        s = time.perf_counter()
        tab.scale_slider.setValue(float(value))
        app.processEvents()
        turns.append(time.perf_counter() - s)
        time.sleep(0.01)
    while not tab.is_idle() and time.perf_counter() < deadline + 20:
        app.processEvents()
        time.sleep(0.001)
    print(f"slider drag, 60 moves in {(time.perf_counter() - t0):.2f} s (T=164, d=64): {runs[0]} analyses "
          f"computed; GUI-thread turn per move median {np.median(turns) * 1000:.1f} ms, "
          f"max {max(turns) * 1000:.0f} ms (move {int(np.argmax(turns)) + 1}); final radius "
          f"{rnn.spectral_radius(tab.model.W):.2f} (slider 3.00)")
    tab.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--autograd", action="store_true", help="also time one autograd call per loss")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="BLAS threads (default: the library's choice); 1 is faster on a busy machine")
    args = parser.parse_args()
    bench_engine(args.repeats)
    if args.autograd:
        bench_autograd()
    bench_gui(args.repeats)


if __name__ == "__main__":
    main()
