"""Exportable views for colour images and matrices: a grid of RGB tiles and a confusion matrix.

``ImageGridPlot`` shows (C, H, W) images (C = 1 or 3) as one RGB mosaic, each tile
optionally framed in a colour (green right, red wrong) and captioned; ``ConfusionPlot``
shows a (K, K) count matrix with its numbers and class names. Both export PNG/SVG like
every ExportablePlot, and their CSV holds the numbers behind the picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.widgets.plots import ExportablePlot


def normalise_each(images: np.ndarray) -> np.ndarray:  # (N, C, H, W) -> same, float32 in [0, 1]
    """Stretch every image to the full range on its own (how learned filters are usually shown)."""
    a = np.asarray(images, np.float32)
    lo = a.min(axis=(1, 2, 3), keepdims=True)
    hi = a.max(axis=(1, 2, 3), keepdims=True)
    return (a - lo) / np.maximum(hi - lo, 1e-12)


def mosaic_rgb(tiles: np.ndarray, columns: int, gap: int = 1, border: int = 0,
               border_colours: Sequence[tuple[int, int, int]] | None = None,
               background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:  # -> (rows*h', cols*w', 3) uint8
    """(N, C, H, W) floats in [0, 1] (C = 1 or 3) -> one RGB image with gaps and optional coloured frames."""
    n, c, h, w = tiles.shape
    rows = int(np.ceil(n / max(1, columns)))
    th, tw = h + 2 * border, w + 2 * border
    out = np.empty((rows * (th + gap) - gap, columns * (tw + gap) - gap, 3), np.uint8)
    out[:] = background
    rgb = np.repeat(tiles, 3, axis=1) if c == 1 else tiles[:, :3]
    rgb = np.clip(np.round(rgb.transpose(0, 2, 3, 1) * 255), 0, 255).astype(np.uint8)  # (N, H, W, 3)
    for i in range(n):
        r, q = divmod(i, columns)
        top, left = r * (th + gap), q * (tw + gap)
        if border and border_colours is not None:
            out[top: top + th, left: left + tw] = border_colours[i]
        out[top + border: top + border + h, left + border: left + border + w] = rgb[i]
    return out


class ImageGridPlot(ExportablePlot):
    """Colour tiles in a grid; hover a tile to read its caption."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(title, parent)
        self.image_item = self.add_image_item()
        self._tiles = np.zeros((0, 1, 1, 1), np.float32)  # (N, C, H, W) what the CSV reports
        self._captions: list[str] = []
        self._csv_rows: list[tuple] | None = None
        self._csv_header: list[str] = []
        self._geometry = (1, 1, 1, 0, 1)  # columns, tile h, tile w, border, gap
        self._shape: tuple[int, ...] = ()
        self._hover = pg.TextItem(color="k", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 220))
        self._hover.setZValue(10)
        self._hover.hide()
        self.addItem(self._hover, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_tiles(self, tiles: np.ndarray, columns: int | None = None, captions: Sequence[str] | None = None,
                  border_colours: Sequence[tuple[int, int, int]] | None = None, border: int = 0,
                  csv: tuple[list[str], list[tuple]] | None = None) -> None:
        """Show (N, C, H, W) tiles with values in [0, 1]; ``csv`` overrides the default per-pixel table."""
        tiles = np.asarray(tiles, np.float32)
        n, _, h, w = tiles.shape
        columns = columns or max(1, int(np.ceil(np.sqrt(n))))
        gap = 1 if max(h, w) < 32 else 2
        image = mosaic_rgb(tiles, columns, gap, border if border_colours is not None else 0, border_colours)
        self._tiles = tiles
        self._captions = list(captions or [])
        self._geometry = (columns, h, w, border if border_colours is not None else 0, gap)
        self._csv_header, self._csv_rows = csv if csv is not None else ([], None)
        self.image_item.setImage(image, autoLevels=False, levels=(0, 255))
        if image.shape != self._shape:
            self._shape = image.shape
            self.getPlotItem().autoRange(padding=0.02)

    @property
    def rgb(self) -> np.ndarray:
        return self.image_item.image

    def tile_at(self, x: float, y: float) -> int | None:
        columns, h, w, border, gap = self._geometry
        th, tw = h + 2 * border, w + 2 * border
        col, row = int(x // (tw + gap)), int(y // (th + gap))
        if x < 0 or y < 0 or col >= columns:
            return None
        index = row * columns + col
        return index if index < len(self._tiles) else None

    def _on_mouse_moved(self, scene_pos) -> None:
        pos = self.image_item.mapFromScene(scene_pos)
        index = self.tile_at(pos.x(), pos.y())
        if index is None or index >= len(self._captions) or not self._captions[index]:
            self._hover.hide()
            return
        self._hover.setText(self._captions[index])
        self._hover.setPos(pos.x(), pos.y())
        self._hover.show()

    def csv_table(self):
        if self._csv_rows is not None:
            return self._csv_header, self._csv_rows
        n, c, h, w = self._tiles.shape
        rows = [(i, ch, r, q, float(self._tiles[i, ch, r, q]))
                for i in range(n) for ch in range(c) for r in range(h) for q in range(w)]
        return ["tile", "channel", "row", "col", "value"], rows


class ConfusionPlot(ExportablePlot):
    """A (K, K) confusion matrix: rows are true classes, columns predictions, counts written in."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(title, parent)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setColorMap(pg.colormap.get("CET-L12"))
        self.addItem(self.image_item)
        plot = self.getPlotItem()
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.setLabel("left", "true class")
        plot.setLabel("bottom", "predicted class")
        plot.setMouseEnabled(x=False, y=False)
        self.matrix = np.zeros((0, 0), np.int64)
        self.class_names: list[str] = []
        self._texts: list[pg.TextItem] = []

    def set_matrix(self, matrix: np.ndarray, class_names: Sequence[str]) -> None:
        matrix = np.asarray(matrix, np.int64)
        k = matrix.shape[0]
        names = list(class_names)[:k] + [str(i) for i in range(len(class_names), k)]
        if names != self.class_names or len(self._texts) != k * k:
            self._rebuild(names)
        self.matrix = matrix
        # Colour by the share of each true class (row), so rare classes read as clearly as common ones.
        share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        self.image_item.setImage(share.astype(np.float32), autoLevels=False, levels=(0, 1))
        for i in range(k):
            for j in range(k):
                text = self._texts[i * k + j]
                text.setText(str(matrix[i, j]) if matrix[i, j] else "")
                text.setColor("w" if share[i, j] > 0.55 else "k")

    def _rebuild(self, names: list[str]) -> None:
        for text in self._texts:
            self.removeItem(text)
        k = len(names)
        self.class_names = names
        self._texts = []
        for i in range(k):
            for j in range(k):
                text = pg.TextItem("", anchor=(0.5, 0.5))
                text.setPos(j + 0.5, i + 0.5)
                self.addItem(text)
                self._texts.append(text)
        short = [(i + 0.5, n if len(n) <= 9 else n[:8] + "…") for i, n in enumerate(names)]
        plot = self.getPlotItem()
        plot.getAxis("left").setTicks([short])
        plot.getAxis("bottom").setTicks([short])
        plot.setXRange(0, k, padding=0.02)
        plot.setYRange(0, k, padding=0.02)

    def csv_table(self):
        k = self.matrix.shape[0]
        rows = [(self.class_names[i], self.class_names[j], int(self.matrix[i, j])) for i in range(k) for j in range(k)]
        return ["true class", "predicted class", "count"], rows
