"""Plot widgets that every tab uses, each exportable as PNG, SVG and CSV.

``Exportable`` views (pyqtgraph plots here, number tables elsewhere) offer "Save as
PNG/SVG/CSV" in their right-click menu; the main window's File > Export... finds every
one inside the current tab, so a tab gets export for free by using these classes.
PNG and SVG go through pyqtgraph's exporters; CSV writes the numbers behind the
view (pyqtgraph's CSVExporter only knows curves, so views supply their table).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters as pg_exporters
from PySide6.QtCore import QPoint, QPointF, Signal
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from gui import settings

EXPORT_FORMATS = {
    "png": "PNG image (*.png)",
    "svg": "SVG vector drawing (*.svg)",
    "csv": "CSV numbers (*.csv)",
}

CsvTable = tuple[Sequence[str], Sequence[Sequence]]  # header, rows

pg.setConfigOptions(antialias=True, imageAxisOrder="row-major", background="w", foreground="k")


class Exportable:
    """Mixin for any view that can be saved: PNG, SVG and the CSV of its numbers.

    Subclasses are QWidgets that define an ``exported = Signal(str)`` and
    ``csv_table() -> (header, rows)`` (the numbers behind the view), and may override
    ``_write_png``/``_write_svg``. The main window's File > Export... lists every
    visible Exportable in the current tab.
    """

    export_title: str = "view"

    def _write_png(self, path: Path) -> None:
        self.grab().save(str(path), "PNG")

    def _write_svg(self, path: Path) -> None:
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(self.size())
        generator.setViewBox(self.rect())
        generator.setTitle(self.export_title)
        generator.setDescription("Exported from Backprop Studio")
        painter = QPainter(generator)
        try:
            QWidget.render(self, painter, QPoint())  # the widget as shown, children included
        finally:
            painter.end()

    def _write_csv(self, path: Path) -> None:
        header, rows = self.csv_table()
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if header:
                writer.writerow(header)
            writer.writerows(rows)

    def export_to(self, path: str | Path) -> Path:
        """Write the view to ``path``; the suffix (.png, .svg or .csv) picks the format."""
        path = Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"Cannot export to .{fmt}: choose .png, .svg or .csv.")
        {"png": self._write_png, "svg": self._write_svg, "csv": self._write_csv}[fmt](path)
        self.exported.emit(str(path))
        return path

    def add_export_actions(self, menu) -> None:
        menu.addSeparator()
        for fmt, label in (("png", "Save as PNG image..."), ("svg", "Save as SVG drawing..."),
                           ("csv", "Save numbers as CSV...")):
            menu.addAction(label, lambda fmt=fmt: self.export_with_dialog(fmt))

    def export_with_dialog(self, fmt: str = "png") -> Path | None:
        folder = settings.read("folders/export", str(Path.home()))
        stem = "".join(c if c.isalnum() else "_" for c in self.export_title.lower()).strip("_")
        filters = ";;".join(EXPORT_FORMATS.values())
        path, chosen = QFileDialog.getSaveFileName(
            self, f"Export {self.export_title}", str(Path(folder) / f"{stem}.{fmt}"), filters,
            EXPORT_FORMATS[fmt])
        if not path:
            return None
        if not Path(path).suffix:
            path += "." + next(k for k, v in EXPORT_FORMATS.items() if v == chosen)
        settings.write("folders/export", str(Path(path).parent))
        try:
            return self.export_to(path)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Export failed", f"Could not save {Path(path).name}:\n{exc}")
            return None


class ExportablePlot(Exportable, pg.PlotWidget):
    """A PlotWidget with a name and PNG / SVG / CSV export (context menu and File > Export...)."""

    exported = Signal(str)  # path written

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.export_title = title
        self.setTitle(title)
        self.setMinimumSize(110, 100)
        self.setToolTip(f"{title}. Right-click to save it as PNG, SVG or CSV.")
        menu = self.getViewBox().menu
        if menu is not None:
            self.add_export_actions(menu)

    def setTitle(self, title: str) -> None:  # noqa: N802 (Qt naming)
        self.getPlotItem().setTitle(title, size="10pt")

    def add_image_item(self) -> pg.ImageItem:
        """An ImageItem shown as a picture: rows down, square pixels, no axes."""
        item = pg.ImageItem(axisOrder="row-major")
        self.addItem(item)
        plot = self.getPlotItem()
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.hideAxis("bottom")
        plot.hideAxis("left")
        return item

    def csv_table(self) -> CsvTable:
        """Header and rows for the CSV file: by default every curve's (x, y) points."""
        header, rows = ["curve", "x", "y"], []
        for i, item in enumerate(self.getPlotItem().listDataItems()):
            x, y = item.getData()
            name = item.name() or f"curve {i + 1}"
            if x is not None:
                rows += [(name, float(a), float(b)) for a, b in zip(x, y)]
        return header, rows

    def _write_png(self, path: Path) -> None:
        item = self.getPlotItem()
        exporter = pg_exporters.ImageExporter(item)
        # At least 800 px wide so exports stay sharp in slides and reports.
        exporter.parameters()["width"] = max(800, int(item.sceneBoundingRect().width()))
        exporter.export(str(path))

    def _write_svg(self, path: Path) -> None:
        try:
            pg_exporters.SVGExporter(self.getPlotItem()).export(str(path))
        except ValueError:
            # pyqtgraph 0.14.0 cannot parse the path syntax of Qt >= 6.10's SVG generator
            # (pyqtgraph issue #3485); Qt's own generator still writes a correct vector file.
            super()._write_svg(path)


