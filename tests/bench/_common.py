"""Shared set-up for the GUI benchmarks."""

from __future__ import annotations

import os
import tempfile


def isolate_settings() -> None:
    """Benchmarks click Train and move knobs: keep their settings and run folders out of the user's own."""
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp(prefix="bench-"))
    os.environ.setdefault("BACKPROP_STUDIO_RUNS", tempfile.mkdtemp(prefix="bench-runs-"))
