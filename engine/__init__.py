"""Backprop Studio's computation layer: torch and numpy only, never Qt.

Everything the GUI shows is computed here, so it can be tested (against PyTorch
as the oracle) and scripted without a display.
"""

__version__ = "0.1.0"
