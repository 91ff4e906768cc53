"""LSTM / GRU gates: the gates of real cells step by step, the vanishing gradient they fix,
and a vanilla RNN, a GRU and an LSTM trained side by side on a task that needs memory."""

from __future__ import annotations

import html
import os

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import gates
from engine.memory_tasks import (
    DEFAULT_TEXT,
    REMEMBER,
    TASK_KINDS,
    TASK_TITLES,
    MemoryTask,
)
from gui import settings
from gui.tabs.base import StudioTab, TabContext, run_standalone
from gui.widgets.cell_diagram import CellDiagram
from gui.widgets.gate_heatmap import GateHeatmap, GradientFlowPlot, time_ticks
from gui.widgets.panels import control_column
from gui.widgets.plots import BarPlot, CurvePlot
from gui.widgets.run_buttons import follow_runner_state, make_run_buttons
from gui.workers import TaskRunner

MODEL_COLOURS = {"rnn": "#d62728", "gru": "#2ca02c", "lstm": "#1f77b4"}
SHORT_NAMES = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
# (field, title, colour map, levels: (lo, hi) for gates, None for signed states scaled to their largest value)
LSTM_MAPS = (
    ("i", "LSTM i: input gate (write)", "viridis", (0.0, 1.0)),
    ("f", "LSTM f: forget gate (keep)", "viridis", (0.0, 1.0)),
    ("g", "LSTM g: candidate", "CET-D1", (-1.0, 1.0)),
    ("o", "LSTM o: output gate (read)", "viridis", (0.0, 1.0)),
    ("c", "LSTM c: cell state (memory)", "CET-D1", None),
    ("h", "LSTM h: hidden state", "CET-D1", (-1.0, 1.0)),
)
GRU_MAPS = (
    ("z", "GRU z: update gate (keep)", "viridis", (0.0, 1.0)),
    ("r", "GRU r: reset gate (read old)", "viridis", (0.0, 1.0)),
    ("n", "GRU n: candidate", "CET-D1", (-1.0, 1.0)),
    ("h", "GRU h: hidden state", "CET-D1", (-1.0, 1.0)),
)
DEFAULTS = gates.SideBySideConfig()  # the measured defaults: delay 80, where only the gated cells succeed


