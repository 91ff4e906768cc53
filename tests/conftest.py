"""Test set-up: Qt offscreen, settings and app data in temporary folders, MNIST from shared/."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Every test gets fresh QSettings and an empty app data folder, never the user's."""
    settings_dir = tmp_path_factory.mktemp("settings")
    data_dir = tmp_path_factory.mktemp("appdata")
    monkeypatch.setenv("BACKPROP_STUDIO_DATA", str(data_dir))
    try:
        from PySide6.QtCore import QSettings
    except ImportError:  # engine-only environments
        yield
        return
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(settings_dir))
    yield


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST files in ../shared/data/mnist (present here and in CI)."""
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from engine import datasets

    return datasets.load("mnist", mnist_dir)


@pytest.fixture
def no_modal_boxes(monkeypatch):
    """Record message boxes as (kind, arguments) instead of blocking on them."""
    from PySide6.QtWidgets import QMessageBox

    shown = []
    for name in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(lambda *a, _n=name, **k: shown.append((_n, a[1:]))))
    return shown


@pytest.fixture
def open_tab(qtbot):
    """open_tab(TabClass, width, height): the tab shown with its first results drawn; shut down afterwards."""
    opened = []

    def _open(tab_class, width: int = 1500, height: int = 950):
        widget = tab_class()
        qtbot.addWidget(widget)
        widget.resize(width, height)
        widget.show()
        qtbot.waitUntil(widget.is_ready, timeout=5000)
        opened.append(widget)
        return widget

    yield _open
    for widget in opened:
        widget.shutdown()
