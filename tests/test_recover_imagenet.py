"""Recovery of float MobileNetV2 ImageNet weights from the real quantised Coral TFLite file."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import ModelError
from training.recover_imagenet import build_recovered, clothing_images, layer_errors, read_tflite_weights, verify


@pytest.fixture(scope="module")
def tflite(shared_dir):
    return shared_dir / "models/imagenet/mobilenet_v2_1.0_224_quant.tflite"


@pytest.fixture(scope="module")
def recovered(tflite):
    return build_recovered(tflite)


def test_every_tflite_conv_has_its_keras_layer(tflite, recovered):
    weights = read_tflite_weights(tflite)
    assert len(weights) == 53  # 35 convs + 17 depthwise + the 1001-way logits conv
    assert {"Conv1", "expanded_conv_depthwise", "block_16_project", "Conv_1", "logits"} <= set(weights)
    _, stats = recovered
    assert stats == {"convs": 52, "top": True}


def test_layers_reproduce_the_tflite_activations(recovered, tflite):
    model, _ = recovered
    errors = layer_errors(model, tflite, clothing_images(1)[0])
    assert len(errors) == 52
    assert errors["Conv1"] < 0.01  # same input, same weights: only the output's int8 rounding differs
    assert max(errors.values()) < 0.25  # int8 activation noise; a wrong layout or padding gives ~0.5-1


def test_recovered_float_model_agrees_with_tflite_on_real_photos(recovered, tflite):
    model, _ = recovered
    report = verify(model, tflite, clothing_images(60, seed=1), min_agreement=0.85)
    assert report["passed"] and report["top1_agreement"] >= 0.85, report
    assert report["float_top1_in_tflite_top5"] >= 0.98
    # about one quantisation step of the TFLite logits on average
    assert report["mean_abs_logit_diff"] < 2 * report["tflite_logit_step"]
    assert report["max_abs_logit_diff"] < 3.0


def test_wrong_architecture_is_refused(tflite):
    import keras

    from training.recover_imagenet import load_into

    narrow = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.5, include_top=False, weights=None)
    with pytest.raises(ModelError, match="Keras kernel"):
        load_into(narrow, tflite)


def test_recovered_backbone_loads_at_other_sizes(tflite):
    from training.classifier.config import ModelConfig
    from training.classifier.models import backbone_of, build_model

    model = build_model(ModelConfig(backbone="mobilenet_v2", alpha=1.0, weights=tflite, image_size=96), 5, 0)
    bn = backbone_of(model).get_layer("bn_Conv1")
    gamma, beta, mean, var = bn.get_weights()
    assert np.allclose(gamma, 1) and np.allclose(mean, 0) and np.allclose(var + bn.epsilon, 1)
    assert np.abs(beta).max() > 0  # the folded bias
