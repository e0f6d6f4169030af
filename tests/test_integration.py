"""The real thing, briefly: ImageNet weights, the real photos, a few fine-tuning steps.

Needs the photos in ``TL_DATA_DIR`` and the weights in the Keras cache (``KERAS_HOME``), through
the root conftest's ``real_photos`` and ``imagenet_weights`` fixtures: without them a developer
gets a skip with the reason (the alternative would be a 68 MB download inside a test), CI
(``CI=true``) gets a failure.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import backbone, config, data, training

pytestmark = pytest.mark.usefixtures("real_photos", "imagenet_weights")

MAX_PER_CLASS = 16


def _is_bn(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


@pytest.fixture(scope="module")
def datasets():
    return data.make_datasets(
        max_per_class=MAX_PER_CLASS, batch_size=8, augment=data.augmentation(), verbose=False
    )


@pytest.fixture(scope="module")
def fine_tuned(datasets):
    """Build, freeze at block_12_project, snapshot, fit one epoch with Adam(1e-4)."""
    config.seed_everything()
    model = backbone.build_classifier(cut=None)
    cut = backbone.freeze_up_to(model, backbone.CUT_LAYER)
    before = backbone.snapshot(model)
    before_stats = backbone.snapshot(model, batchnorm_only=True)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(datasets.train, epochs=1, verbose=0, shuffle=False)  # ds.train shuffles
    return {
        "model": model,
        "cut": cut,
        "before": before,
        "before_stats": before_stats,
        "after": backbone.snapshot(model),
        "history": history.history,
    }


def test_real_weights_real_photos_data_set(datasets):
    assert datasets.class_names == ["cats", "dogs"]
    for name in ("train", "validation", "test"):
        counts = np.bincount(datasets.files[name].labels, minlength=2)
        assert counts.tolist() == [MAX_PER_CLASS, MAX_PER_CLASS], name
    images, labels = next(iter(datasets.train))
    assert tuple(images.shape) == (8, 224, 224, 3)
    assert images.dtype.name == "float32" and labels.dtype.name == "int32"


def test_real_weights_fit_ran_one_epoch(fine_tuned):
    history = fine_tuned["history"]
    assert len(history["loss"]) == 1
    assert np.isfinite(history["loss"][0])


def test_real_weights_layers_before_the_cut_are_bit_identical(fine_tuned):
    model, cut = fine_tuned["model"], fine_tuned["cut"]
    before, after = fine_tuned["before"], fine_tuned["after"]
    assert model.layers[cut].name == "block_12_project"
    frozen_weights = [w.path for layer in model.layers[:cut] for w in layer.weights]
    assert len(frozen_weights) == 190  # the whole front of MobileNetV2, BN statistics included
    for path in frozen_weights:
        assert np.array_equal(before[path], after[path]), path


def test_real_weights_batchnorm_statistics_never_move(fine_tuned):
    model = fine_tuned["model"]
    stats = fine_tuned["before_stats"]
    bn_layers = [layer for layer in model.layers if _is_bn(layer)]
    assert len(bn_layers) == 52
    assert any(model.layers.index(layer) > fine_tuned["cut"] for layer in bn_layers)
    for layer in bn_layers:
        assert not layer.trainable, layer.name
        for variable in (layer.moving_mean, layer.moving_variance):
            assert variable.path in stats
            assert np.array_equal(stats[variable.path], variable.numpy()), variable.path


def test_real_weights_exactly_the_trainable_weights_changed(fine_tuned):
    model = fine_tuned["model"]
    trainable = {w.path for w in model.trainable_weights}
    assert len(trainable) == 16  # 14 conv kernels after the cut + the Dense kernel and bias
    changed = set(backbone.changed(fine_tuned["before"], fine_tuned["after"]))
    assert changed == trainable


def test_real_weights_predictions_are_probabilities(fine_tuned, datasets):
    model = fine_tuned["model"]
    predictions = model.predict(datasets.validation, verbose=0)
    assert predictions.shape == (len(datasets.files["validation"]), 1)
    assert np.all(np.isfinite(predictions))
    assert predictions.min() >= 0.0 and predictions.max() <= 1.0


def test_real_weights_quick_classifier_keeps_the_imagenet_front(fine_tuned, datasets):
    model = training.quick_classifier(datasets, epochs=1)
    cut = backbone.layer_index(model, backbone.CUT_LAYER)
    imagenet = fine_tuned["before"]
    for layer in model.layers[:cut]:
        for w in layer.weights:
            assert np.array_equal(imagenet[w.path], w.numpy()), w.path
    trained = [
        w for w in model.trainable_weights if not np.array_equal(imagenet[w.path], w.numpy())
    ]
    assert len(trained) == len(model.trainable_weights) == 16
    result = training.evaluate(model, datasets.test.take(1))  # one batch is enough here
    np.testing.assert_array_equal(result.labels, datasets.files["test"].labels[:8])
    assert result.probabilities.shape == (8,)
    assert result.probabilities.min() >= 0.0 and result.probabilities.max() <= 1.0
