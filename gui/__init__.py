"""Backprop Studio's Qt views. Thin: all computation lives in ``engine``."""
