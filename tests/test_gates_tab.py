"""The LSTM / GRU gate tab, driven as a student would drive it."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine import gates
from engine.memory_tasks import MemoryTask
from gui import settings
from gui.tabs.gates_tab import GatesTab


pytestmark = pytest.mark.usefixtures("no_modal_boxes")  # message boxes are recorded, never shown


@pytest.fixture
def tab(open_tab):
    return open_tab(GatesTab, 1500, 950)


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def all_maps(tab):
    return [*tab.lstm_maps.values(), *tab.gru_maps.values()]


def click_map(qtbot, plot, step: int, unit: int) -> None:
    """A left click on the cell (step, unit) of a heatmap, through the widget's viewport."""
    view_pos = plot.mapFromScene(plot.scene_position(step, unit))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=view_pos)


def small_task(tab, kind="first_symbol", delay=4, hidden=12):
    tab.task_combo.setCurrentIndex(tab.task_combo.findData(kind))
    tab.delay_spin.setValue(delay)
    tab.hidden_spin.setValue(hidden)


@pytest.mark.smoke
def test_opens_on_untrained_cells_with_every_view_filled(tab):
    length, hidden = tab.task.delay + 2, tab.hidden_size
    for plot in all_maps(tab):
        assert plot.values.shape == (length, hidden)
        assert plot.labels == tab.example.step_labels[0]
    np.testing.assert_allclose(tab.lstm_maps["f"].values, tab.lstm_trace.f)
    np.testing.assert_allclose(tab.gru_maps["z"].values, tab.gru_trace.z)
    assert "untrained" in tab.summary_label.text()
    # The gradient-flow plot: three curves, one point per step, the RNN's vanishing fastest.
    curves = tab.flow_plot.getPlotItem().listDataItems()
    assert len(curves) == 3 and {c.name() for c in curves} == {"vanilla RNN", "GRU", "LSTM"}
    assert all(len(c.getData()[0]) == length for c in curves)
    assert tab.flow.of("rnn")[0] / tab.flow.of("rnn")[-1] < tab.flow.of("lstm")[0] / tab.flow.of("lstm")[-1]
    assert tab.flow_plot.getPlotItem().ctrl.logYCheck.isChecked()
    counts = gates.parameter_counts(tab.task.input_size, hidden, tab.task.output_size)
    np.testing.assert_array_equal(tab.count_plot.values, [c.total for c in counts])
    assert "4·H·(I + H + 2)" in tab.count_label.text() and "3·H·(I + H + 2)" in tab.count_label.text()
    assert tab.diagram.kind == "lstm" and tab.diagram.step == 0


@pytest.mark.smoke
def test_clicking_a_step_moves_every_cursor_and_redraws_the_diagram(qtbot, tab):
    click_map(qtbot, tab.lstm_maps["f"], 10, 5)
    assert tab.step == 10 and tab.unit == 5
    assert all(plot.cursor.value() == pytest.approx(10.5) for plot in all_maps(tab))
    assert tab.step_slider.value() == 10 and tab.unit_spin.value() == 5
    assert (tab.diagram.kind, tab.diagram.step, tab.diagram.unit) == ("lstm", 10, 5)
    assert tab.diagram.shown["f"] == pytest.approx(tab.lstm_trace.f[10, 5])
    assert tab.diagram.shown["c_prev"] == pytest.approx(tab.lstm_trace.c[9, 5])
    text = tab.explain_label.text()
    assert "Step 10" in text and "Selective forget" in text and "Selective write" in text and "Selective read" in text
    assert tab.example.step_labels[0][10] in tab.diagram.getPlotItem().titleLabel.text

    click_map(qtbot, tab.gru_maps["r"], 3, 7)
    assert (tab.diagram.kind, tab.diagram.step, tab.diagram.unit) == ("gru", 3, 7)
    assert tab.cell_combo.currentText() == "GRU"
    assert tab.diagram.shown["z"] == pytest.approx(tab.gru_trace.z[3, 7])
    assert "Keep and write in one gate" in tab.explain_label.text()

    # The keyboard moves the same cursor.
    tab.step_slider.setFocus()
    qtbot.keyClick(tab.step_slider, Qt.Key.Key_Right)
    assert tab.step == 4 and tab.diagram.step == 4
    assert all(plot.cursor.value() == pytest.approx(4.5) for plot in all_maps(tab))
    tab.cell_combo.setCurrentIndex(0)
    assert tab.diagram.kind == "lstm" and tab.diagram.step == 4


