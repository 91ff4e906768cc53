"""The convolution playground, driven as a student would."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine import conv
from engine import conv_presets as P
from gui.tabs.conv_tab import CUSTOM, PARAMS_PRESET, ConvTab


@pytest.fixture
def tab(open_tab, no_modal_boxes):
    return open_tab(ConvTab)


def settle(qtbot):
    qtbot.wait(20)  # the recomputation runs once the event loop is idle


def choose(qtbot, combo, text):
    combo.setCurrentText(text)
    settle(qtbot)


@pytest.mark.parametrize("preset", P.PRESETS, ids=lambda p: p.name)
def test_every_lecture_example_number_for_number(qtbot, tab, preset):
    choose(qtbot, tab.preset_combo, preset.name)
    r = tab.result
    for key, printed in preset.lecture_values.items():
        if key == "pooled":
            np.testing.assert_array_equal(r.pooled[0], printed)
            assert [tab._pooled_grids[0].item(0, c).text() for c in range(2)] == ["8", "4"]
        else:
            k, i, j = key
            assert r.output[k, i, j] == printed
            assert tab._output_grids[k].item(i, j).text() == str(printed)
    if preset.lecture_note:
        assert preset.lecture_note[:40] in tab.note_label.text()


@pytest.mark.smoke
def test_rgb_example_explains_channel_by_channel(qtbot, tab):
    choose(qtbot, tab.preset_combo, "RGB input, 3 kernel slices, bias 1")
    qtbot.mouseClick(tab._output_grids[0].viewport(), Qt.MouseButton.LeftButton,
                     pos=tab._output_grids[0].visualItemRect(tab._output_grids[0].item(0, 0)).center())
    text = tab.explain_text.toPlainText()
    assert "red: 0*-1 + 0*-1 + 0*1 + 0*0 + 156*1 + 155*-1 + 0*0 + 153*1 + 154*1 = 308" in text
    assert "output[0, 0] = 308 + (-498) + 164 + 1 (bias) = -25" in text
    # The receptive field is highlighted on every channel of the padded input.
    assert tab._input_grids[1].item(1, 1).background().color().name() == "#ffd54f"


def test_sharpen_stride_two_and_formula(qtbot, tab):
    choose(qtbot, tab.preset_combo, "Zero padding 1, sharpen, stride 2")
    text = tab.formula_label.text()
    assert "W2 = (W1 - F + 2P)/S + 1 = (5 - 3 + 2x1)/2 + 1 = 3" in text
    assert "Parameters = K x (F x F x C) + K = 1 x (3 x 3 x 1) + 1 = 10" in text
    assert tab.result.output.shape == (1, 3, 3) and tab.result.output[0, 0, 0] == 320
    tab.stride_spin.setValue(3)
    settle(qtbot)
    assert "floor(4/3) + 1 = 2" in tab.formula_label.text()


def test_typing_into_the_grid_recomputes(qtbot, tab):
    choose(qtbot, tab.preset_combo, "5x5 input, vertical edge kernel")
    grid = tab._input_grids[0]
    grid.item(0, 0).setText("17")  # as if typed: 7 -> 17 raises the top-left output by 10
    settle(qtbot)
    assert tab.result.output[0, 0, 0] == 16
    assert tab.preset_combo.currentText() == CUSTOM
    grid.item(0, 1).setText("abc")  # not a number: refused, old value kept
    settle(qtbot)
    assert grid.item(0, 1).text() == "2"
    kernel = tab._kernel_grids[0]
    kernel.item(1, 1).setText("1")
    settle(qtbot)
    assert tab.result.output[0, 0, 0] == 16 + 5


def test_impossible_settings_explain_and_never_raise(qtbot, tab):
    choose(qtbot, tab.preset_combo, "3x3 input, 2x2 kernel, bias 2")
    tab.kernel_size_spin.setValue(5)
    settle(qtbot)
    assert "larger than the padded input" in tab.formula_label.text()
    assert "No output" in tab.formula_label.text()
    tab.kernel_size_spin.setValue(2)
    tab.stride_spin.setValue(0)
    settle(qtbot)
    assert "never move" in tab.formula_label.text()
    tab.stride_spin.setValue(1)
    tab.padding_spin.setValue(4)
    tab.padmode_combo.setCurrentText("reflect")
    settle(qtbot)
    assert "Reflect padding" in tab.formula_label.text()
    tab.padmode_combo.setCurrentText("zeros")
    tab.padding_spin.setValue(0)  # a 2 x 2 output: an 8 x 8 pooling window cannot fit
    tab.pool_combo.setCurrentText("max")
    tab.pool_size_spin.setValue(8)
    settle(qtbot)
    assert "Pooling:" in tab.formula_label.text()


def test_same_padding_keeps_size(qtbot, tab):
    choose(qtbot, tab.preset_combo, "Zero padding 1, sharpen, stride 1")
    tab.kernel_size_spin.setValue(5)
    qtbot.mouseClick(tab.same_button, Qt.MouseButton.LeftButton)
    settle(qtbot)
    assert tab.padding_spin.value() == 2
    assert tab.result.output.shape[1:] == (5, 5)


@pytest.mark.smoke
def test_image_mode_rgb_k3_relu_pool_and_click(qtbot, tab):
    tab.mode_combo.setCurrentIndex(1)
    tab.colour_combo.setCurrentIndex(1)
    tab.filters_spin.setValue(3)
    for index, name in ((1, "vertical edge"), (2, "Sobel y"), (3, "box blur")):
        tab.edit_filter_spin.setValue(index)
        tab.kernel_combo.setCurrentText(name)
        qtbot.mouseClick(tab.apply_kernel_button, Qt.MouseButton.LeftButton)
    tab.relu_check.setChecked(True)
    tab.pool_combo.setCurrentText("avg")
    settle(qtbot)
    r = tab.result
    assert r.padded.shape[0] == 3 and r.output.shape[0] == 3 and r.output.min() >= 0
    expected = np.maximum(conv.conv2d(tab.x, tab.w, tab.bias), 0)
    np.testing.assert_allclose(r.output, expected, rtol=1e-4, atol=1e-2)  # images run in float32
    np.testing.assert_allclose(r.pooled, conv.pool2d(expected, 2, 2, "avg"), rtol=1e-4, atol=1e-2)
    assert "D2 = K = 3" in tab.formula_label.text()
    tab.select_output(2, 10, 20)
    assert tab.input_view.window_rect.isVisible()
    rect = tab.input_view.window_rect.rect()
    assert (rect.left(), rect.top(), rect.width()) == (20, 10, 3)
    assert "Filter 3, output row 10, column 20" in tab.explain_text.toPlainText()


def test_play_and_step_slide_the_window(qtbot, tab):
    choose(qtbot, tab.preset_combo, "5x5 input, vertical edge kernel")
    qtbot.mouseClick(tab.step_button, Qt.MouseButton.LeftButton)
    assert tab.selected == (0, 0, 1)
    qtbot.mouseClick(tab.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.selected[1] >= 1, timeout=5000)
    qtbot.mouseClick(tab.play_button, Qt.MouseButton.LeftButton)
    assert tab.play_button.text() == "Play"


def test_open_image_and_bad_file(qtbot, tab, tmp_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 30:] = 200
    Image.fromarray(rgb).save(tmp_path / "edge.png")
    assert tab.open_image(tmp_path / "edge.png")
    settle(qtbot)
    assert tab.mode == "image" and tab.x.shape[1:] == (40, 60)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    assert not tab.open_image(tmp_path / "bad.jpg")
    assert "bad.jpg" in tab.note_label.text()
    assert tab.x.shape[1:] == (40, 60)  # the previous picture stays


def test_huge_image_is_scaled_down(qtbot, tab, tmp_path):
    Image.new("L", (3000, 1500), 128).save(tmp_path / "big.png")
    assert tab.open_image(tmp_path / "big.png")
    settle(qtbot)
    assert max(tab.x.shape[1:]) <= 1024
    assert "scaled from 3000 x 1500" in tab.note_label.text()


def test_parameter_count_preset_explains_156(qtbot, tab):
    choose(qtbot, tab.preset_combo, PARAMS_PRESET)
    assert tab.x.shape == (3, 32, 32) and tab.w.shape == (6, 3, 5, 5)
    assert "= 456" in tab.formula_label.text()
    assert "156" in tab.note_label.text() and "1-channel" in tab.note_label.text()
    assert "28 x 28 x 6" in tab.formula_label.text()


def test_normalise_and_kernel_sizes(qtbot, tab):
    choose(qtbot, tab.preset_combo, "Zero padding 1, sharpen, stride 1")
    tab.kernel_combo.setCurrentText("box blur")
    tab.kernel_size_spin.setValue(7)
    qtbot.mouseClick(tab.apply_kernel_button, Qt.MouseButton.LeftButton)
    assert tab.w.shape[2:] == (7, 7) and tab.w.sum() == pytest.approx(1)
    tab._kernel_grids[0].item(0, 0).setText("5")
    qtbot.mouseClick(tab.normalise_button, Qt.MouseButton.LeftButton)
    assert tab.w.sum() == pytest.approx(1)


def test_coalesces_many_knob_moves_into_one_recompute(qtbot, tab, monkeypatch):
    calls = []
    original = tab.recompute
    monkeypatch.setattr(tab, "recompute", lambda: (calls.append(1), original()))
    tab._recompute_timer.timeout.disconnect()
    tab._recompute_timer.timeout.connect(tab.recompute)
    for p in range(6):
        tab.padding_spin.setValue(p)  # like dragging through six values
    settle(qtbot)
    assert len(calls) == 1
    assert tab.result.padded.shape[1] == tab.x.shape[1] + 10


def test_exports(qtbot, tab, tmp_path):
    choose(qtbot, tab.preset_combo, "6x6 half-bright image, vertical edge")
    grid = tab._output_grids[0]
    grid.export_to(tmp_path / "out.csv")
    assert list(csv.reader(open(tmp_path / "out.csv"))) == [["0", "30", "30", "0"]] * 4
    assert grid.export_to(tmp_path / "out.png").stat().st_size > 0
    assert "<svg" in grid.export_to(tmp_path / "out.svg").read_text()[:3000]
    tab.mode_combo.setCurrentIndex(1)
    settle(qtbot)
    tab.output_plot.export_to(tmp_path / "maps.csv")
    assert next(csv.reader(open(tmp_path / "maps.csv"))) == ["map", "row", "col", "value"]
    tab.input_view.export_to(tmp_path / "input.png")
    assert Image.open(tmp_path / "input.png").size[0] >= 800


def test_smoothing_view(qtbot, tab):
    tab.pages.setCurrentIndex(1)
    assert tab.smoothed_grid.item(0, 0).text() == "1.81"
    assert "s_6: the lecture prints 1.80, the exact value is 1.8110" in tab.smoothing_note.text()
    tab.smoothing_t_spin.setValue(7)
    assert "= 1.9670" in tab.smoothing_explain.text()
    tab.weights_grid.item(0, 6).setText("1")  # w_0 = 1: the newest reading dominates
    assert tab.weights[-1] == 1
    assert tab.smoothing_note.text() == ""  # no longer the lecture's numbers
    qtbot.mouseClick(tab.add_reading_button, Qt.MouseButton.LeftButton)
    assert tab.smoothed_grid.columnCount() == 7
    qtbot.mouseClick(tab.smoothing_reset_button, Qt.MouseButton.LeftButton)
    assert tab.smoothed_grid.columnCount() == 6
