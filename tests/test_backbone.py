"""helpers.backbone with the real ImageNet weights (from the Keras cache that KERAS_HOME names).

The backbone and the classifier are built once per module; tests that change ``trainable`` flags
set them explicitly first, so the order of the tests does not matter. The weights-file tests run
in a subprocess with a temporary ``KERAS_HOME`` (Keras reads it at import), with copies of the
real file: the real cache is never modified.
"""

from __future__ import annotations

import json
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
def base(imagenet_weights):
    return backbone.load_backbone()


@pytest.fixture(scope="module")
def classifier(imagenet_weights):
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


_WEIGHTS_PROBE = textwrap.dedent(
    """
    import json, os, shutil, sys
    from pathlib import Path

    import h5py
    import keras
    import numpy as np

    from helpers import backbone

    real, later_home = Path(sys.argv[1]), sys.argv[2]
    target = backbone.weights_path()
    reference = None
    results = {"target": str(target)}

    def attempt(case):
        try:
            model = backbone.load_backbone()
        except backbone.WeightsError as exc:
            results[case] = {"error": str(exc), "file_kept": target.exists()}
        else:
            kernel = model.get_layer("Conv1").kernel.numpy()
            same = reference is None or np.array_equal(kernel, reference)
            results[case] = {"error": None, "same_weights": bool(same)}
            return kernel

    # Missing and not downloadable, after KERAS_HOME was changed too late.
    backbone.WEIGHTS_URL = "file:///nonexistent/" + backbone.WEIGHTS_FILE
    os.environ["KERAS_HOME"] = later_home
    attempt("missing")
    results["missing"]["downloaded"] = target.exists()

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real, target)
    reference = attempt("known_hash")

    shutil.copyfile(real, target)
    with h5py.File(target, "a") as f:  # same weights, another SHA-256 (like the official file)
        f.attrs["note"] = "re-saved"
    attempt("unknown_hash_same_structure")

    target.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    attempt("truncated")

    target.write_bytes(np.random.default_rng(0).bytes(4096))
    attempt("random_bytes")

    shutil.copyfile(real, target)
    with h5py.File(target, "a") as f:  # a narrower variant's first layer (alpha 0.5)
        del f["Conv1"]["Conv1/kernel"]
        f["Conv1"].create_dataset("Conv1/kernel", data=np.zeros((3, 3, 3, 16), "float32"))
    attempt("wrong_shapes")

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    other.save_weights(target.parent / "other.weights.h5")
    os.replace(target.parent / "other.weights.h5", target)
    attempt("another_models_weights")
    print("PROBE " + json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def weights_probe(imagenet_weights, tmp_path_factory):
    """Load the backbone in a fresh process against good, missing and bad weights files."""
    home = tmp_path_factory.mktemp("keras_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(KERAS_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _WEIGHTS_PROBE, str(imagenet_weights), str(home / "later")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.split("PROBE ", 1)[1])
    assert probe["target"] == str(home / "models" / backbone.WEIGHTS_FILE)
    return probe


def test_missing_weights_error_names_the_file_and_the_folder_keras_uses(weights_probe):
    missing = weights_probe["missing"]
    message = missing["error"]
    assert message is not None and not missing["downloaded"]
    assert weights_probe["target"] in message  # the folder Keras really uses ...
    assert "later" in message and "importálása előtt" in message  # ... and why not KERAS_HOME's
    assert "KERAS_HOME" in message and backbone.WEIGHTS_URL.rsplit("/", 1)[1] in message


@pytest.mark.parametrize("case", ["known_hash", "unknown_hash_same_structure"])
def test_good_weights_files_load(weights_probe, case):
    assert weights_probe[case]["error"] is None
    assert weights_probe[case]["same_weights"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("truncated", "csonka"),
        ("random_bytes", "nem HDF5"),
        ("wrong_shapes", "Conv1"),
        ("another_models_weights", "rétegnévlista"),
    ],
)
def test_a_bad_weights_file_is_reported_with_delete_advice(weights_probe, case, reason):
    outcome = weights_probe[case]
    message = outcome["error"]
    assert message is not None, f"{case} was loaded"
    assert reason in message
    assert f"Töröld ezt a fájlt: {weights_probe['target']}" in message
    assert "sosem tölt le újra" in message
    assert outcome["file_kept"]  # the helper says what to do; it does not delete on its own


def test_a_build_error_is_not_reported_as_missing_weights():
    with pytest.raises(ValueError) as excinfo:
        backbone.load_backbone(input_tensor=np.zeros((1, 224, 224, 3), dtype="float32"))
    assert not isinstance(excinfo.value, backbone.WeightsError)
    assert "súly" not in str(excinfo.value)
    with pytest.raises(ValueError, match="weights"):
        backbone.load_backbone(weights="imagenet21k")


def test_random_weights_need_no_file():
    model = backbone.load_backbone(weights=None)
    assert model.layers[backbone.CUT_INDEX].name == backbone.CUT_LAYER


def test_freeze_up_to_accepts_the_seeds_index(base):
    by_index = backbone.freeze_up_to(base, 113)
    flags_by_index = [layer.trainable for layer in base.layers]
    by_name = backbone.freeze_up_to(base, "block_12_project")
    assert by_index == by_name == 113
    assert flags_by_index == [layer.trainable for layer in base.layers]
    assert backbone.freeze_up_to(base, np.int64(113)) == 113


@pytest.mark.parametrize("layer", [113.0, True, None, ["block_12_project"]])
def test_freeze_up_to_rejects_other_types_clearly(base, layer):
    with pytest.raises(TypeError, match="nevével .* vagy az indexével"):
        backbone.freeze_up_to(base, layer)


@pytest.mark.parametrize("index", [-1, 154, 1000])
def test_freeze_up_to_rejects_an_index_out_of_range(base, index):
    with pytest.raises(ValueError, match="154 rétege"):
        backbone.freeze_up_to(base, index)


def test_frontier_refuses_a_model_whose_layers_were_built_elsewhere(classifier):
    _, tail = backbone.split_at(classifier)
    with pytest.raises(ValueError, match="lapos modellt"):
        backbone.frontier(tail, "block_13_expand")