def test_choosing_task_delay_and_size_rebuilds_everything(qtbot, tab):
    small_task(tab, "adding", delay=6, hidden=8)
    assert tab.task == MemoryTask("adding", 6)
    for plot in all_maps(tab):
        assert plot.values.shape == (8, 8)
    assert tab.unit_spin.maximum() == 7 and tab.step_slider.maximum() == 7
    assert "two of them marked" in tab.task_label.text()
    assert tab.count_plot.values[2] == gates.parameter_counts(2, 8, 1)[2].total
    assert len(tab.flow.of("gru")) == 8
    assert settings.read("gates/task", "") == "adding" and settings.read("gates/delay", 0) == 6
    before = tab.lstm_maps["f"].values.copy()
    tab.seed_spin.setValue(7)  # other starting weights
    assert tab.seed == 7 and tab.train_config().seed == 7
    assert not np.allclose(before, tab.lstm_maps["f"].values)
    first = tab.example.inputs.copy()
    qtbot.mouseClick(tab.example_button, Qt.MouseButton.LeftButton)
    assert not np.array_equal(first, tab.example.inputs)
    assert tab.lstm_maps["i"].labels == tab.example.step_labels[0]


def test_text_task_uses_the_typed_text_and_explains_a_short_one(qtbot, tab):
    tab.delay_spin.setValue(6)
    tab.task_combo.setCurrentIndex(tab.task_combo.findData("text"))
    assert tab.text_edit.isEnabled()
    tab.text_edit.clear()
    qtbot.keyClicks(tab.text_edit, "hello hello")
    qtbot.keyClick(tab.text_edit, Qt.Key.Key_Return)
    assert tab.task.kind == "text" and tab.task.text == "hello hello"
    assert "".join(tab.example.step_labels[0]) in "hello hello"
    tab.delay_spin.setValue(30)  # windows of 32 characters do not fit in 11
    assert "needs at least 32" in tab.status_label.text()
    assert tab.task.delay == 6  # the last valid task stays


def _wait_training(qtbot, tab, timeout=90000):
    blocker = qtbot.waitSignal(tab.runner.finished, timeout=timeout)
    blocker.wait()
    return blocker.args[0]


def test_training_side_by_side_then_inspecting_trained_cells(qtbot, tab):
    small_task(tab, delay=4, hidden=12)
    tab.steps_spin.setValue(300)
    tab.lr_spin.setValue(0.01)
    untrained_f = tab.lstm_maps["f"].values.copy()
    qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    assert not tab.train_button.isEnabled() and tab.stop_button.isEnabled()
    assert not tab.delay_spin.isEnabled()
    assert _wait_training(qtbot, tab) is True
    assert tab.trained_steps == 300 and "Done" in tab.status_label.text()
    assert "trained for 300 steps" in tab.summary_label.text()
    assert tab.chance_line.value() == pytest.approx(25.0)
    for plot in (tab.loss_plot, tab.acc_plot):
        curves = plot.getPlotItem().listDataItems()
        assert len(curves) == 3
        assert all(len(c.getData()[0]) >= 1 and np.isfinite(c.getData()[1]).all() for c in curves)
    # The heatmaps now show the trained cells, which solve this short delay.
    assert not np.allclose(tab.lstm_maps["f"].values, untrained_f)
    np.testing.assert_allclose(tab.lstm_maps["f"].values, tab.lstm_trace.f)
    batch = tab.task.sample(np.random.default_rng(5), 200)
    assert gates.evaluate(tab.models["lstm"], batch)[1] > 0.9
    assert gates.evaluate(tab.models["gru"], batch)[1] > 0.9
    click_map(qtbot, tab.lstm_maps["c"], 2, 0)
    assert tab.diagram.step == 2 and tab.diagram.shown["c"] == pytest.approx(tab.lstm_trace.c[2, 0])
    qtbot.mouseClick(tab.reset_button, Qt.MouseButton.LeftButton)
    assert tab.trained_steps == 0 and "untrained" in tab.summary_label.text()


