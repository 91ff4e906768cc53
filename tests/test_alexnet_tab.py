"""The AlexNet tab, driven as a student would: a tiny configuration trained for a few dozen steps."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from engine import alexnet_train as at
from engine import shapes
from engine.alexnet import AlexNet, AlexNetConfig
from engine.image_data import DataConfig
from gui.tabs.alexnet_tab import AlexNetTab
from gui.widgets.plots import exportable_views


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKPROP_STUDIO_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


pytestmark = pytest.mark.usefixtures("no_modal_boxes")  # message boxes are recorded, never shown


@pytest.fixture
def tab(open_tab):
    return open_tab(AlexNetTab, 1400, 900)


def use_tiny_config(tab, train_images=256, epochs=2, batch=32):
    """28 x 28 shapes, widths / 16: a few dozen steps take seconds on a CPU."""
    tab.source_combo.setCurrentIndex(tab.source_combo.findData("shapes"))
    tab.input_combo.setCurrentIndex(tab.input_combo.findData(28))
    tab.divider_combo.setCurrentIndex(tab.divider_combo.findData(16))
    tab.train_size_spin.setValue(train_images)
    tab.epochs_spin.setValue(epochs)
    tab.batch_spin.setValue(batch)
    tab.device_combo.setCurrentIndex(tab.device_combo.findData("cpu"))


def train_and_wait(qtbot, tab, timeout=120000) -> list:
    with qtbot.waitSignal(tab.runner.finished, timeout=timeout) as blocker:
        qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    return blocker.args


def curve_names(plot) -> list[str]:
    return [item.name() for item in plot.getPlotItem().listDataItems() if item.getData()[0] is not None
            and len(item.getData()[0])]


@pytest.mark.smoke
def test_table_shows_the_lecture_total_and_follows_the_controls(qtbot, tab):
    qtbot.mouseClick(tab.lecture_button, Qt.MouseButton.LeftButton)
    assert tab.table_total() == "62,378,344"
    assert "62,378,344" in tab.total_label.text()
    names = [tab.table.item(r, 0).text() for r in range(tab.table.rowCount())]
    assert names[:4] == ["Input Image", "Conv-1", "MaxPool-1", "Conv-2"] and names[-1] == "Total"
    assert tab.table.item(1, 1).text() == "55 × 55 × 96" and tab.table.item(1, 2).text() == "34,848"
    assert "(227 − 11 + 2·0) / 4 + 1 = 55" in tab.table.item(1, 5).text()
    tab.divider_combo.setCurrentIndex(tab.divider_combo.findData(8))
    tab.bn_check.setChecked(True)
    expected = sum(p.numel() for p in AlexNet(AlexNetConfig(input_size=227, width_divider=8, batch_norm=True,
                                                            num_classes=1000)).parameters())
    assert tab.table_total() == f"{expected:,}"
    assert any(tab.table.item(r, 0).text() == "BatchNorm-1" for r in range(tab.table.rowCount()))
    assert "parameters" in tab.model_label.text()


def test_train_a_tiny_alexnet_and_every_view_updates(qtbot, tab, tmp_path):
    use_tiny_config(tab)
    assert train_and_wait(qtbot, tab) == [True]
    run_dir = tab.run_dir
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "history.csv").is_file()
    assert tab.model is not None and tab.class_names[0] == "circle"
    # Curves: training and validation loss and accuracy, gradient norms per layer, speed.
    tab.pages.setCurrentIndex(0)
    tab._redraw(force=True)
    assert any("(train)" in n for n in curve_names(tab.loss_plot))
    assert any("(validation)" in n for n in curve_names(tab.acc_plot))
    assert set(curve_names(tab.grad_plot)) == {"conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3"}
    assert "images/s on cpu" in tab.speed_label.text() and "ETA" in tab.speed_label.text()
    # Filters: conv1 has 96 / 16 = 6 filters of 5 x 5 x 3.
    tab.pages.setCurrentIndex(1)
    assert tab.filters_plot.rgb is not None and "6 filters (5 × 5 × 3)" in \
        tab.filters_plot.getPlotItem().titleLabel.text
    tab.layer_combo.setCurrentText("conv3")
    tab._redraw()
    assert "conv3 (6 × 6 × 24)" in tab.maps_plot.getPlotItem().titleLabel.text
    before = tab.maps_plot.array.copy()
    tab.image_spin.setValue(3)
    tab._redraw()
    assert not np.array_equal(np.nan_to_num(before), np.nan_to_num(tab.maps_plot.array))
    # Predictions: the confusion matrix covers the 1000 validation images; the grid shows 24.
    tab.pages.setCurrentIndex(2)
    tab._redraw(force=True)
    assert tab.confusion_plot.matrix.shape == (10, 10) and tab.confusion_plot.matrix.sum() == 1000
    assert tab.preview_plot.rgb.shape[2] == 3
    header, rows = tab.preview_plot.csv_table()
    assert header[:2] == ["image", "true class"] and len(rows) == 24
    # Exports: the plots, the history and the checkpoint.
    for view in exportable_views(tab):
        assert view.export_to(tmp_path / "v.png").stat().st_size > 0
        view.export_to(tmp_path / "v.csv")
    history = tab.export_history(tmp_path / "h.csv")
    header = next(csv.reader(open(history)))
    assert header[:4] == ["step", "epoch", "train_loss", "train_accuracy"] and "grad_norm_conv1" in header
    assert tab.export_history(tmp_path / "h.json").read_text().startswith("{")
    tab.save_checkpoint_to(tmp_path / "copy.pt")
    assert at.load_checkpoint(tmp_path / "copy.pt").completed


def test_pause_resume_and_stop_mid_epoch_keep_an_intact_checkpoint(qtbot, tab):
    use_tiny_config(tab, train_images=3000, epochs=20)
    qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.latest is not None and tab.latest.step >= 3, timeout=60000)
    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.pause_button.text() == "Resume", timeout=10000)
    qtbot.waitUntil(lambda: "paused" in tab.status_label.text(), timeout=2000)
    paused_at = tab.latest.step
    qtbot.wait(300)
    assert tab.latest.step <= paused_at + 1  # nothing moves while paused
    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.latest.step >= paused_at + 3, timeout=20000)
    with qtbot.waitSignal(tab.runner.finished, timeout=30000):
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert not tab.last_finished.completed
    ckpt = at.load_checkpoint(tab.run_dir / "checkpoint.pt")
    assert not ckpt.completed and ckpt.epoch == 0 and 0 < ckpt.batches_done < 3000 // 32
    assert ckpt.step >= paused_at + 3
    assert "Stopped at step" in tab.status_label.text()
    assert tab.model is not None and tab.train_button.isEnabled()


def test_two_runs_side_by_side_batchnorm_against_plain(qtbot, tab):
    use_tiny_config(tab, epochs=1)
    assert train_and_wait(qtbot, tab) == [True]
    tab.bn_check.setChecked(True)
    assert train_and_wait(qtbot, tab) == [True]
    tab.pages.setCurrentIndex(0)
    tab._redraw(force=True)
    names = curve_names(tab.loss_plot)
    assert any(n.startswith("run 1") and "BN" not in n for n in names)
    assert any(n.startswith("run 2") and "BN" in n for n in names)
    colours = {item.opts["pen"].color().name() for item in tab.loss_plot.getPlotItem().listDataItems()}
    assert len(colours) == 2
    qtbot.mouseClick(tab.clear_runs_button, Qt.MouseButton.LeftButton)
    tab._redraw(force=True)
    assert curve_names(tab.loss_plot) == []


def test_classify_a_loaded_image_top5(qtbot, tab, tmp_path, no_modal_boxes):
    picture = shapes.make_shapes(10, 96, seed=9).images[0].transpose(1, 2, 0)
    Image.fromarray(picture).save(tmp_path / "mine.png")
    assert tab.open_image(tmp_path / "mine.png")
    assert "Train or load a network" in tab.classify_label.text()
    use_tiny_config(tab, epochs=1)
    assert train_and_wait(qtbot, tab) == [True]
    lines = tab.classify_label.text().splitlines()
    assert "mine.png" in lines[0] and [line[:2] for line in lines[1:]] == ["1.", "2.", "3.", "4.", "5."]
    top = tab.top5()
    assert len(top) == 5 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert all(name in shapes.CLASS_NAMES for name, _ in top)
    (tmp_path / "bad.png").write_text("not an image")
    assert not tab.open_image(tmp_path / "bad.png")
    assert "not an image" in tab.classify_label.text() and no_modal_boxes[-1][0] == "warning"


def test_load_checkpoint_adopts_its_settings_and_refuses_others(qtbot, tab, tmp_path, monkeypatch,
                                                                 no_modal_boxes):
    config = at.TrainConfig(model=AlexNetConfig(input_size=28, num_classes=10, width_divider=16, batch_norm=True),
                            data=DataConfig(image_size=28, train_size=64, val_size=16), batch_size=16, epochs=1,
                            device="cpu", out_dir=str(tmp_path / "cli"))
    list(at.train(config))
    path = tmp_path / "cli" / "checkpoint.pt"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    qtbot.mouseClick(tab.load_button, Qt.MouseButton.LeftButton)
    assert tab.input_combo.currentData() == 28 and tab.divider_combo.currentData() == 16
    assert tab.bn_check.isChecked() and tab.model is not None
    assert tab.resume_check.isEnabled() and tab.runs[-1].val_acc
    assert "Loaded checkpoint.pt" in tab.status_label.text()
    other = tmp_path / "other.pt"
    import torch

    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}}, other)
    assert not tab.load_checkpoint(other)
    assert "not an AlexNet checkpoint" in tab.status_label.text() and no_modal_boxes[-1][0] == "warning"
    # Resuming with a changed architecture is refused with a clear message.
    tab.resume_check.setChecked(True)
    tab.bn_check.setChecked(False)
    tab.load_checkpoint(path)
    tab.resume_check.setChecked(True)
    tab.input_combo.setCurrentIndex(tab.input_combo.findData(32))
    tab.device_combo.setCurrentIndex(tab.device_combo.findData("cpu"))
    assert train_and_wait(qtbot, tab) == [False]
    assert "another architecture" in tab.status_label.text()


def test_diverging_training_is_explained(qtbot, tab, no_modal_boxes):
    use_tiny_config(tab, epochs=30)
    tab.optimizer_combo.setCurrentIndex(tab.optimizer_combo.findData("sgd"))
    tab.lr_spin.setValue(10.0)
    tab.schedule_combo.setCurrentIndex(tab.schedule_combo.findData("constant"))
    assert train_and_wait(qtbot, tab) == [False]
    assert "Lower the learning rate" in tab.status_label.text()
    assert no_modal_boxes[-1][0] == "warning"
