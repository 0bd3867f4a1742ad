"""``fashion-edge attributes`` as a user runs it: the shipped person-attribute model, real PETA and
Clothing Co-Parsing crops from ../shared, real video; JSON lines, the table, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "person-attributes.tflite"  # python -m training.attributes --config configs/attributes.yaml

# Real crops whose labels say what the person wears (../shared/datasets/.../labels.csv, tags.csv), all
# in the validation part of configs/attributes.yaml's split (training never saw them).
# A navy suit, frontal (tags: suit=1, pants=1, no jeans/skirt/dress/shorts); model suit 0.93, shorts 0.00.
SUIT = "clothing-co-parsing/images/0595.jpg"
# A man in shorts from behind, 150 px (lowerBodyShorts=1, no jacket, no suit); model suit 0.00, shorts 0.71.
SHORTS = "peta/images/3DPeS/83_628_FRAME_73_RGB.jpg"
PETA_CROPS = [  # a PETA val crop of each of three subsets
    "peta/images/3DPeS/1_12_FRAME_48_RGB.jpg",
    "peta/images/CUHK/2555.jpg",
    "peta/images/VIPeR/687_45_1.jpg",
]

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason=f"{MODEL.relative_to(REPO)} is not built yet "
                                "(python -m training.attributes --config configs/attributes.yaml)")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MODEL.with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def names(manifest) -> list[str]:
    return list(manifest["attributes"]) + (["dress_or_skirt"] if manifest.get("dress_or_skirt") else [])


def run(capfd, *args) -> tuple[int, list[str], list[str]]:
    """The CLI in-process: (exit code, stdout lines, stderr lines without the TFLite runtime's INFO chatter)."""
    code = cli_main(["attributes", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out.splitlines(), [line for line in err.splitlines() if line.strip() and not line.startswith("INFO:")]


def json_lines(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def test_json_lines_shape_and_values(capfd, shared_dir, names):
    crops = [shared_dir / "datasets" / p for p in [*PETA_CROPS, SUIT]]
    code, out, err = run(capfd, "--model", MODEL, "--json", *crops)
    assert code == 0, err
    lines = json_lines(out)
    assert [line["path"] for line in lines] == [str(p) for p in crops]
    for line in lines:
        assert set(line) == {"path", "attributes"}  # an image is one person crop: no frame, no box
        scores = line["attributes"]
        assert list(scores) == names  # suit, dress, skirt, pants, shorts, outwear, dress_or_skirt
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in scores.values())
        expected = 1 - (1 - scores["dress"]) * (1 - scores["skirt"])  # the derived score
        assert scores["dress_or_skirt"] == pytest.approx(expected, abs=2e-4)
    assert len({json.dumps(line["attributes"]) for line in lines}) == len(lines)  # each crop read on its own


def test_folder_gives_one_line_per_image(capfd, shared_dir, tmp_path):
    for name in PETA_CROPS:
        shutil.copy(shared_dir / "datasets" / name, tmp_path / Path(name).name)
    (tmp_path / "notes.txt").write_text("not an image: the folder listing skips it")
    code, out, err = run(capfd, "--model", MODEL, "--json", tmp_path)
    assert code == 0, err
    paths = [line["path"] for line in json_lines(out)]
    assert paths == sorted(str(tmp_path / Path(name).name) for name in PETA_CROPS)


def test_suit_reads_higher_on_a_suit_than_on_shorts(capfd, shared_dir):
    code, out, err = run(capfd, "--model", MODEL, "--json", shared_dir / "datasets" / SUIT,
                         shared_dir / "datasets" / SHORTS)
    assert code == 0, err
    suit, shorts = (line["attributes"] for line in json_lines(out))
    assert suit["suit"] > shorts["suit"] + 0.5
    assert shorts["shorts"] > suit["shorts"] + 0.3


def test_table_marks_the_operating_points(capfd, shared_dir, manifest, names):
    crop = shared_dir / "datasets" / SUIT
    code, out, err = run(capfd, "--model", MODEL, crop)
    assert code == 0, err
    assert out[0].startswith(f"model: {MODEL}")
    assert out[1].split()[: len(names)] == names
    thresholds = [float(v) for v in out[2].split()[: len(names)]]
    assert thresholds == [round(manifest["thresholds"].get(n, 0.5), 2) for n in names]
    (row,) = out[3:]
    scores_and_worn, path = row.split(" / ", 1)
    cells, worn_column = scores_and_worn.split()[: len(names)], " ".join(scores_and_worn.split()[len(names):])
    marked = [n for n, cell in zip(names, cells) if cell.endswith("*")]
    assert path == str(crop)
    assert worn_column == (", ".join(marked) or "-")
    code, out, _ = run(capfd, "--model", MODEL, "--json", crop)
    scores = json_lines(out)[0]["attributes"]
    assert marked == [n for n in names if scores[n] >= manifest["thresholds"].get(n, 0.5)]


def test_video_reads_each_detected_person(capfd, shared_dir, names):
    clip = shared_dir / "media" / "people-detection.gif"  # 23 frames, 480x270, people walking
    code, out, err = run(capfd, "--model", MODEL, "--every", 10, "--json", clip)
    assert code == 0, err
    lines = json_lines(out)
    assert lines, "no person found in the clip"
    for line in lines:
        assert set(line) == {"path", "attributes", "frame", "box"}
        assert line["frame"] in (0, 10, 20)
        x1, y1, x2, y2 = line["box"]
        assert 0 <= x1 < x2 <= 480 and 0 <= y1 < y2 <= 270
        assert list(line["attributes"]) == names


def test_detect_on_an_image_reads_each_person(capfd, shared_dir):
    code, out, err = run(capfd, "--model", MODEL, "--detect", "--json", shared_dir / "media" / "zidane.jpg")
    assert code == 0, err
    lines = json_lines(out)
    assert len(lines) == 2  # two men in suits
    assert all(set(line) == {"path", "attributes", "box"} for line in lines)


def one_error(code: int, out: list[str], err: list[str]) -> str:
    assert code == 2, (code, out, err)
    assert out == []
    assert len(err) == 1, err
    assert err[0].startswith("fashion-edge attributes: error: ")
    return err[0]


def test_bad_input_is_one_line_and_exit_2(capfd, shared_dir, tmp_path):
    good = shared_dir / "datasets" / PETA_CROPS[0]
    missing = tmp_path / "missing.jpg"
    assert str(missing) in one_error(*run(capfd, "--model", MODEL, "--json", good, missing))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    line = one_error(*run(capfd, "--model", MODEL, broken))
    assert str(broken) in line and "cannot decode" in line
    lonely = tmp_path / "lonely.tflite"  # the model without its manifest
    shutil.copy(MODEL, lonely)
    line = one_error(*run(capfd, "--model", lonely, good))
    assert str(lonely) in line and "manifest" in line


def test_config_without_attribute_model(capfd, shared_dir, tmp_path):
    from conftest import demo_config_data

    data = demo_config_data(shared_dir)
    data.pop("attributes", None)
    config = tmp_path / "store.yaml"
    config.write_text(yaml.safe_dump(data))
    line = one_error(*run(capfd, "--config", config, shared_dir / "datasets" / PETA_CROPS[0]))
    assert f"{config}: attributes.model" in line

    data["attributes"] = {"model": str(MODEL), "thresholds": {"suit": 0.42}}  # the config's operating point wins
    config.write_text(yaml.safe_dump(data))
    code, out, err = run(capfd, "--config", config, shared_dir / "datasets" / PETA_CROPS[0])
    assert code == 0, err
    assert out[2].split()[0] == "0.42"


def test_as_a_user_runs_it(shared_dir, names):
    """From a checkout with no flags: the demo config's attribute model, else models/person-attributes.tflite."""
    result = subprocess.run([sys.executable, "-m", "edge", "attributes", "--json", str(shared_dir / "datasets" / SHORTS)],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["path"] == str(shared_dir / "datasets" / SHORTS)
    assert list(line["attributes"]) == names
