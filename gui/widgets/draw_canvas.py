"""A square drawing surface: dark ink on white paper, strokes undoable, mouse or pen."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QTabletEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

CANVAS_SIZE = 280  # the drawing is kept at 280x280, ten times MNIST's 28x28


@dataclass
class Stroke:
    width: float
    points: list[QPointF] = field(default_factory=list)  # in canvas pixels
    pressures: list[float] = field(default_factory=list)


@dataclass
class Backdrop:
    """An opened image, fitted into the canvas; undoable like a stroke."""
    image: QImage
    paper: QColor  # the image's own background, used for the margins around it


def array_to_qimage(array: np.ndarray) -> QImage:
    """(H, W) or (H, W, 3) uint8 -> an independent QImage (Grayscale8 or RGB888)."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = a.shape[:2]
    if a.ndim == 2:
        return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8).copy()
    return QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888).copy()


def qimage_to_grey(image: QImage) -> np.ndarray:  # -> (H, W) uint8
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    h, w, stride = grey.height(), grey.width(), grey.bytesPerLine()
    return np.frombuffer(grey.constBits(), np.uint8, count=h * stride).reshape(h, stride)[:, :w].copy()


class DrawCanvas(QWidget):
    """Draw with the left button (or a pen, whose pressure thickens the line).

    ``changed`` fires on every edit; ``to_array()`` gives the drawing as (280, 280) uint8.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None, brush_size: float = 18.0):
        super().__init__(parent)
        self.brush_size = brush_size
        self.items: list[Stroke | Backdrop] = []
        self._current: Stroke | None = None
        self._image = QImage(CANVAS_SIZE, CANVAS_SIZE, QImage.Format.Format_Grayscale8)
        self._image.fill(QColor("white"))
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setToolTip("Draw a digit here with the mouse or a pen. Esc clears, Ctrl+Z undoes a stroke.")
        self.setAccessibleName("Digit drawing canvas")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(CANVAS_SIZE * 3 // 2, CANVAS_SIZE * 3 // 2)

    # --- state ---------------------------------------------------------------------------------
    def to_array(self) -> np.ndarray:  # -> (280, 280) uint8
        return qimage_to_grey(self._image)

    def is_empty(self) -> bool:
        return not self.items and self._current is None

    def clear(self) -> None:
        self.items.clear()
        self._current = None
        self._rerender()

    def undo(self) -> None:
        if self.items:
            self.items.pop()
            self._rerender()

    def set_backdrop(self, array: np.ndarray) -> None:
        """Replace the drawing with an image (uint8 grey or RGB), fitted and centred on white."""
        source = array_to_qimage(array)
        scaled = source.scaled(CANVAS_SIZE, CANVAS_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                               Qt.TransformationMode.SmoothTransformation)
        a = np.asarray(array)
        border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).reshape(-1, 1 if a.ndim == 2 else a.shape[2])
        level = np.median(border, axis=0).astype(int)
        paper = QColor(*(level[:3] if level.size >= 3 else [int(level[0])] * 3))
        self.items.clear()
        self.items.append(Backdrop(scaled, paper))
        self._rerender()

    # --- rendering -----------------------------------------------------------------------------
    def _pen(self, width: float) -> QPen:
        return QPen(QColor("black"), width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                    Qt.PenJoinStyle.RoundJoin)

    def _paint_stroke(self, painter: QPainter, stroke: Stroke, start: int = 0) -> None:
        pts = stroke.points
        if len(pts) == 1:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("black"))
            r = stroke.width * stroke.pressures[0] / 2
            painter.drawEllipse(pts[0], r, r)
            return
        for i in range(max(1, start), len(pts)):
            painter.setPen(self._pen(stroke.width * stroke.pressures[i]))
            painter.drawLine(pts[i - 1], pts[i])

    def _rerender(self) -> None:
        self._image.fill(QColor("white"))
        painter = QPainter(self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for item in self.items:
            if isinstance(item, Backdrop):
                # Margins take the picture's own paper colour, so its polarity is kept.
                painter.fillRect(QRectF(0, 0, CANVAS_SIZE, CANVAS_SIZE), item.paper)
                x = (CANVAS_SIZE - item.image.width()) / 2
                y = (CANVAS_SIZE - item.image.height()) / 2
                painter.drawImage(QPointF(x, y), item.image)
            else:
                self._paint_stroke(painter, item)
        painter.end()
        self.update()
        self.changed.emit()

    def _target_rect(self) -> QRectF:
        side = min(self.width(), self.height())
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        target = self._target_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self._image)
        painter.setPen(QPen(QColor("#888888"), 1))
        painter.drawRect(target.adjusted(0, 0, -1, -1))
        if self.is_empty():
            painter.setPen(QColor("#aaaaaa"))
            painter.drawText(target, Qt.AlignmentFlag.AlignCenter, "Draw a digit here")
        painter.end()

    # --- input ---------------------------------------------------------------------------------
    def _to_canvas(self, pos: QPointF) -> QPointF:
        target = self._target_rect()
        scale = CANVAS_SIZE / target.width()
        return QPointF((pos.x() - target.x()) * scale, (pos.y() - target.y()) * scale)

    def _begin(self, pos: QPointF, pressure: float) -> None:
        self._current = Stroke(self.brush_size, [self._to_canvas(pos)], [pressure])
        self._extend_render(0)

    def _extend(self, pos: QPointF, pressure: float) -> None:
        if self._current is None:
            return
        self._current.points.append(self._to_canvas(pos))
        self._current.pressures.append(pressure)
        self._extend_render(len(self._current.points) - 1)

    def _end(self) -> None:
        if self._current is not None:
            self.items.append(self._current)
            self._current = None
            self.changed.emit()

    def _extend_render(self, start: int) -> None:
        # Only the newest segment is painted while drawing; full redraws happen on undo/clear.
        painter = QPainter(self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_stroke(painter, self._current, start)
        painter.end()
        self.update()
        self.changed.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._begin(event.position(), 1.0)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._extend(event.position(), 1.0)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._end()

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802
        # Pen pressure 0..1 scales the brush between 40 % and 140 % of its size.
        pressure = 0.4 + 1.0 * float(event.pressure())
        kind = event.type()
        if kind == QTabletEvent.Type.TabletPress:
            self._begin(event.position(), pressure)
        elif kind == QTabletEvent.Type.TabletMove and self._current is not None:
            self._extend(event.position(), pressure)
        elif kind == QTabletEvent.Type.TabletRelease:
            self._end()
        event.accept()
