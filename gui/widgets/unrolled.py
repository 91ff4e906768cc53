"""The RNN unrolled in time: one cell per step, left to right, with the same U, W and V in every cell.

Each cell shows the input character x_t, the hidden state h_t as a small heat strip (one square per
unit, blue negative, red positive), the predicted character with its probability and the true one.
Hovering a cell shows its numbers. The widget is as wide as the sequence needs; put it in a
QScrollArea. Only the visible cells are painted, so T = 200 stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from engine.text import STOP

CELL_W = 90  # pixels per time step
MARGIN = 44  # room on the left for the row names
HEIGHT = 212
# One colour per shared weight matrix, the same in every cell: that is the point of the drawing.
WEIGHT_COLOURS = {"U": QColor("#2a7ab0"), "W": QColor("#c0392b"), "V": QColor("#27894f")}


def shown_symbol(symbol: str) -> str:
    """Printable form of a vocabulary symbol: space and <stop> get visible stand-ins."""
    return {" ": "\u2423", STOP: "<stop>", "\n": "\u21b5"}.get(symbol, symbol)


@dataclass(frozen=True)
class UnrolledData:
    inputs: tuple[str, ...]  # (T,) x_t as symbols
    targets: tuple[str, ...]  # (T,) the true next symbol
    predicted: tuple[str, ...]  # (T,) the most probable next symbol
    p_predicted: np.ndarray  # (T,)
    p_true: np.ndarray  # (T,)
    h: np.ndarray  # (T, d)
    step_loss: np.ndarray  # (T,)

    @property
    def T(self) -> int:
        return len(self.inputs)


def _strip_image(h: np.ndarray) -> QImage:
    """(T, d) hidden states -> a T-row RGB image, blue (-) white (0) red (+).

    tanh and sigmoid states lie in [-1, 1] and share that scale; a state beyond it (ReLU) is scaled
    by its own largest entry, so an exploding state does not wash out all the others.
    """
    peak = np.nan_to_num(np.abs(h), nan=0.0, posinf=1e300).max(axis=1, keepdims=True) if h.size else 1.0
    v = np.clip(np.nan_to_num(h / np.maximum(peak, 1.0)), -1.0, 1.0)
    pos, neg = np.clip(v, 0, 1), np.clip(-v, 0, 1)
    rgb = np.empty(h.shape + (3,), np.uint8)
    rgb[..., 0] = (255 * (1 - neg * 0.85)).astype(np.uint8)
    rgb[..., 1] = (255 * (1 - 0.85 * np.maximum(pos, neg))).astype(np.uint8)
    rgb[..., 2] = (255 * (1 - pos * 0.85)).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb)
    return QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB888).copy()


class UnrolledView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data: UnrolledData | None = None
        self._strips: QImage | None = None
        self.hovered: int | None = None
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setToolTip("The network unrolled in time. Hover a step to see its numbers.")
        self.resize(self.sizeHint())

    def sizeHint(self) -> QSize:  # noqa: N802
        steps = self.data.T if self.data else 1
        return QSize(MARGIN + steps * CELL_W + 10, HEIGHT)

    def set_data(self, data: UnrolledData) -> None:
        self.data = data
        self._strips = _strip_image(data.h)
        self.setFixedSize(self.sizeHint())
        self.update()

    # --- hover ------------------------------------------------------------------------------------------
    def step_at(self, x: float) -> int | None:
        if self.data is None:
            return None
        t = int((x - MARGIN) // CELL_W)
        return t if 0 <= t < self.data.T and x >= MARGIN else None

    def step_info(self, t: int) -> str:
        d = self.data
        h = d.h[t]
        shown = ", ".join(f"{v:+.2f}" for v in h[:6]) + (", ..." if len(h) > 6 else "")
        verdict = "right" if d.predicted[t] == d.targets[t] else "wrong"
        return (f"step t = {t}\n"
                f"input x_{t} = {shown_symbol(d.inputs[t])!r} (one-hot)\n"
                f"h_{t} = f(x_{t} U + h_{t - 1} W + b), ||h_{t}|| = {np.linalg.norm(h):.3g}\n"
                f"   [{shown}]\n"
                f"predicted {shown_symbol(d.predicted[t])!r} with p = {d.p_predicted[t]:.3f} ({verdict})\n"
                f"true next {shown_symbol(d.targets[t])!r}: p = {d.p_true[t]:.3f}, "
                f"loss L_{t} = -log p = {d.step_loss[t]:.3f}")

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        t = self.step_at(event.position().x())
        if t != self.hovered:
            self.hovered = t
            self.update()
        if t is not None:
            QToolTip.showText(event.globalPosition().toPoint(), self.step_info(t), self)
        else:
            QToolTip.hideText()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.hovered = None
        self.update()

    # --- drawing ------------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(event.rect(), QColor("white"))
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.85))
        painter.setFont(small)
        y_out, y_h, y_x = 8, 92, 168  # tops of the output box, the state strip and the input box
        painter.setPen(QColor("#555"))
        for label, y in (("y\u0302_t", y_out + 22), ("h_t", y_h + 12), ("x_t", y_x + 18)):
            painter.drawText(QPointF(6, y), label)
        if self.data is None:
            return
        d = self.data
        first = max(0, int((event.rect().left() - MARGIN) // CELL_W) - 1)
        last = min(d.T, int((event.rect().right() - MARGIN) // CELL_W) + 2)
        strip_w, strip_h = CELL_W - 22, 24
        for t in range(first, last):
            x0 = MARGIN + t * CELL_W
            cx = x0 + CELL_W / 2
            if t == self.hovered:
                painter.fillRect(QRectF(x0 + 1, 0, CELL_W - 2, HEIGHT), QColor("#fff6d9"))
            # Output box: the prediction and how sure the network is of the true symbol.
            correct = d.predicted[t] == d.targets[t]
            painter.setPen(QPen(QColor("#27894f" if correct else "#c0392b"), 1.5))
            painter.setBrush(QColor("#f4fbf6" if correct else "#fdf1f0"))
            painter.drawRoundedRect(QRectF(x0 + 6, y_out, CELL_W - 12, 48), 5, 5)
            painter.setPen(QColor("black"))
            self._fit_text(painter, QRectF(x0 + 8, y_out + 2, CELL_W - 16, 22),
                           f"{shown_symbol(d.predicted[t])}  {d.p_predicted[t]:.2f}")
            painter.setPen(QColor("#444"))
            self._fit_text(painter, QRectF(x0 + 8, y_out + 24, CELL_W - 16, 22),
                           f"true {shown_symbol(d.targets[t])} {d.p_true[t]:.2f}")
            # V: from the state up to the output.
            self._arrow(painter, QPointF(cx, y_h - 2), QPointF(cx, y_out + 50), "V")
            # The hidden state strip.
            if self._strips is not None:
                painter.drawImage(QRectF(x0 + 11, y_h, strip_w, strip_h), self._strips,
                                  QRectF(0, t, self._strips.width(), 1))
            painter.setPen(QPen(QColor("#333"), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(x0 + 11, y_h, strip_w, strip_h))
            painter.setPen(QColor("#333"))
            painter.drawText(QRectF(x0, y_h + strip_h + 1, CELL_W, 14), Qt.AlignmentFlag.AlignCenter, f"h{t}")
            # W: from the previous state (or h_-1 = 0) into this one.
            start = QPointF(x0 - 11 + 2, y_h + strip_h / 2) if t > 0 else QPointF(x0 + 1, y_h + strip_h / 2)
            self._arrow(painter, start, QPointF(x0 + 10, y_h + strip_h / 2), "W" if t > 0 else "",
                        label_above=True)
            # U: from the input up to the state.
            self._arrow(painter, QPointF(cx, y_x - 2), QPointF(cx, y_h + strip_h + 15), "U")
            painter.setPen(QPen(QColor("#2a7ab0"), 1.2))
            painter.setBrush(QColor("#eef5fb"))
            painter.drawRoundedRect(QRectF(x0 + 14, y_x, CELL_W - 28, 26), 4, 4)
            painter.setPen(QColor("black"))
            painter.drawText(QRectF(x0 + 14, y_x, CELL_W - 28, 26), Qt.AlignmentFlag.AlignCenter,
                             shown_symbol(d.inputs[t]))
            painter.setPen(QColor("#777"))
            painter.drawText(QRectF(x0, y_x + 27, CELL_W, 14), Qt.AlignmentFlag.AlignCenter, f"t={t}")
        painter.end()

    @staticmethod
    def _fit_text(painter: QPainter, rect: QRectF, text: str) -> None:
        """Centred text, in a smaller font when it would not fit (e.g. '<stop> 0.97')."""
        font = QFont(painter.font())
        width = painter.fontMetrics().horizontalAdvance(text)
        if width > rect.width():
            font.setPointSizeF(max(5.0, font.pointSizeF() * 0.9 * rect.width() / width))
        painter.save()
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def _arrow(self, painter: QPainter, start: QPointF, end: QPointF, label: str, label_above: bool = False) -> None:
        colour = WEIGHT_COLOURS.get(label, QColor("#888"))
        painter.setPen(QPen(colour, 1.6))
        painter.drawLine(start, end)
        direction = end - start
        length = max(1e-6, (direction.x() ** 2 + direction.y() ** 2) ** 0.5)
        ux, uy = direction.x() / length, direction.y() / length
        head = QPolygonF([end, QPointF(end.x() - 6 * ux + 3.5 * uy, end.y() - 6 * uy - 3.5 * ux),
                          QPointF(end.x() - 6 * ux - 3.5 * uy, end.y() - 6 * uy + 3.5 * ux)])
        painter.setBrush(colour)
        painter.drawPolygon(head)
        if label:
            mid = (start + end) / 2
            bold = QFont(painter.font())
            bold.setBold(True)
            painter.save()
            painter.setFont(bold)
            offset = QPointF(-4, -5) if label_above else QPointF(4, 4)
            painter.drawText(mid + offset, label)
            painter.restore()


def legend_html() -> str:
    parts = [f'<span style="color:{c.name()}"><b>{name}</b></span>' for name, c in WEIGHT_COLOURS.items()]
    return (f"Every step uses the same {', '.join(parts)} (one copy of the weights, unrolled T times). "
            "h_t strip: blue negative, red positive.")

