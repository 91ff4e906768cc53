"""A drawing of one LSTM or GRU cell at one time step, with that step's values flowing through it.

Boxes are the gates and states (coloured by value), circles the point-wise operations,
and each wire is as thick as the value it carries is large, so a closed gate visibly
cuts its path. Each gate carries its role in the whiteboard picture of the lecture:
write, read, forget. The view is an ExportablePlot: PNG/SVG of the drawing, CSV of
every unit's values at the shown step.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsRectItem, QWidget

from gui.widgets.plots import ExportablePlot

WIDTH, HEIGHT = 100.0, 62.0  # the drawing's own coordinates

def value_colour(value: float, signed: bool) -> QColor:
    """The heatmaps' colours, lightened so the text stays readable.

    Gates (0..1): white when closed, yellow when open. Signed states (-1..1): blue
    below zero, red above, white at zero.
    """
    if not np.isfinite(value):
        return QColor(200, 200, 200)
    if signed:
        v = float(np.clip(value, -1.0, 1.0))
        target = (225, 90, 75) if v >= 0 else (80, 120, 225)
    else:
        v = float(np.clip(value, 0.0, 1.0))
        target = (245, 215, 50)
    strength = abs(v)
    return QColor(*(round(255 + (c - 255) * strength) for c in target))


class CellDiagram(ExportablePlot):
    """The cell of the step being inspected; ``show_lstm`` / ``show_gru`` redraw it."""

    def __init__(self, title: str = "Cell at the chosen step", parent: QWidget | None = None):
        super().__init__(title, parent)
        plot = self.getPlotItem()
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setXRange(0, WIDTH, padding=0.01)
        plot.setYRange(0, HEIGHT, padding=0.01)
        self._items: list = []
        self.kind = ""
        self.step = -1
        self.unit = 0
        self.input_label = ""
        self.quantities: dict[str, np.ndarray] = {}  # name -> (H,) every unit's value at the step
        self.shown: dict[str, float] = {}  # name -> the drawn unit's value

    # --- drawing primitives ------------------------------------------------------------------------
    def _add(self, item, ignore_bounds: bool = True):
        self.addItem(item, ignoreBounds=ignore_bounds)
        self._items.append(item)
        return item

    def _clear(self) -> None:
        for item in self._items:
            self.removeItem(item)
        self._items = []

    def _text(self, x: float, y: float, html: str, anchor=(0.5, 0.5)) -> None:
        item = pg.TextItem(html=f"<div style='text-align:center; font-size:9pt'>{html}</div>", anchor=anchor)
        item.setPos(x, y)
        item.setZValue(4)
        self._add(item)

    def _box(self, name: str, x: float, y: float, w: float, h: float, symbol: str, role: str,
             signed: bool) -> None:
        value = self.shown[name]
        rect = QGraphicsRectItem(QRectF(x, y, w, h))
        rect.setBrush(QBrush(value_colour(value, signed)))
        rect.setPen(QPen(QColor("#444444"), 0))
        rect.setZValue(2)
        self._add(rect)
        role_html = f"<br><span style='font-size:7pt; color:#333'>{role}</span>" if role else ""
        self._text(x + w / 2, y + h / 2, f"<b>{symbol}</b> = {value:+.2f}{role_html}")

    def _node(self, x: float, y: float, symbol: str) -> None:
        radius = 2.2
        circle = QGraphicsEllipseItem(QRectF(x - radius, y - radius * 1.25, 2 * radius, 2.5 * radius))
        circle.setBrush(QBrush(QColor("#fff7d6")))
        circle.setPen(QPen(QColor("#444444"), 0))
        circle.setZValue(3)
        self._add(circle)
        self._text(x, y, f"<b>{symbol}</b>")

    def _wire(self, points, value: float | None = None, label: str = "", arrow: bool = True) -> None:
        """A path; its width grows with |value|, and an arrow head marks where it goes."""
        xs, ys = zip(*points)
        width = 1.0 if value is None else 1.0 + 5.0 * min(1.0, abs(value))
        curve = pg.PlotCurveItem(list(xs), list(ys), pen=pg.mkPen("#555555", width=width))
        curve.setZValue(1)
        self._add(curve)
        (x0, y0), (x1, y1) = points[-2], points[-1]
        if arrow:
            heading = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))  # direction of travel, y up
            # ArrowItem's angle 0 points left and turns clockwise on screen, where y runs down.
            tip = pg.ArrowItem(pos=(x1, y1), angle=180.0 - heading, headLen=10, tipAngle=35,
                               brush="#555555", pen=None)
            tip.setZValue(3)
            self._add(tip)
        if label:
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2
            vertical = abs(x1 - x0) < abs(y1 - y0)
            self._text(mx, my, f"<span style='font-size:8pt; color:#205080'>{label}</span>",
                       anchor=(-0.08, 0.5) if vertical else (0.5, 1.1))

    def _frame(self, title: str) -> None:
        frame = QGraphicsRectItem(QRectF(18, 17, 64, 40))
        frame.setBrush(QBrush(QColor(245, 245, 245)))
        frame.setPen(QPen(QColor("#999999"), 0))
        frame.setZValue(0)
        self._add(frame, ignore_bounds=False)
        self._text(20, 55.5, f"<span style='color:#777'>{title}</span>", anchor=(0, 0))

    def _set(self, kind: str, step: int, unit: int, input_label: str, quantities: dict[str, np.ndarray]) -> None:
        self.kind, self.step, self.unit, self.input_label = kind, int(step), int(unit), input_label
        self.quantities = {k: np.asarray(v, np.float64) for k, v in quantities.items()}
        self.shown = {k: float(v[unit]) for k, v in self.quantities.items()}
        self._clear()
        self.setTitle(f"{'LSTM' if kind == 'lstm' else 'GRU'} cell at step {step} (input '{input_label}'), "
                      f"unit {unit}")

    # --- the two cells ---------------------------------------------------------------------------------
    def show_lstm(self, trace, step: int, unit: int, input_label: str) -> None:
        h_prev, c_prev = trace.previous_state(step)
        q = {"c_prev": c_prev, "h_prev": h_prev, "f": trace.f[step], "i": trace.i[step], "g": trace.g[step],
             "o": trace.o[step], "c": trace.c[step], "h": trace.h[step]}
        q["f*c_prev"] = q["f"] * c_prev
        q["i*g"] = q["i"] * q["g"]
        q["tanh(c)"] = np.tanh(q["c"])
        self._set("lstm", step, unit, input_label, q)
        s = self.shown
        self._frame("LSTM cell")
        # The memory line along the top: c(t-1) -> x f -> + i*g -> c(t).
        self._box("c_prev", 1, 44, 15, 8, "c(t-1)", "memory before", True)
        self._node(30, 48, "×")
        self._node(54, 48, "+")
        self._box("c", 84, 44, 15, 8, "c(t)", "memory after", True)
        self._wire([(16, 48), (27.8, 48)], s["c_prev"])
        self._wire([(32.2, 48), (51.8, 48)], s["f*c_prev"], f"f·c = {s['f*c_prev']:+.2f}")
        self._wire([(56.2, 48), (84, 48)], s["c"])
        # Gates from [h(t-1), x(t)] at the bottom.
        self._box("f", 23, 25, 14, 9, "f", "forget: keep old", False)
        self._box("i", 39, 25, 13, 9, "i", "write", False)
        self._box("g", 54, 25, 13, 9, "g", "candidate", True)
        self._box("o", 69, 25, 12, 9, "o", "read", False)
        self._wire([(30, 34), (30, 45.3)], s["f"])
        self._node(54, 39, "×")
        self._wire([(45.5, 34), (45.5, 39), (51.8, 39)], s["i"])
        self._wire([(60.5, 34), (60.5, 39), (56.2, 39)], s["g"])
        self._wire([(54, 41.5), (54, 45.3)], s["i*g"], f"i·g = {s['i*g']:+.2f}")
        # Reading the memory out: h(t) = o * tanh(c(t)).
        self._box("tanh(c)", 84, 32, 15, 7, "tanh c", "", True)
        self._wire([(91.5, 44), (91.5, 39)], s["c"])
        self._node(91.5, 22, "×")
        self._wire([(91.5, 32), (91.5, 24.5)], s["tanh(c)"])
        self._wire([(75, 25), (75, 22), (89.3, 22)], s["o"])
        self._box("h", 84, 4, 15, 8, "h(t)", "hidden state out", True)
        self._wire([(91.5, 19.5), (91.5, 12)], s["h"])
        self._box("h_prev", 1, 4, 15, 8, "h(t-1)", "hidden state in", True)
        self._text(45, 8.5, f"x(t) = '{input_label}'")
        self._wire([(16, 8), (30, 8), (30, 14), (75, 14)], None, arrow=False)
        for x in (30, 45.5, 60.5, 75):
            self._wire([(x, 14), (x, 25)], None)

    def show_gru(self, trace, step: int, unit: int, input_label: str) -> None:
        h_prev = trace.previous_state(step)
        q = {"h_prev": h_prev, "z": trace.z[step], "r": trace.r[step], "n": trace.n[step], "h": trace.h[step]}
        q["1-z"] = 1.0 - q["z"]
        q["z*h_prev"] = q["z"] * h_prev
        q["(1-z)*n"] = q["1-z"] * q["n"]
        q["r*h_prev"] = q["r"] * h_prev
        self._set("gru", step, unit, input_label, q)
        s = self.shown
        self._frame("GRU cell")
        # The state line: h(t-1) -> x z -> + (1-z)*n -> h(t).
        self._box("h_prev", 1, 44, 15, 8, "h(t-1)", "state before", True)
        self._node(28, 48, "×")
        self._node(58.5, 48, "+")
        self._box("h", 84, 44, 15, 8, "h(t)", "state after", True)
        self._wire([(16, 48), (25.8, 48)], s["h_prev"])
        self._wire([(30.2, 48), (56.3, 48)], s["z*h_prev"], f"z·h = {s['z*h_prev']:+.2f}")
        self._wire([(60.7, 48), (84, 48)], s["h"])
        self._box("z", 22, 25, 12, 9, "z", "update: keep old", False)
        self._wire([(28, 34), (28, 45.3)], s["z"])
        self._box("1-z", 37, 25, 11, 9, "1-z", "write", False)
        self._wire([(34, 29.5), (37, 29.5)], s["1-z"])
        self._box("n", 52, 25, 13, 9, "n", "candidate", True)
        self._node(58.5, 39, "×")
        self._wire([(42.5, 34), (42.5, 39), (56.3, 39)], s["1-z"])
        self._wire([(58.5, 34), (58.5, 36.5)], s["n"])
        self._wire([(58.5, 41.5), (58.5, 45.3)], s["(1-z)*n"], f"(1-z)·n = {s['(1-z)*n']:+.2f}")
        self._box("r", 68, 25, 13, 9, "r", "reset: read old", False)
        self._wire([(68, 29.5), (65, 29.5)], s["r*h_prev"])
        self._text(66.5, 35.5, f"<span style='font-size:8pt; color:#205080'>r·h = {s['r*h_prev']:+.2f}</span>")
        self._box("h_prev", 1, 4, 15, 8, "h(t-1)", "state in", True)
        self._text(45, 8.5, f"x(t) = '{input_label}'")
        self._wire([(16, 8), (28, 8), (28, 14), (74.5, 14)], None, arrow=False)
        for x in (28, 58.5, 74.5):
            self._wire([(x, 14), (x, 25)], None)

    def csv_table(self):
        rows = [(name, u, float(v)) for name, values in self.quantities.items() for u, v in enumerate(values)]
        return ["quantity", "unit", f"value at step {self.step}"], rows
