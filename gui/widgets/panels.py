"""Layout pieces the tabs share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea, QWidget


def control_column(panel: QWidget, width: int | None = None, min_width: int | None = None) -> QScrollArea:
    """A tab's column of controls, scrolling vertically on short screens instead of forcing a tall window.

    ``width`` fixes the column's width; ``min_width`` only bounds it (inside a splitter).
    """
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    if width is not None:
        scroll.setFixedWidth(width)
    if min_width is not None:
        scroll.setMinimumWidth(min_width)
    return scroll
