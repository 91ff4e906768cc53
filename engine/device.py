"""Choosing the compute device (``--device auto|cpu|cuda``) and naming it for the status bar."""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHOICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    label: str  # "CPU" or the CUDA device's name
    note: str = ""  # why the choice differs from the request, if it does


def resolve_device(preference: str = "auto") -> DeviceChoice:
    """Map a user preference to a usable device; a missing GPU falls back to the CPU with a note."""
    if preference not in CHOICES:
        raise ValueError(f"Unknown device {preference!r}; choose one of {', '.join(CHOICES)}.")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda"), torch.cuda.get_device_name(0))
    note = "CUDA was requested but no CUDA GPU is available; using the CPU." if preference == "cuda" else ""
    return DeviceChoice(torch.device("cpu"), "CPU", note)
