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