def test_pause_resume_and_stop(qtbot, tab):
    small_task(tab, delay=10, hidden=8)
    tab.steps_spin.setValue(50000)
    tab.start_training()
    qtbot.waitUntil(lambda: tab.runner.state == "running", timeout=5000)
    qtbot.waitUntil(lambda: "Step" in tab.status_label.text(), timeout=10000)
    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.pause_button.text() == "Resume", timeout=10000)
    assert "(paused)" in tab.status_label.text()
    qtbot.mouseClick(tab.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.pause_button.text() == "Pause", timeout=10000)
    with qtbot.waitSignal(tab.runner.finished, timeout=20000) as blocker:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [False]
    assert tab.trained_steps == 0 and "stopped" in tab.status_label.text()
    assert tab.train_button.isEnabled() and tab.delay_spin.isEnabled()


def test_blown_up_training_is_explained(qtbot, tab, monkeypatch, no_modal_boxes):
    real_sample = MemoryTask.sample

    def poisoned(self, rng, batch_size):  # training batches whose inputs turn every loss into NaN
        batch = real_sample(self, rng, batch_size)
        return batch if batch_size == 1 else dataclasses.replace(batch, inputs=batch.inputs * np.nan)

    monkeypatch.setattr(MemoryTask, "sample", poisoned)
    small_task(tab, delay=3, hidden=4)
    tab.start_training()
    assert _wait_training(qtbot, tab, 20000) is False
    assert "loss became nan" in tab.status_label.text() and "learning rate" in tab.status_label.text()
    assert no_modal_boxes and no_modal_boxes[-1][0] == "warning"
    assert tab.trained_steps == 0


def test_every_view_exports(qtbot, tab, tmp_path):
    small_task(tab, delay=3, hidden=5)
    click_map(qtbot, tab.lstm_maps["i"], 2, 1)
    tab.lstm_maps["f"].export_to(tmp_path / "f.csv")
    rows = read_csv(tmp_path / "f.csv")
    assert rows[0] == ["step", "input", "unit", "value"] and len(rows) == 1 + 5 * 5
    assert float(rows[1 + 2 * 5 + 1][3]) == pytest.approx(tab.lstm_trace.f[2, 1])
    assert rows[1][1] == tab.example.step_labels[0][0]
    tab.flow_plot.export_to(tmp_path / "flow.csv")
    rows = read_csv(tmp_path / "flow.csv")
    assert rows[0] == ["model", "k", "gradient norm"] and len(rows) == 1 + 3 * 5
    assert float(rows[1][2]) == pytest.approx(tab.flow.of("rnn")[0])  # the norm itself, not its log
    tab.diagram.export_to(tmp_path / "cell.csv")
    rows = read_csv(tmp_path / "cell.csv")
    assert rows[0][:2] == ["quantity", "unit"] and ["f", "1", repr(float(tab.lstm_trace.f[2, 1]))] in rows
    for view in (tab.lstm_maps["c"], tab.gru_maps["n"], tab.diagram, tab.flow_plot, tab.count_plot,
                 tab.acc_plot):
        png, svg = view.export_to(tmp_path / "v.png"), view.export_to(tmp_path / "v.svg")
        assert Image.open(png).size[0] >= 800
        assert "<svg" in svg.read_text()[:2000]
