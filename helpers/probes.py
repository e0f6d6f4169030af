"""Numbers about what the network sees: activations, feature visualisation, top photos, Grad-CAM.

Introduced in ``06_what_the_network_sees.ipynb``: activation models and dead filters (section 2-3),
feature visualisation by gradient ascent (section 4), the channel scan over a data set and the
receptive box of a map cell (section 5), Grad-CAM and the occlusion check (section 6). The
pictures of these numbers are in :mod:`helpers.viz`, the interactive explorers in
:mod:`helpers.widgets`.

Every function works on a flat functional model on raw RGB 0..255 input (the classifier of
:func:`helpers.backbone.build_classifier` or the backbone of
:func:`helpers.backbone.build_features`), so any layer can be reached by its name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from helpers import backbone

#: Layers notebook 06 looks into, shallow to deep (112, 28, 14 and 7 cells wide at 224x224 input).
PROBE_LAYERS = ("block_1_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu")


def _model_input(model):
    """The model's input tensor (a single tensor, not a one-element list, to keep Keras quiet)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"A(z) {name} pozitív egész szám legyen, nem {value!r}.")
    return int(value)


def photo_batch(images, name: str = "images") -> np.ndarray:
    """Check a batch of raw RGB photos ``(n, h, w, 3)`` with values 0..255; return it as float32.

    Introduced in ``06_what_the_network_sees.ipynb`` (every probe on photos starts with it).

    Raises:
        ValueError: One unbatched photo, a wrong shape, NaN values or negative (already
            preprocessed) values; the message says what to do.
    """
    array = np.asarray(images, dtype="float32")
    if array.ndim == 3 and array.shape[-1] == 3:
        raise ValueError(
            f"A(z) {name} egyetlen kép {array.shape} alakban, de képköteget várok "
            "(darab, magasság, szélesség, 3). Egy képből így lesz egyelemű köteg: kép[None] "
            "vagy np.expand_dims(kép, 0)."
        )
    if array.ndim != 4 or array.shape[-1] != 3 or len(array) == 0:
        raise ValueError(
            f"A(z) {name} (darab, magasság, szélesség, 3) alakú, nem üres RGB-képköteg legyen, "
            f"nem {array.shape}."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"A(z) {name} képeiben NaN vagy végtelen érték van.")
    if array.min() < 0:
        raise ValueError(
            f"A(z) {name} képeiben negatív pixelérték is van ({array.min():.2f}): nyers, 0..255 "
            "közötti képet várok. A modell maga végzi az előfeldolgozást (a 'preprocess' réteg), "
            "ne add át neki a már átskálázott (-1..1) képet."
        )
    return array


def activation_model(model, layer_names, *, before_activation: bool = False):
    """A model that maps the input of ``model`` to the outputs of the named layers.

    Introduced in ``06_what_the_network_sees.ipynb``. Keras keeps only the layers the outputs
    depend on, so a model that stops at a shallow layer is fast.

    Args:
        model: A flat functional Keras model.
        layer_names: One layer name (the model then has one output) or a list of names.
        before_activation: Return the *input* of each named layer instead of its output. For a
            ``*_relu`` layer that is the BatchNorm output before ReLU6: the quantity gradient
            ascent should push up, because ReLU6 has zero gradient below 0 and above 6.

    Returns:
        A ``keras.Model`` sharing the layers (and weights) of ``model``.

    Raises:
        ValueError: No layer names, or a name the model does not have (with the closest names).
    """
    single = isinstance(layer_names, str)
    names = [layer_names] if single else list(layer_names)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(
            f"Egy rétegnevet vagy rétegnevek nem üres listáját várom, nem {layer_names!r}."
        )
    layers = [model.layers[backbone.layer_index(model, name)] for name in names]
    outputs = [layer.input if before_activation else layer.output for layer in layers]
    return keras.Model(
        _model_input(model), outputs[0] if single else outputs, name=f"{model.name}_activations"
    )


