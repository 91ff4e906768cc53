"""Shared set-up for the GUI benchmarks."""

from __future__ import annotations

import tempfile


def isolate_settings() -> None:
    """Benchmarks click Train and move knobs: keep that out of the user's own settings."""
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp(prefix="bench-"))
