"""Convolution playground: every knob of a conv layer, on the lecture's grids of numbers or on images,
with the size formula filled in, the sliding window explained term by term, and 1-D smoothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Slot
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsRectItem,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import conv, samples
from engine import conv_presets as presets
from gui.tabs.base import StudioTab, TabContext, run_standalone
from gui.widgets.number_grid import NumberGrid, format_number
from gui.widgets.panels import control_column
from gui.widgets.plots import CurvePlot, ExportablePlot, ImagePlot

MAX_GRID = 12  # numbers mode: grids up to 12 x 12
MAX_IMAGE_SIDE = 1024  # larger images are scaled down to keep every knob instant
CHANNEL_NAMES = {1: ("grey",), 3: ("red", "green", "blue")}
CUSTOM = "Custom grid"
PARAMS_PRESET = "Parameter count: six 5x5 filters on a 32x32x3 image"
GREYS = pg.ColorMap(pos=[0.0, 1.0], color=[(0, 0, 0), (255, 255, 255)])


@dataclass(frozen=True)
class ConvResult:
    """What one recomputation produced (all numpy)."""
    report: conv.SizeReport
    padded: np.ndarray | None = None  # (C, H+2P, W+2P)
    output: np.ndarray | None = None  # (K, H2, W2) after the optional ReLU
    pooled: np.ndarray | None = None  # (K, H3, W3) or None
    pool_error: str = ""
    error: str = ""


def _captioned(grid: NumberGrid) -> QWidget:
    """The grid under a caption that follows its export title (e.g. "Input (red)")."""
    box = QWidget()
    v = QVBoxLayout(box)
    v.setContentsMargins(0, 0, 6, 0)
    v.setSpacing(2)
    caption = QLabel(grid.export_title)
    grid.caption = caption
    v.addWidget(caption)
    v.addWidget(grid)
    return box


def _discard(layout, widget: QWidget) -> None:
    """Take a widget off screen now (deleteLater alone leaves it drawn until the loop runs)."""
    layout.removeWidget(widget)
    widget.hide()
    widget.setParent(None)
    widget.deleteLater()


def _mono(label: QLabel | QPlainTextEdit) -> None:
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    label.setFont(font)


class InputView(ExportablePlot):
    """The padded input (grey or colour) with the original image outlined and the window marked."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Input with padding", parent)
        self.image_item = self.add_image_item()
        self.original_rect = QGraphicsRectItem()
        self.original_rect.setPen(pg.mkPen("#00b0ff", width=1.5, style=Qt.PenStyle.DashLine, cosmetic=True))
        self.window_rect = QGraphicsRectItem()
        self.window_rect.setPen(pg.mkPen("#ff1744", width=2.5, cosmetic=True))
        for item in (self.original_rect, self.window_rect):
            item.setZValue(5)
            self.addItem(item)
        self.padded = np.zeros((1, 1, 1))  # (C, H, W)
        self._shape = None
        self._hover = pg.TextItem(color="k", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 210))
        self._hover.setZValue(10)
        self._hover.hide()
        self.addItem(self._hover, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def _on_mouse_moved(self, scene_pos) -> None:
        pos = self.image_item.mapFromScene(scene_pos)
        row, col = int(np.floor(pos.y())), int(np.floor(pos.x()))
        c, h, w = self.padded.shape
        if not (0 <= row < h and 0 <= col < w):
            self._hover.hide()
            return
        values = " ".join(format_number(v) for v in self.padded[:, row, col])
        self._hover.setText(f"({row}, {col}) = {values}")
        self._hover.setPos(col, row)
        self._hover.show()

    def set_padded(self, padded: np.ndarray, padding: tuple[int, int]) -> None:
        self.padded = padded
        c, h, w = padded.shape
        if c == 3:
            rgb = np.clip(np.transpose(padded, (1, 2, 0)), 0, 255).astype(np.uint8)
            self.image_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        else:
            lo, hi = float(padded.min()), float(padded.max())
            self.image_item.setColorMap(GREYS)
            self.image_item.setImage(padded[0], autoLevels=False, levels=(lo, hi if hi > lo else lo + 1))
        ph, pw = padding
        self.original_rect.setRect(QRectF(pw, ph, w - 2 * pw, h - 2 * ph))
        if self._shape != (h, w):
            self._shape = (h, w)
            self.getPlotItem().autoRange(padding=0.02)

    def show_window(self, top: int, left: int, height: int, width: int) -> None:
        self.window_rect.setRect(QRectF(left, top, width, height))
        self.window_rect.show()

    def csv_table(self):
        c, h, w = self.padded.shape
        return ["channel", "row", "col", "value"], [
            (ch, r, q, float(self.padded[ch, r, q])) for ch in range(c) for r in range(h) for q in range(w)]


class ConvTab(StudioTab):
    title = "Convolution"
    accepts_images = True

    def __init__(self, context: TabContext | None = None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.mode = "numbers"
        self.x = np.zeros((1, 5, 5))  # (C, H, W) input values
        self.w = np.zeros((1, 1, 3, 3))  # (K, C, F, F) filters
        self.bias = np.zeros(1)  # (K,)
        self.image_source = ""
        self._image_array: np.ndarray | None = None  # the loaded picture, (H, W) or (H, W, 3) uint8
        self.selected = (0, 0, 0)  # (filter, i, j) of the output value being explained
        self.result = ConvResult(conv.size_report(5, 5, 1, 1, 3))
        self.current_preset: presets.ConvPreset | None = None
        self._input_grids: list[NumberGrid] = []
        self._kernel_grids: list[NumberGrid] = []
        self._output_grids: list[NumberGrid] = []
        self._pooled_grids: list[NumberGrid] = []
        self._loading = False  # True while several knobs are set at once
        self._recompute_timer = QTimer(self, singleShot=True, interval=0)
        self._recompute_timer.timeout.connect(self.recompute)
        self._play_timer = QTimer(self, interval=450)
        self._play_timer.timeout.connect(self.step_window)
        self._build_ui()
        self._connect()
        self.apply_preset(presets.PRESETS[0].name)
        self.smoothing_reset()
        QTimer.singleShot(0, self.mark_ready)

    # ------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.pages = QTabWidget()
        outer.addWidget(self.pages)
        two_d = QWidget()
        h = QHBoxLayout(two_d)
        h.setContentsMargins(2, 2, 2, 2)
        h.addWidget(control_column(self._build_controls(), width=350))
        right = QSplitter(Qt.Orientation.Vertical)
        h.addWidget(right, 1)

        filter_box = self.filter_box = QGroupBox("Filter being edited (double-click a cell to type)")
        fb = QHBoxLayout(filter_box)
        self.kernel_row = QHBoxLayout()
        fb.addLayout(self.kernel_row)
        self.bias_label = QLabel()
        fb.addWidget(self.bias_label)
        fb.addStretch(1)
        filter_scroll = QScrollArea()
        filter_scroll.setWidgetResizable(True)
        filter_scroll.setWidget(filter_box)
        filter_scroll.setMinimumHeight(150)
        right.addWidget(filter_scroll)

        self.views = QStackedWidget()
        self.views.addWidget(self._build_numbers_view())
        self.views.addWidget(self._build_image_view())
        right.addWidget(self.views)

        bottom = QWidget()
        bh = QHBoxLayout(bottom)
        bh.setContentsMargins(0, 0, 0, 0)
        formula_box = QGroupBox("Sizes and parameters")
        formula_outer = QVBoxLayout(formula_box)
        formula_outer.setContentsMargins(2, 2, 2, 2)
        formula_scroll = QScrollArea()  # scrolls rather than squeezing the text when space is short
        formula_scroll.setWidgetResizable(True)
        formula_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        formula_inner = QWidget()
        formula_scroll.setWidget(formula_inner)
        formula_outer.addWidget(formula_scroll)
        fv = QVBoxLayout(formula_inner)
        self.formula_label = QLabel()
        self.formula_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.formula_label.setWordWrap(True)
        self.formula_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        _mono(self.formula_label)
        fv.addWidget(self.formula_label)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("color: #8a4b00;")
        fv.addWidget(self.note_label)
        fv.addStretch(1)
        bh.addWidget(formula_box, 1)
        window_box = QGroupBox("Sliding window: click any output value, or play")
        wv = QVBoxLayout(window_box)
        buttons = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Slide the window over every output position (Space)")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("Move to the next output position (Right arrow)")
        self.position_label = QLabel()
        for wdg in (self.play_button, self.step_button, self.position_label):
            buttons.addWidget(wdg)
        buttons.addStretch(1)
        wv.addLayout(buttons)
        self.explain_text = QPlainTextEdit()
        self.explain_text.setReadOnly(True)
        self.explain_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        _mono(self.explain_text)
        wv.addWidget(self.explain_text)
        bh.addWidget(window_box, 1)
        right.addWidget(bottom)
        right.setSizes([170, 500, 230])
        right.setChildrenCollapsible(False)
        self.pages.addTab(two_d, "2-D convolution")
        self.pages.addTab(self._build_smoothing_page(), "1-D smoothing")

    def _build_controls(self) -> QWidget:
        panel = QWidget()
        panel.setMaximumWidth(330)
        v = QVBoxLayout(panel)
        box = QGroupBox("Input")
        form = QFormLayout(box)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["Numbers (lecture examples)", "Image"])
        self.mode_combo.setToolTip("Small grids of numbers you can type into, or a real picture")
        form.addRow("Work on", self.mode_combo)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems([p.name for p in presets.PRESETS] + [PARAMS_PRESET, CUSTOM])
        self.preset_combo.setToolTip("Replay a worked example of the lecture, number for number")
        form.addRow("Example", self.preset_combo)
        self.rows_spin = QSpinBox(minimum=1, maximum=MAX_GRID, value=5)
        self.cols_spin = QSpinBox(minimum=1, maximum=MAX_GRID, value=5)
        self.rows_spin.setToolTip("Rows of the input grid (up to 12)")
        self.cols_spin.setToolTip("Columns of the input grid (up to 12)")
        size_row = QHBoxLayout()
        size_row.addWidget(self.rows_spin)
        size_row.addWidget(QLabel("x"))
        size_row.addWidget(self.cols_spin)
        size_row.addStretch(1)
        self.size_widget = QWidget()
        self.size_widget.setLayout(size_row)
        size_row.setContentsMargins(0, 0, 0, 0)
        form.addRow("Grid size", self.size_widget)
        self.sample_combo = QComboBox()
        self.sample_combo.addItems(list(samples.SAMPLES))
        self.sample_combo.setToolTip(samples.SOURCE_NOTE)
        form.addRow("Sample", self.sample_combo)
        self.open_button = QPushButton("Open image...")
        self.open_button.setToolTip("Use your own picture (Ctrl+O); large ones are scaled to 1024 pixels")
        form.addRow("", self.open_button)
        self.colour_combo = QComboBox()
        self.colour_combo.addItems(["Grey (1 channel)", "RGB (3 channels)"])
        self.colour_combo.setToolTip("C, the number of input channels; each filter gets one slice per channel")
        form.addRow("Channels", self.colour_combo)
        v.addWidget(box)

        box = QGroupBox("Filters")
        form = QFormLayout(box)
        self.kernel_size_spin = QSpinBox(minimum=1, maximum=11, value=3)
        self.kernel_size_spin.setToolTip("F: the kernel is F x F (per channel)")
        form.addRow("Size F", self.kernel_size_spin)
        kernel_row = QHBoxLayout()
        self.kernel_combo = QComboBox()
        self.kernel_combo.addItems(list(conv.KERNEL_NAMES))
        self.kernel_combo.setCurrentText("vertical edge")
        self.kernel_combo.setToolTip("Fill the filter being edited with a classic kernel (every channel slice)")
        self.apply_kernel_button = QPushButton("Apply")
        kernel_row.addWidget(self.kernel_combo, 1)
        kernel_row.addWidget(self.apply_kernel_button)
        form.addRow("Kernel", kernel_row)
        self.normalise_button = QPushButton("Normalise")
        self.normalise_button.setToolTip("Scale the filter so its weights sum to 1 (edge kernels: |weights| sum to 1)")
        form.addRow("", self.normalise_button)
        self.filters_spin = QSpinBox(minimum=1, maximum=8, value=1)
        self.filters_spin.setToolTip("K: how many filters, i.e. the depth D2 of the output volume")
        form.addRow("Filters K", self.filters_spin)
        self.edit_filter_spin = QSpinBox(minimum=1, maximum=1, value=1)
        self.edit_filter_spin.setToolTip("Which filter the grids above show and edit")
        form.addRow("Edit filter", self.edit_filter_spin)
        self.bias_spin = QDoubleSpinBox(minimum=-1e6, maximum=1e6, decimals=3, value=0.0)
        self.bias_spin.setToolTip("The bias added to every output of this filter")
        form.addRow("Bias", self.bias_spin)
        v.addWidget(box)

        box = QGroupBox("Sliding")
        form = QFormLayout(box)
        pad_row = QHBoxLayout()
        self.padding_spin = QSpinBox(minimum=0, maximum=20, value=0)
        self.padding_spin.setToolTip("P: rings of extra pixels around the input")
        self.padmode_combo = QComboBox()
        self.padmode_combo.addItems(list(conv.PADDING_MODES))
        self.padmode_combo.setToolTip("zeros: add 0s (the lecture); reflect/replicate/circular borrow from the image")
        pad_row.addWidget(self.padding_spin)
        pad_row.addWidget(self.padmode_combo, 1)
        form.addRow("Padding P", pad_row)
        self.same_button = QPushButton("Same size: P = (F-1)/2")
        self.same_button.setToolTip("Choose the padding that keeps the output as large as the input (odd F, S = 1)")
        form.addRow("", self.same_button)
        self.stride_spin = QSpinBox(minimum=0, maximum=10, value=1)
        self.stride_spin.setToolTip("S: how far the window moves each step (0 is explained, not allowed)")
        form.addRow("Stride S", self.stride_spin)
        self.dilation_spin = QSpinBox(minimum=1, maximum=5, value=1)
        self.dilation_spin.setToolTip("Gaps between kernel taps: the kernel covers D(F-1)+1 pixels")
        form.addRow("Dilation", self.dilation_spin)
        v.addWidget(box)

        box = QGroupBox("After the convolution")
        form = QFormLayout(box)
        self.relu_check = QCheckBox("ReLU: max(0, x)")
        self.relu_check.setToolTip("Keep positive responses, set negative ones to 0")
        form.addRow(self.relu_check)
        self.pool_combo = QComboBox()
        self.pool_combo.addItems(["none", "max", "avg", "min"])
        form.addRow("Pooling", self.pool_combo)
        self.pool_size_spin = QSpinBox(minimum=1, maximum=8, value=2)
        self.pool_stride_spin = QSpinBox(minimum=1, maximum=8, value=2)
        form.addRow("Pool size", self.pool_size_spin)
        form.addRow("Pool stride", self.pool_stride_spin)
        v.addWidget(box)
        v.addStretch(1)
        return panel

    def _build_numbers_view(self) -> QWidget:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        v = QVBoxLayout(inner)
        self.numbers_rows = {}
        for key, title in (("input", "Input (grey cells: padding)"), ("output", "Output feature map(s)"),
                           ("pooled", "After pooling")):
            label = QLabel(f"<b>{title}</b>")
            row = QHBoxLayout()
            row.setAlignment(Qt.AlignmentFlag.AlignLeft)
            v.addWidget(label)
            v.addLayout(row)
            self.numbers_rows[key] = (label, row)
        v.addStretch(1)
        scroll.setWidget(inner)
        return scroll

    def _build_image_view(self) -> QWidget:
        page = QWidget()
        h = QHBoxLayout(page)
        h.setContentsMargins(0, 0, 0, 0)
        self.input_view = InputView()
        self.output_plot = ImagePlot("Feature maps", colormap="viridis")
        self.output_plot.setToolTip("Each filter's output; click a pixel to see how it was computed")
        self.pooled_plot = ImagePlot("Pooled maps", colormap="viridis")
        for w in (self.input_view, self.output_plot, self.pooled_plot):
            h.addWidget(w, 1)
        return page

    def _build_smoothing_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        intro = QLabel("A 1-D convolution smooths noisy sensor readings: each output s_t is a weighted sum of "
                       "the newest reading x_t and the six before it, s_t = sum over a of x_(t-a) w_a. "
                       "Type new readings or weights; the oldest weight is on the left.")
        intro.setWordWrap(True)
        v.addWidget(intro)
        form = QFormLayout()
        self.readings_grid = NumberGrid("Readings x", cell_width=52)
        self.weights_grid = NumberGrid("Weights w", cell_width=52)
        self.smoothed_grid = NumberGrid("Smoothed s", cell_width=52)
        form.addRow("Readings x_0 ...", self.readings_grid)
        form.addRow("Weights w_-6 ... w_0", self.weights_grid)
        form.addRow("Smoothed s_6 ...", self.smoothed_grid)
        v.addLayout(form)
        row = QHBoxLayout()
        self.add_reading_button = QPushButton("Add reading")
        self.remove_reading_button = QPushButton("Remove reading")
        self.smoothing_reset_button = QPushButton("Lecture values")
        self.smoothing_t_spin = QSpinBox()
        self.smoothing_t_spin.setPrefix("explain s_")
        for w in (self.add_reading_button, self.remove_reading_button, self.smoothing_reset_button,
                  self.smoothing_t_spin):
            row.addWidget(w)
        row.addStretch(1)
        v.addLayout(row)
        self.smoothing_explain = QLabel()
        self.smoothing_explain.setWordWrap(True)
        self.smoothing_explain.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        _mono(self.smoothing_explain)
        v.addWidget(self.smoothing_explain)
        self.smoothing_note = QLabel()
        self.smoothing_note.setWordWrap(True)
        self.smoothing_note.setStyleSheet("color: #8a4b00;")
        v.addWidget(self.smoothing_note)
        self.smoothing_plot = CurvePlot("Readings and their smoothed version", "t", "value")
        v.addWidget(self.smoothing_plot, 1)
        return page

    def _connect(self) -> None:
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        self.preset_combo.currentTextChanged.connect(self._on_preset_chosen)
        for spin in (self.rows_spin, self.cols_spin):
            spin.valueChanged.connect(self._on_grid_size_changed)
        self.sample_combo.currentTextChanged.connect(lambda _t: self.load_sample())
        self.open_button.clicked.connect(self.open_image_dialog)
        self.colour_combo.currentIndexChanged.connect(self._on_colour_changed)
        self.kernel_size_spin.valueChanged.connect(self._on_kernel_size_changed)
        self.apply_kernel_button.clicked.connect(self.apply_kernel_preset)
        self.normalise_button.clicked.connect(self.normalise_filter)
        self.filters_spin.valueChanged.connect(self._on_filters_changed)
        self.edit_filter_spin.valueChanged.connect(lambda _v: self._show_kernel_grids())
        self.bias_spin.valueChanged.connect(self._on_bias_changed)
        for w in (self.padding_spin, self.stride_spin, self.dilation_spin, self.pool_size_spin,
                  self.pool_stride_spin):
            w.valueChanged.connect(self._knob_changed)
        for w in (self.padmode_combo, self.pool_combo):
            w.currentIndexChanged.connect(self._knob_changed)
        self.relu_check.toggled.connect(self._knob_changed)
        self.same_button.clicked.connect(self.same_padding)
        self.play_button.clicked.connect(self.toggle_play)
        self.step_button.clicked.connect(self.step_window)
        self.output_plot.scene().sigMouseClicked.connect(self._on_output_plot_clicked)
        self.readings_grid.edited.connect(self._on_reading_edited)
        self.weights_grid.edited.connect(self._on_weight_edited)
        self.add_reading_button.clicked.connect(self._add_reading)
        self.remove_reading_button.clicked.connect(self._remove_reading)
        self.smoothing_reset_button.clicked.connect(self.smoothing_reset)
        self.smoothing_t_spin.valueChanged.connect(lambda _v: self._update_smoothing())
        for key, slot in (("Space", self.toggle_play), ("Right", self.step_window)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # ------------------------------------------------------------------ knobs
    def _set_quietly(self, widget, value) -> None:
        widget.blockSignals(True)
        if isinstance(widget, QComboBox):
            widget.setCurrentText(value) if isinstance(value, str) else widget.setCurrentIndex(value)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(value)
        else:
            widget.setValue(value)
        widget.blockSignals(False)

    @Slot()
    def _knob_changed(self, *_args) -> None:
        self.schedule_recompute()

    def schedule_recompute(self) -> None:
        """Coalesce: however many knobs move before the event loop runs, compute once, with the latest values."""
        if not self._loading:
            self._recompute_timer.start()

    def settings_now(self) -> dict:
        return dict(padding=self.padding_spin.value(), stride=self.stride_spin.value(),
                    dilation=self.dilation_spin.value(), padding_mode=self.padmode_combo.currentText())

    def _on_mode_changed(self, index: int) -> None:
        self.mode = "numbers" if index == 0 else "image"
        self.views.setCurrentIndex(index)
        self._update_mode_controls()
        if self.mode == "image" and not self.image_source:
            self.load_sample()
        elif self.mode == "numbers" and max(self.x.shape[1:]) > MAX_GRID:
            self.apply_preset(CUSTOM)  # an image is too large to show as numbers
        self.schedule_recompute()

    def _update_mode_controls(self) -> None:
        numbers = self.mode == "numbers"
        self.size_widget.setEnabled(numbers)
        self.sample_combo.setEnabled(not numbers)
        self.open_button.setEnabled(not numbers)

    def _on_preset_chosen(self, name: str) -> None:
        if name != CUSTOM and not self._loading:
            self.apply_preset(name)

    def apply_preset(self, name: str) -> None:
        """Load one of the lecture's examples: its grid, filters, bias, padding, stride and pooling."""
        self._loading = True
        self._play_timer.stop()
        self.play_button.setText("Play")
        self._set_quietly(self.preset_combo, name)
        if name == PARAMS_PRESET:
            ex = presets.PARAMETER_EXAMPLE
            self.current_preset = None
            self.mode = "image"
            image = np.asarray(samples.sample("Shapes (colour)"), np.float64)
            step = image.shape[0] // ex.h
            self.x = np.transpose(image[::step, ::step][: ex.h, : ex.w], (2, 0, 1)).copy()
            self.image_source = "Shapes sample at 32 x 32"
            rng = np.random.default_rng(0)
            self.w = np.round(rng.uniform(-1, 1, (ex.filters, ex.channels, ex.f, ex.f)), 2)
            self.bias = np.zeros(ex.filters)
            values = dict(padding=0, stride=1, pool="none")
        elif name == CUSTOM:
            self.current_preset = None
            self.mode = "numbers"
            self.x = np.arange(25, dtype=np.float64).reshape(1, 5, 5) % 7
            self.w = conv.make_kernel("vertical edge")[None, None]
            self.bias = np.zeros(1)
            values = dict(padding=0, stride=1, pool="none")
        else:
            p = next(p for p in presets.PRESETS if p.name == name)
            self.current_preset = p
            self.mode = "numbers"
            self.x = p.x.astype(np.float64).copy()
            self.w = p.w.astype(np.float64).copy()
            self.bias = np.array(p.bias if p.bias else [0.0] * p.w.shape[0], np.float64)
            pool = p.pool or ("none", 2, 2)
            values = dict(padding=p.padding, stride=p.stride, pool=pool[0])
            if p.pool:
                self._set_quietly(self.pool_size_spin, pool[1])
                self._set_quietly(self.pool_stride_spin, pool[2])
        self._set_quietly(self.mode_combo, 0 if self.mode == "numbers" else 1)
        self.views.setCurrentIndex(0 if self.mode == "numbers" else 1)
        self._set_quietly(self.padding_spin, values["padding"])
        self._set_quietly(self.stride_spin, values["stride"])
        self._set_quietly(self.dilation_spin, 1)
        self._set_quietly(self.padmode_combo, "zeros")
        self._set_quietly(self.relu_check, False)
        self._set_quietly(self.pool_combo, values["pool"])
        self._sync_shape_controls()
        self._update_mode_controls()
        self.selected = (0, 0, 0)
        self._loading = False
        self.recompute()

    def _sync_shape_controls(self) -> None:
        c, h, w = self.x.shape
        k, _, f, _ = self.w.shape
        self._set_quietly(self.rows_spin, min(h, MAX_GRID))
        self._set_quietly(self.cols_spin, min(w, MAX_GRID))
        self._set_quietly(self.colour_combo, 0 if c == 1 else 1)
        self._set_quietly(self.kernel_size_spin, f)
        self._set_quietly(self.filters_spin, k)
        self.edit_filter_spin.setMaximum(k)
        self._set_quietly(self.edit_filter_spin, 1)
        self._set_quietly(self.bias_spin, float(self.bias[0]))

    def _became_custom(self) -> None:
        """Any edit turns a lecture example into the student's own grid."""
        if self.mode == "numbers" and self.preset_combo.currentText() != CUSTOM:
            self.current_preset = None
            self._set_quietly(self.preset_combo, CUSTOM)

    def _on_grid_size_changed(self, _value: int) -> None:
        rows, cols = self.rows_spin.value(), self.cols_spin.value()
        c, h, w = self.x.shape
        grown = np.zeros((c, rows, cols))
        grown[:, : min(h, rows), : min(w, cols)] = self.x[:, : min(h, rows), : min(w, cols)]
        self.x = grown
        self._became_custom()
        self.schedule_recompute()

    def _on_colour_changed(self, index: int) -> None:
        channels = 1 if index == 0 else 3
        if self.mode == "image" and self.image_source:
            self._set_image(self._image_array, self.image_source)
        else:
            grey = self.x.mean(axis=0, keepdims=True)
            self.x = np.repeat(grey, channels, axis=0) if channels == 3 else grey
        if self.w.shape[1] != channels:
            # A filter needs one slice per channel: copy (or average) the existing slices.
            mean = self.w.mean(axis=1, keepdims=True)
            self.w = np.repeat(mean, channels, axis=1) if channels == 3 else mean
        self._became_custom()
        self.schedule_recompute()

    def _resize_filters(self, f: int) -> None:
        """Give every filter size F, keeping the centre of what was there (new border weights are 0)."""
        k, c, old, _ = self.w.shape
        resized = np.zeros((k, c, f, f))
        keep = min(f, old)
        src0, dst0 = (old - keep) // 2, (f - keep) // 2
        resized[:, :, dst0:dst0 + keep, dst0:dst0 + keep] = self.w[:, :, src0:src0 + keep, src0:src0 + keep]
        self.w = resized

    def _on_kernel_size_changed(self, f: int) -> None:
        self._resize_filters(f)
        self._became_custom()
        self.schedule_recompute()

    def _on_filters_changed(self, k: int) -> None:
        old = self.w.shape[0]
        if k > old:
            extra = np.stack([np.broadcast_to(conv.make_kernel("random", self.w.shape[2], seed=i),
                                              self.w.shape[1:]) for i in range(old, k)])
            self.w = np.concatenate([self.w, extra])
            self.bias = np.concatenate([self.bias, np.zeros(k - old)])
        else:
            self.w, self.bias = self.w[:k].copy(), self.bias[:k].copy()
        self.edit_filter_spin.setMaximum(k)
        self._became_custom()
        self.schedule_recompute()

    def _on_bias_changed(self, value: float) -> None:
        self.bias[self.edit_filter_spin.value() - 1] = value
        self._became_custom()
        self.schedule_recompute()

    def apply_kernel_preset(self) -> None:
        name = self.kernel_combo.currentText()
        kernel = conv.make_kernel(name, self.kernel_size_spin.value(),
                                  seed=int(np.random.default_rng().integers(1 << 30)))
        k = self.edit_filter_spin.value() - 1
        f = kernel.shape[0]
        if f != self.w.shape[2]:  # the edge kernels are 3 x 3 by definition
            self._set_quietly(self.kernel_size_spin, f)
            self._resize_filters(f)
        self.w[k] = kernel[None]
        self._became_custom()
        self.schedule_recompute()

    def normalise_filter(self) -> None:
        k = self.edit_filter_spin.value() - 1
        self.w[k] = conv.normalise(self.w[k])
        self._became_custom()
        self.schedule_recompute()

    def same_padding(self) -> None:
        f, d = self.kernel_size_spin.value(), self.dilation_spin.value()
        span = d * (f - 1) + 1
        if span % 2 == 0:
            self.note_label.setText(f"An even kernel span ({span}) cannot be centred: no P keeps the size exactly.")
        self.padding_spin.setValue((span - 1) // 2)
        self.stride_spin.setValue(1)

    # ------------------------------------------------------------------ images
    def load_sample(self) -> None:
        name = self.sample_combo.currentText()
        self._set_image(samples.sample(name), f"sample '{name}' ({samples.SOURCE_NOTE})")

    def open_image(self, path: str | Path) -> bool:
        image = self.read_image(path, self.note_label)
        if image is None:
            return False
        self._set_image(image, Path(path).name)
        return True

    def _set_image(self, image: np.ndarray, source: str) -> None:
        note = ""
        h, w = image.shape[:2]
        if max(h, w) > MAX_IMAGE_SIDE:
            step = int(np.ceil(max(h, w) / MAX_IMAGE_SIDE))
            image = image[::step, ::step]
            note = f" (scaled from {w} x {h} to {image.shape[1]} x {image.shape[0]} to stay interactive)"
        self._image_array = image
        self.image_source = source + note
        self._loading = True
        if self.mode != "image":
            self.mode = "image"
            self._set_quietly(self.mode_combo, 1)
            self.views.setCurrentIndex(1)
            self._update_mode_controls()
        rgb = self.colour_combo.currentIndex() == 1
        if image.ndim == 2 and rgb:
            arr = np.repeat(image[None].astype(np.float64), 3, axis=0)
        elif image.ndim == 3 and not rgb:
            arr = (image.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[None]
        else:
            arr = image.astype(np.float64)[None] if image.ndim == 2 else np.transpose(image, (2, 0, 1)).astype(float)
        self.x = arr
        channels = arr.shape[0]
        if self.w.shape[1] != channels:
            mean = self.w.mean(axis=1, keepdims=True)
            self.w = np.repeat(mean, channels, axis=1) if channels == 3 else mean
        self.current_preset = None
        self._set_quietly(self.preset_combo, CUSTOM)
        self.selected = (0, 0, 0)
        self._loading = False
        self.schedule_recompute()

    # ------------------------------------------------------------------ computing
    @Slot()
    def recompute(self) -> None:
        c, h, w = self.x.shape
        k, _, f, _ = self.w.shape
        s = self.settings_now()
        report = conv.size_report(h, w, c, k, f, s["padding"], s["stride"], s["dilation"])
        # Images are computed in float32 (4x faster); the lecture's small grids in exact float64.
        dtype = np.float32 if self.mode == "image" else np.float64
        x = self.x.astype(dtype, copy=False)
        try:
            padded = conv.pad(x, s["padding"], s["padding_mode"])
        except ValueError as exc:
            self.result = ConvResult(report, error=str(exc))
            self._show_result()
            return
        output = pooled = None
        pool_error = error = ""
        if report.ok:
            try:
                output = conv.conv2d(x, self.w, self.bias, s["stride"], s["padding"], s["dilation"],
                                     s["padding_mode"], dtype=dtype)
            except ValueError as exc:
                error = str(exc)
            if output is not None and self.relu_check.isChecked():
                output = np.maximum(output, 0.0)
            mode = self.pool_combo.currentText()
            if output is not None and mode != "none":
                try:
                    pooled = conv.pool2d(output, self.pool_size_spin.value(), self.pool_stride_spin.value(), mode)
                except ValueError as exc:
                    pool_error = f"Pooling: {exc}"
        else:
            error = report.error
        preset = self.current_preset
        if preset is not None and preset.pool is not None:
            # The pooling example pools the input grid itself, as the lecture does.
            output = self.x.copy()
            try:
                pooled = conv.pool2d(self.x, self.pool_size_spin.value(), self.pool_stride_spin.value(),
                                     self.pool_combo.currentText() if self.pool_combo.currentText() != "none"
                                     else "max")
            except ValueError as exc:
                pool_error = f"Pooling: {exc}"
        self.result = ConvResult(report, padded, output, pooled, pool_error, error)
        k_sel, i, j = self.selected
        if output is not None and not (k_sel < output.shape[0] and i < output.shape[1] and j < output.shape[2]):
            self.selected = (0, 0, 0)
        self._show_result()

    # ------------------------------------------------------------------ showing
    def _show_result(self) -> None:
        self._show_formulas()
        if self.mode == "numbers":
            self._show_numbers()
        else:
            self._show_images()
        self._show_kernel_grids()
        self._explain_selected()
        pool_example = self.current_preset is not None and self.current_preset.pool is not None
        self.filter_box.setTitle("Filter (not used: this example pools the input itself)" if pool_example
                                 else "Filter being edited (double-click a cell to type)")

    def _show_formulas(self) -> None:
        r = self.result
        rep = r.report
        c, h, w = self.x.shape
        head = f"Input W1 x H1 x D1 = {w} x {h} x {c};  K = {rep.k} filters of F x F = {rep.f} x {rep.f}"
        if rep.ok and not r.error:
            body = "\n".join(rep.lines)
            lines = [head, body, f"Output volume W2 x H2 x D2 = {rep.w2} x {rep.h2} x {rep.k}"]
            if r.pooled is not None:
                size, stride = self.pool_size_spin.value(), self.pool_stride_spin.value()
                n = r.output.shape[2]
                lines.append(f"Pooling {self.pool_combo.currentText()} {size} x {size}, stride {stride}: "
                             f"({n} - {size})/{stride} + 1 = {r.pooled.shape[2]} wide; pooled volume "
                             f"{r.pooled.shape[2]} x {r.pooled.shape[1]} x {r.pooled.shape[0]} (no parameters)")
            if self.current_preset is not None and self.current_preset.pool is not None:
                lines = [lines[0].split(";")[0] + "  (pooled directly: no filter)", lines[-1]]
            text = "\n".join(lines)
            if r.pool_error:
                text += f"\n{r.pool_error}"
            self.formula_label.setText(text)
            self.formula_label.setStyleSheet("")
        else:
            self.formula_label.setText(f"{head}\n\nNo output: {r.error or rep.error}")
            self.formula_label.setStyleSheet("color: #b00020;")
        notes = []
        if self.current_preset is not None:
            notes += presets.discrepancies(self.current_preset, r.output if self.current_preset.pool is None
                                           else None, r.pooled)
            if self.current_preset.lecture_note:
                notes.append(f"Note: {self.current_preset.lecture_note}")
        if self.preset_combo.currentText() == PARAMS_PRESET:
            notes.append(presets.PARAMETER_EXAMPLE.note())
        if self.mode == "image":
            notes.append(f"Image: {self.image_source}")
        self.note_label.setText("\n".join(notes))

    def _ensure_grids(self, key: str, grids: list[NumberGrid], count: int, title: str) -> None:
        _, row = self.numbers_rows[key]
        while len(grids) > count:
            _discard(row, grids.pop().parentWidget())
        while len(grids) < count:
            grid = NumberGrid(f"{title} {len(grids) + 1}")
            row.addWidget(_captioned(grid), 0, Qt.AlignmentFlag.AlignTop)
            grids.append(grid)
            if key == "input":
                grid.edited.connect(lambda r, c, v, ch=len(grids) - 1: self._on_input_edited(ch, r, c, v))
            elif key == "output":
                grid.cellClicked.connect(lambda r, c, kk=len(grids) - 1: self.select_output(kk, r, c))

    def _show_numbers(self) -> None:
        r = self.result
        c = self.x.shape[0]
        names = CHANNEL_NAMES.get(c, tuple(str(i) for i in range(c)))
        self._ensure_grids("input", self._input_grids, c, "Input channel")
        ph = pw = self.padding_spin.value()
        padded = r.padded if r.padded is not None else self.x
        for ch, grid in enumerate(self._input_grids):
            grid.export_title = f"Input ({names[ch]})"
            grid.set_array(padded[ch], (ph, pw, self.x.shape[1], self.x.shape[2]) if r.padded is not None
                           else (0, 0, *self.x.shape[1:]))
        out = r.output
        count = 0 if out is None else out.shape[0]
        self._ensure_grids("output", self._output_grids, count, "Output map")
        label, _ = self.numbers_rows["output"]
        pool_example = self.current_preset is not None and self.current_preset.pool is not None
        label.setVisible(count > 0 and not pool_example)
        for k, grid in enumerate(self._output_grids):
            grid.export_title = f"Output map {k + 1}"
            grid.set_array(out[k])
            grid.parentWidget().setVisible(not pool_example)
        pooled = r.pooled
        pcount = 0 if pooled is None else pooled.shape[0]
        self._ensure_grids("pooled", self._pooled_grids, pcount, "Pooled map")
        self.numbers_rows["pooled"][0].setVisible(pcount > 0)
        for k, grid in enumerate(self._pooled_grids):
            grid.export_title = f"Pooled map {k + 1}"
            grid.set_array(pooled[k])

    def _show_images(self) -> None:
        r = self.result
        if r.padded is not None:
            p = self.padding_spin.value()
            self.input_view.set_padded(r.padded, (p, p))
        if r.output is not None:
            self.output_plot.set_stack(r.output, columns=min(4, r.output.shape[0]))
            self.output_plot.setTitle(f"Feature maps: {r.output.shape[0]} x {r.output.shape[1]} x "
                                      f"{r.output.shape[2]}")
        else:
            self.output_plot.set_image(np.full((1, 1), np.nan))
            self.output_plot.setTitle("Feature maps: none (see the formula panel)")
        if r.pooled is not None:
            self.pooled_plot.show()
            self.pooled_plot.set_stack(r.pooled, columns=min(4, r.pooled.shape[0]))
            self.pooled_plot.setTitle(f"Pooled: {r.pooled.shape[0]} x {r.pooled.shape[1]} x {r.pooled.shape[2]}")
        else:
            self.pooled_plot.hide()

    def _show_kernel_grids(self) -> None:
        k = min(self.edit_filter_spin.value(), self.w.shape[0]) - 1
        c = self.w.shape[1]
        names = CHANNEL_NAMES.get(c, tuple(str(i) for i in range(c)))
        while len(self._kernel_grids) > c:
            _discard(self.kernel_row, self._kernel_grids.pop().parentWidget())
        while len(self._kernel_grids) < c:
            grid = NumberGrid("Filter slice")
            ch = len(self._kernel_grids)
            grid.edited.connect(lambda r, q, v, ch=ch: self._on_kernel_edited(ch, r, q, v))
            self.kernel_row.addWidget(_captioned(grid), 0, Qt.AlignmentFlag.AlignTop)
            self._kernel_grids.append(grid)
        f = self.w.shape[2]
        for ch, grid in enumerate(self._kernel_grids):
            grid.export_title = f"Filter {k + 1} slice ({names[ch]})"
            grid.set_array(self.w[k, ch], (0, 0, f, f))
        self._set_quietly(self.bias_spin, float(self.bias[k]))
        self.bias_label.setText(f"filter {k + 1} of {self.w.shape[0]}: {c} slice(s) of {f} x {f}, "
                                f"bias {format_number(self.bias[k])}")

    # ------------------------------------------------------------------ edits
    def _on_input_edited(self, channel: int, row: int, col: int, value: float) -> None:
        if 0 <= row < self.x.shape[1] and 0 <= col < self.x.shape[2]:
            self.x[channel, row, col] = value
            self._became_custom()
            self.schedule_recompute()

    def _on_kernel_edited(self, channel: int, row: int, col: int, value: float) -> None:
        k = self.edit_filter_spin.value() - 1
        self.w[k, channel, row, col] = value
        self._became_custom()
        self.schedule_recompute()

    # ------------------------------------------------------------------ sliding window
    def select_output(self, k: int, i: int, j: int) -> None:
        """Explain output (i, j) of filter k and mark its receptive field."""
        self.selected = (k, i, j)
        self._explain_selected()

    def _output_shape(self) -> tuple[int, int, int] | None:
        r = self.result
        if not r.report.ok or r.error:
            return None
        return self.w.shape[0], r.report.h2, r.report.w2

    def _explain_selected(self) -> None:
        shape = self._output_shape()
        pool_example = self.current_preset is not None and self.current_preset.pool is not None
        if shape is None or pool_example:
            self.position_label.setText("")
            self.explain_text.setPlainText(
                "Pooling takes the largest (or mean, or smallest) value of each window; there is no weight "
                "to multiply." if pool_example else "Nothing to explain: no output with these settings.")
            self.input_view.window_rect.hide()
            return
        k, i, j = self.selected
        s = self.settings_now()
        e = conv.explain(self.x, self.w, self.bias, i, j, s["stride"], s["padding"], s["dilation"],
                         s["padding_mode"], filter_index=k)
        names = CHANNEL_NAMES.get(self.x.shape[0])
        lines = [f"Filter {k + 1}, output row {i}, column {j}: window at rows {e.window[0]}..."
                 f"{e.window[0] + e.window[2] - 1}, columns {e.window[1]}...{e.window[1] + e.window[3] - 1} "
                 "of the padded input", ""]
        if self.x.shape[0] * len(e.terms[0]) <= 400:
            lines += e.lines(names)
        else:  # a 11x11x3 window would be a wall of numbers: sums only
            lines += [f"{n}: sum of {len(t)} products = {format_number(v)}"
                      for n, t, v in zip(names or [], e.terms, e.channel_sums)]
            lines.append(f"+ bias {format_number(e.bias)} = {format_number(e.total)}")
        if self.relu_check.isChecked() and e.total < 0:
            lines.append(f"ReLU: max(0, {format_number(e.total)}) = 0")
        self.explain_text.setPlainText("\n".join(lines))
        self.position_label.setText(f"filter {k + 1}, ({i}, {j})")
        cells = sorted({(t.row, t.col) for t in e.terms[0]})
        if self.mode == "numbers":
            for grid in self._input_grids:
                grid.highlight(cells)
            for kk, grid in enumerate(self._output_grids):
                grid.highlight([], selected=(i, j) if kk == k else None)
        else:
            self.input_view.show_window(*e.window)

    @Slot()
    def step_window(self) -> None:
        shape = self._output_shape()
        if shape is None:
            self._play_timer.stop()
            self.play_button.setText("Play")
            return
        kk, hh, ww = shape
        k, i, j = self.selected
        j += 1
        if j >= ww:
            j, i = 0, i + 1
        if i >= hh:
            i, k = 0, (k + 1) % kk
        self.select_output(k, i, j)

    @Slot()
    def toggle_play(self) -> None:
        if self._play_timer.isActive():
            self._play_timer.stop()
            self.play_button.setText("Play")
        else:
            self._play_timer.start()
            self.play_button.setText("Pause")

    def _on_output_plot_clicked(self, event) -> None:
        r = self.result
        if r.output is None:
            return
        hit = self.output_plot.value_at(event.scenePos())
        if hit is None:
            return
        row, col, _ = hit
        k_total, h2, w2 = r.output.shape
        columns = min(4, k_total)
        tile_r, i = divmod(row, h2 + 1)
        tile_c, j = divmod(col, w2 + 1)
        k = tile_r * columns + tile_c
        if k < k_total and i < h2 and j < w2:
            self.select_output(k, i, j)

    # ------------------------------------------------------------------ 1-D smoothing
    def smoothing_reset(self) -> None:
        self.readings = presets.SMOOTHING.readings.copy()  # (N,)
        self.weights = presets.SMOOTHING.weights.copy()  # (A,)
        self._update_smoothing()

    def _on_reading_edited(self, _row: int, col: int, value: float) -> None:
        self.readings[col] = value
        self._update_smoothing()

    def _on_weight_edited(self, _row: int, col: int, value: float) -> None:
        self.weights[col] = value
        self._update_smoothing()

    def _add_reading(self) -> None:
        self.readings = np.append(self.readings, self.readings[-1])
        self._update_smoothing()

    def _remove_reading(self) -> None:
        if len(self.readings) > len(self.weights):
            self.readings = self.readings[:-1]
            self._update_smoothing()

    def _update_smoothing(self) -> None:
        x, w = self.readings, self.weights
        self.readings_grid.set_array(x[None], (0, 0, 1, len(x)))
        self.weights_grid.set_array(w[None], (0, 0, 1, len(w)))
        a = len(w) - 1
        try:
            s = conv.smooth1d(x, w)
        except ValueError as exc:
            self.smoothing_explain.setText(str(exc))
            return
        self.smoothed_grid.set_array(s[None])
        self.smoothed_grid.setHorizontalHeaderLabels([f"s_{a + n}" for n in range(len(s))])
        self.readings_grid.setHorizontalHeaderLabels([f"x_{n}" for n in range(len(x))])
        self.weights_grid.setHorizontalHeaderLabels([f"w_{n - a}" for n in range(len(w))])
        spin = self.smoothing_t_spin
        spin.blockSignals(True)
        spin.setRange(a, len(x) - 1)
        spin.blockSignals(False)
        t = spin.value()
        terms = conv.smooth1d_terms(x, w, t)
        products = " + ".join(f"{format_number(v)}*{format_number(wt)}" for v, wt in terms)
        self.smoothing_explain.setText(f"s_{t} = x_{t}*w_0 + x_{t - 1}*w_-1 + ... + x_{t - a}*w_-{a}\n"
                                       f"    = {products}\n    = {s[t - a]:.4f}")
        lecture = (np.array_equal(x, presets.SMOOTHING.readings) and np.array_equal(w, presets.SMOOTHING.weights))
        self.smoothing_note.setText(
            "Where the lecture's table differs from the exact sums: " + "; ".join(presets.smoothing_discrepancies())
            if lecture else "")
        self.smoothing_plot.set_curve("readings x_t", np.arange(len(x)), x, color="#1f77b4", symbol="o")
        self.smoothing_plot.set_curve("smoothed s_t", np.arange(a, len(x)), s, color="#d62728", symbol="s")

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        self._play_timer.stop()
        return True


if __name__ == "__main__":
    raise SystemExit(run_standalone(ConvTab))
