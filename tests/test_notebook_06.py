"""Notebook 06 writes Grad-CAM and one gradient-ascent step out in cells; the galleries, the
explorers and the photo upload use :mod:`helpers.probes`. These tests execute the notebook's own
cells (found by their tags) on small models and check that they compute exactly what the helpers
compute, so the code the lecture shows and the code behind its pictures cannot drift apart.

The tiny models have hand-set or random weights; the series' architecture runs with the ImageNet
weights (a random MobileNetV2's deep activations are about 1e-11, too small to compare maps), so
those tests skip without the weights file and fail under ``CI=true``. No photo is needed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
import tensorflow as tf
from IPython.core.inputtransformer2 import TransformerManager

from helpers import backbone, probes

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_what_the_network_sees.ipynb"


def _notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def tagged_source(tag: str) -> str:
    """The source of the one code cell tagged ``tag``."""
    found = [
        cell.source
        for cell in _notebook().cells
        if cell.cell_type == "code" and tag in cell.metadata.get("tags", [])
    ]
    assert len(found) == 1, f"exactly one code cell must carry the tag {tag!r}, found {len(found)}"
    return found[0]


def run_cell(tag: str) -> dict:
    """Execute a tagged cell with the names the notebook's setup cell imports."""
    namespace = {"keras": keras, "np": np, "tf": tf}
    exec(compile(tagged_source(tag), f"<notebook 06, cell {tag!r}>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def grad_cam_map():
    return run_cell("inline-grad-cam")["grad_cam_map"]


@pytest.fixture(scope="module")
def ascent_step():
    return run_cell("inline-gradient-ascent")["ascent_step"]


def _photos(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def tiny_classifier():
    """32x32 input -> conv (4 channels, random) -> avg_pool -> dog_probability, both signs."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    head = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")
    model = keras.Model(inputs, head(x))
    head.set_weights([np.array([[0.8], [-0.6], [0.5], [-0.7]], "float32"), np.zeros(1, "float32")])
    return model


def test_the_inline_cells_are_short_functions_of_the_lecture():
    for tag, name in (
        ("inline-grad-cam", "grad_cam_map"),
        ("inline-gradient-ascent", "ascent_step"),
    ):
        source = tagged_source(tag)
        assert len(source.splitlines()) <= 25, tag
        functions = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
        assert functions == [name], (tag, functions)
        assert "probes" not in source, (
            f"the {tag} cell must not call the helper it is checked against"
        )
        assert "GradientTape" in source


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["dog", "cat"])
def test_inline_grad_cam_equals_the_helper_on_a_tiny_classifier(grad_cam_map, sign):
    model = tiny_classifier()
    nonempty = 0
    for photo in _photos(4, 32, seed=1):
        cam, logit = grad_cam_map(model, photo, sign=sign, layer_name="conv")
        maps, logits = probes.grad_cam(model, photo[None], layer="conv", sign=sign, size=32)
        assert cam.shape == (32, 32)
        np.testing.assert_allclose(cam, maps[0], atol=1e-5)
        np.testing.assert_allclose(logit, logits[0], rtol=1e-5, atol=1e-6)
        nonempty += bool(cam.max() > 0)
    assert nonempty >= 2, "the example must produce real maps, not only empty ones"


def test_inline_grad_cam_equals_the_helper_on_the_series_classifier(grad_cam_map, imagenet_weights):
    """The notebook's defaults (out_relu, avg_pool, dog_probability) on the real architecture
    (ImageNet backbone, a new random head)."""
    keras.utils.set_random_seed(0)
    model = backbone.build_classifier()
    photo = _photos(1, 224, seed=2)[0]
    for sign in (1.0, -1.0):
        cam, logit = grad_cam_map(model, photo, sign=sign)
        maps, logits = probes.grad_cam(model, photo[None], sign=sign, size=7)
        assert cam.shape == (7, 7)
        assert cam.max() == 1.0, "both signs have evidence on a random photo"
        np.testing.assert_allclose(cam, maps[0], atol=1e-4)
        np.testing.assert_allclose(logit, logits[0], rtol=1e-4, atol=1e-5)
    p_dog = float(model.predict(photo[None], verbose=0)[0, 0])
    np.testing.assert_allclose(1 / (1 + np.exp(-logit)), p_dog, atol=1e-5)


@pytest.fixture(scope="module")
def block6(imagenet_weights):
    """The any-size ImageNet backbone's block_6 expansion before ReLU6."""
    net = backbone.build_features()
    return probes.activation_model(net, "block_6_expand_relu", before_activation=True)


def _start(size: int) -> tf.Tensor:
    """The notebook's start image: grey plus noise, as probes.gradient_ascent(seed=0) draws it."""
    noise = np.random.default_rng(0).normal(0.0, 8.0, (1, size, size, 3))
    return tf.constant(127.5 + noise, tf.float32)


@pytest.mark.parametrize("steps", [1, 3])
def test_inline_ascent_steps_equal_the_helper_without_regularisers(ascent_step, block6, steps):
    # 96 px -> a 12x12 map: the helper leaves out 2 border cells, like the notebook's 2:-2
    size, channel = 96, 7
    image = _start(size)
    values = []
    for _ in range(steps):
        image, value = ascent_step(image, block6, channel)
        values.append(float(value))
    helper = probes.gradient_ascent(
        block6, [channel], size=size, steps=steps, octaves=1, jitter=0, blur_every=0, seed=0
    )
    assert image.shape == helper.shape == (1, size, size, 3)
    np.testing.assert_allclose(image.numpy(), helper, atol=1e-3 * steps)
    # the value it reports is the helper's objective, measured before the step
    first = probes.channel_activation(block6, _start(size).numpy(), [channel])[0]
    np.testing.assert_allclose(values[0], first, rtol=1e-4, atol=1e-4)
    assert probes.channel_activation(block6, image.numpy(), [channel])[0] > first


def test_the_notebook_keeps_its_checks_out_of_the_teaching_cells():
    """Asserts only in "check" cells (first line "# Ellenőrzés: ...") and exercise self-checks;
    code cells at most 25 lines, markdown cells at most 20."""
    for index, cell in enumerate(_notebook().cells):
        lines = cell.source.splitlines()
        limit = 25 if cell.cell_type == "code" else 20
        assert len(lines) <= limit, f"cell {index}: {len(lines)} lines (at most {limit})"
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        tree = ast.parse(TransformerManager().transform_cell(cell.source))  # magics, !commands
        asserts = any(isinstance(node, ast.Assert) for node in ast.walk(tree))
        testing = "np.testing.assert" in cell.source
        if "check" in tags:
            assert lines[0].startswith("# Ellenőrzés: "), f"cell {index}: {lines[0]!r}"
            assert "print(" in lines[-1] or "print(" in lines[-2], f"cell {index}: no verdict"
        elif "self-check" not in tags:
            assert not (asserts or testing), f"cell {index} asserts but is not tagged 'check'"
