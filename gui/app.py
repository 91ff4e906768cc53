"""``backprop-studio``: parse the command line, show the window at once, load the rest after."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import __version__
from gui.tabs import TAB_KEYS

SCREENSHOT_TIMEOUT_S = 180

# `backprop-studio train MODEL ARGS`: headless training, no window (module, function taking ARGS).
TRAINERS = {
    "digits": ("engine.digits", "train_main"),
    "alexnet": ("engine.alexnet_train", "main"),
}


def run_trainer(argv: list[str]) -> int:
    """Dispatch ``train MODEL ...`` to the engine, which needs no Qt (for GPU servers without a display)."""
    import importlib

    usage = f"usage: backprop-studio train {{{','.join(TRAINERS)}}} [options]   (add --help for a model's options)"
    if not argv or argv[0] not in TRAINERS:
        print(usage, file=sys.stderr)
        return 2
    module_name, function = TRAINERS[argv[0]]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        print(f"Training {argv[0]} is not available in this installation ({exc}).", file=sys.stderr)
        return 2
    return int(getattr(module, function)(argv[1:]) or 0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="backprop-studio", description="Backprop Studio: see how deep networks compute and learn.",
        epilog="Headless training: backprop-studio train {" + ",".join(TRAINERS) + "} --help")
    parser.add_argument("--tab", metavar="NAME", help=f"open on this tab ({', '.join(TAB_KEYS)})")
    parser.add_argument("--screenshot", metavar="PATH",
                        help="save a PNG of the window once the tab shows its first results, then exit")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where training runs (default: a CUDA GPU when there is one)")
    parser.add_argument("--version", action="version", version=f"Backprop Studio {__version__}")
    args = parser.parse_args(argv)
    if args.tab is not None and args.tab not in TAB_KEYS:
        parser.error(f"unknown tab {args.tab!r}; valid tabs: {', '.join(TAB_KEYS)}")
    if args.screenshot and Path(args.screenshot).suffix.lower() != ".png":
        parser.error("--screenshot needs a .png path")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    if argv[:1] == ["train"]:
        return run_trainer(argv[1:])
    args = parse_args(argv)

    from PySide6.QtWidgets import QApplication

    from gui import settings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Backprop Studio")
    app.setOrganizationName(settings.ORGANISATION)
    app.setApplicationVersion(__version__)
    from PySide6.QtGui import QIcon

    from engine import ASSETS_DIR

    app.setWindowIcon(QIcon(str(ASSETS_DIR / "backprop-studio.png")))
    app.setDesktopFileName("backprop-studio")  # matches packaging/backprop-studio.desktop

    from gui.main_window import MainWindow

    window = MainWindow(device=args.device, initial_tab=args.tab)
    window.show()
    if args.screenshot:
        _schedule_screenshot(app, window, args.tab, Path(args.screenshot))
    window.start_loading()
    return app.exec()


def _schedule_screenshot(app, window, tab_key: str | None, path: Path) -> None:
    """Save the window once the chosen tab has drawn its first results; exit 0 (or 1 on timeout)."""
    from PySide6.QtCore import QTimer

    failed = []

    def capture() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(path), "PNG") and not failed
        if not path.is_file():
            print(f"Could not write {path}", file=sys.stderr)
        window.close()
        app.exit(0 if ok else 1)

    def on_loaded() -> None:
        tab = window.tab(tab_key or window.current_key())
        if not hasattr(tab, "ready"):
            print(f"The {tab_key} tab failed to load; see the message in the window.", file=sys.stderr)
            failed.append(tab_key)
            QTimer.singleShot(200, capture)
            return
        if tab.is_ready():
            QTimer.singleShot(300, capture)
        else:
            tab.ready.connect(lambda: QTimer.singleShot(300, capture))

    def give_up() -> None:
        print(f"Timed out after {SCREENSHOT_TIMEOUT_S} s waiting for the tab to load.", file=sys.stderr)
        window.close()
        app.exit(1)

    window.tabs_loaded.connect(on_loaded)
    QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, give_up)
