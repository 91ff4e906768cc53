"""Start-up: time until the main window is first painted, beside `python -c "import torch"`.

Runs both alternately (this machine is noisy) and prints medians and their ratio.
Target (issue 2): window visible in <= 0.5x the torch import time.

    python -m tests.bench.bench_startup [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def time_until(cmd: list[str], marker: str | None, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
    if marker is None:
        proc.wait()
        return time.perf_counter() - start
    for line in proc.stdout:
        if line.strip() == marker:
            elapsed = time.perf_counter() - start
            proc.wait(timeout=30)
            return elapsed
    raise RuntimeError("the app exited without painting its window")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "BACKPROP_STUDIO_STARTUP_PROBE": "1"}
    torch_times, window_times = [], []
    time_until([sys.executable, "-c", "import torch"], None, env)  # warm the disk cache for both
    time_until([sys.executable, "-m", "gui"], "WINDOW_VISIBLE", env)
    for _ in range(args.runs):
        torch_times.append(time_until([sys.executable, "-c", "import torch"], None, env))
        window_times.append(time_until([sys.executable, "-m", "gui"], "WINDOW_VISIBLE", env))
    t, w = statistics.median(torch_times), statistics.median(window_times)
    print(f"python -c 'import torch'   median {t * 1000:7.0f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in torch_times)})")
    print(f"window first painted        median {w * 1000:7.0f} ms  (runs: {', '.join(f'{x * 1000:.0f}' for x in window_times)})")
    print(f"ratio window / torch import: {w / t:.2f}  (target <= 0.50)")


if __name__ == "__main__":
    main()
