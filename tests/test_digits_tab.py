"""The "Draw a digit" tab, driven as a student would drive it."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine import digits
from gui import settings
from gui.tabs.digits_tab import DigitsTab
from tests.gui_helpers import circle, draw_stroke


@pytest.fixture
def tab(open_tab):
    return open_tab(DigitsTab, 1300, 800)


def wait_prediction(qtbot, tab):
    qtbot.wait(40)  # the prediction is coalesced to one per frame (16 ms)


pytestmark = pytest.mark.usefixtures("no_modal_boxes")  # message boxes are recorded, never shown


def test_empty_canvas_asks_for_a_digit(tab):
    assert tab.guess_label.text() == "draw a digit"
    assert tab.prob_plot.values.sum() == 0


@pytest.mark.smoke
def test_strokes_change_the_prediction(qtbot, tab):
    draw_stroke(tab.canvas, [(0.5, 0.12), (0.5, 0.88)])  # a vertical bar
    wait_prediction(qtbot, tab)
    assert tab.guess_label.text() == "1"
    one_probs = tab.last_probs.copy()
    assert one_probs[1] > 0.5
    # The 28x28 network input shows the stroke, white on black, centred.
    assert tab.input_plot.array.max() == pytest.approx(1.0)
    assert tab.input_plot.array[14, 14] > 0.5

    tab.canvas.clear()
    draw_stroke(tab.canvas, circle())  # an ellipse
    wait_prediction(qtbot, tab)
    assert tab.guess_label.text() == "0"
    assert not np.allclose(tab.last_probs, one_probs)
    assert "% sure" in tab.confidence_label.text()


def test_seven_from_two_strokes(qtbot, tab):
    draw_stroke(tab.canvas, [(0.25, 0.15), (0.75, 0.15), (0.42, 0.88)])
    wait_prediction(qtbot, tab)
    assert tab.guess_label.text() == "7"


def test_escape_clears_and_ctrl_z_undoes(qtbot, tab):
    draw_stroke(tab.canvas, [(0.5, 0.12), (0.5, 0.88)])
    draw_stroke(tab.canvas, [(0.3, 0.3), (0.7, 0.3)])
    assert len(tab.canvas.items) == 2
    tab.canvas.setFocus()
    qtbot.keyClick(tab.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(tab.canvas.items) == 1
    qtbot.keyClick(tab.canvas, Qt.Key.Key_Escape)
    wait_prediction(qtbot, tab)
    assert tab.canvas.is_empty()
    assert tab.guess_label.text() == "draw a digit"


def test_brush_size_changes_stroke_width_and_is_remembered(qtbot, tab):
    tab.brush_slider.setValue(6)
    draw_stroke(tab.canvas, [(0.5, 0.2), (0.5, 0.8)])
    thin = (tab.canvas.to_array() < 128).sum()
    tab.canvas.clear()
    tab.brush_slider.setValue(36)
    draw_stroke(tab.canvas, [(0.5, 0.2), (0.5, 0.8)])
    thick = (tab.canvas.to_array() < 128).sum()
    assert thick > 4 * thin
    assert settings.read("digits/brush_size", 0) == 36


def test_feature_maps_and_filters_follow_the_drawing(qtbot, tab):
    blank_maps = tab.maps_plot.array.copy()
    draw_stroke(tab.canvas, circle())
    wait_prediction(qtbot, tab)
    assert tab.maps_plot.array.shape == blank_maps.shape
    assert not np.allclose(np.nan_to_num(tab.maps_plot.array), np.nan_to_num(blank_maps))
    tab.layer_combo.setCurrentText("conv3")
    assert "conv3 (64 x 14 x 14)" in tab.maps_plot.getPlotItem().titleLabel.text
    np.testing.assert_allclose(
        np.nan_to_num(tab.filters_plot.array)[:5, :5], digits.first_layer_filters(tab.model)[0], atol=1e-6)


def test_open_image_of_a_digit_from_elsewhere(qtbot, tab, tmp_path, mnist):
    # A scan: large, dark ink on light paper, RGB; it goes through the same preprocessing.
    idx = int(np.nonzero(mnist.test.labels == 3)[0][0])
    scan = 255 - np.asarray(Image.fromarray(mnist.test.images[idx]).resize((400, 400), Image.Resampling.BILINEAR))
    path = tmp_path / "three.jpg"
    Image.fromarray(np.stack([scan] * 3, -1)).save(path, quality=92)
    assert tab.open_image(path)
    wait_prediction(qtbot, tab)
    assert tab.guess_label.text() == "3"
    assert "three.jpg" in tab.message_label.text()

    # Light on dark, not square: the letterbox takes the paper's colour, so polarity still works.
    idx = int(np.nonzero(mnist.test.labels == 4)[0][0])
    wide = np.zeros((300, 600), np.uint8)
    wide[10:290, 160:440] = np.asarray(Image.fromarray(mnist.test.images[idx]).resize((280, 280)))
    Image.fromarray(wide).save(tmp_path / "four.png")
    assert tab.open_image(tmp_path / "four.png")
    wait_prediction(qtbot, tab)
    assert tab.guess_label.text() == "4"


def test_bad_image_gives_a_message_and_keeps_running(qtbot, tab, tmp_path, no_modal_boxes):
    bad = tmp_path / "photo.png"
    bad.write_text("not really a png")
    draw_stroke(tab.canvas, [(0.5, 0.12), (0.5, 0.88)])
    assert not tab.open_image(bad)
    assert "not an image" in tab.message_label.text()
    assert no_modal_boxes and no_modal_boxes[-1][0] == "warning"
    assert len(tab.canvas.items) == 1  # the drawing is kept


def test_open_button_uses_a_file_dialog(qtbot, tab, tmp_path, monkeypatch, mnist):
    path = tmp_path / "d.png"
    Image.fromarray(mnist.test.images[0]).save(path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    qtbot.mouseClick(tab.open_button, Qt.MouseButton.LeftButton)
    wait_prediction(qtbot, tab)
    assert tab.guess_label.text() == str(mnist.test.labels[0])
    assert settings.read("folders/open", "") == str(tmp_path)


@pytest.mark.smoke
def test_exports(qtbot, tab, tmp_path):
    draw_stroke(tab.canvas, [(0.5, 0.12), (0.5, 0.88)])
    wait_prediction(qtbot, tab)
    tab.prob_plot.export_to(tmp_path / "probs.csv")
    rows = list(csv.reader(open(tmp_path / "probs.csv")))
    assert rows[0] == ["label", "probability"] and len(rows) == 11
    assert abs(sum(float(r[1]) for r in rows[1:]) - 1) < 1e-4
    tab.input_plot.export_to(tmp_path / "input.csv")
    rows = list(csv.reader(open(tmp_path / "input.csv")))
    assert rows[0] == ["row", "col", "value"] and len(rows) == 1 + 28 * 28
    tab.maps_plot.export_to(tmp_path / "maps.csv")
    rows = list(csv.reader(open(tmp_path / "maps.csv")))
    assert rows[0] == ["map", "row", "col", "value"] and len(rows) == 1 + 32 * 28 * 28
    for view in (tab.prob_plot, tab.input_plot, tab.maps_plot, tab.filters_plot):
        png, svg = view.export_to(tmp_path / "v.png"), view.export_to(tmp_path / "v.svg")
        assert Image.open(png).size[0] >= 800
        assert "<svg" in svg.read_text()[:2000]
    with pytest.raises(ValueError, match="choose .png, .svg or .csv"):
        tab.prob_plot.export_to(tmp_path / "v.gif")


def _use_small_training(tab, mnist_dir, samples=512, epochs=1):
    tab.data_edit.setText(str(mnist_dir))
    tab.samples_spin.setValue(samples)
    tab.epochs_spin.setValue(epochs)


def test_retrain_switches_weights_and_revert(qtbot, tab, mnist_dir):
    _use_small_training(tab, mnist_dir)
    shipped = digits.first_layer_filters(tab.model)
    qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    assert not tab.train_button.isEnabled() and tab.stop_button.isEnabled()
    blocker = qtbot.waitSignal(tab.train_runner.finished, timeout=120000)
    blocker.wait()
    assert blocker.args == [True]
    assert "Using your retrained weights" in tab.weights_label.text()
    assert not np.allclose(digits.first_layer_filters(tab.model), shipped)
    assert tab.revert_button.isEnabled()
    tab._redraw_curves()
    x, y = tab.loss_plot.getPlotItem().listDataItems()[0].getData()
    assert len(x) >= 1 and np.isfinite(y).all()
    qtbot.mouseClick(tab.revert_button, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(digits.first_layer_filters(tab.model), shipped)
    assert "shipped" in tab.weights_label.text()


def test_pause_and_stop_training(qtbot, tab, mnist_dir):
    _use_small_training(tab, mnist_dir, samples=10000, epochs=5)
    tab.start_training()
    qtbot.waitUntil(lambda: tab.train_runner.state == "running", timeout=5000)
    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.pause_button.text() == "Resume", timeout=10000)
    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.pause_button.text() == "Pause", timeout=10000)
    with qtbot.waitSignal(tab.train_runner.finished, timeout=20000) as blocker:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [False]
    assert "shipped" in tab.weights_label.text()  # a stopped run does not replace the weights
    assert tab.train_button.isEnabled()


def test_diverging_training_is_explained(qtbot, tab, mnist_dir, no_modal_boxes):
    _use_small_training(tab, mnist_dir, samples=2048)
    tab.lr_spin.setValue(1.0)
    tab.lr_spin.setMaximum(1e6)
    tab.lr_spin.setValue(1e6)
    with qtbot.waitSignal(tab.train_runner.finished, timeout=60000):
        tab.start_training()
    assert "lower the learning rate" in tab.train_status.text()
    assert no_modal_boxes[-1][0] == "warning"
    assert "shipped" in tab.weights_label.text()


def test_missing_mnist_offers_download_and_explains_when_declined(qtbot, tab, tmp_path, monkeypatch):
    tab.data_edit.setText(str(tmp_path / "nowhere"))
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No))
    tab.start_training()
    assert asked and "Download MNIST now" in asked[0]
    assert "MNIST was not found" in tab.train_status.text()
    assert not tab.train_runner.is_busy()


def test_download_failure_offline_is_explained(qtbot, tab, tmp_path, monkeypatch, no_modal_boxes):
    from engine import datasets

    offline = datasets.MNIST.__class__(**{**datasets.MNIST.__dict__,
                                          "mirrors": ((tmp_path / "offline").as_uri() + "/",)})
    monkeypatch.setitem(datasets.SPECS, "mnist", offline)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    tab.data_edit.setText("")
    with qtbot.waitSignal(tab.download_runner.finished, timeout=10000):
        tab.start_training()
    assert "are you online" in tab.train_status.text()
    assert tab.train_button.isEnabled()


def test_canvas_array_is_what_prediction_uses(tab):
    arr = tab.canvas.to_array()
    assert arr.shape == (280, 280) and arr.dtype == np.uint8 and (arr == 255).all()
