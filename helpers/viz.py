"""Pictures of the series: photo grids, histograms, learning curves, confusion matrices, and
what the network sees.

Introduced in ``01_data_loading.ipynb`` (photo grids, histograms),
``05_training_tensorboard.ipynb`` (learning curves, confusion matrix, galleries) and
``06_what_the_network_sees.ipynb`` (first-layer filters, activation maps, feature visualisation by
gradient ascent, top-activating photos, Grad-CAM, and the ``ipywidgets`` explorers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np


def _as_display(image) -> np.ndarray:
    """Float image (0..255, or -1..1 after preprocessing) -> uint8 RGB for imshow."""
    arr = np.asarray(image, dtype="float32")
    if arr.min() < 0:  # MobileNetV2 range [-1, 1]
        arr = (arr + 1.0) * 127.5
    return np.clip(arr, 0, 255).astype("uint8")


def show_images(
    images: Sequence,
    titles: Sequence[str] | None = None,
    *,
    cols: int = 4,
    size: float = 2.6,
    suptitle: str | None = None,
    title_colors: Sequence[str] | None = None,
):
    """Draw photos in a grid with optional per-photo titles.

    Introduced in ``01_data_loading.ipynb``.

    Args:
        images: Images with values 0..255 (or -1..1).
        titles: One title per image.
        cols: Images per row.
        size: Inches per image.
        suptitle: Title of the whole figure.
        title_colors: One colour per title (e.g. green for correct, red for wrong).

    Returns:
        The matplotlib figure.
    """
    n = len(images)
    if n == 0:
        raise ValueError("Nincs megjeleníthető kép (üres lista).")
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.2), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(_as_display(images[i]))
        if titles is not None:
            color = title_colors[i] if title_colors is not None else "black"
            ax.set_title(titles[i], fontsize=10, color=color)
    if suptitle:
        fig.suptitle(suptitle, fontsize=13)
    fig.tight_layout()
    return fig


def pixel_histograms(arrays: dict[str, np.ndarray], *, bins: int = 60):
    """Side-by-side histograms of pixel values, one panel per named array.

    Introduced in ``01_data_loading.ipynb`` to compare ``1/255`` scaling with ``preprocess_input``.
    """
    fig, axes = plt.subplots(1, len(arrays), figsize=(4.2 * len(arrays), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes.flat, arrays.items(), strict=True):
        values = np.asarray(values).ravel()
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.85)
        ax.set_title(f"{name}\n[{values.min():.2f}, {values.max():.2f}]", fontsize=10)
        ax.set_xlabel("pixelérték")
        ax.set_ylabel("darab")
    fig.tight_layout()
    return fig


def plot_learning_curves(scalars: dict[str, dict[str, list[float]]], *, title: str | None = None):
    """Plot loss and accuracy per epoch for the training and validation runs.

    Introduced in ``05_training_tensorboard.ipynb``. ``scalars`` is what
    :func:`helpers.training.read_scalars` returns (or a Keras ``History.history`` converted with
    :func:`history_to_scalars`).
    """
    labels = {"train": "tanító", "validation": "validációs"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    panels = [("epoch_loss", "veszteség"), ("epoch_accuracy", "pontosság")]
    for ax, (tag, name) in zip(axes, panels, strict=True):
        for split, tags in scalars.items():
            if tag in tags:
                values = tags[tag]
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, marker="o", label=labels.get(split, split))
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def history_to_scalars(history: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """Convert a Keras ``History.history`` dict into the shape :func:`plot_learning_curves` takes.

    Introduced in ``05_training_tensorboard.ipynb``.
    """
    out: dict[str, dict[str, list[float]]] = {"train": {}, "validation": {}}
    for key, values in history.items():
        split = "validation" if key.startswith("val_") else "train"
        out[split]["epoch_" + key.removeprefix("val_")] = list(values)
    return out


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str = "Tévesztési mátrix"
):
    """Draw a 2x2 (or NxN) confusion matrix with counts in the cells.

    Introduced in ``05_training_tensorboard.ipynb``. Rows are true classes, columns predictions.
    """
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(matrix, cmap=plt.colormaps["Blues"])
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=14, color=color)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("jósolt osztály")
    ax.set_ylabel("valódi osztály")
    ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# What the network sees (notebook 06): activations, feature visualisation, Grad-CAM, explorers
# --------------------------------------------------------------------------------------------

#: Layers notebook 06 looks into, shallow to deep (112, 28, 14 and 7 cells wide at 224x224 input).
PROBE_LAYERS = ("block_1_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu")


def _model_input(model):
    """The model's input tensor (a single tensor, not a one-element list, to keep Keras quiet)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def activation_model(model, layer_names, *, before_activation: bool = False):
    """A model that maps the input of ``model`` to the outputs of the named layers.

    Introduced in ``06_what_the_network_sees.ipynb``. Works on any flat functional model (the
    classifier of :func:`helpers.backbone.build_classifier` or
    :func:`helpers.backbone.build_features`). Keras keeps only the layers the outputs depend on,
    so a model that stops at a shallow layer is fast.

    Args:
        model: A flat functional Keras model.
        layer_names: One layer name (the model then has one output) or a list of names.
        before_activation: Return the *input* of each named layer instead of its output. For a
            ``*_relu`` layer that is the BatchNorm output before ReLU6: the quantity gradient
            ascent should push up, because ReLU6 has zero gradient below 0 and above 6.

    Returns:
        A ``keras.Model`` sharing the layers (and weights) of ``model``.
    """
    import keras

    from helpers import backbone

    single = isinstance(layer_names, str)
    names = [layer_names] if single else list(layer_names)
    layers = [model.layers[backbone.layer_index(model, name)] for name in names]
    outputs = [layer.input if before_activation else layer.output for layer in layers]
    return keras.Model(
        _model_input(model), outputs[0] if single else outputs, name=f"{model.name}_activations"
    )