def activations(model, images, *, batch_size: int = 16) -> list[np.ndarray]:
    """Run an activation model over images in batches and return NumPy arrays, one per output.

    Introduced in ``06_what_the_network_sees.ipynb``.

    Args:
        model: A model from :func:`activation_model` (or any model on raw 0..255 images).
        images: ``(n, h, w, 3)`` raw RGB images, 0..255.
        batch_size: Images per forward pass (bounds the memory).
    """
    images = photo_batch(images)
    batch_size = _positive_int(batch_size, "batch_size")
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        # predict_on_batch runs a compiled graph: about half the memory of an eager call
        out = model.predict_on_batch(images[start : start + batch_size])
        out = out if isinstance(out, (list, tuple)) else [out]
        chunks.append([np.asarray(o) for o in out])
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def dead_filters(kernel: np.ndarray, *, tolerance: float = 0.01) -> np.ndarray:
    """Indices of the filters whose largest weight is below ``tolerance`` x the layer's largest.

    Introduced in ``06_what_the_network_sees.ipynb``: 9 of MobileNetV2's 32 ``Conv1`` filters are
    (nearly) zero, so their channel is a constant after BatchNorm.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim < 2:
        raise ValueError(f"Egy konvolúciós kernelt várok (…, szűrők), nem {kernel.shape} alakút.")
    peak = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    return np.flatnonzero(peak < tolerance * peak.max())


def most_active_channels(maps: np.ndarray, k: int, *, by: str = "mean") -> np.ndarray:
    """Indices of the ``k`` channels that respond most strongly, strongest first.

    Introduced in ``06_what_the_network_sees.ipynb``.

    Args:
        maps: Activations ``(h, w, c)`` of one photo or ``(n, h, w, c)`` of several.
        k: Number of channels.
        by: ``"mean"``: highest mean activation; ``"contrast"``: highest spatial standard deviation
            (averaged over the photos) – channels that respond to *where* something is (edges,
            parts) rather than to the overall colour or brightness.
    """
    maps = np.asarray(maps, dtype="float32")
    k = _positive_int(k, "k")
    if maps.ndim == 3:
        maps = maps[None]
    if maps.ndim != 4:
        raise ValueError(
            f"Jellemzőtérképeket várok: (h, w, csatornák) vagy (n, h, w, csatornák), "
            f"nem {maps.shape}."
        )
    if by == "mean":
        score = maps.mean(axis=(0, 1, 2))
    elif by == "contrast":
        score = maps.std(axis=(1, 2)).mean(axis=0)
    else:
        raise ValueError(f"by='mean' vagy by='contrast' lehet, nem {by!r}")
    return np.argsort(-score, kind="stable")[:k]


def enlarge(maps, size: int | Sequence[int]) -> np.ndarray:
    """Enlarge maps ``(n, h, w)`` to ``(n, size, size)`` (or ``size=(height, width)``), bilinearly.

    Introduced in ``06_what_the_network_sees.ipynb``: a 7x7 map laid over a 224x224 photo.
    """
    maps = np.asarray(maps, dtype="float32")
    if maps.ndim != 3:
        raise ValueError(f"Térképek kötegét várom (n, h, w), nem {maps.shape} alakút.")
    target = [int(size), int(size)] if np.ndim(size) == 0 else [int(s) for s in size]
    return tf.image.resize(maps[..., None], target, method="bilinear").numpy()[..., 0]


# -- feature visualisation by gradient ascent -------------------------------------------------


def _inner_slice(length: int) -> slice:
    """Leave out the border cells of a feature map (their activations are dominated by padding)."""
    border = min(2, length // 6)
    return slice(border, length - border) if length - 2 * border > 0 else slice(0, length)


def channel_activation(feature_model, images, channels: Sequence[int]) -> np.ndarray:
    """Mean activation of ``channels[i]`` on image ``i``, border cells excluded.

    Introduced in ``06_what_the_network_sees.ipynb``; this is the quantity that
    :func:`gradient_ascent` makes as large as possible.

    Args:
        feature_model: A one-output model (see :func:`activation_model`).
        images: ``(n, h, w, 3)`` raw RGB images, 0..255.
        channels: One channel index per image.
    """
    images = photo_batch(images)
    channels = [int(c) for c in channels]
    if len(channels) != len(images):
        raise ValueError(
            f"Képenként egy csatornát várok: {len(images)} kép, de {len(channels)} csatorna."
        )
    acts = np.asarray(feature_model(images, training=False))
    rows, cols = _inner_slice(acts.shape[1]), _inner_slice(acts.shape[2])
    return np.array([acts[i, rows, cols, c].mean() for i, c in enumerate(channels)])


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(2 * sigma)))
    xs = np.arange(-radius, radius + 1, dtype="float32")
    g = np.exp(-(xs**2) / (2 * sigma**2))
    g /= g.sum()
    k2 = np.outer(g, g)
    return np.repeat(k2[:, :, None, None], 3, axis=2)  # (k, k, 3, 1) for depthwise_conv2d


def _blur(x, kernel: np.ndarray):
    r = kernel.shape[0] // 2
    padded = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, strides=[1, 1, 1, 1], padding="VALID")


@functools.lru_cache(maxsize=4)
def _ascent_step(feature_model, channels: tuple[int, ...], step_size: float):
    """Compiled gradient step of :func:`gradient_ascent`: ``images -> images + step``.

    The image side is left open, so one trace serves every octave (and later calls with the same
    model and channels; the last four are kept). Image ``i`` climbs ``channels[i]``.
    """
    selector = tf.one_hot(list(channels), int(feature_model.output.shape[-1]))

    @tf.function(input_signature=[tf.TensorSpec([len(channels), None, None, 3], tf.float32)])
    def ascent_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            acts = feature_model(x, training=False)
            h, w = tf.shape(acts)[1], tf.shape(acts)[2]
            top, left = tf.minimum(2, h // 6), tf.minimum(2, w // 6)  # as _inner_slice
            per_channel = tf.reduce_mean(acts[:, top : h - top, left : w - left, :], axis=[1, 2])
            objective = tf.reduce_sum(per_channel * selector)
        grads = tape.gradient(objective, x)
        grads /= tf.math.reduce_std(grads, axis=[1, 2, 3], keepdims=True) + 1e-8
        return x + step_size * grads

    return ascent_step


def gradient_ascent(
    feature_model,
    channels: Sequence[int],
    *,
    size: int = 128,
    steps: int = 30,
    octaves: int = 3,
    octave_scale: float = 1.4,
    step_size: float = 4.0,
    jitter: int = 6,
    blur_every: int = 4,
    blur_sigma: float = 0.7,
    seed: int = 0,
) -> np.ndarray:
    """Synthesise one image per channel that makes that channel's mean activation large.

    Introduced in ``06_what_the_network_sees.ipynb``, after the notebook has written one step out
    itself. The core is the gradient ascent of keras.io's "Visualizing what convnets learn"
    (F. Chollet): start from a grey image with a little noise and repeat: compute the channel's
    mean activation (border cells excluded), take its gradient with respect to the *pixels*,
    normalise it and step uphill. That example de-processes the result (standardise, crop the
    border, clip) but uses no regulariser. Plain gradient ascent produces high-frequency noise
    that the network happens to like, so this loop adds the regularisers of the feature
    visualisation literature (Mordvintsev et al., "Inceptionism"/DeepDream, 2015; Olah et al.,
    "Feature Visualization", Distill, 2017):

    * **jitter** – the image is shifted by a few random pixels before every step, so no pattern can
      rely on an exact pixel position;
    * **blur** – a light Gaussian blur every few steps suppresses pixel-level noise;
    * **octaves** – start small and enlarge the image a few times, so large structures form first;
    * **clipping** to the valid pixel range 0..255.

    All channels are optimised at once as one batch (image ``i`` for ``channels[i]``; the images
    do not influence each other because BatchNorm runs in inference mode).

    Args:
        feature_model: A one-output activation model on raw 0..255 input of any size (build it
            with :func:`activation_model` on :func:`helpers.backbone.build_features`).
        channels: Channel indices of the model's output, one image each.
        size: Side length of the final images.
        steps: Gradient steps per octave.
        octaves: Number of image sizes; the first is ``size / octave_scale**(octaves - 1)``.
        octave_scale: Enlargement between octaves.
        step_size: Pixel step (0..255 scale) for a gradient normalised to unit standard deviation.
        jitter: Largest random shift in pixels.
        blur_every: Blur after every this many steps (0: never).
        blur_sigma: Standard deviation of the blur in pixels.
        seed: Seed of the start noise and the jitter.

    Returns:
        ``(len(channels), size, size, 3)`` float32 images with values 0..255.
    """
    channels = [int(c) for c in channels]
    n_channels = int(feature_model.output.shape[-1])
    if not channels or min(channels) < 0 or max(channels) >= n_channels:
        raise ValueError(f"A csatornák 0 és {n_channels - 1} közé essenek: {channels}")
    size, steps = _positive_int(size, "size"), _positive_int(steps, "steps")
    octaves = _positive_int(octaves, "octaves")
    rng = np.random.default_rng(seed)
    sizes = [max(16, round(size / octave_scale**i)) for i in reversed(range(octaves))]
    sizes[-1] = size
    start = 127.5 + rng.normal(0.0, 8.0, (len(channels), sizes[0], sizes[0], 3))
    x = tf.constant(start, dtype=tf.float32)
    kernel = _gaussian_kernel(blur_sigma) if blur_every else None

    ascent_step = _ascent_step(feature_model, tuple(channels), float(step_size))

    for octave, side in enumerate(sizes):
        if octave:
            x = tf.image.resize(x, [side, side], method="bicubic")
        for i in range(steps):
            dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, 2))
            x = tf.roll(x, shift=[dy, dx], axis=[1, 2])
            x = ascent_step(x)
            x = tf.roll(x, shift=[-dy, -dx], axis=[1, 2])
            if kernel is not None and (i + 1) % blur_every == 0:
                x = _blur(x, kernel)
            x = tf.clip_by_value(x, 0.0, 255.0)
    return x.numpy()


# -- top-activating photos ----------------------------------------------------------------------


@dataclass
class ChannelScan:
    """Where every channel of one layer responds most strongly on every photo of a data set.

    Introduced in ``06_what_the_network_sees.ipynb``. Keeping only the spatial maximum and its
    position (not the whole maps) lets a laptop scan hundreds of photos: 500 photos x 576 channels
    instead of 500 x 14 x 14 x 576 numbers.

    Attributes:
        maxima: ``(n, c)`` the largest activation of each channel on each photo.
        rows: ``(n, c)`` the row of that maximum in the activation map.
        cols: ``(n, c)`` its column.
        map_size: ``(h, w)`` of the activation map.
        labels: ``(n,)`` the photos' labels (if known).
    """

    maxima: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    map_size: tuple[int, int]
    labels: np.ndarray | None = None

    @classmethod
    def from_maps(cls, maps: np.ndarray, labels: np.ndarray | None = None) -> ChannelScan:
        """Keep the maximum of every channel and its position from activations ``(n, h, w, c)``."""
        maps = np.asarray(maps)
        if maps.ndim != 4:
            raise ValueError(f"Aktivációk kötegét várom (n, h, w, csatornák), nem {maps.shape}.")
        n, h, w, c = maps.shape
        flat = maps.reshape(n, h * w, c)
        where = flat.argmax(axis=1)
        return cls(flat.max(axis=1), where // w, where % w, (h, w), labels)

    def top(self, channel: int, k: int = 5) -> list[tuple[int, int, int, float]]:
        """The ``k`` photos on which ``channel`` reaches its highest value, and where.

        Returns:
            ``(photo index, row, column, value)`` tuples, strongest first; row and column are
            cells of the ``h x w`` activation map.
        """
        n_channels = self.maxima.shape[1]
        if not 0 <= int(channel) < n_channels:
            raise ValueError(f"A csatorna 0 és {n_channels - 1} közé essen, nem {channel}.")
        order = np.argsort(-self.maxima[:, channel], kind="stable")[: _positive_int(k, "k")]
        return [
            (
                int(i),
                int(self.rows[i, channel]),
                int(self.cols[i, channel]),
                float(self.maxima[i, channel]),
            )
            for i in order
        ]

    def selectivity(self) -> np.ndarray:
        """Per channel: (mean maximum on class 0 - on class 1) / pooled standard deviation.

        Positive: the channel prefers class 0 (cats), negative: class 1 (dogs).
        """
        if self.labels is None:
            raise ValueError("A címkék nélkül nem számolható osztályszelektivitás.")
        a, b = self.maxima[self.labels == 0], self.maxima[self.labels == 1]
        pooled = np.sqrt((a.var(axis=0) + b.var(axis=0)) / 2) + 1e-6
        return (a.mean(axis=0) - b.mean(axis=0)) / pooled


def scan_channels(feature_model, dataset) -> ChannelScan:
    """Run a one-output activation model over a ``(image, label)`` dataset; keep the maxima.

    Introduced in ``06_what_the_network_sees.ipynb``. The dataset must not be shuffled, so the
    photo indices match its file list.
    """
    parts, labels = [], []
    for x, y in dataset:
        parts.append(ChannelScan.from_maps(np.asarray(feature_model.predict_on_batch(x))))
        labels.append(np.asarray(y).reshape(-1))
    if not parts:
        raise ValueError("Az adathalmaz üres: nincs mit átnézni.")
    return ChannelScan(
        np.concatenate([p.maxima for p in parts]),
        np.concatenate([p.rows for p in parts]),
        np.concatenate([p.cols for p in parts]),
        parts[0].map_size,
        np.concatenate(labels),
    )


def receptive_box(
    row: int, col: int, map_size: tuple[int, int], image_size: int, box: int
) -> tuple[int, int, int, int]:
    """Square image region ``(top, left, bottom, right)`` of side ``box`` around one map cell.

    Introduced in ``06_what_the_network_sees.ipynb``. The cell's centre in pixels is
    ``(row + 0.5) * stride`` with ``stride = image_size / map_size``; the box is kept inside the
    image.
    """
    box = min(_positive_int(box, "box"), _positive_int(image_size, "image_size"))
    stride_y, stride_x = image_size / map_size[0], image_size / map_size[1]
    cy, cx = (row + 0.5) * stride_y, (col + 0.5) * stride_x
    top = int(np.clip(round(cy - box / 2), 0, image_size - box))
    left = int(np.clip(round(cx - box / 2), 0, image_size - box))
    return top, left, top + box, left + box


# -- Grad-CAM ------------------------------------------------------------------------------------


def _signs(sign, n: int) -> np.ndarray | None:
    """``sign`` as ``(n,)`` float32, or ``None`` for ``"predicted"`` (the sign of each logit)."""
    if isinstance(sign, str):
        if sign != "predicted":
            raise ValueError(
                f"sign: +1 („kutya”), -1 („macska”), képenként egy ilyen érték, vagy "
                f"'predicted' (a jósolt osztály) lehet, nem {sign!r}."
            )
        return None
    try:
        signs = np.broadcast_to(np.asarray(sign, dtype="float32"), (n,))
    except ValueError:
        raise ValueError(
            f"sign: egyetlen szám vagy képenként egy szám ({n} darab) legyen, "
            f"nem {np.shape(sign)} alakú."
        ) from None
    if not np.isfinite(signs).all():
        raise ValueError("sign: NaN vagy végtelen érték nem lehet.")
    return signs


@functools.lru_cache(maxsize=4)
def _cam_step(model, layer: str, pool_layer: str, head_layer: str):
    """Compiled ``images -> (A, d logit / dA, logits)`` of :func:`grad_cam`.

    A graph is about ten times faster than the same tape run eagerly, because only the head's
    part of the backward pass is needed. It is traced once per model and layers (and at most
    twice per image size); the last four are kept.
    """
    conv_layer = model.layers[backbone.layer_index(model, layer)]
    pool = model.layers[backbone.layer_index(model, pool_layer)]
    head = model.layers[backbone.layer_index(model, head_layer)]
    cam_model = keras.Model(_model_input(model), [conv_layer.output, pool.output])

    @tf.function(reduce_retracing=True)
    def cam_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)  # frozen layers have no watched variables: watch the input
            conv, pooled = cam_model(x, training=False)
            logits = tf.squeeze(tf.matmul(pooled, head.kernel) + head.bias, axis=-1)
            target = tf.reduce_sum(logits)
        return conv, tape.gradient(target, conv), logits

    return cam_step


def grad_cam(
    model,
    images,
    *,
    layer: str = "out_relu",
    pool_layer: str = "avg_pool",
    head_layer: str = "dog_probability",
    sign=1.0,
    size: int | None = None,
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heat maps of a one-neuron classifier, computed on the pre-sigmoid logit.

    Introduced in ``06_what_the_network_sees.ipynb`` (Selvaraju et al., 2017). The gradient of the
    logit ``z = w · pooled + b`` with respect to the activations ``A`` of ``layer`` is averaged over
    the positions; that gives one weight per channel, and the map is
    ``ReLU(sum_k weight_k * A_k)``, scaled to a maximum of 1 and enlarged to the image size. We
    use the logit, not the sigmoid output: the sigmoid saturates near 0 and 1 and would make
    the gradients of confident predictions vanish. ``sign=+1`` explains "dog" (class 1),
    ``sign=-1`` explains "cat": the evidence *against* dog. Each image's logit depends on that
    image alone (BatchNorm runs in inference mode), so the gradient for ``sign`` is ``sign``
    times the gradient of the logit.

    Args:
        model: A flat functional classifier (see :func:`helpers.backbone.build_classifier`).
        images: ``(n, h, w, 3)`` raw RGB images, 0..255 (a single photo: ``photo[None]``).
        layer: The convolutional layer whose activations are weighted.
        pool_layer: The global-average-pooling layer feeding the head.
        head_layer: The final ``Dense(1)`` layer (its activation is ignored).
        sign: ``+1`` for class 1, ``-1`` for class 0; a scalar or one value per image; or
            ``"predicted"``: the class the model predicts (the sign of each logit).
        size: Side length of the returned maps (default: the image size).
        batch_size: Images per gradient computation (bounds the memory the tape needs).

    Returns:
        ``(maps, logits)``: maps ``(n, size, size)`` with values in [0, 1] (all zero when no
        position speaks for the class) and the logits ``(n,)``.

    Raises:
        ValueError: ``images`` is not a batch of raw RGB photos (e.g. one unbatched photo), or
            ``sign`` / ``size`` / ``batch_size`` is invalid, or a layer name is unknown.
    """
    images = photo_batch(images)
    signs = _signs(sign, len(images))
    size = _positive_int(size, "size") if size is not None else int(images.shape[1])
    batch_size = _positive_int(batch_size, "batch_size")
    cam_step = _cam_step(model, layer, pool_layer, head_layer)
    all_cams, all_logits = [], []
    for start in range(0, len(images), batch_size):
        conv, grads, logits = cam_step(tf.convert_to_tensor(images[start : start + batch_size]))
        batch_signs = (
            tf.where(logits >= 0, 1.0, -1.0)
            if signs is None
            else tf.constant(signs[start : start + batch_size])
        )
        # one weight per channel and image: the mean gradient of sign * logit
        weights = tf.reduce_mean(grads, axis=[1, 2]) * batch_signs[:, None]
        cams = tf.nn.relu(tf.einsum("nhwc,nc->nhw", conv, weights))
        all_cams.append(enlarge(cams.numpy(), size))
        all_logits.append(logits.numpy())
    cams, logits = np.concatenate(all_cams), np.concatenate(all_logits)
    peak = cams.reshape(len(cams), -1).max(axis=1)
    cams = np.where(peak[:, None, None] > 0, cams / np.maximum(peak, 1e-12)[:, None, None], 0.0)
    return cams.astype("float32"), logits


