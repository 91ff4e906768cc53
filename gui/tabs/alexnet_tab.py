"""AlexNet live: build the lecture's network (or a small variant), train it in the background and
watch what it learns: curves, filters, feature maps, gradient norms, confusions, its parameter table."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import alexnet_train as at
from engine import datasets, image_data
from engine.alexnet import INPUT_SIZES, AlexNet, AlexNetConfig, layer_table, total_params
from gui import settings
from gui.tabs.base import StudioTab, TabContext, run_standalone
from gui.widgets.image_grid import ConfusionPlot, ImageGridPlot, normalise_each
from gui.widgets.live_curves import LiveCurvePlot
from gui.widgets.panels import control_column
from gui.widgets.plots import BarPlot, ImagePlot
from gui.widgets.run_buttons import follow_runner_state, make_run_buttons
from gui.workers import TaskRunner

RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
LAYER_COLOURS = ("#08306b", "#2171b5", "#4292c6", "#6baed6", "#9ecae1", "#a50f15", "#ef3b2c", "#fc9272")
DIVIDERS = (1, 2, 4, 8, 16)
GREEN, RED = (40, 170, 60), (220, 40, 40)
CURVES_EVERY_S = 0.5  # curves redraw twice a second while training: painting them is the costliest view


@dataclasses.dataclass
class RunCurves:
    """One run's points for the side-by-side curves (kept after the run ends)."""
    name: str
    colour: str
    epoch: list = dataclasses.field(default_factory=list)  # x of the training points
    train_loss: list = dataclasses.field(default_factory=list)
    train_acc: list = dataclasses.field(default_factory=list)
    val_epoch: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    val_acc: list = dataclasses.field(default_factory=list)
    speed_epoch: list = dataclasses.field(default_factory=list)
    images_per_s: list = dataclasses.field(default_factory=list)
    drawn: dict = dataclasses.field(default_factory=dict)  # plot name -> point counts when last drawn

    @classmethod
    def from_history(cls, name: str, colour: str, history: list[dict]) -> RunCurves:
        run = cls(name, colour)
        for row in history:
            run.add(row.get("epoch"), row.get("train_loss"), row.get("train_accuracy"), row.get("val_loss"),
                    row.get("val_accuracy"))
        return run

    def add(self, epoch, train_loss, train_acc, val_loss=None, val_acc=None) -> None:
        if epoch is None:
            return
        if val_acc is not None:
            self.val_epoch.append(epoch)
            self.val_loss.append(val_loss)
            self.val_acc.append(val_acc * 100)
        if train_loss is not None and np.isfinite(train_loss):
            self.epoch.append(epoch)
            self.train_loss.append(train_loss)
            self.train_acc.append(train_acc * 100)


