"""Where samdesk keeps its files: the embedding cache, user data and the installed models.

Each folder comes from platformdirs (per-user, per-OS conventions: ``~/.cache/samdesk`` on Linux,
``%LOCALAPPDATA%\\samdesk\\Cache`` on Windows, ``~/Library/Caches/samdesk`` on macOS) and can be
redirected, in order of precedence, by an explicit argument, then an environment variable:

- ``SAMDESK_CACHE_DIR``: the embedding cache (safe to delete; it is rebuilt on demand).
- ``SAMDESK_DATA_DIR``: user data; the models live in its ``models`` sub-folder.

The functions only compute paths; they never create folders (callers create them when writing,
so that merely listing models on a read-only home folder does not fail).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "samdesk"
CACHE_ENV = "SAMDESK_CACHE_DIR"
DATA_ENV = "SAMDESK_DATA_DIR"


def _choose(override: str | os.PathLike[str] | None, env: str, default: str) -> Path:
    if override is not None:
        return Path(override).expanduser()
    from_env = os.environ.get(env, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return Path(default)


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The embedding cache folder: ``override``, else ``$SAMDESK_CACHE_DIR``, else the OS's."""
    return _choose(override, CACHE_ENV, platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The user data folder: ``override``, else ``$SAMDESK_DATA_DIR``, else the OS's."""
    return _choose(override, DATA_ENV, platformdirs.user_data_dir(APP_NAME, appauthor=False))


def models_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder installed models live in: ``override``, else ``data_dir() / "models"``."""
    if override is not None:
        return Path(override).expanduser()
    return data_dir() / "models"
