"""helpers.backbone with the real ImageNet weights (from the Keras cache that KERAS_HOME names).

The backbone and the classifier are built once per module; tests that change ``trainable`` flags
set them explicitly first, so the order of the tests does not matter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from helpers import backbone


@pytest.fixture(scope="module")
def base():
    return backbone.load_backbone()


@pytest.fixture(scope="module")
def classifier():
    return backbone.build_classifier()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (2, 224, 224, 3)).astype("float32")


def _is_bn(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def test_backbone_layer_names(base):
    assert len(base.layers) == 154
    assert base.layers[backbone.CUT_INDEX].name == backbone.CUT_LAYER == "block_12_project"
    assert base.layers[113].name == "block_12_project"
    assert base.layers[112].name == "block_12_depthwise_relu"
    assert base.layers[-1].name == "out_relu"
    assert tuple(base.output.shape) == (None, 7, 7, 1280)


def test_weights_file_is_where_keras_cache_dir_says(base):
    # The backbone loaded, so the cache the helper names is the one Keras used.
    assert backbone.weights_path().name == backbone.WEIGHTS_FILE
    assert backbone.weights_path().is_file()


def test_freeze_up_to_on_the_backbone(base):
    cut = backbone.freeze_up_to(base, "block_12_project")
    assert cut == 113
    for i, layer in enumerate(base.layers):
        if i < cut or _is_bn(layer):
            assert not layer.trainable, layer.name
        else:
            assert layer.trainable, layer.name
    assert base.layers[113].trainable
    assert sum(_is_bn(layer) for layer in base.layers[cut:]) > 0  # the rule is really exercised


def test_freeze_up_to_can_leave_batchnorm_trainable(base):
    cut = backbone.freeze_up_to(base, "block_12_project", freeze_batchnorm=False)
    for i, layer in enumerate(base.layers):
        assert layer.trainable == (i >= cut), layer.name
    post_cut_bn = [layer for layer in base.layers[cut:] if _is_bn(layer)]
    assert post_cut_bn and all(layer.trainable for layer in post_cut_bn)
    backbone.freeze_up_to(base, "block_12_project")
    assert not any(layer.trainable for layer in post_cut_bn)


def test_layer_index_unknown_name_suggests_close_names(base):
    assert backbone.layer_index(base, "block_12_project") == 113
    with pytest.raises(ValueError) as excinfo:
        backbone.layer_index(base, "block_12_projet")
    assert "block_12_projet" in str(excinfo.value)
    assert "block_12_project" in str(excinfo.value).replace("'block_12_projet'", "")


def test_classifier_is_flat(classifier):
    nested = [layer.name for layer in classifier.layers if isinstance(layer, keras.Model)]
    assert nested == []
    names = [layer.name for layer in classifier.layers]
    assert names[:2] == ["image", "preprocess"]
    assert names[-2:] == ["avg_pool", "dog_probability"]
    assert "block_12_project" in names and "out_relu" in names
    assert len(names) == len(set(names))
    assert tuple(classifier.output.shape) == (None, 1)


def test_classifier_preprocessing_matches_preprocess_input(classifier, images):
    rescaled = classifier.get_layer("preprocess")(images).numpy()
    expected = keras.applications.mobilenet_v2.preprocess_input(images.copy())
    np.testing.assert_allclose(rescaled, expected, atol=1e-6)


def test_classifier_default_freezing_and_parameter_counts(classifier):
    cut = backbone.freeze_up_to(classifier)  # the default cut, as build_classifier() applies it
    assert classifier.layers[cut].name == backbone.CUT_LAYER
    counts = backbone.count_parameters(classifier)
    assert counts["trainable_params"] == 1_719_937
    assert counts["non_trainable_params"] == 539_328
    assert counts["total_params"] == classifier.count_params() == 1_719_937 + 539_328
    assert counts["trainable_layers"] == 15
    assert counts["frozen_layers"] == 90
    for layer in classifier.layers[:cut]:
        assert not layer.trainable, layer.name
    assert all(not layer.trainable for layer in classifier.layers if _is_bn(layer))
    assert classifier.get_layer("dog_probability").trainable


def test_snapshot_and_changed(classifier):
    before = backbone.snapshot(classifier)
    assert len(before) == len(classifier.weights)  # weight paths are unique keys
    stats = backbone.snapshot(classifier, batchnorm_only=True)
    bn_layers = [layer for layer in classifier.layers if _is_bn(layer)]
    assert len(stats) == 2 * len(bn_layers)
    dense = classifier.get_layer("dog_probability")
    original = dense.kernel.numpy()
    try:
        dense.kernel.assign(original + 1.0)
        after = backbone.snapshot(classifier)
        assert backbone.changed(before, after) == [dense.kernel.path]
        assert backbone.changed(before, before) == []
        assert not np.shares_memory(before[dense.kernel.path], dense.kernel.numpy())
    finally:
        dense.kernel.assign(original)


@pytest.mark.parametrize(
    ("cut", "shapes"),
    [
        ("block_12_project", {(None, 14, 14, 576), (None, 14, 14, 96)}),
        ("avg_pool", {(None, 7, 7, 1280)}),
    ],
)
def test_split_at_reproduces_the_model(classifier, images, cut, shapes):
    backbone.freeze_up_to(classifier)
    front, tail = backbone.split_at(classifier, cut)
    assert {tuple(t.shape) for t in front.outputs} == shapes
    assert len(front.outputs) == len(shapes)
    features = front(images, training=False)
    combined = tail(features, training=False).numpy()
    direct = classifier(images, training=False).numpy()
    np.testing.assert_allclose(combined, direct, atol=1e-5)
    # The tail shares the classifier's own variables: training it trains the classifier.
    if cut == backbone.CUT_LAYER:
        assert {id(w) for w in tail.trainable_weights} == {
            id(w) for w in classifier.trainable_weights
        }


def test_split_at_front_takes_a_plain_batch_without_warning(classifier, images):
    front, _ = backbone.split_at(classifier)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        front(images, training=False)
    assert not [w for w in caught if "structure of `inputs`" in str(w.message)]


def test_split_at_unknown_layer(classifier):
    with pytest.raises(ValueError):
        backbone.split_at(classifier, "no_such_layer")


def test_weights_error_names_file_and_cache_folder(tmp_path):
    keras_home = tmp_path / "empty_keras_home"
    keras_home.mkdir()
    code = textwrap.dedent(
        """
        import keras
        import keras.src.applications.mobilenet_v2 as impl

        # No network: the only place Keras could fetch the file from does not exist.
        impl.BASE_WEIGHT_PATH = "file:///nonexistent/"
        from helpers import backbone

        try:
            backbone.load_backbone()
        except backbone.WeightsError as exc:
            print("WEIGHTS_ERROR_START")
            print(exc)
        else:
            print("NO ERROR")
        """
    )
    env = {**os.environ, "KERAS_HOME": str(keras_home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WEIGHTS_ERROR_START" in result.stdout, result.stdout + result.stderr[-3000:]
    message = result.stdout.split("WEIGHTS_ERROR_START", 1)[1]
    assert backbone.WEIGHTS_FILE in message
    assert str(keras_home / "models") in message
    assert "KERAS_HOME" in message
    assert not (keras_home / "models" / backbone.WEIGHTS_FILE).exists()


def test_random_weights_need_no_file():
    model = backbone.load_backbone(weights=None)
    assert model.layers[backbone.CUT_INDEX].name == backbone.CUT_LAYER
