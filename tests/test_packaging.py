"""A non-editable install works: a wheel built from the checkout, installed into a fresh virtual
environment outside it, runs `--version`, `detect` (the COCO model's manifest comes from the package),
`demo` (config, models and clip found through FASHION_EDGE_HOME) and `check-config` on the store
config with the models laid out as systemd/README.md says.

The venv gets the wheel with --no-deps and sees the dependencies (no registry here) of the
interpreter running the tests through a .pth file naming that interpreter's site-packages folders.
Not ``--system-site-packages``: run from inside a virtualenv, that flag gives the *base*
interpreter's packages, not the active venv's (issue 22, 9: ``ModuleNotFoundError: cv2`` in a
venv). Plain folder names do not run their .pth files, so the checkout's editable install stays
out; the test still asserts that `edge` is imported from the venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from test_check_config import guide_layout

REPO = Path(__file__).resolve().parents[1]
CLIP = "media/one-by-one-person-detection.mp4"


def run(*args, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("STATE_DIRECTORY", "FASHION_EDGE_HOME", "PYTHONPATH")}
    environment.update(env or {})
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=environment,
                          timeout=timeout)


def dependency_folders() -> list[str]:
    """The site-packages / dist-packages folders of the interpreter running the tests, in its order
    (a venv's own first, then the base's when it was made with --system-site-packages)."""
    return [p for p in sys.path if p and Path(p).is_dir() and Path(p).name in ("site-packages", "dist-packages")]


def link_dependencies(python: Path) -> None:
    """A .pth in the new venv's site-packages naming ``dependency_folders()`` (appended after its own)."""
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=python.parent)
    assert site.returncode == 0, site.stderr
    (Path(site.stdout.strip()) / "fashion_edge_test_dependencies.pth").write_text(
        "".join(f"{folder}\n" for folder in dependency_folders()))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a venv holding the wheel built from a copy of this working tree."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                                capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the folders the build reads
        listed = ["pyproject.toml", "README.md", "LICENSE"]
        for top in ("edge", "training", "export", "models"):
            shutil.copytree(REPO / top, source / top, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in filter(None, listed):  # the checkout as a user clones it (links kept as links)
        src = REPO / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, source / name, follow_symlinks=False)
    wheels = root / "wheels"
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                "-w", wheels, source, cwd=root, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("fashion_edge-*.whl")
    venv = root / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    link_dependencies(python)
    added = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q",
                wheel, cwd=root, timeout=300)
    assert added.returncode == 0, added.stderr
    where = run(python, "-c", "import edge; print(edge.__file__)", cwd=root)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # not the editable checkout
    return venv / "bin"


def test_version_of_the_checkout():
    from importlib.metadata import version

    from edge import __version__

    result = subprocess.run([sys.executable, "-m", "edge", "--version"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == f"fashion-edge {__version__}"
    assert version("fashion-edge") == __version__  # pyproject takes its version from edge.__version__


def test_version(installed, tmp_path):
    from edge import __version__

    result = run(installed / "fashion-edge", "--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"fashion-edge {__version__}", result


def test_detect_finds_the_coco_manifest_in_the_package(installed, tmp_path, shared_dir):
    model = shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_416.tflite"
    result = run(installed / "fashion-edge", "detect", "--model", model, "--json", shared_dir / "media/bus.jpg",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"person"') >= 4, result.stdout  # bus.jpg: 4 people


def test_demo_finds_its_home(installed, tmp_path, shared_dir):
    """A home laid out like the checkout (configs/, models/, ../shared beside it), named by FASHION_EDGE_HOME."""
    nowhere = run(installed / "fashion-edge", "demo", "--max-frames", 5, cwd=tmp_path)
    assert nowhere.returncode == 2 and "FASHION_EDGE_HOME" in nowhere.stderr, nowhere.stderr
    assert len(nowhere.stderr.strip().splitlines()) == 1, nowhere.stderr

    home = tmp_path / "home"
    (home / "configs").mkdir(parents=True)
    shutil.copy(REPO / "configs" / "demo.yaml", home / "configs" / "demo.yaml")
    (home / "models").symlink_to(REPO / "models")
    (tmp_path / "shared").symlink_to(shared_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run(installed / "fashion-edge", "demo", "--max-frames", 30, "--mqtt-port", free_port(), cwd=elsewhere,
                 env={"FASHION_EDGE_HOME": str(home)}, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "demo finished: 30 frames" in result.stdout, result.stdout
    assert (home / "state" / "demo" / "analytics.sqlite").is_file()  # state beside the home's config
    assert not (elsewhere / "state").exists()
    # an explicit --config needs no home
    explicit = run(installed / "fashion-edge", "demo", "--config", home / "configs" / "demo.yaml", "--max-frames", 5,
                   "--mqtt-port", free_port(), cwd=elsewhere, timeout=180)
    assert explicit.returncode == 0 and "demo finished: 5 frames" in explicit.stdout, explicit.stderr


def test_check_config_on_the_store_config(installed, tmp_path, shared_dir):
    config = guide_layout(tmp_path, shared_dir)
    result = run(installed / "fashion-edge", "check-config", config, cwd=tmp_path,
                 env={"FASHION_EDGE_MQTT_PASSWORD": "change-me"})
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr and "ok (site store-042" in result.stdout
