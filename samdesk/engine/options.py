"""The device and precision names every front end offers (torch-free, so that the CLI's
argument parser and the app's settings can list them without importing torch)."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")
"""``auto``: CUDA when present, else the CPU."""

PRECISIONS = ("auto", "fp32", "bf16", "int8")
"""Encoder precisions; see :mod:`samdesk.engine.precision` for what ``auto`` picks."""
