"""RNN unroller: a vanilla RNN on a short text, backpropagation through time made visible.

The student sees the network unrolled step by step, the T x T map of ||dL_t/dh_k||, the share of
every (t, k) path in dL/dW, and ||dh_t/dh_k|| beside the lecture's bound (gamma * lambda)^(t - k).
A W-scale slider moves the network from vanishing to exploding gradients; truncation and clipping
change the maps; training runs in the background and a blow-up is explained, never a crash.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from engine import rnn
from engine.text import TextTask
from gui import settings
from gui.tabs.base import StudioTab, TabContext, run_standalone
from gui.widgets.heatmap import LogHeatmapPlot
from gui.widgets.panels import control_column
from gui.widgets.plots import CurvePlot
from gui.widgets.unrolled import UnrolledData, UnrolledView, legend_html, shown_symbol
from gui.workers import TaskRunner

DEFAULT_PRESET = "deep (lecture)"
SCALE_RANGE = (0.05, 4.0)
CLIP_LABELS = {"none": "off", "norm": "by norm (rescale g)", "value": "by value (clamp each entry)"}
ERROR_STYLE = "color: #a33;"


def _positive_finite(x, y):
    """Points a log axis can show: y > 0 and finite."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep]


class RNNTab(StudioTab):
    title = "RNN and BPTT"

    def __init__(self, context: TabContext | None = None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.task: TextTask = rnn.make_task(rnn.PRESETS[DEFAULT_PRESET])
        self.model: rnn.VanillaRNN | None = None
        self.analysis: rnn.Analysis | None = None
        self.last_record: rnn.RNNTrainRecord | None = None
        self.history = {"step": [], "loss": [], "norm": [], "clipped": []}
        self._steps_done = 0  # gradient steps over all runs since the last reset
        self._run_offset = 0  # steps done before the current run
        self.last_sample: rnn.SampleResult | None = None
        self._pending_radius: float | None = None
        self._analysis_dirty = False
        self._record_dirty = False
        self._curves_dirty = False
        self.analysis_runner = TaskRunner("Computing the BPTT maps", self, report=False)
        self.train_runner = TaskRunner("Training the RNN", self)

        self._build_ui()
        self._analysis_timer = QTimer(self, singleShot=True, interval=30)  # restarted on every change
        self._analysis_timer.timeout.connect(self._start_analysis)
        self._text_timer = QTimer(self, singleShot=True, interval=300)  # typing settles first
        self._text_timer.timeout.connect(self.apply_text)
        self._redraw_timer = QTimer(self, interval=100)  # training redraws at most 10 times a second
        self._redraw_timer.timeout.connect(self._redraw_training)
        self._redraw_timer.start()
        self._connect()
        self._describe_task()
        self.reset_model()

    # --- construction ------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        controls = QWidget()
        cv = QVBoxLayout(controls)
        cv.setContentsMargins(0, 0, 4, 0)
        cv.addWidget(self._build_network_box())
        cv.addWidget(self._build_bptt_box())
        cv.addWidget(self._build_training_box())
        cv.addWidget(self._build_sampling_box())
        cv.addStretch(1)
        outer.addWidget(control_column(controls, width=350))

        right = QVBoxLayout()
        top = QHBoxLayout()
        unrolled_box = QGroupBox("The network unrolled in time (hover a step for its numbers)")
        uv = QVBoxLayout(unrolled_box)
        self.unrolled = UnrolledView()
        self.unrolled_scroll = QScrollArea()
        self.unrolled_scroll.setWidget(self.unrolled)
        self.unrolled_scroll.setFixedHeight(self.unrolled.height() + 20)
        self.unrolled_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        uv.addWidget(self.unrolled_scroll)
        legend = QLabel(legend_html())
        legend.setWordWrap(True)
        uv.addWidget(legend)
        top.addWidget(unrolled_box, 1)
        params_box = QGroupBox("Parameters")
        pv = QVBoxLayout(params_box)
        self.params_label = QLabel()
        self.params_label.setTextFormat(Qt.TextFormat.RichText)
        self.params_label.setWordWrap(True)
        self.params_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        pv.addWidget(self.params_label)
        params_box.setFixedWidth(280)
        top.addWidget(params_box)
        right.addLayout(top)

        grid = QGridLayout()
        self.dh_map = LogHeatmapPlot("Heatmap 1: ||dL_t / dh_k||", "||dL_t/dh_k||")
        self.dh_map.setToolTip("Row t, column k: how strongly the loss at step t reaches back to the state "
                               "h_k. Bright far below the diagonal = long memory; dark = the gradient "
                               "vanished. Grey cells were cut by truncation. Right-click to export.")
        self.path_map = LogHeatmapPlot("Heatmap 2: (t, k) path's share of dL/dW", "||(t,k) term of dL/dW||",
                                       colormap="inferno")
        self.path_map.setToolTip("The lecture's double sum dL/dW = sum_t sum_k (dL_t/dh_k)(d+h_k/dW): each "
                                 "cell is the size of one term. Blank cells are exactly zero: column 0 is, "
                                 "because h_-1 = 0.")
        self.jac_plot = CurvePlot("||dh_t / dh_k|| against t - k", "t - k (steps back from the last step)",
                                  "spectral norm")
        self.jac_plot.getPlotItem().setLogMode(y=True)
        self.jac_plot.setToolTip("The Jacobian product from the last state back t - k steps, and the lecture's "
                                 "bound (gamma lambda)^(t-k) with lambda = ||W||_2 and gamma the largest slope "
                                 "of the activation (1 for tanh and ReLU, 1/4 for sigmoid).")
        self.per_k_plot = CurvePlot("Per-k totals", "k (hidden state h_k)", "norm")
        self.per_k_plot.getPlotItem().setLogMode(y=True)
        self.per_k_plot.setToolTip("Summing each column of the maps: the share of step k in dL/dW, and "
                                   "||dL/dh_k|| from all losses together.")
        self.loss_plot = CurvePlot("Training loss", "gradient step", "loss L (sum over t)")
        self.loss_plot.getPlotItem().setLogMode(y=True)
        self.norm_plot = CurvePlot("Gradient norm ||g||", "gradient step", "global L2 norm")
        self.norm_plot.getPlotItem().setLogMode(y=True)
        self.norm_plot.setToolTip("The norm of all gradients together before clipping, and of the step "
                                  "actually taken after clipping.")
        for i, plot in enumerate((self.dh_map, self.path_map, self.jac_plot)):
            grid.addWidget(plot, 0, i)
        for i, plot in enumerate((self.per_k_plot, self.loss_plot, self.norm_plot)):
            grid.addWidget(plot, 1, i)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        # Legend entries exist from the start, not only after the first training record.
        self.loss_plot.set_curve("loss", [], [])
        self.loss_plot.set_curve("latest", [], [], color="#d9822b", symbol="o")  # visible from the first point
        self.norm_plot.set_curve("before clipping", [], [], color="#d62728")
        self.norm_plot.set_curve("after clipping", [], [], color="#1f77b4")
        right.addLayout(grid, 1)
        outer.addLayout(right, 1)

    def _build_network_box(self) -> QGroupBox:
        box = QGroupBox("Text and network")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Preset"))
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(list(rnn.PRESETS) + ["(your own text)"])
        self.preset_combo.setToolTip("Texts to learn: the lecture's 'deep' auto-completion example, longer "
                                     "words, and a few sentences (long sequences show vanishing best).")
        row.addWidget(self.preset_combo, 1)
        v.addLayout(row)
        self.text_edit = QPlainTextEdit(rnn.PRESETS[DEFAULT_PRESET])
        self.text_edit.setFixedHeight(self.text_edit.fontMetrics().lineSpacing() * 3 + 12)
        self.text_edit.setToolTip(f"The text the network learns to continue, one character per step "
                                  f"(at most {rnn.MAX_STEPS} characters). After the last one it must "
                                  "predict <stop>.")
        v.addWidget(self.text_edit)
        self.task_label = QLabel()
        self.task_label.setWordWrap(True)
        v.addWidget(self.task_label)
        form = QFormLayout()
        self.hidden_spin = QSpinBox(minimum=1, maximum=rnn.MAX_HIDDEN,
                                    value=int(settings.read("rnn/hidden", 16)))
        self.hidden_spin.setToolTip(f"d, the size of the hidden state h_t (1 to {rnn.MAX_HIDDEN}). "
                                    "Changing it builds a new network.")
        self.activation_combo = QComboBox()
        self.activation_combo.addItems(list(rnn.ACTIVATIONS))
        self.activation_combo.setCurrentText(settings.read("rnn/activation", "tanh"))
        self.activation_combo.setToolTip("f in h_t = f(x_t U + h_(t-1) W + b). Its largest slope gamma enters "
                                         "the bound: 1 for tanh and ReLU, 1/4 for sigmoid.")
        self.init_combo = QComboBox()
        self.init_combo.addItems(list(rnn.INITS))
        self.init_combo.setCurrentText(settings.read("rnn/init", "orthogonal"))
        self.init_combo.setToolTip("How W is drawn before scaling: small = random Gaussian, orthogonal = a "
                                   "random rotation, identity = the identity matrix.")
        self.seed_spin = QSpinBox(minimum=0, maximum=99999, value=0)
        self.seed_spin.setToolTip("Random seed of the initial weights")
        form.addRow("Hidden size d", self.hidden_spin)
        form.addRow("Activation", self.activation_combo)
        form.addRow("Initialise W", self.init_combo)
        form.addRow("Seed", self.seed_spin)
        v.addLayout(form)
        v.addWidget(QLabel("W scale: spectral radius of W"))
        self.scale_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.scale_slider.setRange(*SCALE_RANGE)
        self.scale_slider.setSingleStep(0.05)
        self.scale_slider.setDecimals(2)
        self.scale_slider.setValue(0.9)
        self.scale_slider.setToolTip("Rescales W so that its largest |eigenvalue| is this value (its direction "
                                     "is kept). Small: gradients vanish. Large: they explode.")
        v.addWidget(self.scale_slider)
        self.reset_button = QPushButton("Reset weights")
        self.reset_button.setToolTip("New random weights from these settings; clears the training curves "
                                     "(Ctrl+R)")
        v.addWidget(self.reset_button)
        self.network_message = QLabel()
        self.network_message.setWordWrap(True)
        self.network_message.setStyleSheet(ERROR_STYLE)
        v.addWidget(self.network_message)
        return box

    def _build_bptt_box(self) -> QGroupBox:
        box = QGroupBox("Backpropagation through time")
        form = QFormLayout(box)
        row = QHBoxLayout()
        self.truncate_check = QCheckBox("Truncate to")
        self.truncate_check.setToolTip("Truncated BPTT: each loss L_t sends its gradient back only this many "
                                       "steps (paths with t - k >= window are cut; grey in the maps).")
        self.truncate_spin = QSpinBox(minimum=1, maximum=rnn.MAX_STEPS, value=2, suffix=" steps")
        self.truncate_spin.setEnabled(False)
        row.addWidget(self.truncate_check)
        row.addWidget(self.truncate_spin)
        form.addRow(row)
        self.clip_combo = QComboBox()
        for mode, label in CLIP_LABELS.items():
            self.clip_combo.addItem(label, mode)
        self.clip_combo.setToolTip("By norm: if ||g|| > threshold, g <- threshold / ||g|| * g, with ||g|| the L2 "
                                   "norm of all gradients together (direction kept). By value: every entry "
                                   "is clamped to [-threshold, threshold].")
        self.clip_spin = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1000.0, singleStep=0.1, value=1.0)
        self.clip_spin.setToolTip("The clipping threshold")
        form.addRow("Clip gradients", self.clip_combo)
        form.addRow("Threshold", self.clip_spin)
        self.norms_label = QLabel()
        self.norms_label.setWordWrap(True)
        self.norms_label.setFixedHeight(self.norms_label.fontMetrics().lineSpacing() * 3 + 4)
        form.addRow(self.norms_label)
        return box

    def _build_training_box(self) -> QGroupBox:
        box = QGroupBox("Training (gradient descent)")
        v = QVBoxLayout(box)
        form = QFormLayout()
        self.lr_spin = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=10.0, singleStep=0.05,
                                      value=float(settings.read("rnn/lr", 0.2)))
        self.lr_spin.setToolTip("alpha in W <- W - alpha dL/dW (the same for U, V, b, c)")
        self.steps_spin = QSpinBox(minimum=1, maximum=100000, singleStep=100,
                                   value=int(settings.read("rnn/steps", 600)))
        self.steps_spin.setToolTip("Gradient steps per run; a new run continues from the current weights")
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Steps", self.steps_spin)
        v.addLayout(form)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train in the background from the current weights (Ctrl+T)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.stop_button)
        v.addLayout(buttons)
        self.train_status = QLabel("")
        self.train_status.setWordWrap(True)
        self.train_status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # Fixed height: the text changes ten times a second and must not re-lay out the plots.
        self.train_status.setFixedHeight(self.train_status.fontMetrics().lineSpacing() * 2 + 4)
        v.addWidget(self.train_status)
        self.explain_label = QLabel("")
        self.explain_label.setWordWrap(True)
        self.explain_label.setStyleSheet("color: #a33; background: #fdf1f0; padding: 4px;")
        self.explain_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.explain_label.hide()
        v.addWidget(self.explain_label)
        return box

    def _build_sampling_box(self) -> QGroupBox:
        box = QGroupBox("Generate text")
        form = QFormLayout(box)
        self.prompt_edit = QLineEdit(self.task.text[:1])
        self.prompt_edit.setToolTip("The characters the network reads first; it then continues on its own")
        self.sample_mode = QComboBox()
        self.sample_mode.addItems(["greedy (most probable)", "sampled (random draw)"])
        self.sample_mode.setToolTip("Greedy always takes the most probable next character; sampled draws it "
                                    "from softmax(logits / temperature). Each choice is fed back as the next "
                                    "input.")
        self.temperature_spin = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=5.0, singleStep=0.1, value=1.0)
        self.temperature_spin.setEnabled(False)
        self.max_len_spin = QSpinBox(minimum=1, maximum=500, value=60)
        self.sample_button = QPushButton("Generate")
        self.sample_button.setToolTip("Run the network forward, feeding each chosen character back in (Ctrl+G)")
        self.sample_output = QLabel("")
        self.sample_output.setWordWrap(True)
        self.sample_output.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sample_output.setTextFormat(Qt.TextFormat.RichText)
        form.addRow("Start with", self.prompt_edit)
        form.addRow("Choose", self.sample_mode)
        form.addRow("Temperature", self.temperature_spin)
        form.addRow("At most", self.max_len_spin)
        form.addRow(self.sample_button)
        form.addRow(self.sample_output)
        return box

    def _connect(self) -> None:
        self.preset_combo.currentTextChanged.connect(self._on_preset)
        self.text_edit.textChanged.connect(self._text_timer.start)
        self.hidden_spin.valueChanged.connect(lambda _v: self.reset_model())
        self.init_combo.currentTextChanged.connect(lambda _t: self.reset_model())
        self.seed_spin.valueChanged.connect(lambda _v: self.reset_model())
        self.activation_combo.currentTextChanged.connect(self._on_activation)
        self.scale_slider.valueChanged.connect(self._on_scale)
        self.reset_button.clicked.connect(self.reset_model)
        self.truncate_check.toggled.connect(self.truncate_spin.setEnabled)
        self.truncate_check.toggled.connect(lambda _c: self.schedule_analysis())
        self.truncate_spin.valueChanged.connect(lambda _v: self.schedule_analysis())
        self.clip_combo.currentIndexChanged.connect(lambda _i: self.schedule_analysis())
        self.clip_spin.valueChanged.connect(lambda _v: self.schedule_analysis())
        self.train_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.train_runner.stop)
        self.sample_mode.currentIndexChanged.connect(lambda i: self.temperature_spin.setEnabled(i == 1))
        self.sample_button.clicked.connect(self.generate)
        self.prompt_edit.returnPressed.connect(self.generate)
        self.analysis_runner.record.connect(self._on_analysis)
        self.analysis_runner.failed.connect(self._on_analysis_failed)
        self.analysis_runner.finished.connect(self._on_analysis_finished)
        self.train_runner.record.connect(self._on_train_record)
        self.train_runner.failed.connect(self._on_train_failed)
        self.train_runner.finished.connect(self._on_train_finished)
        self.train_runner.state_changed.connect(self._on_train_state)
        for key, slot in (("Ctrl+T", self.start_training), ("Ctrl+R", self.reset_model), ("Ctrl+G", self.generate)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # --- settings that change the text or the network ------------------------------------------------
    def truncate(self) -> int | None:
        return self.truncate_spin.value() if self.truncate_check.isChecked() else None

    def clip_mode(self) -> str:
        return self.clip_combo.currentData()

    @Slot(str)
    def _on_preset(self, name: str) -> None:
        if name in rnn.PRESETS and self.text_edit.toPlainText() != rnn.PRESETS[name]:
            self.text_edit.setPlainText(rnn.PRESETS[name])
            self._text_timer.stop()
            self.apply_text()

    @Slot()
    def apply_text(self) -> None:
        """Use the edited text as the task (a new network when its vocabulary differs)."""
        if self.train_runner.is_busy():
            return
        text = self.text_edit.toPlainText()
        try:
            task = rnn.make_task(text)
        except ValueError as exc:
            self.network_message.setText(f"{exc} The previous text is still in use.")
            return
        self.network_message.setText("")
        preset = next((name for name, value in rnn.PRESETS.items() if value == text), "(your own text)")
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentText(preset)
        self.preset_combo.blockSignals(False)
        same_vocab = task.vocab == self.task.vocab
        self.task = task
        if not set(self.prompt_edit.text()) <= set(task.vocab.symbols):
            self.prompt_edit.setText(task.text[:1])
        self._describe_task()
        if same_vocab and self.model is not None:
            self.schedule_analysis()
        else:
            self.reset_model()

    def _describe_task(self) -> None:
        vocab = " ".join(shown_symbol(s) for s in self.task.vocab.symbols)
        n = len(self.task.vocab)
        self.task_label.setText(f"T = {len(self.task.inputs)} steps; vocabulary ({n} symbols, so n = k = {n}): "
                                f"{vocab}")

    @Slot()
    def reset_model(self) -> None:
        """Fresh random weights from the current settings; clears the training curves and messages."""
        if self.train_runner.is_busy():
            return
        n = len(self.task.vocab)
        try:
            self.model = rnn.VanillaRNN.random(
                n, self.hidden_spin.value(), n, scale=self.scale_slider.value(), seed=self.seed_spin.value(),
                init=self.init_combo.currentText(), activation=self.activation_combo.currentText())
        except ValueError as exc:
            self.network_message.setText(str(exc))
            return
        for key, value in (("rnn/hidden", self.hidden_spin.value()),
                           ("rnn/activation", self.activation_combo.currentText()),
                           ("rnn/init", self.init_combo.currentText())):
            settings.write(key, value)
        self._pending_radius = None
        self.network_message.setText("")
        self.explain_label.hide()
        self.explain_label.setText("")
        self.reset_button.setStyleSheet("")
        self.history = {k: [] for k in self.history}
        self._steps_done = 0
        self.last_record = None
        self.loss_plot.clear_curves()
        self.norm_plot.clear_curves()
        self.train_status.setText("New random weights. Press Train to fit the text.")
        self.sample_output.setText("")
        self.schedule_analysis()

    @Slot(str)
    def _on_activation(self, name: str) -> None:
        if self.model is not None and not self.train_runner.is_busy():
            self.model = self.model.with_activation(name)
            settings.write("rnn/activation", name)
            self.schedule_analysis()

    @Slot(float)
    def _on_scale(self, value: float) -> None:
        self._pending_radius = float(value)  # only the latest value is ever applied
        self.schedule_analysis()

    # --- analysis: BPTT maps, Jacobian curve, clipped norms ----------------------------------------------
    def schedule_analysis(self) -> None:
        """Coalesce bursts of changes (a slider drag) into one computation of the latest state."""
        self._analysis_timer.start()

    def is_idle(self) -> bool:
        """No analysis running or waiting (tests wait for this)."""
        return not (self._analysis_timer.isActive() or self.analysis_runner.is_busy() or self._analysis_dirty)

    @Slot()
    def _start_analysis(self) -> None:
        if self.model is None or self.train_runner.is_busy():
            return
        if self.analysis_runner.is_busy():
            self._analysis_dirty = True  # run again with the newest state when this one ends
            return
        if self._pending_radius is not None:
            try:
                self.model = self.model.with_w_radius(self._pending_radius)
            except ValueError as exc:
                self.network_message.setText(str(exc))
            self._pending_radius = None
        self._analysis_dirty = False
        self.analysis_runner.start(rnn.analyse, self.model, self.task, self.truncate(), self.clip_mode(),
                                   self.clip_spin.value())

    @Slot(object)
    def _on_analysis(self, analysis: rnn.Analysis) -> None:
        if analysis.model is not self.model or analysis.result.T != len(self.task.inputs):
            return  # superseded while it ran (the newer one is queued)
        self.analysis = analysis
        result = analysis.result
        cut = result.cut_mask()
        self.dh_map.set_matrix(result.dL_dh_norms, cut)
        self.path_map.set_matrix(result.path_contrib, cut)
        self._draw_per_k(result.per_k_contrib, result.dL_dh_total)
        self._draw_jacobian(analysis.curve)
        self._draw_unrolled(result.forward)
        self._describe_params(analysis.curve)
        self._describe_norms(analysis)
        if not self.train_runner.is_busy() and self.last_record is None and self.explain_label.isHidden():
            self.train_status.setText(f"Loss L = {result.loss:.4g} (sum of -log p(true) over the "
                                      f"{result.T} steps). Press Train to fit the text.")
        self.mark_ready()

    @Slot(str)
    def _on_analysis_failed(self, message: str) -> None:
        self.network_message.setText(f"The maps could not be computed: {message}")

    @Slot(bool)
    def _on_analysis_finished(self, _completed: bool) -> None:
        if self._analysis_dirty:
            self._start_analysis()

    def _draw_per_k(self, per_k: np.ndarray, dh_total: np.ndarray) -> None:
        ks = np.arange(len(per_k))
        self.per_k_plot.set_curve("||sum_t (t,k) term of dL/dW||", *_positive_finite(ks, per_k), color="#d9822b")
        self.per_k_plot.set_curve("||dL/dh_k|| (all losses)", *_positive_finite(ks, dh_total), color="#1f77b4")

    def _draw_jacobian(self, curve: rnn.JacobianCurve) -> None:
        self.jac_plot.set_curve("||dh_t/dh_k||", *_positive_finite(curve.lags, curve.norms), color="#1f77b4",
                                symbol="o" if len(curve.lags) <= 30 else None)
        self.jac_plot.set_curve("bound (gamma lambda)^(t-k)", *_positive_finite(curve.lags, curve.bound),
                                color="#d62728")
        gl = curve.gamma * curve.lam
        trend = "vanishes" if gl < 1 else "may explode"
        self.jac_plot.setTitle(f"||dh_t/dh_k||: \u03b3\u03bb = {gl:.3g}, bound {trend}")

    def _draw_unrolled(self, fwd: rnn.ForwardResult) -> None:
        T = len(self.task.inputs)
        probs = fwd.probs
        with np.errstate(invalid="ignore"):
            predicted = np.nan_to_num(probs, nan=-1.0).argmax(axis=1)
        symbols = self.task.vocab.symbols
        self.unrolled.set_data(UnrolledData(
            inputs=tuple(symbols[i] for i in self.task.inputs),
            targets=tuple(symbols[i] for i in self.task.targets),
            predicted=tuple(symbols[i] for i in predicted),
            p_predicted=probs[np.arange(T), predicted],
            p_true=probs[np.arange(T), self.task.targets],
            h=fwd.h, step_loss=fwd.step_loss))

    def _describe_params(self, curve: rnn.JacobianCurve | None = None) -> None:
        model = self.model
        counts = rnn.parameter_count(model.n, model.d, model.k)
        rows = [("U", "n x d", f"{model.n} x {model.d}"), ("W", "d x d", f"{model.d} x {model.d}"),
                ("V", "d x k", f"{model.d} x {model.k}"), ("b", "d", f"{model.d}"), ("c", "k", f"{model.k}")]
        table = "".join(f"<tr><td><b>{name}</b></td><td>{shape}</td><td>{dims}</td>"
                        f"<td align='right'>{counts[name]:,}</td></tr>" for name, shape, dims in rows)
        quiz = rnn.parameter_count(14, 7, 2, biases=False)
        extra = ""
        if curve is not None:
            extra = (f"<p>W now: spectral radius rho = {curve.radius:.3g}, "
                     f"lambda = ||W||<sub>2</sub> = {curve.lam:.3g}; gamma = {curve.gamma:g} "
                     f"({model.activation}), gamma lambda = {curve.gamma * curve.lam:.3g}.</p>")
        self.params_label.setText(
            f"<table cellspacing='6'><tr><th></th><th>shape</th><th></th><th>weights</th></tr>{table}"
            f"<tr><td colspan='3'><b>total</b></td><td align='right'><b>{counts['total']:,}</b></td></tr>"
            f"</table>{extra}"
            f"<p><i>Lecture quiz:</i> n = 14 inputs, d = n/2 = 7 hidden, k = 2 outputs, no biases: "
            f"{quiz['U']} + {quiz['W']} + {quiz['V']} = <b>{quiz['total']}</b> weights.</p>")

    def _describe_norms(self, analysis: rnn.Analysis) -> None:
        clipped = analysis.clipped
        if analysis.clip_mode == "none":
            text = (f"||g|| = {clipped.norm_before:.4g} (L2 norm of all gradients together); "
                    "clipping is off.")
        else:
            how = "rescaled" if analysis.clip_mode == "norm" else "clamped"
            state = f"{how} to {clipped.norm_after:.4g}" if clipped.clipped else "below the threshold, unchanged"
            text = f"Unclipped ||g|| = {clipped.norm_before:.4g}; clipped: {state}."
        if not math.isfinite(clipped.norm_before):
            text += " The gradient is not finite: it exploded."
        self.norms_label.setText(text)

    # --- training ---------------------------------------------------------------------------------------
    def train_config(self) -> rnn.RNNTrainConfig:
        return rnn.RNNTrainConfig(lr=self.lr_spin.value(), steps=self.steps_spin.value(),
                                  clip_mode=self.clip_mode(), clip_threshold=self.clip_spin.value(),
                                  truncate=self.truncate())

    @Slot()
    def start_training(self) -> None:
        if self.train_runner.is_busy() or self.model is None:
            return
        self._text_timer.stop()
        if self.text_edit.toPlainText() != self.task.text:
            self.apply_text()
        if self._pending_radius is not None:
            self.model = self.model.with_w_radius(self._pending_radius)
            self._pending_radius = None
        settings.write("rnn/lr", self.lr_spin.value())
        settings.write("rnn/steps", self.steps_spin.value())
        self.explain_label.hide()
        self.reset_button.setStyleSheet("")
        self._analysis_timer.stop()
        self._analysis_dirty = False
        self._run_offset = self._steps_done
        self.train_status.setText("Training...")
        self.jac_plot.setTitle("||dh_t/dh_k||: redrawn when training stops")
        self.train_runner.start(rnn.train, self.model, self.task, self.train_config())

    @Slot(str)
    def _on_train_state(self, state: str) -> None:
        busy = state != "idle"
        self.train_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        for w in (self.text_edit, self.preset_combo, self.hidden_spin, self.activation_combo, self.init_combo,
                  self.seed_spin, self.scale_slider, self.reset_button, self.truncate_check, self.truncate_spin,
                  self.clip_combo, self.clip_spin, self.lr_spin, self.steps_spin, self.sample_button):
            w.setEnabled(not busy)
        if not busy:
            self.truncate_spin.setEnabled(self.truncate_check.isChecked())

    @Slot(object)
    def _on_train_record(self, record: rnn.RNNTrainRecord) -> None:
        self.model = record.model
        self.last_record = record
        self._steps_done = self._run_offset + record.step
        h = self.history
        h["step"].extend((record.history_steps + self._run_offset).tolist())
        h["loss"].extend(record.history_loss.tolist())
        h["norm"].extend(record.history_grad_norm.tolist())
        h["clipped"].extend(record.history_clipped_norm.tolist())
        self._record_dirty = self._curves_dirty = True
        self.train_status.setText(f"Step {record.step}/{record.steps}: loss {record.loss:.4g}, "
                                  f"||g|| {record.grad_norm:.3g} (after clipping {record.clipped_norm:.3g})")

    @Slot()
    def _redraw_training(self) -> None:
        if self._curves_dirty:
            self._curves_dirty = False
            h = self.history
            steps, losses = _positive_finite(h["step"], h["loss"])
            self.loss_plot.set_curve("loss", steps, losses)
            self.loss_plot.set_curve("latest", steps[-1:], losses[-1:], color="#d9822b", symbol="o")
            self.norm_plot.set_curve("before clipping", *_positive_finite(h["step"], h["norm"]), color="#d62728")
            self.norm_plot.set_curve("after clipping", *_positive_finite(h["step"], h["clipped"]), color="#1f77b4")
        if self._record_dirty and self.last_record is not None:
            self._record_dirty = False
            record = self.last_record
            cut = self._cut_mask(len(record.dL_dh_norms))
            self.dh_map.set_matrix(record.dL_dh_norms, cut)
            self.path_map.set_matrix(record.path_contrib, cut)
            self._draw_per_k(record.per_k_contrib, record.dL_dh_total)
            self._draw_unrolled(rnn.forward(record.model, self.task.inputs, self.task.targets))

    def _cut_mask(self, T: int) -> np.ndarray:
        lag = np.subtract.outer(np.arange(T), np.arange(T))
        window = self.truncate()
        return lag >= window if window is not None else np.zeros((T, T), bool)

    @Slot(str)
    def _on_train_failed(self, message: str) -> None:
        self.train_status.setText("Training stopped: the numbers blew up.")
        self.explain_label.setText(f"{message}\n\nThe weights shown are the last finite ones.")
        self.explain_label.show()
        self.reset_button.setStyleSheet("font-weight: bold; color: #a33;")

    @Slot(bool)
    def _on_train_finished(self, completed: bool) -> None:
        self._redraw_training()
        if self.last_record is not None:
            # Show the trained W's scale on the slider without rescaling anything.
            self.scale_slider.blockSignals(True)
            radius = rnn.spectral_radius(self.model.W)
            self.scale_slider.setValue(min(max(radius, SCALE_RANGE[0]), SCALE_RANGE[1]))
            self.scale_slider.blockSignals(False)
            self._pending_radius = None
            if completed:
                self.train_status.setText(f"Done: {self._steps_done} steps in all, loss "
                                          f"{self.last_record.loss:.4g}. Try Generate.")
            elif self.explain_label.isHidden():
                self.train_status.setText(f"Stopped after {self._steps_done} steps in all; loss "
                                          f"{self.last_record.loss:.4g}.")
        self.schedule_analysis()

    # --- sampling ---------------------------------------------------------------------------------------
    @Slot()
    def generate(self) -> None:
        if self.model is None or self.train_runner.is_busy():
            return
        greedy = self.sample_mode.currentIndex() == 0
        try:
            out = rnn.sample(self.model, self.task.vocab, self.prompt_edit.text(), self.max_len_spin.value(),
                             greedy=greedy, temperature=self.temperature_spin.value())
        except (ValueError, FloatingPointError) as exc:
            self.sample_output.setText(f"<span style='color:#a33'>{exc}</span>")
            return
        ending = "ended with &lt;stop&gt;" if out.stopped else f"reached the limit of {self.max_len_spin.value()}"
        prompt = self.prompt_edit.text().replace("&", "&amp;").replace("<", "&lt;")
        body = out.text.replace("&", "&amp;").replace("<", "&lt;")
        self.sample_output.setText(f"<span style='font-size:12pt'>{prompt}<b style='color:#1f5fa0'>{body}</b>"
                                   f"</span><br><small>({ending})</small>")
        self.last_sample = out

    # --- closing ----------------------------------------------------------------------------------------
    def shutdown(self, timeout_s: float = 10.0) -> bool:
        self._redraw_timer.stop()
        self._analysis_timer.stop()
        self._text_timer.stop()
        ok = self.train_runner.shutdown(timeout_s)
        return self.analysis_runner.shutdown(timeout_s) and ok


if __name__ == "__main__":
    raise SystemExit(run_standalone(RNNTab))
