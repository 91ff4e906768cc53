"""PySide6 6.12.0 on CPython 3.11 drops a reference to None in every void-returning call and the
interpreter aborts ("Fatal Python error: none_dealloc") after a few thousand calls. The pin in
pyproject.toml keeps it out; this test makes ~20,000 such calls in a child process to prove it."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = r"""
import sys
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
obj = QObject()
timer = QTimer()
before = sys.getrefcount(None)
for i in range(20000):
    label.setText("x")          # void
    obj.setObjectName("n")      # void
    timer.setInterval(i % 50)   # void
after = sys.getrefcount(None)
print("ok", before, after)
"""


def test_twenty_thousand_void_calls_do_not_abort():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("ok")


def test_installed_pyside_is_not_the_broken_release():
    import PySide6

    assert PySide6.__version__ != "6.12.0"
