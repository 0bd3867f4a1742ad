"""Recovery of trainable COCO weights from the real int8 YOLOv8n TFLite file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge.errors import ModelError
from training.recover_coco import calibrate_batchnorm, recover, verify


@pytest.fixture(scope="module")
def tflite(shared_dir):
    return shared_dir / "models/coco-yolo/yolov8n_full_integer_quant_416.tflite"


@pytest.fixture(scope="module")
def recovered(tflite, shared_dir):
    return recover(tflite, "yolov8n.yaml", shared_dir / "media/bus.jpg", 416)


def test_every_conv_is_matched(recovered):
    model, stats = recovered
    assert stats["assigned"] == 63  # all learned convs of YOLOv8n (the DFL integral is fixed)
    assert stats["worst_input_error"] < 0.3  # int8 activation noise, not a wrong match (that is ~1)


def test_recovered_model_reproduces_tflite_people(recovered, tflite, shared_dir):
    model, _ = recovered
    media = shared_dir / "media"
    report = verify(model, tflite, [media / "bus.jpg", media / "zidane.jpg"], 416, tolerance_px=8.0)
    by_image = {r["image"]: r for r in report["images"]}
    assert by_image["bus.jpg"]["recovered_people"] == by_image["bus.jpg"]["tflite_people"] >= 3
    assert by_image["zidane.jpg"]["recovered_people"] == 2
    assert report["passed"], report


def test_batchnorm_calibration_keeps_eval_output_and_tames_train_mode(recovered, shared_dir):
    model, _ = recovered
    images = sorted((shared_dir / "datasets/colorful-fashion/images").glob("*.jpg"))[:8]
    x = torch.rand(1, 3, 128, 128)
    model.eval()
    with torch.no_grad():
        before = model(x)[0].clone()
    assert calibrate_batchnorm(model, images, imgsz=128) == 8
    with torch.no_grad():
        after = model(x)[0]
    assert torch.allclose(before, after, atol=1e-2, rtol=1e-3)
    first_bn = model.model[0].bn
    assert float(first_bn.running_var.mean()) != pytest.approx(1.0 - first_bn.eps)


def test_wrong_architecture_is_a_one_line_model_error(tflite, shared_dir):
    with pytest.raises(ModelError) as err:
        recover(tflite, "yolo11n.yaml", shared_dir / "media/bus.jpg", 416)
    assert "yolov8n_full_integer_quant_416.tflite" in str(err.value) and "\n" not in str(err.value)
