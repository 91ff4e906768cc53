"""Backprop Studio's computation layer: torch and numpy only, never Qt.

Everything the GUI shows is computed here, so it can be tested (against PyTorch
as the oracle) and scripted without a display.
"""

from pathlib import Path

__version__ = "0.1.0"

# Shipped files (model weights, icon): beside the packages, in the source tree and in a wheel alike.
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
