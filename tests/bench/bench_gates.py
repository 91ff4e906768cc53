"""Gate tab speed and the side-by-side result.

    python -m tests.bench.bench_gates [--seconds 15] [--skip-train]

Targets (issue 5): a gate trace for T = 500, H = 128 in <= 20 ms median on the CPU; the GUI's
longest event-loop stall <= 50 ms while three models train side by side. It also trains the
tab's default configuration to the end and prints each model's held-out accuracy, which
shows whether the LSTM and GRU solve a delay the vanilla RNN cannot.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import torch

from engine import gates

PRELOAD = ("torch", "torch._dynamo", "engine.memory_tasks", "engine.gates")


def bench_traces(steps: int = 500, hidden: int = 128, inputs: int = 9, repeats: int = 30) -> None:
    torch.manual_seed(0)
    xs = np.random.default_rng(0).normal(size=(steps, inputs))
    for name, module, trace in (("LSTM", torch.nn.LSTM(inputs, hidden), gates.lstm_trace),
                                ("GRU", torch.nn.GRU(inputs, hidden), gates.gru_trace)):
        params = gates.from_torch(module)
        for _ in range(3):
            trace(params, xs)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            trace(params, xs)
            times.append(time.perf_counter() - t0)
        print(f"{name} gate trace T={steps} H={hidden}: median {statistics.median(times) * 1000:.1f} ms, "
              f"best {min(times) * 1000:.1f} ms "
              f"(p90 {np.percentile(times, 90) * 1000:.1f} ms)  target <= 20 ms")


def bench_stall(seconds: float) -> None:
    from PySide6.QtWidgets import QApplication

    from gui.tabs.gates_tab import GatesTab
    from tests.bench._common import isolate_settings
    from tests.gui_helpers import StallMeter

    # The run below changes the tab's settings (50 000 steps...): keep them away from the user's own.
    isolate_settings()

    # What the app preloads in the background while its window shows "loading" (the TabSpec's preload):
    # torch's optimisers import torch._dynamo when first built, holding the GIL for a noticeable moment.
    for module in PRELOAD:
        __import__(module)
    app = QApplication.instance() or QApplication([])
    tab = GatesTab()
    tab.resize(1500, 950)
    tab.show()
    tab.views.setCurrentIndex(1)  # the live curves
    tab.steps_spin.setValue(50000)
    meter = StallMeter()
    # The same loop with nothing training: on a shared machine other processes cause stalls too.
    idle = meter.watch(app, min(5.0, seconds))
    records = [0]
    tab.runner.record.connect(lambda _r: records.__setitem__(0, records[0] + 1))
    tab.start_training()
    deadline = time.perf_counter() + 3
    while tab.runner.state != "running" and time.perf_counter() < deadline:
        app.processEvents()
    busy = meter.watch(app, seconds)
    tab.shutdown()
    print(f"idle interface for {min(5.0, seconds):.0f} s (baseline): longest stall {idle.max():.0f} ms, "
          f"p99 {np.percentile(idle, 99):.0f} ms")
    g = busy
    print(f"three models training for {seconds:.0f} s (delay {tab.task.delay}, H={tab.hidden_size}): longest "
          f"event-loop stall {g.max():.0f} ms, p99 {np.percentile(g, 99):.0f} ms, median {np.median(g):.0f} ms "
          f"over {len(g)} ticks of 5 ms; {records[0]} records drawn  target <= 50 ms")


def bench_default_training(seed: int) -> None:
    # As the tab does: one core for training, one left for the interface.
    config = dataclasses.replace(gates.SideBySideConfig(), num_threads=max(1, (os.cpu_count() or 2) - 1),
                                 emit_every_s=5.0, seed=seed)
    result = None
    for record in gates.train_side_by_side(config):
        if isinstance(record, gates.SideBySideResult):
            result = record
    assert result is not None
    scores = ", ".join(f"{gates.MODEL_TITLES[k]} {result.accuracy_of(k) * 100:.1f} %" for k in result.models)
    print(f"default side-by-side run ({config.task.title}, delay {config.task.delay}, H={config.hidden_size}, "
          f"{config.steps} steps, seed {seed}, {config.num_threads} thread): {result.seconds:.0f} s; held-out accuracy "
          f"{scores} (chance {config.task.chance_accuracy * 100:.0f} %)")
    models = result.build_models()
    sequence = config.task.example(0)
    lstm, gru = gates.traces(models, sequence.inputs[0])
    keep = gates.keep_gate_over_delay(lstm, gru)
    flow = gates.gradient_flow(models, sequence)
    print(f"trained cells across the delay: mean LSTM forget gate {keep['lstm']:.3f}, mean GRU update gate "
          f"{keep['gru']:.3f}; ||dL_T/dh_0|| / ||dL_T/dh_T-1||: "
          + ", ".join(f"{k} {flow.of(k)[0] / flow.of(k)[-1]:.1e}" for k in flow.models))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--skip-train", action="store_true", help="leave out the full default training run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[gates.SideBySideConfig().seed],
                        help="train the default configuration once per seed (how much is luck?)")
    args = parser.parse_args()
    bench_traces()
    bench_stall(args.seconds)
    if not args.skip_train:
        for seed in args.seeds:
            bench_default_training(seed)


if __name__ == "__main__":
    main()
