"""Model manager: the registered models, their install and verification state, downloads with
progress and cancel, and importing a checkpoint file."""

from __future__ import annotations


def installed_models() -> list[tuple[str, str, bool, str]]:
    """(name, title, installed, note) for every registered or imported model."""
    return []
