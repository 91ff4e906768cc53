"""The layer contract: engine/ runs without Qt (import-linter), and stays importable headless."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"  # installed with the test extras
    proc = subprocess.run([str(lint_imports), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "engine runs without Qt" in proc.stdout and "KEPT" in proc.stdout


def test_engine_modules_import_without_qt():
    code = ("import sys, importlib, pkgutil, engine\n"
            "for m in pkgutil.iter_modules(engine.__path__):\n"
            "    importlib.import_module('engine.' + m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt', 'gui')]\n"
            "print(bad)\n"
            "sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_main_window_module_does_not_import_torch_or_pyqtgraph():
    """The window must show before torch loads: its module and the tab registry stay light."""
    code = ("import sys, gui.app, gui.main_window\n"
            "heavy = [m for m in ('torch', 'pyqtgraph', 'superqt') if m in sys.modules]\n"
            "print(heavy); sys.exit(1 if heavy else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_tab_can_run_on_its_own(tmp_path):
    """`python -m gui.tabs.NAME` opens the tab alone, draws its first results and closes cleanly."""
    import os

    from gui.tabs import TABS

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BACKPROP_STUDIO_QUIT_WHEN_READY": "1",
           "XDG_CONFIG_HOME": str(tmp_path)}  # the child's settings stay out of the user's
    for spec in TABS:
        proc = subprocess.run([sys.executable, "-m", spec.module], capture_output=True, text=True, cwd=REPO,
                              env=env, timeout=120)
        assert proc.returncode == 0, f"{spec.module}: {proc.stderr[-2000:]}"
