"""The shell: command line, loading state, menus, settings, export, drag and drop, closing mid-training."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from gui import settings
from gui.app import parse_args
from gui.main_window import LoadingPage, MainWindow
from gui.tabs import TAB_KEYS
from gui.tabs.digits_tab import DigitsTab
from tests.gui_helpers import draw_stroke

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def window(qtbot):
    win = MainWindow(device="cpu")
    qtbot.addWidget(win)
    win.show()
    assert isinstance(win.tab("digits"), LoadingPage)  # visible before torch-backed parts exist
    with qtbot.waitSignal(win.tabs_loaded, timeout=60000):
        win.start_loading()
    yield win
    win.close()


@pytest.mark.smoke
def test_tabs_are_built_after_loading(window):
    assert window.windowTitle() == "Backprop Studio"
    assert isinstance(window.tab("digits"), DigitsTab)
    assert window.tab_widget.count() == len(TAB_KEYS)
    assert window.device_label.text() == "Device: CPU"
    assert window.open_action.isEnabled() and window.export_action.isEnabled()


def test_menus(window):
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "View", "Help"]
    file_menu = window.menuBar().actions()[0].menu()
    names = [a.text().replace("&", "") for a in file_menu.actions() if a.text()]
    assert names == ["Open image...", "Export...", "Quit"]


def test_help_topics_and_about(window, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "information", staticmethod(lambda *a, **k: shown.append(a[2])))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda *a, **k: shown.append(a[2])))
    window.show_topics()
    window.show_about()
    assert "feature map" in shown[0] and "softmax" in shown[0]
    assert "PyTorch 2." in shown[1] and "Device: CPU" in shown[1]


def test_file_export_lists_the_tabs_views(window, monkeypatch, tmp_path):
    offered = []

    def pick(parent, title, label, items, *a, **k):
        offered.extend(items)
        return "Class probabilities", True

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(pick))
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "probs.svg"), "")))
    window.export_action.trigger()
    assert {"Class probabilities", "Network input (28 x 28)", "Training loss"} <= set(offered)
    assert (tmp_path / "probs.svg").read_text().lstrip().startswith("<?xml")
    assert settings.read("folders/export", "") == str(tmp_path)


def test_open_image_menu_and_drop(window, monkeypatch, tmp_path, mnist):
    path = tmp_path / "digit.png"
    Image.fromarray(mnist.test.images[1]).save(path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    window.open_action.trigger()
    tab = window.tab("digits")
    assert isinstance(tab.canvas.items[0], type(tab.canvas.items[0]))
    tab.update_prediction()
    assert tab.guess_label.text() == str(mnist.test.labels[1])

    tab.canvas.clear()
    Image.fromarray(mnist.test.images[2]).save(tmp_path / "dropped.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.png"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    tab.update_prediction()
    assert tab.guess_label.text() == str(mnist.test.labels[2])


def test_settings_persist_geometry_and_last_tab(qtbot, window):
    window.resize(window.width(), 641)  # the offscreen screen is 800 x 800: only the height fits freely
    window.close()
    assert settings.read("window/last_tab", "") == "digits"
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.height() == 641
    assert again.current_key() == "digits"


def test_close_mid_training_stops_and_joins_the_worker(qtbot, mnist_dir):
    win = MainWindow(device="cpu")
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.tabs_loaded, timeout=60000):
        win.start_loading()
    tab = win.tab("digits")
    tab.data_edit.setText(str(mnist_dir))
    tab.epochs_spin.setValue(20)
    tab.start_training()
    qtbot.waitUntil(lambda: tab.train_runner.state == "running", timeout=10000)
    qtbot.wait(300)
    worker = tab.train_runner._worker
    win.close()  # must not hang, crash or leave the thread running
    assert worker.done.is_set()


def test_drawing_in_the_full_window_predicts(qtbot, window):
    tab = window.tab("digits")
    draw_stroke(tab.canvas, [(0.5, 0.12), (0.5, 0.88)])
    qtbot.wait(40)
    assert tab.guess_label.text() == "1"


def test_parse_args():
    args = parse_args(["--tab", "digits", "--device", "cpu"])
    assert args.tab == "digits" and args.device == "cpu"


def _run_cli(*args, timeout=180):
    import tempfile

    # A child process does not see the test's QSettings.setPath: give it its own config folder.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": tempfile.mkdtemp(prefix="cfg-")}
    return subprocess.run([sys.executable, "-m", "gui", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


def test_unknown_tab_lists_the_valid_ones():
    proc = _run_cli("--tab", "nonsense")
    assert proc.returncode == 2
    assert "valid tabs: " + ", ".join(TAB_KEYS) in proc.stderr


@pytest.mark.smoke
def test_version():
    proc = _run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("Backprop Studio 0.")


def test_screenshot_saves_a_png_and_exits(tmp_path):
    out = tmp_path / "shot.png"
    proc = _run_cli("--tab", "digits", "--screenshot", str(out), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = np.asarray(Image.open(out).convert("L"))
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert image.std() > 10  # a real picture, not a blank window


def test_headless_train_command(tmp_path):
    proc = _run_cli("train")
    assert proc.returncode == 2 and "usage: backprop-studio train" in proc.stderr
    proc = _run_cli("train", "digits", "--data", str(tmp_path))
    assert proc.returncode == 2 and "MNIST was not found" in proc.stderr
