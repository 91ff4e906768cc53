"""Driving widgets as a user would: mouse strokes on a canvas."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication


def _send(widget, kind, pos: QPointF, buttons) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def draw_stroke(widget, points, steps: int = 8) -> None:
    """Press, drag through ``points`` (fractions 0..1 of the widget's drawing square), release."""
    side = min(widget.width(), widget.height())
    ox, oy = (widget.width() - side) / 2, (widget.height() - side) / 2
    to_pos = lambda p: QPointF(ox + p[0] * side, oy + p[1] * side)  # noqa: E731
    left = Qt.MouseButton.LeftButton
    _send(widget, QEvent.Type.MouseButtonPress, to_pos(points[0]), left)
    for a, b in zip(points, points[1:]):
        for k in range(1, steps + 1):
            t = k / steps
            _send(widget, QEvent.Type.MouseMove, to_pos((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)), left)
    _send(widget, QEvent.Type.MouseButtonRelease, to_pos(points[-1]), Qt.MouseButton.NoButton)


def circle(cx=0.5, cy=0.5, rx=0.22, ry=0.32, n=24):
    import math

    return [(cx + rx * math.cos(2 * math.pi * i / n), cy + ry * math.sin(2 * math.pi * i / n)) for i in range(n + 1)]


def centre(widget) -> QPoint:
    return QPoint(widget.width() // 2, widget.height() // 2)


class StallMeter:
    """How long the GUI event loop goes without running: the gaps between ticks of a 5 ms timer.

    Used by the worker test and the benchmarks that check the "longest stall" targets.
    """

    def __init__(self, interval_ms: int = 5):
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.interval_ms = interval_ms
        self.clock = QElapsedTimer()
        self.timer = QTimer(interval=interval_ms)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[tuple[int, int]] = []  # (ms since start, ms since the previous tick)
        self._last = 0

    def _tick(self) -> None:
        now = self.clock.elapsed()
        self.ticks.append((now, now - self._last))
        self._last = now

    def start(self) -> None:
        self.ticks.clear()
        self._last = 0
        self.clock.start()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def gaps(self, after_ms: float = 0.0):
        """Gaps in ms (the first tick, measured from start, left out), optionally only after ``after_ms``."""
        import numpy as np

        return np.array([gap for at_ms, gap in self.ticks[1:] if at_ms >= after_ms], float)

    def watch(self, app, seconds: float):
        """Run the event loop for ``seconds`` while measuring; return the gaps."""
        import time

        self.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        self.stop()
        return self.gaps()