def top_fraction_mask(cams: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Boolean masks of the hottest ``fraction`` of each map's pixels.

    Introduced in ``06_what_the_network_sees.ipynb`` for the occlusion check of Grad-CAM.
    """
    cams = np.asarray(cams)
    if cams.ndim != 3:
        raise ValueError(f"Hőtérképek kötegét várom (n, h, w), nem {cams.shape} alakút.")
    if not 0 < fraction < 1:
        raise ValueError(f"A fraction 0 és 1 közötti arány legyen (pl. 0.2), nem {fraction!r}.")
    flat = cams.reshape(len(cams), -1)
    threshold = np.quantile(flat, 1 - fraction, axis=1)
    return cams >= threshold[:, None, None]


def occlude(images: np.ndarray, masks: np.ndarray, fill: float = 127.5) -> np.ndarray:
    """Paint the masked pixels of each photo flat grey (``fill``); returns a copy.

    Introduced in ``06_what_the_network_sees.ipynb``.
    """
    out = np.array(photo_batch(images), copy=True)
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != out.shape[:3]:
        raise ValueError(
            f"A maszkok alakja {masks.shape}, de a képeké {out.shape}: képenként egy "
            "(magasság, szélesség) méretű maszk kell."
        )
    out[masks] = fill
    return out
