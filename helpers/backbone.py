"""MobileNetV2 the student's way: ImageNet weights, freezing by layer name, a new head.

Introduced in ``02_backbone_inspection.ipynb`` (loading), ``03_layer_freezing.ipynb`` (freezing and
BatchNorm) and ``04_head_replacement.ipynb`` (the flat classifier graph).

The notebooks do the lesson steps by hand first; these helpers repeat them for later notebooks and
the tests, so every notebook builds exactly the same classifier.
"""

from __future__ import annotations

import difflib
import hashlib
import numbers
from collections.abc import Sequence
from pathlib import Path

import h5py
import keras
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
#: SHA-256 of weights files known to be good. Only the offline copy's is known here (a conversion
#: of the same TF-slim checkpoint as the official file); Keras publishes none for MobileNetV2, so
#: any other file (the official download included) is checked structurally instead.
KNOWN_WEIGHTS_SHA256 = ("71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c",)
INPUT_SHAPE = (config.IMAGE_SIZE, config.IMAGE_SIZE, 3)


class WeightsError(RuntimeError):
    """The ImageNet weights could not be loaded; the message names the file and the folder."""


def weights_path() -> Path:
    """Return where Keras keeps (or will download) the ImageNet weights file.

    Introduced in ``02_backbone_inspection.ipynb``. The folder is the one Keras really uses
    (:func:`helpers.config.keras_cache_dir`), even when ``KERAS_HOME`` was changed after
    ``import keras`` or names a folder that is not writable.
    """
    return config.keras_cache_dir() / WEIGHTS_FILE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _structure_problem(path: Path, model) -> str | None:
    """Why ``path`` is not a MobileNetV2 no-top weights file for ``model``; None if it fits.

    The same order-based matching as Keras' legacy HDF5 loader: the file's layers that hold
    weights, in order, against the model's layers that hold weights, shape by shape.
    """
    if not h5py.is_hdf5(path):
        return "nem HDF5-fájl (például egy félbeszakadt letöltés vagy egy lementett weboldal)"
    try:
        with h5py.File(path, "r") as root:
            group = root
            if "layer_names" not in group.attrs and "model_weights" in group:
                group = group["model_weights"]
            if "layer_names" not in group.attrs:
                return "HDF5-fájl, de nem Keras-súlyfájl (nincs benne rétegnévlista)"
            saved = []
            for name in (_text(n) for n in group.attrs["layer_names"]):
                weight_names = [_text(w) for w in group[name].attrs.get("weight_names", [])]
                if weight_names:
                    saved.append((name, [tuple(group[name][w].shape) for w in weight_names]))
    except (OSError, KeyError) as exc:
        return f"nem olvasható végig, valószínűleg csonka ({exc})"
    expected = [
        (layer.name, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
        if layer.weights
    ]
    if len(saved) != len(expected):
        return (
            f"{len(saved)} súlyos réteg van benne, a MobileNetV2-nek (alpha=1.0, tető nélkül) "
            f"{len(expected)} kell: más háló vagy más változat (például tetővel) fájlja"
        )
    for (saved_name, saved_shapes), (name, shapes) in zip(saved, expected, strict=True):
        if saved_shapes != shapes:
            return (
                f"a(z) {name} réteg súlyainak alakja {shapes} kellene legyen, a fájlban "
                f"({saved_name}) {saved_shapes}: más szélességű (alpha) változat vagy más háló"
            )
    return None


def _bad_weights_file(path: Path, reason: str) -> WeightsError:
    return WeightsError(
        f"A MobileNetV2 súlyfájlja megvan, de nem használható: {path}\n"
        f"Ok: {reason}.\n"
        "A Keras egy már meglévő fájlt sosem tölt le újra (a tartalmát sem ellenőrzi), ezért ez "
        f"a hiba magától nem múlik el. Töröld ezt a fájlt: {path}\n"
        "Utána futtasd újra a cellát internetkapcsolattal (a Keras letölti a helyeset innen: "
        f"{WEIGHTS_URL}), vagy másold a helyére a jó fájlt pontosan ezen a néven."
    )


def _missing_weights(target: Path, exc: Exception) -> WeightsError:
    note = config.keras_cache_note()
    return WeightsError(
        f"Nem sikerült letölteni a MobileNetV2 ImageNet-súlyait (ok: {exc}).\n"
        f"A Keras ezt a fájlt keresi: {target}\n"
        + (f"Figyelem: {note}\n" if note else "")
        + "Mit tehetsz: (1) futtasd internetkapcsolattal, ekkor a Keras letölti innen: "
        f"{WEIGHTS_URL}; vagy (2) töltsd le máshol, és másold a fájlt pontosan ezen a néven "
        f"a(z) {target.parent} mappába; vagy (3) állítsd a KERAS_HOME környezeti változót egy "
        "írható mappára, amelynek models/ almappájában ott a fájl (a keras importálása előtt)."
    )


def _load_imagenet_weights(model) -> None:
    """Fetch the no-top weights file the way Keras does, check it, and load it into ``model``."""
    path = weights_path()
    if not path.is_file():
        try:
            path = Path(keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models"))
        except Exception as exc:  # any download failure: offline, proxy, HTTP error ...
            raise _missing_weights(weights_path(), exc) from None
    if _sha256(path) not in KNOWN_WEIGHTS_SHA256:
        problem = _structure_problem(path, model)
        if problem:
            raise _bad_weights_file(path, problem)
    try:
        model.load_weights(path)
    except Exception as exc:  # the file passed the checks above but still does not load
        raise _bad_weights_file(
            path, f"a betöltés nem sikerült ({type(exc).__name__}: {exc})"
        ) from None


def load_backbone(
    weights: str | None = "imagenet", input_tensor=None, image_size: int | None = 224
):
    """Load ``MobileNetV2(include_top=False)`` with the ImageNet weights from the Keras cache.

    Introduced in ``02_backbone_inspection.ipynb``. The same as
    ``keras.applications.MobileNetV2(include_top=False, weights="imagenet")``, in two steps so
    that an error says what went wrong: the architecture is built first (an error there is a
    programming error and surfaces as it is); then the weights file is fetched the way Keras
    fetches it (``keras.utils.get_file`` into ``<Keras home>/models``), checked (its SHA-256
    against :data:`KNOWN_WEIGHTS_SHA256`, else its structure layer by layer) and loaded.

    Args:
        weights: ``"imagenet"`` for the pretrained weights, ``None`` for random initialisation.
        input_tensor: Optional Keras tensor to build the network on (keeps the graph flat).
        image_size: Side length of the input (``None``: any size). The weights are always the
            224x224 file: a convolutional network's weights do not depend on the input size.

    Returns:
        The backbone as a ``keras.Model`` (no pooling, output ``out_relu``, 7x7x1280 at 224 px).

    Raises:
        WeightsError: The weights file is missing and cannot be downloaded, or it is there but
            broken or the wrong file (the message says to delete it and where it is).
        ValueError: ``weights`` or ``image_size`` is not one of the accepted values.
    """
    if weights not in ("imagenet", None):
        raise ValueError(
            f"A weights értéke 'imagenet' (előtanított súlyok) vagy None (véletlen súlyok) "
            f"lehet, nem {weights!r}."
        )
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32
    ):
        raise ValueError(
            f"Az image_size legalább 32 pixeles egész szám (vagy None: bármekkora kép), "
            f"nem {image_size!r}."
        )
    model = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        input_tensor=input_tensor,
        include_top=False,
        weights=None,
    )
    if weights == "imagenet":
        _load_imagenet_weights(model)
    return model


