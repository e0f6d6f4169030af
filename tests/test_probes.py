"""Tests of the numbers behind notebook 06 (helpers.probes).

They run on the real MobileNetV2 with ImageNet weights (read from ``$KERAS_HOME``; skipped if the
weights are not available, a failure under ``CI=true``) at small image sizes, plus one tiny
hand-made network whose Grad-CAM answer is known exactly.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import backbone, probes


def load_net():
    """The any-size ImageNet backbone; skip without the weights file, fail under ``CI=true``."""
    try:
        return backbone.build_features()
    except backbone.WeightsError as err:  # offline and no cached weights
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, de hiányzik a MobileNetV2 ImageNet-súlyfájlja: {err}")
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def net():
    """The any-size ImageNet backbone (raw 0..255 input)."""
    return load_net()


def _photos(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("ci", ["true", None])
def test_net_fixture_fails_under_ci_and_skips_otherwise(monkeypatch, ci):
    def missing(*args, **kwargs):
        raise backbone.WeightsError("nincs meg a súlyfájl")

    monkeypatch.setattr(backbone, "build_features", missing)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    with pytest.raises(expected, match="nincs meg a súlyfájl"):
        load_net()


def test_any_size_backbone_has_the_classifier_layer_names(net):
    assert len(net.layers) == 155
    assert [layer.name for layer in net.layers[:3]] == ["image", "preprocess", "Conv1"]
    assert net.get_layer("Conv1").kernel.shape == (3, 3, 3, 32)
    assert set(probes.dead_filters(net.get_layer("Conv1").kernel.numpy())) == {
        3, 7, 11, 12, 13, 16, 19, 26, 28
    }  # fmt: skip


def test_activation_model_shapes(net):
    model = probes.activation_model(net, list(probes.PROBE_LAYERS))
    maps = probes.activations(model, _photos(3, 64), batch_size=2)
    assert [m.shape for m in maps] == [
        (3, 32, 32, 96),
        (3, 8, 8, 192),
        (3, 4, 4, 576),
        (3, 2, 2, 1280),
    ]
    assert all(m.min() >= 0 and m.max() <= 6 for m in maps)  # ReLU6 outputs
    before = probes.activation_model(net, "block_6_expand_relu", before_activation=True)
    pre = np.asarray(before(_photos(1, 64)))
    assert pre.shape == (1, 8, 8, 192) and pre.min() < 0  # BatchNorm output, before ReLU6
    with pytest.raises(ValueError, match="block_6_expand_rleu"):
        probes.activation_model(net, "block_6_expand_rleu")
    with pytest.raises(ValueError, match="rétegnevek nem üres listáját"):
        probes.activation_model(net, [])


def test_gradient_ascent_increases_the_target_activation(net):
    feature_model = probes.activation_model(net, "block_6_expand_relu", before_activation=True)
    channels = [3, 50]
    start = np.full((2, 48, 48, 3), 127.5, dtype="float32")
    images = probes.gradient_ascent(feature_model, channels, size=48, steps=8, octaves=2, jitter=2)
    assert images.shape == (2, 48, 48, 3)
    assert images.min() >= 0 and images.max() <= 255
    before = probes.channel_activation(feature_model, start, channels)
    after = probes.channel_activation(feature_model, images, channels)
    assert np.all(after > before + 0.25), (before, after)
    with pytest.raises(ValueError, match="0 és 191 közé"):
        probes.gradient_ascent(feature_model, [192])
    with pytest.raises(ValueError, match="steps"):
        probes.gradient_ascent(feature_model, [1], steps=0)
    with pytest.raises(ValueError, match="2 kép, de 1 csatorna"):
        probes.channel_activation(feature_model, start, [3])


def test_gradient_ascent_traces_its_step_once_for_every_octave():
    """The step is compiled for any image side: three octaves, one trace (not one per size), and
    its border rule is _inner_slice's (an 8-cell map loses one cell on each side)."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, None, 3), name="image")
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs))
    images = probes.gradient_ascent(model, [0, 3], size=40, steps=2, octaves=3, jitter=1)
    assert images.shape == (2, 40, 40, 3)
    assert probes._ascent_step(model, (0, 3), 4.0).experimental_get_tracing_count() == 1

    x = tf.constant(127.5 + np.random.default_rng(0).normal(0.0, 8.0, (1, 8, 8, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        objective = tf.reduce_mean(model(x)[:, 1:7, 1:7, 3])
    grads = tape.gradient(objective, x)
    expected = tf.clip_by_value(x + 4.0 * grads / (tf.math.reduce_std(grads) + 1e-8), 0, 255)
    one = probes.gradient_ascent(model, [3], size=8, steps=1, octaves=1, jitter=0, blur_every=0)
    np.testing.assert_allclose(one, expected.numpy(), atol=1e-4)


def tiny_classifier():
    """32x32 input -> 2-channel conv ("bright spot" and "constant") -> GAP -> Dense(1, sigmoid)."""
    inputs = keras.Input((32, 32, 3), name="image")
    conv = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")
    x = conv(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    head = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")
    model = keras.Model(inputs, head(x))
    kernel = np.zeros((3, 3, 3, 2), dtype="float32")
    kernel[..., 0] = 1.0 / 27.0  # channel 0: local brightness
    conv.set_weights([kernel, np.array([0.0, 1.0], dtype="float32")])  # channel 1: constant 1
    head.set_weights([np.array([[0.02], [0.5]], dtype="float32"), np.array([-1.0], "float32")])
    return model


def test_grad_cam_is_normalised_and_finds_the_bright_square():
    model = tiny_classifier()
    image = np.zeros((1, 32, 32, 3), dtype="float32")
    image[0, 4:12, 20:28] = 255.0  # bright square in the top-right quadrant
    cams, logits = probes.grad_cam(model, image, layer="conv", size=64)
    assert cams.shape == (1, 64, 64) and logits.shape == (1,)
    assert cams.min() >= 0.0 and np.isclose(cams.max(), 1.0)
    row, col = np.unravel_index(np.argmax(cams[0]), cams.shape[1:])
    assert row < 32 and col >= 32, (row, col)
    conv_out = keras.Model(model.inputs[0], model.get_layer("conv").output)(image).numpy()
    expected_logit = 0.02 * conv_out[..., 0].mean() + 0.5 * conv_out[..., 1].mean() - 1.0
    np.testing.assert_allclose(logits[0], expected_logit, rtol=1e-5)
    cat_cams, _ = probes.grad_cam(model, image, layer="conv", sign=-1.0)
    assert cat_cams.shape == (1, 32, 32) and np.all(cat_cams == 0)  # nothing speaks for "cat"


def _reference_grad_cam(model, images, signs, layer="conv"):
    """Grad-CAM as notebook 06 first computed it: the gradient of sum(sign * logit)."""
    head = model.get_layer("dog_probability")
    cam_model = keras.Model(
        model.inputs[0], [model.get_layer(layer).output, model.get_layer("avg_pool").output]
    )
    x = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        conv, pooled = cam_model(x, training=False)
        logits = tf.squeeze(tf.matmul(pooled, head.kernel) + head.bias, axis=-1)
        target = tf.reduce_sum(signs * logits)
    weights = tf.reduce_mean(tape.gradient(target, conv), axis=[1, 2])
    cams = tf.nn.relu(tf.einsum("nhwc,nc->nhw", conv, weights)).numpy()
    peak = cams.reshape(len(cams), -1).max(axis=1)
    return np.where(peak[:, None, None] > 0, cams / np.maximum(peak, 1e-12)[:, None, None], 0.0)


def test_grad_cam_numbers_are_unchanged_and_predicted_uses_the_logit_sign():
    model = tiny_classifier()
    # a random 3x3 kernel instead of the hand-made one: both signs give non-empty maps
    conv = model.get_layer("conv")
    rng = np.random.default_rng(3)
    conv.set_weights([rng.normal(0, 0.2, (3, 3, 3, 2)).astype("float32"), np.zeros(2, "float32")])
    head = model.get_layer("dog_probability")
    head.set_weights([np.array([[0.05], [-0.04]], dtype="float32"), np.array([0.0], "float32")])
    images = _photos(4, 32, seed=5)
    _, logits = probes.grad_cam(model, images, layer="conv")
    head.set_weights([head.get_weights()[0], -np.median(logits, keepdims=True)])  # both classes
    signs = np.array([-1.0, 1.0, -1.0, 1.0], dtype="float32")
    cams, logits = probes.grad_cam(model, images, layer="conv", batch_size=3, sign=signs)
    np.testing.assert_allclose(cams, _reference_grad_cam(model, images, signs), atol=1e-6)
    predicted, same_logits = probes.grad_cam(model, images, layer="conv", sign="predicted")
    np.testing.assert_allclose(same_logits, logits, atol=1e-6)
    assert (logits > 0).sum() == 2  # two "dogs", two "cats"
    by_sign = _reference_grad_cam(model, images, np.where(logits >= 0, 1.0, -1.0))
    np.testing.assert_allclose(predicted, by_sign, atol=1e-6)


def test_grad_cam_runs_one_compiled_graph_per_model_and_layer():
    """The tape runs as a graph (about ten times faster than eagerly), traced once per model and
    layer: later calls, other signs and a smaller last batch reuse it."""
    model = tiny_classifier()
    images = _photos(5, 32, seed=1)
    cams, _ = probes.grad_cam(model, images, layer="conv", batch_size=2)  # batches 2, 2, 1
    step = probes._cam_step(model, "conv", "avg_pool", "dog_probability")
    traced = step.experimental_get_tracing_count()
    assert 1 <= traced <= 2
    again, _ = probes.grad_cam(model, images, layer="conv", batch_size=2, sign=-1.0)
    probes.grad_cam(model, images[:1], layer="conv")
    assert step.experimental_get_tracing_count() == traced
    assert cams.shape == again.shape == (5, 32, 32)


def test_grad_cam_validates_its_arguments():
    model = tiny_classifier()
    photo = np.zeros((32, 32, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"egyetlen kép .*kép\[None\]"):
        probes.grad_cam(model, photo, layer="conv")
    with pytest.raises(ValueError, match="nyers, 0..255"):
        probes.grad_cam(model, photo[None] / 127.5 - 1.0, layer="conv")
    with pytest.raises(ValueError, match="'predicted'"):
        probes.grad_cam(model, photo[None], layer="conv", sign="dog")
    with pytest.raises(ValueError, match="képenként egy szám"):
        probes.grad_cam(model, np.stack([photo] * 3), layer="conv", sign=[1.0, -1.0])
    with pytest.raises(ValueError, match="Nincs 'conv2' nevű réteg"):
        probes.grad_cam(model, photo[None], layer="conv2")
    cams, _ = probes.grad_cam(model, photo[None], layer="conv")  # the one-photo batch works
    assert cams.shape == (1, 32, 32)


def test_grad_cam_on_the_real_backbone_follows_a_pattern(net):
    """A head whose logit is one out_relu channel: the map lights up where that channel fires."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(net.output)
    head = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")
    model = keras.Model(net.inputs[0], head(x))
    image = np.full((1, 128, 128, 3), 127.5, dtype="float32")
    yy, xx = np.mgrid[0:48, 0:48]
    image[0, 72:120, 8:56] = np.where(((yy // 6) + (xx // 6)) % 2 == 0, 255.0, 0.0)[..., None]
    maps = probes.activations(probes.activation_model(net, "out_relu"), image)[0][0]  # (4, 4, 1280)
    contrast = maps[2:, :2].mean(axis=(0, 1)) - maps.mean(axis=(0, 1))  # bottom-left quadrant
    channel = int(np.argmax(contrast))
    kernel = np.zeros((1280, 1), dtype="float32")
    kernel[channel] = 1.0
    head.set_weights([kernel, np.zeros(1, dtype="float32")])
    cams, logits = probes.grad_cam(model, image, size=128)
    assert cams.shape == (1, 128, 128) and cams.min() >= 0 and np.isclose(cams.max(), 1.0)
    np.testing.assert_allclose(logits[0], maps[..., channel].mean(), rtol=1e-4)
    row, col = np.unravel_index(np.argmax(cams[0]), cams.shape[1:])
    assert row >= 64 and col < 64, (row, col)


def test_scan_channels_keeps_maxima_and_positions(net):
    photos = _photos(6, 64)
    labels = np.array([0, 0, 0, 1, 1, 1], dtype="int32")
    dataset = tf.data.Dataset.from_tensor_slices((photos, labels)).batch(4)
    deep = probes.activation_model(net, "block_13_expand_relu")
    scan = probes.scan_channels(deep, dataset)
    maps = np.concatenate([deep.predict_on_batch(photos[:4]), deep.predict_on_batch(photos[4:])])
    assert scan.maxima.shape == (6, 576) and scan.map_size == (4, 4)
    np.testing.assert_allclose(scan.maxima, maps.max(axis=(1, 2)), rtol=1e-5)
    assert scan.top(7, 2) == probes.ChannelScan.from_maps(maps).top(7, 2)
    assert scan.selectivity().shape == (576,)


def test_channel_scan_top_boxes_masks_and_occlusion():
    maps = np.zeros((4, 7, 7, 2), dtype="float32")
    maps[2, 1, 5, 0] = 3.0
    maps[0, 6, 0, 0] = 2.0
    scan = probes.ChannelScan.from_maps(maps)
    assert scan.top(0, k=2) == [(2, 1, 5, 3.0), (0, 6, 0, 2.0)]
    with pytest.raises(ValueError, match="0 és 1 közé"):
        scan.top(2)
    with pytest.raises(ValueError, match="címkék nélkül"):
        scan.selectivity()
    assert probes.receptive_box(1, 5, (7, 7), 224, 64) == (16, 144, 80, 208)
    assert probes.receptive_box(6, 0, (7, 7), 224, 64) == (160, 0, 224, 64)  # kept inside
    cams = np.linspace(0, 1, 2 * 10 * 10).reshape(2, 10, 10)
    masks = probes.top_fraction_mask(cams, 0.2)
    assert masks.shape == cams.shape and masks.sum(axis=(1, 2)).tolist() == [20, 20]
    with pytest.raises(ValueError, match="0 és 1 közötti"):
        probes.top_fraction_mask(cams, 20)
    photos = _photos(2, 10)
    hidden = probes.occlude(photos, masks)
    assert np.all(hidden[masks] == 127.5) and np.array_equal(hidden[~masks], photos[~masks])
    with pytest.raises(ValueError, match="maszkok alakja"):
        probes.occlude(photos, masks[:, :5])


def test_channel_ranking_and_enlarging():
    maps = np.zeros((8, 8, 3), dtype="float32")
    maps[..., 0] = 1.0  # bright but flat
    maps[:4, :, 1] = 2.0  # half bright: the most contrast
    maps[0, 0, 2] = 0.5
    assert probes.most_active_channels(maps, 2).tolist() == [0, 1]
    assert probes.most_active_channels(maps[None], 1, by="contrast").tolist() == [1]
    with pytest.raises(ValueError, match="by='mean'"):
        probes.most_active_channels(maps, 1, by="max")
    with pytest.raises(ValueError, match="pozitív egész"):
        probes.most_active_channels(maps, 0)
    with pytest.raises(ValueError, match="Jellemzőtérképeket várok"):  # the series' term
        probes.most_active_channels(maps[..., 0], 1)
    big = probes.enlarge(maps[None, ..., 1], 32)
    assert big.shape == (1, 32, 32) and big[0, :8].min() == 2.0 and big[0, -8:].max() == 0.0
    assert probes.enlarge(maps[None, ..., 1], (16, 24)).shape == (1, 16, 24)
