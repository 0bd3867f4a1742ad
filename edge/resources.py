"""Where fashion-edge finds what it needs at run time, installed from a wheel or run from a checkout.

Two kinds of files:

* **package data** (inside ``edge/``, shipped in every wheel): the manifests of known third-party
  models (``edge/data/manifests/``: COCO YOLO, ImageNet MobileNetV2, matched by SHA-256), the alert
  JSON schema (``edge/schemas/``) and the web page. In a checkout ``edge/data/manifests`` is a link
  to ``models/manifests/``, so there is one copy of each manifest.
* **the fashion-edge home**: a folder laid out like the checkout, i.e. ``configs/demo.yaml``,
  ``models/`` (the project's garment detector and classifier with their manifests) and, beside the
  folder, ``../shared/`` (third-party models and the demo clip). ``fashion-edge demo`` takes its
  config from the first home of this search (``home_search()``):

  1. ``$FASHION_EDGE_HOME`` (an error when set to a folder without ``configs/demo.yaml``);
  2. the current directory, when it holds ``configs/demo.yaml`` (run from a checkout);
  3. the checkout the ``edge`` package was imported from (an editable install).

A store's config names its models by absolute path (``/opt/fashion-edge/models/...``, see
systemd/README.md) and needs no home.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError
from .paths import repo_root

PACKAGE_DIR = Path(__file__).resolve().parent
# resolve(): in a checkout this is models/manifests/ itself (the link's target), so the path a
# manifest is reported under is the one the configs name.
MANIFESTS_DIR = (PACKAGE_DIR / "data" / "manifests").resolve()
HOME_ENV = "FASHION_EDGE_HOME"
DEMO_CONFIG = Path("configs") / "demo.yaml"


def home_search() -> list[tuple[str, Path]]:
    """The candidate homes in search order, each with where it came from."""
    candidates = []
    if os.environ.get(HOME_ENV):
        candidates.append((f"${HOME_ENV}", Path(os.environ[HOME_ENV]).expanduser()))
    candidates.append(("the current directory", Path.cwd()))
    candidates.append(("the checkout of the edge package", repo_root()))
    return candidates


def find_home() -> Path:
    """The first home of ``home_search()`` holding ``configs/demo.yaml``; ``ConfigError`` if none."""
    for origin, folder in home_search():
        if (folder / DEMO_CONFIG).is_file():
            return folder.resolve()
        if origin.startswith("$"):  # set on purpose: a wrong value is an error, not a fall-through
            raise ConfigError(f"{origin} is {folder}, which holds no {DEMO_CONFIG}: point it at a "
                              "fashion-edge checkout (configs/, models/, with ../shared beside it)")
    raise ConfigError(f"no {DEMO_CONFIG} found: run from a fashion-edge checkout, or set {HOME_ENV} to one "
                      "(configs/, models/, with ../shared beside it), or pass --config")


def demo_config() -> Path:
    """``<home>/configs/demo.yaml`` (its paths are relative to it: ../models, ../../shared)."""
    return find_home() / DEMO_CONFIG


def is_demo_config(path: str | Path) -> bool:
    """Is ``path`` the home's demo config? False when there is no home (``demo --config`` elsewhere)."""
    try:
        return Path(path).resolve() == demo_config().resolve()
    except ConfigError:
        return False
