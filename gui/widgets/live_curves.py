"""Curves that grow while a network trains, cheap enough to redraw several times a second."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.widgets.plots import CurvePlot


class LiveCurvePlot(CurvePlot):
    """A CurvePlot (same export, legend and CSV) tuned for live training curves.

    Antialiased lines wider than a pixel are slow in Qt's raster painter, and a training
    curve has thousands of points: these curves are drawn without antialiasing, thinned
    to about one point per pixel and clipped to the visible range. (On the AlexNet tab's
    curves page this, with fixed x ranges during a run, brought training inside the
    window from 0.78x to about 0.96x the speed of the engine alone on a 2-core CPU.)
    """

    def __init__(self, title: str, x_label: str = "", y_label: str = "", parent: QWidget | None = None):
        super().__init__(title, x_label, y_label, parent)
        plot = self.getPlotItem()
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)

    def set_curve(self, name: str, x, y, color: str = "#1f77b4", symbol: str | None = None) -> None:
        if name not in self._curves:
            self._curves[name] = self.plot([], [], name=name, pen=pg.mkPen(color, width=2), symbol=symbol,
                                           symbolSize=6, symbolBrush=color, antialias=False)
        self._curves[name].setData(np.asarray(x, np.float64), np.asarray(y, np.float64))
