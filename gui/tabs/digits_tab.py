"""Draw a digit: live CNN prediction, what the network sees, its feature maps and filters,
and retraining the network in the background."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledSlider

from engine import datasets, digits
from engine.device import resolve_device
from gui import settings
from gui.tabs.base import StudioTab, TabContext, run_standalone
from gui.widgets.draw_canvas import DrawCanvas
from gui.widgets.plots import BarPlot, CurvePlot, ImagePlot
from gui.widgets.run_buttons import follow_runner_state, make_run_buttons
from gui.workers import TaskRunner

GREYS = pg.ColorMap(pos=[0.0, 1.0], color=[(0, 0, 0), (255, 255, 255)])
FEATURE_LAYERS = ("conv1", "conv2", "conv3", "conv4")


class DigitsTab(StudioTab):
    title = "Draw a digit"
    accepts_images = True

    def __init__(self, context: TabContext | None = None, parent: QWidget | None = None):
        super().__init__(context, parent)
        self.shipped_info = {}
        self.model = None
        self.weights_source = "shipped"
        self.load_error = ""
        try:
            self.model = digits.load_pretrained("cpu")
            self.shipped_info = digits.checkpoint_info()
        except Exception as exc:  # missing, corrupt or incompatible file: explain, keep running
            self.load_error = (f"The shipped network ({digits.ASSET_PATH.name}) could not be loaded: {exc}. "
                               "Retrain it below, or reinstall the app.")
        self.last_probs = np.zeros(10)  # (10,)
        self.last_input = np.zeros((28, 28), np.float32)  # (28, 28)
        self.last_maps: dict[str, np.ndarray] = {}  # name -> (C, H, W)
        self.train_runner = TaskRunner("Training the digit CNN", self)
        self.download_runner = TaskRunner("Downloading MNIST", self)
        self._history = {"step": [], "loss": [], "train_acc": [], "epoch": [], "test_acc": []}
        self._curves_dirty = False
        self._steps_per_epoch = 1.0
        self._pending_train_folder: str | None = None

        self._build_ui()
        self._connect()
        self._predict_timer = QTimer(self, singleShot=True, interval=16)  # coalesce to one per frame
        self._predict_timer.timeout.connect(self.update_prediction)
        self._curve_timer = QTimer(self, interval=100)
        self._curve_timer.timeout.connect(self._redraw_curves)
        self._curve_timer.start()
        self._show_weights_label()
        self.update_prediction()
        self.show_filters()
        QTimer.singleShot(0, self.mark_ready)

    # --- construction ------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(splitter)

        # Left: the canvas and its tools.
        left = QWidget()
        lv = QVBoxLayout(left)
        self.canvas = DrawCanvas(brush_size=float(settings.read("digits/brush_size", 18)))
        lv.addWidget(self.canvas, 1)
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Brush"))
        self.brush_slider = QLabeledSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(4, 40)
        self.brush_slider.setValue(int(self.canvas.brush_size))
        self.brush_slider.setToolTip("Brush size in canvas pixels (the canvas is 280 x 280)")
        tools.addWidget(self.brush_slider, 1)
        lv.addLayout(tools)
        buttons = QHBoxLayout()
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Wipe the canvas (Esc)")
        self.undo_button = QPushButton("Undo stroke")
        self.undo_button.setToolTip("Remove the last stroke (Ctrl+Z)")
        self.open_button = QPushButton("Open image...")
        self.open_button.setToolTip("Read a photo or scan of a handwritten digit (Ctrl+O); "
                                    "you can also drop a file on the window")
        for b in (self.clear_button, self.undo_button, self.open_button):
            buttons.addWidget(b)
        lv.addLayout(buttons)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet("color: #a33;")
        lv.addWidget(self.message_label)
        splitter.addWidget(left)

        # Middle: prediction, network input, feature maps and filters.
        middle = QWidget()
        grid = QGridLayout(middle)
        guess_box = QGroupBox("Prediction")
        gv = QVBoxLayout(guess_box)
        self.guess_label = QLabel("draw a digit")
        font = QFont()
        font.setPointSize(40)
        font.setBold(True)
        self.guess_label.setFont(font)
        self.guess_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.guess_label.setWordWrap(True)
        self.guess_label.setMinimumWidth(90)
        self.guess_label.setToolTip("The class with the highest probability")
        self.confidence_label = QLabel("")
        self.confidence_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        gv.addWidget(self.guess_label)
        gv.addWidget(self.confidence_label)
        grid.addWidget(guess_box, 0, 0)
        self.prob_plot = BarPlot("Class probabilities", [str(d) for d in range(10)], "probability")
        grid.addWidget(self.prob_plot, 0, 1)
        self.input_plot = ImagePlot("Network input (28 x 28)", colormap=GREYS)
        self.input_plot.setToolTip("What the network sees: your drawing scaled into a 20 x 20 box and placed "
                                   "in 28 x 28 by its centre of mass, white on black, as MNIST digits are.")
        grid.addWidget(self.input_plot, 0, 2)
        maps_box = QWidget()
        mv = QVBoxLayout(maps_box)
        mv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Feature maps of"))
        self.layer_combo = QComboBox()
        for name in FEATURE_LAYERS:
            self.layer_combo.addItem(name)
        self.layer_combo.setToolTip("conv1 and conv2 see the 28 x 28 image; conv3 and conv4 work at 14 x 14 "
                                    "after max pooling. Each map is one filter's response (after ReLU).")
        row.addWidget(self.layer_combo)
        row.addStretch(1)
        mv.addLayout(row)
        self.maps_plot = ImagePlot("Feature maps: conv1", colormap="inferno")
        mv.addWidget(self.maps_plot, 1)
        grid.addWidget(maps_box, 1, 0, 1, 2)
        self.filters_plot = ImagePlot("Learned filters: conv1 (5 x 5)", colormap="CET-D1", symmetric=True)
        self.filters_plot.setToolTip("The 32 first-layer kernels the network learned; blue is negative, "
                                     "red positive. Each slides over the input to make one feature map.")
        grid.addWidget(self.filters_plot, 1, 2)
        grid.setRowStretch(0, 2)
        grid.setRowStretch(1, 3)
        splitter.addWidget(middle)

        splitter.addWidget(self._build_retrain_panel())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 6)
        splitter.setStretchFactor(2, 3)
        splitter.setSizes([420, 760, 330])  # room for a comfortable canvas

    def _build_retrain_panel(self) -> QWidget:
        box = QGroupBox("Retrain the network")
        v = QVBoxLayout(box)
        form = QFormLayout()
        self.epochs_spin = QSpinBox(minimum=1, maximum=100, value=int(settings.read("digits/epochs", 3)))
        self.epochs_spin.setToolTip("Passes over the training set")
        self.lr_spin = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1.0, singleStep=0.0005,
                                      value=float(settings.read("digits/lr", 0.002)))
        self.lr_spin.setToolTip("Peak learning rate of the one-cycle schedule (AdamW). Too large "
                                "(try 0.5) and training stalls or blows up.")
        self.batch_spin = QSpinBox(minimum=8, maximum=2048, singleStep=32,
                                   value=int(settings.read("digits/batch_size", 128)))
        self.batch_spin.setToolTip("Images per gradient step")
        self.samples_spin = QSpinBox(minimum=100, maximum=60000, singleStep=1000,
                                     value=int(settings.read("digits/samples", 10000)))
        self.samples_spin.setToolTip("How many training images to use (fewer: quicker, less accurate)")
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Training images", self.samples_spin)
        folder_row = QHBoxLayout()
        self.data_edit = QLineEdit(settings.read("digits/data_dir", ""))
        self.data_edit.setPlaceholderText("app data folder (downloads go here)")
        self.data_edit.setToolTip("Folder with the MNIST IDX files (train-images-idx3-ubyte.gz ...). "
                                  "Empty: the app's own data folder.")
        self.data_button = QPushButton("...")
        self.data_button.setToolTip("Choose the folder holding MNIST")
        self.data_button.setMaximumWidth(32)
        folder_row.addWidget(self.data_edit, 1)
        folder_row.addWidget(self.data_button)
        form.addRow("MNIST folder", folder_row)
        v.addLayout(form)
        buttons = QHBoxLayout()
        self.train_button, self.pause_button, self.stop_button = make_run_buttons(
            "Train a fresh network in the background (Ctrl+T)", "Stop training; the current weights stay in use")
        for b in (self.train_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        v.addLayout(buttons)
        self.revert_button = QPushButton("Revert to shipped weights")
        self.revert_button.setEnabled(False)
        v.addWidget(self.revert_button)
        self.weights_label = QLabel()
        self.weights_label.setWordWrap(True)
        v.addWidget(self.weights_label)
        self.device_label = QLabel()
        v.addWidget(self.device_label)
        self.train_status = QLabel("")
        self.train_status.setWordWrap(True)
        self.train_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.train_status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # A fixed height: progress text changes ten times a second and must not re-lay out the plots.
        self.train_status.setFixedHeight(self.train_status.fontMetrics().lineSpacing() * 4 + 4)
        v.addWidget(self.train_status)
        self.loss_plot = CurvePlot("Training loss", "step", "cross-entropy")
        self.acc_plot = CurvePlot("Accuracy", "epoch", "accuracy (%)")
        self.acc_plot.getPlotItem().setYRange(0, 100, padding=0.02)
        for p in (self.loss_plot, self.acc_plot):
            p.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            v.addWidget(p, 1)
        # Create the curves (and their legend entries) now, not on the first record mid-training.
        self.loss_plot.set_curve("train loss", [], [])
        self.acc_plot.set_curve("train (running)", [], [], color="#1f77b4")
        self.acc_plot.set_curve("test", [], [], color="#d62728", symbol="o")
        return box

    def _connect(self) -> None:
        self.canvas.changed.connect(self.schedule_prediction)
        self.brush_slider.valueChanged.connect(self._on_brush_changed)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.undo_button.clicked.connect(self.canvas.undo)
        self.open_button.clicked.connect(self.open_image_dialog)
        self.layer_combo.currentTextChanged.connect(lambda _t: self._show_maps())
        self.data_button.clicked.connect(self._choose_data_folder)
        self.train_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.train_runner.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.revert_button.clicked.connect(self.revert_weights)
        self.train_runner.record.connect(self._on_train_record)
        self.train_runner.failed.connect(self._on_train_failed)
        self.train_runner.finished.connect(self._on_train_finished)
        self.train_runner.state_changed.connect(self._on_train_state)
        self.download_runner.record.connect(self._on_download_record)
        self.download_runner.failed.connect(self._on_download_failed)
        self.download_runner.finished.connect(self._on_download_finished)
        for key, slot in (("Esc", self.canvas.clear), ("Ctrl+Z", self.canvas.undo),
                          ("Ctrl+T", self.start_training)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # --- prediction ----------------------------------------------------------------------------------
    @Slot()
    def schedule_prediction(self) -> None:
        if not self._predict_timer.isActive():
            self._predict_timer.start()

    @Slot()
    def update_prediction(self) -> None:
        drawing = self.canvas.to_array()  # (280, 280)
        if self.model is None:
            self.guess_label.setText("?")
            self.confidence_label.setText(self.load_error)
            return
        if digits.is_blank(drawing):
            self.last_probs = np.zeros(10)
            self.last_input = np.zeros((28, 28), np.float32)
            self.guess_label.setText("draw a digit")
            self.guess_label.setStyleSheet("color: #888; font-size: 20pt;")
            self.confidence_label.setText("")
            self.prob_plot.set_values(self.last_probs)
        else:
            self.last_input = digits.preprocess(drawing)
            self.last_probs, self.last_maps = digits.predict_preprocessed(self.model, self.last_input)
            best = int(np.argmax(self.last_probs))
            self.guess_label.setText(str(best))
            self.guess_label.setStyleSheet("")
            self.confidence_label.setText(f"{self.last_probs[best] * 100:.1f} % sure")
            self.prob_plot.set_values(self.last_probs, highlight=best)
        self.input_plot.set_image(self.last_input, levels=(0.0, 1.0))
        if not self.last_maps or digits.is_blank(drawing):
            _, self.last_maps = digits.predict_preprocessed(self.model, self.last_input)
        self._show_maps()

    def _show_maps(self) -> None:
        name = self.layer_combo.currentText()
        maps = self.last_maps.get(name)
        if maps is None:
            return
        self.maps_plot.setTitle(f"Feature maps: {name} ({maps.shape[0]} x {maps.shape[1]} x {maps.shape[2]})")
        self.maps_plot.export_title = f"Feature maps {name}"
        self.maps_plot.set_stack(maps, columns=8)

    def show_filters(self) -> None:
        if self.model is not None:
            self.filters_plot.set_stack(digits.first_layer_filters(self.model), columns=8)

    # --- canvas and images ------------------------------------------------------------------------------
    @Slot(int)
    def _on_brush_changed(self, value: int) -> None:
        self.canvas.brush_size = float(value)
        settings.write("digits/brush_size", value)

    def open_image(self, path: str | Path) -> bool:
        image = self.read_image(path, self.message_label)
        if image is None:
            return False
        self.message_label.setText(f"Showing {Path(path).name} ({image.shape[1]} x {image.shape[0]}). "
                                   "Clear to draw again.")
        self.canvas.set_backdrop(image)
        return True

    # --- weights ---------------------------------------------------------------------------------------
    def _show_weights_label(self) -> None:
        if self.weights_source == "shipped":
            acc = self.shipped_info.get("test_accuracy")
            text = "Using the shipped weights" + (f" ({acc * 100:.2f} % on the MNIST test set)." if acc else ".")
        else:
            text = f"Using your retrained weights ({self.weights_source})."
        self.weights_label.setText(text)
        self.device_label.setText(f"Trains on: {resolve_device(self.context.device).label}")

    @Slot()
    def revert_weights(self) -> None:
        try:
            self.model = digits.load_pretrained("cpu")
        except Exception as exc:  # the file may have been removed or damaged since start-up
            QMessageBox.warning(self, "Cannot revert", f"The shipped weights could not be loaded: {exc}")
            return
        self.weights_source = "shipped"
        self.revert_button.setEnabled(False)
        self._after_weights_changed()

    def _after_weights_changed(self) -> None:
        self._show_weights_label()
        self.show_filters()
        self.update_prediction()

    # --- training --------------------------------------------------------------------------------------
    def _choose_data_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder holding MNIST", self.data_edit.text() or
                                                  str(Path.home()))
        if folder:
            self.data_edit.setText(folder)

    def train_config(self) -> digits.TrainConfig:
        choice = resolve_device(self.context.device)
        cpu_threads = max(1, (os.cpu_count() or 2) - 1)  # leave a core for the interface
        return digits.TrainConfig(
            epochs=self.epochs_spin.value(), lr=self.lr_spin.value(), batch_size=self.batch_spin.value(),
            train_limit=self.samples_spin.value(), device=str(choice.device),
            num_threads=cpu_threads if choice.device.type == "cpu" else None)

    @Slot()
    def start_training(self) -> None:
        if self.train_runner.is_busy() or self.download_runner.is_busy():
            return
        folder = self.data_edit.text().strip() or None
        for key, value in (("digits/epochs", self.epochs_spin.value()), ("digits/lr", self.lr_spin.value()),
                           ("digits/batch_size", self.batch_spin.value()),
                           ("digits/samples", self.samples_spin.value()), ("digits/data_dir", folder or "")):
            settings.write(key, value)
        if datasets.locate("mnist", folder) is None:
            self._offer_download(folder)
            return
        self._history = {k: [] for k in self._history}
        self.loss_plot.clear_curves()
        self.acc_plot.clear_curves()
        self._set_status("Loading MNIST...")
        self.train_runner.start(digits.train_from_folder, self.train_config(), folder)

    def _offer_download(self, folder: str | None) -> None:
        message = datasets.missing_message("mnist", folder)
        answer = QMessageBox.question(
            self, "MNIST not found",
            f"{message}\n\nDownload MNIST now into {datasets.app_data_dir() / 'mnist'}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            self._pending_train_folder = ""
            self.data_edit.setText("")
            self._set_status("Downloading MNIST...")
            self.train_button.setEnabled(False)
            self.download_runner.start(datasets.download_iter, "mnist")
        else:
            self._set_status(message)

    @Slot(object)
    def _on_download_record(self, record: datasets.DownloadProgress) -> None:
        size = f" of {record.total / 1e6:.1f} MB" if record.total else ""
        self._set_status(f"Downloading {record.file} ({record.file_index}/{record.file_count}): "
                                  f"{record.done / 1e6:.1f} MB{size}")

    @Slot(str)
    def _on_download_failed(self, message: str) -> None:
        self._set_status(message)
        QMessageBox.warning(self, "Download failed", message)

    @Slot(bool)
    def _on_download_finished(self, completed: bool) -> None:
        self.train_button.setEnabled(True)
        if completed and self._pending_train_folder is not None:
            self._pending_train_folder = None
            self.start_training()

    @Slot()
    def stop_training(self) -> None:
        self.train_runner.stop()
        self.download_runner.stop()

    @Slot(str)
    def _on_train_state(self, state: str) -> None:
        busy = state != "idle"
        follow_runner_state(state, self.train_button, self.pause_button, self.stop_button)
        for w in (self.epochs_spin, self.lr_spin, self.batch_spin, self.samples_spin, self.data_edit):
            w.setEnabled(not busy)
        if state == "paused":
            self._set_status(self.train_status.text() + " (paused)")

    @Slot(object)
    def _on_train_record(self, record) -> None:
        if isinstance(record, digits.TrainResult):
            self.model = digits.model_from_state(record.state_dict, "cpu")
            self.weights_source = (f"{record.epochs} epoch(s), {record.test_accuracy * 100:.2f} % on the "
                                   f"test set, {record.seconds:.0f} s on {record.device}")
            self.revert_button.setEnabled(True)
            self._set_status(f"Done: test accuracy {record.test_accuracy * 100:.2f} %. "
                                      "Predictions now use the new weights.")
            self._after_weights_changed()
            return
        h = self._history
        self._steps_per_epoch = record.steps_total / record.epochs
        h["step"].append(record.step)
        h["loss"].append(record.loss)
        h["train_acc"].append(record.train_accuracy)
        if record.test_accuracy is not None:
            h["epoch"].append(record.epoch)
            h["test_acc"].append(record.test_accuracy)
        self._curves_dirty = True
        test = (f", test accuracy {record.test_accuracy * 100:.2f} %" if record.test_accuracy is not None
                else "")
        self._set_status(
            f"Epoch {record.epoch}/{record.epochs}, step {record.step}/{record.steps_total}: "
            f"loss {record.loss:.3f}, train accuracy {record.train_accuracy * 100:.1f} %{test} "
            f"({record.samples_per_s:.0f} images/s)")

    @Slot()
    def _redraw_curves(self) -> None:
        if not self._curves_dirty:
            return
        self._curves_dirty = False
        h = self._history
        self.loss_plot.set_curve("train loss", h["step"], h["loss"])
        if h["step"]:
            self.acc_plot.set_curve("train (running)", np.asarray(h["step"]) / self._steps_per_epoch,
                                    np.asarray(h["train_acc"]) * 100, color="#1f77b4")
        self.acc_plot.set_curve("test", h["epoch"], np.asarray(h["test_acc"]) * 100, color="#d62728",
                                symbol="o")

    def _set_status(self, text: str) -> None:
        """The status line holds four lines; the whole text is in its tooltip."""
        self.train_status.setText(" ".join(text.split()))
        self.train_status.setToolTip(text)

    @Slot(str)
    def _on_train_failed(self, message: str) -> None:
        self._set_status(f"Training stopped: {message}")
        QMessageBox.warning(self, "Training stopped", message)

    @Slot(bool)
    def _on_train_finished(self, completed: bool) -> None:
        self._redraw_curves()
        if not completed and "Training stopped" not in self.train_status.text():
            self._set_status("Training stopped; the previous weights are still in use.")

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        self._curve_timer.stop()
        ok = self.train_runner.shutdown(timeout_s)
        return self.download_runner.shutdown(timeout_s) and ok


if __name__ == "__main__":
    raise SystemExit(run_standalone(DigitsTab))
