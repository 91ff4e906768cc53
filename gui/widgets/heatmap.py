"""A T x T lower-triangular map on a log colour scale, for quantities indexed by (loss t, state k).

Entries above the diagonal do not exist (a loss cannot depend on a later state) and stay blank;
entries removed by truncated BPTT are drawn grey so the student sees what was cut. Hovering shows
the real value, the CSV holds the real values (not their logarithms).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QWidget

from gui.widgets.plots import ImagePlot

CUT_GREY = (190, 190, 190, 255)
MAX_DECADES = 80  # colour range at most this many powers of ten below the largest value


class LogHeatmapPlot(ImagePlot):
    """``set_matrix(values, cut)``: values (T, T) >= 0, shown as log10 where k <= t."""

    def __init__(self, title: str, quantity: str, colormap: str = "viridis", parent: QWidget | None = None):
        super().__init__(title, colormap=colormap, colorbar=True, parent=parent)
        self.quantity = quantity
        plot = self.getPlotItem()
        plot.showAxis("bottom")
        plot.showAxis("left")
        plot.setLabel("bottom", "k (hidden state h_k)")
        plot.setLabel("left", "t (loss L_t)")
        if self.colorbar is not None:
            axis = self.colorbar.getAxis("right")
            axis.setLabel("log10")
            axis.enableAutoSIPrefix(False)  # "x0.001" on a log10 scale only confuses
        self.cut_item = pg.ImageItem(axisOrder="row-major")
        self.cut_item.setZValue(-1)  # under the map, seen through its blank (NaN) cells
        self.addItem(self.cut_item)
        self.values = np.zeros((1, 1))  # (T, T) the real values
        self.cut = np.zeros((1, 1), bool)  # (T, T)
        self.levels = (0.0, 1.0)
        self._shown_T = 0

    def set_matrix(self, values: np.ndarray, cut: np.ndarray | None = None) -> None:
        values = np.asarray(values, np.float64)
        T = values.shape[0]
        cut = np.zeros((T, T), bool) if cut is None else np.asarray(cut, bool)
        self.values, self.cut = values.copy(), cut
        lower = np.tril(np.ones((T, T), bool))
        # Exact zeros are left blank: the map has no logarithm for them (h_-1 = 0 makes column 0 of
        # the dL/dW map zero; ReLU units that are off pass no gradient at all).
        shown = lower & ~cut & (values != 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log10(values)
        good = shown & np.isfinite(logs)
        if good.any():
            hi = float(logs[good].max())
            lo = max(float(logs[good].min()), hi - MAX_DECADES)
        else:
            lo, hi = -1.0, 0.0
        if hi - lo < 1.0:  # a flat map still gets a readable colour bar of one decade
            lo = hi - 1.0
        # Underflow to exactly 0 is "vanished below the scale", infinity "exploded above it".
        image = np.where(shown, np.clip(np.nan_to_num(logs, nan=hi, posinf=hi, neginf=lo), lo, hi), np.nan)
        self.levels = (lo, hi)
        self.set_image(image.astype(np.float32), levels=self.levels)
        grey = np.zeros((T, T, 4), np.uint8)
        grey[cut & lower] = CUT_GREY
        self.cut_item.setImage(grey, autoLevels=False, levels=(0, 255))
        # Cell (t, k) centred on the integer coordinates, so the axis ticks name cells, not edges.
        for item in (self.image_item, self.cut_item):
            item.setRect(QRectF(-0.5, -0.5, T, T))
        if T != self._shown_T:
            self._shown_T = T
            self.getPlotItem().autoRange(padding=0.02)

    def value_at(self, scene_pos: QPointF):
        """(t, k, real value) for any cell on or below the diagonal, cut cells included."""
        pos = self.image_item.mapFromScene(scene_pos)  # image pixel coordinates, whatever the rect
        col, row = int(np.floor(pos.x())), int(np.floor(pos.y()))
        T = self.values.shape[0]
        if 0 <= col <= row < T:
            return row, col, float(self.values[row, col])
        return None

    def describe(self, row: int, col: int, value: float) -> str:
        text = f"t = {row}, k = {col} (t - k = {row - col})\n{self.quantity} = {value:.3g}"
        if self.cut[row, col]:
            text += "\ncut by truncation"
        elif value == 0:
            text += "\nexactly zero (drawn blank)"
        return text

    def csv_table(self):
        T = self.values.shape[0]
        rows = [(t, k, float(self.values[t, k]), int(self.cut[t, k])) for t in range(T) for k in range(t + 1)]
        return ["t", "k", self.quantity, "cut"], rows