def _flat_mobilenet(weights: str | None, image_size: int | None):
    """``image`` (raw RGB 0..255) -> ``Rescaling`` "preprocess" -> every MobileNetV2 layer."""
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
    inputs, outputs = _flat_mobilenet(weights, image_size)
    return keras.Model(inputs, outputs, name="mobilenetv2_features")


def _require_model(model, function: str) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"A {function}() első argumentuma egy Keras-modell (például "
            f"backbone.build_classifier()), nem {type(model).__name__}."
        )


def layer_index(model, name: str) -> int:
    """Return the index of the layer called ``name`` in ``model.layers``.

    Introduced in ``02_backbone_inspection.ipynb``.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: No such layer; the message suggests the closest names.
    """
    _require_model(model, "layer_index")
    if not isinstance(name, str):
        raise TypeError(
            f"A réteget a nevével add meg (például 'block_12_project'), nem "
            f"{type(name).__name__} típusú értékkel: {name!r}."
        )
    names = [layer.name for layer in model.layers]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        raise ValueError(
            f"Nincs {name!r} nevű réteg a(z) {model.name!r} modellben. "
            f"Hasonló nevek: {close or names[:5]}. A nevek listája: [l.name for l in model.layers]."
        )
    return names.index(name)


def freeze_up_to(model, layer: str | int = CUT_LAYER, *, freeze_batchnorm: bool = True) -> int:
    """Freeze every layer before ``layer``; make it and the later layers trainable.

    Introduced in ``03_layer_freezing.ipynb``. BatchNormalization layers stay frozen everywhere when
    ``freeze_batchnorm`` is true: in Keras 3 a BN layer with ``trainable=False`` runs in inference
    mode, so its moving statistics do not move during ``fit``.

    Args:
        model: A flat functional model (backbone or full classifier).
        layer: The first layer that learns: its name (``"block_12_project"``, the series' way) or
            its index in ``model.layers`` (``113``, the seed lecture's way — an index silently
            points at another layer when the model gets a new input layer, a name does not).
        freeze_batchnorm: Keep BatchNormalization layers frozen after the cut too.

    Returns:
        The index of the first layer that learns.

    Raises:
        TypeError: ``layer`` is neither a name nor an integer index.
        ValueError: No such layer name, or the index is out of range.
    """
    _require_model(model, "freeze_up_to")
    if isinstance(layer, str):
        cut = layer_index(model, layer)
    elif isinstance(layer, numbers.Integral) and not isinstance(layer, bool):
        cut = int(layer)
        if not 0 <= cut < len(model.layers):
            raise ValueError(
                f"A(z) {cut} rétegindex kívül esik: a(z) {model.name!r} modellnek "
                f"{len(model.layers)} rétege van (indexek: 0 … {len(model.layers) - 1})."
            )
    else:
        raise TypeError(
            "A vágási réteget a nevével (például 'block_12_project') vagy az indexével (például "
            f"113, ahogy az eredeti jegyzet) add meg, nem {type(layer).__name__} típusú "
            f"értékkel: {layer!r}."
        )
    for i, each in enumerate(model.layers):
        is_bn = isinstance(each, keras.layers.BatchNormalization)
        each.trainable = i >= cut and not (freeze_batchnorm and is_bn)
    return cut