def activations(model, images, *, batch_size: int = 16) -> list[np.ndarray]:
    """Run an activation model over images in batches and return NumPy arrays, one per output.

    Introduced in ``06_what_the_network_sees.ipynb``.
    """
    chunks: list[list[np.ndarray]] = []
    images = np.asarray(images, dtype="float32")
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
    peak = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    return np.flatnonzero(peak < tolerance * peak.max())


def plot_first_layer_filters(kernel: np.ndarray, *, title: str | None = None, cols: int = 8):
    """Draw the kernels of a first convolution layer (``kh, kw, 3, n``) as small colour patches.

    Introduced in ``06_what_the_network_sees.ipynb``. Every filter is scaled on its own,
    symmetrically: grey means weight 0, a bright/saturated colour a large positive weight on that
    colour channel, a dark/complementary colour a large negative weight. Dead filters (see
    :func:`dead_filters`) are drawn plain grey with ``(0)`` in their title.
    """
    kernel = np.asarray(kernel, dtype="float32")
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(
            f"Egy RGB-bemenetű réteg kernelét várom (kh, kw, 3, n), nem {kernel.shape}"
        )
    n = kernel.shape[-1]
    dead = set(dead_filters(kernel).tolist())
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.25), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        w = kernel[..., i]
        patch = 0.5 + w / (2.0 * np.abs(w).max() + 1e-12)
        if i in dead:  # (nearly) all-zero filter: draw it plain grey instead of magnifying noise
            patch = np.full_like(w, 0.5)
        ax.imshow(np.clip(patch, 0, 1), interpolation="nearest")
        ax.set_title(
            f"#{i} (0)" if i in dead else f"#{i}", fontsize=8, color="0.5" if i in dead else "black"
        )
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


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
    if maps.ndim == 3:
        maps = maps[None]
    if by == "mean":
        score = maps.mean(axis=(0, 1, 2))
    elif by == "contrast":
        score = maps.std(axis=(1, 2)).mean(axis=0)
    else:
        raise ValueError(f"by='mean' vagy by='contrast' lehet, nem {by!r}")
    return np.argsort(-score, kind="stable")[:k]


