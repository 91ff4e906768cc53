"""Views of recurrent cells over time: a gate heatmap (units x time) with a time cursor, and a
log-scale gradient-flow plot whose CSV holds the raw norms."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QWidget

from gui.widgets.plots import CurvePlot, ExportablePlot

MAX_TICKS = 32  # the most input labels written along the time axis before they are thinned out


def time_ticks(labels: Sequence[str], max_ticks: int = MAX_TICKS) -> list[tuple[float, str]]:
    """Tick positions (cell centres) and texts for the inputs; always the first and the last step."""
    count = len(labels)
    if count == 0:
        return []
    every = max(1, int(np.ceil(count / max_ticks)))
    steps = list(range(0, count, every))
    if steps[-1] != count - 1:
        if count - 1 - steps[-1] < every / 2 and len(steps) > 1:
            steps.pop()  # too close to the last step: its label would overprint the last one
        steps.append(count - 1)
    return [(t + 0.5, labels[t] if every == 1 else f"{t}:{labels[t]}") for t in steps]


class GateHeatmap(ExportablePlot):
    """One gate's values as units (rows) x time steps (columns), the inputs along the time axis.

    Clicking a cell emits ``step_clicked(step, unit)``; ``set_cursor`` moves the
    vertical time cursor (the tab links the cursors of every heatmap).
    """

    step_clicked = Signal(int, int)

    def __init__(self, title: str, colormap: str = "viridis", levels: tuple[float, float] = (0.0, 1.0),
                 parent: QWidget | None = None):
        super().__init__(title, parent)
        self.levels = levels
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setColorMap(pg.colormap.get(colormap))
        self.addItem(self.image_item)
        plot = self.getPlotItem()
        plot.invertY(True)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setLabel("left", "unit")
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
        # Keep the labels of the first and last steps, which stick out of the map by half their width
        # (up to 40 pixels); the first input is the one that matters most.
        plot.getAxis("bottom").setStyle(hideOverlappingLabels=40)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#d62728", width=2))
        self.cursor.setZValue(5)
        self.addItem(self.cursor, ignoreBounds=True)
        self._hover = pg.TextItem(color="k", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 215))
        self._hover.setZValue(10)
        self._hover.hide()
        self.addItem(self._hover, ignoreBounds=True)
        self.values = np.zeros((0, 0))  # (T, H) as given
        self.labels: tuple[str, ...] = ()
        self.step = 0
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.scene().sigMouseMoved.connect(self._on_moved)

    def set_data(self, values: np.ndarray, labels: Sequence[str]) -> None:
        """``values`` (T, H): one row per time step, as the engine's traces hold them."""
        values = np.asarray(values, np.float64)
        steps, units = values.shape
        self.values = values
        self.labels = tuple(labels)
        self.image_item.setImage(values.T.astype(np.float32), autoLevels=False, levels=self.levels)
        plot = self.getPlotItem()
        self._update_ticks()
        plot.setXRange(0, steps, padding=0)
        plot.setYRange(0, units, padding=0)
        self.set_cursor(min(self.step, steps - 1))

    def _update_ticks(self) -> None:
        # Room for the longest "step:input" label (about 7 pixels a character) so that labels never overlap.
        longest = len(str(len(self.labels))) + 1 + max(len(label) for label in self.labels)
        most = max(2, min(MAX_TICKS, self.width() // (7 * longest + 12)))
        self.getPlotItem().getAxis("bottom").setTicks([time_ticks(self.labels, most)])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "labels", None):  # pyqtgraph resizes once while it is still being built
            self._update_ticks()

    def set_cursor(self, step: int) -> None:
        self.step = int(step)
        self.cursor.setPos(self.step + 0.5)

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(step, unit) under a scene position, or None outside the map."""
        if self.values.size == 0:
            return None
        pos = self.image_item.mapFromScene(scene_pos)
        step, unit = int(np.floor(pos.x())), int(np.floor(pos.y()))
        steps, units = self.values.shape
        return (step, unit) if 0 <= step < steps and 0 <= unit < units else None

    def scene_position(self, step: int, unit: int) -> QPointF:
        """The scene position of a cell's centre (for tests and tooltips)."""
        return self.image_item.mapToScene(QPointF(step + 0.5, unit + 0.5))

    def _on_clicked(self, event) -> None:
        if event.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            return
        hit = self.cell_at(event.scenePos())
        if hit is not None:
            event.accept()
            self.step_clicked.emit(*hit)

    def _on_moved(self, scene_pos: QPointF) -> None:
        hit = self.cell_at(scene_pos)
        if hit is None:
            self._hover.hide()
            return
        step, unit = hit
        self._hover.setText(f"step {step} '{self.labels[step]}', unit {unit}: {self.values[step, unit]:.3f}")
        self._hover.setPos(step, unit)
        self._hover.show()

    def csv_table(self):
        steps, units = self.values.shape
        rows = [(t, self.labels[t], u, float(self.values[t, u])) for t in range(steps) for u in range(units)]
        return ["step", "input", "unit", "value"], rows


class GradientFlowPlot(CurvePlot):
    """||dL_T/dh_k|| against k on a log axis; the CSV has the norms themselves, not their logarithms."""

    FLOOR = 1e-300  # an exact zero cannot be drawn on a log axis

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(title, "step k", "||dL_T / dh_k||", parent)
        self.getPlotItem().setLogMode(x=False, y=True)
        self.norms: dict[str, np.ndarray] = {}  # curve name -> (T,)

    def set_norms(self, name: str, norms: np.ndarray, color: str) -> None:
        norms = np.asarray(norms, np.float64)
        self.norms[name] = norms
        self.set_curve(name, np.arange(len(norms)), np.maximum(norms, self.FLOOR), color=color)

    def csv_table(self):
        rows = [(name, k, float(v)) for name, norms in self.norms.items() for k, v in enumerate(norms)]
        return ["model", "k", "gradient norm"], rows

    def export_to(self, path):
        if Path(path).suffix.lower() == ".csv":  # pyqtgraph's CSV exporter would write log10 values
            header, rows = self.csv_table()
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows(rows)
            self.exported.emit(str(path))
            return Path(path)
        return super().export_to(path)