def build_classifier(
    weights: str | None = "imagenet", cut: str | int | None = CUT_LAYER, name: str = "cats_vs_dogs"
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

    Only public Keras API: ``layer.input`` and ``layer.output`` are the tensors of a layer's first
    call, which in a flat model built in one go (:func:`build_classifier`) is the model's own graph.

    Raises:
        ValueError: ``model`` is not such a flat model (its layers were first called elsewhere).
    """
    cut = layer_index(model, layer_name)
    producer: dict[int, int] = {}
    for i, layer in enumerate(model.layers):
        for tensor in keras.tree.flatten(layer.output):
            producer[id(tensor)] = i
    consumed = [keras.tree.flatten(layer.input) for layer in model.layers[cut:]]
    own_graph = all(id(t) in producer for t in model.outputs) and all(
        id(t) in producer for tensors in consumed for t in tensors
    )
    if not own_graph:
        raise ValueError(
            f"A(z) {model.name!r} modell rétegeit először egy másik gráfban hívták meg, így a "
            "vágás nem számolható ki. Használj egyben épített, lapos modellt, például "
            "backbone.build_classifier()."
        )
    crossing: list = []
    for tensors in consumed:
        for tensor in tensors:
            if producer[id(tensor)] < cut and all(tensor is not t for t in crossing):
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
    crossing = frontier(model, layer_name)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    front = keras.Model(inputs, crossing, name=f"{model.name}_front")
    tail = keras.Model(crossing, model.outputs, name=f"{model.name}_tail")
    return front, tail
