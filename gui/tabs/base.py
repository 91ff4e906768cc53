"""What every tab shares: its context, its "first results drawn" signal, standalone running."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget

from gui import settings

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm);;All files (*)"


@dataclass
class TabContext:
    device: str = "auto"  # the --device preference: auto, cpu or cuda


class StudioTab(QWidget):
    """Base class of the tabs. ``ready`` fires once the first results are on screen."""

    ready = Signal()
    title = "tab"
    accepts_images = False  # True where File > Open image... means something

    def __init__(self, context: TabContext | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context or TabContext()
        self._ready = False

    def is_ready(self) -> bool:
        return self._ready

    def mark_ready(self) -> None:
        if not self._ready:
            self._ready = True
            self.ready.emit()

    def open_image(self, path: str | Path) -> bool:
        """Load a user image; return True when it was shown. Tabs that take images override this."""
        return False

    def open_image_dialog(self) -> None:
        """Ask for an image file (starting in the last folder used) and open it in this tab."""
        folder = settings.read("folders/open", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, f"Open an image ({self.title})", folder, IMAGE_FILTER)
        if path:
            settings.write("folders/open", str(Path(path).parent))
            self.open_image(path)

    def read_image(self, path: str | Path, message_label: QLabel | None = None):
        """``engine.images.load_image``, with a failure shown to the user (returns None) instead of raised."""
        from engine.images import ImageLoadError, load_image

        try:
            return load_image(path)
        except ImageLoadError as exc:
            if message_label is not None:
                message_label.setText(str(exc))
            QMessageBox.warning(self, "Cannot open image", str(exc))
            return None

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Stop background work and wait for it (called from the window's closeEvent)."""
        return True


def run_standalone(tab_class: type[StudioTab], argv: list[str] | None = None) -> int:
    """``python -m gui.tabs.NAME``: the tab alone in a window."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)

    class _Window(QMainWindow):
        def closeEvent(self, event) -> None:  # noqa: N802
            tab.shutdown()
            super().closeEvent(event)

    window = _Window()
    tab = tab_class(TabContext())
    window.setCentralWidget(tab)
    window.setWindowTitle(f"Backprop Studio: {getattr(tab_class, 'title', tab_class.__name__)}")
    window.resize(1300, 850)
    window.show()
    if os.environ.get("BACKPROP_STUDIO_QUIT_WHEN_READY"):
        # For tests and scripts: open, draw the first results, close cleanly.
        if tab.is_ready():
            QTimer.singleShot(0, window.close)
        else:
            tab.ready.connect(window.close)
    return app.exec()