class GatesTab(StudioTab):
    title = "LSTM / GRU gates"

    def __init__(self, context: TabContext | None = None, parent: QWidget | None = None):
        super().__init__(context, parent)
        kind = settings.read("gates/task", "first_symbol")
        self.task = self._make_task(kind if kind in TASK_KINDS else "first_symbol",
                                    int(settings.read("gates/delay", DEFAULTS.task.delay)),
                                    settings.read("gates/text", DEFAULT_TEXT)) or MemoryTask()
        self.hidden_size = int(settings.read("gates/hidden", DEFAULTS.hidden_size))
        self.example_seed = 0
        self.seed = int(settings.read("gates/seed", DEFAULTS.seed))
        self.models = gates.build_models(self.task, self.hidden_size, self.seed)
        self.trained_steps = 0  # 0: the models are untrained
        self.example = self.task.example(self.example_seed)
        self.lstm_trace: gates.LSTMTrace | None = None
        self.gru_trace: gates.GRUTrace | None = None
        self.display_labels: tuple[str, ...] = ()  # the inputs as the time axes show them
        self.flow: gates.GradientFlow | None = None
        self.step = 0
        self.unit = 0
        self.diagram_kind = "lstm"
        self.runner = TaskRunner("Training RNN, GRU and LSTM", self)
        self._history = self._empty_history()
        self._curves_dirty = False
        self._loss_top = 0.0  # the loss plot's fixed upper limit during a run
        self._build_ui()
        self._connect()
        self._curve_timer = QTimer(self, interval=100)  # curves at most 10 times a second
        self._curve_timer.timeout.connect(self._redraw_curves)
        self._curve_timer.start()
        self.refresh_views()
        QTimer.singleShot(0, self.mark_ready)

    # --- construction ------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)
        panel = self._build_controls()
        controls = control_column(panel, min_width=panel.minimumSizeHint().width() + 16)
        controls.setFrameShape(QScrollArea.Shape.NoFrame)
        splitter.addWidget(controls)
        self.views = QTabWidget()
        self.views.addTab(self._build_gates_page(), "Gates over time")
        self.views.addTab(self._build_training_page(), "Training side by side")
        self.views.addTab(self._build_flow_page(), "Gradient flow")
        splitter.addWidget(self.views)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 1170])

    def _build_controls(self) -> QWidget:
        panel = QWidget()
        panel.setMinimumWidth(290)
        panel.setMaximumWidth(420)
        v = QVBoxLayout(panel)
        v.setContentsMargins(0, 0, 0, 0)
        task_box = QGroupBox("Task that needs memory")
        form = QFormLayout(task_box)
        self.task_combo = QComboBox()
        for kind in TASK_KINDS:
            self.task_combo.addItem(TASK_TITLES[kind], kind)
        self.task_combo.setCurrentIndex(TASK_KINDS.index(self.task.kind))
        self.task_combo.setToolTip("Remember the first symbol: a letter, distractors, then '?': name the letter.\n"
                                   "Adding problem: add the two marked numbers of a long sequence.\n"
                                   "Next character: predict each next character of your text.")
        self.delay_spin = QSpinBox(minimum=0, maximum=400, value=self.task.delay)
        self.delay_spin.setToolTip("How many steps the models must carry the information across. "
                                   "Around 80 the vanilla RNN stays at chance while GRU and LSTM succeed.")
        self.hidden_spin = QSpinBox(minimum=2, maximum=256, value=self.hidden_size)
        self.hidden_spin.setToolTip("Units in each model's hidden state (rows of the heatmaps)")
        self.text_edit = QLineEdit(self.task.text)
        self.text_edit.setToolTip("The text of the next-character task (press Enter to use it)")
        self.text_edit.setEnabled(self.task.kind == "text")
        form.addRow("Task", self.task_combo)
        form.addRow("Delay N", self.delay_spin)
        form.addRow("Hidden size", self.hidden_spin)
        form.addRow("Text", self.text_edit)
        self.task_label = QLabel()
        self.task_label.setWordWrap(True)
        form.addRow(self.task_label)
        v.addWidget(task_box)

        train_box = QGroupBox("Train RNN, GRU and LSTM on the same batches")
        tv = QVBoxLayout(train_box)
        tform = QFormLayout()
        self.steps_spin = QSpinBox(minimum=10, maximum=50000, singleStep=100,
                                   value=int(settings.read("gates/steps", DEFAULTS.steps)))
        self.steps_spin.setToolTip("Gradient steps; every model sees the same batch of 32 sequences at each step")
        self.lr_spin = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1.0, singleStep=0.001,
                                      value=float(settings.read("gates/lr", DEFAULTS.lr)))
        self.lr_spin.setToolTip("Adam's learning rate (gradients are clipped to norm 1)")
        self.seed_spin = QSpinBox(minimum=0, maximum=9999, value=self.seed)
        self.seed_spin.setToolTip("Starting weights and batches. Training is partly luck: with another seed a "
                                  "cell may need more steps, or stall on part of the task.")
        tform.addRow("Steps", self.steps_spin)
        tform.addRow("Learning rate", self.lr_spin)
        tform.addRow("Seed", self.seed_spin)
        tv.addLayout(tform)
        buttons = QHBoxLayout()
        self.train_button, self.pause_button, self.stop_button = make_run_buttons(
            "Train the three models side by side in the background (Ctrl+T)",
            "Stop; the models keep their untrained weights")
        for b in (self.train_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        tv.addLayout(buttons)
        more = QHBoxLayout()
        self.example_button = QPushButton("Another sequence")
        self.example_button.setToolTip("Inspect a different input sequence of the same task")
        self.reset_button = QPushButton("Untrained cells")
        self.reset_button.setToolTip("Go back to freshly initialised models")
        more.addWidget(self.example_button)
        more.addWidget(self.reset_button)
        tv.addLayout(more)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A fixed height: the text changes ten times a second and must not re-lay out the plots.
        self.status_label.setFixedHeight(self.status_label.fontMetrics().lineSpacing() * 5 + 4)
        tv.addWidget(self.status_label)
        v.addWidget(train_box)

        count_box = QGroupBox("Parameters")
        cv = QVBoxLayout(count_box)
        self.count_plot = BarPlot("Parameters per model", [SHORT_NAMES[k] for k in gates.MODEL_KINDS],
                                  "parameters", y_range=None)
        self.count_plot.setMinimumHeight(150)
        self.count_plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        cv.addWidget(self.count_plot, 1)
        self.count_label = QLabel()
        self.count_label.setWordWrap(True)
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        cv.addWidget(self.count_label)
        v.addWidget(count_box, 1)
        return panel

    def _build_gates_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(4, 4, 4, 4)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setFixedHeight(self.summary_label.fontMetrics().lineSpacing() * 2 + 6)
        v.addWidget(self.summary_label)
        split = QSplitter(Qt.Orientation.Vertical)
        grid_widget = QWidget()
        grid = QGridLayout(grid_widget)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        self.lstm_maps: dict[str, GateHeatmap] = {}
        self.gru_maps: dict[str, GateHeatmap] = {}
        for index, (name, title, cmap, levels) in enumerate(LSTM_MAPS):
            plot = GateHeatmap(title, cmap, levels)
            self.lstm_maps[name] = plot
            grid.addWidget(plot, index // 2, index % 2)
        for index, (name, title, cmap, levels) in enumerate(GRU_MAPS):
            plot = GateHeatmap(title, cmap, levels)
            self.gru_maps[name] = plot
            grid.addWidget(plot, index // 2, 2 + index % 2)
        legend = QLabel("Rows: hidden units. Columns: time steps, labelled with the input read at that step "
                        "(step:input where they are thinned out). Click any map to inspect that step; "
                        "the red line is the step shown below. Gates run from 0 (closed, dark) to 1 "
                        "(open, yellow); states are blue below zero and red above. The diagram uses the same colours.")
        legend.setWordWrap(True)
        grid.addWidget(legend, 2, 2, 1, 2)
        split.addWidget(grid_widget)

        lower = QWidget()
        lv = QVBoxLayout(lower)
        lv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Step"))
        self.step_slider = QSlider(Qt.Orientation.Horizontal)
        self.step_slider.setToolTip("The time step shown in the cell diagram (the red cursor); "
                                    "arrow keys move it one step")
        self.step_slider.setPageStep(5)
        row.addWidget(self.step_slider, 1)
        self.step_label = QLabel()
        self.step_label.setMinimumWidth(self.step_label.fontMetrics().horizontalAdvance("step 000 / 000 'xxxx'"))
        row.addWidget(self.step_label)
        row.addWidget(QLabel("Unit"))
        self.unit_spin = QSpinBox(minimum=0, maximum=self.hidden_size - 1)
        self.unit_spin.setToolTip("The hidden unit whose values the diagram shows (or click a map's row)")
        row.addWidget(self.unit_spin)
        row.addWidget(QLabel("Cell"))
        self.cell_combo = QComboBox()
        self.cell_combo.addItem("LSTM", "lstm")
        self.cell_combo.addItem("GRU", "gru")
        self.cell_combo.setToolTip("Which cell the diagram draws (clicking a map picks its cell)")
        row.addWidget(self.cell_combo)
        lv.addLayout(row)
        diagram_row = QSplitter(Qt.Orientation.Horizontal)
        self.diagram = CellDiagram()
        diagram_row.addWidget(self.diagram)
        self.explain_label = QLabel()
        self.explain_label.setWordWrap(True)
        self.explain_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.explain_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explain_label.setMinimumWidth(260)
        diagram_row.addWidget(self.explain_label)
        diagram_row.setStretchFactor(0, 3)
        diagram_row.setStretchFactor(1, 2)
        diagram_row.setSizes([700, 430])
        lv.addWidget(diagram_row, 1)
        split.addWidget(lower)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 4)
        split.setSizes([470, 400])
        v.addWidget(split, 1)
        return page

    def _build_training_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        self.loss_plot = CurvePlot("Training loss (mean of the last 25 batches)", "step", "loss")
        self.acc_plot = CurvePlot("Accuracy (mean of the last 25 batches)", "step", "accuracy (%)")
        self.acc_plot.getPlotItem().setYRange(0, 100, padding=0.02)
        self.chance_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#888888", width=1, style=Qt.PenStyle.DashLine),
                                           label="chance", labelOpts={"position": 0.05, "color": "#666666"})
        self.acc_plot.addItem(self.chance_line, ignoreBounds=True)
        for kind in gates.MODEL_KINDS:  # the curves and their legend entries exist before the first record
            self.loss_plot.set_curve(gates.MODEL_TITLES[kind], [], [], color=MODEL_COLOURS[kind])
            self.acc_plot.set_curve(gates.MODEL_TITLES[kind], [], [], color=MODEL_COLOURS[kind])
        for plot in (self.loss_plot, self.acc_plot):
            plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            v.addWidget(plot, 1)
        self.result_label = QLabel("Press Train to train the three models on the task at the left.")
        self.result_label.setWordWrap(True)
        v.addWidget(self.result_label)
        return page

    def _build_flow_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        self.flow_plot = GradientFlowPlot("Gradient reaching each step: ||dL_T / dh_k|| (log scale)")
        for kind in gates.MODEL_KINDS:
            self.flow_plot.set_norms(gates.MODEL_TITLES[kind], np.ones(1), MODEL_COLOURS[kind])
        v.addWidget(self.flow_plot, 1)
        self.flow_label = QLabel()
        self.flow_label.setWordWrap(True)
        v.addWidget(self.flow_label)
        return page

    def _connect(self) -> None:
        self.task_combo.currentIndexChanged.connect(lambda _i: self._on_task_changed())
        self.delay_spin.valueChanged.connect(lambda _v: self._on_task_changed())
        self.hidden_spin.valueChanged.connect(lambda _v: self._on_task_changed())
        self.seed_spin.valueChanged.connect(lambda _v: self._on_task_changed())
        self.text_edit.editingFinished.connect(self._on_text_edited)
        self.train_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.runner.toggle_pause)
        self.stop_button.clicked.connect(self.runner.stop)
        self.example_button.clicked.connect(self.next_example)
        self.reset_button.clicked.connect(self.reset_models)
        self.step_slider.valueChanged.connect(lambda value: self.set_step(value))
        self.unit_spin.valueChanged.connect(lambda value: self.set_step(self.step, unit=value))
        self.cell_combo.currentIndexChanged.connect(
            lambda _i: self.set_step(self.step, kind=self.cell_combo.currentData()))
        for kind, maps in (("lstm", self.lstm_maps), ("gru", self.gru_maps)):
            for plot in maps.values():
                plot.step_clicked.connect(lambda step, unit, kind=kind: self.set_step(step, unit, kind))
        self.runner.record.connect(self._on_record)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        self.runner.state_changed.connect(self._on_state)
        shortcut = QShortcut(QKeySequence("Ctrl+T"), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.start_training)

    # --- task and models -------------------------------------------------------------------------------
    def _make_task(self, kind: str, delay: int, text: str) -> MemoryTask | None:
        try:
            return MemoryTask(kind, delay, text or DEFAULT_TEXT)
        except ValueError as exc:
            if hasattr(self, "status_label"):
                self._set_status(str(exc), error=True)
            return None

    @Slot()
    def _on_text_edited(self) -> None:
        if self.task.kind == "text" and self.text_edit.text() != self.task.text:
            self._on_task_changed()

    def _on_task_changed(self) -> None:
        kind = self.task_combo.currentData()
        self.text_edit.setEnabled(kind == "text")
        task = self._make_task(kind, self.delay_spin.value(), self.text_edit.text())
        if task is None:
            return
        self.task = task
        self.hidden_size = self.hidden_spin.value()
        for key, value in (("gates/task", kind), ("gates/delay", task.delay), ("gates/hidden", self.hidden_size),
                           ("gates/text", task.text), ("gates/seed", self.seed_spin.value())):
            settings.write(key, value)
        self.example_seed = 0
        self.reset_models()

    @Slot()
    def reset_models(self) -> None:
        """Fresh, untrained models for the current task (the training curves stay for comparison)."""
        if self.runner.is_busy():
            return
        self.seed = self.seed_spin.value()
        self.models = gates.build_models(self.task, self.hidden_size, self.seed)
        self.trained_steps = 0
        self.example = self.task.example(self.example_seed)
        self._set_status("Untrained cells. Press Train to train all three on this task.")
        self.refresh_views()

    @Slot()
    def next_example(self) -> None:
        self.example_seed += 1
        self.example = self.task.example(self.example_seed)
        self.refresh_views()

    # --- views ----------------------------------------------------------------------------------------
    def refresh_views(self) -> None:
        """Recompute traces, gradient flow and counts for the current models and example sequence."""
        # A space would leave an empty tick: show it as the visible space sign.
        labels = tuple("␣" if label == " " else label for label in self.example.step_labels[0])
        self.display_labels = labels
        length = len(labels)
        self.lstm_trace, self.gru_trace = gates.traces(self.models, self.example.inputs[0])
        for name, plot in self.lstm_maps.items():
            values = getattr(self.lstm_trace, name)
            plot.levels = self._levels(name, LSTM_MAPS, values)
            plot.set_data(values, labels)
        for name, plot in self.gru_maps.items():
            values = getattr(self.gru_trace, name)
            plot.levels = self._levels(name, GRU_MAPS, values)
            plot.set_data(values, labels)
        self.task_label.setText(self.task.describe())
        self.step_slider.blockSignals(True)
        self.step_slider.setRange(0, length - 1)
        self.step_slider.blockSignals(False)
        self.unit_spin.blockSignals(True)
        self.unit_spin.setMaximum(self.hidden_size - 1)
        self.unit_spin.blockSignals(False)
        self._show_summary()
        self._show_gradient_flow()
        self._show_counts()
        self.set_step(min(self.step, length - 1), min(self.unit, self.hidden_size - 1))

    @staticmethod
    def _levels(name: str, table, values: np.ndarray) -> tuple[float, float]:
        levels = next(entry[3] for entry in table if entry[0] == name)
        if levels is not None:
            return levels
        largest = max(1e-6, float(np.abs(values).max()))
        return -largest, largest

    def _show_summary(self) -> None:
        state = (f"trained for {self.trained_steps} steps" if self.trained_steps else "untrained (random weights)")
        answers = []
        for kind, model in self.models.items():
            out = gates.answer(model, self.example)
            if self.task.regression:
                answers.append(f"{SHORT_NAMES[kind]} {out[0]:.2f}")
            else:
                symbols = REMEMBER if self.task.kind == "first_symbol" else self.task.text_data.vocab.symbols
                answers.append(f"{SHORT_NAMES[kind]} '{symbols[int(np.argmax(out))]}' ({out.max() * 100:.0f} %)")
        if self.task.kind == "first_symbol":
            truth = f"answer '{REMEMBER[int(self.example.targets[0])]}'"
        elif self.task.regression:
            truth = f"answer {float(self.example.targets[0]):.2f}"
        else:
            truth = f"next character '{self.task.text_data.vocab.symbols[int(self.example.targets[0, -1])]}'"
        keep = gates.keep_gate_over_delay(self.lstm_trace, self.gru_trace)
        keep_text = ", ".join(f"{'LSTM f' if k == 'lstm' else 'GRU z'} {v:.2f}" for k, v in keep.items())
        self.summary_label.setText(
            f"<b>Cells {state}.</b> This sequence: {truth}; the models say {', '.join(answers)}. "
            f"Mean keep gate between the first and the last step: {keep_text} (1 = memory kept untouched).")

    def _show_gradient_flow(self) -> None:
        self.flow = gates.gradient_flow(self.models, self.example)
        for kind in self.flow.models:
            self.flow_plot.set_norms(gates.MODEL_TITLES[kind], self.flow.of(kind), MODEL_COLOURS[kind])
        self.flow_plot.getPlotItem().getAxis("bottom").setTicks(
            [[(t, label) for t, label in _sparse_ticks(self.display_labels)]])
        ratios = []
        for kind in self.flow.models:
            norms = self.flow.of(kind)
            ratio = norms[0] / norms[-1] if norms[-1] > 0 else 0.0
            ratios.append(f"{SHORT_NAMES[kind]} {ratio:.1e}")
        self.flow_label.setText(
            "How much the loss at the last step can still say about each earlier hidden state h_k: the gradient "
            "travels backwards through one step's Jacobian per step. In a vanilla RNN these factors are mostly "
            "below 1, so the signal shrinks geometrically and the first steps learn almost nothing (the vanishing "
            "gradient). The gated cells' additive memory path, held open by a keep gate near 1, lets it arrive. "
            f"Gradient at the first step relative to the last: {', '.join(ratios)}.")

    def _show_counts(self) -> None:
        counts = gates.parameter_counts(self.task.input_size, self.hidden_size, self.task.output_size)
        self.count_plot.set_values([c.total for c in counts])
        top = max(c.total for c in counts)
        self.count_plot.getPlotItem().setYRange(0, top * 1.1, padding=0)
        rows = "".join(f"<tr><td><b>{SHORT_NAMES[c.kind]}</b></td><td>{html.escape(c.formula)}</td></tr>"
                       f"<tr><td></td><td>= {html.escape(c.worked)}</td></tr>" for c in counts)
        self.count_label.setText(
            f"I = {self.task.input_size} inputs, H = {self.hidden_size} units, O = {self.task.output_size} outputs."
            f"<table cellspacing='2'>{rows}</table>"
            "Each block is a weight matrix on [x, h] plus torch's two bias vectors: the GRU has 3 (r, z, n), "
            "the LSTM 4 (i, f, g, o).")

    def set_step(self, step: int, unit: int | None = None, kind: str | None = None) -> None:
        """Show ``step`` everywhere: the cursor of every map, the slider, the diagram and the explanation."""
        length = self.example.length
        self.step = int(np.clip(step, 0, length - 1))
        if unit is not None:
            self.unit = int(np.clip(unit, 0, self.hidden_size - 1))
        if kind is not None:
            self.diagram_kind = kind
        for plot in (*self.lstm_maps.values(), *self.gru_maps.values()):
            plot.set_cursor(self.step)
        for widget, value in ((self.step_slider, self.step), (self.unit_spin, self.unit),
                              (self.cell_combo, ("lstm", "gru").index(self.diagram_kind))):
            widget.blockSignals(True)
            if widget is self.cell_combo:
                widget.setCurrentIndex(value)
            else:
                widget.setValue(value)
            widget.blockSignals(False)
        label = self.display_labels[self.step]
        self.step_label.setText(f"step {self.step} / {length - 1} '{label}'")
        if self.diagram_kind == "lstm":
            self.diagram.show_lstm(self.lstm_trace, self.step, self.unit, label)
        else:
            self.diagram.show_gru(self.gru_trace, self.step, self.unit, label)
        self.explain_label.setText(self._explanation(label))

    def _explanation(self, label: str) -> str:
        t, u = self.step, self.unit
        s = self.diagram.shown
        head = f"<b>Step {t}</b> reads '{html.escape(label)}'. Unit {u}:<br>"
        if self.diagram_kind == "lstm":
            tr = self.lstm_trace
            mean_f, mean_i, mean_o = (float(getattr(tr, k)[t].mean()) for k in ("f", "i", "o"))
            return head + (
                f"<p><b>Selective forget</b> (f = {s['f']:.2f}): the cell keeps {s['f'] * 100:.0f} % of its old "
                f"memory c(t-1) = {s['c_prev']:+.2f} and erases the rest. Over all units f averages {mean_f:.2f}.</p>"
                f"<p><b>Selective write</b> (i = {s['i']:.2f}): {s['i'] * 100:.0f} % of the candidate g = "
                f"{s['g']:+.2f} is added, so the memory becomes c(t) = {s['c']:+.2f}. Mean i: {mean_i:.2f}.</p>"
                f"<p><b>Selective read</b> (o = {s['o']:.2f}): {s['o'] * 100:.0f} % of tanh c(t) is shown to the "
                f"read-out and the next step as h(t) = {s['h']:+.2f}. Mean o: {mean_o:.2f}.</p>"
                "<p>Because c(t) = f·c(t-1) + i·g is a sum, not a squashed product, a forget gate near 1 with "
                "a write gate near 0 carries a value unchanged across many steps, and its gradient with it. "
                "A vanilla RNN rewrites its whole state at every step.</p>")
        tr = self.gru_trace
        mean_z, mean_r = float(tr.z[t].mean()), float(tr.r[t].mean())
        return head + (
            f"<p><b>Keep and write in one gate</b> (z = {s['z']:.2f}): the new state keeps {s['z'] * 100:.0f} % "
            f"of h(t-1) = {s['h_prev']:+.2f} and writes {s['1-z'] * 100:.0f} % of the candidate n = {s['n']:+.2f}, "
            f"giving h(t) = {s['h']:+.2f}. Mean z: {mean_z:.2f}.</p>"
            f"<p><b>Selective read of the past</b> (r = {s['r']:.2f}): the candidate may look at "
            f"{s['r'] * 100:.0f} % of the old state when it is formed. Mean r: {mean_r:.2f}.</p>"
            "<p>The GRU has no separate output gate and no separate memory: forgetting and writing are tied "
            "together (keep z, write 1 - z), which saves one block of weights compared with the LSTM.</p>")

    # --- training --------------------------------------------------------------------------------------
    def _empty_history(self) -> dict[str, dict[str, list[float]]]:
        return {kind: {"step": [], "loss": [], "acc": []} for kind in gates.MODEL_KINDS}

    def train_config(self) -> gates.SideBySideConfig:
        return gates.SideBySideConfig(
            task=self.task, hidden_size=self.hidden_size, steps=self.steps_spin.value(), lr=self.lr_spin.value(),
            seed=self.seed, num_threads=max(1, (os.cpu_count() or 2) - 1))  # leave a core for the interface

    @Slot()
    def start_training(self) -> None:
        if self.runner.is_busy():
            return
        settings.write("gates/steps", self.steps_spin.value())
        settings.write("gates/lr", self.lr_spin.value())
        self._history = self._empty_history()
        self.loss_plot.clear_curves()
        self.acc_plot.clear_curves()
        # Fixed axes for the whole run: a range that grows with every record makes pyqtgraph re-tick and
        # repaint the whole plot ten times a second, which stalls the interface; the curves alone are cheap.
        steps = self.steps_spin.value()
        for plot in (self.loss_plot, self.acc_plot):
            plot.getPlotItem().enableAutoRange(x=False, y=False)
            plot.getPlotItem().setXRange(0, steps, padding=0.01)
        self._loss_top = 0.0
        self.chance_line.setPos(self.task.chance_accuracy * 100)
        self.result_label.setText(f"Training on: {self.task.describe()}")
        self._set_status("Starting...")
        self.runner.start(gates.train_side_by_side, self.train_config())

    @Slot(object)
    def _on_record(self, record) -> None:
        if isinstance(record, gates.SideBySideResult):
            self.models = record.build_models()
            self.trained_steps = record.steps
            scores = ", ".join(f"{SHORT_NAMES[k]} {record.accuracy_of(k) * 100:.0f} %" for k in record.models)
            message = (f"Done in {record.seconds:.0f} s. Accuracy on {record.config.eval_size} new sequences: "
                       f"{scores} (chance {self.task.chance_accuracy * 100:.0f} %). The maps now show the trained "
                       "cells.")
            self._set_status(message)
            self.result_label.setText(message)
            self.refresh_views()
            return
        for kind in record.models:
            h = self._history[kind]
            h["step"].append(record.step)
            h["loss"].append(record.loss_of(kind))
            h["acc"].append(record.accuracy_of(kind) * 100)
        self._curves_dirty = True
        parts = ", ".join(f"{SHORT_NAMES[k]} {record.accuracy_of(k) * 100:.0f} % (loss {record.loss_of(k):.3f})"
                          for k in record.models)
        self._set_status(f"Step {record.step}/{record.steps_total}, {record.seconds:.0f} s: {parts}")

    @Slot()
    def _redraw_curves(self) -> None:
        if not self._curves_dirty:
            return
        self._curves_dirty = False
        top = max((max(h["loss"]) for h in self._history.values() if h["loss"]), default=0.0)
        if np.isfinite(top) and top > self._loss_top:  # grows in steps, rarely: see start_training
            self._loss_top = top * 1.25
            self.loss_plot.getPlotItem().setYRange(0, self._loss_top, padding=0)
        for kind, h in self._history.items():
            name = gates.MODEL_TITLES[kind]
            self.loss_plot.set_curve(name, h["step"], h["loss"], color=MODEL_COLOURS[kind])
            self.acc_plot.set_curve(name, h["step"], h["acc"], color=MODEL_COLOURS[kind])

    @Slot(str)
    def _on_state(self, state: str) -> None:
        busy = state != "idle"
        follow_runner_state(state, self.train_button, self.pause_button, self.stop_button)
        for widget in (self.task_combo, self.delay_spin, self.hidden_spin, self.text_edit, self.steps_spin,
                       self.lr_spin, self.seed_spin, self.reset_button):
            widget.setEnabled(not busy and (widget is not self.text_edit or self.task.kind == "text"))
        if state == "paused":
            self._set_status(self.status_label.text() + " (paused)")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._set_status(f"Training stopped: {message}", error=True)
        QMessageBox.warning(self, "Training stopped", message)

    @Slot(bool)
    def _on_finished(self, completed: bool) -> None:
        self._redraw_curves()
        if not completed and "Training stopped" not in self.status_label.text():
            self._set_status("Training stopped before the end; the maps still show the untrained cells.")

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #a33;" if error else "")
        self.status_label.setText(" ".join(text.split()))
        self.status_label.setToolTip(text)

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        self._curve_timer.stop()
        return self.runner.shutdown(timeout_s)


def _sparse_ticks(labels, most: int = 24) -> list[tuple[int, str]]:
    """Tick positions at step k (a curve's points, not a map's cells) with the input read there."""
    return [(int(x - 0.5), text) for x, text in time_ticks(labels, most)]


if __name__ == "__main__":
    raise SystemExit(run_standalone(GatesTab))
