"""Where a checkout keeps things: the repo root and the read-only ``../shared`` folder beside it.

One place for the two paths that training/, export/, scripts/ and the tests used to work out
each on their own (``Path(__file__).parents[n]``, ``REPO.parent / "shared"``). Standard library
only: the light ``edge`` install imports nothing heavy.

* ``repo_root()``: the checkout the ``edge`` package was imported from (the folder holding
  ``edge/``, ``training/``, ``configs/``, ``models/``). For an installed wheel this is the
  site-packages folder, which holds no configs: the daemon finds its home through
  ``edge.resources`` instead.
* ``shared_dir()``: ``$FASHION_EDGE_SHARED`` when set, else ``<repo>/../shared``; resolved.
* ``repo_relative(path)``: a path as reports write it (``../shared/...`` stays so).
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_ENV = "FASHION_EDGE_SHARED"

_REPO = Path(__file__).resolve().parents[1]


def repo_root() -> Path:
    """The checkout's root folder (absolute)."""
    return _REPO


def shared_dir(default: str | Path | None = None) -> Path:
    """The shared data folder: ``$FASHION_EDGE_SHARED``, else ``default`` (a config's own setting),
    else the repo root's sibling ``shared``."""
    return Path(os.environ.get(SHARED_ENV) or default or (_REPO.parent / "shared")).resolve()


def repo_relative(path: str | Path) -> str:
    """``path`` as reports name it: relative to the repo root, ``../shared/...`` for the shared
    folder beside it (never an absolute /work/... path that only exists on one machine)."""
    return os.path.relpath(Path(path).resolve(), _REPO)
