"""What every tab shares: its context, its "first results drawn" signal, standalone running."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget


@dataclass
class TabContext:
    device: str = "auto"  # the --device preference: auto, cpu or cuda


class StudioTab(QWidget):
    """Base class of the tabs. ``ready`` fires once the first results are on screen."""

    ready = Signal()
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
    return app.exec()
