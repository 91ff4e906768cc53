"""Train / Pause / Stop buttons for a background task, and how they follow its state."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton


def make_run_buttons(train_tip: str, stop_tip: str) -> tuple[QPushButton, QPushButton, QPushButton]:
    """(train, pause, stop); pause and stop start disabled until a task runs."""
    train = QPushButton("Train")
    train.setToolTip(train_tip)
    pause = QPushButton("Pause")
    pause.setToolTip("Pause the task; press again to resume")
    pause.setEnabled(False)
    stop = QPushButton("Stop")
    stop.setToolTip(stop_tip)
    stop.setEnabled(False)
    return train, pause, stop


def follow_runner_state(state: str, train: QPushButton, pause: QPushButton, stop: QPushButton) -> None:
    """Enable the buttons that make sense for a TaskRunner state ("running", "paused", "stopping", "idle")."""
    active = state in ("running", "paused")
    train.setEnabled(state == "idle")
    pause.setEnabled(active)
    pause.setText("Resume" if state == "paused" else "Pause")
    stop.setEnabled(active)