def plot_feature_maps(
    maps: np.ndarray,
    channels: Sequence[int] | None = None,
    *,
    n: int = 16,
    cols: int = 8,
    title: str | None = None,
    size: float = 1.35,
    cmap: str = "viridis",
):
    """Draw the activation maps of one photo (``h, w, channels``) as a grid, one panel per channel.

    Introduced in ``06_what_the_network_sees.ipynb``. Without ``channels`` the ``n`` most active
    channels are shown. Each panel has its own colour scale (dark = 0).
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"Egy kép aktivációit várom (h, w, csatornák), nem {maps.shape}")
    channels = list(most_active_channels(maps, n) if channels is None else channels)
    cols = max(1, min(cols, len(channels)))
    rows = int(np.ceil(len(channels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.15), squeeze=False)
    colormap = plt.colormaps[cmap]
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(channels):
            continue
        ch = int(channels[i])
        ax.imshow(maps[..., ch], cmap=colormap, vmin=0, interpolation="nearest")
        ax.set_title(f"#{ch}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


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
    acts = np.asarray(feature_model(np.asarray(images, dtype="float32"), training=False))
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
    import tensorflow as tf

    r = kernel.shape[0] // 2
    padded = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, strides=[1, 1, 1, 1], padding="VALID")


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

    Introduced in ``06_what_the_network_sees.ipynb`` (the technique of keras.io's "Visualizing
    what convnets learn", F. Chollet). Start from a grey image with a little noise and repeat:
    compute the channel's mean activation (border cells excluded), take its gradient with respect
    to the *pixels*, normalise it and step uphill. Plain gradient ascent produces high-frequency
    noise that the network happens to like, so the loop adds the usual regularisers:

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
    import tensorflow as tf

    channels = [int(c) for c in channels]
    n_channels = int(feature_model.output.shape[-1])
    if not channels or min(channels) < 0 or max(channels) >= n_channels:
        raise ValueError(f"A csatornák 0 és {n_channels - 1} közé essenek: {channels}")
    rng = np.random.default_rng(seed)
    sizes = [max(16, round(size / octave_scale**i)) for i in reversed(range(octaves))]
    sizes[-1] = size
    start = 127.5 + rng.normal(0.0, 8.0, (len(channels), sizes[0], sizes[0], 3))
    x = tf.constant(start, dtype=tf.float32)
    selector = tf.one_hot(channels, n_channels)
    kernel = _gaussian_kernel(blur_sigma) if blur_every else None

    @tf.function  # traced once per image size (octave)
    def ascent_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            acts = feature_model(x, training=False)
            rows, cols = _inner_slice(acts.shape[1]), _inner_slice(acts.shape[2])
            per_channel = tf.reduce_mean(acts[:, rows, cols, :], axis=[1, 2])
            objective = tf.reduce_sum(per_channel * selector)
        grads = tape.gradient(objective, x)
        grads /= tf.math.reduce_std(grads, axis=[1, 2, 3], keepdims=True) + 1e-8
        return x + step_size * grads

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


def stretch_contrast(images: np.ndarray, *, spread: float = 0.15, crop: float = 0.06) -> np.ndarray:
    """Make synthetic images readable: per-image standardisation, clipping, a thin border crop.

    Introduced in ``06_what_the_network_sees.ipynb`` (the ``deprocess_image`` step of keras.io).

    Returns:
        Float images with values 0..1.
    """
    out = []
    for img in np.asarray(images, dtype="float32"):
        img = (img - img.mean()) / (img.std() + 1e-5) * spread + 0.5
        b = int(round(img.shape[0] * crop))
        out.append(np.clip(img[b : img.shape[0] - b, b : img.shape[1] - b], 0, 1))
    return np.stack(out)


def plot_feature_visualisations(
    rows: dict[str, tuple[np.ndarray, Sequence[int]]],
    *,
    title: str | None = None,
    size: float = 1.7,
):
    """Grid of synthetic images: one row per layer (shallow to deep), one column per channel.

    Introduced in ``06_what_the_network_sees.ipynb``.

    Args:
        rows: Layer name -> ``(images, channels)`` as returned by :func:`gradient_ascent`.
        title: Figure title.
        size: Inches per panel.
    """
    cols = max(len(ch) for _, ch in rows.values())
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(cols * size, len(rows) * size * 1.12), squeeze=False
    )
    for r, (layer, (images, channels)) in enumerate(rows.items()):
        shown = stretch_contrast(images)
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(channels):
                continue
            ax.imshow(shown[c])
            ax.set_title(f"#{int(channels[c])}", fontsize=8)
            if c == 0:
                ax.set_ylabel(layer, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


# -- top-activating photos ----------------------------------------------------------------------


def top_activating(maps: np.ndarray, channel: int, k: int = 5) -> list[tuple[int, int, int, float]]:
    """The ``k`` photos on which one channel reaches its highest value, and where.

    Introduced in ``06_what_the_network_sees.ipynb``.

    Args:
        maps: Activations ``(n, h, w, c)`` of ``n`` photos.
        channel: The channel index.
        k: How many photos.

    Returns:
        ``(photo index, row, column, value)`` tuples, strongest first; row and column are cells of
        the ``h x w`` activation map.
    """
    maps = np.asarray(maps)
    return ChannelScan.from_maps(maps[..., [channel]]).top(0, k)


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
        maps = np.asarray(maps)
        n, h, w, c = maps.shape
        flat = maps.reshape(n, h * w, c)
        where = flat.argmax(axis=1)
        return cls(flat.max(axis=1), where // w, where % w, (h, w), labels)

    def top(self, channel: int, k: int = 5) -> list[tuple[int, int, int, float]]:
        """``(photo index, row, column, value)`` of the ``k`` strongest photos, strongest first."""
        order = np.argsort(-self.maxima[:, channel], kind="stable")[:k]
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
    stride_y, stride_x = image_size / map_size[0], image_size / map_size[1]
    box = min(box, image_size)
    cy, cx = (row + 0.5) * stride_y, (col + 0.5) * stride_x
    top = int(np.clip(round(cy - box / 2), 0, image_size - box))
    left = int(np.clip(round(cx - box / 2), 0, image_size - box))
    return top, left, top + box, left + box


def plot_top_activating(
    photos,
    hits: dict[int, list[tuple[int, int, int, float]]],
    map_size: tuple[int, int],
    *,
    box: int = 80,
    labels: Sequence[str] | None = None,
    visualisations: np.ndarray | None = None,
    title: str | None = None,
    size: float = 1.55,
):
    """For each channel: its top photos with the strongest region framed, and the crops.

    Introduced in ``06_what_the_network_sees.ipynb``. Two rows per channel: the whole photos with
    a red frame around the most active cell's region, then that region enlarged. With
    ``visualisations`` (one synthetic image per channel, from :func:`gradient_ascent`) the first
    column shows what the channel "wants to see".

    Args:
        photos: Photo index -> image (0..255); a dict or an array indexed by photo index.
        hits: Channel -> ``(photo index, row, column, value)`` list, as :meth:`ChannelScan.top`.
        map_size: ``(h, w)`` of the activation map.
        box: Side of the framed region in pixels.
        labels: Caption per photo index (e.g. the class name).
        visualisations: One synthetic image per channel, in the order of ``hits``.
        title: Figure title.
        size: Inches per panel.
    """
    from matplotlib.patches import Rectangle

    extra = 1 if visualisations is not None else 0
    shown = stretch_contrast(visualisations) if visualisations is not None else None
    cols = max(len(h) for h in hits.values()) + extra
    fig, axes = plt.subplots(
        2 * len(hits), cols, figsize=(cols * size, 2 * len(hits) * size * 1.05), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for r, (channel, top) in enumerate(hits.items()):
        photo_row, crop_row = axes[2 * r], axes[2 * r + 1]
        if shown is not None:
            photo_row[0].imshow(shown[r])
            photo_row[0].set_title(f"#{int(channel)} „ideálja”", fontsize=8)
            crop_row[0].text(
                0.5,
                0.5,
                f"csatorna #{int(channel)}\nkivágások →",
                ha="center",
                va="center",
                fontsize=9,
                transform=crop_row[0].transAxes,
            )
        for j, (idx, row, col, value) in enumerate(top):
            image = np.asarray(photos[idx])
            y0, x0, y1, x1 = receptive_box(row, col, map_size, image.shape[0], box)
            ax = photo_row[extra + j]
            ax.imshow(_as_display(image))
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="red", lw=1.8))
            name = f"{labels[idx]}, " if labels is not None else ""
            ax.set_title(f"{name}max {value:.1f}", fontsize=8)
            crop_row[extra + j].imshow(_as_display(image[y0:y1, x0:x1]))
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


# -- Grad-CAM ------------------------------------------------------------------------------------


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
    ``sign=-1`` explains "cat": the evidence *against* dog.

    Args:
        model: A flat functional classifier (see :func:`helpers.backbone.build_classifier`).
        images: ``(n, h, w, 3)`` raw RGB images, 0..255.
        layer: The convolutional layer whose activations are weighted.
        pool_layer: The global-average-pooling layer feeding the head.
        head_layer: The final ``Dense(1)`` layer (its activation is ignored).
        sign: ``+1`` for class 1, ``-1`` for class 0; a scalar or one value per image.
        size: Side length of the returned maps (default: the image size).
        batch_size: Images per gradient computation (bounds the memory the tape needs).

    Returns:
        ``(maps, logits)``: maps ``(n, size, size)`` with values in [0, 1] (all zero when no
        position speaks for the class) and the logits ``(n,)``.
    """
    import keras
    import tensorflow as tf

    from helpers import backbone

    images = np.asarray(images, dtype="float32")
    signs = np.broadcast_to(np.asarray(sign, dtype="float32"), (len(images),))
    size = size or int(images.shape[1])
    conv_layer = model.layers[backbone.layer_index(model, layer)]
    pool = model.layers[backbone.layer_index(model, pool_layer)]
    head = model.layers[backbone.layer_index(model, head_layer)]
    cam_model = keras.Model(_model_input(model), [conv_layer.output, pool.output])
    all_cams, all_logits = [], []
    for start in range(0, len(images), batch_size):
        x = tf.convert_to_tensor(images[start : start + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(x)  # frozen layers have no watched variables: watch the input
            conv, pooled = cam_model(x, training=False)
            logits = tf.squeeze(tf.matmul(pooled, head.kernel) + head.bias, axis=-1)
            target = tf.reduce_sum(signs[start : start + batch_size] * logits)
        grads = tape.gradient(target, conv)
        weights = tf.reduce_mean(grads, axis=[1, 2])  # one weight per channel and image
        cams = tf.nn.relu(tf.einsum("nhwc,nc->nhw", conv, weights))
        cams = tf.image.resize(cams[..., None], [size, size], method="bilinear")[..., 0]
        all_cams.append(cams.numpy())
        all_logits.append(logits.numpy())
    cams, logits = np.concatenate(all_cams), np.concatenate(all_logits)
    peak = cams.reshape(len(cams), -1).max(axis=1)
    cams = np.where(peak[:, None, None] > 0, cams / np.maximum(peak, 1e-12)[:, None, None], 0.0)
    return cams.astype("float32"), logits


def overlay_heatmap(image, cam: np.ndarray, *, alpha: float = 0.45, cmap: str = "jet"):
    """Blend a [0, 1] heat map over a 0..255 photo; returns an RGB float image in [0, 1].

    Introduced in ``06_what_the_network_sees.ipynb``.
    """
    photo = _as_display(image).astype("float32") / 255.0
    heat = plt.colormaps[cmap](np.clip(cam, 0, 1))[..., :3]
    return np.clip((1 - alpha) * photo + alpha * heat, 0.0, 1.0)


def plot_grad_cam(
    images: np.ndarray,
    dog_maps: np.ndarray,
    cat_maps: np.ndarray,
    titles: Sequence[str],
    *,
    title_colors: Sequence[str] | None = None,
    suptitle: str | None = None,
    size: float = 2.0,
    cmap: str = "jet",
):
    """Photos (top row) with their "dog" (middle) and "cat" (bottom) Grad-CAM overlays.

    Introduced in ``06_what_the_network_sees.ipynb``.
    """
    n = len(images)
    if n == 0:
        raise ValueError("Nincs megjeleníthető kép (üres lista).")
    fig, axes = plt.subplots(3, n, figsize=(n * size, 3 * size * 1.08), squeeze=False)
    for j in range(n):
        color = title_colors[j] if title_colors is not None else "black"
        axes[0, j].imshow(_as_display(images[j]))
        axes[0, j].set_title(titles[j], fontsize=9, color=color)
        axes[1, j].imshow(overlay_heatmap(images[j], dog_maps[j], cmap=cmap))
        axes[2, j].imshow(overlay_heatmap(images[j], cat_maps[j], cmap=cmap))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("fotó")
    axes[1, 0].set_ylabel("„kutya” térkép")
    axes[2, 0].set_ylabel("„macska” térkép")
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    fig.tight_layout()
    return fig


def top_fraction_mask(cams: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Boolean masks of the hottest ``fraction`` of each map's pixels.

    Introduced in ``06_what_the_network_sees.ipynb`` for the occlusion check of Grad-CAM.
    """
    cams = np.asarray(cams)
    flat = cams.reshape(len(cams), -1)
    threshold = np.quantile(flat, 1 - fraction, axis=1)
    return cams >= threshold[:, None, None]


def occlude(images: np.ndarray, masks: np.ndarray, fill: float = 127.5) -> np.ndarray:
    """Paint the masked pixels of each photo flat grey (``fill``); returns a copy.

    Introduced in ``06_what_the_network_sees.ipynb``.
    """
    out = np.array(images, dtype="float32", copy=True)
    out[np.asarray(masks, dtype=bool)] = fill
    return out


# -- interactive explorers ---------------------------------------------------------------------


def _hint(text: str):
    import ipywidgets as widgets

    return widgets.HTML(f"<span style='color:#666;font-size:90%'>{text}</span>")


_LIVE_HINT = (
    "A fenti ábra a kiinduló nézet (exportált vagy kivetített notebookban ez látszik). "
    "Ha változtatsz a beállításokon, az új ábra itt alul jelenik meg."
)


def _live(render, controls: dict, *, show: bool):
    """Controls + an Output that redraws ``render(**values)`` on change; static first view."""
    import ipywidgets as widgets

    out = widgets.Output()

    def values():
        return {name: control.value for name, control in controls.items()}

    def redraw(_change=None):
        with out:
            out.clear_output(wait=True)
            render(**values())
            plt.show()

    for control in controls.values():
        control.observe(redraw, names="value")
    if show:  # the static first view lives in the cell's own output, not in the widget
        render(**values())
        plt.show()
    box = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
    return widgets.VBox([box, _hint(_LIVE_HINT), out])


def _titles(n: int, titles: Sequence[str] | None) -> list[str]:
    return list(titles) if titles is not None else [f"{i}. fotó" for i in range(n)]


def channel_explorer(
    model,
    images: np.ndarray,
    layer_names: Sequence[str] = PROBE_LAYERS,
    *,
    titles: Sequence[str] | None = None,
    show: bool = True,
):
    """Interactive explorer: choose photo, layer and channel; see the activation map.

    Introduced in ``06_what_the_network_sees.ipynb``. All activations are computed once up front,
    so moving the slider only redraws. Three panels: the photo, the channel's map at its own
    resolution, and the map enlarged over the photo.

    Args:
        model: A flat functional model on raw 0..255 images (classifier or backbone).
        images: A few photos ``(n, 224, 224, 3)``.
        layer_names: Layers offered in the drop-down.
        titles: One caption per photo.
        show: Draw the first view right away (so exported notebooks show it).

    Returns:
        An ``ipywidgets.VBox`` (controls, hint, live output).
    """
    import ipywidgets as widgets
    import tensorflow as tf

    images = np.asarray(images, dtype="float32")
    titles = _titles(len(images), titles)
    maps = dict(
        zip(
            layer_names,
            activations(activation_model(model, list(layer_names)), images),
            strict=True,
        )
    )
    photo = widgets.Dropdown(
        options=[(t, i) for i, t in enumerate(titles)], value=0, description="fotó"
    )
    layer = widgets.Dropdown(options=list(layer_names), value=layer_names[0], description="réteg")
    first = int(most_active_channels(maps[layer_names[0]][0], 1, by="contrast")[0])
    channel = widgets.IntSlider(
        value=first,
        min=0,
        max=maps[layer_names[0]].shape[-1] - 1,
        description="csatorna",
        continuous_update=False,
    )

    def on_layer(change):
        channel.max = maps[change["new"]].shape[-1] - 1

    layer.observe(on_layer, names="value")

    def render(photo, layer, channel):
        fmap = maps[layer][photo, ..., min(channel, maps[layer].shape[-1] - 1)]
        h, w, c = maps[layer].shape[1:]
        fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6))
        axes[0].imshow(_as_display(images[photo]))
        axes[0].set_title(titles[photo])
        axes[1].imshow(fmap, cmap=plt.colormaps["viridis"], vmin=0, interpolation="nearest")
        axes[1].set_title(
            f"{layer} #{channel}\n{h}×{w} cella (1 cella ≈ {images.shape[1] // h} px)", fontsize=9
        )
        big = tf.image.resize(fmap[..., None], images.shape[1:3], method="bilinear").numpy()[..., 0]
        scaled = big / big.max() if big.max() > 0 else big
        axes[2].imshow(overlay_heatmap(images[photo], scaled, cmap="inferno", alpha=0.55))
        axes[2].set_title(f"ráhelyezve a fotóra (max {fmap.max():.2f})", fontsize=9)
        for ax in axes:
            ax.axis("off")
        fig.suptitle(f"Mit lát a(z) {layer} réteg {channel}. csatornája? ({c} csatornából)")
        fig.tight_layout()
        return fig

    return _live(render, {"photo": photo, "layer": layer, "channel": channel}, show=show)


def grad_cam_explorer(
    model,
    images: np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    layers: Sequence[str] = ("out_relu", "block_16_project", "block_13_expand_relu"),
    show: bool = True,
):
    """Interactive Grad-CAM: choose photo, layer and class; see the heat map over the photo.

    Introduced in ``06_what_the_network_sees.ipynb``. The class buttons offer the predicted class
    (the first view), "dog" (the logit) and "cat" (the negated logit).

    Returns:
        An ``ipywidgets.VBox``.
    """
    import ipywidgets as widgets

    images = np.asarray(images, dtype="float32")
    titles = _titles(len(images), titles)
    photo = widgets.Dropdown(
        options=[(t, i) for i, t in enumerate(titles)], value=0, description="fotó"
    )
    layer = widgets.Dropdown(options=list(layers), value=layers[0], description="réteg")
    target = widgets.ToggleButtons(
        options=[("jósolt", 0.0), ("kutya", 1.0), ("macska", -1.0)],
        value=0.0,
        description="osztály",
    )

    def render(photo, layer, target):
        x = images[photo : photo + 1]
        if target == 0.0:  # the predicted class: the sign of the logit
            _, logits = grad_cam(model, x, layer=layer)
            target = 1.0 if logits[0] >= 0 else -1.0
        cams, logits = grad_cam(model, x, layer=layer, sign=target)
        p_dog = 1 / (1 + np.exp(-logits[0]))
        fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.8))
        axes[0].imshow(_as_display(images[photo]))
        axes[0].set_title(f"{titles[photo]}\nP(kutya) = {p_dog:.2f}", fontsize=10)
        axes[1].imshow(overlay_heatmap(images[photo], cams[0]))
        name = "kutya" if target > 0 else "macska"
        axes[1].set_title(f"Grad-CAM: „{name}”, réteg: {layer}", fontsize=10)
        for ax in axes:
            ax.axis("off")
        fig.tight_layout()
        return fig

    return _live(render, {"photo": photo, "layer": layer, "target": target}, show=show)


def freeze_explorer(
    model, candidates: Sequence[str] | None = None, *, initial: str | None = None, show: bool = True
):
    """Interactive freeze point: choose the cut layer, see how much stays frozen.

    Introduced in ``06_what_the_network_sees.ipynb``. Everything before the cut is frozen, the
    cut layer and the later ones learn (BatchNorm layers always stay frozen, as in ``03``).

    Args:
        model: The flat classifier.
        candidates: Cut layers offered (default :func:`helpers.backbone.freeze_candidates`).
        initial: The first selection (default: the series' ``block_12_project``).
        show: Draw the first view right away.

    Returns:
        An ``ipywidgets.VBox``.
    """
    import ipywidgets as widgets

    from helpers import backbone

    candidates = list(candidates or backbone.freeze_candidates())
    initial = initial or (backbone.CUT_LAYER if backbone.CUT_LAYER in candidates else candidates[0])
    table = backbone.freeze_table(model, candidates)
    cut = widgets.Dropdown(options=candidates, value=initial, description="vágás")
    trainable_curve = np.array([table[c]["trainable_params"] for c in candidates]) / 1e6

    def render(cut):
        counts = table[cut]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2]})
        frozen_m = counts["non_trainable_params"] / 1e6
        train_m = counts["trainable_params"] / 1e6
        axes[0].bar(["fagyott", "tanítható"], [frozen_m, train_m], color=["tab:blue", "tab:orange"])
        for x, (v, layers) in enumerate(
            [(frozen_m, counts["frozen_layers"]), (train_m, counts["trainable_layers"])]
        ):
            axes[0].text(x, v, f"{v:.2f} M\n{layers} réteg", ha="center", va="bottom", fontsize=9)
        axes[0].set_ylabel("paraméterek (millió)")
        axes[0].set_ylim(0, max(frozen_m, train_m) * 1.3)
        axes[0].set_title(f"Vágás: {cut}", fontsize=10)
        xs = np.arange(len(candidates))
        axes[1].plot(xs, trainable_curve, marker="o", color="tab:orange")
        i = candidates.index(cut)
        axes[1].plot([i], [trainable_curve[i]], marker="o", ms=12, mfc="none", mec="red", mew=2)
        axes[1].set_xticks(xs, candidates, rotation=70, fontsize=7)
        axes[1].set_ylabel("tanítható paraméterek (millió)")
        axes[1].set_title("Minél korábban vágunk, annál több tanul", fontsize=10)
        axes[1].grid(alpha=0.3)
        fig.tight_layout()
        return fig

    return _live(render, {"cut": cut}, show=show)
