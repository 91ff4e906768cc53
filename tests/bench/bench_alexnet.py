"""AlexNet trainer speed: the live training loop against a bare PyTorch loop, side by side.

    python -m tests.bench.bench_alexnet [--device auto|cpu|cuda] [--quick] [--gui]

Targets (issue 6):
- the trainer's loop (engine.alexnet_train.train, with its live records, gradient norms and
  snapshots on) reaches >= 0.95x the images/s of a bare loop with the same model, batch,
  device and dtype;
- on CUDA, mixed precision (bf16/fp16 autocast) + channels-last reaches >= 1.5x the bare
  fp32 loop (the full 227 x 227 AlexNet, batch 256, random data);
- ``--gui`` (CPU): the tab's longest event-loop stall <= 50 ms while it trains, and training
  inside the tab >= 0.95x the engine alone.

Both loops read the same uint8 images held on the device and shuffle them the same way;
throughput is measured after warm-up steps, over the same number of steps. The runs alternate
(bare, trainer, bare, trainer) and the best of each is reported, so a busy machine penalises both alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from engine import alexnet_train as at
from engine.alexnet import AlexNet, AlexNetConfig
from engine.image_data import DataConfig


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    model: AlexNetConfig
    batch: int
    precision: str  # fp32, bf16, fp16
    channels_last: bool
    warmup: int
    steps: int


def bare_loop(case: Case, device: torch.device, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The shortest correct PyTorch training loop; images/s over ``case.steps`` after warm-up."""
    torch.manual_seed(0)
    model = AlexNet(case.model).to(device)
    if case.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = at._make_optimizer(model, at.TrainConfig())
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[case.precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    n = len(labels)
    order = torch.randperm(n, device=images.device)
    model.train()

    def step(i: int) -> None:
        idx = order[(i * case.batch) % (n - case.batch + 1):][: case.batch]
        x = at.prepare_batch(images[idx].to(device), case.model, case.channels_last)
        y = labels[idx].to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for i in range(case.warmup):
        step(i)
    _sync(device)
    start = time.perf_counter()
    for i in range(case.steps):
        step(case.warmup + i)
    _sync(device)
    return case.steps * case.batch / (time.perf_counter() - start)


def trainer_loop(case: Case, device_name: str, data: DataConfig) -> tuple[float, int]:
    """images/s of engine.alexnet_train.train measured from its own records; also the records/s sent."""
    config = at.TrainConfig(model=case.model, data=data, batch_size=case.batch, epochs=1000, device=device_name,
                            precision=case.precision, channels_last=case.channels_last,
                            max_steps=case.warmup + case.steps, snapshot_val_images=256)
    first = last = None
    records = 0
    for record in at.train(config):
        if isinstance(record, at.TrainProgress):
            records += 1
            now = time.perf_counter()
            if first is None and record.step >= case.warmup:
                first = (record.step, now)
            elif first is not None:
                last = (record.step, now)
    if first is None or last is None or last[0] == first[0]:
        raise RuntimeError("too few records to measure; raise --steps")
    elapsed = last[1] - first[1]
    return (last[0] - first[0]) * case.batch / elapsed, records


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare(case: Case, device: torch.device, rounds: int) -> tuple[float, float]:
    size = case.model.input_size
    # Epochs as long as the tab's default (10,000 images, ~150 batches of 64), so the per-epoch
    # validation costs the trainer what it costs in real use, not four times as much.
    n = case.batch * max(8, min(150, (case.warmup + case.steps) // 2))
    data = DataConfig(source="synthetic", image_size=size, train_size=n, val_size=min(256, case.batch), seed=0)
    from engine import image_data

    loaded = image_data.load(data)
    images = torch.from_numpy(loaded.train.images).to(device)
    labels = torch.from_numpy(loaded.train.labels).to(device)
    bare, trainer = [], []
    for _ in range(rounds):
        bare.append(bare_loop(case, device, images, labels))
        trainer.append(trainer_loop(case, device.type, data)[0])
    del images, labels
    return max(bare), max(trainer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="fewer steps and one round (a smoke test)")
    parser.add_argument("--gui", action="store_true", help="also measure the tab (CPU): stalls and slowdown")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each --gui measurement")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating bare/trainer rounds, best of each reported (default 2 on CUDA, 3 on CPU)")
    args = parser.parse_args(argv)
    device, label, note = at.resolve_train_device(args.device)
    print(f"device: {label}{' (' + note + ')' if note else ''}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads", flush=True)
    rounds = 1 if args.quick else (args.rounds or (2 if device.type == "cuda" else 3))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the trainer turns it on; the bare loop gets it too
        full = AlexNetConfig(input_size=227, num_classes=10)
        warm, steps = (10, 60) if args.quick else (20, 300)
        mixed = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        cases = [Case("full AlexNet 227px, batch 256, fp32", full, 256, "fp32", False, warm, steps),
                 Case(f"full AlexNet 227px, batch 256, {mixed} + channels-last", full, 256, mixed, True, warm, steps)]
    else:
        small = at.SMALL_MODEL
        warm, steps = (5, 30) if args.quick else (10, 300)  # ~5 s a loop: long enough to outlast noise
        cases = [Case(f"{small.describe()}, batch 64, fp32", small, 64, "fp32", False, warm, steps)]
    results = {}
    for case in cases:
        start = time.perf_counter()
        bare, trainer = compare(case, device, rounds)
        results[case.name] = (bare, trainer)
        print(f"{case.name}: bare loop {bare:,.0f} images/s, trainer {trainer:,.0f} images/s, "
              f"ratio {trainer / bare:.3f} (target >= 0.95)  [{time.perf_counter() - start:.0f} s]", flush=True)
    if device.type == "cuda":
        fp32_bare = results[cases[0].name][0]
        mixed_trainer = results[cases[1].name][1]
        print(f"mixed precision + channels-last trainer vs bare fp32 loop: {mixed_trainer / fp32_bare:.2f}x "
              f"(target >= 1.5x)", flush=True)
    if args.gui:
        bench_gui(args.seconds)
    return 0


def bench_gui(seconds: float, rounds: int = 2, page: int = 0) -> None:
    """The tab trains its default model: event-loop stalls, and images/s against the engine alone.

    Engine-alone and in-tab runs alternate (``rounds`` each) so that other load on the machine
    falls on both; the first 3 s of each (data generation, first paints) are not measured.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from gui.tabs.alexnet_tab import AlexNetTab
    from tests.bench._common import isolate_settings
    from tests.gui_helpers import StallMeter

    app = QApplication.instance() or QApplication([])
    isolate_settings()
    settle = 3.0

    def rate(points: list[tuple[int, float]], batch: int) -> float:
        points = [p for p in points if p[1] >= points[0][1] + settle]
        return (points[-1][0] - points[0][0]) * batch / (points[-1][1] - points[0][1])

    alone_rates, tab_rates, stalls = [], [], []
    for _ in range(rounds):
        tab = AlexNetTab()
        tab.resize(1500, 950)
        tab.show()
        tab.epochs_spin.setValue(1000)
        tab.pages.setCurrentIndex(page)
        config = dataclasses.replace(tab.train_config(), out_dir=None)
        points = []
        start = time.perf_counter()
        for record in at.train(config):
            if isinstance(record, at.TrainProgress) and record.val_accuracy is None:
                points.append((record.step, time.perf_counter()))
                if time.perf_counter() - start > seconds:
                    break
        alone_rates.append(rate(points, config.batch_size))

        points = []
        tab.runner.record.connect(lambda r: points.append((r.step, time.perf_counter()))
                                  if isinstance(r, at.TrainProgress) and r.val_accuracy is None else None)
        tab.start_training()
        meter = StallMeter()
        meter.watch(app, seconds)
        tab.shutdown()
        tab.deleteLater()
        tab_rates.append(rate(points, config.batch_size))
        stalls += list(meter.gaps(after_ms=settle * 1000))
    g = np.array(stalls)
    alone, in_tab = max(alone_rates), max(tab_rates)
    print(f"tab training on CPU ({rounds} x {seconds:.0f} s, page '{tab.pages.tabText(page)}' shown): longest event-loop stall "
          f"{g.max():.0f} ms (p99 {np.percentile(g, 99):.0f} ms, median {np.median(g):.0f} ms; target <= 50 ms); "
          f"{in_tab:,.0f} images/s in the tab vs {alone:,.0f} for the engine alone: ratio {in_tab / alone:.3f} "
          f"(target >= 0.95); per round: tab {[round(r) for r in tab_rates]}, alone {[round(r) for r in alone_rates]}",
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