def tile_maps(maps: np.ndarray, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """(C, H, W) stack -> one 2-D mosaic with NaN gaps between tiles (NaN draws as background)."""
    c, h, w = maps.shape
    columns = columns or int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / columns))
    mosaic = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan, np.float32)
    for i in range(c):
        r, col = divmod(i, columns)
        mosaic[r * (h + gap): r * (h + gap) + h, col * (w + gap): col * (w + gap) + w] = maps[i]
    return mosaic


class ImagePlot(ExportablePlot):
    """A 2-D array (or a stack of maps shown as a mosaic) with a colour bar and values on hover."""

    def __init__(self, title: str, colormap: str | pg.ColorMap = "viridis", colorbar: bool = True,
                 symmetric: bool = False, parent: QWidget | None = None):
        super().__init__(title, parent)
        self.symmetric = symmetric  # colour limits +-max|x| (for weights, which have a sign)
        self.image_item = self.add_image_item()
        plot = self.getPlotItem()
        self.colorbar = None
        cmap = colormap if isinstance(colormap, pg.ColorMap) else pg.colormap.get(colormap)
        if colorbar:
            self.colorbar = pg.ColorBarItem(colorMap=cmap, width=12, interactive=False)
            self.colorbar.setImageItem(self.image_item, insert_in=plot)
        else:
            self.image_item.setColorMap(cmap)
        self._array = np.zeros((1, 1), np.float32)  # (H, W) what is shown
        self._stack: np.ndarray | None = None  # (C, H, W) when showing a mosaic
        self._columns = 1
        self._hover_text = pg.TextItem(color="k", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 200))
        self._hover_text.setZValue(10)
        self._hover_text.hide()
        self.addItem(self._hover_text, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_image(self, array: np.ndarray, levels: tuple[float, float] | None = None) -> None:
        """Show a 2-D array ``(H, W)``."""
        self._stack = None
        self._show(np.asarray(array, np.float32), levels)

    def set_stack(self, maps: np.ndarray, columns: int | None = None,
                  levels: tuple[float, float] | None = None) -> None:
        """Show ``(C, H, W)`` maps as a mosaic; the CSV lists every map's values."""
        maps = np.asarray(maps, np.float32)
        self._stack = maps
        self._columns = columns or int(np.ceil(np.sqrt(len(maps))))
        self._show(tile_maps(maps, self._columns), levels)

    def _show(self, array: np.ndarray, levels) -> None:
        first = self._array.shape != array.shape
        self._array = array
        finite = array[np.isfinite(array)]
        if levels is None:
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if self.symmetric:
                m = max(abs(lo), abs(hi), 1e-12)
                lo, hi = -m, m
            levels = (lo, hi if hi > lo else lo + 1e-6)
        # NaN (the gaps of a mosaic) is drawn transparent by pyqtgraph.
        self.image_item.setImage(array, autoLevels=False, levels=levels)
        if self.colorbar is not None:
            self.colorbar.setLevels(levels)
        if first:
            self.getPlotItem().autoRange(padding=0.02)

    @property
    def array(self) -> np.ndarray:
        return self._array

    def value_at(self, scene_pos: QPointF) -> tuple[int, int, float] | None:
        """(row, col, value) under a scene position, or None outside the image."""
        pos = self.image_item.mapFromScene(scene_pos)
        col, row = int(np.floor(pos.x())), int(np.floor(pos.y()))
        h, w = self._array.shape
        if 0 <= row < h and 0 <= col < w and np.isfinite(self._array[row, col]):
            return row, col, float(self._array[row, col])
        return None

    def describe(self, row: int, col: int, value: float) -> str:
        if self._stack is not None:
            _, h, w = self._stack.shape
            tile_r, r = divmod(row, h + 1)
            tile_c, c = divmod(col, w + 1)
            return f"map {tile_r * self._columns + tile_c}  ({r}, {c}) = {value:.4g}"
        return f"({row}, {col}) = {value:.4g}"

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        hit = self.value_at(scene_pos)
        if hit is None:
            self._hover_text.hide()
            return
        row, col, value = hit
        self._hover_text.setText(self.describe(row, col, value))
        self._hover_text.setPos(col, row)
        self._hover_text.show()

    def csv_table(self):
        if self._stack is not None:
            c, h, w = self._stack.shape
            rows = [(k, r, q, float(self._stack[k, r, q])) for k in range(c) for r in range(h) for q in range(w)]
            return ["map", "row", "col", "value"], rows
        h, w = self._array.shape
        return ["row", "col", "value"], [(r, q, float(self._array[r, q])) for r in range(h) for q in range(w)]


class BarPlot(ExportablePlot):
    """Labelled bars (e.g. class probabilities), the largest highlighted."""

    def __init__(self, title: str, labels: Sequence[str], value_name: str = "value",
                 y_range: tuple[float, float] | None = (0.0, 1.0), parent: QWidget | None = None):
        super().__init__(title, parent)
        self.labels = list(labels)
        self.value_name = value_name
        self.values = np.zeros(len(self.labels), np.float64)
        self.bars = pg.BarGraphItem(x=np.arange(len(self.labels)), height=self.values, width=0.7,
                                    brush=pg.mkBrush("#7aa6d6"))
        self.addItem(self.bars)
        plot = self.getPlotItem()
        plot.getAxis("bottom").setTicks([list(enumerate(self.labels))])
        plot.setMouseEnabled(x=False, y=False)
        plot.setMenuEnabled(True)
        if y_range is not None:
            plot.setYRange(*y_range, padding=0.02)
        plot.setXRange(-0.6, len(self.labels) - 0.4, padding=0)
        plot.showGrid(y=True, alpha=0.3)

    def set_values(self, values: Sequence[float], highlight: int | None = None) -> None:
        self.values = np.asarray(values, np.float64)
        brushes = [pg.mkBrush("#d9822b" if i == highlight else "#7aa6d6") for i in range(len(self.values))]
        self.bars.setOpts(height=self.values, brushes=brushes)

    def csv_table(self):
        return ["label", self.value_name], [(lab, float(v)) for lab, v in zip(self.labels, self.values)]


class CurvePlot(ExportablePlot):
    """Named curves updated with ``set_curve``; CSV through pyqtgraph's own CSV exporter."""

    def __init__(self, title: str, x_label: str = "", y_label: str = "", parent: QWidget | None = None):
        super().__init__(title, parent)
        plot = self.getPlotItem()
        plot.addLegend(offset=(-10, 10))
        plot.showGrid(x=True, y=True, alpha=0.3)
        for side, label in (("bottom", x_label), ("left", y_label)):
            # Plain numbers: an SI prefix like "(x0.001)" on an accuracy axis only confuses.
            plot.getAxis(side).enableAutoSIPrefix(False)
            if label:
                plot.setLabel(side, label)
        self._curves: dict[str, pg.PlotDataItem] = {}

    def set_curve(self, name: str, x, y, color: str = "#1f77b4", symbol: str | None = None) -> None:
        curve = self._curves.get(name)
        if curve is None:
            curve = self.plot([], [], name=name, pen=pg.mkPen(color, width=2), symbol=symbol,
                              symbolSize=6, symbolBrush=color)
            self._curves[name] = curve
        curve.setData(np.asarray(x, np.float64), np.asarray(y, np.float64))

    def clear_curves(self) -> None:
        for curve in self._curves.values():
            curve.setData([], [])

    def _write_csv(self, path: Path) -> None:
        pg_exporters.CSVExporter(self.getPlotItem()).export(str(path))


def exportable_views(root: QWidget) -> list[Exportable]:
    """Every exportable view shown under ``root`` (hidden pages are left out), in creation order."""
    return [w for w in root.findChildren(QWidget) if isinstance(w, Exportable) and w.isVisibleTo(root)]


