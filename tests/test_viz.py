"""Tests of the "what the network sees" helpers of notebook 06 (helpers.viz).

They run on the real MobileNetV2 with ImageNet weights (read from ``$KERAS_HOME``; skipped if the
weights are not available) at small image sizes, plus one tiny hand-made network whose Grad-CAM
answer is known exactly.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import backbone, viz


@pytest.fixture(scope="module")
def net():
    """The any-size ImageNet backbone (raw 0..255 input)."""
    try:
        return backbone.build_features()
    except backbone.WeightsError as err:  # offline and no cached weights
        pytest.skip(str(err))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _photos(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_any_size_backbone_has_the_classifier_layer_names(net):
    assert len(net.layers) == 155
    assert [layer.name for layer in net.layers[:3]] == ["image", "preprocess", "Conv1"]
    assert net.get_layer("Conv1").kernel.shape == (3, 3, 3, 32)
    assert set(viz.dead_filters(net.get_layer("Conv1").kernel.numpy())) == {
        3, 7, 11, 12, 13, 16, 19, 26, 28
    }  # fmt: skip


def test_activation_model_shapes(net):
    model = viz.activation_model(net, list(viz.PROBE_LAYERS))
    maps = viz.activations(model, _photos(3, 64), batch_size=2)
    assert [m.shape for m in maps] == [
        (3, 32, 32, 96),
        (3, 8, 8, 192),
        (3, 4, 4, 576),
        (3, 2, 2, 1280),
    ]
    assert all(m.min() >= 0 and m.max() <= 6 for m in maps)  # ReLU6 outputs
    before = viz.activation_model(net, "block_6_expand_relu", before_activation=True)
    pre = np.asarray(before(_photos(1, 64)))
    assert pre.shape == (1, 8, 8, 192) and pre.min() < 0  # BatchNorm output, before ReLU6
    with pytest.raises(ValueError, match="block_6_expand_rleu"):
        viz.activation_model(net, "block_6_expand_rleu")


def test_gradient_ascent_increases_the_target_activation(net):
    feature_model = viz.activation_model(net, "block_6_expand_relu", before_activation=True)
    channels = [3, 50]
    start = np.full((2, 48, 48, 3), 127.5, dtype="float32")
    images = viz.gradient_ascent(feature_model, channels, size=48, steps=8, octaves=2, jitter=2)
    assert images.shape == (2, 48, 48, 3)
    assert images.min() >= 0 and images.max() <= 255
    before = viz.channel_activation(feature_model, start, channels)
    after = viz.channel_activation(feature_model, images, channels)
    assert np.all(after > before + 0.25), (before, after)
    shown = viz.stretch_contrast(images)
    assert shown.min() >= 0 and shown.max() <= 1
    with pytest.raises(ValueError):
        viz.gradient_ascent(feature_model, [192])


def _tiny_classifier():
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
    model = _tiny_classifier()
    image = np.zeros((1, 32, 32, 3), dtype="float32")
    image[0, 4:12, 20:28] = 255.0  # bright square in the top-right quadrant
    cams, logits = viz.grad_cam(model, image, layer="conv", size=64)
    assert cams.shape == (1, 64, 64) and logits.shape == (1,)
    assert cams.min() >= 0.0 and np.isclose(cams.max(), 1.0)
    row, col = np.unravel_index(np.argmax(cams[0]), cams.shape[1:])
    assert row < 32 and col >= 32, (row, col)
    conv_out = keras.Model(model.inputs[0], model.get_layer("conv").output)(image).numpy()
    expected_logit = 0.02 * conv_out[..., 0].mean() + 0.5 * conv_out[..., 1].mean() - 1.0
    np.testing.assert_allclose(logits[0], expected_logit, rtol=1e-5)
    cat_cams, _ = viz.grad_cam(model, image, layer="conv", sign=-1.0)
    assert cat_cams.shape == (1, 32, 32) and np.all(cat_cams == 0)  # nothing speaks for "cat"


def test_grad_cam_on_the_real_backbone_follows_a_pattern(net):
    """A head whose logit is one out_relu channel: the map lights up where that channel fires."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(net.output)
    head = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")
    model = keras.Model(net.inputs[0], head(x))
    image = np.full((1, 128, 128, 3), 127.5, dtype="float32")
    yy, xx = np.mgrid[0:48, 0:48]
    image[0, 72:120, 8:56] = np.where(((yy // 6) + (xx // 6)) % 2 == 0, 255.0, 0.0)[..., None]
    maps = viz.activations(viz.activation_model(net, "out_relu"), image)[0][0]  # (4, 4, 1280)
    contrast = maps[2:, :2].mean(axis=(0, 1)) - maps.mean(axis=(0, 1))  # bottom-left quadrant
    channel = int(np.argmax(contrast))
    kernel = np.zeros((1280, 1), dtype="float32")
    kernel[channel] = 1.0
    head.set_weights([kernel, np.zeros(1, dtype="float32")])
    cams, logits = viz.grad_cam(model, image, size=128)
    assert cams.shape == (1, 128, 128) and cams.min() >= 0 and np.isclose(cams.max(), 1.0)
    np.testing.assert_allclose(logits[0], maps[..., channel].mean(), rtol=1e-4)
    row, col = np.unravel_index(np.argmax(cams[0]), cams.shape[1:])
    assert row >= 64 and col < 64, (row, col)


def test_scan_channels_keeps_maxima_and_positions(net):
    import tensorflow as tf

    photos = _photos(6, 64)
    labels = np.array([0, 0, 0, 1, 1, 1], dtype="int32")
    dataset = tf.data.Dataset.from_tensor_slices((photos, labels)).batch(4)
    deep = viz.activation_model(net, "block_13_expand_relu")
    scan = viz.scan_channels(deep, dataset)
    maps = np.concatenate([deep.predict_on_batch(photos[:4]), deep.predict_on_batch(photos[4:])])
    assert scan.maxima.shape == (6, 576) and scan.map_size == (4, 4)
    np.testing.assert_allclose(scan.maxima, maps.max(axis=(1, 2)), rtol=1e-5)
    assert scan.top(7, 2) == viz.top_activating(maps, 7, 2)
    assert scan.selectivity().shape == (576,)


def test_top_activating_boxes_masks_and_overlays():
    maps = np.zeros((4, 7, 7, 2), dtype="float32")
    maps[2, 1, 5, 0] = 3.0
    maps[0, 6, 0, 0] = 2.0
    top = viz.top_activating(maps, 0, k=2)
    assert top == [(2, 1, 5, 3.0), (0, 6, 0, 2.0)]
    assert viz.receptive_box(1, 5, (7, 7), 224, 64) == (16, 144, 80, 208)
    assert viz.receptive_box(6, 0, (7, 7), 224, 64) == (160, 0, 224, 64)  # kept inside
    cams = np.linspace(0, 1, 2 * 10 * 10).reshape(2, 10, 10)
    masks = viz.top_fraction_mask(cams, 0.2)
    assert masks.shape == cams.shape and masks.sum(axis=(1, 2)).tolist() == [20, 20]
    photos = _photos(2, 10)
    hidden = viz.occlude(photos, masks)
    assert np.all(hidden[masks] == 127.5) and np.array_equal(hidden[~masks], photos[~masks])
    blended = viz.overlay_heatmap(photos[0], cams[0])
    assert blended.shape == (10, 10, 3) and 0 <= blended.min() and blended.max() <= 1


def test_plots_return_figures(net):
    kernel = net.get_layer("Conv1").kernel.numpy()
    assert viz.plot_first_layer_filters(kernel, title="szűrők").axes
    maps = _photos(1, 8)[0] / 255.0
    assert len(viz.plot_feature_maps(maps, n=3, cols=3).axes) == 3
    assert viz.most_active_channels(maps, 2, by="contrast").shape == (2,)
    vis = {"a": (_photos(2, 16), [0, 1]), "b": (_photos(1, 16), [5])}
    assert len(viz.plot_feature_visualisations(vis).axes) == 4
    acts = np.random.default_rng(0).uniform(0, 1, (3, 4, 4, 2))
    hits = {c: viz.top_activating(acts, c, k=2) for c in (0, 1)}
    photos = _photos(3, 32)
    fig = viz.plot_top_activating(photos, hits, (4, 4), box=16, visualisations=_photos(2, 16))
    assert len(fig.axes) == 12
    cams = np.random.default_rng(1).uniform(0, 1, (2, 32, 32))
    assert len(viz.plot_grad_cam(_photos(2, 32), cams, cams, ["a", "b"]).axes) == 6


def test_widget_builders_return_widgets(net):
    import ipywidgets as widgets

    explorer = viz.channel_explorer(
        net, _photos(2, 64), ["block_1_expand_relu", "out_relu"], show=True
    )
    assert isinstance(explorer, widgets.Widget)
    controls = explorer.children[0].children
    layer, channel = controls[1], controls[2]
    layer.value = "out_relu"  # the channel slider follows the layer's channel count
    assert channel.max == 1279
    cam_explorer = viz.grad_cam_explorer(
        _tiny_classifier(), _photos(2, 32), layers=["conv"], show=False
    )
    assert isinstance(cam_explorer, widgets.Widget)


def test_freeze_table_and_explorer_restore_the_flags():
    model = backbone.build_classifier(weights=None)
    assert viz.activation_model(model, "out_relu").output.shape == (None, 7, 7, 1280)
    before = [layer.trainable for layer in model.layers]
    table = backbone.freeze_table(model, ["block_12_project", "dog_probability"])
    assert table["block_12_project"]["trainable_params"] == 1_719_937
    assert table["dog_probability"]["trainable_params"] == 1281  # 1280 weights + bias
    assert [layer.trainable for layer in model.layers] == before
    explorer = viz.freeze_explorer(model, show=True)
    import ipywidgets as widgets

    assert isinstance(explorer, widgets.Widget)
    assert explorer.children[0].children[0].options == tuple(backbone.freeze_candidates())
    assert [layer.trainable for layer in model.layers] == before
