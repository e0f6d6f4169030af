"""MobileNetV2 the student's way: ImageNet weights, freezing by layer name, a new head.

Introduced in ``02_backbone_inspection.ipynb`` (loading), ``03_layer_freezing.ipynb`` (freezing and
BatchNorm) and ``04_head_replacement.ipynb`` (the flat classifier graph).

The notebooks do the lesson steps by hand first; these helpers repeat them for later notebooks and
the tests, so every notebook builds exactly the same classifier.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from helpers import config

#: The seed lecture's cut: everything before this layer stays frozen (``layers[113]`` of the base).
CUT_LAYER = "block_12_project"
#: Index of :data:`CUT_LAYER` in ``MobileNetV2(include_top=False)``.
CUT_INDEX = 113
#: The file Keras looks for in ``$KERAS_HOME/models`` for ``include_top=False`` at 224x224.
WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + WEIGHTS_FILE
)
INPUT_SHAPE = (config.IMAGE_SIZE, config.IMAGE_SIZE, 3)


class WeightsError(RuntimeError):
    """The ImageNet weights could not be loaded; the message names the file and the folder."""


def weights_path() -> Path:
    """Return where Keras keeps (or will download) the ImageNet weights file.

    Introduced in ``02_backbone_inspection.ipynb``.
    """
    return config.keras_cache_dir() / WEIGHTS_FILE


def load_backbone(
    weights: str | None = "imagenet", input_tensor=None, image_size: int | None = 224
):
    """Load ``MobileNetV2(include_top=False)`` through the standard Keras cache.

    Introduced in ``02_backbone_inspection.ipynb``.

    Args:
        weights: ``"imagenet"`` for the pretrained weights, ``None`` for random initialisation.
        input_tensor: Optional Keras tensor to build the network on (keeps the graph flat).
        image_size: Side length of the input (``None``: any size). The ImageNet file is the
            224x224 one either way: a convolutional network's weights do not depend on the size.

    Returns:
        The backbone as a ``keras.Model`` (no pooling, output ``out_relu``, 7x7x1280 at 224 px).

    Raises:
        WeightsError: The weights are neither in the cache nor downloadable (for example offline).
    """
    import warnings

    import keras

    shape = (image_size, image_size, 3)
    try:
        with warnings.catch_warnings():  # any size: "input_shape is undefined ... 224 loaded"
            warnings.simplefilter("ignore", UserWarning)
            return keras.applications.MobileNetV2(
                input_shape=shape, input_tensor=input_tensor, include_top=False, weights=weights
            )
    except Exception as exc:
        if weights != "imagenet":
            raise
        target = weights_path()
        raise WeightsError(
            f"Nem sikerült betölteni a MobileNetV2 ImageNet-súlyait (ok: {exc}).\n"
            f"A Keras ezt a fájlt keresi: {target}\n"
            "Mit tehetsz: (1) futtasd internetkapcsolattal, ekkor a Keras letölti innen: "
            f"{WEIGHTS_URL}; vagy (2) töltsd le máshol, és másold a fájlt pontosan ezen a néven "
            f"a {target.parent} mappába; vagy (3) állítsd a KERAS_HOME környezeti változót egy "
            "írható mappára, amelynek models/ almappájában ott a fájl (a keras importálása előtt)."
        ) from None


def _flat_mobilenet(weights: str | None, image_size: int | None):
    """``image`` (raw RGB 0..255) -> ``Rescaling`` "preprocess" -> every MobileNetV2 layer."""
    import keras

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    base = load_backbone(weights, input_tensor=x, image_size=image_size)
    return inputs, base.output


def build_features(weights: str | None = "imagenet", image_size: int | None = None):
    """MobileNetV2 without a head as one flat graph on raw RGB 0..255 input, ``image -> out_relu``.

    Introduced in ``06_what_the_network_sees.ipynb``. The same layers and layer names as
    :func:`build_classifier` (input ``"image"``, ``Rescaling`` ``"preprocess"``, then every
    MobileNetV2 layer); with ``image_size=None`` the input takes any size, so feature
    visualisation can run on small 64-128 px images, which is much faster on a CPU.

    Args:
        weights: ``"imagenet"`` or ``None``.
        image_size: Side length of the input, or ``None`` for any size.

    Raises:
        WeightsError: The weights file is neither cached nor downloadable.
    """
    import keras

    inputs, outputs = _flat_mobilenet(weights, image_size)
    return keras.Model(inputs, outputs, name="mobilenetv2_features")


def layer_index(model, name: str) -> int:
    """Return the index of the layer called ``name`` in ``model.layers``.

    Introduced in ``02_backbone_inspection.ipynb``.

    Raises:
        ValueError: No such layer; the message suggests the closest names.
    """
    names = [layer.name for layer in model.layers]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        raise ValueError(
            f"Nincs {name!r} nevű réteg a(z) {model.name!r} modellben. "
            f"Hasonló nevek: {close or names[:5]}. A nevek listája: [l.name for l in model.layers]."
        )
    return names.index(name)


def freeze_up_to(model, layer_name: str = CUT_LAYER, *, freeze_batchnorm: bool = True) -> int:
    """Freeze every layer before ``layer_name``; make it and the later layers trainable.

    Introduced in ``03_layer_freezing.ipynb``. BatchNormalization layers stay frozen everywhere when
    ``freeze_batchnorm`` is true: in Keras 3 a BN layer with ``trainable=False`` runs in inference
    mode, so its moving statistics do not move during ``fit``.

    Args:
        model: A flat functional model (backbone or full classifier).
        layer_name: The first layer that learns.
        freeze_batchnorm: Keep BatchNormalization layers frozen after the cut too.

    Returns:
        The index of ``layer_name`` in ``model.layers``.
    """
    import keras

    cut = layer_index(model, layer_name)
    for i, layer in enumerate(model.layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= cut and not (freeze_batchnorm and is_bn)
    return cut


def build_classifier(
    weights: str | None = "imagenet", cut: str | None = CUT_LAYER, name: str = "cats_vs_dogs"
):
    """Build the series' classifier as one **flat** functional graph.

    Introduced in ``04_head_replacement.ipynb``; used from ``05`` on. Input: raw RGB 224x224 images
    with values 0..255. ``Rescaling(1/127.5, offset=-1)`` does exactly what
    ``mobilenet_v2.preprocess_input`` does, but inside the model. Then every MobileNetV2 layer (not
    a nested sub-model, so Grad-CAM and activation models can reach any layer), global average
    pooling and one sigmoid neuron that outputs P(dog).

    Args:
        weights: ``"imagenet"`` or ``None``.
        cut: First trainable layer (see :func:`freeze_up_to`); ``None`` leaves everything trainable.
        name: Model name.
    """
    import keras

    inputs, features = _flat_mobilenet(weights, config.IMAGE_SIZE)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="dog_probability")(x)
    model = keras.Model(inputs, outputs, name=name)
    if cut is not None:
        freeze_up_to(model, cut)
    return model


def count_parameters(model) -> dict[str, int]:
    """Count trainable / frozen layers and parameters.

    Introduced in ``03_layer_freezing.ipynb``. Layers without weights (ReLU, Add, pooling) are not
    counted as either.

    Returns:
        ``trainable_params``, ``non_trainable_params``, ``total_params``, ``trainable_layers``,
        ``frozen_layers``.
    """
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    with_weights = [layer for layer in model.layers if layer.weights]
    return {
        "trainable_params": trainable,
        "non_trainable_params": frozen,
        "total_params": trainable + frozen,
        "trainable_layers": sum(1 for layer in with_weights if layer.trainable_weights),
        "frozen_layers": sum(1 for layer in with_weights if not layer.trainable_weights),
    }


def freeze_table(model, candidates: Sequence[str]) -> dict[str, dict[str, int]]:
    """Layer and parameter counts for every candidate cut layer (see :func:`freeze_up_to`).

    Introduced in ``06_what_the_network_sees.ipynb`` (the freeze explorer). The model's
    ``trainable`` flags are restored afterwards.

    Returns:
        Cut layer name -> :func:`helpers.count_parameters` result.
    """
    saved = [layer.trainable for layer in model.layers]
    try:
        table = {}
        for name in candidates:
            freeze_up_to(model, name)
            table[name] = count_parameters(model)
        return table
    finally:
        for layer, flag in zip(model.layers, saved, strict=True):
            layer.trainable = flag


def freeze_candidates() -> list[str]:
    """The cut layers offered by :func:`freeze_explorer`: ``Conv1``, the 16 ``block_N_project``
    layers, ``Conv_1`` and ``dog_probability`` (head only).

    Introduced in ``06_what_the_network_sees.ipynb``.
    """
    return ["Conv1", *[f"block_{n}_project" for n in range(1, 17)], "Conv_1", "dog_probability"]


def snapshot(model, *, batchnorm_only: bool = False) -> dict[str, np.ndarray]:
    """Copy the model's weights (or only BatchNorm moving statistics) into NumPy arrays.

    Introduced in ``03_layer_freezing.ipynb`` to show the BatchNorm trap: take a snapshot, train,
    and compare with :func:`changed`.
    """
    out = {}
    for w in model.weights:
        if batchnorm_only and not ("moving_mean" in w.path or "moving_variance" in w.path):
            continue
        out[w.path] = np.array(w.numpy(), copy=True)
    return out


def changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> list[str]:
    """Return the names of the weights that are not bit-identical between two snapshots.

    Introduced in ``03_layer_freezing.ipynb``.
    """
    return [k for k in before if not np.array_equal(before[k], after[k])]


def frontier(model, layer_name: str = CUT_LAYER) -> list:
    """Return the tensors of ``model``'s graph that cross the cut before ``layer_name``.

    Introduced in ``07_experiments.ipynb`` (feature caching). These are the outputs of earlier
    layers that ``model.layers[cut:]`` consume: for ``block_12_project`` the depthwise output *and*
    the residual branch from ``block_11_add``.
    """
    cut = layer_index(model, layer_name)
    later = {id(layer) for layer in model.layers[cut:]}
    # Only this model's own nodes: building sub-models adds nodes to the shared layers.
    own_nodes = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
    crossing: list = []
    for layer in model.layers[cut:]:
        for node in layer._inbound_nodes:
            if id(node) not in own_nodes:
                continue
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                if id(producer) not in later and all(tensor is not t for t in crossing):
                    crossing.append(tensor)
    return crossing


def split_at(model, layer_name: str = CUT_LAYER):
    """Split a flat model into a frozen front part and a trainable tail, sharing the layers.

    Introduced in ``07_experiments.ipynb`` (feature caching). The front maps images to the
    tensors that cross the cut (:func:`frontier`); the tail maps those tensors to the model's
    output. ``tail(front(x))`` equals ``model(x)``, and training ``tail`` trains the model's own
    layers.

    Returns:
        ``(front, tail)`` as ``keras.Model`` objects.
    """
    import keras

    crossing = frontier(model, layer_name)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    front = keras.Model(inputs, crossing, name=f"{model.name}_front")
    tail = keras.Model(crossing, model.outputs, name=f"{model.name}_tail")
    return front, tail
