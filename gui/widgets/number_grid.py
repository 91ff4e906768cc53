"""A small table of numbers: editable cells, greyed padding, highlighted windows, exportable."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from gui.widgets.plots import Exportable

PADDING_BRUSH = QBrush(QColor("#e4e4e4"))
HIGHLIGHT_BRUSH = QBrush(QColor("#ffd54f"))
SELECTED_BRUSH = QBrush(QColor("#ff8a65"))


def format_number(v: float) -> str:
    if not np.isfinite(v):
        return str(v)
    if abs(v - round(v)) < 1e-9 and abs(v) < 1e9:
        return str(int(round(v)))
    return f"{v:.3g}"


class NumberGrid(Exportable, QTableWidget):
    """Shows an (H, W) array. Cells inside ``editable_rect`` can be typed into (``edited``);
    cells outside it (the padding) are grey. ``highlight`` marks a receptive field."""

    edited = Signal(int, int, float)  # row, col within the editable region, new value
    exported = Signal(str)

    def __init__(self, title: str, parent: QWidget | None = None, cell_width: int = 48):
        super().__init__(parent)
        self.export_title = title
        self._values = np.zeros((0, 0))  # (H, W)
        self._editable = (0, 0, 0, 0)  # top, left, height, width
        self._updating = False
        self.cell_width = cell_width
        self.caption: QLabel | None = None  # set by whoever shows a caption above the grid
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(9)
        self.setFont(font)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
            header.setMinimumSectionSize(10)
        self.horizontalHeader().setDefaultSectionSize(cell_width)
        self.verticalHeader().setDefaultSectionSize(24)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
                             | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.setToolTip(f"{title}. Double-click a white cell to type a number; right-click to save.")
        self.itemChanged.connect(self._on_item_changed)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)

    @property
    def values(self) -> np.ndarray:
        return self._values

    def set_array(self, values: np.ndarray, editable_rect: tuple[int, int, int, int] | None = None) -> None:
        """Show ``values`` (H, W); ``editable_rect`` = (top, left, h, w) of typeable cells (None: none)."""
        values = np.atleast_2d(np.asarray(values, np.float64))
        self._values = values.copy()
        self._editable = editable_rect or (0, 0, 0, 0)
        self._updating = True
        h, w = values.shape
        if (self.rowCount(), self.columnCount()) != (h, w):
            self.setRowCount(h)
            self.setColumnCount(w)
        top, left, eh, ew = self._editable
        for r in range(h):
            for c in range(w):
                item = self.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.setItem(r, c, item)
                item.setText(format_number(values[r, c]))
                inside = top <= r < top + eh and left <= c < left + ew
                flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                item.setFlags(flags | Qt.ItemFlag.ItemIsEditable if inside else flags)
                item.setBackground(QBrush() if inside or eh == 0 else PADDING_BRUSH)
        self._updating = False
        # 0-based indices, the same as the explanations and the engine use.
        self.setHorizontalHeaderLabels([str(i) for i in range(w)])
        self.setVerticalHeaderLabels([str(i) for i in range(h)])
        if self.caption is not None:
            self.caption.setText(self.export_title)
        self._fit()

    def _fit(self) -> None:
        width = self.verticalHeader().width() + self.columnCount() * self.cell_width + 4
        height = self.horizontalHeader().height() + self.rowCount() * 24 + 4
        self.setFixedSize(min(width, 12 * self.cell_width + 60), min(height, 14 * 24 + 40))

    def highlight(self, cells: list[tuple[int, int]], selected: tuple[int, int] | None = None) -> None:
        """Colour the given cells (a receptive field); ``selected`` gets a stronger colour."""
        self._updating = True
        top, left, eh, ew = self._editable
        for r in range(self.rowCount()):
            for c in range(self.columnCount()):
                inside = top <= r < top + eh and left <= c < left + ew
                self.item(r, c).setBackground(QBrush() if inside or eh == 0 else PADDING_BRUSH)
        for r, c in cells:
            if 0 <= r < self.rowCount() and 0 <= c < self.columnCount():
                self.item(r, c).setBackground(HIGHLIGHT_BRUSH)
        if selected is not None and 0 <= selected[0] < self.rowCount() and 0 <= selected[1] < self.columnCount():
            self.item(*selected).setBackground(SELECTED_BRUSH)
        self._updating = False

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating:
            return
        r, c = item.row(), item.column()
        try:
            value = float(item.text().replace(",", "."))
        except ValueError:
            self._updating = True
            item.setText(format_number(self._values[r, c]))  # not a number: put the old value back
            self._updating = False
            self.setToolTip(f"'{item.text()}' is not a number; type e.g. 3, -1 or 0.5")
            return
        self._values[r, c] = value
        top, left, _, _ = self._editable
        self.edited.emit(r - top, c - left, value)

    def _context_menu(self, pos) -> None:
        menu = QMenu(self)
        self.add_export_actions(menu)
        menu.exec(self.viewport().mapToGlobal(pos))

    def csv_table(self):
        return [], [[format_number(v) for v in row] for row in self._values]
