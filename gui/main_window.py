"""The main window: one tab per registered area, menus, status bar, settings.

It imports only Qt at first so it can be on screen quickly; torch and the tabs
load afterwards (torch in a background thread), each tab showing a loading page
until it is built.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import __version__
from gui import settings
from gui.tabs import TABS, TabSpec
from gui.tabs.base import StudioTab, TabContext



class LoadingPage(QWidget):
    """Shown in a tab's place while torch and the tab load (or why loading failed)."""

    def __init__(self, spec: TabSpec, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.label = QLabel(f"Loading {spec.title}...\n(PyTorch takes a few seconds to start)")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy indicator
        self.bar.setMaximumWidth(320)
        layout.addWidget(self.label)
        layout.addWidget(self.bar, alignment=Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def show_error(self, message: str) -> None:
        self.bar.hide()
        self.label.setText(message)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)


def _preload(modules: tuple[str, ...]):
    """Import Qt-free modules (torch first) in the background, yielding progress."""
    for i, name in enumerate(modules):
        importlib.import_module(name)
        yield _LoadStep(i + 1, len(modules), name)


class _LoadStep:
    def __init__(self, done: int, total: int, module: str):
        self.fraction = done / total
        self.module = module


class MainWindow(QMainWindow):
    tabs_loaded = Signal()

    def __init__(self, device: str = "auto", initial_tab: str | None = None):
        super().__init__()
        self.setWindowTitle("Backprop Studio")
        self.context = TabContext(device=device)
        self.tab_widget = QTabWidget()
        self.tab_widget.setDocumentMode(True)
        self.setCentralWidget(self.tab_widget)
        self.specs = list(TABS)
        self.pages: dict[str, QWidget] = {}
        for spec in self.specs:
            page = LoadingPage(spec)
            self.pages[spec.key] = page
            self.tab_widget.addTab(page, spec.title)
        self._preload_runner = None
        self._first_paint_reported = False
        self._build_menus()
        self._build_status_bar()
        self.setAcceptDrops(True)

        saved_geometry = settings.app_settings().value("window/geometry")
        if isinstance(saved_geometry, QByteArray) and not saved_geometry.isEmpty():
            self.restoreGeometry(saved_geometry)
        else:
            self.resize(1400, 900)
        key = initial_tab or settings.read("window/last_tab", self.specs[0].key)
        self.select_tab(key if key in self.pages else self.specs[0].key)
        self.tab_widget.currentChanged.connect(self._on_tab_changed)

    # --- building -------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = file_menu.addAction("&Open image...", self.open_image_dialog)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.setStatusTip("Open a picture of your own in the current tab")
        self.export_action = file_menu.addAction("&Export...", self.export_dialog)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setStatusTip("Save a plot of the current tab as PNG, SVG or CSV")
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)

        view_menu = bar.addMenu("&View")
        for i, spec in enumerate(self.specs):
            action = view_menu.addAction(spec.title, lambda key=spec.key: self.select_tab(key))
            if i < 9:
                action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
        view_menu.addSeparator()
        full = view_menu.addAction("&Full screen", self._toggle_full_screen)
        full.setShortcut(QKeySequence.StandardKey.FullScreen)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction("Course &topics of this tab", self.show_topics).setShortcut(QKeySequence("F1"))
        help_menu.addAction("&About Backprop Studio", self.show_about)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.task_label = QLabel()
        self.task_bar = QProgressBar()
        self.task_bar.setMaximumWidth(200)
        self.task_bar.setRange(0, 1000)
        self.task_label.hide()
        self.task_bar.hide()
        self.device_label = QLabel("Device: loading PyTorch...")
        self.device_label.setToolTip("Where training runs. Choose with --device auto|cpu|cuda.")
        status.addPermanentWidget(self.task_label)
        status.addPermanentWidget(self.task_bar)
        status.addPermanentWidget(self.device_label)

    # --- loading ---------------------------------------------------------------------------------
    def start_loading(self) -> None:
        """Import torch and the tabs' engine modules in the background, then build the tabs."""
        from gui.workers import TaskRunner, task_monitor  # superqt: after the window is up

        monitor = task_monitor()
        monitor.progress.connect(self._on_task_progress)
        monitor.ended.connect(self._on_task_ended)
        modules: list[str] = []
        for spec in self.specs:
            modules += [m for m in spec.preload if m not in modules]
        self._preload_runner = TaskRunner("Loading PyTorch", self)
        self._preload_runner.failed.connect(self._on_preload_failed)
        self._preload_runner.finished.connect(self._on_preload_finished)
        self._preload_started = time.perf_counter()
        self._preload_runner.start(_preload, tuple(modules))

    @Slot(str)
    def _on_preload_failed(self, message: str) -> None:
        for page in self.pages.values():
            if isinstance(page, LoadingPage):
                page.show_error(f"Could not load PyTorch or the app's engine:\n\n{message}\n\n"
                                "Reinstall with: pip install -e .")
        self.device_label.setText("Device: unavailable")

    @Slot(bool)
    def _on_preload_finished(self, completed: bool) -> None:
        if not completed:
            return
        from engine.device import resolve_device

        choice = resolve_device(self.context.device)
        self.device_label.setText(f"Device: {choice.label}")
        if choice.note:
            self.statusBar().showMessage(choice.note, 10000)
        self.statusBar().showMessage(
            f"Ready (PyTorch loaded in {time.perf_counter() - self._preload_started:.1f} s)", 5000)
        # Build the visible tab first so the user sees results soonest.
        order = sorted(self.specs, key=lambda s: s.key != self.current_key())
        for spec in order:
            self._build_tab(spec)
        self.tabs_loaded.emit()

    def _build_tab(self, spec: TabSpec) -> None:
        page = self.pages[spec.key]
        try:
            module = importlib.import_module(spec.module)
            tab = getattr(module, spec.class_name)(self.context)
        except Exception as exc:  # a broken tab must not take the app down
            import traceback

            traceback.print_exc()
            if isinstance(page, LoadingPage):
                page.show_error(f"{spec.title} could not be opened:\n\n{type(exc).__name__}: {exc}")
            return
        index = self.tab_widget.indexOf(page)
        was_current = self.tab_widget.currentIndex() == index
        self.tab_widget.blockSignals(True)
        self.tab_widget.removeTab(index)
        self.tab_widget.insertTab(index, tab, spec.title)
        if was_current:
            self.tab_widget.setCurrentIndex(index)
        self.tab_widget.blockSignals(False)
        page.deleteLater()
        self.pages[spec.key] = tab
        self._update_actions()

    # --- tabs -------------------------------------------------------------------------------------
    def current_key(self) -> str:
        widget = self.tab_widget.currentWidget()
        for key, page in self.pages.items():
            if page is widget:
                return key
        return self.specs[0].key

    def current_tab(self) -> StudioTab | None:
        widget = self.tab_widget.currentWidget()
        return widget if isinstance(widget, StudioTab) else None

    def tab(self, key: str) -> QWidget:
        return self.pages[key]

    def select_tab(self, key: str) -> None:
        self.tab_widget.setCurrentWidget(self.pages[key])
        self._update_actions()

    @Slot(int)
    def _on_tab_changed(self, _index: int) -> None:
        settings.write("window/last_tab", self.current_key())
        self._update_actions()

    def _update_actions(self) -> None:
        tab = self.current_tab()
        self.open_action.setEnabled(bool(tab and tab.accepts_images))
        self.export_action.setEnabled(tab is not None)

    # --- actions --------------------------------------------------------------------------------
    def open_image_dialog(self) -> None:
        tab = self.current_tab()
        if tab is not None and tab.accepts_images:
            tab.open_image_dialog()

    def export_dialog(self) -> None:
        from gui.widgets.plots import exportable_views

        tab = self.current_tab()
        views = exportable_views(tab) if tab is not None else []
        if not views:
            QMessageBox.information(self, "Export", "This tab has nothing to export yet.")
            return
        names = [v.export_title for v in views]
        name, ok = QInputDialog.getItem(self, "Export", "Which view?", names, 0, False)
        if ok:
            views[names.index(name)].export_with_dialog("png")

    def show_topics(self) -> None:
        key = self.current_key()
        spec = next(s for s in self.specs if s.key == key)
        items = "".join(f"<li>{t}</li>" for t in spec.topics)
        QMessageBox.information(self, f"Course topics: {spec.title}",
                                f"<b>{spec.title}</b> covers these parts of the course:<ul>{items}</ul>")

    def show_about(self) -> None:
        import PySide6

        torch_version = sys.modules["torch"].__version__ if "torch" in sys.modules else "not loaded yet"
        QMessageBox.about(
            self, "About Backprop Studio",
            f"<b>Backprop Studio {__version__}</b><br>See how deep networks compute and learn.<br><br>"
            f"PyTorch {torch_version}, Qt for Python {PySide6.__version__}<br>{self.device_label.text()}")

    def _toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # --- status bar -------------------------------------------------------------------------------
    @Slot(str, float)
    def _on_task_progress(self, label: str, fraction: float) -> None:
        self.task_label.setText(label)
        self.task_label.show()
        self.task_bar.show()
        if fraction < 0:
            self.task_bar.setRange(0, 0)
        else:
            self.task_bar.setRange(0, 1000)
            self.task_bar.setValue(int(fraction * 1000))

    @Slot(str)
    def _on_task_ended(self, label: str) -> None:
        if self.task_label.text() == label:
            self.task_label.hide()
            self.task_bar.hide()

    # --- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        tab = self.current_tab()
        if tab is not None and tab.accepts_images and event.mimeData().hasUrls():
            if any(u.isLocalFile() for u in event.mimeData().urls()):
                event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        tab = self.current_tab()
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if tab is not None and files:
            tab.open_image(files[0])
            event.acceptProposedAction()

    # --- lifecycle --------------------------------------------------------------------------------
    def event(self, event) -> bool:
        if (event.type() == QEvent.Type.Paint and not self._first_paint_reported
                and os.environ.get("BACKPROP_STUDIO_STARTUP_PROBE")):
            # Start-up benchmark hook: report the first paint and leave.
            self._first_paint_reported = True
            print("WINDOW_VISIBLE", flush=True)
            QTimer.singleShot(0, lambda: os._exit(0))
        return super().event(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        settings.app_settings().setValue("window/geometry", self.saveGeometry())
        settings.write("window/last_tab", self.current_key())
        for page in self.pages.values():
            if isinstance(page, StudioTab):
                page.shutdown()
        if self._preload_runner is not None:
            self._preload_runner.wait(30.0)  # an import cannot be interrupted; let it finish
        super().closeEvent(event)