class AlexNetTab(StudioTab):
    title = "AlexNet live"
    accepts_images = True

    def __init__(self, context: TabContext | None = None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.runner = TaskRunner("Training AlexNet", self)
        self.download_runner = TaskRunner("Downloading a dataset", self)
        self.control = at.LiveControl()
        self.runs: list[RunCurves] = []
        self.current_run: RunCurves | None = None
        self.run_dir: Path | None = None
        self.class_names: tuple[str, ...] = ()
        self.model: AlexNet | None = None  # trained or loaded weights, on the CPU, for classifying
        self.model_source = ""
        self.loaded_checkpoint: at.Checkpoint | None = None
        self.val_images: np.ndarray | None = None  # (M, C, H, W) uint8 from the run
        self.user_image: np.ndarray | None = None  # as loaded: (H, W) or (H, W, 3) uint8
        self.user_image_name = ""
        self.latest: at.TrainProgress | None = None
        self.latest_snapshot: at.Snapshot | None = None
        self.grad_steps: list[float] = []
        self.grad_history: list[np.ndarray] = []
        self.started: at.RunStarted | None = None
        self._pending_checkpoint_copy: str | None = None
        self._pending_start = False
        self._dirty: set[str] = set()
        self._curves_drawn_at = 0.0
        self._curve_turn = 0  # which curve plot redraws next while training
        self._grad_drawn = 0
        self._last_failure = ""
        self._final_message = ""
        self.last_finished: at.TrainFinished | None = None
        self._build_ui()
        self._connect()
        self._redraw_timer = QTimer(self, interval=100)  # at most ten redraws a second
        self._redraw_timer.timeout.connect(self._redraw)
        self._redraw_timer.start()
        self.update_table()
        self._update_model_label()
        self._set_status("Press Train: a small AlexNet learns ten kinds of shapes (no download needed).")
        QTimer.singleShot(0, self.mark_ready)

    # --- construction ------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(splitter)
        splitter.addWidget(control_column(self._build_controls(), min_width=330))
        self.pages = QTabWidget()
        self.pages.addTab(self._build_curves_page(), "Curves")
        self.pages.addTab(self._build_filters_page(), "Filters && feature maps")
        self.pages.addTab(self._build_predictions_page(), "Predictions")
        self.pages.addTab(self._build_classify_page(), "Classify an image")
        self.pages.addTab(self._build_table_page(), "Layer table")
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([350, 1150])

    def _build_controls(self) -> QWidget:
        panel = QWidget()
        v = QVBoxLayout(panel)
        v.setContentsMargins(0, 0, 4, 0)

        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        self.source_combo = QComboBox()
        for key, title in image_data.SOURCES.items():
            self.source_combo.addItem(title, key)
        self.source_combo.setToolTip("The built-in shapes need no download; MNIST, Fashion-MNIST and CIFAR-10 are "
                                     "downloaded when missing; 'My images' reads a folder with one subfolder per "
                                     "class (unreadable files are skipped and counted).")
        form.addRow("Source", self.source_combo)
        folder_row = QHBoxLayout()
        self.folder_edit = QLineEdit(settings.read("alexnet/folder", ""))
        self.folder_edit.setPlaceholderText("app data folder")
        self.folder_edit.setToolTip("Where the dataset files are, or your folder of class subfolders")
        self.folder_button = QPushButton("...")
        self.folder_button.setMaximumWidth(32)
        self.folder_button.setToolTip("Choose the folder")
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.folder_button)
        form.addRow("Folder", folder_row)
        self.train_size_spin = QSpinBox(minimum=32, maximum=60000, singleStep=1000,
                                        value=int(settings.read("alexnet/train_size", 10000)))
        self.train_size_spin.setToolTip("Training images to draw (shapes) or to use at most (the others)")
        form.addRow("Training images", self.train_size_spin)
        v.addWidget(data_box)

        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        self.input_combo = QComboBox()
        for size in INPUT_SIZES:
            self.input_combo.addItem(f"{size} × {size}" + ("  (the lecture's)" if size == 227 else ""), size)
        self.input_combo.setToolTip("227 is the lecture's AlexNet (conv1 11×11 stride 4). Smaller inputs keep "
                                    "the 5 conv + 3 pool + 3 FC structure with a 5×5 first layer.")
        form.addRow("Input size", self.input_combo)
        self.divider_combo = QComboBox()
        for d in DIVIDERS:
            self.divider_combo.addItem("full width (96 … 4096)" if d == 1 else f"widths / {d}", d)
        self.divider_combo.setToolTip("Divide every layer's number of filters and FC units: /8 trains in seconds "
                                      "on a laptop CPU, full width needs a GPU.")
        form.addRow("Width", self.divider_combo)
        self.bn_check = QCheckBox("BatchNorm after each conv")
        self.bn_check.setToolTip("Normalise each feature map over the batch, then scale (γ) and shift (β); "
                                 "the conv's bias is dropped. Compare a run with and without it.")
        form.addRow(self.bn_check)
        self.dropout_check = QCheckBox("Dropout 0.5 before FC-1 and FC-2")
        self.dropout_check.setToolTip("Each hidden unit is dropped with probability 0.5 while training (a "
                                      "different thinned network each batch); all are used for validation.")
        form.addRow(self.dropout_check)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        form.addRow(self.model_label)
        v.addWidget(model_box)

        train_box = QGroupBox("Training")
        form = QFormLayout(train_box)
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.addItem("Adam (AdamW)", "adam")
        self.optimizer_combo.addItem("SGD with momentum 0.9", "sgd")
        form.addRow("Optimiser", self.optimizer_combo)
        self.lr_spin = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=10.0, singleStep=0.0005,
                                      value=float(settings.read("alexnet/lr", at.TrainConfig.lr)))
        self.lr_spin.setToolTip("Peak learning rate. Too large (SGD 1.0, Adam 0.1) and the loss blows up.")
        form.addRow("Learning rate", self.lr_spin)
        self.schedule_combo = QComboBox()
        for key, title in (("onecycle", "warm up, then cosine"), ("cosine", "cosine decay"),
                           ("step", "÷10 at 1/3 and 2/3"), ("constant", "constant")):
            self.schedule_combo.addItem(title, key)
        form.addRow("Schedule", self.schedule_combo)
        self.wd_spin = QDoubleSpinBox(decimals=5, minimum=0.0, maximum=0.1, singleStep=0.0001,
                                      value=at.TrainConfig.weight_decay)
        self.wd_spin.setToolTip("Weight decay (L2 pull towards zero) on weights, not on biases or BatchNorm")
        form.addRow("Weight decay", self.wd_spin)
        self.batch_spin = QSpinBox(minimum=2, maximum=4096, singleStep=32,
                                   value=int(settings.read("alexnet/batch", at.TrainConfig.batch_size)))
        form.addRow("Batch size", self.batch_spin)
        self.epochs_spin = QSpinBox(minimum=1, maximum=1000, value=int(settings.read("alexnet/epochs",
                                                                                     at.TrainConfig.epochs)))
        form.addRow("Epochs", self.epochs_spin)
        self.device_combo = QComboBox()
        for key in at.DEVICE_CHOICES:
            self.device_combo.addItem(key, key)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(self.context.device)))
        self.device_combo.setToolTip("auto: a CUDA GPU, else an Apple GPU (MPS), else the CPU")
        form.addRow("Device", self.device_combo)
        self.precision_combo = QComboBox()
        for key in at.PRECISIONS:
            self.precision_combo.addItem(key, key)
        self.precision_combo.setToolTip("auto: bf16 (or fp16) mixed precision with channels-last on CUDA, fp32 "
                                        "elsewhere")
        form.addRow("Precision", self.precision_combo)
        self.resume_check = QCheckBox("Resume from the loaded checkpoint")
        self.resume_check.setEnabled(False)
        form.addRow(self.resume_check)
        v.addWidget(train_box)

        buttons = QGridLayout()
        self.train_button, self.pause_button, self.stop_button = make_run_buttons(
            "Train in the background (Ctrl+T); earlier runs stay on the curves",
            "Stop now; a checkpoint of the weights so far is written first")
        self.save_button = QPushButton("Save checkpoint...")
        self.save_button.setToolTip("Copy the run's checkpoint (written now if training) to a file of your choice")
        self.load_button = QPushButton("Load checkpoint...")
        self.load_button.setToolTip("Open a checkpoint.pt from this tab or 'backprop-studio train alexnet': its "
                                    "settings, curves and weights")
        self.history_button = QPushButton("Export history...")
        self.history_button.setToolTip("Save the run's losses, accuracies and gradient norms as CSV or JSON")
        self.clear_runs_button = QPushButton("Clear earlier runs")
        for i, b in enumerate((self.train_button, self.stop_button, self.pause_button, self.clear_runs_button,
                               self.save_button, self.load_button, self.history_button)):
            buttons.addWidget(b, *divmod(i, 2))
        self.save_button.setEnabled(False)
        self.history_button.setEnabled(False)
        v.addLayout(buttons)
        self.speed_label = QLabel("")
        self.speed_label.setToolTip("Images per second over the last seconds, the device and the time left")
        v.addWidget(self.speed_label)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Fixed height: the text changes ten times a second and must not re-lay out the plots.
        self.status_label.setFixedHeight(self.status_label.fontMetrics().lineSpacing() * 6 + 4)
        v.addWidget(self.status_label)
        v.addStretch(1)
        self._apply_defaults()
        return panel

    def _apply_defaults(self) -> None:
        small = at.SMALL_MODEL
        self.source_combo.setCurrentIndex(self.source_combo.findData(settings.read("alexnet/source", "shapes")))
        self.input_combo.setCurrentIndex(self.input_combo.findData(int(settings.read("alexnet/input",
                                                                                     small.input_size))))
        self.divider_combo.setCurrentIndex(self.divider_combo.findData(int(settings.read("alexnet/divider",
                                                                                         small.width_divider))))
        self.bn_check.setChecked(settings.read("alexnet/bn", "false") in (True, "true"))
        self.dropout_check.setChecked(settings.read("alexnet/dropout", "true") in (True, "true"))
        self.optimizer_combo.setCurrentIndex(self.optimizer_combo.findData(settings.read("alexnet/optimizer",
                                                                                         "adam")))

    def _build_curves_page(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        self.loss_plot = LiveCurvePlot("Loss (solid: training, dots: validation)", "epoch", "cross-entropy")
        self.acc_plot = LiveCurvePlot("Accuracy (solid: training, dots: validation)", "epoch", "accuracy (%)")
        self.acc_plot.getPlotItem().setYRange(0, 100, padding=0.02)
        self.grad_plot = LiveCurvePlot("Gradient norm of each layer's weights", "step", "‖∂L/∂W‖ (log scale)")
        self.grad_plot.getPlotItem().setLogMode(y=True)
        self.grad_plot.setToolTip("How strongly each layer is being changed. In a deep plain network the early "
                                  "layers' gradients can be much smaller (vanishing); BatchNorm evens them out.")
        self.speed_plot = LiveCurvePlot("Training speed", "epoch", "images / s")
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.acc_plot, 0, 1)
        grid.addWidget(self.grad_plot, 1, 0)
        grid.addWidget(self.speed_plot, 1, 1)
        return page

    def _build_filters_page(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        self.filters_plot = ImageGridPlot("First conv layer's filters (each stretched to full contrast)")
        self.filters_plot.setToolTip("The kernels of conv1, as colour images. They start as noise and turn into "
                                     "edge, colour and blob detectors as the network learns.")
        grid.addWidget(self.filters_plot, 0, 0, 2, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Feature maps of"))
        self.layer_combo = QComboBox()
        for k in range(1, 6):
            self.layer_combo.addItem(f"conv{k}")
        self.layer_combo.setToolTip("Each map is one filter's response (after ReLU) to the chosen image")
        row.addWidget(self.layer_combo)
        row.addWidget(QLabel("for validation image"))
        self.image_spin = QSpinBox(minimum=0, maximum=0)
        self.image_spin.setToolTip("Which validation image to follow (its maps update live while training)")
        row.addWidget(self.image_spin)
        row.addStretch(1)
        holder = QWidget()
        hv = QVBoxLayout(holder)
        hv.setContentsMargins(0, 0, 0, 0)
        hv.addLayout(row)
        self.chosen_plot = ImageGridPlot("Chosen validation image")
        self.chosen_plot.setMaximumHeight(220)
        hv.addWidget(self.chosen_plot)
        grid.addWidget(holder, 0, 1)
        self.maps_plot = ImagePlot("Feature maps", colormap="inferno")
        grid.addWidget(self.maps_plot, 1, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(1, 1)
        return page

    def _build_predictions_page(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        self.confusion_plot = ConfusionPlot("Confusion matrix on validation images")
        self.confusion_plot.setToolTip("Row: the true class; column: the network's answer. The diagonal is right; "
                                       "bright cells off it are the classes it mixes up.")
        self.preview_plot = ImageGridPlot("Validation predictions (green frame: right, red: wrong)")
        self.preview_plot.setToolTip("Hover a picture to read the true class, the answer and its probability")
        grid.addWidget(self.confusion_plot, 0, 0)
        grid.addWidget(self.preview_plot, 0, 1)
        return page

    def _build_classify_page(self) -> QWidget:
        page = QWidget()
        grid = QGridLayout(page)
        self.open_button = QPushButton("Open image... (Ctrl+O)")
        self.open_button.setToolTip("Classify a picture of your own with the trained network (top 5)")
        grid.addWidget(self.open_button, 0, 0)
        self.classify_label = QLabel("Train or load a network, then open an image.")
        self.classify_label.setWordWrap(True)
        grid.addWidget(self.classify_label, 0, 1)
        self.user_plot = ImageGridPlot("Your image as the network sees it")
        grid.addWidget(self.user_plot, 1, 0)
        self.top5_plot = BarPlot("Top 5 classes", ["", "", "", "", ""], "probability")
        grid.addWidget(self.top5_plot, 1, 1)
        grid.setRowStretch(1, 1)
        return page

    def _build_table_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        row = QHBoxLayout()
        row.addWidget(QLabel("Output classes in the table"))
        self.table_classes_spin = QSpinBox(minimum=2, maximum=100000, value=10)
        self.table_classes_spin.setToolTip("The last layer's size: the data's classes when training; ImageNet "
                                           "has 1000, as in the lecture.")
        row.addWidget(self.table_classes_spin)
        self.lecture_button = QPushButton("The lecture's AlexNet")
        self.lecture_button.setToolTip("227 × 227 × 3 input, full width, no BatchNorm, 1000 classes")
        row.addWidget(self.lecture_button)
        row.addStretch(1)
        self.total_label = QLabel()
        self.total_label.setStyleSheet("font-weight: bold; font-size: 12pt;")
        row.addWidget(self.total_label)
        v.addLayout(row)
        explain = QLabel("Output size of a convolution: (H − K + 2P) / S + 1; of a pooling window Pₛ: (H − Pₛ) / S + 1. "
                         "Weights of a conv layer: K² · C · N (N filters of K × K over C channels), plus N biases. "
                         "Pooling has nothing to learn. An FC layer has inputs × outputs weights plus one bias per "
                         "output.")
        explain.setWordWrap(True)
        v.addWidget(explain)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["Layer", "Tensor size", "Weights", "Biases", "Parameters",
                                              "How it is worked out"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        for col in range(5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        v.addWidget(self.table, 1)
        return page

    def _connect(self) -> None:
        for widget in (self.input_combo, self.divider_combo, self.source_combo):
            widget.currentIndexChanged.connect(self._on_model_changed)
        for widget in (self.bn_check, self.dropout_check):
            widget.toggled.connect(self._on_model_changed)
        self.table_classes_spin.valueChanged.connect(lambda _v: self.update_table())
        self.lecture_button.clicked.connect(self.show_lecture_alexnet)
        self.optimizer_combo.currentIndexChanged.connect(self._on_optimizer_changed)
        self.folder_button.clicked.connect(self._choose_folder)
        self.train_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.runner.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.save_button.clicked.connect(self.save_checkpoint_dialog)
        self.load_button.clicked.connect(self.load_checkpoint_dialog)
        self.history_button.clicked.connect(self.export_history_dialog)
        self.clear_runs_button.clicked.connect(self.clear_earlier_runs)
        self.open_button.clicked.connect(self.open_image_dialog)
        self.layer_combo.currentIndexChanged.connect(lambda _i: self._mark("maps"))
        self.image_spin.valueChanged.connect(self._on_feature_image_changed)
        self.pages.currentChanged.connect(lambda _i: self._redraw())
        self.runner.record.connect(self._on_record)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)
        self.runner.state_changed.connect(self._on_state)
        self.download_runner.record.connect(self._on_download_record)
        self.download_runner.failed.connect(self._on_failed)
        self.download_runner.finished.connect(self._on_download_finished)
        # Ctrl+O is the window's File > Open image..., which comes to open_image_dialog here.
        for key, slot in (("Ctrl+T", self.start_training),):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # --- the model and its table ---------------------------------------------------------------------
    def source(self) -> str:
        return self.source_combo.currentData()

    def model_config(self, num_classes: int | None = None) -> AlexNetConfig:
        return AlexNetConfig(
            input_size=self.input_combo.currentData(),
            in_channels=1 if self.source() in ("mnist", "fashion-mnist") else 3,
            num_classes=num_classes or max(2, len(self.class_names) or 10),
            width_divider=self.divider_combo.currentData(), batch_norm=self.bn_check.isChecked(),
            dropout=0.5 if self.dropout_check.isChecked() else 0.0)

    @Slot()
    def _on_model_changed(self, *_args) -> None:
        self._update_model_label()
        self.update_table()

    def _update_model_label(self) -> None:
        config = self.model_config()
        params = total_params(layer_table(AlexNet(config)))
        heavy = config.input_size == 227 and config.width_divider <= 2
        self.model_label.setText(f"{config.describe()}: {params:,} parameters"
                                 + ("  (needs a GPU to train in reasonable time)" if heavy else ""))

    @Slot()
    def show_lecture_alexnet(self) -> None:
        self.input_combo.setCurrentIndex(self.input_combo.findData(227))
        self.divider_combo.setCurrentIndex(self.divider_combo.findData(1))
        self.bn_check.setChecked(False)
        self.dropout_check.setChecked(True)
        if self.source() in ("mnist", "fashion-mnist"):
            self.source_combo.setCurrentIndex(self.source_combo.findData("shapes"))
        self.table_classes_spin.setValue(1000)
        self.update_table()

    def update_table(self) -> None:
        config = dataclasses.replace(self.model_config(), num_classes=self.table_classes_spin.value())
        rows = layer_table(AlexNet(config))
        self.table.setRowCount(len(rows) + 1)
        for r, row in enumerate(rows):
            values = (row.name, row.shape_text, f"{row.weights:,}", f"{row.biases:,}", f"{row.params:,}", row.formula)
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if 2 <= c <= 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        total = total_params(rows)
        last = len(rows)
        for c, value in enumerate(("Total", "", "", "", f"{total:,}", "the sum of the column")):
            item = QTableWidgetItem(value)
            font = item.font()
            font.setBold(True)
            item.setFont(font)
            if c == 4:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(last, c, item)
        self.total_label.setText(f"{config.describe()}, {config.num_classes} classes: {total:,} parameters")

    def table_total(self) -> str:
        return self.table.item(self.table.rowCount() - 1, 4).text()

    def _on_optimizer_changed(self, _index: int) -> None:
        # Each optimiser has its own sensible scale of learning rate.
        self.lr_spin.setValue(0.02 if self.optimizer_combo.currentData() == "sgd" else at.TrainConfig.lr)

    # --- starting and stopping ----------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)

    def train_config(self) -> at.TrainConfig:
        source = self.source()
        size = self.input_combo.currentData()
        image_size = {"shapes": min(size, 64), "synthetic": size, "folder": size}.get(source, 32)
        device, _, _ = at.resolve_train_device(self.device_combo.currentData())
        threads = max(1, (os.cpu_count() or 2) - 1) if device.type == "cpu" else None  # a core for the window
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = image_data.default_runs_dir() / f"{stamp}-{len(self.runs) + 1}"
        resume = (self.loaded_checkpoint.path if self.resume_check.isChecked() and self.loaded_checkpoint
                  else None)
        return at.TrainConfig(
            model=self.model_config(10),
            data=image_data.DataConfig(source=source, folder=self.folder_edit.text().strip() or None,
                                       image_size=image_size, train_size=self.train_size_spin.value(),
                                       val_size=1000),
            optimizer=self.optimizer_combo.currentData(), lr=self.lr_spin.value(),
            schedule=self.schedule_combo.currentData(), weight_decay=self.wd_spin.value(),
            batch_size=self.batch_spin.value(), epochs=self.epochs_spin.value(),
            device=self.device_combo.currentData(), precision=self.precision_combo.currentData(),
            num_threads=threads, out_dir=str(run_dir), resume_from=resume,
            feature_image=self.image_spin.value())

    def _data_missing(self) -> str | None:
        source, folder = self.source(), self.folder_edit.text().strip() or None
        if source in ("mnist", "fashion-mnist") and datasets.locate(source, folder) is None:
            return datasets.missing_message(source, folder)
        if source == "cifar10" and image_data.locate_cifar10(folder) is None:
            return image_data.cifar10_missing_message(folder)
        return None

    @Slot()
    def start_training(self) -> None:
        if self.runner.is_busy() or self.download_runner.is_busy():
            return
        self._remember_settings()
        missing = self._data_missing()
        if missing:
            self._offer_download(missing)
            return
        config = self.train_config()
        self.run_dir = Path(config.out_dir)
        self.control = at.LiveControl()
        self.control.feature_image = self.image_spin.value()
        self.control.user_image = self._prepared_user_image(config.model)
        colour = RUN_COLOURS[len(self.runs) % len(RUN_COLOURS)]
        self.current_run = RunCurves(f"run {len(self.runs) + 1}: {config.model.describe()}", colour)
        self.runs.append(self.current_run)
        self.grad_steps, self.grad_history = [], []
        self._grad_drawn = 0
        self.latest = self.latest_snapshot = self.started = self.last_finished = None
        self._last_failure = ""
        self._set_status("Loading the data...")
        self.runner.start(at.train, config, self.control)

    def _remember_settings(self) -> None:
        for key, value in (("alexnet/source", self.source()), ("alexnet/folder", self.folder_edit.text()),
                           ("alexnet/train_size", self.train_size_spin.value()),
                           ("alexnet/input", self.input_combo.currentData()),
                           ("alexnet/divider", self.divider_combo.currentData()),
                           ("alexnet/bn", "true" if self.bn_check.isChecked() else "false"),
                           ("alexnet/dropout", "true" if self.dropout_check.isChecked() else "false"),
                           ("alexnet/optimizer", self.optimizer_combo.currentData()),
                           ("alexnet/lr", self.lr_spin.value()), ("alexnet/batch", self.batch_spin.value()),
                           ("alexnet/epochs", self.epochs_spin.value())):
            settings.write(key, value)

    def _offer_download(self, message: str) -> None:
        source = self.source()
        answer = QMessageBox.question(
            self, "Dataset not found", f"{message}\n\nDownload it now into the app's data folder?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer != QMessageBox.StandardButton.Yes:
            self._set_status(message)
            return
        self.folder_edit.setText("")
        self._pending_start = True
        self.train_button.setEnabled(False)
        self._set_status("Downloading...")
        if source == "cifar10":
            self.download_runner.start(image_data.download_cifar10_iter)
        else:
            self.download_runner.start(datasets.download_iter, source)

    @Slot(object)
    def _on_download_record(self, record) -> None:
        size = f" of {record.total / 1e6:.0f} MB" if record.total else ""
        self._set_status(f"Downloading {record.file}: {record.done / 1e6:.1f} MB{size}")

    @Slot(bool)
    def _on_download_finished(self, completed: bool) -> None:
        self.train_button.setEnabled(not self.runner.is_busy())
        if completed and self._pending_start:
            self._pending_start = False
            self.start_training()
        self._pending_start = False

    @Slot()
    def stop_training(self) -> None:
        """Ask the run to end after its current step: it writes its checkpoint, then reports its end.

        (Closing the generator, as TaskRunner.stop does, also saves, but only after the runner has
        announced the end; the cooperative stop keeps the order: checkpoint first, then 'finished'.)
        """
        self.control.stop_now = True
        if self.runner.state == "paused":
            self.runner.resume()
        self.download_runner.stop()

    @Slot(str)
    def _on_state(self, state: str) -> None:
        busy = state != "idle"
        follow_runner_state(state, self.train_button, self.pause_button, self.stop_button)
        self.train_button.setEnabled(not busy and not self.download_runner.is_busy())
        self.load_button.setEnabled(not busy)
        for w in (self.source_combo, self.folder_edit, self.folder_button, self.train_size_spin, self.input_combo,
                  self.divider_combo, self.bn_check, self.dropout_check, self.optimizer_combo, self.lr_spin,
                  self.schedule_combo, self.wd_spin, self.batch_spin, self.epochs_spin, self.device_combo,
                  self.precision_combo, self.resume_check):
            w.setEnabled(not busy if w is not self.resume_check else not busy and self.loaded_checkpoint is not None)
        if busy:
            self.save_button.setEnabled(True)
        if state == "paused":
            self._mark("status")

    # --- records from the worker --------------------------------------------------------------------
    @Slot(object)
    def _on_record(self, record) -> None:
        if isinstance(record, at.LoadingData):
            self._set_status(record.message)
        elif isinstance(record, at.RunStarted):
            self._on_started(record)
        elif isinstance(record, at.TrainProgress):
            self._on_progress(record)
        elif isinstance(record, at.TrainFinished):
            self.last_finished = record
            self._final_message = (f"Finished: {record.step} steps in {record.seconds:.0f} s"
                             + (f", validation accuracy {record.final_val_accuracy * 100:.1f} %"
                                if record.final_val_accuracy is not None else "")
                             + f". Checkpoint and history in {self.run_dir}.")
            self._set_status(self._final_message)

    def _on_started(self, record: at.RunStarted) -> None:
        self.started = record
        # Fixed x ranges for the whole run: axes that do not move are not re-laid out at every redraw
        # (their painting was most of the window's work while training).
        epochs = self.epochs_spin.value()
        for plot in (self.loss_plot, self.acc_plot, self.speed_plot):
            plot.getPlotItem().setXRange(0, max(epochs, max((r.epoch[-1] for r in self.runs if r.epoch),
                                                            default=0)), padding=0.02)
        self.grad_plot.getPlotItem().setXRange(0, max(1, record.steps_total), padding=0.02)
        self.class_names = record.class_names
        self.val_images = record.val_images
        self.image_spin.setMaximum(max(0, len(record.val_images) - 1))
        if self.table_classes_spin.value() != 1000:
            self.table_classes_spin.setValue(len(record.class_names))
        notes = " ".join(record.notes)
        skipped = f" {record.skipped} unreadable file(s) skipped." if record.skipped else ""
        self._set_status(f"Training {record.model_config.describe()} ({record.params:,} parameters) on "
                         f"{record.data_title}: {record.train_size} training / {record.val_size} validation images, "
                         f"{record.device}, {record.precision}.{skipped} {record.data_note} {notes}")

    def _on_progress(self, record: at.TrainProgress) -> None:
        self.latest = record
        run = self.current_run
        if run is not None:
            run.add(record.epoch_float, record.train_loss, record.train_accuracy, record.val_loss,
                    record.val_accuracy)
            if record.val_accuracy is None and record.images_per_s > 0:
                run.speed_epoch.append(record.epoch_float)
                run.images_per_s.append(record.images_per_s)
        if np.isfinite(record.grad_norms).all():
            self.grad_steps.append(record.step)
            self.grad_history.append(record.grad_norms)
        if record.snapshot is not None:
            self.latest_snapshot = record.snapshot
            self._dirty.update({"maps", "predictions", "classify"})
        if record.checkpoint and self._pending_checkpoint_copy:
            self._copy_checkpoint(record.checkpoint, self._pending_checkpoint_copy)
            self._pending_checkpoint_copy = None
        self._dirty.update({"curves", "filters", "status"})

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._last_failure = message
        self._set_status(f"Training stopped: {message}")
        QMessageBox.warning(self, "Training stopped", message)

    @Slot(bool)
    def _on_finished(self, completed: bool) -> None:
        self._redraw(force=True)
        checkpoint = self.run_dir / at.CHECKPOINT_NAME if self.run_dir else None
        if checkpoint is not None and checkpoint.is_file():
            try:
                ckpt = at.load_checkpoint(checkpoint)
                self._use_checkpoint_weights(ckpt, f"this run ({ckpt.step} steps)")
            except at.CheckpointError as exc:
                self._set_status(f"The run's checkpoint could not be read back: {exc}")
            self.history_button.setEnabled(True)
            self.save_button.setEnabled(True)
        if self._last_failure:
            self._set_status(f"Training stopped: {self._last_failure}")
        elif completed and self.last_finished is not None and self.last_finished.completed:
            self._set_status(self._final_message)
        else:
            step = self.last_finished.step if self.last_finished else (self.latest.step if self.latest else 0)
            self._set_status(f"Stopped at step {step}; the checkpoint in "
                             f"{self.run_dir} holds the weights so far (load it and tick Resume to go on).")

    # --- drawing (at most ten times a second, only what changed) ------------------------------------
    def _mark(self, what: str) -> None:
        self._dirty.add(what)

    @Slot()
    def _redraw(self, force: bool = False) -> None:
        dirty, self._dirty = self._dirty, set()
        if force:
            dirty = {"curves", "filters", "maps", "predictions", "classify", "status"}
        if not dirty:
            return
        page = self.pages.currentIndex()
        for item, on_page, draw in (("status", None, self._draw_status), ("curves", 0, self._draw_curves),
                                    ("filters", 1, self._draw_filters), ("maps", 1, self._draw_maps),
                                    ("predictions", 2, self._draw_predictions),
                                    ("classify", None, self._draw_classification)):
            if item not in dirty:
                continue
            if force or on_page is None or on_page == page:
                draw()
            else:
                self._dirty.add(item)  # a hidden page: drawn when it is shown

    def _draw_status(self) -> None:
        r = self.latest
        if r is None or not self.runner.is_busy():
            return  # the end of a run leaves its own message
        val = f", validation accuracy {r.val_accuracy * 100:.1f} %" if r.val_accuracy is not None else ""
        paused = " (paused: Resume to go on)" if self.runner.state == "paused" else ""
        self._set_status(f"Epoch {r.epoch}/{r.epochs}, step {r.step}/{r.steps_total}: loss {r.train_loss:.3f}, "
                         f"training accuracy {r.train_accuracy * 100:.1f} %{val}; learning rate {r.lr:.2g}{paused}")
        device = self.started.device if self.started else ""
        self.speed_label.setText(f"{r.images_per_s:,.0f} images/s on {device}, "
                                 f"ETA {at._format_seconds(r.eta_s)}")

    def _draw_curves(self) -> None:
        """Redraw the curve plots, one plot per call while training.

        Each plot costs 5-15 ms to repaint on a CPU; repainting all four in one event-loop turn
        stalled the window for 60 ms or more, so during a run they take turns (each still
        refreshes every CURVES_EVERY_S). When idle, or forced, all are drawn at once.
        """
        plots = ("loss", "accuracy", "speed", "gradients")
        busy = self.runner.is_busy()
        now = time.perf_counter()
        if busy and now - self._curves_drawn_at < CURVES_EVERY_S / len(plots):
            self._dirty.add("curves")  # drawn at the next chance
            return
        self._curves_drawn_at = now
        if busy:
            which = [plots[self._curve_turn % len(plots)]]
            self._curve_turn += 1
            self._dirty.add("curves")  # the others' turns come next
        else:
            which = list(plots)
        for name in which:
            self._draw_curve_plot(name)

    def _draw_curve_plot(self, name: str) -> None:
        if name == "gradients":
            if self.grad_history and len(self.grad_history) != self._grad_drawn:
                self._grad_drawn = len(self.grad_history)
                norms = np.array(self.grad_history)  # (T, L)
                names = (self.latest.layer_names if self.latest
                         else tuple(f"layer {k}" for k in range(norms.shape[1])))
                for k, layer in enumerate(names):
                    self.grad_plot.set_curve(layer, self.grad_steps, np.maximum(norms[:, k], 1e-12),
                                             color=LAYER_COLOURS[k % len(LAYER_COLOURS)])
            return
        for run in self.runs:
            size = (len(run.epoch), len(run.val_epoch), len(run.speed_epoch))
            if run.drawn.get(name) == size or not any(size):
                continue  # nothing new for this plot (earlier runs never change)
            run.drawn[name] = size
            if name == "loss":
                self.loss_plot.set_curve(f"{run.name} (train)", run.epoch, run.train_loss, color=run.colour)
                self.loss_plot.set_curve(f"{run.name} (validation)", run.val_epoch, run.val_loss,
                                         color=run.colour, symbol="o")
            elif name == "accuracy":
                self.acc_plot.set_curve(f"{run.name} (train)", run.epoch, run.train_acc, color=run.colour)
                self.acc_plot.set_curve(f"{run.name} (validation)", run.val_epoch, run.val_acc,
                                        color=run.colour, symbol="o")
            elif run.speed_epoch:
                self.speed_plot.set_curve(run.name, run.speed_epoch, run.images_per_s, color=run.colour)

    def _draw_filters(self) -> None:
        if self.latest is None:
            return
        filters = self.latest.filters  # (F, C, K, K)
        columns = int(np.ceil(np.sqrt(len(filters) * 1.5)))
        header = ["filter", "channel", "row", "col", "weight"]
        f, c, kh, kw = filters.shape
        rows = [(i, ch, r, q, float(filters[i, ch, r, q])) for i in range(f) for ch in range(c) for r in range(kh)
                for q in range(kw)]
        self.filters_plot.set_tiles(normalise_each(filters), columns,
                                    captions=[f"filter {i}" for i in range(len(filters))], csv=(header, rows))
        self.filters_plot.setTitle(f"conv1's {f} filters ({kh} × {kw} × {c}), each stretched to full contrast")

    def _current_maps(self) -> tuple[np.ndarray | None, dict]:
        """The chosen validation image and its feature maps: from the live run, or computed from loaded weights."""
        index = self.image_spin.value()
        snap = self.latest_snapshot
        if snap is not None and snap.feature_index == index and self.runner.is_busy():
            return snap.feature_image, snap.feature_maps
        if self.model is not None and self.val_images is not None and index < len(self.val_images):
            image = self.val_images[index]  # prepare_batch adapts its channels to the model
            return image, at.feature_maps(self.model, image)
        if snap is not None:
            return snap.feature_image, snap.feature_maps
        return None, {}

    def _draw_maps(self) -> None:
        image, maps = self._current_maps()
        if image is None:
            return
        self.chosen_plot.set_tiles(image[None] / 255.0, 1)
        name = self.layer_combo.currentText()
        fmap = maps.get(name)
        if fmap is None:
            return
        c, h, w = fmap.shape
        self.maps_plot.setTitle(f"Feature maps: {name} ({h} × {w} × {c})")
        self.maps_plot.export_title = f"Feature maps {name}"
        self.maps_plot.set_stack(fmap, columns=int(np.ceil(np.sqrt(c * 1.4))))

    def _draw_predictions(self) -> None:
        snap = self.latest_snapshot
        if snap is None:
            return
        self.confusion_plot.set_matrix(snap.confusion, self.class_names)
        accuracy = np.trace(snap.confusion) / max(1, snap.confusion.sum())
        self.confusion_plot.setTitle(f"Confusion matrix on {snap.val_count} validation images "
                                     f"(accuracy {accuracy * 100:.1f} %, step {snap.step})")
        names = list(self.class_names) or [str(k) for k in range(snap.confusion.shape[0])]
        right = snap.preview_predicted == snap.preview_labels
        captions = [f"true: {names[t]}\nanswer: {names[p]} ({c * 100:.0f} %)" for t, p, c in
                    zip(snap.preview_labels, snap.preview_predicted, snap.preview_confidence)]
        csv = (["image", "true class", "predicted class", "probability"],
               [(i, names[t], names[p], float(c)) for i, (t, p, c) in
                enumerate(zip(snap.preview_labels, snap.preview_predicted, snap.preview_confidence))])
        self.preview_plot.set_tiles(snap.preview_images / 255.0, 6, captions=captions,
                                    border_colours=[GREEN if ok else RED for ok in right],
                                    border=max(1, snap.preview_images.shape[-1] // 14), csv=csv)
        self.preview_plot.setTitle(f"Validation predictions: {int(right.sum())} of {len(right)} right "
                                   "(green frame: right, red: wrong)")

    # --- classifying the user's image ---------------------------------------------------------------
    def _prepared_user_image(self, config: AlexNetConfig) -> np.ndarray | None:
        if self.user_image is None:
            return None
        return image_data.fit_square(self.user_image, config.input_size, config.in_channels)

    def open_image(self, path: str | Path) -> bool:
        image = self.read_image(path, self.classify_label)
        if image is None:
            return False
        self.user_image = image
        self.user_image_name = Path(path).name
        self.pages.setCurrentIndex(3)
        config = self.model.config if self.model is not None else self.model_config()
        self.control.user_image = self._prepared_user_image(config)
        self._draw_classification()
        return True

    def _draw_classification(self) -> None:
        if self.user_image is None:
            return
        config = self.model.config if self.model is not None else self.model_config()
        prepared = self._prepared_user_image(config)
        self.user_plot.set_tiles(prepared[None] / 255.0, 1)
        self.user_plot.setTitle(f"{self.user_image_name} as the network sees it ({config.input_size} × "
                                f"{config.input_size})")
        snap = self.latest_snapshot
        if self.runner.is_busy() and snap is not None and snap.user_probs is not None:
            probs, source = snap.user_probs, f"the weights at step {snap.step} (updating while it trains)"
        elif self.model is not None:
            probs, source = at.predict_probs(self.model, prepared), self.model_source
        else:
            self.classify_label.setText(f"{self.user_image_name} loaded. Train or load a network to classify it.")
            return
        names = list(self.class_names) + [f"class {k}" for k in range(len(self.class_names), len(probs))]
        order = np.argsort(probs)[::-1][:5]
        labels = [names[k] for k in order]
        self.top5_plot.labels = labels
        self.top5_plot.getPlotItem().getAxis("bottom").setTicks([list(enumerate(labels))])
        self.top5_plot.set_values(probs[order], highlight=0)
        lines = "\n".join(f"{i + 1}. {names[k]}: {probs[k] * 100:.1f} %" for i, k in enumerate(order))
        self.classify_label.setText(f"{self.user_image_name}, classified with {source}:\n{lines}")

    def top5(self) -> list[tuple[str, float]]:
        return list(zip(self.top5_plot.labels, self.top5_plot.values.tolist()))

    # --- checkpoints and history ----------------------------------------------------------------------
    def _use_checkpoint_weights(self, ckpt: at.Checkpoint, source: str) -> None:
        self.model = at.model_from_checkpoint(ckpt, "cpu")
        self.model_source = source
        if ckpt.class_names:
            self.class_names = ckpt.class_names
        self._dirty.update({"maps", "classify"})
        if self.user_image is not None:
            self._draw_classification()

    def load_checkpoint_dialog(self) -> None:
        folder = str(self.run_dir or image_data.default_runs_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Load an AlexNet checkpoint", folder,
                                              "Checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str | Path) -> bool:
        """Adopt a checkpoint's architecture, curves and weights; a clear message when it does not fit."""
        try:
            ckpt = at.load_checkpoint(path)
            model = at.model_from_checkpoint(ckpt, "cpu")
        except at.CheckpointError as exc:
            self._set_status(str(exc))
            QMessageBox.warning(self, "Cannot load checkpoint", str(exc))
            return False
        config = ckpt.model_config
        if config.width_divider not in DIVIDERS:
            self.divider_combo.addItem(f"widths / {config.width_divider}", config.width_divider)
        self.input_combo.setCurrentIndex(self.input_combo.findData(config.input_size))
        self.divider_combo.setCurrentIndex(self.divider_combo.findData(config.width_divider))
        self.bn_check.setChecked(config.batch_norm)
        self.dropout_check.setChecked(config.dropout > 0)
        data = ckpt.train_config.get("data", {})
        if data.get("source") in image_data.SOURCES:
            self.source_combo.setCurrentIndex(self.source_combo.findData(data["source"]))
            self.train_size_spin.setValue(int(data.get("train_size", self.train_size_spin.value())))
        self.loaded_checkpoint = ckpt
        self.model = model
        self.model_source = f"{Path(path).name} ({ckpt.step} steps)"
        self.class_names = ckpt.class_names
        self.table_classes_spin.setValue(config.num_classes)
        self.resume_check.setEnabled(True)
        self.resume_check.setChecked(not ckpt.completed)
        colour = RUN_COLOURS[len(self.runs) % len(RUN_COLOURS)]
        run = RunCurves.from_history(f"run {len(self.runs) + 1}: {Path(path).parent.name}/{Path(path).name}",
                                     colour, ckpt.history)
        self.runs.append(run)
        self.run_dir = Path(path).parent
        self.history_button.setEnabled(True)
        self.save_button.setEnabled(True)
        self.latest_snapshot = None
        filters = model.features.conv1.weight.detach().numpy().copy()
        self.latest = at.TrainProgress(
            ckpt.epoch, int(ckpt.train_config.get("epochs", ckpt.epoch)), ckpt.step, ckpt.step, float(ckpt.epoch),
            float("nan"), float("nan"), 0.0, 0.0, 0.0, 0.0, tuple(n for n, _ in model.weight_layers()),
            np.full(8, np.nan), filters)
        self._dirty.update({"curves", "filters", "maps", "classify"})
        self._redraw(force=True)
        state = "finished" if ckpt.completed else "stopped early: tick Resume and Train to go on"
        self._set_status(f"Loaded {Path(path).name}: {config.describe()}, {len(ckpt.class_names)} classes, "
                         f"step {ckpt.step} ({state}).")
        return True

    def save_checkpoint_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the checkpoint", str(Path.home() / "alexnet.pt"),
                                              "Checkpoints (*.pt)")
        if path:
            self.save_checkpoint_to(path)

    def save_checkpoint_to(self, path: str | Path) -> None:
        """Copy the run's checkpoint to ``path``; while training, a fresh one is written first."""
        if self.runner.is_busy():
            self._pending_checkpoint_copy = str(path)
            self.control.save_now = True
            self._set_status("Writing a checkpoint at the next step...")
            return
        source = self.run_dir / at.CHECKPOINT_NAME if self.run_dir else None
        if source is None or not source.is_file():
            QMessageBox.information(self, "No checkpoint", "Train or load a network first.")
            return
        self._copy_checkpoint(str(source), str(path))

    def _copy_checkpoint(self, source: str, target: str) -> None:
        try:
            tmp = Path(target).with_name(Path(target).name + ".part")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            QMessageBox.warning(self, "Save failed", f"Could not write {target}: {exc}")
            return
        self._set_status(f"Checkpoint saved to {target}.")

    def export_history_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the run history", str(Path.home() / "history.csv"),
                                              "CSV table (*.csv);;JSON (*.json)")
        if path:
            self.export_history(path)

    def export_history(self, path: str | Path) -> Path | None:
        history = self._run_history()
        if history is None:
            QMessageBox.information(self, "No history", "Train or load a network first.")
            return None
        try:
            return at.save_history_file(path, history, {"exported_from": "Backprop Studio AlexNet tab"})
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return None

    def _run_history(self) -> list[dict] | None:
        source = self.run_dir / at.HISTORY_JSON if self.run_dir else None
        if source is not None and source.is_file():
            return at.read_history(source)
        if self.loaded_checkpoint is not None:
            return self.loaded_checkpoint.history
        return None

    @Slot()
    def clear_earlier_runs(self) -> None:
        keep = [self.current_run] if self.runner.is_busy() and self.current_run else []
        for run in keep:
            run.drawn = {}
        self.runs = keep
        for plot in (self.loss_plot, self.acc_plot):
            plot.getPlotItem().clear()
            plot._curves.clear()
            plot.getPlotItem().legend.clear()
        self._dirty.add("curves")

    # --- feature image ---------------------------------------------------------------------------------
    @Slot(int)
    def _on_feature_image_changed(self, index: int) -> None:
        self.control.feature_image = index
        self.control.snapshot_now = True
        self._mark("maps")

    def _set_status(self, text: str) -> None:
        self.status_label.setText(" ".join(text.split()))
        self.status_label.setToolTip(text)

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        self._redraw_timer.stop()
        ok = self.runner.shutdown(timeout_s)
        return self.download_runner.shutdown(timeout_s) and ok


if __name__ == "__main__":
    raise SystemExit(run_standalone(AlexNetTab))
