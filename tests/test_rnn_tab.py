"""The "RNN and BPTT" tab, driven as a student would drive it."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from engine import rnn
from gui.tabs.rnn_tab import RNNTab


@pytest.fixture
def tab(qtbot, open_tab):
    widget = open_tab(RNNTab)
    wait_idle(qtbot, widget)
    return widget


def wait_idle(qtbot, tab, timeout=10000):
    qtbot.waitUntil(tab.is_idle, timeout=timeout)


def choose_preset(qtbot, tab, name):
    tab.preset_combo.setCurrentText(name)
    wait_idle(qtbot, tab)
    assert tab.task.text == rnn.PRESETS[name]


def far_over_near(tab):
    """||dL_{T-1}/dh_0|| / ||dL_{T-1}/dh_{T-1}||: < 1 when the gradient fades going back, > 1 when it grows."""
    m = tab.dh_map.values
    return m[-1, 0] / m[-1, -1]


def train_and_wait(qtbot, tab, timeout=60000):
    with qtbot.waitSignal(tab.train_runner.finished, timeout=timeout) as blocker:
        qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    return blocker.args[0]


@pytest.mark.smoke
def test_starts_with_the_lecture_deep_example(tab):
    assert tab.task.text == "deep" and tab.preset_combo.currentText() == "deep (lecture)"
    assert "T = 4 steps" in tab.task_label.text() and "<stop>" in tab.task_label.text()
    data = tab.unrolled.data
    assert data.inputs == ("d", "e", "e", "p") and data.targets == ("e", "e", "p", "<stop>")
    assert data.h.shape == (4, tab.hidden_spin.value())
    assert tab.dh_map.values.shape == (4, 4)
    assert np.all(np.triu(tab.dh_map.values, 1) == 0) and np.all(np.diag(tab.dh_map.values) > 0)
    # The parameter panel: this network's shapes and total, and the lecture's quiz.
    text = tab.params_label.text()
    d = tab.hidden_spin.value()
    assert f"{4 * d + d * d + d * 4 + d + 4:,}" in text and "161" in text and f"{d} x {d}" in text


@pytest.mark.smoke
def test_w_scale_slider_moves_from_vanishing_to_exploding(qtbot, tab):
    choose_preset(qtbot, tab, "one sentence")
    tab.scale_slider.setValue(0.2)
    wait_idle(qtbot, tab)
    vanishing = far_over_near(tab)
    assert vanishing < 1e-20
    assert rnn.spectral_radius(tab.model.W) == pytest.approx(0.2)
    assert "bound vanishes" in tab.jac_plot.getPlotItem().titleLabel.text
    # Dragging: many intermediate values, coalesced; only the last one counts.
    for value in np.linspace(0.2, 3.0, 40):
        tab.scale_slider.setValue(float(value))
    wait_idle(qtbot, tab)
    assert rnn.spectral_radius(tab.model.W) == pytest.approx(3.0)
    exploding = far_over_near(tab)
    assert exploding > 10
    assert tab.analysis.curve.norms[-1] > 10  # ||dh_{T-1}/dh_0|| grew with the distance
    assert "may explode" in tab.jac_plot.getPlotItem().titleLabel.text
    # The heatmap's colours follow: the far corner is now bright, not dark.
    image = tab.dh_map.array
    assert image[-1, 0] > image[-1, -1]


def test_truncation_and_clipping_change_the_maps(qtbot, tab):
    choose_preset(qtbot, tab, "hello world")
    tab.scale_slider.setValue(2.0)
    wait_idle(qtbot, tab)
    full = tab.dh_map.values.copy()
    full_grad = tab.analysis.result.grads["W"].copy()
    qtbot.mouseClick(tab.truncate_check, Qt.MouseButton.LeftButton)
    tab.truncate_spin.setValue(3)
    wait_idle(qtbot, tab)
    cut = tab.dh_map.values
    lag = np.subtract.outer(np.arange(11), np.arange(11))
    assert np.all(cut[lag >= 3] == 0) and np.allclose(cut[(lag >= 0) & (lag < 3)], full[(lag >= 0) & (lag < 3)])
    assert tab.dh_map.cut[10, 0] and not tab.dh_map.cut[10, 8]
    assert np.isnan(tab.dh_map.array[10, 0])  # cut cells show the grey layer beneath
    assert not np.allclose(tab.analysis.result.grads["W"], full_grad)
    assert "cut by truncation" in tab.dh_map.describe(10, 0, 0.0)

    unclipped = tab.analysis.clipped.norm_before
    tab.clip_spin.setValue(0.5)
    tab.clip_combo.setCurrentIndex(1)  # by norm
    wait_idle(qtbot, tab)
    assert tab.analysis.clipped.norm_after == pytest.approx(0.5)
    assert f"{unclipped:.4g}" in tab.norms_label.text() and "rescaled to 0.5" in tab.norms_label.text()
    tab.clip_combo.setCurrentIndex(2)  # by value
    wait_idle(qtbot, tab)
    assert all(np.abs(g).max() <= 0.5 for g in tab.analysis.clipped.grads.values())
    assert "clamped" in tab.norms_label.text()
    qtbot.mouseClick(tab.truncate_check, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    np.testing.assert_allclose(tab.dh_map.values, full)


def test_train_deep_to_near_zero_loss_and_sample_it_back(qtbot, tab):
    first_loss = tab.analysis.result.loss
    assert train_and_wait(qtbot, tab) is True
    assert tab.last_record.done and tab.last_record.loss < 0.02 < first_loss
    assert tab.analysis.result.loss < 0.02
    assert "Done" in tab.train_status.text()
    x, y = tab.loss_plot.getPlotItem().listDataItems()[0].getData()
    assert len(x) == tab.steps_spin.value() and y[-1] < y[0]
    assert tab.unrolled.data.predicted == ("e", "e", "p", "<stop>")
    assert np.all(tab.unrolled.data.p_true > 0.98)
    # The slider now reports the trained W's spectral radius.
    assert tab.scale_slider.value() == pytest.approx(rnn.spectral_radius(tab.model.W), abs=0.01)

    tab.prompt_edit.setText("d")
    qtbot.mouseClick(tab.sample_button, Qt.MouseButton.LeftButton)
    assert tab.last_sample.symbols == ("e", "e", "p", "<stop>")
    assert "eep" in tab.sample_output.text() and "&lt;stop&gt;" in tab.sample_output.text()
    tab.sample_mode.setCurrentIndex(1)
    assert tab.temperature_spin.isEnabled()
    tab.temperature_spin.setValue(0.5)
    qtbot.mouseClick(tab.sample_button, Qt.MouseButton.LeftButton)
    assert tab.last_sample.text == "eep"

    # A second run continues from the trained weights; the curve keeps growing.
    tab.steps_spin.setValue(50)
    assert train_and_wait(qtbot, tab) is True
    x, _ = tab.loss_plot.getPlotItem().listDataItems()[0].getData()
    assert x[-1] == 650


def test_stop_keeps_the_weights_learned_so_far(qtbot, tab):
    choose_preset(qtbot, tab, "a few sentences")
    tab.hidden_spin.setValue(64)
    tab.lr_spin.setValue(0.01)
    tab.steps_spin.setValue(100000)
    wait_idle(qtbot, tab)
    qtbot.mouseClick(tab.train_button, Qt.MouseButton.LeftButton)
    assert not tab.train_button.isEnabled() and not tab.scale_slider.isEnabled()
    qtbot.waitUntil(lambda: tab.last_record is not None and tab.last_record.step >= 3, timeout=20000)
    # The maps follow the learning (redrawn from the records, at most 10 times a second).
    qtbot.waitUntil(lambda: np.array_equal(tab.dh_map.values, tab.last_record.dL_dh_norms), timeout=2000)
    assert "redrawn when training stops" in tab.jac_plot.getPlotItem().titleLabel.text
    with qtbot.waitSignal(tab.train_runner.finished, timeout=10000) as blocker:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [False]
    assert "Stopped after" in tab.train_status.text()
    assert tab.model is tab.last_record.model
    assert tab.train_button.isEnabled() and tab.scale_slider.isEnabled()


def test_blow_up_is_explained_and_reset_recovers(qtbot, tab):
    choose_preset(qtbot, tab, "one sentence")
    tab.activation_combo.setCurrentText("relu")
    tab.scale_slider.setValue(2.5)
    tab.lr_spin.setValue(1.0)
    wait_idle(qtbot, tab)
    assert train_and_wait(qtbot, tab) is False
    explanation = tab.explain_label.text()
    assert tab.explain_label.isVisible()
    assert "exploded" in explanation and "clipping" in explanation and "Reset" in explanation
    assert "bold" in tab.reset_button.styleSheet()
    assert all(np.isfinite(p).all() for p in tab.model.params().values())  # the last finite weights
    x, y = tab.loss_plot.getPlotItem().listDataItems()[0].getData()
    assert len(x) >= 1 and np.isfinite(y).all()  # the curve up to the blow-up is shown
    assert "blew up" in tab.train_status.text()
    qtbot.mouseClick(tab.reset_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)
    assert not tab.explain_label.isVisible() and tab.reset_button.styleSheet() == ""
    x, _ = tab.loss_plot.getPlotItem().listDataItems()[0].getData()
    assert x is None or len(x) == 0  # the curves start again
    # With clipping by norm the same settings train without blowing up.
    tab.clip_combo.setCurrentIndex(1)
    tab.lr_spin.setValue(0.05)
    tab.steps_spin.setValue(40)
    assert train_and_wait(qtbot, tab) is True
    assert not tab.explain_label.isVisible()
    _, after = tab.norm_plot.getPlotItem().listDataItems()[1].getData()
    assert np.all(after <= 1.0 + 1e-9)


def test_too_long_text_is_refused_with_a_message(qtbot, tab):
    tab.text_edit.setPlainText("ab" * 101)
    qtbot.waitUntil(lambda: "T = 200" in tab.network_message.text(), timeout=3000)
    assert tab.task.text == "deep"
    tab.text_edit.setPlainText("")
    qtbot.waitUntil(lambda: "empty" in tab.network_message.text(), timeout=3000)
    qtbot.keyClicks(tab.text_edit, "abcabc")
    qtbot.waitUntil(lambda: tab.task.text == "abcabc", timeout=3000)
    wait_idle(qtbot, tab)
    assert tab.network_message.text() == "" and tab.preset_combo.currentText() == "(your own text)"
    assert tab.model.n == 4 and tab.dh_map.values.shape == (6, 6)
    tab.prompt_edit.setText("xyz")
    qtbot.mouseClick(tab.sample_button, Qt.MouseButton.LeftButton)
    assert "not in the vocabulary" in tab.sample_output.text()


def test_network_settings_build_matching_models(qtbot, tab):
    tab.hidden_spin.setValue(256)
    tab.init_combo.setCurrentText("identity")
    wait_idle(qtbot, tab)
    assert tab.model.d == 256
    np.testing.assert_allclose(tab.model.W, tab.scale_slider.value() * np.eye(256))
    assert "256 x 256" in tab.params_label.text()
    tab.activation_combo.setCurrentText("sigmoid")
    wait_idle(qtbot, tab)
    assert tab.model.activation == "sigmoid" and tab.analysis.curve.gamma == 0.25
    assert tab.hidden_spin.maximum() == rnn.MAX_HIDDEN


def test_hovering_explains_a_step_and_a_cell(qtbot, tab):
    view = tab.unrolled
    info = view.step_info(2)
    assert "step t = 2" in info and "'e'" in info and "loss L_2" in info
    qtbot.mouseMove(view, QPoint(60 + 2 * 90, 100))
    qtbot.waitUntil(lambda: view.hovered == 2, timeout=2000)
    text = tab.dh_map.describe(3, 1, float(tab.dh_map.values[3, 1]))
    assert "t = 3, k = 1" in text and "||dL_t/dh_k||" in text
    assert "exactly zero" in tab.path_map.describe(2, 0, 0.0)


def test_exports(qtbot, tab, tmp_path):
    tab.dh_map.export_to(tmp_path / "dh.csv")
    rows = list(csv.reader(open(tmp_path / "dh.csv")))
    assert rows[0] == ["t", "k", "||dL_t/dh_k||", "cut"] and len(rows) == 1 + 10
    assert float(rows[1][2]) == pytest.approx(tab.analysis.result.dL_dh_norms[0, 0])
    tab.jac_plot.export_to(tmp_path / "jac.csv")
    assert "||dh_t/dh_k||" in (tmp_path / "jac.csv").read_text()
    views = (tab.dh_map, tab.path_map, tab.jac_plot, tab.per_k_plot, tab.loss_plot, tab.norm_plot)
    for view in views:
        png, svg = view.export_to(tmp_path / "v.png"), view.export_to(tmp_path / "v.svg")
        assert Image.open(png).size[0] >= 800
        assert "<svg" in svg.read_text()[:2000]
    from gui.widgets.plots import exportable_views

    assert set(views) <= set(exportable_views(tab))
